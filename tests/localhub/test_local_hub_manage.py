"""Repository management against the local Hub with the real client: gating, moving, super-squashing, refs."""

from __future__ import annotations

import subprocess

import pytest
from huggingface_hub import CommitOperationAdd, HfApi, hf_hub_download
from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

from beam_pusher.localhub import HubUser, LocalHub

ALICE = HubUser("alice", "hf_alice_write", orgs={"acme": "admin"}, read_tokens=("hf_alice_read",))
BOB = HubUser("bob", "hf_bob_write", orgs={"acme": "read"})
CAROL = HubUser("carol", "hf_carol_write")


@pytest.fixture
def hub(tmp_path):
    with LocalHub(tmp_path / "hub", users=[ALICE, BOB, CAROL]) as started:
        yield started


def _api(hub: LocalHub, user: HubUser) -> HfApi:
    return HfApi(endpoint=hub.endpoint, token=user.token)


def _add(path: str, data: bytes) -> list[CommitOperationAdd]:
    return [CommitOperationAdd(path, data)]


def _status(err: pytest.ExceptionInfo) -> int:
    return err.value.response.status_code


def test_a_gated_repo_serves_its_files_to_members_only(hub, raw, tmp_path):
    alice, carol = _api(hub, ALICE), _api(hub, CAROL)
    alice.create_repo("alice/gated-model")
    alice.create_commit("alice/gated-model", _add("weights.bin", b"\0weights"), commit_message="weights")
    assert alice.model_info("alice/gated-model").gated is False
    alice.update_repo_settings("alice/gated-model", gated="manual")
    assert carol.model_info("alice/gated-model").gated == "manual"  # metadata stays readable
    with pytest.raises(GatedRepoError, match="Access to model alice/gated-model is restricted and you are not in"):
        hf_hub_download("alice/gated-model", "weights.bin", endpoint=hub.endpoint, token=CAROL.token,
                        cache_dir=tmp_path / "carol")
    with pytest.raises(GatedRepoError):
        carol.auth_check("alice/gated-model")
    anonymous = raw("GET", f"{hub.endpoint}/alice/gated-model/resolve/main/weights.bin")
    assert (anonymous.status, anonymous.headers["X-Error-Code"]) == (401, "GatedRepo")
    path = hf_hub_download("alice/gated-model", "weights.bin", endpoint=hub.endpoint, token=ALICE.token,
                           cache_dir=tmp_path / "alice")
    assert open(path, "rb").read() == b"\0weights"
    alice.update_repo_settings("alice/gated-model", gated="auto", private=True)
    info = alice.model_info("alice/gated-model")
    assert (info.gated, info.private) == ("auto", True)
    alice.update_repo_settings("alice/gated-model", gated=False, private=False)
    assert carol.model_info("alice/gated-model").gated is False
    hf_hub_download("alice/gated-model", "weights.bin", endpoint=hub.endpoint, token=CAROL.token,
                    cache_dir=tmp_path / "carol-after")


def test_gating_an_org_repo_leaves_its_members_access_and_bad_values_are_400(hub, raw, tmp_path):
    alice = _api(hub, ALICE)
    alice.create_repo("acme/data", repo_type="dataset")
    alice.update_repo_settings("acme/data", repo_type="dataset", gated="auto")
    hf_hub_download("acme/data", ".gitattributes", repo_type="dataset", endpoint=hub.endpoint, token=BOB.token,
                    cache_dir=tmp_path)  # bob is a (read) member of acme
    for value in ("yes", True, 0, None):
        answer = raw("PUT", f"{hub.endpoint}/api/datasets/acme/data/settings", ALICE.token, {"gated": value})
        assert answer.status == 400
        assert '"gated" must be one of "auto", "manual" or false' in answer.json()["error"]
    assert alice.dataset_info("acme/data").gated == "auto"
    with pytest.raises(HfHubHTTPError) as err:
        _api(hub, CAROL).update_repo_settings("acme/data", repo_type="dataset", gated=False)
    assert _status(err) == 403


def test_move_repo_renames_everything_and_the_old_id_is_gone(hub, tmp_path):
    alice = _api(hub, ALICE)
    alice.create_repo("alice/old-name", repo_type="space", space_sdk="static", private=True)
    alice.create_commit("alice/old-name", _add("index.html", b"<p>hi</p>"), commit_message="page",
                        repo_type="space")
    alice.create_discussion("alice/old-name", "A thread that moves along", repo_type="space")
    head = hub.head("alice/old-name")
    alice.move_repo("alice/old-name", "acme/new-name", repo_type="space")
    with pytest.raises(RepositoryNotFoundError):
        alice.repo_info("alice/old-name", repo_type="space")
    info = alice.space_info("acme/new-name")
    assert (info.sha, info.private, info.subdomain) == (head, True, "acme-new-name")
    assert [d.title for d in alice.get_repo_discussions("acme/new-name", repo_type="space")] == [
        "A thread that moves along"]
    assert hub.read_file("acme/new-name", "index.html") == b"<p>hi</p>"
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", f"http://alice:{ALICE.token}@{hub.endpoint[7:]}/spaces/acme/new-name",
                    str(clone)], check=True, capture_output=True, timeout=60)
    assert (clone / "index.html").read_bytes() == b"<p>hi</p>"


