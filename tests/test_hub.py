"""SpacePusher against the local Hub server: retried commits, clear errors, and the Hub side of rollback and status.

Planning, 412 re-plans and the retry policy themselves are tested in test_commit.py.
"""

from __future__ import annotations

import pytest
from huggingface_hub import CommitOperationAdd

from beam_pusher import AppFile, SpaceSpec
from beam_pusher.commit import Committer
from beam_pusher.errors import SpecError
from beam_pusher.hashing import hash_bytes
from beam_pusher.hub import HubSettings, SpacePusher, rollback, space_status
from beam_pusher.spec import ChangeAction
from beam_pusher.testing.pytest_plugin import LOCAL_HUB_TOKEN_ENV as TOKEN_ENV


def content_file(repo_id, path, data: bytes) -> AppFile:
    h = hash_bytes(data)
    return AppFile(repo_id, path, h.size, content=data, sha256=h.sha256, git_sha1=h.git_sha1)


def pusher(hub, **kwargs) -> SpacePusher:
    kwargs.setdefault("backoff_seconds", 0.01)
    return SpacePusher(HubSettings(endpoint=hub.endpoint, token=f"env:{TOKEN_ENV}", **kwargs))


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


# -- rollback and status: the Hub side of the CLI commands -------------------------------------------------------


def test_rollback_plans_the_old_tree_and_commits_only_the_difference(hub, api):
    repo_id = f"{hub.username}/rolled"
    api.create_repo(repo_id, repo_type="space", space_sdk="static")
    v1 = api.create_commit(repo_id, [CommitOperationAdd("app.py", b"v1\n"), CommitOperationAdd("same.txt", b"s\n")],
                           commit_message="v1", repo_type="space").oid  # fmt: skip
    v2 = api.create_commit(repo_id, [CommitOperationAdd("app.py", b"v2\n"), CommitOperationAdd("new.txt", b"n\n")],
                           commit_message="v2", repo_type="space").oid  # fmt: skip
    committer = Committer.connect(HubSettings(endpoint=hub.endpoint, token=f"env:{TOKEN_ENV}"))

    planned = rollback(committer, repo_id, v1, dry_run=True)
    assert planned.dry_run and planned.target == v1 and planned.commit.head == v2 and not planned.commit.committed
    assert [(c.action, c.path) for c in planned.commit.changes] == [("update", "app.py"), ("delete", "new.txt")]
    assert hub.head(repo_id) == v2

    done = rollback(committer, repo_id, v1, message="back to v1")
    assert done.commit.committed and done.commit.head == hub.head(repo_id) != v2
    assert (done.commit.count(ChangeAction.UPDATE), done.commit.count(ChangeAction.DELETE)) == (1, 1)
    assert hub.read_file(repo_id, "app.py") == b"v1\n" and "new.txt" not in hub.list_files(repo_id)
    assert api.list_repo_commits(repo_id, repo_type="space")[0].title == "back to v1"
    assert rollback(committer, repo_id, v1).commit.changes == ()  # already there: nothing to commit

    with pytest.raises(SpecError, match=f"no commit '{'0' * 40}'"):
        rollback(committer, repo_id, "0" * 40)
    with pytest.raises(SpecError, match="no such model"):
        rollback(committer, repo_id, v1, repo_type="model")
    with pytest.raises(SpecError, match="is not a Hub repository id"):
        rollback(committer, "no-namespace", v1)


def test_rollback_leaves_kept_paths_and_gitattributes_as_they_are(hub, api):
    from huggingface_hub import CommitOperationDelete

    repo_id = f"{hub.username}/rolled-kept"
    api.create_repo(repo_id, repo_type="space", space_sdk="static")
    commit = api.create_commit
    commit(repo_id, [CommitOperationAdd("app.py", b"v1\n"), CommitOperationAdd("data/old.csv", b"old\n")],
           commit_message="v1", repo_type="space")  # fmt: skip
    v2 = commit(repo_id, [CommitOperationDelete(".gitattributes"), CommitOperationAdd("data/users.csv", b"u\n")],
                commit_message="v2: no .gitattributes", repo_type="space").oid  # fmt: skip
    commit(repo_id, [CommitOperationAdd("app.py", b"v3\n"), CommitOperationAdd(".gitattributes", b"*.bin lfs\n"),
                     CommitOperationAdd("data/users.csv", b"u2\n"), CommitOperationDelete("data/old.csv"),
                     CommitOperationAdd("data/new.csv", b"n\n"), CommitOperationAdd("stray.txt", b"s\n")],
           commit_message="v3", repo_type="space")  # fmt: skip
    committer = Committer.connect(HubSettings(endpoint=hub.endpoint, token=f"env:{TOKEN_ENV}"))

    done = rollback(committer, repo_id, v2, keep=["data/"])
    assert done.commit.committed
    files = hub.list_files(repo_id)
    assert set(files) == {".gitattributes", "README.md", "app.py", "data/users.csv", "data/new.csv"}  # no stray.txt
    assert hub.read_file(repo_id, "app.py") == b"v1\n"  # restored
    assert hub.read_file(repo_id, "data/users.csv") == b"u2\n"  # kept as it is now, not rolled back
    assert hub.read_file(repo_id, ".gitattributes") == b"*.bin lfs\n"  # v2 had none: never deleted
    with pytest.raises(SpecError, match="keep: '!' is not a .gitignore pattern"):
        rollback(committer, repo_id, v2, keep=["!"])


def test_space_status_reads_each_stage_and_keeps_going_past_a_missing_space(hub, api):
    running, broken, missing = f"{hub.username}/up", f"{hub.username}/no-readme", f"{hub.username}/never-deployed"
    readme = b"---\nsdk: static\n---\n"
    pusher(hub).push(SpaceSpec(repo_id=running, app_path="unused", space_sdk="static"),
                     [content_file(running, "README.md", readme), content_file(running, "index.html", b"<p>up</p>\n")])
    pusher(hub).push(SpaceSpec(repo_id=broken, app_path="unused", space_sdk="static"),
                     [content_file(broken, "index.html", b"<p>no card</p>\n")])  # fmt: skip

    up, bad, gone = space_status(api, [running, broken, missing])
    assert (up.repo_id, up.stage, up.found, up.error, up.failed) == (running, "RUNNING", True, None, False)
    assert up.url == f"{hub.endpoint}/spaces/{running}" and up.hardware
    assert (bad.repo_id, bad.stage, bad.found, bad.error, bad.failed) == (broken, "CONFIG_ERROR", True, None, True)
    assert (gone.repo_id, gone.stage, gone.found, gone.failed) == (missing, None, False, True)
    assert "does not exist" in gone.error
    assert space_status(api, []) == []
