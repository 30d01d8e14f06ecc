"""``beam-pusher`` (``python -m beam_pusher``): deploy many Spaces from one config file, and the tools around it.

Exit status: 0 when every Space is fine, 1 when some Space failed, 2 for bad usage or a bad config.

Endpoint and token follow huggingface_hub: ``HF_ENDPOINT``, ``HF_TOKEN`` or the cached login; a config's
``endpoint``/``token`` keys come next, and ``--endpoint`` / ``--token-env NAME`` override both. The token stays a
reference (``env:NAME``) that pipeline workers resolve; this process reads it only for the commands that talk to the
Hub themselves (``status``, ``rollback``, ``push`` without ``--username``) and never prints it.

Beam and huggingface_hub are imported only by the commands that need them: ``--help`` is instant, and the demo can
set ``HF_HUB_DISABLE_XET`` before huggingface_hub reads it at import.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import io
import logging
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Iterator, Sequence

from beam_pusher import __version__
from beam_pusher.errors import BeamPusherError, ConfigError, SpecError
from beam_pusher.report import LOCAL_RUNNERS, deploy_and_report, symbols_for, write_report
from beam_pusher.spec import SDKS, PushResult, SpaceSpec

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "build_parser", "main", "pipeline_options"]

logger = logging.getLogger(__name__)

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_BEAM_COMMANDS = ("deploy", "plan", "push")
_PASS_THROUGH = (*_BEAM_COMMANDS, "hub")
_RAW = argparse.RawDescriptionHelpFormatter

_MAIN_EPILOG = """examples:
  beam-pusher validate configs/spaces.yaml
  beam-pusher plan configs/spaces.yaml --only 'penguin-*'
  beam-pusher deploy configs/spaces.yaml --report deploy.json
  beam-pusher deploy configs/spaces.yaml --runner DataflowRunner --project P --region R --temp_location gs://b/tmp
  beam-pusher demo

Run 'beam-pusher COMMAND --help' for a command's options."""
_DEPLOY_EPILOG = """Any other --flag goes to Beam's PipelineOptions (put them after CONFIG, or write --flag=value).
Without --runner the pipeline runs in this process on FnApiRunner (DirectRunner's batch engine, in_memory),
pushing up to 16 Spaces at once.

examples:
  beam-pusher deploy configs/spaces.yaml
  beam-pusher deploy configs/spaces.yaml --only 'user/penguin-*' --wait --report deploy.json
  beam-pusher deploy configs/spaces.yaml --direct_running_mode=multi_processing --direct_num_workers=2
  beam-pusher deploy configs/spaces.yaml --runner DataflowRunner --project my-project \\
      --region europe-west1 --temp_location gs://my-bucket/tmp --token-env HF_TOKEN"""
_PLAN_EPILOG = """Plans against each Space's current files and lists, per Space, the files a deploy would add (+),
update (~) and delete (-), and whether it would make a commit. Nothing is written to the Hub.

examples:
  beam-pusher plan configs/spaces.yaml
  beam-pusher plan configs/spaces.yaml --only penguin-gradio --report plan.json"""
_VALIDATE_EPILOG = """Checks the whole config without touching the Hub and lists every problem with its file and line.

examples:
  beam-pusher validate configs/spaces.yaml
  beam-pusher validate configs/spaces.yaml --skip-secrets   # on a machine that does not deploy"""
_PUSH_EPILOG = """Flags are named like the TFX HFSpacePusher component's parameters.

examples:
  beam-pusher push --username alice --repo-name penguins --app-path apps.gradio.img_classifier \\
      --model-path ./serving_model/1700000000
  beam-pusher push --repo-name reviews --app-path apps.gradio.text_classifier \\
      --model-hub-repo-id alice/review-model --model-hub-repo-branch v3 --option TEXT_FEATURE=text"""
_STATUS_EPILOG = """examples:
  beam-pusher status configs/spaces.yaml
  beam-pusher status configs/spaces.yaml --only 'penguin-*' --endpoint http://127.0.0.1:8080"""
_ROLLBACK_EPILOG = """Makes one new commit whose files equal the files at COMMIT (history is kept, nothing rewritten).

examples:
  beam-pusher rollback alice/penguins --to 3f2a1c4e5d6b7a8990a1b2c3d4e5f60718293a4b
  beam-pusher rollback alice/penguins --to 3f2a1c4e5d6b7a8990a1b2c3d4e5f60718293a4b --dry-run"""
