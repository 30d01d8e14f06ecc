"""The arguments of ``beam-pusher``: its argparse parsers with their help and examples, the Beam flags, the exit
statuses, and what the arguments resolve to (the endpoint, the token reference, the selected Spaces of a config).

``cli.main`` parses with these parsers; every flag the CLI does not know goes to Beam's ``PipelineOptions``
(``pipeline_options``), which refuses what Beam does not know either. Nothing here imports Beam at module import,
so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import io
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from beam_pusher import __version__, auth, rules
from beam_pusher.errors import SpecError, TokenError
from beam_pusher.runner import runner_flag, runner_kind
from beam_pusher.spec import SDKS

if TYPE_CHECKING:
    from apache_beam.options.pipeline_options import PipelineOptions

__all__ = [
    "BEAM_COMMANDS",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "NO_TOKEN",
    "PASS_THROUGH_COMMANDS",
    "build_parser",
    "build_parsers",
    "connect",
    "declared_flags",
    "endpoint_from",
    "hub_api",
    "hub_serve_parser",
    "is_local",
    "load_selected",
    "pipeline_options",
    "token_from",
    "verbosity",
]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

BEAM_COMMANDS = ("deploy", "plan", "push")
"""Commands that run a Beam pipeline: the flags they do not know are Beam's."""
PASS_THROUGH_COMMANDS = (*BEAM_COMMANDS, "hub")
"""Commands whose unknown flags are passed on (to Beam, or to ``hub serve``) rather than refused by argparse."""

_RAW = argparse.RawDescriptionHelpFormatter

_MAIN_EPILOG = """examples:
  beam-pusher validate configs/spaces.yaml
  beam-pusher -v deploy configs/spaces.yaml
  beam-pusher plan configs/spaces.yaml --only 'penguin-*'
  beam-pusher deploy configs/spaces.yaml --report deploy.json
  beam-pusher deploy configs/spaces.yaml --runner DataflowRunner --project P --region R --temp_location gs://b/tmp
  beam-pusher demo

Run 'beam-pusher COMMAND --help' for a command's options."""
_DEPLOY_EPILOG = """Any other --flag goes to Beam's PipelineOptions (put them after CONFIG, or write --flag=value).
Without --runner the pipeline runs in this process on FnApiRunner (DirectRunner's batch engine, in_memory),
pushing up to 16 Spaces at once. Ctrl-C (or SIGTERM) starts no new push, lets the commits already sent finish,
prints every Space's state, writes --report and exits 130; a second one stops at once. With workers in other
processes (multi_processing, Dataflow) the job is stopped and a Space without a result may or may not be committed.

examples:
  beam-pusher deploy configs/spaces.yaml
  beam-pusher deploy configs/spaces.yaml --only 'user/penguin-*' --wait --report deploy.json
  beam-pusher deploy configs/spaces.yaml --pr            # one pull request per changed Space; review, then merge
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
  beam-pusher validate configs/spaces.yaml --skip-secrets   # on a machine that does not deploy
  beam-pusher validate configs/spaces.yaml --runner DataflowRunner   # references that Dataflow workers resolve"""
_PUSH_EPILOG = """Flags are named like the TFX HFSpacePusher component's parameters.

examples:
  beam-pusher push --username alice --repo-name penguins --app-path apps.gradio.img_classifier \\
      --model-path ./serving_model/1700000000
  beam-pusher push --repo-name reviews --app-path apps.gradio.text_classifier \\
      --model-hub-repo-id alice/review-model --model-hub-repo-branch v3 --option TEXT_FEATURE=text"""
_MERGE_EPILOG = """Merges, in each matched Space, the open pull request that 'deploy --pr' opened (pull requests people
opened are left alone) and prints what happened to each. Space settings are not part of a pull request: a plain
deploy afterwards writes those that differ (and commits nothing when the merge brought every file).

examples:
  beam-pusher merge configs/spaces.yaml
  beam-pusher merge configs/spaces.yaml --only 'penguin-*'"""
_STATUS_EPILOG = """examples:
  beam-pusher status configs/spaces.yaml
  beam-pusher status configs/spaces.yaml --only 'penguin-*' --endpoint http://127.0.0.1:8080"""
_ROLLBACK_EPILOG = """Makes one new commit whose files equal the files at COMMIT (history is kept, nothing rewritten).
.gitattributes is never deleted; paths matching a --keep pattern (.gitignore syntax, as a config's keep:) are left
as they are now.

examples:
  beam-pusher rollback alice/penguins --to 3f2a1c4e5d6b7a8990a1b2c3d4e5f60718293a4b
  beam-pusher rollback alice/penguins --to 3f2a1c4 --dry-run
  beam-pusher rollback alice/penguins --to 3f2a1c4 --keep 'data/' --keep '*.db'"""
