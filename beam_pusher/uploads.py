"""What a commit uploads for a file that is not held in memory: its local path, or a stream over its source.

huggingface_hub takes a path or an ``io.BufferedIOBase``; sources on other filesystems (``gs://``, ``s3://``,
``hf://``) are streamed through fsspec, and a large text file whose placeholders change is rendered again as it is
read (``RenderedStream``), so no upload ever holds a whole file in memory.
"""

from __future__ import annotations

import functools
import io
import sys
from collections.abc import Callable
from typing import BinaryIO

from beam_pusher.spec import AppFile, Rendering
from beam_pusher.templates import STREAM_CHUNK_SIZE, NotTextError, RenderedChunks

__all__ = ["RenderedStream", "StreamedFile", "open_source", "upload_source"]


def upload_source(f: AppFile) -> str | io.BufferedIOBase:
    """The path or the stream a commit uploads for ``f`` (a file with a ``source``); the caller closes a stream."""
    if f.rendering is not None:  # a large text file, rendered again as it streams up
        return RenderedStream(functools.partial(open_source, f.source), f.size, f.rendering, path=f.path)
    return _local_path(f.source) or StreamedFile(f.source)


class StreamedFile(io.BufferedIOBase):
    """Adapts an fsspec file to the ``io.BufferedIOBase`` huggingface_hub wants, streaming instead of loading."""

    def __init__(self, url: str):
        import fsspec

        self._file = fsspec.open(url, "rb").open()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        return self._file.read(-1 if size is None else size)

    def read1(self, size: int = -1) -> bytes:
        return self.read(size)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()

    def close(self) -> None:
        self._file.close()
        super().close()


def open_source(url: str):
    import fsspec

    return fsspec.open(url, "rb").open()


def _local_path(url: str) -> str | None:
    if url.startswith("file://"):
        return url[len("file://") :]
    if "://" not in url and "::" not in url:
        return url
    return None


class RenderedStream(io.BufferedIOBase):
    """A large text file, rendered while it is read: what the upload sends for an ``AppFile`` with ``rendering``.

    Seekable, as huggingface_hub needs (it hashes a file, then uploads it, maybe in parts): seeking forward reads
    on, seeking back starts the rendering over from the source. ``size`` is the rendered size found when the file
    was hashed; a source that no longer renders to it is an ``OSError``, never a silently different upload.

    Example::

        stream = RenderedStream(lambda: open("data.csv", "rb"), f.size, f.rendering, path="data.csv")
    """

    def __init__(self, open_source: Callable[[], BinaryIO], size: int, rendering: Rendering, *, path: str):
        super().__init__()
        self._open_source = open_source
        self._size = size
        self._values = dict(rendering.values)
        self._strict = rendering.strict
        self._path = path
        self._source: BinaryIO | None = None
        self._restart()

    def _restart(self) -> None:
        if self._source is not None:
            self._source.close()
        self._source = self._open_source()
        self._chunks = iter(RenderedChunks(self._source, self._values, path=self._path, strict=self._strict))
        self._buffer = bytearray()
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        wanted = sys.maxsize if size is None or size < 0 else size
        exhausted = False
        while len(self._buffer) < wanted:
            try:
                chunk = next(self._chunks, None)
            except NotTextError:
                raise OSError(f"{self._path} is no longer UTF-8 text; it changed since it was rendered") from None
            if chunk is None:
                exhausted = True
                break
            self._buffer += chunk
        out = bytes(self._buffer[:wanted])
        del self._buffer[:wanted]
        self._position += len(out)
        if self._position > self._size or (exhausted and self._position != self._size):
            raise OSError(f"{self._path} changed since it was rendered: {self._size} bytes expected")
        return out

    def read1(self, size: int = -1) -> bytes:
        return self.read(size)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        start = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        target = max(0, start + offset)
        if target < self._position:
            self._restart()
        while self._position < min(target, self._size):
            self.read(min(STREAM_CHUNK_SIZE, target - self._position))
        return self._position

    def tell(self) -> int:
        return self._position

    def close(self) -> None:
        if self._source is not None:
            self._source.close()
            self._source = None
        super().close()
