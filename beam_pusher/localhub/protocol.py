"""What every endpoint of the local Hub shares: the server state, requests, responses, errors and access checks.

Errors follow the Hub's wire format so the ``huggingface_hub`` client raises its own exception classes:
``X-Error-Code`` (``RepoNotFound``, ``RevisionNotFound``, ``EntryNotFound``) and ``X-Error-Message`` headers, and a
JSON body ``{"error": message}``.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import email.message
import hashlib
import hmac
import json
import re
import threading
import urllib.parse
from collections.abc import Iterator
from typing import Any, BinaryIO

from beam_pusher.localhub.accounts import Accounts, Identity
from beam_pusher.localhub.faults import FaultInjector
from beam_pusher.localhub.lfs import LfsStore
from beam_pusher.localhub.names import valid_name
from beam_pusher.localhub.ratelimit import CommitQuota, RateLimit, RequestQuota
from beam_pusher.localhub.repostore import RepoStore
from beam_pusher.localhub.storage import Repository, StorageError

__all__ = [
    "HubConfig",
    "HubError",
    "HubState",
    "Request",
    "Response",
    "GATED_VALUES",
    "can_see",
    "check_gate",
    "find_repo",
    "iso_date",
    "json_response",
    "repo_not_found",
    "repo_url",
    "resolve_revision",
    "valid_name",
]

URL_PREFIXES = {"model": "", "dataset": "datasets/", "space": "spaces/"}
MAX_JSON_BODY = 64 * 1024 * 1024


@dataclasses.dataclass
class HubConfig:
    """Behaviour switches of one local Hub (see ``LocalHub`` for their meaning)."""

    runtime_delay: float = 0.0
    free_account_policy: str = "off"
    tree_page_size: int = 1000
    commits_page_size: int = 50
    lfs_threshold: int = 10 * 1024 * 1024
    rate_limit: RateLimit | None = None
    commit_quota: RateLimit | None = None


class HubState:
    """Everything the request handlers share: stores, accounts, faults, config, quotas and the advertised endpoint.

    ``stopping`` is set when the server stops, so that log streams still waiting for lines end at once.
    """

    def __init__(self, store: RepoStore, lfs: LfsStore, accounts: Accounts, faults: FaultInjector, config: HubConfig,
                 signing_key: bytes):
        self.store = store
        self.lfs = lfs
        self.accounts = accounts
        self.faults = faults
        self.config = config
        self.endpoint = ""  # set once the server is bound: "http://127.0.0.1:PORT"
        self.request_quota = RequestQuota(config.rate_limit) if config.rate_limit else None
        self.commit_quota = CommitQuota(config.commit_quota) if config.commit_quota else None
        self.stopping = threading.Event()
        self.runner: Any = None  # a spacerun.SpaceRunner when Spaces really run (LocalHub(run_spaces=True))
        self._signing_key = signing_key
        self._counts: collections.Counter[str] = collections.Counter()
        self._timeline: collections.deque[tuple[str, float, float]] = collections.deque(maxlen=10_000)
        self._counts_lock = threading.Condition()
        self._in_flight = 0

    def count(self, route: str) -> None:
        """Counts a request of ``route``; it is in flight until ``finish()``."""
        with self._counts_lock:
            self._counts[route] += 1
            self._in_flight += 1

    def finish(self) -> None:
        """A request counted by ``count()`` is over: answered and recorded, dropped, or failed."""
        with self._counts_lock:
            self._in_flight -= 1
            self._counts_lock.notify_all()

    def request_counts(self) -> dict[str, int]:
        with self._counts_lock:
            return dict(self._counts)

    def record(self, route: str, started: float, finished: float) -> None:
        with self._counts_lock:
            self._timeline.append((route, started, finished))

    def request_timeline(self, settle: float = 2.0) -> list[tuple[str, float, float]]:
        """The answered requests; waits up to ``settle`` seconds for requests in flight to be recorded.

        A client has the answer before the server records it: without the wait, the last request a caller made
        could be missing.
        """
        with self._counts_lock:
            self._counts_lock.wait_for(lambda: self._in_flight == 0, timeout=settle)
            return list(self._timeline)

    def sign(self, *parts: str) -> str:
        """Signature for URLs handed out without credentials (LFS upload/download hrefs)."""
        return hmac.new(self._signing_key, "\n".join(parts).encode(), hashlib.sha256).hexdigest()[:32]

    def check_signature(self, signature: str, *parts: str) -> bool:
        return hmac.compare_digest(signature, self.sign(*parts))


class HubError(Exception):
    """An error answer: ``status``, message (header and body), optional ``code`` and extra body fields."""

    def __init__(self, status: int, message: str, code: str | None = None, *, headers: dict[str, str] | None = None,
                 extra: dict[str, Any] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})

    @classmethod
    def from_storage(cls, err: StorageError, headers: dict[str, str] | None = None) -> HubError:
        return cls(err.status, str(err), err.code, headers=headers)

    def to_response(self) -> Response:
        headers = dict(self.headers)
        headers["X-Error-Message"] = _header_safe(self.message)
        if self.code:
            headers["X-Error-Code"] = self.code
        return json_response({"error": self.message, **self.extra}, status=self.status, headers=headers)


def _header_safe(text: str) -> str:
    return text.replace("\r", " ").replace("\n", " ").encode("latin-1", "replace").decode("latin-1")[:2000]


@dataclasses.dataclass
class Response:
    """An answer: a bytes ``body``, a ``stream`` of ``length`` bytes (files are sent in chunks), or ``events``.

    ``events`` yields the parts of a body of unknown length as they become available (server-sent events); they are
    sent with chunked transfer encoding, each part as soon as it is yielded.
    """

    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    stream: BinaryIO | None = None
    length: int | None = None
    events: Iterator[bytes] | None = None


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None,
                  content_type: str = "application/json") -> Response:
    return Response(status, json.dumps(data).encode(), content_type, dict(headers or {}))


class BodyReader:
    """The request body, read incrementally (``Content-Length`` or chunked transfer encoding)."""

    def __init__(self, rfile: BinaryIO, headers: email.message.Message):
        self._rfile = rfile
        self.chunked = "chunked" in (headers.get("Transfer-Encoding") or "").lower()
        self.remaining = 0 if self.chunked else int(headers.get("Content-Length") or 0)
        self._chunk_left = 0
        self.finished = not self.chunked and self.remaining == 0

    def read(self, size: int = 1024 * 1024) -> bytes:
        """Up to ``size`` bytes; ``b""`` at the end of the body."""
        if self.finished:
            return b""
        if not self.chunked:
            data = self._rfile.read(min(size, self.remaining))
            if not data:
                raise ConnectionError("client closed the connection in the middle of the request body")
            self.remaining -= len(data)
            self.finished = self.remaining == 0
            return data
        if self._chunk_left == 0:
            line = self._rfile.readline(65537)
            chunk_size = int(line.split(b";", 1)[0].strip() or b"0", 16)
            if chunk_size == 0:
                while self._rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                self.finished = True
                return b""
            self._chunk_left = chunk_size
        data = self._rfile.read(min(size, self._chunk_left))
        if not data:
            raise ConnectionError("client closed the connection in the middle of a chunked request body")
        self._chunk_left -= len(data)
        if self._chunk_left == 0:
            self._rfile.readline(3)  # CRLF after each chunk
        return data

    def chunks(self, size: int = 1024 * 1024) -> Iterator[bytes]:
        while True:
            data = self.read(size)
            if not data:
                return
            yield data

    def read_all(self, limit: int = MAX_JSON_BODY) -> bytes:
        parts, total = [], 0
        for data in self.chunks():
            total += len(data)
            if total > limit:
                raise HubError(413, f"Request body larger than {limit} bytes")
            parts.append(data)
        return b"".join(parts)

    def lines(self) -> Iterator[bytes]:
        """The body split on newlines (for ndjson), without holding more than one line in memory."""
        pending = b""
        for data in self.chunks():
            pending += data
            *complete, pending = pending.split(b"\n")
            yield from complete
        if pending:
            yield pending

    def drain(self, limit: int) -> bool:
        """Reads and discards what is left of the body, up to ``limit`` bytes; True if the body is fully read."""
        read = 0
        try:
            while not self.finished and read <= limit:
                read += len(self.read())
        except (ConnectionError, ValueError, OSError):
            return False
        return self.finished


@dataclasses.dataclass
class Request:
    """One request, as the endpoint functions see it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: email.message.Message
    body: BodyReader
    state: HubState
    identity: Identity | None

    @property
    def base_url(self) -> str:
        """Scheme, host and port for URLs in answers: the client's own (``Host`` header), else the advertised one.

        The client rejects URLs whose host differs from its endpoint (``localhost`` vs ``127.0.0.1``), so answers
        use exactly the host the client used.
        """
        host = self.headers.get("Host")
        if host and re.match(r"^[A-Za-z0-9.\-\[\]:]+$", host):
            return f"http://{host}"
        return self.state.endpoint

    def param(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default

    def int_param(self, name: str, default: int) -> int:
        value = self.param(name)
        if value is None or value == "":
            return default
        if not value.isdigit():
            raise HubError(400, f"Query parameter {name}={value!r} must be a non-negative integer")
        return int(value)

    def flag(self, name: str) -> bool:
        return (self.param(name) or "").lower() in ("1", "true", "yes")

    def json(self) -> Any:
        raw = self.body.read_all()
        if not raw.strip():
            return {}
        try:
            return json.loads(raw)
        except (ValueError, UnicodeDecodeError) as err:
            raise HubError(400, f"Request body is not valid JSON: {err}") from None

    def json_object(self) -> dict[str, Any]:
        data = self.json()
        if not isinstance(data, dict):
            raise HubError(400, f"Request body must be a JSON object, got {type(data).__name__}")
        return data

    def form(self) -> dict[str, list[str]]:
        return urllib.parse.parse_qs(self.body.read_all().decode("utf-8", "replace"), keep_blank_values=True)

    def require_identity(self) -> Identity:
        if self.identity is None:
            raise HubError(
                401, "Authentication required: send 'Authorization: Bearer <token>' with a token of this local Hub"
            )
        return self.identity


def repo_url(base_url: str, repo_type: str, repo_id: str) -> str:
    return f"{base_url}/{URL_PREFIXES[repo_type]}{repo_id}"


def iso_date(timestamp: float) -> str:
    """The Hub's date format, ``2024-05-01T12:00:00.000Z``."""
    moment = datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def find_repo(request: Request, repo_type: str, repo_id: str, *, write: bool = False,
              member: bool = False) -> Repository:
    """The repository if the caller may see it (and write to it, or is a member of its namespace, when asked).

    Raises:
        HubError: 401 when writing anonymously, 404 ``RepoNotFound`` when it does not exist or is private to
            someone else, 403 when the caller may see it but not write to it.
    """
    identity = request.identity
    if (write or member) and identity is None:
        request.require_identity()
    repo = request.state.store.get(repo_type, repo_id)
    if repo is None or not can_see(identity, repo):
        raise repo_not_found(repo_type, repo_id)
    namespace = repo.namespace  # as spelled on the Hub: repo ids are resolved case-insensitively
    if identity is not None and (write or member) and not identity.is_member(namespace):
        raise HubError(403, f"You don't have the rights to change {repo_type} {repo_id!r}: it is not in your "
                       f"namespace {identity.name!r} or one of your organisations")
    if identity is not None and write and identity.role != "write":
        raise HubError(403, f"This token of {identity.name!r} has read access only: use a write token to change "
                       f"{repo_type} {repo_id!r}")
    if identity is not None and write and not identity.can_write(namespace, repo.settings.get("created_by")):
        raise HubError(403, f"{identity.name!r} is a {identity.role_in(namespace)} member of {namespace!r}, which "
                       f"may not change {repo_type} {repo_id!r}: ask an admin of {namespace!r} for the write role")
    return repo


GATED_VALUES = ("auto", "manual", False)


def check_gate(request: Request, repo: Repository) -> None:
    """Refuses a file download from a gated repository to whoever is not a member of its namespace.

    The Hub's ``GatedRepo`` error (the client raises GatedRepoError): 401 when anonymous, 403 for another user.
    Members (the owner, the organisation's members) are unaffected; access requests are not modelled, so no one else
    is ever granted access. Metadata (repo info, tree, commits) stays readable, as on the Hub.
    """
    if not repo.settings.get("gated") or (request.identity is not None and request.identity.is_member(repo.namespace)):
        return
    name = f"{repo.repo_type} {repo.repo_id}"
    if request.identity is None:
        raise HubError(401, f"Access to {name} is restricted. You must have access to it and be authenticated to "
                       "access it. Please log in.", "GatedRepo")
    raise HubError(403, f"Access to {name} is restricted and you are not in the authorized list. Visit "
                   f"{repo_url(request.base_url, repo.repo_type, repo.repo_id)} to ask for access.", "GatedRepo")


def can_see(identity: Identity | None, repo: Repository) -> bool:
    """True if the caller may read ``repo``: it is public, or the caller is a member of its namespace."""
    return not repo.private or (identity is not None and identity.is_member(repo.namespace))


def repo_not_found(repo_type: str, repo_id: str) -> HubError:
    """The Hub's 404 ``RepoNotFound`` (the client raises RepositoryNotFoundError, ``repo_exists`` says False)."""
    hint = "" if "/" in repo_id else " Repo ids on this local Hub are 'namespace/name'."
    return HubError(
        404,
        f"Repository Not Found: {repo_type} {repo_id!r} does not exist, or it is private and this token cannot "
        f"see it. Check the repo_id and repo_type, or create it first.{hint}",
        "RepoNotFound",
    )


def resolve_revision(repo: Repository, revision: str | None) -> str:
    """Commit SHA of ``revision``; 404 ``RevisionNotFound`` if it is not a branch, tag or commit of ``repo``."""
    sha = repo.resolve(revision)
    if sha is None:
        raise HubError(
            404,
            f"Invalid rev id: {revision!r} is not a branch, tag, pull request ref or commit SHA of {repo.repo_id!r}",
            "RevisionNotFound",
        )
    return sha
