"""The committer: planning (pure), one commit with parent_commit, 412 re-plans and the retry policy.

Hub behaviour is tested against the local Hub server over HTTP, with its fault injection standing in for a busy Hub.
"""

from __future__ import annotations

import json
import logging
import pickle

import pytest
from huggingface_hub import CommitOperationAdd

from beam_pusher import AppFile, PushResult
from beam_pusher.commit import (
    CommitOutcome,
    Committer,
    RemoteFile,
    RetryPolicy,
    describe_error,
    http_status,
    is_transient,
    plan_changes,
    push_result,
    remote_tree,
)
from beam_pusher.errors import PushError, SpecError
from beam_pusher.hashing import GIT_BLOB_LIMIT, hash_bytes
from beam_pusher.hub import HubSettings
from beam_pusher.spec import ChangeAction, PlannedChange
from beam_pusher.testing.pytest_plugin import LOCAL_HUB_TOKEN_ENV as TOKEN_ENV


def content_file(repo_id, path, data: bytes) -> AppFile:
    h = hash_bytes(data)
    return AppFile(repo_id, path, h.size, content=data, sha256=h.sha256, git_sha1=h.git_sha1)


def committer(hub, **kwargs) -> Committer:
    kwargs.setdefault("backoff_seconds", 0.01)
    return Committer.connect(HubSettings(endpoint=hub.endpoint, token=f"env:{TOKEN_ENV}", **kwargs))


def new_repo(hub, api, name: str) -> str:
    repo_id = f"{hub.username}/{name}"
    api.create_repo(repo_id, repo_type="space", space_sdk="static")
    api.create_commit(repo_id, [CommitOperationAdd("app.py", b"v1\n")], commit_message="v1", repo_type="space")
    return repo_id


def hub_error(call) -> Exception:
    """The exception a real Hub call raises."""
    with pytest.raises(Exception) as caught:  # noqa: PT011 - whatever huggingface_hub raises is the point
        call()
    return caught.value


# -- planning (pure) ---------------------------------------------------------------------------------------------


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
    assert [c.action for c in changes] == [ChangeAction.UPDATE, ChangeAction.ADD, ChangeAction.DELETE]
    changes, _ = plan_changes(local, remote, mirror=False)
    assert "delete" not in {c.action for c in changes}


def test_a_file_too_large_for_a_git_blob_is_never_counted_unchanged_by_sha1():
    large = AppFile("a/b", "model.bin", GIT_BLOB_LIMIT + 1, source="file:///m", sha256="0" * 64, git_sha1=None)
    remote = {"model.bin": RemoteFile("model.bin", GIT_BLOB_LIMIT + 1, "a-regular-blob")}  # not allowed on the Hub
    changes, unchanged = plan_changes([large], remote)
    assert unchanged == 0 and [(c.action, c.path) for c in changes] == [("update", "model.bin")]


def test_keep_patterns_protect_folders_and_globs_from_a_mirror_delete():
    remote = {p: RemoteFile(p, 1, "x") for p in ("logs/a/b.txt", "notes.md", "cache.tmp", "other.txt")}
    changes, _ = plan_changes([], remote, keep=["logs", "*.tmp"])
    assert [(c.action, c.path) for c in changes] == [("delete", "notes.md"), ("delete", "other.txt")]


def test_keep_patterns_are_gitignore_patterns_like_exclude():
    paths = ("data/a.csv", "data/sub/deep.csv", "data/notes.txt", "db/x.db", "root.db", "logs/keep.txt", "logs/x.txt")
    remote = {p: RemoteFile(p, 1, "x") for p in paths}

    def deleted(keep):
        return [c.path for c in plan_changes([], remote, keep=keep)[0]]

    # '*' does not cross '/': data/*.csv keeps the CSV files directly in data/, not data/sub/deep.csv.
    assert "data/sub/deep.csv" in deleted(["data/*.csv"]) and "data/a.csv" not in deleted(["data/*.csv"])
    # A pattern that matches a folder keeps everything in it, as a .gitignore would ignore it.
    assert not {p for p in deleted(["data/*"]) if p.startswith("data/")}
    # '!' takes a path back out of the kept set; '**' crosses folders; no '/' matches at any depth.
    assert deleted(["data/*", "!data/*/"]) == ["data/sub/deep.csv", "db/x.db", "logs/keep.txt", "logs/x.txt",
                                               "root.db"]
    assert deleted(["data/**/*.csv", "*.db", "logs/", "!logs/x.txt"]) == ["data/notes.txt", "logs/x.txt"]
    assert deleted(["/root.db"]) == [p for p in sorted(paths) if p != "root.db"]


