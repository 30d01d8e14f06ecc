"""The local Spaces runtime (``LocalHub(run_spaces=True)``): each Space is built and its app really runs.

A watcher notices each new build of a Space (a commit to ``main``, a restart, a secret, variable or hardware change:
whatever ``runtime.start_build`` recorded) and hands it to a ``SpaceRun``, which does what the Hub's builder does::

    BUILDING      the files of main's head are checked out; an environment is made from requirements.txt and the
                  SDK (``appenv``: a cached one in which everything is installed already, else ``pip install``,
                  pip's output in the build log)                           -> BUILD_ERROR when pip fails
    APP_STARTING  the app starts on a free loopback port (``appcommand``)   -> RUNTIME_ERROR when it exits
    RUNNING       once the app answers HTTP; it keeps running until the next build, a pause or the Hub's stop
                                                                            -> RUNTIME_ERROR when it crashes

The app's output is its run log; secrets are in its environment, and their values are masked in both logs. A newer
build replaces the running one. Apps run in process groups of their own, stopped with SIGTERM and then SIGKILL, so
nothing outlives the Hub. What the builder refuses before building (``CONFIG_ERROR``, a requirements.txt line pip
cannot read), a paused Space, an injected crash and a Docker Space that does not run Streamlit or Gradio stay with
the simulation of ``runtime``.
"""

from __future__ import annotations

import dataclasses
import http.server
import logging
import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from beam_pusher.localhub import spacebuild
from beam_pusher.localhub.runtime import LogLine, SpaceTimeline, space_timeline
from beam_pusher.localhub.storage import Repository

__all__ = ["LiveStatus", "SpaceRun", "SpaceRunner"]

logger = logging.getLogger(__name__)

START_TIMEOUT = 300.0  # seconds an app may take to answer HTTP (importing gradio and TensorFlow on 2 cores is slow)
STOP_GRACE = 10.0  # seconds between SIGTERM and SIGKILL
_MASK = "*****"


@dataclasses.dataclass(frozen=True)
class LiveStatus:
    """A really running Space's stage, its ``errorMessage`` and the app's URL once it answers."""

    stage: str
    error: str | None
    url: str | None


class SpaceRun:
    """One build and start of one Space: its stage, its build and run logs, and the processes it started.

    The build thread writes; HTTP handlers read (``status``, ``lines``, ``wait_lines``) under ``changed``.
    """

    def __init__(self, repo_id: str, key: tuple[Any, ...], head: str | None, secrets: tuple[str, ...]):
        self.repo_id = repo_id
        self.key = key
        self.head = head
        self.stage = "BUILDING"
        self.error: str | None = None
        self.url: str | None = None
        self.description = ""
        self.simulated: str | None = None  # why the Space is not run, when it is not
        self.logs: dict[str, list[LogLine]] = {"build": [], "run": []}
        self.over = {"build": False, "run": False}  # the build is over; the app's start is over (or it crashed)
        self.cancelled = threading.Event()
        self.changed = threading.Condition()
        self._secrets = tuple(sorted((s for s in secrets if len(s) >= 3), key=len, reverse=True))
        self._processes: list[subprocess.Popen] = []
        self._server: http.server.ThreadingHTTPServer | None = None

    # Written by the build thread ---------------------------------------------------------------------------------

    def log(self, kind: str, text: str) -> None:
        for secret in self._secrets:
            text = text.replace(secret, _MASK)
        with self.changed:
            self.logs[kind].append(LogLine(time.time(), text))
            self.changed.notify_all()

    def set_stage(self, stage: str, error: str | None = None, *, url: str | None = None,
                  over: str | None = None) -> None:
        with self.changed:
            self.stage, self.error = stage, error
            if url is not None:
                self.url = url
            if over is not None:
                self.over[over] = True
            if stage in ("BUILD_ERROR", "RUNTIME_ERROR", "RUNNING"):
                self.over = {"build": True, "run": True}  # a failed build has no run log to wait for
            self.changed.notify_all()

    def add_process(self, process: subprocess.Popen) -> None:
        with self.changed:
            self._processes.append(process)
        if self.cancelled.is_set():
            _stop_process(process)

    def serve_static(self, server: http.server.ThreadingHTTPServer) -> None:
        """Keeps the static Space's server (already serving) to shut it down with the run."""
        self._server = server
        if self.cancelled.is_set():
            self.stop()

    # Read by the HTTP handlers -----------------------------------------------------------------------------------

    def status(self) -> LiveStatus:
        with self.changed:
            return LiveStatus(self.stage, self.error, self.url)

    def lines(self, kind: str) -> list[LogLine]:
        with self.changed:
            return list(self.logs[kind])

    def wait_lines(self, kind: str, seen: int, timeout: float) -> tuple[list[LogLine], bool]:
        """Lines after the first ``seen`` (waiting up to ``timeout`` for one), and whether no more will come."""
        with self.changed:
            self.changed.wait_for(lambda: len(self.logs[kind]) > seen or self._ended(kind), timeout=timeout)
            return list(self.logs[kind][seen:]), self._ended(kind)

    def _ended(self, kind: str) -> bool:
        return self.over[kind] or self.cancelled.is_set()

    # Stop --------------------------------------------------------------------------------------------------------

    def stop(self) -> None:
        """Ends the build or the app: its processes get SIGTERM, then SIGKILL after ``STOP_GRACE`` seconds."""
        self.cancelled.set()
        with self.changed:
            processes, self._processes = list(self._processes), []
            self.changed.notify_all()
        for process in processes:
            _stop_process(process)
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()


