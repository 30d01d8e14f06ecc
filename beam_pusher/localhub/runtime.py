"""A Space's runtime on the local Hub: build, start, crash, sleep and pause, and the logs they write.

Nothing runs in the background: the stage at any moment follows from when the last build started (a commit to
``main``, a restart, a hardware or secret/variable change), the runtime delay, the builder's verdict on the files at
the head of ``main`` (``builder.check_space``) and what the owner did (pause, sleep time, an injected crash)::

    commit/restart -> BUILDING (runtime delay) -> RUNNING -> SLEEPING (after sleep_time without visitors)
                   -> CONFIG_ERROR (at once)    -> BUILD_ERROR          -> RUNTIME_ERROR (the app crashed)

A Space whose only commit is the Hub's initial one is ``NO_APP_FILE``; a paused Space is ``PAUSED`` until restarted.
Its app crashes at start (``RUNTIME_ERROR``) when the Space holds a file named ``LOCAL_HUB_RUNTIME_ERROR`` (its
lines are what the app prints before it dies) or after ``LocalHub.fail_space_run`` (until the next build).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import time
from collections.abc import Mapping
from typing import Any

from beam_pusher.localhub import spaces
from beam_pusher.localhub.builder import CONFIG_ERROR, BuildPlan, check_space
from beam_pusher.localhub.storage import Repository

__all__ = [
    "RUNTIME_ERROR_MARKER",
    "LogLine",
    "SpaceTimeline",
    "build_banner",
    "clock",
    "space_runtime",
    "space_timeline",
    "start_build",
]

RUNTIME_ERROR_MARKER = "LOCAL_HUB_RUNTIME_ERROR"
_DEFAULT_CRASH = "RuntimeError: the app stopped with an error (LOCAL_HUB_RUNTIME_ERROR)"


@dataclasses.dataclass(frozen=True)
class LogLine:
    """One line of a build or run log, and the time (``time.time()``) it was written."""

    at: float
    text: str


def start_build(settings: dict[str, Any], *, factory: bool = False, now: float | None = None) -> None:
    """Records that the Space builds again from now (a commit, restart or settings change); hold the repo lock.

    A factory reboot builds without cached layers. An injected crash belongs to one build and is forgotten here.
    """
    settings["build_started_at"] = time.time() if now is None else now
    settings["factory_reboot"] = factory
    settings.pop("run_failure", None)


@dataclasses.dataclass(frozen=True)
class SpaceTimeline:
    """What happens to a Space after its last build started, with the times it happens (``time.time()`` seconds).

    Attributes:
        head: the commit built (head of ``main``).
        plan: the builder's verdict; None when the Space is ``NO_APP_FILE`` (nothing is built).
        build_started, build_ends: when the build started and when the app starts (or the build fails).
        crash_at, crash_lines: when the app crashes and what it prints, or None when it does not.
        sleeps_at: when the Space goes to sleep for want of visitors, or None.
        paused_at: when the owner paused it, or None when it is not paused.
        settings: the Space's settings the timeline was derived from.
    """

    head: str | None
    plan: BuildPlan | None
    build_started: float
    build_ends: float
    crash_at: float | None
    crash_lines: tuple[str, ...]
    sleeps_at: float | None
    paused_at: float | None
    factory: bool
    settings: Mapping[str, Any]

    def stage(self, now: float) -> str:
        if self.paused_at is not None:
            return "PAUSED"
        if self.plan is None:
            return "NO_APP_FILE"
        if self.plan.stage == CONFIG_ERROR:
            return CONFIG_ERROR
        if now < self.build_ends:
            return "BUILDING"
        if self.plan.stage is not None:
            return self.plan.stage
        if self.crash_at is not None and now >= self.crash_at:
            return "RUNTIME_ERROR"
        if self.sleeps_at is not None and now >= self.sleeps_at:
            return "SLEEPING"
        return "RUNNING"

    def error(self, now: float) -> str | None:
        """The runtime's ``errorMessage`` at ``now``: why the Space does not run, in the builder's or app's words."""
        stage = self.stage(now)
        if stage in ("CONFIG_ERROR", "BUILD_ERROR") and self.plan is not None:
            return self.plan.error
        if stage == "RUNTIME_ERROR":
            return f"Exit code: 1. Reason: {self.crash_lines[-1]}" if self.crash_lines else "Exit code: 1"
        return None

    def build_log(self) -> tuple[LogLine, ...]:
        """The build's lines, spread over the build (a configuration error is reported at once)."""
        if self.plan is None:
            return ()
        lines = [*build_banner(self), *self.plan.steps]
        if self.plan.stage == CONFIG_ERROR:
            return tuple(LogLine(self.build_started, text) for text in lines)
        step = (self.build_ends - self.build_started) / max(1, len(lines) - 1)
        return tuple(LogLine(self.build_started + i * step, text) for i, text in enumerate(lines))

    def run_log(self) -> tuple[LogLine, ...]:
        """The app's output: its start, and its crash, sleep or pause."""
        if self.plan is None or self.plan.stage is not None:
            return ()
        start = self.build_ends
        lines = [LogLine(start, f"===== Application Startup at {clock(start)} =====")]
        lines += [LogLine(start, text) for text in _startup_lines(self.plan)]
        end = self.crash_at if self.crash_at is not None else self.sleeps_at
        if self.crash_at is not None:
            lines += [LogLine(self.crash_at, text) for text in self.crash_lines]
        elif self.sleeps_at is not None:
            seconds = int(self.settings.get("sleep_time") or 0)
            lines.append(LogLine(self.sleeps_at, f"The Space went to sleep after {seconds} seconds without visitors: "
                                                 "restart it to wake it up"))
        if self.paused_at is not None and self.paused_at >= start and (end is None or self.paused_at < end):
            lines.append(LogLine(self.paused_at, "The Space was paused by its owner: restart it to run it again"))
        return tuple(lines)


