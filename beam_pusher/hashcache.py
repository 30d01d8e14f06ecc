"""Hashes of remote files, remembered by the storage's own version of each object, so an unchanged model is not
read again.

Every deploy compares each file's hash with the Space's remote tree. For a file on a remote filesystem (``gs://``,
``s3://``, ``hf://``, ...) that means reading it whole, over the network, each time: a 1 GiB model costs a 1 GiB
read on every no-op redeploy. The storage already knows when an object changed, so ``render_source`` asks it
first (one metadata request) and looks the hashes up by a key made of:

- the file's URL and its size, and
- the storage's version of the object: GCS ``generation`` (with ``md5Hash`` or ``crc32c``), S3 ``ETag`` (with
  ``VersionId`` when the bucket keeps versions), the Hub's ``blob_id`` for ``hf://``; on other filesystems the
  modification time fsspec reports (``mtime``, ``LastModified``, ``updated``, ...).

A filesystem whose ``info`` has none of these gets no key, and so no cache: it is read as before. A key changes
whenever the object does (a new generation or ETag, however equal the size), so a stale hash is never used; and an
entry is written only when the key before reading equals the key after it, so a file that changed while it was
hashed is not remembered under either version. A modification time can miss a second write of the same size within
its clock's tick, so a file known by its time alone is cached only once that time is two seconds old (as git treats
"racy" files); a time this module cannot read as one is never trusted. Only binary files go into the cache: a text
file's hashes depend on its Space's placeholders, and its rendering must be read anyway. Files under ``MIN_SIZE`` are
read as before (a metadata request costs about what reading them does), and local and ``memory://`` files too
(reading them costs nothing over the network).

The cache is a folder of small JSON files, one per key, named by the sha256 of the key; each holds the file's size,
sha256 and, up to the git blob limit, its git sha1: never content, URLs or credentials. It is safe for processes
that share it: an entry is written to a temporary file and renamed into place, so a reader sees a whole entry or
none. An entry that cannot be read or does not parse is ignored (logged at DEBUG) and rewritten after the next read;
so is a cache folder that cannot be written. Nothing is ever evicted; entries are about 200 bytes, and deleting the
folder is always safe.

Where it lives: ``hash_cache=`` of ``RenderPlaceholders``/``DeploySpaces`` (a folder, or False for none), else the
``BEAM_PUSHER_HASH_CACHE`` environment variable (a folder, or ``off``), else ``~/.cache/beam-pusher/hashes``
(``$XDG_CACHE_HOME/beam-pusher/hashes`` when that is set). The folder is resolved where files are hashed: on a
Dataflow worker that is the worker's own disk, which starts empty with every job, so on Dataflow every deploy reads
remote files as it did before this cache.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import logging
import os
import re
import tempfile
import time
from collections.abc import Callable, Mapping
from typing import Any

from beam_pusher.errors import SpecError
from beam_pusher.hashing import GIT_BLOB_LIMIT, FileHashes
from beam_pusher.templates import RenderedFile, render_file

__all__ = [
    "CACHE_ENV", "MIN_SIZE", "HashCache", "check_setting", "default_cache_folder", "object_key", "open_cache",
    "render_source",
]

logger = logging.getLogger(__name__)

CACHE_ENV = "BEAM_PUSHER_HASH_CACHE"
"""Environment variable naming the cache folder; ``off`` turns the cache off."""

MIN_SIZE = 256 * 1024
"""Files smaller than this are read every time: asking the storage for their version costs about as much."""

_FORMAT = 1
_HEX = re.compile(r"[0-9a-f]+")
_NO_CACHE_PROTOCOLS = frozenset({"file", "local", "memory"})
# Keys fsspec filesystems report a modification time under, for those with no object version of their own.
_MTIME_KEYS = ("mtime", "LastModified", "last_modified", "updated", "modified")
_SETTLE_SECONDS = 2.0


def default_cache_folder() -> str | None:
    """The folder ``BEAM_PUSHER_HASH_CACHE`` names, else ``~/.cache/beam-pusher/hashes``; None when it says ``off``."""
    configured = os.environ.get(CACHE_ENV, "").strip()
    if configured.lower() == "off":
        return None
    if configured:
        return os.path.abspath(os.path.expanduser(configured))
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "beam-pusher", "hashes")


def check_setting(setting: Any) -> None:
    """Checks a ``hash_cache=`` value: True (the default folder), False (no cache) or a folder path.

    Raises:
      SpecError: anything else.
    """
    if isinstance(setting, bool) or (isinstance(setting, str) and setting.strip()):
        return
    raise SpecError(
        f"hash_cache={setting!r} is not a cache setting: give True (the default folder, or {CACHE_ENV}), False "
        "(hash remote files on every deploy) or the path of a folder."
    )


def open_cache(setting: bool | str = True) -> HashCache | None:
    """The cache a ``hash_cache=`` setting names, resolved here (on the worker); None when it is off."""
    check_setting(setting)
    if setting is False:
        return None
    folder = default_cache_folder() if setting is True else os.path.abspath(os.path.expanduser(setting))
    return HashCache(folder) if folder else None


def _storage_version(info: Mapping[str, Any]) -> list[tuple[str, str]] | None:
    """What the storage says identifies this version of the object, or None when it says nothing usable."""
    if info.get("generation"):  # GCS: a new generation on every write
        return [("generation", str(info["generation"])), ("md5", str(info.get("md5Hash") or info.get("crc32c")))]
    if info.get("ETag"):  # S3 and S3-compatible stores
        return [("etag", str(info["ETag"])), ("version_id", str(info.get("VersionId") or ""))]
    if info.get("blob_id"):  # hf://: the git blob of the file (for an LFS file, of its pointer, which holds its sha256)
        return [("blob_id", str(info["blob_id"]))]
    for name in _MTIME_KEYS:
        if info.get(name) is not None:
            return [(name, str(info[name]))]
    return None


def object_key(url: str, info: Mapping[str, Any]) -> str | None:
    """The cache key of the object ``info`` (fsspec's ``info`` for ``url``) describes; None when it has no version.

    The key is a sha256 of the URL, the size and the storage's version, so neither the URL nor anything in it is
    written to the cache.
    """
    version = _storage_version(info)
    size = info.get("size")
    if version is None or not isinstance(size, int):
        return None
    blob = json.dumps({"url": url, "size": size, "version": version}, sort_keys=True)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


@dataclasses.dataclass(frozen=True)
class HashCache:
    """Hashes of files by ``object_key``: a folder of small JSON files, safe to share between processes.

    Attributes:
      folder: Where the entries are. Created when the first entry is written.

    Example::

        cache = HashCache(os.path.expanduser("~/.cache/beam-pusher/hashes"))
        cache.store(key, hashes)
        assert cache.lookup(key, hashes.size) == hashes
    """

    folder: str

    def _entry(self, key: str) -> str:
        return os.path.join(self.folder, key[:2], key[2:] + ".json")

    def lookup(self, key: str, size: int) -> FileHashes | None:
        """The hashes stored under ``key`` for a file of ``size`` bytes; None when there are none or none usable."""
        path = self._entry(key)
        try:
            with open(path, encoding="utf-8") as f:
                entry = json.load(f)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            logger.debug("hash cache: ignoring unreadable entry %s: %s: %s", path, type(exc).__name__, exc)
            return None
        hashes = _parse(entry, key, size)
        if hashes is None:
            logger.debug("hash cache: ignoring entry %s: not an entry of this file in format %d", path, _FORMAT)
        return hashes

    def store(self, key: str, hashes: FileHashes) -> None:
        """Writes the entry for ``key`` atomically (a temporary file renamed into place); a failure is only logged."""
        path = self._entry(key)
        entry = {"format": _FORMAT, "key": key, "size": hashes.size, "sha256": hashes.sha256,
                 "git_sha1": hashes.git_sha1}
        temporary = None
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with tempfile.NamedTemporaryFile("w", dir=os.path.dirname(path), prefix=".tmp-", suffix=".json",
                                             delete=False, encoding="utf-8") as f:
                temporary = f.name
                json.dump(entry, f)
            os.replace(temporary, path)
        except OSError as exc:
            logger.debug("hash cache: cannot write %s: %s: %s", path, type(exc).__name__, exc)
            if temporary is not None and os.path.exists(temporary):
                os.unlink(temporary)


def _parse(entry: Any, key: str, size: int) -> FileHashes | None:
    """The hashes of a well-formed entry for ``key`` and ``size``, else None."""
    if not isinstance(entry, dict) or entry.get("format") != _FORMAT or entry.get("key") != key:
        return None
    sha256, git_sha1 = entry.get("sha256"), entry.get("git_sha1")
    if entry.get("size") != size or not _is_hex(sha256, 64):
        return None
    if (git_sha1 is None) != (size > GIT_BLOB_LIMIT) or (git_sha1 is not None and not _is_hex(git_sha1, 40)):
        return None
    return FileHashes(size, sha256, git_sha1)


def _is_hex(value: Any, length: int) -> bool:
    return isinstance(value, str) and len(value) == length and _HEX.fullmatch(value) is not None


# Reading through the cache -------------------------------------------------------------------------------------


def _cacheable(url: str, size: int):
    """``(fs, path)`` of a file the cache may serve; None for local, in-memory, chained and small files."""
    if size < MIN_SIZE or "::" in url or "://" not in url:
        return None
    import fsspec.core

    fs, path = fsspec.core.url_to_fs(url)
    protocols = {fs.protocol} if isinstance(fs.protocol, str) else set(fs.protocol)
    return None if protocols & _NO_CACHE_PROTOCOLS else (fs, path)


def _current_key(fs, path: str, url: str) -> tuple[str | None, bool]:
    """The key of the object as the storage has it now (not as a listing this process made earlier saw it), and
    whether its hashes may be stored under it."""
    fs.invalidate_cache(path)
    info = fs.info(path)
    return object_key(url, info), not _racy(info)


def _racy(info: Mapping[str, Any]) -> bool:
    """Whether a version told by modification time alone is so recent that a write of the same size could still
    follow within the same tick of that clock (git's "racy" files): such a file is not cached until it settles."""
    version = _storage_version(info)
    if version is None or version[0][0] not in _MTIME_KEYS:
        return False
    mtime = info[version[0][0]]
    if isinstance(mtime, datetime.datetime):
        mtime = mtime.timestamp() if mtime.tzinfo else mtime.replace(tzinfo=datetime.timezone.utc).timestamp()
    if not isinstance(mtime, (int, float)):
        return True  # a time this module cannot read: never trusted to be settled
    return time.time() - mtime < _SETTLE_SECONDS


def render_source(
    url: str,
    size: int,
    open_source: Callable[[], Any],
    values: Mapping[str, str],
    *,
    path: str,
    strict: bool = False,
    cache: HashCache | None = None,
) -> RenderedFile:
    """``templates.render_file`` for the file at ``url``, with the hashes of an unchanged remote binary from ``cache``.

    Without a cache, or for a file the cache does not serve (see the module docstring), this is ``render_file``.
    Otherwise the storage is asked for the object's version: a known version gives its hashes without reading a
    byte; an unknown one is read and rendered as usual, and, when it is binary and did not change while it was
    read, its hashes are stored.

    Raises:
      OSError: as ``render_file``, or the storage cannot say what the object is.
    """
    where = _cacheable(url, size) if cache is not None else None
    if where is None:
        return render_file(open_source, size, values, path=path, strict=strict)
    fs, fs_path = where
    key, storable = _current_key(fs, fs_path, url)
    if key is not None:
        hashes = cache.lookup(key, size)
        if hashes is not None:
            logger.debug("hashes of %s from the cache: the storage has the version it had when it was hashed", path)
            return RenderedFile(hashes, cached=True)
    out = render_file(open_source, size, values, path=path, strict=strict)
    binary = out.content is None and out.rendering is None and not out.streamed
    if key is not None and storable and binary:
        if _current_key(fs, fs_path, url)[0] == key:
            cache.store(key, out.hashes)
        else:
            logger.debug("not caching the hashes of %s: it changed while it was read", path)
    return out