def _stop_process(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, STOP_GRACE), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(process.pid, sig)  # the app's own children (a TF worker, a reloader) too
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


class SpaceRunner:
    """Watches the Spaces of a local Hub and runs each one's latest build (see the module docstring).

    Args:
        state: the Hub's shared state (``protocol.HubState``): its repositories, LFS store and endpoint.
        work_dir: where each Space's files are checked out and its app keeps its caches.
        poll: seconds between two looks at the Spaces' settings.
        start_timeout: seconds an app may take to answer HTTP before it is a ``RUNTIME_ERROR``.
        env_root: the cache of Space environments (default ``appenv.cache_root()``).
    """

    def __init__(self, state: Any, work_dir: Path, *, poll: float = 0.25, start_timeout: float = START_TIMEOUT,
                 env_root: Path | None = None):
        self.state = state
        self.work_dir = Path(work_dir)
        self.poll = poll
        self.start_timeout = start_timeout
        self.env_root = env_root
        self._runs: dict[str, SpaceRun] = {}
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None

    def start(self) -> None:
        self._watcher = threading.Thread(target=self._watch, name="local-hub-spaces", daemon=True)
        self._watcher.start()

    def stop(self) -> None:
        """Stops watching, then every build and app; returns once their processes are gone."""
        self._stopping.set()
        if self._watcher is not None:
            self._watcher.join(timeout=10)
        with self._lock:
            runs, self._runs = list(self._runs.values()), {}
        for run in runs:
            run.stop()
        for thread in self._threads:
            thread.join(timeout=STOP_GRACE + 15)

    # Reading -----------------------------------------------------------------------------------------------------

    def run_of(self, repo: Repository) -> SpaceRun | None:
        """The run of the Space's current build, None when the watcher has not taken it up yet."""
        with self._lock:
            run = self._runs.get(repo.repo_id)
        return run if run is not None and run.key == _build_key(repo) else None

    def status(self, repo: Repository, timeline: SpaceTimeline) -> LiveStatus | None:
        """The real stage of the Space's current build, or None when the simulation answers for this Space."""
        if not _runnable(timeline):
            return None
        run = self.run_of(repo)
        if run is None:
            return LiveStatus("BUILDING", None, None)  # built within ``poll`` seconds
        return None if run.simulated else run.status()

    def build_log(self, repo: Repository, timeline: SpaceTimeline) -> tuple[LogLine, ...]:
        """The build log of a Space the simulation answers for, with the runtime's reason when it gave one."""
        lines = timeline.build_log()
        run = self.run_of(repo)
        if run is None or not run.simulated or not lines:
            return lines
        return (*lines, LogLine(timeline.build_started, f"Simulated: {run.simulated}"))

    # The watcher -------------------------------------------------------------------------------------------------

    def _watch(self) -> None:
        while not self._stopping.wait(self.poll):
            try:
                self._scan()
            except Exception:  # a bad Space must not stop the runtime of the others
                logger.exception("local Spaces runtime: looking at the Spaces failed")

    def _scan(self) -> None:
        spaces = {repo.repo_id: repo for repo in self.state.store.all("space")}
        with self._lock:
            gone = [self._runs.pop(repo_id) for repo_id in list(self._runs) if repo_id not in spaces]
        for run in gone:
            run.stop()
        for repo_id, repo in spaces.items():
            key = _build_key(repo)
            with self._lock:
                current = self._runs.get(repo_id)
            if current is None or current.key != key:
                self._launch(repo, key, current)

    def _launch(self, repo: Repository, key: tuple[Any, ...], previous: SpaceRun | None) -> None:
        if previous is not None:
            previous.stop()
        timeline = space_timeline(repo, 0.0)
        with repo.lock:
            secrets = {name: item["value"] for name, item in repo.settings.get("secrets", {}).items()}
        run = SpaceRun(repo.repo_id, key, timeline.head, tuple(secrets.values()))
        with self._lock:
            self._runs[repo.repo_id] = run
            self._threads = [thread for thread in self._threads if thread.is_alive()]
        if _runnable(timeline):  # else the simulation answers: paused, crashed on purpose, or refused by the builder
            thread = threading.Thread(target=self._build_and_run, args=(run, repo, timeline), daemon=True,
                                      name=f"space-run-{repo.repo_id}")
            self._threads.append(thread)
            thread.start()

    # One build ---------------------------------------------------------------------------------------------------

    def _build_and_run(self, run: SpaceRun, repo: Repository, timeline: SpaceTimeline) -> None:
        try:
            spacebuild.build_and_run(self, run, repo, timeline)
        except Exception as err:  # an unexpected failure is the Space's build error, not a dead runtime
            logger.exception("local Spaces runtime: building %s failed", run.repo_id)
            run.log("build", f"ERROR: the local Spaces runtime failed: {type(err).__name__}: {err}")
            run.set_stage("BUILD_ERROR", f"The local Spaces runtime failed: {type(err).__name__}: {err}")


def _build_key(repo: Repository) -> tuple[Any, ...]:
    """What starts a new build: main's head, the recorded build start, a pause or an injected crash."""
    with repo.lock:
        settings = repo.settings
        key = (settings.get("build_started_at"), bool(settings.get("paused")), repr(settings.get("run_failure")))
    return (repo.branch_head("main"), *key)


def _runnable(timeline: SpaceTimeline) -> bool:
    plan = timeline.plan
    return (timeline.paused_at is None and plan is not None and plan.stage is None and timeline.crash_at is None)
