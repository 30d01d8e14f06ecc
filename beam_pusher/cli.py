"""``beam-pusher`` (``python -m beam_pusher``): deploy many Spaces from one config file, and the tools around it.

Exit status: 0 when every Space is fine, 1 when some Space failed, 2 for bad usage or a bad config.

Endpoint and token follow huggingface_hub: ``HF_ENDPOINT``, ``HF_TOKEN`` or the cached login; a config's
``endpoint``/``token`` keys come next, and ``--endpoint`` / ``--token-env NAME`` override both. The token stays a
reference (``env:NAME``) that pipeline workers resolve; this process reads it only for the commands that talk to the
Hub themselves (``status``, ``rollback``, ``push`` without ``--username``) and never prints it.

The parsers and the Beam flags are ``cli_args``; running the pipeline is ``runner.run_deploy`` and printing its
results ``report.ConsoleReport``, composed here. Beam and huggingface_hub are imported only by the commands that need
them: ``--help`` is instant, and the demo can set ``HF_HUB_DISABLE_XET`` before huggingface_hub reads it at import.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator, Sequence

from beam_pusher import rules
from beam_pusher.cli_args import (
    BEAM_COMMANDS,
    PASS_THROUGH_COMMANDS,
    build_parser,
    build_parsers,
    declared_flags,
    hub_serve_parser,
    pipeline_options,
)
from beam_pusher.errors import BeamPusherError, ConfigError, SpecError
from beam_pusher.report import ConsoleReport, symbols_for, write_report
from beam_pusher.runner import describe_runner, run_deploy, runner_flag, runner_kind
from beam_pusher.spec import PushResult, SpaceSpec

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "build_parser", "main", "pipeline_options"]

logger = logging.getLogger(__name__)

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


@contextlib.contextmanager
def _logging(verbosity: int) -> Iterator[None]:
    """Log levels for one command, put back afterwards (``main`` may run inside a bigger program or a test)."""
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    levels = {"beam_pusher": level}
    if verbosity <= 0:
        # A failed Space is explained in the table; the per-Space warning logged on the worker would say it twice.
        levels.update({"beam_pusher.hub": logging.ERROR, "beam_pusher.transforms": logging.ERROR})
    previous = {name: logging.getLogger(name).level for name in levels}
    for name, value in levels.items():
        logging.getLogger(name).setLevel(value)
    try:
        with warnings.catch_warnings():
            # Google client libraries warn about the Python version at import; not the user's concern here.
            warnings.filterwarnings("ignore", message=".*non-supported Python version.*", category=FutureWarning)
            yield
    finally:
        for name, value in previous.items():
            logging.getLogger(name).setLevel(value)


def main(argv: Sequence[str] | None = None) -> int:
    """Runs a command; returns the exit status (0 all fine, 1 some Space failed, 2 bad usage or config)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:2] == ["hub", "serve"]:
        return _hub_serve(argv[2:])
    parser, commands = build_parsers()
    try:
        args, extra = parser.parse_known_args(argv)
    except SystemExit as exc:  # --help, --version (0) and argparse's own usage errors (2)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if extra and args.command not in PASS_THROUGH_COMMANDS:
        return _usage(f"{args.command}: unknown arguments {' '.join(extra)}; see 'beam-pusher {args.command} --help'.")
    with _logging(args.verbose):
        return _dispatch(args, extra, commands)


def _dispatch(args: argparse.Namespace, extra: list[str], commands: dict[str, argparse.ArgumentParser]) -> int:
    try:
        if args.command in BEAM_COMMANDS:
            # Checked before anything is loaded: a mistyped --only must not reach Beam and deploy every Space.
            pipeline_options(extra, command=args.command, own_flags=declared_flags(commands[args.command]))
        return _COMMANDS[args.command](args, extra)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_USAGE
    except BeamPusherError as exc:
        return _usage(str(exc))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - e.g. the Hub unreachable: one line, the traceback with -vv
        logger.debug("%s failed", args.command, exc_info=True)
        first = (str(exc).splitlines() or [""])[0]
        message = f"beam-pusher: {args.command} failed: {type(exc).__name__}: {first} (run with -vv for details)"
        print(message, file=sys.stderr)
        return EXIT_FAILED


def _usage(message: str) -> int:
    print(f"beam-pusher: error: {message}", file=sys.stderr)
    return EXIT_USAGE


