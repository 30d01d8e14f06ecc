"""What a Space does after a push: it builds, then runs, or ends in an error stage with logs that say why.

``wait_for_stage`` polls the runtime until a terminal stage (RUNNING, or one of ``FAILED_STAGES``);
``failure_message`` turns an error stage into the one error a deploy reports, with the last lines of the log that
explains it (the build log for CONFIG_ERROR and BUILD_ERROR, the run log for RUNTIME_ERROR), read with
``HfApi.fetch_space_logs``; ``space_logs`` is what ``beam-pusher logs`` prints, and ``restart_space`` what
``beam-pusher restart`` asks for. Hub calls go through a ``Committer``, so they share its retries and request budget.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Iterator
from typing import Any

from beam_pusher.commit import Committer
from beam_pusher.errors import PushError
from beam_pusher.rules import FAILED_STAGES

__all__ = ["BUILD_LOG_STAGES", "LOG_TAIL_LINES", "failure_message", "log_tail", "restart_space", "space_logs",
           "wait_for_stage"]

logger = logging.getLogger(__name__)

LOG_TAIL_LINES = 10
"""Lines of a failed Space's log that its deploy result carries."""

BUILD_LOG_STAGES = frozenset({"CONFIG_ERROR", "BUILD_ERROR", "NO_APP_FILE"})
"""Error stages the build log explains; the run log explains the others (RUNTIME_ERROR)."""


def _stage(runtime: Any) -> str:
    return str(getattr(runtime.stage, "value", runtime.stage))


def wait_for_stage(committer: Committer, repo_id: str, timeout: float) -> str:
    """Polls the Space's runtime until RUNNING or an error stage; returns that stage.

    Raises:
      PushError: still building after ``timeout`` seconds, or the runtime cannot be read.
    """
    deadline = time.monotonic() + timeout
    delay = 0.2
    read = functools.partial(committer.api.get_space_runtime, repo_id)
    while True:
        stage = _stage(committer.call(repo_id, "read the runtime", read))
        if stage == "RUNNING" or stage in FAILED_STAGES:
            return stage
        if time.monotonic() >= deadline:
            raise PushError(
                f"{repo_id}: pushed, but still {stage} after {timeout:g} s; raise wait_timeout or check the Space's "
                f"build logs (beam-pusher logs {repo_id} --build)."
            )
        time.sleep(delay)
        delay = min(delay * 2, 5.0)


def space_logs(api: Any, repo_id: str, *, build: bool = False, follow: bool = False) -> Iterator[str]:
    """The lines of a Space's run log (``build=True``: its build log), without line ends; ``follow`` keeps reading
    until the Hub closes the stream."""
    for line in api.fetch_space_logs(repo_id, build=build, follow=follow):
        yield line.rstrip("\r\n")


def log_tail(committer: Committer, repo_id: str, *, build: bool, lines: int = LOG_TAIL_LINES) -> list[str]:
    """The last ``lines`` lines of a Space's build or run log; empty when it cannot be read (the stage is reported
    either way)."""
    try:
        return committer.call(repo_id, "read the Space's logs",
                              lambda: list(space_logs(committer.api, repo_id, build=build)))[-lines:]
    except PushError as exc:
        logger.info("%s: %s", repo_id, exc)
        return []


def failure_message(committer: Committer, repo_id: str, stage: str) -> str:
    """The error of a Space that was pushed but ended in ``stage``: the stage, then the log lines that say why."""
    build = stage in BUILD_LOG_STAGES
    which = "build" if build else "run"
    tail = log_tail(committer, repo_id, build=build)
    text = f"{repo_id}: the Space was pushed but does not run: it ended {stage}"
    if not tail:
        return f"{text}; its {which} log is empty (beam-pusher logs {repo_id}{' --build' if build else ''})."
    shown = "\n".join(f"    | {line}" for line in tail)
    return (f"{text}; the last lines of its {which} log (beam-pusher logs {repo_id}{' --build' if build else ''}):"
            f"\n{shown}")


def restart_space(committer: Committer, repo_id: str, *, factory_reboot: bool = False) -> str:
    """Restarts a Space (``factory_reboot``: rebuilds it from scratch); returns the stage the Hub answers with."""
    restart = functools.partial(committer.api.restart_space, repo_id, factory_reboot=factory_reboot)
    return _stage(committer.call(repo_id, "restart the Space", restart))
