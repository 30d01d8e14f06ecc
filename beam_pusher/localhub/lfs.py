"""Content-addressed storage of LFS objects, shared by every repository of one local Hub.

Objects live at ``<root>/<oid[:2]>/<oid[2:4]>/<oid>``, the layout git-lfs uses. An upload is streamed to a temporary
file while its sha256 is computed, and renamed into place only when hash and size match what the client announced,
so a stored object is always complete and correct and memory never grows with the size of a file.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

__all__ = ["LfsError", "LfsStore", "is_oid", "pointer_file"]

_OID = re.compile(r"^[0-9a-f]{64}$")
POINTER_VERSION = "https://git-lfs.github.com/spec/v1"


def is_oid(value: object) -> bool:
    """True if ``value`` is a sha256 hex digest, the only LFS object id the Hub accepts."""
    return isinstance(value, str) and bool(_OID.match(value))


def pointer_file(oid: str, size: int) -> bytes:
    """The LFS pointer file git stores in place of the content (what ``git clone`` shows without git-lfs)."""
    return f"version {POINTER_VERSION}\noid sha256:{oid}\nsize {size}\n".encode()


def parse_pointer(data: bytes) -> tuple[str, int] | None:
    """Returns ``(oid, size)`` if ``data`` is an LFS pointer file, else None."""
    if len(data) > 1024 or not data.startswith(b"version https://git-lfs.github.com/spec/v1\n"):
        return None
    oid, size = None, None
    for line in data.decode("ascii", "replace").splitlines():
        if line.startswith("oid sha256:"):
            oid = line[len("oid sha256:") :]
        elif line.startswith("size "):
            size = line[len("size ") :]
    if not is_oid(oid) or size is None or not size.isdigit():
        return None
    return oid, int(size)


class LfsError(Exception):
    """An upload that does not match its announced oid or size."""


class LfsStore:
    """LFS objects under ``root``.

    Args:
        root: directory of the store; created if missing.
    """

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self._tmp = self.root / "tmp"
        self._tmp.mkdir(parents=True, exist_ok=True)

    def path(self, oid: str) -> Path:
        if not is_oid(oid):
            raise ValueError(f"invalid LFS oid {oid!r}")
        return self.root / oid[:2] / oid[2:4] / oid

    def size(self, oid: str) -> int | None:
        """Size of a stored object, or None when it was never uploaded."""
        try:
            return self.path(oid).stat().st_size
        except (FileNotFoundError, ValueError):
            return None

    def has(self, oid: str, size: int | None = None) -> bool:
        stored = self.size(oid)
        return stored is not None and (size is None or stored == size)

    def open(self, oid: str) -> BinaryIO:
        return open(self.path(oid), "rb")

    def receive(self, oid: str, size: int, chunks: Iterable[bytes]) -> None:
        """Streams ``chunks`` into the store as object ``oid``.

        Raises:
            LfsError: the content's sha256 or length differs from ``oid``/``size``; nothing is stored.
        """
        target = self.path(oid)
        digest = hashlib.sha256()
        received = 0
        fd, tmp = tempfile.mkstemp(dir=self._tmp, prefix=oid[:16] + "-")
        try:
            with os.fdopen(fd, "wb") as handle:
                for chunk in chunks:
                    digest.update(chunk)
                    received += len(chunk)
                    handle.write(chunk)
            if received != size:
                raise LfsError(f"received {received} bytes for LFS object {oid}, but its announced size is {size}")
            if digest.hexdigest() != oid:
                raise LfsError(
                    f"the uploaded content hashes to sha256 {digest.hexdigest()}, not to the LFS oid {oid} it was "
                    "uploaded as: upload the file's own content to its own oid"
                )
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