_LOGS_EPILOG = """A Space that ends CONFIG_ERROR or BUILD_ERROR says why in its build log; RUNTIME_ERROR in its run log.

examples:
  beam-pusher logs alice/penguins --build
  beam-pusher logs alice/penguins --follow --endpoint http://127.0.0.1:8080"""
_RESTART_EPILOG = """examples:
  beam-pusher restart configs/spaces.yaml
  beam-pusher restart configs/spaces.yaml --only 'penguin-*' --factory"""
_HUB_EPILOG = """examples:
  beam-pusher hub serve --port 8080 --token hf_local_secret
  beam-pusher hub serve --port 0 --data-dir /tmp/hub      # prints the endpoint first, then serves

Point clients at it with HF_ENDPOINT=<endpoint> and HF_HUB_DISABLE_XET=1 (the local Hub speaks classic LFS)."""
_DEMO_EPILOG = """Starts a local Hub that runs Spaces, deploys configs/demo.yaml (three Spaces), then deploys it again
to show that nothing is re-uploaded; waits until the Spaces' apps run and prints their page and app URLs, then
keeps serving until Ctrl-C (--no-wait, CI=... or no terminal on stdin: stops at once). Stops the Hub and removes its
files. Needs a source checkout and TensorFlow (the tfx extra).

examples:
  beam-pusher demo              # then open the printed URLs in a browser
  beam-pusher demo --no-wait"""


def _add_hub_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("Hub")
    group.add_argument("--endpoint", metavar="URL", help="Hub URL (default: the config's, HF_ENDPOINT, huggingface.co)")
    group.add_argument(
        "--token-env",
        metavar="NAME",
        help="read the token from the environment variable NAME where the pipeline runs (default: the config's "
        "token, HF_TOKEN or the huggingface_hub login)",
    )


def _add_run_options(parser: argparse.ArgumentParser, *, wait: bool = True) -> None:
    if wait:
        parser.add_argument("--wait", action="store_true", help="wait until each pushed Space runs (or fails)")
        parser.add_argument(
            "--wait-timeout", type=float, default=600.0, metavar="S", help="seconds to wait for that (default 600)"
        )
    parser.add_argument("--report", metavar="FILE", help="write every Space's result as JSON to FILE")


def _add_config(parser: argparse.ArgumentParser, only_help: str | None = None) -> None:
    parser.add_argument("config", metavar="CONFIG", help="the YAML config file")
    if only_help is not None:
        parser.add_argument("--only", action="append", default=[], metavar="PATTERN", help=only_help)


