"""One upload per LFS object and Hub in a worker, however many of its Spaces share the object.

A fleet made from one template pushes the same model, images and weights to every Space, and a worker pushes up to
``parallel_pushes`` Spaces at once. The Hub keeps LFS objects by their sha256 and answers an upload request for an
object it already has with "nothing to do"; but Spaces whose pushes start together all ask before any has uploaded,
so each sends the same bytes again (and the Hub verifies each copy). ``SharedUploads`` orders them: the first push
that needs an object claims it, the pushes that need it later wait until that upload is over, and their upload
request then finds the object stored. Only the waiting is shared; each push still asks the Hub itself, so a Hub that
keeps objects per repository, or an upload that failed, costs a second upload and never a broken commit.

Claims are taken together, under one lock, for all the objects of a push: a push waits only for pushes that
claimed before it, so two pushes never wait for each other.

Example::

    with shared_uploads(api.endpoint).claim(sha256s):
        api.preupload_lfs_files(repo_id, additions=additions, repo_type="space")
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterable, Iterator

__all__ = ["SharedUploads", "shared_uploads"]

logger = logging.getLogger(__name__)

# A claim held longer than this (a stalled upload) no longer holds others back: they upload for themselves.
_MAX_WAIT_SECONDS = 600.0


class SharedUploads:
    """The LFS objects (by sha256) that the pushes of this process upload, or uploaded, to one Hub."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._uploads: dict[str, threading.Event] = {}  # set once its upload is over (stored or not)

    @contextlib.contextmanager
    def claim(self, sha256s: Iterable[str]) -> Iterator[None]:
        """Waits for the uploads of ``sha256s`` other pushes claimed before, then claims the rest while inside.

        On a normal exit the claimed objects count as stored: later pushes do not wait for them. On an exception
        they are released, so the next push that needs them uploads them itself.
        """
        mine: list[str] = []
        theirs: list[threading.Event] = []
        with self._lock:
            for sha256 in dict.fromkeys(sha256s):
                event = self._uploads.get(sha256)
                if event is None:
                    self._uploads[sha256] = threading.Event()
                    mine.append(sha256)
                elif not event.is_set():
                    theirs.append(event)
        if theirs:
            logger.debug("waiting for %d object(s) another push of this worker is uploading", len(theirs))
        for event in theirs:
            event.wait(_MAX_WAIT_SECONDS)
        try:
            yield
        except BaseException:
            with self._lock:
                for sha256 in mine:
                    self._uploads.pop(sha256).set()
            raise
        for sha256 in mine:
            self._uploads[sha256].set()


_BY_HUB: dict[str, SharedUploads] = {}
_BY_HUB_LOCK = threading.Lock()


def shared_uploads(endpoint: str) -> SharedUploads:
    """The ``SharedUploads`` of the Hub at ``endpoint`` in this process."""
    with _BY_HUB_LOCK:
        return _BY_HUB.setdefault(endpoint.rstrip("/"), SharedUploads())
