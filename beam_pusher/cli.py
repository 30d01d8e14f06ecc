"""``beam-pusher`` (``python -m beam_pusher``): deploy many Spaces from one config file, and the tools around it.

Exit status: 0 when every Space is fine, 1 when some Space failed, 2 for bad usage or a bad config, 130 when a deploy
was stopped by SIGINT (Ctrl-C) or SIGTERM: the first signal lets the commits already sent finish and still prints the
summary and writes the report, with every Space's state; a second one stops at once (``stopping.stop_on_signals``).

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
import re
import shlex
import sys
import time
import warnings
from collections.abc import Iterator, Sequence

from beam_pusher import stopping
from beam_pusher.cli_args import (
    BEAM_COMMANDS,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    PASS_THROUGH_COMMANDS,
    build_parser,
    build_parsers,
    connect,
    declared_flags,
    endpoint_from,
    hub_api,
    hub_serve_parser,
    is_local,
    load_selected,
    pipeline_options,
    token_from,
    verbosity,
)
from beam_pusher.cli_spaces import COMMANDS as SPACE_COMMANDS
from beam_pusher.errors import BeamPusherError, ConfigError, PushError, SpecError
from beam_pusher.report import ConsoleReport, check_report_path, write_report
from beam_pusher.runner import (
    describe_runner,
    job_only_outcome,
    options_kind,
    run_deploy,
    runner_kind,

)
from beam_pusher.spec import Outcome, PushResult, SpaceSpec

__all__ = ["EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "build_parser", "main", "pipeline_options"]

logger = logging.getLogger(__name__)


# What the push step logs per Space is in the table already; at default verbosity only errors of it show.
_WORKER_LOGGERS = ("beam_pusher.hub", "beam_pusher.spacefiles", "beam_pusher.transforms")

# Libraries log at WARNING unless -vv: at INFO, Beam prints screens of type hints and the HTTP client a line a request.
_LIBRARY_LOGGERS = ("apache_beam", "fsspec", "httpcore", "httpx", "httpx2", "huggingface_hub", "urllib3")
# Logged on every run by some installs (Beam without its optional Dataflow client, Python 3.12+), and nothing the
# user can act on; shown with -vv.
_NOISE = ("apitools not found",)


class _DropNoise(logging.Filter):
    """Drops the library messages of ``_NOISE``."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(_NOISE)


@contextlib.contextmanager
def _logging(verbosity: int) -> Iterator[None]:
    """Log levels for one command, put back afterwards (``main`` may run inside a bigger program or a test)."""
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    levels = {"beam_pusher": level}
    if verbosity <= 0:
        # A failed Space is explained in the table; the per-Space warning logged on the worker would say it twice.
        levels.update({name: logging.ERROR for name in _WORKER_LOGGERS})
    levels.update({name: logging.WARNING if verbosity < 2 else logging.INFO for name in _LIBRARY_LOGGERS})
    previous = {name: logging.getLogger(name).level for name in levels}
    for name, value in levels.items():
        logging.getLogger(name).setLevel(value)
    noise = _DropNoise()
    if verbosity < 2:
        logging.getLogger().addFilter(noise)  # that message is logged on the root logger itself
    try:
        with warnings.catch_warnings():
            # Google client libraries warn about the Python version at import; not the user's concern here.
            warnings.filterwarnings("ignore", message=".*non-supported Python version.*", category=FutureWarning)
            yield
    finally:
        logging.getLogger().removeFilter(noise)
        for name, value in previous.items():
            logging.getLogger(name).setLevel(value)


@contextlib.contextmanager
def _without_hub_progress_bars() -> Iterator[None]:
    """huggingface_hub's progress bars off while a pipeline runs: the report is the one progress display.

    Its bars (one per uploaded file, from many Spaces at once) tangle on stderr, and on a terminal leave blank lines
    behind. Off in this process and, through the environment, in the workers a local runner starts; a user's own
    ``HF_HUB_DISABLE_PROGRESS_BARS`` is left as it is.
    """
    if "HF_HUB_DISABLE_PROGRESS_BARS" in os.environ:
        yield
        return
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    were_disabled = are_progress_bars_disabled()
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    disable_progress_bars()
    try:
        yield
    finally:
        os.environ.pop("HF_HUB_DISABLE_PROGRESS_BARS", None)
        if not were_disabled:
            enable_progress_bars()


def _details_hint(args: argparse.Namespace) -> str:
    """Where to add -vv: the command as given, run again (``beam-pusher -vv deploy configs/spaces.yaml ...``)."""
    rest = [a for a in args.argv if not re.fullmatch(r"-v+|--verbose", a)]
    return f"for details, run it again with -vv: {shlex.join(['beam-pusher', '-vv', *rest])}"