def _startup_lines(plan: BuildPlan) -> list[str]:
    if plan.sdk == "gradio":
        return [f"* Running on local URL:  http://0.0.0.0:7860 (gradio {plan.sdk_version}, {plan.app_file})"]
    if plan.sdk == "streamlit":
        return ["You can now view your Streamlit app in your browser.", "URL: http://0.0.0.0:8501"]
    if plan.sdk == "docker":
        return [f"Container started: the app answers on port {plan.app_port}"]
    return [f"Serving {plan.app_file} and the Space's other files"]


def build_banner(timeline: SpaceTimeline) -> list[str]:
    """The first lines of a build log: when the build was queued and which commit it builds."""
    head = (timeline.head or "")[:7]
    banner = [f"===== Build Queued at {clock(timeline.build_started)} / Commit SHA: {head} ====="]
    if timeline.factory:
        banner.append("Factory reboot: building from scratch, without cached layers or installed packages")
    return banner


def clock(timestamp: float) -> str:
    """``2024-05-01 12:00:00``, UTC: the Hub's time stamps in log banners."""
    return datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def space_timeline(repo: Repository, delay: float) -> SpaceTimeline:
    """The timeline of a Space at the head of ``main``; ``delay`` is the build time in seconds."""
    with repo.lock:  # writers change the settings under the same lock
        settings = json.loads(json.dumps(repo.settings))
    head = repo.branch_head("main")
    snapshot = repo.snapshot(head) if head else None
    files = snapshot.files if snapshot is not None else {}

    def read(path: str) -> bytes | None:
        blob = files.get(path)
        return None if blob is None else repo.read_blob(blob)

    plan = check_space(settings.get("sdk"), files.keys(), read)
    initial = head is None or not repo.git.read_commit(head).parents
    if initial and plan.app_file not in files:
        plan = None  # the Hub's own first commit: nothing to build yet
    started = float(settings.get("build_started_at") or 0)
    ends = started + delay
    crash_at, crash_lines = _crash(settings, read, ends)
    return SpaceTimeline(
        head=head,
        plan=plan,
        build_started=started,
        build_ends=ends,
        crash_at=crash_at,
        crash_lines=crash_lines,
        sleeps_at=_sleeps_at(settings, ends),
        paused_at=float(settings.get("paused_at") or started) if settings.get("paused") else None,
        factory=bool(settings.get("factory_reboot")),
        settings=settings,
    )


def _crash(settings: Mapping[str, Any], read: Any, starts: float) -> tuple[float | None, tuple[str, ...]]:
    marker = read(RUNTIME_ERROR_MARKER)
    if marker is not None:
        lines = tuple(line for line in marker.decode("utf-8", "replace").splitlines() if line.strip())
        return starts, lines or (_DEFAULT_CRASH,)
    failure = settings.get("run_failure")
    if isinstance(failure, Mapping):
        lines = tuple(str(failure.get("message") or _DEFAULT_CRASH).splitlines()) or (_DEFAULT_CRASH,)
        return max(starts, float(failure.get("at") or 0)), lines
    return None, ()


def _sleeps_at(settings: Mapping[str, Any], starts: float) -> float | None:
    """A Space sleeps ``sleep_time`` seconds after its last visitor; the local Hub has none after the start."""
    seconds = settings.get("sleep_time")
    if not isinstance(seconds, int) or seconds <= 0:
        return None  # -1 (never) or the Hub's default of 48 hours on free hardware, which no test waits for
    return max(starts, float(settings.get("sleep_time_set_at") or 0)) + seconds


def space_runtime(repo: Repository, delay: float, now: float | None = None, runner: Any = None) -> dict[str, Any]:
    """The ``runtime`` object of a Space, as ``GET /api/spaces/{repo_id}/runtime`` answers it.

    With a ``spacerun.SpaceRunner``, a Space it really runs has the stage and error of its real build and app.
    """
    timeline = space_timeline(repo, delay)
    now = time.time() if now is None else now
    stage, error = timeline.stage(now), timeline.error(now)
    live = runner.status(repo, timeline) if runner is not None else None
    if live is not None:
        stage, error = live.stage, live.error
    settings = timeline.settings
    requested = settings.get("hardware") or spaces.FREE_HARDWARE
    current = requested if stage == "RUNNING" else None
    runtime: dict[str, Any] = {
        "stage": stage,
        "hardware": {"current": current, "requested": requested},
        "storage": None,
        "gcTimeout": settings.get("sleep_time") or spaces.DEFAULT_SLEEP_TIME,
        "replicas": {"current": 1 if current else 0, "requested": 1},
        "devMode": False,
        "domains": [{"domain": settings.get("subdomain", "") + ".hf.space", "stage": "READY"}],
        "sha": timeline.head,
    }
    if error is not None:
        runtime["errorMessage"] = error
    return runtime
