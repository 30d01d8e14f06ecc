"""Which failed Hub calls are worth another try, how long to wait, and one line that says what failed.

``is_transient`` sorts errors (408/429/5xx answers and dropped connections are; everything else is not),
``RetryPolicy`` waits and tries again (``Retry-After`` first, then exponential back-off with jitter), and
``describe_error`` turns a failure into ``repo: cannot ...: HTTP 403: the Hub's message (a hint)``, naming the
repository once and no secret. A Hub that cannot be reached at all (refused connection, unknown host) is told
apart by ``unreachable_reason``, so callers can stop at once instead of retrying a wrong endpoint.
``beam_pusher.commit`` builds on these.

The Hub counts API requests per token in fixed windows and says where a caller stands on every answer
(``RateLimit: "api";r=REMAINING;t=RESET_SECONDS``). ``RequestBudget`` is one such window as a worker sees it:
``install_request_budget`` routes every request huggingface_hub sends in this process through the budget of its
Hub and token, so the pushes of a worker (up to ``parallel_pushes`` threads) share one budget and wait together for
the reset once it is spent, instead of each sending requests the Hub refuses and backing off blindly. A 429 for
the per-repository *commit* quota is not waited for (its window is an hour): ``commit_quota_retry_after`` tells it
apart, so the caller can defer that Space.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import random
import re
import socket
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from beam_pusher.auth import scrub
from beam_pusher.errors import SpecError

if TYPE_CHECKING:
    from beam_pusher.commit import HubSettings

__all__ = [
    "RequestBudget", "RetryPolicy", "budget_for", "commit_quota_retry_after", "describe_error", "http_status",
    "install_request_budget", "is_rate_limited", "is_transient", "unreachable_message", "unreachable_reason",
]

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
                  "(--token-env NAME, or 'token: env:NAME' in the config)")
_RATELIMIT = re.compile(r"(?:^|;)\s*r\s*=\s*(\d+)\s*;\s*t\s*=\s*(\d+)")
_POLICY_QUOTA = re.compile(r"(?:^|;)\s*q\s*=\s*(\d+)\s*;\s*w\s*=\s*(\d+)")
_COMMIT_QUOTA = re.compile(r"rate limit for repository commits", re.IGNORECASE)
_MAX_RATE_LIMIT_WAITS = 20  # 429s of the request quota a call waits out before it counts as a failed attempt



def http_status(exc: BaseException | None) -> int | None:
    """The HTTP status of a failed Hub call, or None (no answer, or not an HTTP error)."""
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None)


def _is_transport_error(exc: BaseException) -> bool:
    # httpx2 (huggingface_hub 2.x) and httpx/requests (1.x) name their network errors differently.
    names = {cls.__name__ for cls in type(exc).__mro__}
    return bool(names & {"TransportError", "ConnectionError", "RemoteProtocolError", "ReadError", "TimeoutException"})


def _no_xet_storage(exc: BaseException) -> bool:
    """Whether ``exc`` is hf_xet finding no Xet storage at the Hub (a 404 from its ``xet-write-token`` endpoint).

    With hf_xet installed, huggingface_hub uploads large files through Xet whatever the Hub offers; a Hub that speaks
    only classic LFS (beam_pusher's local Hub, a Hub mirror) answers 404, which hf_xet raises as a ConnectionError.
    """
    text = str(exc)
    return "xet-write-token" in text and "404" in text


def is_transient(exc: BaseException) -> bool:
    """Whether trying again may help: 408/429/5xx answers and dropped connections."""
    status = http_status(exc)
    if status == 429 and commit_quota_retry_after(exc) is not None:
        return False  # the repository's commit quota resets in about an hour: not worth waiting for in a run
    if status is None and _no_xet_storage(exc):
        return False  # the Hub has no Xet storage: every try gets the same 404
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
) -> str:
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
    if _no_xet_storage(exc):
        return text + (f"the Hub at {endpoint or 'this endpoint'} has no Xet storage (HTTP 404 from its "
                       "xet-write-token endpoint), and huggingface_hub uploads large files through Xet when hf_xet "
                       "is installed. A Hub that speaks classic LFS, such as beam-pusher's local Hub, needs "
                       "HF_HUB_DISABLE_XET=1 in the environment of the deploy.")
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
            "endpoint or HF_ENDPOINT) and that the Hub is up.")


def _headers(exc: BaseException | None) -> Any:
    return getattr(getattr(exc, "response", None), "headers", None) or {}


def _rate_limit_header(headers: Any) -> tuple[int, int] | None:
    """``(remaining, reset seconds)`` from a ``RateLimit`` header, or None."""
    match = _RATELIMIT.search(headers.get("RateLimit", "") or "")
    return (int(match.group(1)), int(match.group(2))) if match else None


def _retry_after(headers: Any) -> float | None:
    try:
        return float(headers.get("Retry-After", ""))
    except (AttributeError, TypeError, ValueError):
        return None


def is_rate_limited(exc: BaseException | None) -> bool:
    """Whether ``exc`` is a 429 of the API request quota (the Hub's ``RateLimit`` says none remain)."""
    if http_status(exc) != 429 or commit_quota_retry_after(exc) is not None:
        return False
    state = _rate_limit_header(_headers(exc))
    return state is not None and state[0] == 0  # without the header no budget knows the reset: Retry-After does


def commit_quota_retry_after(exc: BaseException | None) -> float | None:
    """Seconds until a repository may be committed to again, when ``exc`` is the Hub's refusal of a commit for the
    per-repository commit quota ("You have exceeded the rate limit for repository commits ..."); else None."""
    if http_status(exc) != 429:
        return None
    message = getattr(exc, "server_message", None) or str(exc)
    if not _COMMIT_QUOTA.search(message or ""):
        return None
    retry_after = _retry_after(_headers(exc))
    return 3600.0 if retry_after is None else retry_after


class RequestBudget:
    """The API requests one token may still send to one Hub in the current window, shared by every thread.

    The Hub says on each answer how many requests remain and when the window resets; this keeps the lowest count
    seen in the window (less what was sent since), and ``acquire`` blocks a request once none remain until the
    reset, so a worker's pushes stop together instead of collecting 429s. A Hub that sends no ``RateLimit``
    header costs nothing: the budget stays unknown and never waits.

    Example::

        budget = RequestBudget()
        budget.acquire()            # before a request; may wait for the window's reset
        budget.observe(headers)     # with the answer's headers
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._cond = threading.Condition()
        self._remaining: int | None = None  # None: unknown (no answer yet in this window)
        self._reset_at = 0.0
        self._policy: tuple[int, int] | None = None  # (quota, window seconds), when the Hub named them
        self._provisional = False  # _reset_at was guessed from the policy; the next answer says when it really is
        self.waited_seconds = 0.0
        self.refusals = 0

    def acquire(self) -> None:
        """Takes one request from the budget, waiting for the window's reset when none remain."""
        with self._cond:
            while True:
                now = self._clock()
                if now >= self._reset_at and self._remaining is not None:
                    self._new_window(now)
                if self._remaining is None or self._remaining > 0:
                    break
                logger.debug("request budget spent; waiting %.1f s for the window to reset", self._reset_at - now)
                self._cond.wait(self._reset_at - now)
                self.waited_seconds += self._clock() - now
            if self._remaining is not None:
                self._remaining -= 1

    def _new_window(self, now: float) -> None:
        # The old window is over: start from the policy's quota (unknown without one) until an answer says more.
        if self._policy is None:
            self._remaining = None
            return
        self._remaining, self._reset_at, self._provisional = self._policy[0], now + self._policy[1], True

    def observe(self, headers: Any, status: int | None = None) -> None:
        """Reads an answer's ``RateLimit`` and ``RateLimit-Policy`` headers (and a 429's ``Retry-After``)."""
        state = _rate_limit_header(headers)
        if state is None:
            return
        remaining, reset_in = state
        now = self._clock()
        with self._cond:
            if status == 429 and remaining == 0:
                self.refusals += 1
            policy = _POLICY_QUOTA.search(headers.get("RateLimit-Policy", "") or "")
            if policy:
                self._policy = (int(policy.group(1)), int(policy.group(2)))
            # t is rounded up to whole seconds: the earliest reset heard of in a window is the closest to the truth.
            reset_at = now + reset_in
            if now >= self._reset_at:  # the first answer of a new window
                self._reset_at, self._remaining = reset_at, remaining
            elif self._provisional:
                self._reset_at, self._provisional = reset_at, False
                self._remaining = remaining if self._remaining is None else min(self._remaining, remaining)
            else:
                self._reset_at = min(self._reset_at, reset_at)
                self._remaining = remaining if self._remaining is None else min(self._remaining, remaining)
            self._cond.notify_all()


_BUDGETS: dict[tuple[str, str], RequestBudget] = {}
_BUDGETS_LOCK = threading.Lock()


def budget_for(origin: str, authorization: str | None) -> RequestBudget:
    """The budget of a Hub (``scheme://host:port``) and an ``Authorization`` header, shared in this process.

    Only a hash of the header is kept, as the Hub counts requests per token; anonymous requests share one budget.
    """
    key = (origin.rstrip("/"), hashlib.sha256((authorization or "").encode()).hexdigest())
    with _BUDGETS_LOCK:
        budget = _BUDGETS.get(key)
        if budget is None:
            budget = _BUDGETS[key] = RequestBudget()
        return budget


def _origin(url: Any) -> str:
    return f"{url.scheme}://{url.netloc.decode() if isinstance(url.netloc, bytes) else url.netloc}"


def _before_request(request: Any) -> None:
    budget_for(_origin(request.url), request.headers.get("Authorization")).acquire()


def _after_response(response: Any) -> None:
    request = response.request
    budget = budget_for(_origin(request.url), request.headers.get("Authorization"))
    budget.observe(response.headers, response.status_code)


def _budget_installed() -> bool:
    from huggingface_hub.utils import _http

    return getattr(_http._GLOBAL_CLIENT_FACTORY, "beam_pusher_request_budget", False)


def install_request_budget() -> None:
    """Routes every request huggingface_hub sends from this process through ``budget_for`` its Hub and token.

    Idempotent. It wraps the client factory huggingface_hub uses (``set_client_factory``), keeping whatever that
    factory configures, and adds two event hooks; a Hub that sends no ``RateLimit`` header is never held back. The
    check looks at the factory in place, not at a flag of its own: code that sets another factory afterwards
    (a test fixture, an application's proxy setup) gets the hooks again on the next deploy.
    """
    from huggingface_hub.utils import _http

    with _BUDGETS_LOCK:
        if _budget_installed():
            return
        previous = _http._GLOBAL_CLIENT_FACTORY

        def factory() -> Any:
            client = previous()
            hooks = client.event_hooks
            client.event_hooks = {
                "request": [*hooks.get("request", []), _before_request],
                "response": [*hooks.get("response", []), _after_response],
            }
            return client

        factory.beam_pusher_request_budget = True  # type: ignore[attr-defined]
        _http.set_client_factory(factory)


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
        """Seconds to wait after failed attempt number ``attempt`` (1-based), with up to 10% jitter.

        0 after a 429 of the request quota once ``install_request_budget`` ran: the next request waits in the
        shared budget for the window's reset, with every other push of the worker.
        """
        if _budget_installed() and is_rate_limited(exc):
            return 0.0
        retry_after = _retry_after(_headers(exc))
        delay = retry_after if retry_after is not None else self.backoff_seconds * 2 ** (attempt - 1)
        return min(delay, self.max_backoff_seconds) * (1 + random.random() * 0.1)

    def pause(self, what: str, attempt: int, exc: BaseException) -> None:
        """Waits before the next attempt of ``what`` (logged at INFO)."""
        delay = self.delay(attempt, exc)
        if is_rate_limited(exc):
            logger.info("%s: the Hub's request quota is spent; retrying when its window resets", what)
        else:
            logger.info("%s: transient error (%s); retrying in %.1f s", what, type(exc).__name__, delay)
        time.sleep(delay)

    def call(
        self, what: str, fn: Callable[[], _T], *, transient: Callable[[BaseException], bool] = is_transient
    ) -> _T:
        """Returns ``fn()``, trying again after errors ``transient`` accepts; any other error, or the last one, is
        raised as is."""
        attempt, rate_limited = 1, 0
        while True:
            try:
                return fn()
            except Exception as exc:  # noqa: BLE001 - sorted into retry / raise
                if not transient(exc):
                    raise
                if is_rate_limited(exc) and rate_limited < _MAX_RATE_LIMIT_WAITS:
                    rate_limited += 1  # waiting for the quota's reset is not a failed attempt
                    self.pause(what, attempt, exc)
                    continue
                if attempt >= self.max_attempts:
                    raise
                self.pause(what, attempt, exc)
                attempt += 1
