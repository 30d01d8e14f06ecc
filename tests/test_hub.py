"""SpacePusher against the local Hub server: planning, conflicts, retries and clear errors."""

from __future__ import annotations

from huggingface_hub import CommitOperationAdd, HfApi

from beam_pusher import AppFile, SpaceSpec
from beam_pusher.hashing import GIT_BLOB_LIMIT, hash_bytes
from beam_pusher.hub import HubSettings, RemoteFile, SpacePusher, plan_changes, remote_tree
from beam_pusher.testing.pytest_plugin import LOCAL_HUB_TOKEN_ENV as TOKEN_ENV


def content_file(repo_id, path, data: bytes) -> AppFile:
    h = hash_bytes(data)
    return AppFile(repo_id, path, h.size, content=data, sha256=h.sha256, git_sha1=h.git_sha1)


def pusher(hub, **kwargs) -> SpacePusher:
    kwargs.setdefault("backoff_seconds", 0.01)
    return SpacePusher(HubSettings(endpoint=hub.endpoint, token=f"env:{TOKEN_ENV}", **kwargs))


def test_plan_compares_git_sha1_for_regular_and_sha256_for_lfs_files():
    same, changed, lfs = b"same", b"new", b"big"
    local = [content_file("a/b", p, d) for p, d in [("same.txt", same), ("changed.txt", changed), ("lfs.bin", lfs),
                                                    ("new.txt", b"n")]]
    remote = {
        "same.txt": RemoteFile("same.txt", 4, hash_bytes(same).git_sha1),
        "changed.txt": RemoteFile("changed.txt", 3, hash_bytes(b"old").git_sha1),
        "lfs.bin": RemoteFile("lfs.bin", 3, "pointer-sha1", hash_bytes(lfs).sha256),
        "gone.txt": RemoteFile("gone.txt", 1, "x"),
        ".gitattributes": RemoteFile(".gitattributes", 1, "y"),
        "data/kept.csv": RemoteFile("data/kept.csv", 1, "z"),
    }
    changes, unchanged = plan_changes(local, remote, keep=["data/*"])
    assert unchanged == 2
    assert [(c.action, c.path) for c in changes] == [("update", "changed.txt"), ("add", "new.txt"),
                                                     ("delete", "gone.txt")]
    changes, _ = plan_changes(local, remote, mirror=False)
    assert "delete" not in {c.action for c in changes}


def test_a_file_too_large_for_a_git_blob_is_never_counted_unchanged_by_sha1():
    large = AppFile("a/b", "model.bin", GIT_BLOB_LIMIT + 1, source="file:///m", sha256="0" * 64, git_sha1=None)
    remote = {"model.bin": RemoteFile("model.bin", GIT_BLOB_LIMIT + 1, "a-regular-blob")}  # not allowed on the Hub
    changes, unchanged = plan_changes([large], remote)
    assert unchanged == 0 and [(c.action, c.path) for c in changes] == [("update", "model.bin")]


def test_a_concurrent_commit_between_plan_and_push_is_replanned(hub):
    repo_id = f"{hub.username}/race"
    other = HfApi(endpoint=hub.endpoint, token=hub.token)
    p = pusher(hub)
    spec = SpaceSpec(repo_id=repo_id, app_path="unused", keep=("by-other/*",))
    p.push(spec, [content_file(repo_id, "app.py", b"v1\n")])
    original = p._remote_state
    raced = []

    def plan_then_race(*args, **kwargs):
        state = original(*args, **kwargs)
        if not raced:  # another writer commits right after our plan, before our commit
            raced.append(other.create_commit(repo_id, [CommitOperationAdd("by-other/x.txt", b"x")],
                                             commit_message="concurrent", repo_type="space").oid)
        return state

    p._remote_state = plan_then_race
    before = hub.commit_count(repo_id)
    result = p.push(spec, [content_file(repo_id, "app.py", b"v2\n")])

    assert result.error is None and result.committed
    assert hub.commit_count(repo_id) == before + 2
    tree = remote_tree(other, repo_id)
    assert hub.read_file(repo_id, "app.py") == b"v2\n"
    assert "by-other/x.txt" in tree  # the other writer's file is kept: no lost update
    commits = other.list_repo_commits(repo_id, repo_type="space")
    assert commits[0].commit_id == result.commit_id and commits[1].commit_id == raced[0]


def test_commit_failures_are_retried_and_then_reported(hub):
    repo_id = f"{hub.username}/flaky"
    p = pusher(hub, max_attempts=3)
    spec = SpaceSpec(repo_id=repo_id, app_path="unused")
    p.push(spec, [content_file(repo_id, "app.py", b"v1\n")])
    before = hub.commit_count(repo_id)

    hub.faults.fail_next_commits(2, status=503)
    survived = p.push(spec, [content_file(repo_id, "app.py", b"v2\n")])
    assert survived.error is None and hub.commit_count(repo_id) == before + 1

    hub.faults.fail_next_commits(5, status=500)
    failed = p.push(spec, [content_file(repo_id, "app.py", b"v3\n")])
    assert not failed.pushed and "gave up after 3 attempts" in failed.error and "500" in failed.error
    assert hub.read_file(repo_id, "app.py") == b"v2\n"  # the failed push left the Space as it was
    assert hub.commit_count(repo_id) == before + 1


def test_refused_pushes_name_the_reason_and_never_the_token(hub):
    p = pusher(hub)
    spec = SpaceSpec(repo_id="someone-else/space", app_path="unused")
    result = p.push(spec, [content_file(spec.repo_id, "app.py", b"x")])
    assert not result.pushed and "403" in result.error and "write access" in result.error
    assert hub.token not in result.error


def test_a_bad_token_is_reported_as_401_without_echoing_it(hub, monkeypatch):
    monkeypatch.setenv("BAD_TOKEN_FOR_TEST", "hf_not_a_valid_token_value")
    bad = SpacePusher(HubSettings(endpoint=hub.endpoint, token="env:BAD_TOKEN_FOR_TEST"))
    result = bad.push(SpaceSpec(repo_id=f"{hub.username}/x", app_path="unused"), [content_file("x", "a", b"a")])
    assert not result.pushed and "401" in result.error
    assert "hf_not_a_valid_token_value" not in result.error


def test_the_free_account_policy_402_is_explained(tmp_path, monkeypatch):
    from beam_pusher.localhub import LocalHub

    with LocalHub(tmp_path / "hub", free_account_policy=True) as hub:
        monkeypatch.setenv(TOKEN_ENV, hub.token)
        spec = SpaceSpec(repo_id=f"{hub.username}/paid", app_path="unused", hardware="t4-small")
        result = pusher(hub).push(spec, [content_file(spec.repo_id, "app.py", b"x")])
    assert not result.pushed and "402" in result.error and "static" in result.error