def test_move_repo_refuses_an_existing_target_and_callers_without_rights(hub):
    alice, bob, carol = _api(hub, ALICE), _api(hub, BOB), _api(hub, CAROL)
    alice.create_repo("alice/one")
    alice.create_repo("alice/two")
    with pytest.raises(HfHubHTTPError, match=r"A model repository called alice/Two already exists") as err:
        alice.move_repo("alice/one", "alice/Two")
    assert _status(err) == 409
    with pytest.raises(HfHubHTTPError) as err:  # carol may not delete alice's repos, so may not move them either
        carol.move_repo("alice/one", "carol/one")
    assert _status(err) == 403
    bob.create_repo("bob/mine")
    with pytest.raises(HfHubHTTPError) as err:  # a read member of acme cannot put a repo there
        bob.move_repo("bob/mine", "acme/mine")
    assert _status(err) == 403
    with pytest.raises(HfHubHTTPError) as err:
        HfApi(endpoint=hub.endpoint, token="hf_alice_read").move_repo("alice/one", "alice/three")
    assert _status(err) == 403
    assert hub.repo_exists("alice/one", "model") and hub.repo_exists("bob/mine", "model")


def test_super_squash_keeps_the_tree_in_one_commit(hub):
    alice = _api(hub, ALICE)
    repo_id = "alice/scheduled"
    alice.create_repo(repo_id, repo_type="dataset")
    for number in range(3):
        alice.create_commit(repo_id, _add("data.csv", b"n\n%d\n" % number), commit_message=f"update {number}",
                            repo_type="dataset")
    alice.create_branch(repo_id, branch="keep", repo_type="dataset")
    files = hub.list_files(repo_id, "dataset")
    alice.super_squash_history(repo_id, repo_type="dataset")
    commits = alice.list_repo_commits(repo_id, repo_type="dataset")
    assert [c.title for c in commits] == ["Super-squash branch 'main' using huggingface_hub"]
    assert hub.list_files(repo_id, "dataset") == files
    assert len(alice.list_repo_commits(repo_id, repo_type="dataset", revision="keep")) == 4
    pr = alice.create_commit(repo_id, _add("b.txt", b"b"), commit_message="pr", repo_type="dataset", create_pr=True)
    alice.create_commit(repo_id, _add("c.txt", b"c"), commit_message="more", repo_type="dataset",
                        revision=pr.pr_revision)
    alice.super_squash_history(repo_id, branch=pr.pr_revision, repo_type="dataset", commit_message="squashed")
    assert [c.title for c in alice.list_repo_commits(repo_id, repo_type="dataset", revision=pr.pr_revision)] == [
        "squashed"]
    alice.create_tag(repo_id, tag="v1", repo_type="dataset")
    with pytest.raises(HfHubHTTPError, match="Invalid reference for a branch") as err:
        alice.super_squash_history(repo_id, branch="v1", repo_type="dataset")
    assert _status(err) == 400
    with pytest.raises(RevisionNotFoundError):
        alice.super_squash_history(repo_id, branch="nothing", repo_type="dataset")


def test_existing_refs_and_deleting_main_are_worded_as_on_the_hub(hub):
    alice = _api(hub, ALICE)
    alice.create_repo("alice/refs")
    alice.create_branch("alice/refs", branch="cool-branch")
    with pytest.raises(HfHubHTTPError, match=r"Reference refs/heads/cool-branch already exists") as err:
        alice.create_branch("alice/refs", branch="cool-branch")
    assert _status(err) == 409
    with pytest.raises(HfHubHTTPError, match=r"Reference refs/heads/main already exists"):
        alice.create_branch("alice/refs", branch="main")
    alice.create_branch("alice/refs", branch="cool-branch", exist_ok=True)
    alice.create_tag("alice/refs", tag="v1")
    with pytest.raises(HfHubHTTPError, match=r"Reference refs/tags/v1 already exists") as err:
        alice.create_tag("alice/refs", tag="v1")
    assert _status(err) == 409
    alice.create_tag("alice/refs", tag="v1", exist_ok=True)
    with pytest.raises(HfHubHTTPError, match="Cannot delete refs/heads/main"):
        alice.delete_branch("alice/refs", branch="main")
    with pytest.raises(HfHubHTTPError, match="Invalid rev id"):
        alice.delete_branch("alice/refs", branch="no-such-branch")
    with pytest.raises(HfHubHTTPError, match="Invalid rev id"):
        alice.delete_branch("alice/refs", branch="v1")  # a tag is not a branch
    assert hub.head("alice/refs", "model") is not None
