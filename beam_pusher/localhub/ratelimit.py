"""The Hub's request quotas, opt-in on the local Hub: API requests per token and commits per repository.

The Hub counts API requests per user token (anonymous callers per IP address) in fixed windows of 5 minutes
(documented quotas: anonymous 500, free 1,000, PRO 2,500, Team 3,000, Enterprise 6,000 requests) and answers 429
with IETF-draft headers that ``huggingface_hub`` (1.2+) reads to wait for the reset by itself::

    RateLimit: "api";r=0;t=42
    RateLimit-Policy: "fixed window";"api";q=1000;w=300

Commits have a separate quota per repository and hour, answered 429 with "You have exceeded the rate limit for
repository commits (N per hour), please retry in about 1 hour".

Both are off by default. A window opens at a key's first request and lasts ``seconds``; the next request after it
opens a new one (fixed windows, not sliding), so a short window in a test counts exactly what the test sends.
"""

from __future__ import annotations

import dataclasses
import math
import re
import threading
import time

__all__ = ["CommitQuota", "QuotaExceeded", "RateLimit", "RequestQuota", "parse_rate_limit"]

_SPEC = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")
# Routes that are not API calls on the Hub: git reads, file downloads (their own "resolvers" quota) and LFS object
# transfers (which go to storage, not to the Hub).
UNCOUNTED_ROUTES = frozenset({"git", "resolve", "lfs-upload", "lfs-download"})


@dataclasses.dataclass(frozen=True)
class RateLimit:
    """A quota: at most ``requests`` in each window of ``seconds`` seconds.

    Example::

        RateLimit.parse("1000/300")   # the Hub's free tier: 1,000 API requests per 5 minutes
    """

    requests: int
    seconds: int

    def __post_init__(self) -> None:
        if self.requests < 1 or self.seconds < 1:
            raise ValueError(
                f"rate limit {self.requests}/{self.seconds} is not allowed: both the count and the window must be "
                "whole numbers of at least 1, e.g. '1000/300' (1,000 requests per 300 seconds)"
            )

    @classmethod
    def parse(cls, text: str) -> RateLimit:
        """``"COUNT/SECONDS"`` -> ``RateLimit``; raises ValueError naming the value and the expected form."""
        match = _SPEC.match(text)
        if not match:
            raise ValueError(
                f"rate limit {text!r} is not COUNT/SECONDS: write e.g. '1000/300' (1,000 requests per 300 seconds, "
                "the Hub's free tier) or '100/10' for a short window in tests"
            )
        return cls(int(match.group(1)), int(match.group(2)))

    def __str__(self) -> str:
        return f"{self.requests}/{self.seconds}"


def parse_rate_limit(value: RateLimit | str | None) -> RateLimit | None:
    """The ``rate_limit`` / ``commit_quota`` options: a ``RateLimit``, a ``"COUNT/SECONDS"`` string, or None (off)."""
    if value is None or isinstance(value, RateLimit):
        return value
    return RateLimit.parse(value)


@dataclasses.dataclass(frozen=True)
class QuotaExceeded:
    """A refusal: the quota, and the whole seconds until the caller's window resets."""

    limit: RateLimit
    reset_in: int


class _FixedWindows:
    """Counts per key in fixed windows that open at the key's first request. Thread-safe."""

    def __init__(self, limit: RateLimit, clock=time.monotonic):  # type: ignore[no-untyped-def]
        self.limit = limit
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: dict[str, tuple[float, int]] = {}  # key -> (window start, count)
        self.refused = 0

    def _current(self, key: str, now: float) -> tuple[float, int]:
        start, count = self._windows.get(key, (now, 0))
        if now >= start + self.limit.seconds:
            start, count = now, 0
        return start, count

    def take(self, key: str) -> tuple[int, int, QuotaExceeded | None]:
        """Counts one use of ``key``; returns ``(remaining, reset_in, refusal)``, refusal None when allowed."""
        with self._lock:
            now = self._clock()
            start, count = self._current(key, now)
            reset_in = max(1, math.ceil(start + self.limit.seconds - now))
            if count >= self.limit.requests:
                self._windows[key] = (start, count)
                self.refused += 1
                return 0, reset_in, QuotaExceeded(self.limit, reset_in)
            self._windows[key] = (start, count + 1)
            return self.limit.requests - count - 1, reset_in, None

    def give_back(self, key: str) -> None:
        """Returns one use taken in the current window (the commit it was taken for failed)."""
        with self._lock:
            start, count = self._current(key, self._clock())
            self._windows[key] = (start, max(0, count - 1))


