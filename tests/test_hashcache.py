"""The hash cache of remote files: keys by the storage's version, entries on disk, and deploys that use it.

Remote files live on real local servers: S3 in moto's server (``LocalS3``, which counts the object bytes it serves)
and GCS in gcp-storage-emulator (``local_gcs``). Deploys go to the local Hub over HTTP with the real client.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os

import pytest

from beam_pusher import hashcache
from beam_pusher.errors import SpecError
from beam_pusher.hashing import GIT_BLOB_LIMIT, FileHashes, hash_bytes
from beam_pusher.runner import run_deploy
from beam_pusher.spec import SpaceSpec
from beam_pusher.testing.local_s3 import LocalS3
from beam_pusher.testing.pytest_plugin import LOCAL_HUB_TOKEN_ENV as TOKEN_ENV
from beam_pusher.transforms import DeploySpaces, RenderPlaceholders

MODEL_SIZE = 2 * 1024 * 1024


def binary(size: int, seed: int) -> bytes:
    """``size`` bytes that are no text (NUL bytes), different for each seed."""
    block = hashlib.sha256(str(seed).encode()).digest() + b"\0"
    return (block * (size // len(block) + 1))[:size]


@pytest.fixture
def s3(monkeypatch):
    """A local S3 with the bucket ``bucket``; s3fs in this process reaches it."""
    import s3fs

    with LocalS3() as server:
        for name, value in server.environ.items():
            monkeypatch.setenv(name, value)
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
            monkeypatch.delenv(name, raising=False)
        s3fs.S3FileSystem.clear_instance_cache()  # an instance made earlier would talk to another server
        yield server
    s3fs.S3FileSystem.clear_instance_cache()


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    folder = tmp_path / "hashes"
    monkeypatch.setenv(hashcache.CACHE_ENV, str(folder))
    return folder


# Keys ----------------------------------------------------------------------------------------------------------

GCS_INFO = {"size": 10, "generation": "1700000000000001", "md5Hash": "abc=="}
S3_INFO = {"size": 10, "ETag": '"d41d8cd9"', "VersionId": None, "LastModified": "2026-01-01"}


@pytest.mark.parametrize(("info", "changed"), [
    (GCS_INFO, {"generation": "1700000000000002"}),
    (S3_INFO, {"ETag": '"0cc175b9"'}),
    (S3_INFO, {"VersionId": "v2"}),
    ({"size": 10, "blob_id": "a" * 40}, {"blob_id": "b" * 40}),
    ({"size": 10, "mtime": 1.5}, {"mtime": 2.5}),
    (GCS_INFO, {"size": 11}),
])
def test_a_new_version_of_an_object_has_a_new_key(info, changed):
    key = hashcache.object_key("s3://b/model.bin", info)
    assert key is not None and len(key) == 64
    assert hashcache.object_key("s3://b/model.bin", {**info, **changed}) != key
    assert hashcache.object_key("s3://b/other.bin", info) != key
    assert hashcache.object_key("s3://b/model.bin", dict(info)) == key


def test_an_object_without_a_version_has_no_key():
    assert hashcache.object_key("https://example.com/m.bin", {"size": 10, "type": "file"}) is None
    assert hashcache.object_key("s3://b/m.bin", {"ETag": '"x"'}) is None  # no size


def test_a_version_told_by_a_recent_modification_time_is_not_trusted_yet():
    import datetime
    import time

    now = time.time()
    assert hashcache._racy({"size": 1, "mtime": now})
    assert hashcache._racy({"size": 1, "mtime": datetime.datetime.now(datetime.timezone.utc)})
    assert hashcache._racy({"size": 1, "modified": "2026-01-01 yesterday"})  # a time it cannot read
    assert not hashcache._racy({"size": 1, "mtime": now - 60})
    assert not hashcache._racy({**S3_INFO, "LastModified": datetime.datetime.now(datetime.timezone.utc)})  # ETag
    assert not hashcache._racy(GCS_INFO)


# The cache on disk ---------------------------------------------------------------------------------------------


def test_an_entry_holds_only_hashes_and_is_found_again(tmp_path):
    cache = hashcache.HashCache(str(tmp_path))
    key = hashcache.object_key("s3://secret-bucket/model.bin", S3_INFO)
    hashes = hash_bytes(binary(1000, 1))
    assert cache.lookup(key, 1000) is None
    cache.store(key, hashes)
    assert cache.lookup(key, 1000) == hashes
    assert cache.lookup(key, 1001) is None  # an entry for another size is not this file's
    (entry,) = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert set(json.loads(entry.read_text())) == {"format", "key", "size", "sha256", "git_sha1"}
    assert "secret-bucket" not in entry.read_text()
    assert not [p for p in tmp_path.rglob(".tmp-*")]


def test_large_files_are_stored_without_git_sha1(tmp_path):
    cache = hashcache.HashCache(str(tmp_path))
    size = GIT_BLOB_LIMIT + 1
    hashes = FileHashes(size, "ab" * 32, None)
    cache.store("k" * 64, hashes)
    assert cache.lookup("k" * 64, size) == hashes


@pytest.mark.parametrize("damage", ["garbage", "truncated", "not-hex", "other-key", "unreadable"])
def test_a_corrupt_or_unreadable_entry_is_ignored_with_a_debug_log(tmp_path, caplog, damage):
    cache = hashcache.HashCache(str(tmp_path))
    key = "0f" * 32
    cache.store(key, hash_bytes(b"\0" * 100))
    (entry,) = [p for p in tmp_path.rglob("*.json")]
    text = entry.read_text()
    if damage == "garbage":
        entry.write_bytes(b"\x00\xff not json")
    elif damage == "truncated":
        entry.write_text(text[: len(text) // 2])
    elif damage == "not-hex":
        entry.write_text(text.replace(json.loads(text)["sha256"], "z" * 64))
    elif damage == "other-key":
        entry.write_text(text.replace(key, "1e" * 32))
    else:
        entry.unlink()
        entry.mkdir()  # reading a folder fails as an unreadable file does, even for root
    with caplog.at_level(logging.DEBUG, logger="beam_pusher.hashcache"):
        assert cache.lookup(key, 100) is None
    assert any("ignoring" in r.getMessage() and r.levelno == logging.DEBUG for r in caplog.records)


def test_a_cache_that_cannot_be_written_is_only_logged(tmp_path, caplog):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    cache = hashcache.HashCache(str(blocker / "hashes"))
    with caplog.at_level(logging.DEBUG, logger="beam_pusher.hashcache"):
        cache.store("ab" * 32, hash_bytes(b"\0"))
    assert "cannot write" in caplog.text
    assert cache.lookup("ab" * 32, 1) is None


def test_the_cache_folder_comes_from_the_keyword_then_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(hashcache.CACHE_ENV, str(tmp_path / "env"))
    assert hashcache.open_cache(True).folder == str(tmp_path / "env")
    assert hashcache.open_cache(str(tmp_path / "kw")).folder == str(tmp_path / "kw")
    assert hashcache.open_cache(False) is None
    monkeypatch.setenv(hashcache.CACHE_ENV, "off")
    assert hashcache.open_cache(True) is None
    monkeypatch.delenv(hashcache.CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert hashcache.default_cache_folder() == str(tmp_path / "xdg" / "beam-pusher" / "hashes")


@pytest.mark.parametrize("setting", ["", 3, None])
def test_a_bad_cache_setting_is_refused_when_the_pipeline_is_built(setting):
    with pytest.raises(SpecError, match=r"hash_cache=.*give True .* False .* folder"):
        RenderPlaceholders(hash_cache=setting)
    with pytest.raises(SpecError, match="hash_cache="):
        DeploySpaces(hash_cache=setting)


# Reading through the cache -------------------------------------------------------------------------------------


def render(url, size, cache, opened):
    import fsspec

    def open_source():
        opened.append(url)
        return fsspec.open(url, "rb")

    return hashcache.render_source(url, size, open_source, {"NAME": "x"}, path="model/w.bin", cache=cache)


def test_a_gcs_object_is_hashed_once_per_generation(local_gcs, tmp_path):
    import fsspec.core

    fs, _ = fsspec.core.url_to_fs("gs://bucket/m.bin")
    cache = hashcache.HashCache(str(tmp_path))
    first, second = binary(hashcache.MIN_SIZE, 1), binary(hashcache.MIN_SIZE, 2)
    fs.pipe("bucket/m.bin", first)
    opened: list[str] = []
    assert render("gs://bucket/m.bin", len(first), cache, opened).hashes == hash_bytes(first)
    again = render("gs://bucket/m.bin", len(first), cache, opened)
    assert again.cached and again.hashes == hash_bytes(first) and len(opened) == 1
    fs.pipe("bucket/m.bin", second)  # same size, new generation
    changed = render("gs://bucket/m.bin", len(second), cache, opened)
    assert not changed.cached and changed.hashes == hash_bytes(second) and len(opened) == 2


def test_text_small_local_and_memory_files_are_not_cached(s3, tmp_path):
    import fsspec

    cache = hashcache.HashCache(str(tmp_path / "hashes"))
    text = ("$NAME " * (hashcache.MIN_SIZE // 6 + 1)).encode()
    fsspec.filesystem("memory").pipe("/big.bin", binary(hashcache.MIN_SIZE, 3))
    (tmp_path / "big.bin").write_bytes(binary(hashcache.MIN_SIZE, 4))
    cases = [(s3.put("t.txt", text), len(text)), (s3.put("small.bin", b"\0" * 100), 100),
             ("memory://big.bin", hashcache.MIN_SIZE), (str(tmp_path / "big.bin"), hashcache.MIN_SIZE)]
    for url, size in cases:
        opened: list[str] = []
        for _ in range(2):
            out = render(url, size, cache, opened)
            assert not out.cached
        assert len(opened) == 2, url
    assert not (tmp_path / "hashes").exists()


# Deploys -------------------------------------------------------------------------------------------------------


def deploy(hub, spec, **kwargs):
    (result,) = run_deploy([spec], endpoint=hub.endpoint, token=f"env:{TOKEN_ENV}", backoff_seconds=0.05, **kwargs)
    assert result.error is None, result.error
    return result


def remote_model_space(hub, s3, tmp_path, name):
    template = tmp_path / "tpl"
    template.mkdir()
    (template / "app.py").write_text("import gradio\n")
    (template / "requirements.txt").write_text("gradio==4.44.1\n")
    s3.put("model/weights.bin", binary(MODEL_SIZE, 1))
    s3.put("model/config.json", b'{"classes": 3}\n')
    return SpaceSpec(repo_id=f"{hub.username}/{name}", app_path=str(template), model_path="s3://bucket/model")


def test_a_noop_redeploy_of_a_remote_model_reads_none_of_it(hub, s3, tmp_path, cache_dir):
    spec = remote_model_space(hub, s3, tmp_path, "remote-noop")
    first = deploy(hub, spec)
    assert first.committed
    assert hub.read_file(spec.repo_id, "model/weights.bin") == binary(MODEL_SIZE, 1)
    # hashed once while rendering, once more to upload: never a third time to build the commit operation
    assert s3.bytes_served("model/weights.bin") <= 2 * MODEL_SIZE
    s3.reset_counts()
    again = deploy(hub, spec)
    assert not again.committed and again.commit_id == first.commit_id
    assert s3.bytes_served("model/weights.bin") < 1024 * 1024
    assert s3.bytes_served("model/weights.bin") == 0


def test_an_overwritten_object_of_the_same_size_is_hashed_again_and_pushed(hub, s3, tmp_path, cache_dir):
    spec = remote_model_space(hub, s3, tmp_path, "remote-overwrite")
    first = deploy(hub, spec)
    s3.put("model/weights.bin", binary(MODEL_SIZE, 2))  # same size, new ETag
    s3.reset_counts()
    second = deploy(hub, spec)
    assert second.committed and second.commit_id != first.commit_id and second.files_updated == 1
    assert hub.read_file(spec.repo_id, "model/weights.bin") == binary(MODEL_SIZE, 2)
    assert s3.bytes_served("model/weights.bin") >= MODEL_SIZE
    s3.reset_counts()
    third = deploy(hub, spec)  # the new version is cached in turn
    assert not third.committed and s3.bytes_served("model/weights.bin") == 0


def test_a_corrupt_cache_makes_a_deploy_read_the_model_again_not_fail(hub, s3, tmp_path, cache_dir, caplog):
    spec = remote_model_space(hub, s3, tmp_path, "remote-corrupt")
    first = deploy(hub, spec)
    entries = [p for p in cache_dir.rglob("*.json")]
    assert entries
    for entry in entries:
        entry.write_text("{not json")
    s3.reset_counts()
    with caplog.at_level(logging.DEBUG, logger="beam_pusher.hashcache"):
        again = deploy(hub, spec)
    assert not again.committed and again.commit_id == first.commit_id
    assert s3.bytes_served("model/weights.bin") >= MODEL_SIZE
    assert "ignoring unreadable entry" in caplog.text
    s3.reset_counts()
    deploy(hub, spec)  # the entry was written again, whole
    assert s3.bytes_served("model/weights.bin") == 0


def test_without_the_cache_every_deploy_reads_the_model(hub, s3, tmp_path, cache_dir):
    spec = remote_model_space(hub, s3, tmp_path, "remote-nocache")
    deploy(hub, spec, hash_cache=False)
    s3.reset_counts()
    again = deploy(hub, spec, hash_cache=False)
    assert not again.committed and s3.bytes_served("model/weights.bin") >= MODEL_SIZE
    assert not os.path.exists(cache_dir)


def test_an_object_overwritten_after_it_was_hashed_is_never_uploaded_under_the_old_hash(s3):
    from beam_pusher.spec import AppFile
    from beam_pusher.uploads import add_operation

    old, new = binary(MODEL_SIZE, 1), binary(MODEL_SIZE, 2)
    url = s3.put("model/weights.bin", old)
    f = AppFile("alice/app", "model/weights.bin", MODEL_SIZE, source=url, sha256=hash_bytes(old).sha256)
    op = add_operation(f)
    try:
        assert op.upload_info.sha256.hex() == f.sha256 and op.upload_info.sample == old[:512]
        assert op.path_or_fileobj.read() == old  # the hashed version: the upload goes on
        op.path_or_fileobj.seek(0)
        assert op.path_or_fileobj.read(1000) == old[:1000]
    finally:
        op.path_or_fileobj.close()
    s3.put("model/weights.bin", new)  # same size, after the hashing
    op = add_operation(f)
    try:
        stream = op.path_or_fileobj
        with pytest.raises(OSError, match=r"model/weights\.bin changed since it was hashed .* deploy again"):
            while stream.read(256 * 1024):
                pass
    finally:
        op.path_or_fileobj.close()
