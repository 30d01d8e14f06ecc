"""Finding repositories, revisions and paths as the Hub does: error codes, case, short oids, folders, bad paths."""

from __future__ import annotations

from pathlib import Path

import pytest
from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi, hf_hub_download
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError


def test_repo_ids_without_namespace_are_repo_not_found(local_hub, hub_api, raw):
    assert hub_api.repo_exists("gpt2") is False
    assert hub_api.repo_exists("gpt2", repo_type="space") is False
    assert hub_api.file_exists("gpt2", "config.json") is False
    assert hub_api.file_exists("gpt2", "app.py", repo_type="dataset") is False
    assert hub_api.revision_exists("gpt2", "main") is False
    assert hub_api.revision_exists(f"{local_hub.username}/none", "main") is False
    with pytest.raises(RepositoryNotFoundError):
        hub_api.list_repo_files("gpt2")
    for method, path in [("GET", "/api/models/gpt2"), ("GET", "/api/models/gpt2/revision/main"),
                         ("GET", "/api/spaces/gpt2/tree/main"), ("HEAD", "/gpt2/resolve/main/config.json"),
                         ("GET", "/datasets/squad/resolve/main/x.csv"),
                         ("GET", f"/api/models/{local_hub.username}/none/no-such-endpoint")]:
        answer = raw(method, local_hub.endpoint + path, local_hub.token)
        assert (answer.status, answer.headers.get("X-Error-Code")) == (404, "RepoNotFound"), path
    # An existing repository with a path no endpoint answers is a plain 404, not a missing repository.
    hub_api.create_repo(f"{local_hub.username}/here")
    answer = raw("GET", f"{local_hub.endpoint}/api/models/{local_hub.username}/here/no-such-endpoint", local_hub.token)
    assert answer.status == 404 and "X-Error-Code" not in answer.headers


def test_repo_ids_are_resolved_case_insensitively(local_hub, hub_api, tmp_path):
    repo_id = f"{local_hub.username}/MixedCase"
    url = hub_api.create_repo(repo_id, repo_type="space", space_sdk="static")
    other = repo_id.upper()
    assert hub_api.space_info(other).id == repo_id  # answered with the spelling it was created with
    hub_api.create_commit(other, [CommitOperationAdd("index.html", b"hi\n")], commit_message="via upper case",
                          repo_type="space")
    assert local_hub.commit_count(repo_id) == 2
    path = hf_hub_download(repo_id.lower(), "index.html", repo_type="space", endpoint=local_hub.endpoint,
                           token=local_hub.token, cache_dir=tmp_path)
    assert Path(path).read_bytes() == b"hi\n"
    with pytest.raises(HfHubHTTPError) as err:
        hub_api.create_repo(repo_id.lower(), repo_type="space", space_sdk="static")
    assert err.value.response.status_code == 409
    assert hub_api.create_repo(repo_id.lower(), repo_type="space", space_sdk="static", exist_ok=True) == url
    assert [s.id for s in hub_api.list_spaces(author=local_hub.username)] == [repo_id]
    hub_api.delete_repo(other, repo_type="space")
    assert not local_hub.repo_exists(repo_id)


def test_short_commit_oids_are_revisions(local_hub, hub_api, tmp_path):
    repo_id = f"{local_hub.username}/short"
    hub_api.create_repo(repo_id)
    first = hub_api.create_commit(repo_id, [CommitOperationAdd("v.txt", b"1\n")], commit_message="v1").oid
    hub_api.create_commit(repo_id, [CommitOperationAdd("v.txt", b"2\n")], commit_message="v2")
    assert hub_api.model_info(repo_id, revision=first[:7]).sha == first
    assert hub_api.revision_exists(repo_id, first[:10])
    path = hf_hub_download(repo_id, "v.txt", revision=first[:8], endpoint=local_hub.endpoint, token=local_hub.token,
                           cache_dir=tmp_path)
    assert Path(path).read_bytes() == b"1\n"
    assert [c.commit_id for c in hub_api.list_repo_commits(repo_id, revision=first[:7])][0] == first
    assert not hub_api.revision_exists(repo_id, "0000000")
    with pytest.raises(RevisionNotFoundError):
        hub_api.model_info(repo_id, revision=first[:6])  # too short to be an oid, and no such branch
    # parent_commit may be abbreviated too, as the client documents.
    head = local_hub.head(repo_id, repo_type="model")
    hub_api.create_commit(repo_id, [CommitOperationAdd("v.txt", b"3\n")], commit_message="v3", parent_commit=head[:7])
    with pytest.raises(HfHubHTTPError) as err:
        hub_api.create_commit(repo_id, [CommitOperationAdd("v.txt", b"4\n")], commit_message="v4",
                              parent_commit=head[:7])
    assert err.value.response.status_code == 412
    assert "The branch was updated since you opened this page. Please refresh and try again." in str(err.value)