class _Quota:
    """What both quotas share: fixed windows per key, the limit, and how many were refused."""

    def __init__(self, limit: RateLimit):
        self._windows = _FixedWindows(limit)

    @property
    def limit(self) -> RateLimit:
        return self._windows.limit

    @property
    def refused(self) -> int:
        """Requests (or commits) answered 429 so far."""
        return self._windows.refused


class RequestQuota(_Quota):
    """The API request quota of one local Hub: a window per token (per client address when anonymous).

    Example::

        quota = RequestQuota(RateLimit(100, 10))
        headers, refusal = quota.take("token:hf_...")
    """

    def take(self, key: str) -> tuple[dict[str, str], QuotaExceeded | None]:
        """Counts a request of ``key``; returns the ``RateLimit`` headers for its answer, and the refusal if any."""
        remaining, reset_in, refusal = self._windows.take(key)
        return self.headers(remaining, reset_in), refusal

    def headers(self, remaining: int, reset_in: int) -> dict[str, str]:
        headers = {
            "RateLimit": f'"api";r={remaining};t={reset_in}',
            "RateLimit-Policy": f'"fixed window";"api";q={self.limit.requests};w={self.limit.seconds}',
        }
        if remaining == 0:
            headers["Retry-After"] = str(reset_in)
        return headers

    def message(self, refusal: QuotaExceeded) -> str:
        return (
            f"Rate limit reached: you sent more than {refusal.limit.requests} API requests in {refusal.limit.seconds} "
            f"seconds with this token (the Hub's 'api' quota). Retry in {_about(refusal.reset_in)}, when the window "
            "resets, or send fewer requests."
        )


class CommitQuota(_Quota):
    """The commit quota per repository: at most ``limit.requests`` commits per window of ``limit.seconds``."""

    def take(self, repo_key: str) -> QuotaExceeded | None:
        """Counts a commit to ``repo_key``; the refusal when the repository's quota is used up."""
        return self._windows.take(repo_key)[2]

    def give_back(self, repo_key: str) -> None:
        """Un-counts a commit that was refused later (bad request, stale parent): only made commits count."""
        self._windows.give_back(repo_key)

    def message(self, refusal: QuotaExceeded) -> str:
        """The Hub's words ("... (128 per hour), please retry in about 1 hour"), with the local window's figures."""
        return (
            f"You have exceeded the rate limit for repository commits ({refusal.limit.requests} per "
            f"{_window(refusal.limit.seconds)}), please retry in about {_about(refusal.reset_in)}."
        )


def _window(seconds: int) -> str:
    if seconds == 3600:
        return "hour"
    if seconds % 3600 == 0:
        return f"{seconds // 3600} hours"
    if seconds >= 120 and seconds % 60 == 0:
        return f"{seconds // 60} minutes"
    return f"{seconds} seconds"


def _about(seconds: int) -> str:
    """A wait as people say it: "1 hour" for 59 minutes and some seconds, "12 minutes", "8 seconds"."""
    if seconds >= 3000:
        hours = max(1, round(seconds / 3600))
        return "1 hour" if hours == 1 else f"{hours} hours"
    if seconds >= 120:
        return f"{round(seconds / 60)} minutes"
    return "1 second" if seconds == 1 else f"{seconds} seconds"
