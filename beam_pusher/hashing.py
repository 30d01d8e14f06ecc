"""The hashes the Hub compares files by, computed in one streamed pass.

LFS files are identified by the sha256 of their content, regular files by their git blob sha1. The Hub stores a
file as a regular git blob only up to 10 MiB (larger ones must go through LFS), so the sha1 is computed only up to
that size: for a model of gigabytes it would be a second full pass over the data that no comparison ever uses.
Files are read in chunks, so hashing a model never holds more than one chunk in memory.
"""

from __future__ import annotations

import hashlib
from typing import BinaryIO

__all__ = ["CHUNK_SIZE", "GIT_BLOB_LIMIT", "FileHashes", "hash_bytes", "hash_stream"]

CHUNK_SIZE = 8 * 1024 * 1024
GIT_BLOB_LIMIT = 10 * 1024 * 1024  # the largest file the Hub keeps as a regular git blob


class FileHashes(tuple):
    """``(size, sha256_hex, git_sha1_hex)``; ``git_sha1`` is None above ``GIT_BLOB_LIMIT``."""

    __slots__ = ()

    def __new__(cls, size: int, sha256: str, git_sha1: str | None):
        return super().__new__(cls, (size, sha256, git_sha1))

    size = property(lambda self: self[0])
    sha256 = property(lambda self: self[1])
    git_sha1 = property(lambda self: self[2])


def _git_sha1(size: int):
    return hashlib.sha1(b"blob %d\0" % size) if size <= GIT_BLOB_LIMIT else None


def hash_bytes(data: bytes) -> FileHashes:
    """Hashes of an in-memory file."""
    sha1 = _git_sha1(len(data))
    if sha1 is not None:
        sha1.update(data)
    return FileHashes(len(data), hashlib.sha256(data).hexdigest(), sha1 and sha1.hexdigest())


def hash_stream(stream: BinaryIO, size: int) -> FileHashes:
    """Hashes of a file of ``size`` bytes, read to its end in chunks.

    The git blob header needs the size up front, so a file that changed size between listing and reading is an
    error (OSError) rather than a wrong hash.
    """
    sha256 = hashlib.sha256()
    sha1 = _git_sha1(size)
    read = 0
    while chunk := stream.read(CHUNK_SIZE):
        sha256.update(chunk)
        if sha1 is not None:
            sha1.update(chunk)
        read += len(chunk)
    if read != size:
        raise OSError(f"the file changed while it was read: listed as {size} bytes, read {read}")
    return FileHashes(read, sha256.hexdigest(), sha1 and sha1.hexdigest())