# -- endpoint, token, runner ----------------------------------------------------------------------------------------


def _endpoint(args: argparse.Namespace, config_endpoint: str | None = None) -> str | None:
    """``--endpoint``, else the config's, else ``HF_ENDPOINT`` (passed on explicitly, so remote workers use it too)."""
    for field, value in (
        ("--endpoint", args.endpoint),
        ("the config's endpoint", config_endpoint),
        ("HF_ENDPOINT", os.environ.get("HF_ENDPOINT")),
    ):
        if value:
            return rules.check_endpoint(value, field=field)
    return None


def _token(args: argparse.Namespace, config_token: str | None = None, *, local: bool = True) -> str | None:
    """The token *reference*: ``env:NAME`` from ``--token-env``, else the config's, else None (HF_TOKEN / login)."""
    if not args.token_env:
        return config_token
    name = args.token_env
    if name.startswith("hf_") or (len(name) > 24 and not name.isupper()):
        # Most likely the token itself: say so without echoing it.
        raise SpecError(
            "--token-env takes the name of an environment variable (like HF_TOKEN), and the value given looks like a "
            "token (not shown); give the variable's name, never the token itself."
        )
    if not rules.is_env_name(name):
        raise SpecError(
            f"--token-env takes the name of an environment variable (like HF_TOKEN), got {name!r}; give the "
            "variable's name, never the token itself."
        )
    if local and name not in os.environ:
        raise SpecError(
            f"--token-env {name}: the environment variable {name} is not set; export it, or choose another variable."
        )
    return f"env:{name}"


def _is_local(beam_args: Sequence[str]) -> bool:
    """Whether the pipeline runs on this machine, where ``env:NAME`` references resolve as they do here."""
    return runner_kind(runner_flag(beam_args)).is_local


# -- deploy, plan, push --------------------------------------------------------------------------------------------


def _exit_status(results: Sequence[PushResult]) -> int:
    return EXIT_FAILED if any(r.error for r in results) else EXIT_OK


def _load(path: str, only: Sequence[str] = (), *, check_secrets: bool = True):
    from beam_pusher.config import load_config

    config = load_config(path, check_secrets=check_secrets)
    selected = config.select(only)
    if not selected.specs:
        raise SpecError(
            f"--only {' '.join(only)} matches none of the Spaces in {path} ({', '.join(config.repo_ids)}); "
            "a pattern without '/' matches the name, with '/' the whole repo id."
        )
    return selected


