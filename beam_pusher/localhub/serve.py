"""``python -m beam_pusher hub serve`` (and ``python -m beam_pusher.localhub.serve``): run a local Hub until stopped.

The first line on stdout is the endpoint URL, so a script can start the server with ``--port 0`` and read where it
listens::

    python -m beam_pusher.localhub.serve --port 0 --data-dir /tmp/hub --user alice --token hf_alice
    http://127.0.0.1:41234

``--rate-limit 1000/300`` and ``--commit-quota 128/3600`` make it answer 429 as the Hub does past its quotas.
``--users-file users.yaml`` serves several users and organisations (see ``users_file``) instead of the one user of
``--user``/``--token``. ``--run-spaces`` builds and runs each Space's app for real (``spacerun``); open the endpoint
in a browser to see the Spaces, their logs and their apps.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from types import FrameType

from beam_pusher.localhub.accounts import HubUser
from beam_pusher.localhub.hub import LocalHub
from beam_pusher.localhub.names import check_name
from beam_pusher.localhub.ratelimit import RateLimit
from beam_pusher.localhub.users_file import load_users

__all__ = ["build_parser", "serve_command"]

logger = logging.getLogger(__name__)


def build_parser(prog: str = "beam-pusher hub serve") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="Serve a local Hugging Face Hub for tests and demos.")
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port; 0 picks a free one (default)")
    parser.add_argument("--data-dir", help="where repositories live; kept across restarts (default: a temp dir)")
    parser.add_argument("--user", help="name of the one user (default 'user')")
    parser.add_argument("--token", help="the user's write token (default: $HF_TOKEN; one of the two is required)")
    parser.add_argument("--org", action="append", default=[], help="an organisation the user belongs to (repeatable)")
    parser.add_argument("--read-token", action="append", default=[], help="a read-only token of the user (repeatable)")
    parser.add_argument("--users-file", metavar="FILE",
                        help="several users instead of --user/--token/--org/--read-token: a YAML or JSON file of "
                        "users (name, token, read_tokens) and orgs with member roles read/contributor/write/admin "
                        "(see beam_pusher.localhub.users_file); its first user is the default one")
    parser.add_argument("--runtime-delay", type=float, default=0.0, help="seconds a Space stays BUILDING")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every request")
    parser.add_argument("--free-account-policy", nargs="?", const="all", default="off",
                        choices=["off", "paid-hardware", "all"],
                        help="answer 402 for Gradio/Docker Spaces: on paid hardware, or always ('all', the default "
                        "when the flag is given without a value)")
    parser.add_argument("--rate-limit", metavar="REQUESTS/SECONDS", type=_rate_limit,
                        help="answer 429 (with the Hub's RateLimit headers) once a token has sent REQUESTS API "
                        "requests in a window of SECONDS; the Hub's free tier is 1000/300 (default: no limit)",
                        )
    parser.add_argument("--commit-quota", metavar="COMMITS/SECONDS", type=_rate_limit,
                        help="answer 429 once a repository has received COMMITS commits in a window of SECONDS; "
                        "the Hub allows about 128/3600 (default: no quota)")
    parser.add_argument("--run-spaces", action="store_true",
                        help="build each Space from its requirements.txt and run its app on a local port after each "
                        "commit, restart or settings change (default: stages and logs are simulated)")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    return parser


def _rate_limit(text: str) -> RateLimit:
    try:
        return RateLimit.parse(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _users(args: argparse.Namespace) -> list[HubUser]:
    """The accounts: the users file's, or the one user of ``--user``/``--token``; names checked before serving.

    Raises:
        ValueError: no token, a name the Hub refuses, or a users file mixed with one-user flags or invalid.
    """
    if args.users_file is not None:
        mixed = [flag for flag, value in (("--user", args.user), ("--token", args.token), ("--org", args.org),
                                          ("--read-token", args.read_token)) if value]
        if mixed:
            raise ValueError(f"--users-file declares every user: leave out {', '.join(mixed)} (put them in the file)")
        return load_users(args.users_file)
    token = args.token or os.environ.get("HF_TOKEN")
    if not token:
        raise ValueError("no token: pass --token TOKEN (or set HF_TOKEN) to choose the user's write token")
    # The Hub's name rule, checked before anything starts: a name refused here would be refused on the wire.
    check_name(args.user or "user", "--user")
    for org in args.org:
        check_name(org, "--org")
    return [HubUser(args.user or "user", token, tuple(args.org), tuple(args.read_token))]


def serve_command(argv: list[str] | None = None) -> int:
    """Runs the server until SIGINT or SIGTERM; returns the exit status (0 on a clean stop, 2 on bad arguments)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, stream=sys.stderr)
    try:
        users = _users(args)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    try:
        hub = LocalHub(args.data_dir, host=args.host, port=args.port, users=users, runtime_delay=args.runtime_delay,
                       latency=args.latency, free_account_policy=args.free_account_policy,
                       rate_limit=args.rate_limit, commit_quota=args.commit_quota,
                       run_spaces=args.run_spaces).start()
    except (OSError, ValueError) as err:
        print(f"error: cannot start the local Hub: {err}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        print(hub.endpoint, flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        hub.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


if __name__ == "__main__":
    sys.exit(serve_command())
