"""Which failed Hub calls are worth another try, how long to wait, and one line that says what failed.

``is_transient`` sorts errors (408/429/5xx answers and dropped connections are; everything else is not),
``RetryPolicy`` waits and tries again (``Retry-After`` first, then exponential back-off with jitter), and
``describe_error`` turns a failure into ``repo: cannot ...: HTTP 403: the Hub's message (a hint)``, naming the
repository once and no secret. A Hub that cannot be reached at all (refused connection, unknown host) is told
apart by ``unreachable_reason``, so callers can stop at once instead of retrying a wrong endpoint. ``beam_pusher.commit`` builds on these.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from beam_pusher.auth import scrub
from beam_pusher.errors import SpecError

if TYPE_CHECKING:
    from beam_pusher.commit import HubSettings

__all__ = [
    "RetryPolicy", "describe_error", "http_status", "is_transient", "unreachable_message", "unreachable_reason",
]  # fmt: skip

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

_TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_STATUS_HINTS = {
    401: "the Hub rejected the token: check HF_TOKEN, the huggingface_hub login, or the token reference",
    402: "the Hub asks for a paid plan for this Space (free accounts: static Spaces, or cpu-basic only): "
    "use space_sdk 'static', an account with a paid plan, or drop the hardware request",
    403: "the token may not write there: use a token with write access to that namespace, or a repo_id in your own",
    404: "the repository or revision does not exist, or the token cannot see it",
    409: "the Hub reported a conflict",
    412: "the Space kept changing while this deploy was planning; retry when other deploys are done",
}
_NO_TOKEN_HINT = ("no Hub token was sent: set HF_TOKEN, run `hf auth login`, or give a token reference "
                  "(--token-env NAME, or 'token: env:NAME' in the config)")  # fmt: skip



def http_status(exc: BaseException | None) -> int | None:
    """The HTTP status of a failed Hub call, or None (no answer, or not an HTTP error)."""
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None)


def _is_transport_error(exc: BaseException) -> bool:
    # httpx2 (huggingface_hub 2.x) and httpx/requests (1.x) name their network errors differently.
    names = {cls.__name__ for cls in type(exc).__mro__}
    return bool(names & {"TransportError", "ConnectionError", "RemoteProtocolError", "ReadError", "TimeoutException"})


def is_transient(exc: BaseException) -> bool:
    """Whether trying again may help: 408/429/5xx answers and dropped connections."""
    status = http_status(exc)
    return status in _TRANSIENT_STATUS or (status is None and _is_transport_error(exc))


def unreachable_reason(exc: BaseException | None) -> str | None:
    """``connection refused`` or ``unknown host`` when no connection to the Hub could be opened, else None."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, ConnectionRefusedError):
            return "connection refused"
        if isinstance(exc, socket.gaierror):
            return "unknown host"
        exc = exc.__cause__ or exc.__context__
    return None


def describe_error(
    exc: BaseException | None, repo_id: str, *secrets: str | None, endpoint: str | None = None,
    token_sent: bool = True, context: str | None = None,
) -> str:  # fmt: skip
    """One line for a failed Hub call: the repository, the status, the Hub's message and a hint; secrets scrubbed.

    The repository is named once, first: ``repo: [context: ]HTTP 403: message (hint)``, where ``context`` says
    what could not be done (``"cannot create the Space"``). ``endpoint`` names the Hub when it could not be reached
    at all; ``token_sent=False`` turns a 401's hint into "no token was sent" rather than "the token was rejected".
    A call the client refused to make without a token says the same.
    """
    from huggingface_hub.errors import LocalTokenNotFoundError

    text = f"{repo_id}: {context + ': ' if context else ''}"
    if exc is None:
        return text + "unknown error"
    unreachable = unreachable_reason(exc)
    if unreachable:
        return text + unreachable_message(endpoint or "its endpoint", unreachable)
    if isinstance(exc, LocalTokenNotFoundError):
        return text + _NO_TOKEN_HINT
    status = http_status(exc)
    server = getattr(exc, "server_message", None) or (str(exc).splitlines() or [type(exc).__name__])[0]
    hint = _NO_TOKEN_HINT if status == 401 and not token_sent else _STATUS_HINTS.get(status or 0)
    text += f"{'HTTP %d: ' % status if status else ''}{server}"
    if hint:
        text += f" ({hint})"
    return scrub(text, *secrets)


def unreachable_message(endpoint: str, reason: str) -> str:
    """Why nothing could be done at ``endpoint``, and what to check."""
    return (f"cannot reach the Hub at {endpoint} ({reason}); check the endpoint (--endpoint, the config's "
            "endpoint or HF_ENDPOINT) and that the Hub is up.")  # fmt: skip


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to try a Hub call again after a transient error.

    Attributes:
      max_attempts: Attempts in all, the first included (1: never retry).
      backoff_seconds: Wait after the first failure; doubles after each further one, up to ``max_backoff_seconds``.
        A ``Retry-After`` header, when the Hub sends one, is honoured instead.
      max_backoff_seconds: The longest single wait.

    Example::

        RetryPolicy(max_attempts=3, backoff_seconds=0.5).call("alice/x: read the runtime", read_runtime)
    """

    max_attempts: int = 5
    backoff_seconds: float = 1.0
    max_backoff_seconds: float = 30.0

    def __post_init__(self) -> None:
        if isinstance(self.max_attempts, bool) or not isinstance(self.max_attempts, int) or self.max_attempts < 1:
            raise SpecError(f"max_attempts={self.max_attempts!r} must be a whole number >= 1 (1: never retry).")
        for name in ("backoff_seconds", "max_backoff_seconds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise SpecError(f"{name}={value!r} must be a number of seconds >= 0 (for example 1.0).")

    @classmethod
    def from_settings(cls, settings: HubSettings) -> RetryPolicy:
        """The policy ``HubSettings`` asks for."""
        return cls(max_attempts=settings.max_attempts, backoff_seconds=settings.backoff_seconds)

    def delay(self, attempt: int, exc: BaseException | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based), with up to 10% jitter."""
        retry_after = None
        response = getattr(exc, "response", None)
        if response is not None:
            try:
                retry_after = float(response.headers.get("Retry-After", ""))
            except (AttributeError, TypeError, ValueError):
                retry_after = None
        delay = retry_after if retry_after is not None else self.backoff_seconds * 2 ** (attempt - 1)
        return min(delay, self.max_backoff_seconds) * (1 + random.random() * 0.1)

    def pause(self, what: str, attempt: int, exc: BaseException) -> None:
        """Waits before the next attempt of ``what`` (logged at INFO)."""
        delay = self.delay(attempt, exc)
        logger.info("%s: transient error (%s); retrying in %.1f s", what, type(exc).__name__, delay)
        time.sleep(delay)

    def call(
        self, what: str, fn: Callable[[], _T], *, transient: Callable[[BaseException], bool] = is_transient
    ) -> _T:
        """Returns ``fn()``, trying again after errors ``transient`` accepts; any other error, or the last one, is
        raised as is."""
        for attempt in range(1, self.max_attempts + 1):
            try:
                return fn()
            except Exception as exc:  # noqa: BLE001 - sorted into retry / raise
                if not transient(exc) or attempt == self.max_attempts:
                    raise
                self.pause(what, attempt, exc)
        raise AssertionError("unreachable")
