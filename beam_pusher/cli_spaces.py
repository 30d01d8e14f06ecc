"""The ``beam-pusher`` commands that act on deployed Spaces from this process: status, rollback, merge, logs, restart.

Each resolves its endpoint and token as every command does (``cli_args``), asks the Hub through ``hub``,
``builds`` or ``pullrequests``, and prints one line per Space; the token is resolved here and never printed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from beam_pusher.cli_args import EXIT_FAILED, EXIT_OK, connect, endpoint_from, load_selected, token_from
from beam_pusher.errors import PushError
from beam_pusher.report import symbols_for

__all__ = ["COMMANDS"]


def cmd_status(args: argparse.Namespace, extra: Sequence[str]) -> int:
    from beam_pusher.hub import space_status

    config = load_selected(args.config, args.only, check_secrets=False)
    api = connect(endpoint_from(args, config.endpoint), token_from(args, config.token), need_token=False)
    statuses = space_status(api, [spec.repo_id for spec in config.specs])
    # "NOT FOUND" and "ERROR" are not runtime stages, only what this table shows when there is none.
    rows = [(s.repo_id, s.stage or ("ERROR" if s.found else "NOT FOUND"), s.hardware or "-", s.url) for s in statuses]
    header = ("Space", "Stage", "Hardware", "URL")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(3)]
    print("  ".join(c.ljust(w) for c, w in zip(header, widths)) + "  URL")
    for row, status in zip(rows, statuses):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)) + "  " + row[3])
        if status.error:
            print(f"  {symbols_for(sys.stdout)['why']} {status.error}")
    bad = [f"{s.repo_id} ({row[1]})" for row, s in zip(rows, statuses) if not s.running]
    noun = "Space" if len(rows) == 1 else "Spaces"
    print(f"{len(rows)} {noun}, {len(bad)} not running" + (f": {', '.join(bad)}" if bad else ""))
    return EXIT_FAILED if bad else EXIT_OK


def cmd_rollback(args: argparse.Namespace, extra: Sequence[str]) -> int:
    """Restores the files of ``--to`` in one new commit (``rollback.rollback``) and says what changed."""
    from beam_pusher.commit import Committer
    from beam_pusher.rollback import rollback
    from beam_pusher.spec import ChangeAction

    repo_id, marks = args.repo_id, symbols_for(sys.stdout)
    committer = Committer(connect(endpoint_from(args), token_from(args), need_token=True))
    try:
        done = rollback(committer, repo_id, args.to, repo_type=args.repo_type, message=args.message,
                        dry_run=args.dry_run, keep=args.keep)
    except PushError as exc:
        print(f"{marks['fail']} {repo_id}  rollback failed: {exc}")
        return EXIT_FAILED
    target, outcome = done.target[:7], done.commit
    if not outcome.changes:
        print(f"{repo_id}: already has the files of {target}; no commit needed.")
    elif done.dry_run:
        print(f"{repo_id}: rolling back to {target} would make these changes (dry run, nothing written):")
        for c in outcome.changes:
            print(f"    {c.action.mark} {c.path}")
    else:
        counts = " ".join(f"{a.mark}{outcome.count(a)}" for a in ChangeAction)
        print(f"{marks['ok']} {repo_id}  rolled back to {target} with commit {(outcome.head or '-')[:7]}  {counts}")
    return EXIT_OK


def cmd_merge(args: argparse.Namespace, extra: Sequence[str]) -> int:
    """Merges the open pull requests of ``deploy --pr`` (``pullrequests.merge_pull_requests``), one line each."""
    from beam_pusher.commit import Committer
    from beam_pusher.pullrequests import merge_pull_requests

    config = load_selected(args.config, args.only, check_secrets=False)
    api = connect(endpoint_from(args, config.endpoint), token_from(args, config.token), need_token=True)
    marks = symbols_for(sys.stdout)
    results = merge_pull_requests(Committer(api), [spec.repo_id for spec in config.specs], comment=args.comment)
    for r in results:
        if r.error:
            print(f"{marks['fail']} {r.repo_id}  not merged: {r.error.replace(f'{r.repo_id}: ', '')}")
        elif r.merged:
            print(f"{marks['ok']} {r.repo_id}  merged pull request #{r.pr_num} into main at {(r.commit_id or '-')[:7]}"
                  f"  {r.pr_url}")
        else:
            print(f"{marks['plan']} {r.repo_id}  no open pull request")
    merged, failed = sum(r.merged for r in results), sum(bool(r.error) for r in results)
    print(f"{len(results)} {'Space' if len(results) == 1 else 'Spaces'}: {merged} merged, "
          f"{len(results) - merged - failed} without a pull request, {failed} failed")
    return EXIT_FAILED if failed else EXIT_OK


def cmd_logs(args: argparse.Namespace, extra: Sequence[str]) -> int:
    """Prints one Space's run log (``--build``: its build log); ``--follow`` until the Hub closes the stream."""
    from beam_pusher.builds import space_logs
    from beam_pusher.commit import Committer

    committer, repo_id = Committer(connect(endpoint_from(args), token_from(args), need_token=False)), args.repo_id
    lines = space_logs(committer.api, repo_id, build=args.build, follow=args.follow)
    try:
        if not args.follow:  # read whole, under the retry policy; a followed stream is printed as it comes
            lines = iter(committer.call(repo_id, "read the Space's logs", lambda: list(lines)))
        for line in lines:
            print(line, flush=args.follow)
    except PushError as exc:
        print(f"{symbols_for(sys.stdout)['fail']} {repo_id}  {exc}")
        return EXIT_FAILED
    except Exception as exc:  # noqa: BLE001 - a followed stream that broke off: one line, not a traceback
        print(f"{symbols_for(sys.stdout)['fail']} {repo_id}  cannot read the Space's logs: "
              f"{committer.describe(exc, repo_id)}")
        return EXIT_FAILED
    return EXIT_OK


def cmd_restart(args: argparse.Namespace, extra: Sequence[str]) -> int:
    """Restarts the config's Spaces matching ``--only`` (``--factory``: rebuilt from scratch); one line per Space."""
    from beam_pusher.builds import restart_space
    from beam_pusher.commit import Committer

    config = load_selected(args.config, args.only, check_secrets=False)
    api = connect(endpoint_from(args, config.endpoint), token_from(args, config.token), need_token=True)
    committer = Committer(api)
    marks, failed = symbols_for(sys.stdout), 0
    for spec in config.specs:
        try:
            stage = restart_space(committer, spec.repo_id, factory_reboot=args.factory)
        except PushError as exc:
            failed += 1
            print(f"{marks['fail']} {spec.repo_id}  restart failed: {str(exc).replace(f'{spec.repo_id}: ', '')}")
            continue
        print(f"{marks['ok']} {spec.repo_id}  {'factory ' if args.factory else ''}restarted  {stage}")
    noun = "Space" if len(config.specs) == 1 else "Spaces"
    print(f"{len(config.specs)} {noun}: {len(config.specs) - failed} restarted, {failed} failed")
    return EXIT_FAILED if failed else EXIT_OK


COMMANDS = {
    "status": cmd_status, "rollback": cmd_rollback, "merge": cmd_merge, "logs": cmd_logs, "restart": cmd_restart,
}
"""Command name -> function(args, extra) -> exit status."""
