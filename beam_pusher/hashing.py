"""The two hashes the Hub compares files by, computed in one streamed pass.

Regular files are identified by their git blob sha1, LFS files by the sha256 of their content. Both are computed
together while a file is read once in chunks, so hashing a model never holds more than two chunks in memory. For
large files the sha1 runs on a second thread beside the sha256 (hashlib releases the GIL on big updates), which
makes hashing both about as fast as hashing one.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
from typing import BinaryIO

__all__ = ["CHUNK_SIZE", "FileHashes", "hash_bytes", "hash_stream"]

CHUNK_SIZE = 8 * 1024 * 1024


class FileHashes(tuple):
    """``(size, sha256_hex, git_sha1_hex)``."""

    __slots__ = ()

    def __new__(cls, size: int, sha256: str, git_sha1: str):
        return super().__new__(cls, (size, sha256, git_sha1))

    size = property(lambda self: self[0])
    sha256 = property(lambda self: self[1])
    git_sha1 = property(lambda self: self[2])


def hash_bytes(data: bytes) -> FileHashes:
    """Hashes of an in-memory file."""
    sha1 = hashlib.sha1(b"blob %d\0" % len(data))
    sha1.update(data)
    return FileHashes(len(data), hashlib.sha256(data).hexdigest(), sha1.hexdigest())


def hash_stream(stream: BinaryIO, size: int) -> FileHashes:
    """Hashes of a file of ``size`` bytes, read to its end in chunks.

    The git blob header needs the size up front, so a file that changed size between listing and reading is an
    error (OSError) rather than a wrong hash.
    """
    sha256 = hashlib.sha256()
    sha1 = hashlib.sha1(b"blob %d\0" % size)
    read = 0
    if size <= CHUNK_SIZE:
        while chunk := stream.read(CHUNK_SIZE):
            sha256.update(chunk)
            sha1.update(chunk)
            read += len(chunk)
    else:
        with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="sha1") as pool:
            pending = None
            while chunk := stream.read(CHUNK_SIZE):
                if pending is not None:
                    pending.result()  # at most one chunk in flight: memory stays at two chunks
                pending = pool.submit(sha1.update, chunk)
                sha256.update(chunk)
                read += len(chunk)
            if pending is not None:
                pending.result()
    if read != size:
        raise OSError(f"the file changed while it was read: listed as {size} bytes, read {read}")
    return FileHashes(read, sha256.hexdigest(), sha1.hexdigest())
