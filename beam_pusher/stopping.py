"""Stopping a deploy on SIGINT or SIGTERM without leaving anyone guessing.

On a runner in this process, the first signal sets a process-wide stop flag (``request_stop``) that the push step
checks before it starts a Space's push and again right before it sends the commit; commits already sent finish (for
up to ``STOP_GRACE_SECONDS``), the pipeline ends normally and every Space has a result: committed, unchanged, failed,
or not attempted. A second signal, or the grace running out, gives up at once. Workers in other processes
(DirectRunner ``multi_processing``, Dataflow) cannot see the flag: there the first signal stops the run (``run_deploy``
cancels a Dataflow job), and a Space whose result did not come back may or may not have been committed; each Space's
commit is atomic either way, so it holds its old files or its new ones.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

from beam_pusher.runner import RunnerKind

__all__ = [
    "STOP_GRACE_SECONDS", "Interruption", "StopAsked", "raise_if_stopped", "request_stop", "stop_on_signals",
    "stop_requested",
]

STOP_GRACE_SECONDS = 30.0
"""How long the pushes under way may take to finish after the first signal before the run gives up on them."""
_GIVE_UP_SECONDS = 5.0
"""How long ``on_give_up`` may take (it writes what is known) before the process ends anyway."""

_STOP = threading.Event()


def request_stop() -> None:
    """Asks the push steps of this process to start no new push and send no new commit; pushes under way finish."""
    _STOP.set()


def stop_requested() -> bool:
    """Whether a stop was asked for during the current run (``stop_on_signals`` clears it when the run ends)."""
    return _STOP.is_set()


class StopAsked(BaseException):
    """Raised instead of sending a commit once a stop was asked for. A ``BaseException``, as ``KeyboardInterrupt``
    is, so that a push's retry loop, which retries or reports every ``Exception``, lets it through."""


def raise_if_stopped(repo_id: str) -> None:
    """A ``Committer.before_commit`` hook: no commit is sent once a stop was asked for."""
    if stop_requested():
        raise StopAsked


@dataclasses.dataclass
class Interruption:
    """What signals did to a run; ``stop_on_signals`` fills it in.

    Attributes:
      signal_name: ``SIGINT`` or ``SIGTERM``: the first signal received; None while none came.
    """

    signal_name: str | None = None


class _SignalHandler:
    """The first signal stops the run (or asks it to stop); a second one, or the grace running out, gives up."""

    def __init__(self, waits: bool, grace: float, on_signal: Callable[[str, bool], None],
                 on_give_up: Callable[[str], None]):
        self.interruption = Interruption()
        self._waits, self._grace = waits, grace
        self._on_signal, self._on_give_up = on_signal, on_give_up
        self._lock = threading.Lock()
        self._ended = threading.Event()  # the block ended, or the process is giving up: only the first of the two acts
        self._timer: threading.Timer | None = None

    def __call__(self, signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        if self.interruption.signal_name is not None:
            self.give_up(f"stopped at once by a second signal ({name})")
            return
        self.interruption.signal_name = name
        self._on_signal(name, self._waits)
        if not self._waits:
            raise KeyboardInterrupt
        request_stop()
        self._timer = threading.Timer(self._grace, self.give_up,
                                      [f"the pushes under way did not end within {self._grace:g} s"])
        self._timer.daemon = True
        self._timer.start()

    def give_up(self, reason: str) -> None:
        with self._lock:
            if self._ended.is_set():
                return
            self._ended.set()
        _end_process(self._on_give_up, reason)

    def end(self) -> bool:
        """Marks the block as ended; True when the process is already giving up (on the timer's thread)."""
        if self._timer is not None:
            self._timer.cancel()
        with self._lock:
            giving_up = self._ended.is_set()
            self._ended.set()
        return giving_up


@contextlib.contextmanager
def stop_on_signals(
    kind: RunnerKind,
    *,
    on_signal: Callable[[str, bool], None],
    on_give_up: Callable[[str], None],
    grace_seconds: float | None = None,
) -> Iterator[Interruption]:
    """Stops a run cleanly on SIGINT or SIGTERM, while the block runs (only in the main thread; elsewhere a no-op).

    The first signal calls ``on_signal(name, waits)``. On a runner in this process (``waits`` is True) it then asks
    for a stop (``request_stop``) and gives the pushes under way ``grace_seconds`` (default ``STOP_GRACE_SECONDS``)
    to finish: the pipeline ends normally. On any other runner it raises ``KeyboardInterrupt`` in the main thread,
    and ``run_deploy`` cancels the job. A second signal, or the grace running out, calls ``on_give_up(reason)`` (a
    few seconds at most, to write what is known) and ends the process at once with status 130.

    Example::

        with stop_on_signals(options_kind(options), on_signal=say, on_give_up=save) as interruption:
            results = run_deploy(specs, pipeline_args=options)
        status = 130 if interruption.signal_name else 0
    """
    if threading.current_thread() is not threading.main_thread():
        yield Interruption()
        return
    grace = STOP_GRACE_SECONDS if grace_seconds is None else grace_seconds
    handler = _SignalHandler(kind is RunnerKind.IN_PROCESS, grace, on_signal, on_give_up)
    _STOP.clear()
    previous = {signum: signal.signal(signum, handler) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield handler.interruption
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
        giving_up = handler.end()
        _STOP.clear()
        if giving_up:  # the grace ran out just as the run ended: the process ends in give_up, on the timer's thread
            threading.Event().wait()


def _end_process(on_give_up: Callable[[str], None], reason: str) -> None:
    """Runs ``on_give_up`` on a thread of its own (it may need a lock the interrupted main thread holds), waits for
    it at most ``_GIVE_UP_SECONDS``, and ends the process with status 130 without waiting for the pipeline."""
    worker = threading.Thread(target=on_give_up, args=(reason,), name="beam-pusher-give-up", daemon=True)
    worker.start()
    worker.join(_GIVE_UP_SECONDS)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(130)