def test_folder_deleted_by_its_name_without_trailing_slash(local_hub, hub_api):
    repo_id = f"{local_hub.username}/folders"
    hub_api.create_repo(repo_id)
    hub_api.create_commit(repo_id, [CommitOperationAdd(p, b"x\n") for p in ("src/a.py", "src/sub/b.py", "srcs.txt")],
                          commit_message="files")
    hub_api.create_commit(repo_id, [CommitOperationDelete("src")], commit_message="drop src")  # sent as deletedFile
    assert set(local_hub.list_files(repo_id, repo_type="model")) == {".gitattributes", "srcs.txt"}


@pytest.mark.parametrize("path", ["..\\x", "a\\..\\b.txt", "docs\\.\\x"])
def test_paths_leaving_the_repository_through_backslashes_get_422(local_hub, hub_api, path):
    repo_id = f"{local_hub.username}/escape"
    hub_api.create_repo(repo_id)
    with pytest.raises(HfHubHTTPError) as err:
        hub_api.create_commit(repo_id, [CommitOperationAdd(path, b"x")], commit_message="escape")
    assert err.value.response.status_code == 422
    assert repr(path) in str(err.value)
    assert local_hub.commit_count(repo_id, repo_type="model") == 1
    assert HfApi(endpoint=local_hub.endpoint, token=local_hub.token).file_exists(repo_id, ".gitattributes")


def test_expand_names_the_last_commit_of_each_entry(local_hub, hub_api):
    repo_id = f"{local_hub.username}/expanded"
    hub_api.create_repo(repo_id)
    first = hub_api.create_commit(repo_id, [CommitOperationAdd("a.txt", b"a\n"), CommitOperationAdd("d/b.txt", b"b\n")],
                                  commit_message="first").oid
    second = hub_api.create_commit(repo_id, [CommitOperationAdd("d/c.txt", b"c\n")], commit_message="second").oid
    initial = hub_api.list_repo_commits(repo_id)[-1].commit_id
    tree = {e.path: e.last_commit for e in hub_api.list_repo_tree(repo_id, recursive=True, expand=True)}
    assert {path: commit.oid for path, commit in tree.items()} == {
        ".gitattributes": initial, "a.txt": first, "d": second, "d/b.txt": first, "d/c.txt": second}
    assert tree["d"].title == "second"
    infos = {i.path: i.last_commit for i in hub_api.get_paths_info(repo_id, ["a.txt", "d"], expand=True)}
    assert (infos["a.txt"].oid, infos["d"].oid) == (first, second)
    assert all(i.last_commit is None for i in hub_api.get_paths_info(repo_id, ["a.txt"]))


def test_auth_check_answers_by_the_access_rules(tmp_path):
    from beam_pusher.localhub import HubUser, LocalHub

    alice, bob = HubUser("alice", "hf_a", read_tokens=("hf_a_read",)), HubUser("bob", "hf_b")
    with LocalHub(tmp_path / "hub", users=[alice, bob]) as hub:
        HfApi(endpoint=hub.endpoint, token=alice.token).create_repo("alice/private", private=True)
        HfApi(endpoint=hub.endpoint, token=alice.token).auth_check("alice/private", write=True)
        HfApi(endpoint=hub.endpoint, token="hf_a_read").auth_check("alice/private")
        with pytest.raises(HfHubHTTPError) as err:
            HfApi(endpoint=hub.endpoint, token="hf_a_read").auth_check("alice/private", write=True)
        assert err.value.response.status_code == 403
        with pytest.raises(RepositoryNotFoundError):
            HfApi(endpoint=hub.endpoint, token=bob.token).auth_check("alice/private")
