"""What a commit uploads for a file that is not held in memory: its local path, or a stream over its source.

huggingface_hub takes a path or an ``io.BufferedIOBase``; sources on other filesystems (``gs://``, ``s3://``,
``hf://``) are streamed through fsspec, and a large text file whose placeholders change is rendered again as it is
read (``RenderedStream``), so no upload ever holds a whole file in memory.

``add_operation`` builds the ``CommitOperationAdd`` with the hashes rendering already found, so the source is read
once more only to upload it. Reading it once in all is not possible with LFS: the Hub's batch API wants the sha256
before it says where to upload, so a file is hashed (``RenderPlaceholders``), then streamed up; a file whose hashes
come from the hash cache (``beam_pusher.hashcache``) is read only to be uploaded. The upload stream checks that
what it sends still hashes to what the commit announces (``StreamedFile``).
"""

from __future__ import annotations

import functools
import hashlib
import io
import sys
from collections.abc import Callable
from typing import BinaryIO

from beam_pusher.spec import AppFile, Rendering
from beam_pusher.templates import STREAM_CHUNK_SIZE, NotTextError, RenderedChunks

__all__ = ["RenderedStream", "StreamedFile", "add_operation", "open_source", "upload_source"]

_SAMPLE_SIZE = 512  # the leading bytes huggingface_hub sends in its preupload request


def upload_source(f: AppFile) -> str | io.BufferedIOBase:
    """The path or the stream a commit uploads for ``f`` (a file with a ``source``); the caller closes a stream."""
    if f.rendering is not None:  # a large text file, rendered again as it streams up
        return RenderedStream(functools.partial(open_source, f.source), f.size, f.rendering, path=f.path)
    return _local_path(f.source) or StreamedFile(f.source, f.sha256, path=f.path)


def add_operation(f: AppFile):
    """The ``CommitOperationAdd`` that uploads ``f`` (a file with a ``source``); the caller closes its stream.

    ``CommitOperationAdd`` reads a stream whole to hash it as it is built (``UploadInfo.from_fileobj``), a second
    full read of a remote model whose sha256 ``f`` already has. So a stream with known hashes is given to an
    operation built on empty bytes, with its upload info made from the first bytes and the known sha256.
    """
    from huggingface_hub import CommitOperationAdd
    from huggingface_hub.lfs import UploadInfo

    source = upload_source(f)
    if isinstance(source, str) or not f.sha256:
        op = CommitOperationAdd(path_in_repo=f.path, path_or_fileobj=source)
        if f.sha256 and not op.upload_info.is_hashed:
            op.upload_info.sha256 = bytes.fromhex(f.sha256)  # already hashed while rendering: don't read it again
        return op
    op = CommitOperationAdd(path_in_repo=f.path, path_or_fileobj=b"")
    try:
        sample = source.read(_SAMPLE_SIZE)
        source.seek(0)
    except BaseException:
        source.close()
        raise
    op.path_or_fileobj = source
    op.upload_info = UploadInfo(size=f.size, sample=sample, sha256=bytes.fromhex(f.sha256))
    return op


class StreamedFile(io.BufferedIOBase):
    """Adapts an fsspec file to the ``io.BufferedIOBase`` huggingface_hub wants, streaming instead of loading.

    With ``sha256`` (the hash the commit announces), a pass that reads the file from its start to its end is hashed
    as it goes, and its last read raises ``OSError`` instead of returning the last bytes when the file no longer
    hashes to it: an object overwritten after it was hashed is never uploaded under its old hash.
    """

    def __init__(self, url: str, sha256: str | None = None, *, path: str = ""):
        import fsspec

        self._file = fsspec.open(url, "rb").open()
        self._expected = sha256
        self._path = path or url.rsplit("/", 1)[-1]
        self._digest = hashlib.sha256()
        self._hashed = 0  # bytes from the start hashed in this pass

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        start = self._file.tell()
        data = self._file.read(-1 if size is None else size)
        if self._expected is not None and start == self._hashed and data:
            self._digest.update(data)
            self._hashed += len(data)
            if self._hashed >= self._file.size and self._digest.hexdigest() != self._expected:
                raise OSError(f"{self._path} changed since it was hashed (sha256 {self._digest.hexdigest()}, not "
                              f"{self._expected}); nothing was committed. Fix: deploy again.")
        return data

    def read1(self, size: int = -1) -> bytes:
        return self.read(size)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        position = self._file.seek(offset, whence)
        if position == 0:  # a new pass
            self._digest, self._hashed = hashlib.sha256(), 0
        return position

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