_HUB_EPILOG = """examples:
  beam-pusher hub serve --port 8080 --token hf_local_secret
  beam-pusher hub serve --port 0 --data-dir /tmp/hub      # prints the endpoint first, then serves

Point clients at it with HF_ENDPOINT=<endpoint> and HF_HUB_DISABLE_XET=1 (the local Hub speaks classic LFS)."""
_DEMO_EPILOG = """Starts a local Hub, deploys configs/demo.yaml (three Spaces), then deploys it again to show that
nothing is re-uploaded; stops the Hub and removes its files. Needs a source checkout and TensorFlow (the tfx extra).

example:
  beam-pusher demo"""


def _add_hub_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("Hub")
    group.add_argument("--endpoint", metavar="URL", help="Hub URL (default: the config's, HF_ENDPOINT, huggingface.co)")
    group.add_argument("--token-env", metavar="NAME",
                       help="read the token from the environment variable NAME where the pipeline runs (default: the "
                       "config's token, HF_TOKEN or the huggingface_hub login)")  # fmt: skip


def _add_run_options(parser: argparse.ArgumentParser, *, wait: bool = True) -> None:
    if wait:
        parser.add_argument("--wait", action="store_true", help="wait until each pushed Space runs (or fails)")
        parser.add_argument("--wait-timeout", type=float, default=600.0, metavar="S",
                            help="seconds to wait for that (default 600)")  # fmt: skip
    parser.add_argument("--report", metavar="FILE", help="write every Space's result as JSON to FILE")


