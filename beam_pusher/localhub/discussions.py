"""Discussions and pull requests of one repository: numbered threads of events, kept next to its git data.

Discussions and pull requests share one numbering per repository, as on the Hub. A pull request ``N`` is the git ref
``refs/pr/N`` of the repository (commits pushed to it are real commits; merging it is a real git merge, see
``Repository.merge``) plus its thread here: the opening comment, comments, commits, title and status changes.
Threads are stored as one JSON file inside the repository's bare git directory (``discussions.json``), which git
ignores and which moves and disappears with the repository; writes happen under the repository's lock.

Statuses are the Hub's: a discussion is ``open`` or ``closed``; a pull request opened empty is a ``draft`` until its
first commit, then ``open``, and ends ``merged`` or ``closed``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import tempfile
import time
from typing import Any

from beam_pusher.localhub.storage import Repository, StorageError

__all__ = ["Discussion", "DiscussionStore", "Event", "OPEN_STATUSES"]

OPEN_STATUSES = ("open", "draft")
_FILE = "discussions.json"


@dataclasses.dataclass(frozen=True)
class Event:
    """One event of a thread: ``type`` is ``comment``, ``commit``, ``status-change`` or ``title-change``.

    ``data`` is the type's payload: a comment's ``raw`` text, ``edited``/``hidden`` flags and ``history`` of earlier
    texts; a commit's ``subject`` and ``oid``; a status change's ``status``; a title change's ``from`` and ``to``.
    """

    id: str
    type: str
    author: str
    created_at: float
    data: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Discussion:
    """A discussion, or a pull request when ``is_pull_request`` (then ``target_branch`` is what it merges into)."""

    num: int
    title: str
    author: str
    created_at: float
    status: str
    is_pull_request: bool
    events: tuple[Event, ...] = ()
    target_branch: str | None = None
    merge_commit: str | None = None

    @property
    def git_reference(self) -> str | None:
        return f"refs/pr/{self.num}" if self.is_pull_request else None

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    def comment(self, event_id: str) -> Event:
        for event in self.events:
            if event.id == event_id and event.type == "comment":
                return event
        raise StorageError(404, f"Comment {event_id!r} not found in discussion #{self.num}: use the id of one of its "
                           "comments (get_discussion_details lists them)")


def new_event(kind: str, author: str, **data: Any) -> Event:
    """An event dated now, with a fresh 24-hex id as the Hub's."""
    return Event(secrets.token_hex(12), kind, author, time.time(), dict(data))


def comment_event(author: str, text: str) -> Event:
    return new_event("comment", author, raw=text, edited=False, hidden=False, history=[])


class DiscussionStore:
    """The threads of one repository.

    Args:
        repo: the repository; every change is made under ``repo.lock``.
    """

    def __init__(self, repo: Repository):
        self.repo = repo
        self._path = repo.git.path / _FILE

    def _load(self) -> dict[str, Any]:
        try:
            return json.loads(self._path.read_text())
        except FileNotFoundError:
            return {"next": 1, "items": []}

    def _save(self, data: dict[str, Any]) -> None:
        fd, tmp = tempfile.mkstemp(dir=self._path.parent, prefix=".tmp_")
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=1)
        os.replace(tmp, self._path)

    def all(self) -> list[Discussion]:
        """Every thread, newest first."""
        return sorted((_from_json(item) for item in self._load()["items"]), key=lambda d: d.num, reverse=True)

    def get(self, num: int) -> Discussion:
        for item in self._load()["items"]:
            if item["num"] == num:
                return _from_json(item)
        raise StorageError(404, f"Discussion #{num} not found in {self.repo.repo_id!r}: get_repo_discussions lists "
                           "the numbers that exist")

    def next_number(self) -> int:
        """The number the next thread gets; call with ``repo.lock`` held until ``create`` has used it."""
        return int(self._load()["next"])

    def create(self, discussion: Discussion) -> Discussion:
        """Stores a new thread; its ``num`` must be ``next_number()``."""
        with self.repo.lock:
            data = self._load()
            if discussion.num != data["next"]:
                raise StorageError(409, f"Discussion number {discussion.num} is taken: retry")
            data["items"].append(_to_json(discussion))
            data["next"] = discussion.num + 1
            self._save(data)
        return discussion

    def update(self, discussion: Discussion) -> Discussion:
        """Replaces the stored thread of the same number."""
        with self.repo.lock:
            data = self._load()
            data["items"] = [_to_json(discussion) if item["num"] == discussion.num else item for item in data["items"]]
            self._save(data)
        return discussion

    def add_events(self, num: int, *events: Event, **changes: Any) -> Discussion:
        """Appends ``events`` to thread ``num`` and applies field ``changes`` (``status=...``), atomically."""
        with self.repo.lock:
            found = self.get(num)
            return self.update(dataclasses.replace(found, events=found.events + events, **changes))

    def replace_event(self, num: int, event: Event) -> Discussion:
        with self.repo.lock:
            found = self.get(num)
            events = tuple(event if old.id == event.id else old for old in found.events)
            return self.update(dataclasses.replace(found, events=events))


def _to_json(discussion: Discussion) -> dict[str, Any]:
    return dataclasses.asdict(discussion)


def _from_json(item: dict[str, Any]) -> Discussion:
    events = tuple(Event(**event) for event in item.get("events", ()))
    return Discussion(**{**item, "events": events})