def main(argv: Sequence[str] | None = None) -> int:
    """Runs a command; returns the exit status (0 all fine, 1 some Space failed or was deferred for its commit quota,
    2 bad usage or config, 130 a deploy stopped by a signal)."""
    started = time.monotonic()  # the summary shows the run's wall time, Beam's start-up included
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
    args.argv, args.started = argv, started
    with _logging(verbosity(args)):
        return _dispatch(args, extra, commands)


def _dispatch(args: argparse.Namespace, extra: list[str], commands: dict[str, argparse.ArgumentParser]) -> int:
    try:
        if args.command in BEAM_COMMANDS:
            # Checked before anything is loaded: a mistyped --only must not reach Beam and deploy every Space.
            pipeline_options(extra, command=args.command, own_flags=declared_flags(commands[args.command]))
        if getattr(args, "report", None):
            check_report_path(args.report)  # before anything is written to the Hub
        return _COMMANDS[args.command](args, extra)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_USAGE
    except PushError as exc:  # the Hub, not the usage: e.g. unreachable, said once for the whole run
        print(f"beam-pusher: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except BeamPusherError as exc:
        return _usage(str(exc))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - e.g. the Hub unreachable: one line, the traceback with -vv
        logger.debug("%s failed", args.command, exc_info=True)
        first = (str(exc).splitlines() or [""])[0]
        print(f"beam-pusher: {args.command} failed: {type(exc).__name__}: {first}; {_details_hint(args)}",
              file=sys.stderr)
        return EXIT_FAILED


def _usage(message: str) -> int:
    print(f"beam-pusher: error: {message}", file=sys.stderr)
    return EXIT_USAGE


# -- deploy, plan, push --------------------------------------------------------------------------------------------


def _exit_status(results: Sequence[PushResult]) -> int:
    # A Space deferred for its commit quota is not deployed: the run exits 1, as for a failure, so CI notices.
    return EXIT_FAILED if any(r.error or r.outcome is Outcome.DEFERRED for r in results) else EXIT_OK


def _run_specs(args: argparse.Namespace, extra: Sequence[str], specs, *, endpoint, token, dry_run, base_dir) -> int:
    options = pipeline_options(extra, command=args.command)
    logger.info("Beam pipeline options: %s", options.get_all_options(drop_default=True, retain_unknown_options=True))
    expected = [s.repo_id for s in specs]
    report = ConsoleReport(total=len(specs), endpoint=endpoint, dry_run=dry_run, started=args.started)
    arrived: dict[str, PushResult] = {}  # what is known, should the run be given up before it ends

    def on_result(result: PushResult) -> None:
        arrived[result.repo_id] = result
        report.add(result)

    def give_up(reason: str) -> None:
        print(f"beam-pusher: {reason}; not waiting for the pipeline.", file=sys.stderr)
        _finish(args, report, list(arrived.values()), expected, missing=_STATE_UNKNOWN)

    with stopping.stop_on_signals(options_kind(options), on_signal=_say_stopping, on_give_up=give_up) as interruption:
        report.start(runner=describe_runner(options))
        try:
            with contextlib.closing(report), _without_hub_progress_bars():  # the progress bar stops however it ends
                results = run_deploy(
                    specs, pipeline_args=options, on_result=on_result, endpoint=endpoint, token=token, dry_run=dry_run,
                    wait=getattr(args, "wait", False), wait_timeout=getattr(args, "wait_timeout", 600.0),
                    base_dir=base_dir, create_pr=getattr(args, "pr", False),
                )
        except BeamPusherError:
            raise
        except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - one line instead of the runner's traceback
            if interruption.signal_name is None:
                if isinstance(exc, KeyboardInterrupt):
                    raise
                logger.debug("pipeline failure", exc_info=True)
                print(f"beam-pusher: the pipeline failed: {type(exc).__name__}: {exc}; {_details_hint(args)}",
                      file=sys.stderr)
                return EXIT_FAILED
            results = list(arrived.values())  # a runner elsewhere was stopped: what came back is all that is known
    if interruption.signal_name is None:
        outcome = job_only_outcome(options)
        if outcome:  # Dataflow's --dry_run / --template_location: the job was built, nothing ran
            print(f"{outcome} for {len(specs)} {'Space' if len(specs) == 1 else 'Spaces'}; nothing was pushed.")
            return EXIT_OK
        return _exit_status(_finish(args, report, results, expected))
    unknown = len(set(expected) - {r.repo_id for r in results})
    results = _finish(args, report, results, expected, missing=_STATE_UNKNOWN)
    left = unknown + sum(1 for r in results if r.skipped)
    print(f"beam-pusher: stopped by {interruption.signal_name}"
          + (f"; {left} of {len(results)} Spaces not done: deploy again to finish them." if left else "."),
          file=sys.stderr)
    return EXIT_INTERRUPTED


_STATE_UNKNOWN = (
    "state unknown: the run was stopped before its result came back, so its commit (all or nothing) may or may not "
    "have been made; deploy again to converge."
)


def _say_stopping(signal_name: str, waits: bool) -> None:
    if waits:
        grace = stopping.STOP_GRACE_SECONDS
        text = (f"{signal_name}: starting no new pushes; waiting up to {grace:g} s for the commits "
                "already sent (send it again to stop at once)")
    else:
        text = (f"{signal_name}: stopping the pipeline; its workers run in other processes, so a Space whose result "
                "has not come back may or may not be committed")
    print(f"\nbeam-pusher: {text}.", file=sys.stderr)  # on a line of its own, not after the ^C the terminal echoed


def _finish(args, report: ConsoleReport, results, expected, *, missing: str | None = None) -> list[PushResult]:
    """Prints the table and the summary, writes ``--report``; returns one result per Space of ``expected``."""
    results = report.finish(results, expected, missing=missing)
    if args.report:
        write_report(args.report, results)
        print(f"Report: {args.report}")
    return results


def _cmd_deploy(args: argparse.Namespace, extra: Sequence[str], *, dry_run: bool = False) -> int:
    local = is_local(extra)
    config = load_selected(args.config, args.only, check_secrets=local, remote=not local)
    endpoint = endpoint_from(args, config.endpoint)
    token = token_from(args, config.token, local=local)
    if local:  # remote workers may reach a Hub, and hold a token, that this machine does not
        connect(endpoint, token, need_token=not dry_run)
    base_dir = os.path.dirname(config.path) if config.path else None
    return _run_specs(args, extra, config.specs, endpoint=endpoint, token=token, dry_run=dry_run, base_dir=base_dir)


def _cmd_plan(args: argparse.Namespace, extra: Sequence[str]) -> int:
    return _cmd_deploy(args, extra, dry_run=True)


def _cmd_push(args: argparse.Namespace, extra: Sequence[str]) -> int:
    from beam_pusher import sources

    local = is_local(extra)
    endpoint = endpoint_from(args)
    token = token_from(args, local=local)
    placeholders = {}
    for item in args.option:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SpecError(f"--option {item!r} is not KEY=VALUE; write e.g. --option TEXT_FEATURE=text.")
        placeholders[key] = value
    sources.resolve_app_path(args.app_path, check=False)  # a missing folder is a usage error, as in a config
    api = connect(endpoint, token, need_token=True) if local else None
    username = args.username or _whoami(api or hub_api(endpoint, token))
    spec = SpaceSpec(
        repo_id=f"{username}/{args.repo_name}", app_path=args.app_path, space_sdk=args.space_sdk,
        model_path=args.model_path, model_hub_repo_id=args.model_hub_repo_id,
        model_hub_repo_branch=args.model_hub_repo_branch, placeholders=placeholders, private=args.private or None,
        hardware=args.hardware, commit_message=args.commit_message,
    )
    return _run_specs(args, extra, [spec], endpoint=endpoint, token=token, dry_run=False, base_dir=os.getcwd())


def _whoami(api) -> str:
    try:
        return api.whoami()["name"]
    except BeamPusherError:
        raise
    except Exception as exc:  # noqa: BLE001 - explained as a usage problem
        raise SpecError(
            f"--username not given and the Hub did not say who the token belongs to ({type(exc).__name__}); "
            "pass --username or check the token."
        ) from None


# -- validate, status, rollback, hub serve, demo -------------------------------------------------------------------


def _cmd_validate(args: argparse.Namespace, extra: Sequence[str]) -> int:
    remote = bool(args.runner) and not runner_kind(args.runner).is_local
    config = load_selected(args.config, check_secrets=not args.skip_secrets, remote=remote)
    noun = "Space" if len(config.specs) == 1 else "Spaces"
    print(f"{args.config}: valid, {len(config.specs)} {noun}")
    width = max(len(s.repo_id) for s in config.specs)
    for spec in config.specs:
        model = spec.model_hub_repo_id or spec.model_path
        if model and spec.model_hub_repo_branch:
            model += f"@{spec.model_hub_repo_branch}"
        model = f"  model {model}" if model else ""
        print(f"  {spec.repo_id.ljust(width)}  {spec.space_sdk:<9}  {spec.app_path}{model}")
    if config.warnings:
        print(f"{len(config.warnings)} warning{'s' if len(config.warnings) != 1 else ''}:")
        for warning in config.warnings:
            print(f"  {warning}")
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
    **SPACE_COMMANDS,
    "deploy": _cmd_deploy,
    "plan": _cmd_plan,
    "validate": _cmd_validate,
    "push": _cmd_push,
    "hub": _cmd_hub,
    "demo": _cmd_demo,
}