def _subparser(sub, name: str, help_text: str, epilog: str, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    return sub.add_parser(name, help=help_text, description=help_text, epilog=epilog, formatter_class=_RAW,
                          parents=[common], allow_abbrev=False)  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command (Beam flags are not declared: they pass through unparsed)."""
    return _build_parsers()[0]


def _build_parsers() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="count", default=0, help="log more (-vv: debug)")
    parser = argparse.ArgumentParser(prog="beam-pusher", description="Deploy ML demo apps to Hugging Face Spaces.",
                                     epilog=_MAIN_EPILOG, formatter_class=_RAW, allow_abbrev=False)  # fmt: skip
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = _subparser(sub, "deploy", "deploy the Spaces of a config file", _DEPLOY_EPILOG, common)
    p.add_argument("config", metavar="CONFIG", help="the YAML config file")
    p.add_argument("--only", action="append", default=[], metavar="PATTERN",
                   help="deploy only Spaces matching this glob (repo id, or name without '/'); repeatable")  # fmt: skip
    _add_run_options(p)
    _add_hub_options(p)

    p = _subparser(sub, "plan", "show what a deploy would change, without writing anything", _PLAN_EPILOG, common)
    p.add_argument("config", metavar="CONFIG", help="the YAML config file")
    p.add_argument("--only", action="append", default=[], metavar="PATTERN", help="plan only matching Spaces")
    _add_run_options(p, wait=False)
    _add_hub_options(p)

    p = _subparser(sub, "validate", "check a config file and list every problem", _VALIDATE_EPILOG, common)
    p.add_argument("config", metavar="CONFIG", help="the YAML config file")
    p.add_argument("--skip-secrets", action="store_true",
                   help="do not require the env:NAME references to be set here")  # fmt: skip

    p = _subparser(sub, "push", "deploy one Space from flags", _PUSH_EPILOG, common)
    p.add_argument("--username", help="namespace of the Space (default: the token's user)")
    p.add_argument("--repo-name", required=True, help="name of the Space")
    p.add_argument("--app-path", required=True, help="app template: built-in name, folder or fsspec URL")
    p.add_argument("--space-sdk", default="gradio", choices=SDKS, help="Space SDK (default gradio)")
    p.add_argument("--model-path", help="model folder or URL to embed in the Space")
    p.add_argument("--model-hub-repo-id", help="model repository the app loads instead ($MODEL_REPO_ID)")
    p.add_argument("--model-hub-repo-branch", help="its branch or tag ($MODEL_VERSION)")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="placeholder value for the template's text files; repeatable")  # fmt: skip
    p.add_argument("--private", action="store_true", help="create the Space private")
    p.add_argument("--hardware", help="hardware flavor to request, e.g. cpu-basic")
    p.add_argument("--commit-message", help="summary of the commit")
    _add_run_options(p)
    _add_hub_options(p)

    p = _subparser(sub, "status", "show each Space's runtime stage", _STATUS_EPILOG, common)
    p.add_argument("config", metavar="CONFIG", help="the YAML config file")
    p.add_argument("--only", action="append", default=[], metavar="PATTERN", help="only matching Spaces")
    _add_hub_options(p)

    p = _subparser(sub, "rollback", "restore a repository's files as they were at a commit", _ROLLBACK_EPILOG, common)
    p.add_argument("repo_id", metavar="REPO_ID", help="the repository, namespace/name")
    p.add_argument("--to", required=True, metavar="COMMIT", help="the commit whose files to restore")
    p.add_argument("--repo-type", default="space", choices=("space", "model", "dataset"))
    p.add_argument("--message", help="commit summary (default: 'Roll back to COMMIT')")
    p.add_argument("--dry-run", action="store_true", help="list the changes, commit nothing")
    _add_hub_options(p)

    p = _subparser(sub, "hub", "run a local Hub server (for tests and demos)", _HUB_EPILOG, common)
    p.add_argument("hub_command", metavar="serve", choices=["serve"], help="'serve' (see 'hub serve --help')")

    _subparser(sub, "demo", "deploy the demo config to an embedded local Hub, twice", _DEMO_EPILOG, common)
    return parser, dict(sub.choices)


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
    parser, commands = _build_parsers()
    try:
        args, extra = parser.parse_known_args(argv)
    except SystemExit as exc:  # --help, --version (0) and argparse's own usage errors (2)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if extra and args.command not in _PASS_THROUGH:
        return _usage(f"{args.command}: unknown arguments {' '.join(extra)}; see 'beam-pusher {args.command} --help'.")
    with _logging(args.verbose):
        return _dispatch(args, extra, commands)


def _dispatch(args: argparse.Namespace, extra: list[str], commands: dict[str, argparse.ArgumentParser]) -> int:
    try:
        if args.command in _BEAM_COMMANDS:
            # Checked before anything is loaded: a mistyped --only must not reach Beam and deploy every Space.
            own = [o for action in commands[args.command]._actions for o in action.option_strings]  # noqa: SLF001
            pipeline_options(extra, command=args.command, own_flags=own)
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
        print(f"beam-pusher: {args.command} failed: {type(exc).__name__}: {first} (run with -vv for details)",
              file=sys.stderr)  # fmt: skip
        return EXIT_FAILED


def _usage(message: str) -> int:
    print(f"beam-pusher: error: {message}", file=sys.stderr)
    return EXIT_USAGE


# -- endpoint, token, Beam options ---------------------------------------------------------------------------------


def _endpoint(args: argparse.Namespace, config_endpoint: str | None = None) -> str | None:
    """``--endpoint``, else the config's, else ``HF_ENDPOINT`` (passed on explicitly, so remote workers use it too)."""
    value = args.endpoint or config_endpoint or os.environ.get("HF_ENDPOINT") or None
    if value is not None and not re.match(r"^https?://[^\s/]+", value):
        raise SpecError(f"--endpoint {value!r} is not a URL: write e.g. 'https://huggingface.co' or "
                        "'http://127.0.0.1:8080'.")  # fmt: skip
    return value.rstrip("/") if value else None


def _token(args: argparse.Namespace, config_token: str | None = None, *, local: bool = True) -> str | None:
    """The token *reference*: ``env:NAME`` from ``--token-env``, else the config's, else None (HF_TOKEN / login)."""
    if not args.token_env:
        return config_token
    name = args.token_env
    if name.startswith("hf_") or (len(name) > 24 and not name.isupper()):
        # Most likely the token itself: say so without echoing it.
        raise SpecError("--token-env takes the name of an environment variable (like HF_TOKEN), and the value given "
                        "looks like a token (not shown); give the variable's name, never the token itself.")
    if not _ENV_NAME.match(name):
        raise SpecError(f"--token-env takes the name of an environment variable (like HF_TOKEN), got {name!r}; "
                        "give the variable's name, never the token itself.")  # fmt: skip
    if local and name not in os.environ:
        raise SpecError(f"--token-env {name}: the environment variable {name} is not set; export it, or choose "
                        "another variable.")  # fmt: skip
    return f"env:{name}"


def _runner(beam_args: Sequence[str]) -> str | None:
    for i, arg in enumerate(beam_args):
        if arg.startswith("--runner="):
            return arg.split("=", 1)[1]
        if arg == "--runner" and i + 1 < len(beam_args):
            return beam_args[i + 1]
    return None


def _is_local(beam_args: Sequence[str]) -> bool:
    runner = _runner(beam_args)
    return runner is None or runner.lower() in LOCAL_RUNNERS


def pipeline_options(beam_args: Sequence[str] = (), *, command: str = "deploy", own_flags: Sequence[str] = ()):
    """Beam ``PipelineOptions`` from the flags the CLI did not know; the local setup when no ``--runner`` is given.

    Flags Beam does not know either are refused (a mistyped ``--only`` must not deploy everything); the message
    suggests the closest of ``own_flags`` and Beam's flags.

    Raises:
      SpecError: An unknown flag.
    """
    from apache_beam.options.pipeline_options import PipelineOptions

    from beam_pusher.runner import LOCAL_PIPELINE_ARGS

    args = list(beam_args)
    if _runner(args) is None:
        args = [*LOCAL_PIPELINE_ARGS, *args]  # later flags win, so --direct_running_mode=... overrides the default
    unknown: list[str] = []
    known: list[str] = []

    def check(parser: argparse.ArgumentParser) -> None:
        unknown.extend(a for a in parser.parse_known_args(args)[1] if a.startswith("-"))
        known.extend(o for action in parser._actions for o in action.option_strings)  # noqa: SLF001 - for hints

    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured):  # Beam's parser prints its whole usage before exiting
            options = PipelineOptions(args)
            options.get_all_options(add_extra_args_fn=check, retain_unknown_options=True)
    except SystemExit:
        problem = (captured.getvalue().strip().splitlines() or ["bad value"])[-1].split("error: ", 1)[-1]
        raise SpecError(f"Beam rejected the pipeline flags: {problem}; see 'beam-pusher {command} --help'.") from None
    if unknown:
        flag = unknown[0].split("=", 1)[0]
        guess = difflib.get_close_matches(flag, [*own_flags, *known], n=1, cutoff=0.75)
        hint = f" Did you mean {guess[0]}?" if guess else ""
        raise SpecError(f"unknown option {', '.join(unknown)}: neither '{command}' nor Beam's PipelineOptions "
                        f"know it.{hint} See 'beam-pusher {command} --help'.")  # fmt: skip
    return options