def _run_specs(args: argparse.Namespace, extra: Sequence[str], specs, *, endpoint, token, dry_run, base_dir) -> int:
    options = pipeline_options(extra, command=args.command)
    logger.info("Beam pipeline options: %s", options.get_all_options(drop_default=True, retain_unknown_options=True))
    report = ConsoleReport(total=len(specs), endpoint=endpoint, dry_run=dry_run)
    report.start(runner=describe_runner(options))
    wait, wait_timeout = getattr(args, "wait", False), getattr(args, "wait_timeout", 600.0)
    try:
        with contextlib.closing(report):  # the progress bar stops however the run ends
            results = run_deploy(
                specs, pipeline_args=options, on_result=report.add, endpoint=endpoint, token=token, dry_run=dry_run,
                wait=wait, wait_timeout=wait_timeout, base_dir=base_dir,
            )
    except BeamPusherError:
        raise
    except Exception as exc:  # noqa: BLE001 - the runner's failure, shown as one line instead of a traceback
        logger.debug("pipeline failure", exc_info=True)
        print(f"beam-pusher: the pipeline failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    results = report.finish(results, [s.repo_id for s in specs])  # a Space the pipeline lost counts as failed
    if args.report:
        write_report(args.report, results)
        print(f"Report: {args.report}")
    return _exit_status(results)


def _cmd_deploy(args: argparse.Namespace, extra: Sequence[str], *, dry_run: bool = False) -> int:
    local = _is_local(extra)
    config = _load(args.config, args.only, check_secrets=local)
    endpoint = _endpoint(args, config.endpoint)
    token = _token(args, config.token, local=local)
    base_dir = os.path.dirname(config.path) if config.path else None
    return _run_specs(args, extra, config.specs, endpoint=endpoint, token=token, dry_run=dry_run, base_dir=base_dir)


def _cmd_plan(args: argparse.Namespace, extra: Sequence[str]) -> int:
    return _cmd_deploy(args, extra, dry_run=True)


def _cmd_push(args: argparse.Namespace, extra: Sequence[str]) -> int:
    local = _is_local(extra)
    endpoint = _endpoint(args)
    token = _token(args, local=local)
    placeholders = {}
    for item in args.option:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SpecError(f"--option {item!r} is not KEY=VALUE; write e.g. --option TEXT_FEATURE=text.")
        placeholders[key] = value
    username = args.username or _whoami(endpoint, token)
    spec = SpaceSpec(
        repo_id=f"{username}/{args.repo_name}", app_path=args.app_path, space_sdk=args.space_sdk,
        model_path=args.model_path, model_hub_repo_id=args.model_hub_repo_id,
        model_hub_repo_branch=args.model_hub_repo_branch, placeholders=placeholders, private=args.private,
        hardware=args.hardware, commit_message=args.commit_message,
    )
    return _run_specs(args, extra, [spec], endpoint=endpoint, token=token, dry_run=False, base_dir=os.getcwd())


def _api(endpoint: str | None, token: str | None):
    """An ``HfApi`` for commands that talk to the Hub from this process (the token is resolved here)."""
    from huggingface_hub import HfApi

    from beam_pusher.auth import resolve_token

    return HfApi(endpoint=endpoint, token=resolve_token(token))


def _whoami(endpoint: str | None, token: str | None) -> str:
    try:
        return _api(endpoint, token).whoami()["name"]
    except BeamPusherError:
        raise
    except Exception as exc:  # noqa: BLE001 - explained as a usage problem
        raise SpecError(
            f"--username not given and the Hub did not say who the token belongs to ({type(exc).__name__}); "
            "pass --username or check the token."
        ) from None


# -- validate, status, rollback, hub serve, demo -------------------------------------------------------------------


def _cmd_validate(args: argparse.Namespace, extra: Sequence[str]) -> int:
    config = _load(args.config, check_secrets=not args.skip_secrets)
    noun = "Space" if len(config.specs) == 1 else "Spaces"
    print(f"{args.config}: valid, {len(config.specs)} {noun}")
    width = max(len(s.repo_id) for s in config.specs)
    for spec in config.specs:
        model = spec.model_hub_repo_id or spec.model_path
        if model and spec.model_hub_repo_branch:
            model += f"@{spec.model_hub_repo_branch}"
        model = f"  model {model}" if model else ""
        print(f"  {spec.repo_id.ljust(width)}  {spec.space_sdk:<9}  {spec.app_path}{model}")
    return EXIT_OK


_FAILED_STAGES = {"BUILD_ERROR", "RUNTIME_ERROR", "CONFIG_ERROR", "NO_APP_FILE", "NOT FOUND", "ERROR"}


def _cmd_status(args: argparse.Namespace, extra: Sequence[str]) -> int:
    from concurrent.futures import ThreadPoolExecutor

    from huggingface_hub.errors import RepositoryNotFoundError

    config = _load(args.config, args.only, check_secrets=False)
    api = _api(_endpoint(args, config.endpoint), _token(args, config.token))

    def stage_of(spec: SpaceSpec) -> tuple[str, str, str]:
        try:
            runtime = api.get_space_runtime(spec.repo_id)
        except RepositoryNotFoundError:
            return "NOT FOUND", "-", "the Space does not exist (deploy it first)"
        except Exception as exc:  # noqa: BLE001 - one unreachable Space does not hide the others
            return "ERROR", "-", f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        stage = str(getattr(runtime.stage, "value", runtime.stage))
        hardware = runtime.hardware or runtime.requested_hardware or "-"
        return stage, str(getattr(hardware, "value", hardware)), ""

    with ThreadPoolExecutor(max_workers=8) as pool:
        stages = list(pool.map(stage_of, config.specs))
    rows = [(spec.repo_id, stage, hardware, f"{api.endpoint}/spaces/{spec.repo_id}")
            for spec, (stage, hardware, _) in zip(config.specs, stages)]  # fmt: skip
    header = ("Space", "Stage", "Hardware", "URL")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(3)]
    print("  ".join(c.ljust(w) for c, w in zip(header, widths)) + "  URL")
    for row, (_, _, note) in zip(rows, stages):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)) + "  " + row[3])
        if note:
            print(f"  {symbols_for(sys.stdout)['why']} {note}")
    bad = [row[0] for row in rows if row[1] in _FAILED_STAGES]
    noun = "Space" if len(rows) == 1 else "Spaces"
    print(f"{len(rows)} {noun}, {len(bad)} not running" + (f": {', '.join(bad)}" if bad else ""))
    return EXIT_FAILED if bad else EXIT_OK


