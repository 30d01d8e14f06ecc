"""The streamed hashes equal git's and LFS's, whatever the file size."""

from __future__ import annotations

import hashlib
import io
import subprocess

import pytest

from beam_pusher.hashing import CHUNK_SIZE, GIT_BLOB_LIMIT, hash_bytes, hash_stream


@pytest.mark.parametrize("size", [0, 1, CHUNK_SIZE, GIT_BLOB_LIMIT, GIT_BLOB_LIMIT + 1, 2 * CHUNK_SIZE + 17])
def test_hash_stream_matches_git_and_sha256(tmp_path, size):
    data = (bytes(range(251)) * (size // 251 + 1))[:size]
    path = tmp_path / "blob"
    path.write_bytes(data)
    git = subprocess.run(["git", "hash-object", str(path)], capture_output=True, text=True, check=True).stdout.strip()
    if size > GIT_BLOB_LIMIT:
        git = None  # the Hub keeps files this large in LFS only: compared by sha256, never by git sha1

    hashes = hash_stream(io.BytesIO(data), size)

    assert (hashes.size, hashes.sha256, hashes.git_sha1) == (size, hashlib.sha256(data).hexdigest(), git)
    assert hash_bytes(data) == hashes


def test_a_file_that_changed_size_while_read_is_an_error():
    with pytest.raises(OSError, match="listed as 10 bytes, read 4"):
        hash_stream(io.BytesIO(b"1234"), 10)
