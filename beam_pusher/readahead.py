"""Reading every Space while a local pipeline starts, so that each push finds its Space already read.

When the pipeline's workers share the launching process (``RunnerKind.IN_PROCESS``, the default local run), the
first seconds of a deploy go to building and starting the pipeline and to reading and rendering the templates;
no push can send a request before that is over. ``reading_ahead`` sends the reads each push starts with
(``SpacePusher.read_space``: the Space, and its secrets and variables) in that time, from a pool of its own, and a
push takes its read (``take_read``) instead of sending it again. On a no-op redeploy those reads are all the Hub
work there is, so it overlaps entirely with the pipeline's own.

What a push decides is unchanged but for when: it plans against a read made when the run started, a few seconds
earlier than it would have. A push that commits sends the head it read as ``parent_commit``, so a change made in
between is re-planned (412), never overwritten unseen; a push that finds nothing to change reports the head it
read, as a deploy run a few seconds earlier would have. A read
is taken once, by the push for the same Hub, token reference and repository in this process; a read that failed is
sent again by the push, which reports its error. Runners whose workers are other processes or machines (Dataflow)
read in the push step as before: nothing is shared between processes.

Example::

    with reading_ahead(HubSettings(endpoint=endpoint, token="env:HF_TOKEN"), specs):
        ...  # run the pipeline in this process; SpacePusher.push takes the reads
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from beam_pusher.commit import HubSettings
from beam_pusher.errors import BeamPusherError
from beam_pusher.spec import SpaceSpec

__all__ = ["ReadsAhead", "reading_ahead", "take_read"]

logger = logging.getLogger(__name__)

_READS: dict[tuple[str | None, str | None, str], concurrent.futures.Future] = {}
_LOCK = threading.Lock()


def _key(settings: HubSettings, repo_id: str) -> tuple[str | None, str | None, str]:
    return settings.endpoint, settings.token, repo_id


class ReadsAhead:
    """The reads one ``reading_ahead`` sent."""

    def __init__(self) -> None:
        self._futures: list[concurrent.futures.Future] = []

    def wait(self, timeout: float | None = None) -> None:
        """Blocks until every read is made (or failed), at most ``timeout`` seconds."""
        concurrent.futures.wait(self._futures, timeout)


@contextlib.contextmanager
def reading_ahead(settings: HubSettings, specs: Sequence[SpaceSpec], *, max_workers: int = 16
                  ) -> Iterator[ReadsAhead]:
    """Reads the Spaces of ``specs`` in the background while inside; reads no push took are dropped on exit."""
    from beam_pusher.hub import SpacePusher

    reads = ReadsAhead()
    try:
        pusher = SpacePusher(settings)
    except BeamPusherError:  # no token, say: the push step reports it for every Space
        yield reads
        return
    pool = concurrent.futures.ThreadPoolExecutor(max_workers, thread_name_prefix="read-ahead")
    keys = []
    try:
        with _LOCK:
            for spec in specs:
                key = _key(settings, spec.repo_id)
                if key not in _READS:
                    _READS[key] = pool.submit(pusher.read_space, spec)
                    reads._futures.append(_READS[key])
                    keys.append(key)
        yield reads
    finally:
        with _LOCK:
            for key in keys:
                _READS.pop(key, None)
        pool.shutdown(wait=False, cancel_futures=True)


def take_read(settings: HubSettings, spec: SpaceSpec) -> Any:
    """The read ``reading_ahead`` made of ``spec``'s Space for a pusher with ``settings``, once; else None."""
    with _LOCK:
        future = _READS.pop(_key(settings, spec.repo_id), None)
    if future is None:
        return None
    try:
        return future.result()
    except Exception as exc:  # noqa: BLE001 - the push reads again and reports what fails
        logger.debug("%s: the read ahead failed (%s); the push reads again", spec.repo_id, type(exc).__name__)
        return None