def _cmd_rollback(args: argparse.Namespace, extra: Sequence[str]) -> int:
    """Plans the tree at ``--to`` against the head, downloads only the files that differ, commits once."""
    from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError

    from beam_pusher.hub import HubSettings, SpacePusher, plan_changes, remote_tree
    from beam_pusher.spec import AppFile, validate_repo_id

    repo_id, repo_type = validate_repo_id(args.repo_id), args.repo_type
    pusher = SpacePusher(HubSettings(endpoint=_endpoint(args), token=_token(args)))
    api = pusher.api
    try:
        target = api.repo_info(repo_id, repo_type=repo_type, revision=args.to).sha
        head = api.repo_info(repo_id, repo_type=repo_type).sha
    except RepositoryNotFoundError:
        raise SpecError(f"{repo_id}: no such {repo_type} on {api.endpoint} (or the token cannot see it); "
                        "check REPO_ID and --repo-type.") from None  # fmt: skip
    except RevisionNotFoundError:
        raise SpecError(f"{repo_id}: no commit {args.to!r}; list the commits with "
                        "HfApi().list_repo_commits() or on the repository's history page.") from None  # fmt: skip
    old = remote_tree(api, repo_id, repo_type=repo_type, revision=target)
    current = remote_tree(api, repo_id, repo_type=repo_type, revision=head)
    marks = symbols_for(sys.stdout)
    with tempfile.TemporaryDirectory(prefix="beam-pusher-rollback-") as tmp:
        files = [AppFile(repo_id, f.path, f.size, source=os.path.join(tmp, f.path), sha256=f.sha256,
                         git_sha1=f.git_sha1) for f in old.values()]  # fmt: skip
        changes, _ = plan_changes(files, current)
        if not changes:
            print(f"{repo_id}: already has the files of {target[:7]}; no commit needed.")
            return EXIT_OK
        if args.dry_run:
            print(f"{repo_id}: rolling back to {target[:7]} would make these changes (dry run, nothing written):")
            for c in changes:
                print(f"    {dict(add='+', update='~', delete='-')[c.action]} {c.path}")
            return EXIT_OK
        for change in changes:
            if change.action != "delete":  # streamed to disk, LFS files included
                api.hf_hub_download(repo_id, change.path, repo_type=repo_type, revision=target, local_dir=tmp)
        try:
            outcome = pusher.commit_files(repo_id, files, repo_type=repo_type,
                                          commit_message=args.message or f"Roll back to {target[:7]}")  # fmt: skip
        except BeamPusherError as exc:
            print(f"{marks['fail']} {repo_id}  rollback failed: {exc}")
            return EXIT_FAILED
    counts = {a: sum(1 for c in outcome.changes if c.action == a) for a in ("add", "update", "delete")}
    print(f"{marks['ok']} {repo_id}  rolled back to {target[:7]} with commit {(outcome.head or '-')[:7]}  "
          f"+{counts['add']} ~{counts['update']} -{counts['delete']}")  # fmt: skip
    return EXIT_OK


def _hub_serve(rest: list[str]) -> int:
    if "-h" in rest or "--help" in rest:
        hub_serve_parser().print_help()
        return EXIT_OK
    from beam_pusher.localhub.serve import serve_command

    return serve_command(rest)


def _cmd_hub(args: argparse.Namespace, extra: Sequence[str]) -> int:
    return _hub_serve(list(extra))  # reached only for 'hub serve' spelled with options before it


def _cmd_demo(args: argparse.Namespace, extra: Sequence[str]) -> int:
    from beam_pusher.demo import run_demo

    return run_demo(wait=args.wait)


_COMMANDS = {
    "deploy": _cmd_deploy,
    "plan": _cmd_plan,
    "validate": _cmd_validate,
    "push": _cmd_push,
    "status": _cmd_status,
    "rollback": _cmd_rollback,
    "hub": _cmd_hub,
    "demo": _cmd_demo,
}