def test_planned_changes_keep_the_action_strings_of_json_reports():
    change = PlannedChange("update", "app.py", 3)
    assert change.action is ChangeAction.UPDATE and change.action == "update" and change.action.mark == "~"
    assert json.dumps(PlannedChange(ChangeAction.DELETE, "x").action) == '"delete"'
    with pytest.raises(SpecError, match=r"action='modify' is not a file change; use one of 'add', 'update'"):
        PlannedChange("modify", "app.py")


# -- results -----------------------------------------------------------------------------------------------------


def test_push_result_counts_changes_and_bytes_and_logs_one_line(caplog):
    outcome = CommitOutcome("c" * 40, True, (PlannedChange("add", "a", 10), PlannedChange("update", "b", 5),
                                             PlannedChange("delete", "c", 99)), 4)
    with caplog.at_level(logging.INFO, logger="beam_pusher.commit"):
        result = push_result(outcome, repo_id="a/b", repo_url="http://hub/a/b", pushed_version="v1", label="a/b@v1")
    assert (result.files_added, result.files_updated, result.files_deleted, result.files_unchanged) == (1, 1, 1, 4)
    assert result.pushed and result.committed and result.bytes_uploaded == 15 and result.planned == ()
    assert [r.getMessage() for r in caplog.records] == [f"a/b@v1: committed at {'c' * 40} (+1 ~1 -1 =4)"]

    planned = push_result(outcome, repo_id="a/b", repo_url="http://hub/a/b", pushed_version="v1", dry_run=True)
    assert not planned.pushed and planned.dry_run and planned.bytes_uploaded == 0 and planned.planned == outcome.changes
    assert PushResult.from_dict(json.loads(json.dumps(planned.to_dict()))) == planned  # reports stay compatible


# -- commits against the Hub -------------------------------------------------------------------------------------


def test_commit_creates_a_missing_repository_once_and_an_unchanged_commit_is_skipped(hub, api):
    repo_id = f"{hub.username}/fresh"
    c, created = committer(hub), []

    def create():
        created.append(repo_id)
        api.create_repo(repo_id, repo_type="space", space_sdk="static")

    files = [content_file(repo_id, "index.html", b"<p>hi</p>\n")]
    planned = c.commit(repo_id, files, commit_message="plan", dry_run=True, create_repo=create)
    assert planned.head is None and not planned.committed and [ch.action for ch in planned.changes] == ["add"]
    assert not hub.repo_exists(repo_id) and created == []

    first = c.commit(repo_id, files, commit_message="first", create_repo=create)
    second = c.commit(repo_id, files, commit_message="again", create_repo=create)
    assert first.committed and first.head == hub.head(repo_id) and created == [repo_id]
    assert not second.committed and second.head == first.head and second.changes == () and second.unchanged == 1
    assert set(remote_tree(api, repo_id)) == {".gitattributes", "index.html"}


def test_a_concurrent_commit_between_plan_and_commit_is_replanned(hub, api):
    repo_id = new_repo(hub, api, "race")
    c = committer(hub)
    original, raced = c.remote_state, []

    def plan_then_race(*args, **kwargs):
        state = original(*args, **kwargs)
        if not raced:  # another writer commits right after our plan, before our commit
            raced.append(api.create_commit(repo_id, [CommitOperationAdd("by-other/x.txt", b"x")],
                                           commit_message="concurrent", repo_type="space").oid)
        return state

    c.remote_state = plan_then_race
    before = hub.commit_count(repo_id)
    outcome = c.commit(repo_id, [content_file(repo_id, "app.py", b"v2\n")], commit_message="v2",
                       keep=["by-other/*"])

    assert outcome.committed and hub.commit_count(repo_id) == before + 2
    assert hub.read_file(repo_id, "app.py") == b"v2\n"
    assert "by-other/x.txt" in remote_tree(api, repo_id)  # the other writer's file is kept: no lost update
    commits = api.list_repo_commits(repo_id, repo_type="space")
    assert commits[0].commit_id == outcome.head and commits[1].commit_id == raced[0]


def test_a_repository_that_keeps_changing_is_given_up_after_max_attempts(hub, api, caplog):
    repo_id = new_repo(hub, api, "busy")
    before = hub.commit_count(repo_id)
    hub.faults.fail_next_commits(3, status=412)
    with caplog.at_level(logging.INFO, logger="beam_pusher"), pytest.raises(PushError) as failed:
        committer(hub, max_attempts=3).commit(repo_id, [content_file(repo_id, "app.py", b"v2\n")], commit_message="x")
    message = str(failed.value)
    assert "gave up after 3 attempts" in message and "412" in message and "kept changing" in message
    assert hub.commit_count(repo_id) == before
    logged = [r.getMessage() for r in caplog.records]
    assert sum("re-planning" in line for line in logged) == 3
    assert not any("transient error" in line for line in logged)  # a 412 re-plans at once, without backing off


