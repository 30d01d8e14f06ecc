"""Pull requests and discussions on the local Hub: real refs/pr/N refs, real git merges, the Hub's access rules."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from huggingface_hub import CommitOperationAdd, HfApi, HfFileSystem, hf_hub_download
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

from beam_pusher.localhub import HubUser, LocalHub

ALICE = HubUser("alice", "hf_alice_write", orgs=("acme",), read_tokens=("hf_alice_read",))
BOB = HubUser("bob", "hf_bob_write")
CAROL = HubUser("carol", "hf_carol_write")


@pytest.fixture
def hub(tmp_path):
    with LocalHub(tmp_path / "hub", users=[ALICE, BOB, CAROL]) as started:
        yield started


def _api(hub: LocalHub, token: str | bool) -> HfApi:
    return HfApi(endpoint=hub.endpoint, token=token)


def _git(*args: str, cwd: Path | None = None) -> str:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True, env=env).stdout


def _status(err: pytest.ExceptionInfo) -> int:
    return err.value.response.status_code


def test_create_pr_commit_is_a_ref_a_thread_and_merges_with_git(hub, tmp_path):
    alice = _api(hub, ALICE.token)
    repo_id = "alice/site"
    alice.create_repo(repo_id, repo_type="space", space_sdk="static")
    main_before = hub.head(repo_id)
    info = alice.create_commit(repo_id, [CommitOperationAdd("index.html", b"<p>v1</p>\n")], commit_message="Add page",
                               commit_description="Reviewed first", repo_type="space", create_pr=True)
    assert (info.pr_num, info.pr_revision) == (1, "refs/pr/1")
    assert info.pr_url == f"{hub.endpoint}/spaces/{repo_id}/discussions/1"
    assert hub.head(repo_id) == main_before and hub.head(repo_id, revision="refs/pr/1") == info.oid

    # refs/pr/1 is a revision everywhere: repo info, tree, commits, downloads, refs.
    assert alice.space_info(repo_id, revision="refs/pr/1").sha == info.oid
    assert "index.html" in alice.list_repo_files(repo_id, repo_type="space", revision="refs/pr/1")
    assert "index.html" not in alice.list_repo_files(repo_id, repo_type="space")
    commits = alice.list_repo_commits(repo_id, repo_type="space", revision="refs/pr/1")
    assert [c.commit_id for c in commits] == [info.oid, main_before]
    path = hf_hub_download(repo_id, "index.html", repo_type="space", revision="refs/pr/1", endpoint=hub.endpoint,
                           token=ALICE.token, cache_dir=tmp_path / "cache")
    assert Path(path).read_bytes() == b"<p>v1</p>\n"
    refs = alice.list_repo_refs(repo_id, repo_type="space", include_pull_requests=True)
    assert [(r.ref, r.target_commit) for r in refs.pull_requests] == [("refs/pr/1", info.oid)]

    [listed] = alice.get_repo_discussions(repo_id, repo_type="space")
    assert (listed.num, listed.title, listed.status, listed.is_pull_request, listed.author) == (
        1, "Add page", "open", True, "alice")
    details = alice.get_discussion_details(repo_id, 1, repo_type="space")
    assert (details.target_branch, details.conflicting_files, details.git_reference) == ("refs/heads/main", [],
                                                                                         "refs/pr/1")
    assert [e.type for e in details.events] == ["comment", "commit"]
    assert details.events[0].content == "Reviewed first" and details.events[1].oid == info.oid
    assert "+<p>v1</p>" in details.diff

    # git sees the pull request: fetch refs/pr/1 from a clone.
    clone = tmp_path / "clone"
    _git("clone", "--quiet", hub.url(repo_id), str(clone))
    _git("fetch", "--quiet", "origin", "refs/pr/1", cwd=clone)
    assert _git("rev-parse", "FETCH_HEAD", cwd=clone).strip() == info.oid
    assert _git("show", "FETCH_HEAD:index.html", cwd=clone) == "<p>v1</p>\n"

    # A second commit to the pull request, then a merge: a real merge commit on main.
    second = alice.create_commit(repo_id, [CommitOperationAdd("about.html", b"about\n")], commit_message="About",
                                 repo_type="space", revision="refs/pr/1")
    alice.create_commit(repo_id, [CommitOperationAdd("other.txt", b"main moved\n")], commit_message="Main moves",
                        repo_type="space")
    alice.merge_pull_request(repo_id, 1, repo_type="space", comment="Ship it")
    merged = alice.get_discussion_details(repo_id, 1, repo_type="space")
    assert merged.status == "merged" and merged.merge_commit_oid == hub.head(repo_id)
    assert [e.type for e in merged.events] == ["comment", "commit", "commit", "comment", "status-change"]
    assert set(hub.list_files(repo_id)) >= {"index.html", "about.html", "other.txt"}
    _git("pull", "--quiet", "--no-rebase", "origin", "main", cwd=clone)
    parents = _git("rev-list", "--parents", "-n", "1", "HEAD", cwd=clone).split()
    assert parents[0] == merged.merge_commit_oid and parents[2] == second.oid
    assert _git("log", "--merges", "--format=%s", cwd=clone).splitlines() == ["Add page (#1)"]
    assert [c.commit_id for c in alice.list_repo_commits(repo_id, repo_type="space")] == (
        _git("log", "--format=%H", cwd=clone).split())
    _git("-C", str(hub.data_dir / "repos/spaces/alice/site.git"), "fsck", "--strict")


def test_hf_file_system_reads_at_a_pull_request_and_at_a_short_oid(hub):
    alice = _api(hub, ALICE.token)
    repo_id = "alice/fs"
    alice.create_repo(repo_id, repo_type="dataset")
    v1 = alice.create_commit(repo_id, [CommitOperationAdd("data.csv", b"a\n1\n")], commit_message="v1",
                             repo_type="dataset").oid
    alice.create_commit(repo_id, [CommitOperationAdd("data.csv", b"a\n2\n")], commit_message="v2", repo_type="dataset")
    alice.create_commit(repo_id, [CommitOperationAdd("data.csv", b"a\n3\n")], commit_message="proposal",
                        repo_type="dataset", create_pr=True)
    fs = HfFileSystem(endpoint=hub.endpoint, token=ALICE.token)
    assert fs.read_text(f"datasets/{repo_id}@refs/pr/1/data.csv") == "a\n3\n"
    assert fs.read_text(f"datasets/{repo_id}@{v1[:7]}/data.csv") == "a\n1\n"
    assert fs.read_text(f"datasets/{repo_id}/data.csv") == "a\n2\n"
    assert [entry["name"] for entry in fs.ls(f"datasets/{repo_id}@refs/pr/1", detail=True)] == [
        f"datasets/{repo_id}@refs/pr/1/.gitattributes", f"datasets/{repo_id}@refs/pr/1/data.csv"]


def test_discussions_comments_and_status_follow_the_hubs_rules(hub):
    alice, bob, carol = _api(hub, ALICE.token), _api(hub, BOB.token), _api(hub, CAROL.token)
    repo_id = "alice/model"
    alice.create_repo(repo_id)
    opened = bob.create_discussion(repo_id, "Question about the license", description="Is it MIT?")
    assert (opened.num, opened.status, opened.is_pull_request, opened.author) == (1, "open", False, "bob")
    assert opened.events[0].content == "Is it MIT?"
    answer = alice.comment_discussion(repo_id, 1, "Yes, MIT.")
    note = bob.comment_discussion(repo_id, 1, "Thanks!")
    edited = bob.edit_discussion_comment(repo_id, 1, note.id, "Thanks a lot!")
    assert edited.content == "Thanks a lot!" and edited.edited is True and edited.number_of_edits == 1
    with pytest.raises(HfHubHTTPError) as err:
        alice.edit_discussion_comment(repo_id, 1, note.id, "rewritten by the owner")
    assert _status(err) == 403
    with pytest.raises(HfHubHTTPError) as err, pytest.warns(UserWarning, match="irreversible"):
        carol.hide_discussion_comment(repo_id, 1, answer.id)
    assert _status(err) == 403
    with pytest.warns(UserWarning):
        assert alice.hide_discussion_comment(repo_id, 1, note.id).hidden is True  # members may hide any comment
    with pytest.raises(HfHubHTTPError) as err:
        carol.rename_discussion(repo_id, 1, "Hijacked")
    assert _status(err) == 403
    assert bob.rename_discussion(repo_id, 1, "License?").new_title == "License?"
    with pytest.raises(HfHubHTTPError) as err:
        _api(hub, "hf_alice_read").comment_discussion(repo_id, 1, "read tokens cannot write")
    assert _status(err) == 403
    with pytest.raises(HfHubHTTPError) as err:
        _api(hub, False).create_discussion(repo_id, "Anonymous")
    assert _status(err) == 401
    with pytest.raises(HfHubHTTPError) as err:
        bob.create_discussion(repo_id, "no")  # titles have 3 to 200 characters
    assert _status(err) == 400
    assert bob.change_discussion_status(repo_id, 1, "closed", comment="Answered").new_status == "closed"
    carol.create_discussion(repo_id, "Another question")
    assert [d.num for d in carol.get_repo_discussions(repo_id, discussion_status="open")] == [2]
    assert [d.num for d in _api(hub, False).get_repo_discussions(repo_id, discussion_status="closed")] == [1]
    assert [d.num for d in alice.get_repo_discussions(repo_id, author="carol")] == [2]
    details = alice.get_discussion_details(repo_id, 1)
    assert [e.type for e in details.events] == ["comment", "comment", "comment", "title-change", "comment",
                                                "status-change"]
    assert details.events[2].hidden is True and details.title == "License?"
    alice.update_repo_settings(repo_id, private=True)
    with pytest.raises(RepositoryNotFoundError):
        list(bob.get_repo_discussions(repo_id))


def test_pull_requests_from_others_follow_the_hubs_rules(hub):
    alice, bob, carol = _api(hub, ALICE.token), _api(hub, BOB.token), _api(hub, CAROL.token)
    repo_id = "acme/app"
    alice.create_repo(repo_id, repo_type="space", space_sdk="static")
    with pytest.raises(HfHubHTTPError) as err:  # bob is not in acme: no direct commit ...
        bob.create_commit(repo_id, [CommitOperationAdd("x.txt", b"x")], commit_message="x", repo_type="space")
    assert _status(err) == 403
    weights = b"\x00" + os.urandom(2048)  # ... but a pull request, LFS file included
    info = bob.create_commit(repo_id, [CommitOperationAdd("w.bin", weights), CommitOperationAdd("a.txt", b"a\n")],
                             commit_message="Bob's weights", repo_type="space", create_pr=True)
    assert info.pr_num == 1 and hub.read_file(repo_id, "w.bin", revision="refs/pr/1") == weights
    bob.create_commit(repo_id, [CommitOperationAdd("b.txt", b"b\n")], commit_message="more", repo_type="space",
                      revision="refs/pr/1")  # the author pushes to the pull request
    with pytest.raises(HfHubHTTPError) as err:
        carol.create_commit(repo_id, [CommitOperationAdd("c.txt", b"c")], commit_message="c", repo_type="space",
                            revision="refs/pr/1")
    assert _status(err) == 403
    with pytest.raises(HfHubHTTPError) as err:
        bob.merge_pull_request(repo_id, 1, repo_type="space")
    assert _status(err) == 403
    with pytest.raises(RevisionNotFoundError):
        bob.create_commit(repo_id, [CommitOperationAdd("c.txt", b"c")], commit_message="c", repo_type="space",
                          revision="refs/pr/7")
    alice.merge_pull_request(repo_id, 1, repo_type="space")
    assert hub.read_file(repo_id, "w.bin") == weights and hub.read_file(repo_id, "b.txt") == b"b\n"
    with pytest.raises(HfHubHTTPError) as err:
        alice.merge_pull_request(repo_id, 1, repo_type="space")
    assert _status(err) == 400 and "merged" in str(err.value)
    with pytest.raises(HfHubHTTPError) as err:
        bob.create_commit(repo_id, [CommitOperationAdd("d.txt", b"d")], commit_message="late", repo_type="space",
                          revision="refs/pr/1")
    assert _status(err) == 403


def test_draft_pull_request_and_merge_conflicts(hub):
    alice = _api(hub, ALICE.token)
    repo_id = "alice/conflicts"
    alice.create_repo(repo_id)
    alice.create_commit(repo_id, [CommitOperationAdd("app.py", b"x = 0\n")], commit_message="app")
    draft = alice.create_pull_request(repo_id, "Change x")
    assert (draft.num, draft.status, draft.is_pull_request) == (1, "draft", True)
    assert hub.head(repo_id, repo_type="model", revision="refs/pr/1") == hub.head(repo_id, repo_type="model")
    with pytest.raises(HfHubHTTPError) as err:
        alice.merge_pull_request(repo_id, 1)
    assert _status(err) == 400 and "draft" in str(err.value)
    alice.create_commit(repo_id, [CommitOperationAdd("app.py", b"x = 1\n")], commit_message="x = 1",
                        revision="refs/pr/1")
    alice.create_commit(repo_id, [CommitOperationAdd("app.py", b"x = 2\n")], commit_message="x = 2 on main")
    details = alice.get_discussion_details(repo_id, 1)
    assert details.status == "open" and details.conflicting_files == ["app.py"]
    main_head = hub.head(repo_id, repo_type="model")
    with pytest.raises(HfHubHTTPError) as err:
        alice.merge_pull_request(repo_id, 1)
    assert _status(err) == 409 and "app.py" in str(err.value)
    assert hub.head(repo_id, repo_type="model") == main_head
    # A pull request made from an older parent commit starts there, not at the head.
    first = alice.list_repo_commits(repo_id)[-1].commit_id
    info = alice.create_commit(repo_id, [CommitOperationAdd("new.txt", b"n\n")], commit_message="From the start",
                               parent_commit=first[:7], create_pr=True)
    assert info.pr_num == 2
    assert set(hub.list_files(repo_id, repo_type="model", revision="refs/pr/2")) == {".gitattributes", "new.txt"}
    alice.change_discussion_status(repo_id, 2, "closed")
    with pytest.raises(HfHubHTTPError) as err:
        alice.merge_pull_request(repo_id, 2)
    assert _status(err) == 400
