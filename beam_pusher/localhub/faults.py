"""Seeded, reproducible fault injection for the local Hub: latency, 500/503/429 answers, dropped connections.

Tests and benchmarks use it to show that a client survives what the real Hub does under load. Random faults hit only
the routes the ``huggingface_hub`` client retries by default (preupload, LFS batch/upload/verify, paginated listings),
so an injected fault is something a correct client recovers from; ``routes="all"`` widens that. Scheduled faults
(``fail_next``, ``fail_next_commits``) hit the next matching requests exactly.

The same seed and the same sequence of requests give the same faults. Every method is thread-safe.
"""

from __future__ import annotations

import collections
import dataclasses
import random
import threading
from collections.abc import Iterable

__all__ = ["DEFAULT_FAULT_ROUTES", "Fault", "FaultInjector"]

# Routes the huggingface_hub client retries on 429/5xx and dropped connections.
DEFAULT_FAULT_ROUTES = frozenset({"preupload", "lfs-batch", "lfs-upload", "lfs-verify", "tree", "commits"})
_STATUSES = (500, 503, 429)


@dataclasses.dataclass(frozen=True)
class Fault:
    """What to do to one request instead of answering it: an HTTP ``status`` or ``drop`` the connection."""

    kind: str  # "error" or "drop"
    status: int = 0
    retry_after: int | None = None


class FaultInjector:
    """Decides, request by request, whether to delay, fail or drop it.

    Args:
        latency: seconds added to every request (all routes).
        error_rate: probability that an eligible request is answered with one of ``statuses``.
        drop_rate: probability that an eligible request's connection is closed without an answer.
        statuses: the error statuses to draw from; 429 answers carry ``Retry-After: retry_after``.
        retry_after: seconds for ``Retry-After`` (the client waits this plus one second).
        seed: seed of the random draws.
        routes: route names eligible for random faults, or ``"all"``; defaults to ``DEFAULT_FAULT_ROUTES``.

    Example::

        hub.faults.configure(error_rate=0.05, drop_rate=0.01, seed=7)
        hub.faults.fail_next_commits(1, status=500)
        print(hub.faults.counts)   # {"503": 3, "drop": 1, "500": 1, ...}
    """

    def __init__(
        self,
        *,
        latency: float = 0.0,
        error_rate: float = 0.0,
        drop_rate: float = 0.0,
        statuses: Iterable[int] = _STATUSES,
        retry_after: int = 0,
        seed: int = 0,
        routes: Iterable[str] | str | None = None,
    ):
        self._lock = threading.Lock()
        self._counts: collections.Counter[str] = collections.Counter()
        self._scheduled: dict[str, collections.deque[Fault]] = collections.defaultdict(collections.deque)
        self.latency = 0.0
        self.error_rate = 0.0
        self.drop_rate = 0.0
        self.statuses: tuple[int, ...] = _STATUSES
        self.retry_after = 0
        self.routes: frozenset[str] | None = DEFAULT_FAULT_ROUTES
        self._rng = random.Random(seed)
        self.configure(
            latency=latency,
            error_rate=error_rate,
            drop_rate=drop_rate,
            statuses=statuses,
            retry_after=retry_after,
            routes=routes if routes is not None else DEFAULT_FAULT_ROUTES,
        )

    def configure(
        self,
        *,
        latency: float | None = None,
        error_rate: float | None = None,
        drop_rate: float | None = None,
        statuses: Iterable[int] | None = None,
        retry_after: int | None = None,
        seed: int | None = None,
        routes: Iterable[str] | str | None = None,
    ) -> None:
        """Changes the settings given (the others stay); a ``seed`` restarts the random sequence.

        Raises:
            ValueError: a setting is out of range; nothing is changed then.
        """
        with self._lock:
            new_latency = self.latency if latency is None else float(latency)
            new_error = self.error_rate if error_rate is None else float(error_rate)
            new_drop = self.drop_rate if drop_rate is None else float(drop_rate)
            new_statuses = self.statuses if statuses is None else tuple(int(status) for status in statuses)
            new_retry = self.retry_after if retry_after is None else int(retry_after)
            if new_latency < 0:
                raise ValueError(f"latency={latency!r} must be >= 0 seconds")
            for name, value in (("error_rate", new_error), ("drop_rate", new_drop)):
                if not 0.0 <= value <= 1.0:
                    raise ValueError(f"{name}={value!r} must be a probability between 0 and 1")
            if new_error + new_drop > 1.0:
                raise ValueError(f"error_rate + drop_rate = {new_error + new_drop} exceeds 1: lower one of them")
            if not new_statuses or any(not 400 <= status <= 599 for status in new_statuses):
                raise ValueError(f"statuses={new_statuses!r} must be a non-empty list of HTTP error codes (4xx/5xx)")
            if new_retry < 0:
                raise ValueError(f"retry_after={retry_after!r} must be >= 0 seconds")
            self.latency, self.error_rate, self.drop_rate = new_latency, new_error, new_drop
            self.statuses, self.retry_after = new_statuses, new_retry
            if seed is not None:
                self._rng = random.Random(seed)
            if routes is not None:
                self.routes = None if routes == "all" else frozenset([routes] if isinstance(routes, str) else routes)

    def fail_next(self, route: str, n: int = 1, status: int = 503) -> None:
        """Answers the next ``n`` requests of ``route`` with ``status`` (or drops them when ``status`` is 0)."""
        fault = Fault("drop") if status == 0 else Fault("error", int(status), self.retry_after if status == 429 else None)
        with self._lock:
            self._scheduled[route].extend([fault] * n)

    def fail_next_commits(self, n: int = 1, status: int = 500) -> None:
        """Answers the next ``n`` commit POSTs with ``status`` without committing (the client does not retry)."""
        self.fail_next("commit", n, status)

    def reset(self) -> None:
        """Removes every fault and the latency, and zeroes the counts."""
        with self._lock:
            self.latency = self.error_rate = self.drop_rate = 0.0
            self._scheduled.clear()
            self._counts.clear()

    @property
    def counts(self) -> dict[str, int]:
        """Injected faults by kind: ``"500"``, ``"503"``, ``"429"``, ... and ``"drop"``; ``"delayed"`` requests."""
        with self._lock:
            return dict(self._counts)

    @property
    def total(self) -> int:
        """Number of injected errors and drops (delays not included)."""
        with self._lock:
            return sum(count for kind, count in self._counts.items() if kind != "delayed")

    def decide(self, route: str) -> Fault | None:
        """The fault for one request of ``route``, or None to answer it normally (called by the server)."""
        with self._lock:
            if self.latency > 0:
                self._counts["delayed"] += 1
            queue = self._scheduled.get(route)
            if queue:
                fault = queue.popleft()
            elif (self.error_rate or self.drop_rate) and (self.routes is None or route in self.routes):
                draw = self._rng.random()
                pick = self._rng.choice(self.statuses)
                if draw < self.drop_rate:
                    fault = Fault("drop")
                elif draw < self.drop_rate + self.error_rate:
                    fault = Fault("error", pick, self.retry_after if pick == 429 else None)
                else:
                    return None
            else:
                return None
            self._counts["drop" if fault.kind == "drop" else str(fault.status)] += 1
            return fault