# -- deploy, plan, push --------------------------------------------------------------------------------------------


def _exit_status(results: Sequence[PushResult]) -> int:
    return EXIT_FAILED if any(r.error for r in results) else EXIT_OK


def _load(path: str, only: Sequence[str] = (), *, check_secrets: bool = True):
    from beam_pusher.config import load_config

    config = load_config(path, check_secrets=check_secrets)
    selected = config.select(only)
    if not selected.specs:
        raise SpecError(f"--only {' '.join(only)} matches none of the Spaces in {path} ({', '.join(config.repo_ids)}); "
                        "a pattern without '/' matches the name, with '/' the whole repo id.")  # fmt: skip
    return selected


def _run_specs(args: argparse.Namespace, extra: Sequence[str], specs, *, endpoint, token, dry_run, base_dir) -> int:
    options = pipeline_options(extra, command=args.command)
    logger.info("Beam pipeline options: %s", options.get_all_options(drop_default=True, retain_unknown_options=True))
    try:
        results = deploy_and_report(
            specs, options=options, endpoint=endpoint, token=token, dry_run=dry_run,
            wait=getattr(args, "wait", False), wait_timeout=getattr(args, "wait_timeout", 600.0), base_dir=base_dir,
        )  # fmt: skip
    except BeamPusherError:
        raise
    except Exception as exc:  # noqa: BLE001 - the runner's failure, shown as one line instead of a traceback
        logger.debug("pipeline failure", exc_info=True)
        print(f"beam-pusher: the pipeline failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILED
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
    )  # fmt: skip
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
        raise SpecError(f"--username not given and the Hub did not say who the token belongs to "
                        f"({type(exc).__name__}); pass --username or check the token.") from None  # fmt: skip


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
    from beam_pusher.localhub.serve import build_parser as serve_parser
    from beam_pusher.localhub.serve import serve_command

    if "-h" in rest or "--help" in rest:
        parser = serve_parser("beam-pusher hub serve")
        parser.epilog, parser.formatter_class = _HUB_EPILOG, _RAW
        parser.print_help()
        return EXIT_OK
    return serve_command(rest)


def _cmd_hub(args: argparse.Namespace, extra: Sequence[str]) -> int:
    return _hub_serve(list(extra))  # reached only for 'hub serve' spelled with options before it


def _cmd_demo(args: argparse.Namespace, extra: Sequence[str]) -> int:
    from beam_pusher.demo import run_demo

    return run_demo()


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