def _subparser(sub, name: str, help_text: str, epilog: str, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    return sub.add_parser(
        name, help=help_text, description=help_text, epilog=epilog, formatter_class=_RAW, parents=[common],
        allow_abbrev=False,
    )


def _add_push(sub, common: argparse.ArgumentParser) -> None:
    p = _subparser(sub, "push", "deploy one Space from flags", _PUSH_EPILOG, common)
    p.add_argument("--username", help="namespace of the Space (default: the token's user)")
    p.add_argument("--repo-name", required=True, help="name of the Space")
    p.add_argument("--app-path", required=True, help="app template: built-in name, folder or fsspec URL")
    p.add_argument("--space-sdk", default="gradio", choices=SDKS, help="Space SDK (default gradio)")
    p.add_argument("--model-path", help="model folder or URL to embed in the Space")
    p.add_argument("--model-hub-repo-id", help="model repository the app loads instead ($MODEL_REPO_ID)")
    p.add_argument("--model-hub-repo-branch", help="its branch or tag ($MODEL_VERSION)")
    p.add_argument(
        "--option", action="append", default=[], metavar="KEY=VALUE",
        help="placeholder value for the template's text files; repeatable",
    )
    p.add_argument("--private", action="store_true", help="create the Space private")
    p.add_argument("--hardware", help="hardware flavor to request, e.g. cpu-basic")
    p.add_argument("--commit-message", help="summary of the commit")
    _add_run_options(p)
    _add_hub_options(p)


def _add_rollback(sub, common: argparse.ArgumentParser) -> None:
    p = _subparser(sub, "rollback", "restore a repository's files as they were at a commit", _ROLLBACK_EPILOG, common)
    p.add_argument("repo_id", metavar="REPO_ID", help="the repository, namespace/name")
    p.add_argument("--to", required=True, metavar="COMMIT",
                   help="the commit whose files to restore: its id or at least 4 of its first characters")
    p.add_argument("--repo-type", default="space", choices=("space", "model", "dataset"))
    p.add_argument("--message", help="commit summary (default: 'Roll back to COMMIT')")
    p.add_argument("--dry-run", action="store_true", help="list the changes, commit nothing")
    p.add_argument(
        "--keep", action="append", default=[], metavar="PATTERN",
        help="leave paths matching this .gitignore pattern as they are now (e.g. 'data/'); repeatable",
    )
    _add_hub_options(p)


def build_parsers() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The main parser and each command's parser by name (Beam flags are not declared: they pass through)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="count", default=0, help="log more (-vv: debug)")
    parser = argparse.ArgumentParser(
        prog="beam-pusher", description="Deploy ML demo apps to Hugging Face Spaces.", epilog=_MAIN_EPILOG,
        formatter_class=_RAW, allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    # Also before the command (beam-pusher -v deploy ...); its own dest, as a command's parser would reset "verbose".
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, dest="verbose_before", help="log more (-vv: debug)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = _subparser(sub, "deploy", "deploy the Spaces of a config file", _DEPLOY_EPILOG, common)
    _add_config(p, "deploy only Spaces matching this glob (repo id, or name without '/'); repeatable")
    p.add_argument("--pr", action="store_true",
                   help="open a pull request per changed Space (or update the open one) instead of committing to main; "
                   "Space settings are not written")
    _add_run_options(p)
    _add_hub_options(p)

    p = _subparser(sub, "plan", "show what a deploy would change, without writing anything", _PLAN_EPILOG, common)
    _add_config(p, "plan only matching Spaces")
    _add_run_options(p, wait=False)
    _add_hub_options(p)

    p = _subparser(sub, "validate", "check a config file and list every problem", _VALIDATE_EPILOG, common)
    _add_config(p)
    p.add_argument("--skip-secrets", action="store_true", help="do not require the env:NAME references to be set here")
    p.add_argument(
        "--runner", metavar="RUNNER",
        help="the Beam runner of the deploy; on a remote one (DataflowRunner) env: and file: references are refused",
    )

    _add_push(sub, common)

    p = _subparser(sub, "status", "show each Space's runtime stage", _STATUS_EPILOG, common)
    _add_config(p, "only matching Spaces")
    _add_hub_options(p)

    _add_rollback(sub, common)

    _add_space_operations(sub, common)
    _add_local_hub(sub, common)
    return parser, dict(sub.choices)


def _add_space_operations(sub, common: argparse.ArgumentParser) -> None:
    """merge, logs and restart: the commands that act on deployed Spaces besides status and rollback."""
    p = _subparser(sub, "merge", "merge the pull requests that 'deploy --pr' opened", _MERGE_EPILOG, common)
    _add_config(p, "merge only in matching Spaces")
    p.add_argument("--comment", help="comment posted on each pull request as it is merged")
    _add_hub_options(p)

    p = _subparser(sub, "logs", "print one Space's run or build log", _LOGS_EPILOG, common)
    p.add_argument("repo_id", metavar="REPO_ID", help="the Space, namespace/name")
    p.add_argument("--build", action="store_true", help="the build log instead of the run log")
    p.add_argument("--follow", action="store_true", help="keep printing new lines until the Hub closes the stream")
    _add_hub_options(p)

    p = _subparser(sub, "restart", "restart the Spaces of a config file", _RESTART_EPILOG, common)
    _add_config(p, "restart only matching Spaces")
    p.add_argument("--factory", action="store_true", help="factory reboot: rebuild each Space from scratch")
    _add_hub_options(p)


def _add_local_hub(sub, common: argparse.ArgumentParser) -> None:
    """The commands around the local Hub: serving it, and the demo that deploys to one."""
    p = _subparser(sub, "hub", "run a local Hub server (for tests and demos)", _HUB_EPILOG, common)
    p.add_argument("hub_command", metavar="serve", choices=["serve"], help="'serve' (see 'hub serve --help')")

    p = _subparser(sub, "demo", "deploy the demo config to an embedded local Hub, twice, and run it", _DEMO_EPILOG,
                   common)
    wait = p.add_mutually_exclusive_group()
    wait.add_argument("--wait", dest="wait", action="store_true", default=None,
                      help="keep serving the Hub and the apps until Ctrl-C (default on a terminal, without CI)")
    wait.add_argument("--no-wait", dest="wait", action="store_false", help="stop once the apps run")


def verbosity(args: argparse.Namespace) -> int:
    """How many ``-v`` were given, before the command and after it (``beam-pusher -v deploy c.yaml -v`` is 2)."""
    return getattr(args, "verbose_before", 0) + getattr(args, "verbose", 0)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command (Beam flags are not declared: they pass through unparsed)."""
    return build_parsers()[0]


def hub_serve_parser() -> argparse.ArgumentParser:
    """The parser of ``beam-pusher hub serve`` (the local Hub's own), with this CLI's examples."""
    from beam_pusher.localhub.serve import build_parser as serve_parser

    parser = serve_parser("beam-pusher hub serve")
    parser.epilog, parser.formatter_class = _HUB_EPILOG, _RAW
    return parser


def declared_flags(parser: argparse.ArgumentParser) -> list[str]:
    """Every option string ``parser`` declares (``--only``, ``-v``, ...), to suggest the closest for a typo."""
    return [o for action in parser._actions for o in action.option_strings]  # noqa: SLF001 - argparse has no API


def pipeline_options(
    beam_args: Sequence[str] = (), *, command: str = "deploy", own_flags: Sequence[str] = ()
) -> PipelineOptions:
    """Beam ``PipelineOptions`` from the flags the CLI did not know; the local setup when no ``--runner`` is given.

    Flags Beam does not know either are refused (a mistyped ``--only`` must not deploy everything); the message
    suggests the closest of ``own_flags`` and Beam's flags. The options are checked as ``runner.build_options``
    checks them, so an unknown runner is refused here too.

    Raises:
      SpecError: An unknown flag, a bad value, or options Beam cannot make a pipeline from.
    """
    from apache_beam.options.pipeline_options import PipelineOptions

    from beam_pusher.runner import build_options, with_local_defaults

    args = with_local_defaults(beam_args)
    unknown: list[str] = []
    known: list[str] = []

    def check(parser: argparse.ArgumentParser) -> None:
        unknown.extend(a for a in parser.parse_known_args(args)[1] if a.startswith("-"))
        known.extend(declared_flags(parser))  # for hints

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
        raise SpecError(
            f"unknown option {', '.join(unknown)}: neither '{command}' nor Beam's PipelineOptions know it.{hint} "
            f"See 'beam-pusher {command} --help'."
        )
    return build_options(options)


# -- what the arguments resolve to ---------------------------------------------------------------------------------


def endpoint_from(args: argparse.Namespace, config_endpoint: str | None = None) -> str | None:
    """``--endpoint``, else the config's, else ``HF_ENDPOINT`` (passed on explicitly, so remote workers use it too)."""
    for field, value in (
        ("--endpoint", args.endpoint),
        ("the config's endpoint", config_endpoint),
        ("HF_ENDPOINT", os.environ.get("HF_ENDPOINT")),
    ):
        if value:
            return rules.check_endpoint(value, field=field)
    return None


def token_from(args: argparse.Namespace, config_token: str | None = None, *, local: bool = True) -> str | None:
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
    if not local:
        raise SpecError(
            f"--token-env {name}: {auth.remote_reference_problem(f'env:{name}')} Give that reference as the "
            "config's 'token:'."
        )
    if name not in os.environ:
        raise SpecError(
            f"--token-env {name}: the environment variable {name} is not set; export it, or choose another variable."
        )
    return f"env:{name}"


NO_TOKEN = "no Hub token: set HF_TOKEN, run `hf auth login`, or give --token-env"


def connect(endpoint: str | None, token: str | None, *, need_token: bool):
    """An ``HfApi`` for this process, after one request that stops the run at once (once, not per Space) when the
    Hub cannot be reached or rejects the token; ``need_token``: commands that write refuse to run without one."""
    from beam_pusher.hub import check_connection

    api = hub_api(endpoint, token)
    if need_token and api.token is None:
        raise TokenError(f"{NO_TOKEN} NAME (a variable holding a token with write access).")
    check_connection(api)
    return api


def is_local(beam_args: Sequence[str]) -> bool:
    """Whether the pipeline runs on this machine, where ``env:NAME`` references resolve as they do here."""
    return runner_kind(runner_flag(beam_args)).is_local


def load_selected(path: str, only: Sequence[str] = (), *, check_secrets: bool = True, remote: bool = False):
    from beam_pusher.config import load_config

    config = load_config(path, check_secrets=check_secrets, remote=remote)
    selected = config.select(only)
    if not selected.specs:
        raise SpecError(
            f"--only {' '.join(only)} matches none of the Spaces in {path} ({', '.join(config.repo_ids)}); "
            "a pattern without '/' matches the name, with '/' the whole repo id."
        )
    return selected


def hub_api(endpoint: str | None, token: str | None):
    """An ``HfApi`` for commands that talk to the Hub from this process (the token is resolved here)."""
    from huggingface_hub import HfApi

    from beam_pusher.auth import resolve_token

    return HfApi(endpoint=endpoint, token=resolve_token(token))