def test_transient_commit_errors_back_off_and_the_commit_lands_once(hub, api, caplog):
    repo_id = new_repo(hub, api, "flaky")
    before = hub.commit_count(repo_id)
    hub.faults.fail_next_commits(2, status=503)
    with caplog.at_level(logging.INFO, logger="beam_pusher"):
        outcome = committer(hub, max_attempts=3).commit(repo_id, [content_file(repo_id, "app.py", b"v2\n")],
                                                        commit_message="v2")
    assert outcome.committed and hub.commit_count(repo_id) == before + 1
    assert sum("transient error" in r.getMessage() for r in caplog.records) == 2


def test_refused_commits_name_the_reason_and_never_the_token(hub):
    repo_id, c = "someone-else/space", committer(hub)
    with pytest.raises(PushError) as refused:
        c.commit(repo_id, [content_file(repo_id, "a", b"a")], commit_message="x",
                 create_repo=lambda: c.api.create_repo(repo_id, repo_type="space", space_sdk="static"))
    assert "HTTP 403" in str(refused.value) and "write access" in str(refused.value)
    assert hub.token not in str(refused.value)


def test_the_committer_is_never_pickled(hub):
    c = committer(hub)
    with pytest.raises(TypeError, match="must not be pickled"):
        pickle.dumps(c)


# -- the retry policy --------------------------------------------------------------------------------------------


def test_retry_after_from_the_hub_is_honoured_and_backoff_doubles_up_to_the_cap(hub, api):
    repo_id = new_repo(hub, api, "limited")
    hub.faults.configure(retry_after=7)
    hub.faults.fail_next_commits(1, status=429)
    limited = hub_error(lambda: api.create_commit(repo_id, [CommitOperationAdd("x", b"x")], commit_message="x",
                                                  repo_type="space"))
    assert http_status(limited) == 429 and is_transient(limited)

    policy = RetryPolicy(max_attempts=5, backoff_seconds=0.5, max_backoff_seconds=3.0)
    assert 7.0 <= RetryPolicy(backoff_seconds=0.01).delay(1, limited) <= 7.7
    assert 0.5 <= policy.delay(1) <= 0.55 and 2.0 <= policy.delay(3) <= 2.2
    assert 3.0 <= policy.delay(5) <= 3.3  # capped
    assert 3.0 <= policy.delay(1, limited) <= 3.3  # a Retry-After above the cap is capped too


def test_only_transient_errors_are_retried_and_the_last_error_is_raised_as_is(hub, api):
    policy, calls = RetryPolicy(max_attempts=3, backoff_seconds=0.0), []

    def missing():
        calls.append(1)
        return api.space_info(f"{hub.username}/no-such-space")

    not_found = hub_error(lambda: policy.call("look", missing))
    assert http_status(not_found) == 404 and not is_transient(not_found) and len(calls) == 1

    def dropped():
        calls.append(2)
        raise ConnectionError("connection reset by peer")

    with pytest.raises(ConnectionError):
        policy.call("drop", dropped)
    assert calls.count(2) == 3
    assert policy.call("ok", lambda: "done") == "done"


def test_errors_are_described_with_a_hint_and_without_secrets(hub, api):
    forbidden = hub_error(lambda: api.create_repo("someone-else/x", repo_type="space", space_sdk="static"))
    text = describe_error(forbidden, "someone-else/x", hub.token)
    assert text.startswith("someone-else/x: HTTP 403: ") and "write access" in text and hub.token not in text
    assert describe_error(None, "a/b") == "a/b: unknown error"
    assert describe_error(RuntimeError(f"boom {hub.token}"), "a/b", hub.token) == "a/b: boom ***"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_attempts": 0}, "max_attempts=0 must be a whole number >= 1"),
        ({"max_attempts": 2.5}, "max_attempts=2.5 must be a whole number >= 1"),
        ({"backoff_seconds": -1}, "backoff_seconds=-1 must be a number of seconds >= 0"),
    ],
)
def test_retry_policy_validates_on_construction(kwargs, message):
    with pytest.raises(SpecError, match=message):
        RetryPolicy(**kwargs)
    with pytest.raises(SpecError, match=message):
        Committer.connect(HubSettings(token="env:BEAM_PUSHER_UNSET_FOR_TEST", **kwargs))  # before the token
