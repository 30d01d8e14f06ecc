"""Access rules and error answers of the local Hub, as the real huggingface_hub client sees them."""

from __future__ import annotations

import pytest
from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi, hf_hub_download
from huggingface_hub.errors import (
    HfHubHTTPError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from beam_pusher.localhub import HubUser, LocalHub

ALICE = HubUser("alice", "hf_alice_write", orgs=("acme",), read_tokens=("hf_alice_read",))
BOB = HubUser("bob", "hf_bob_write")
SECRET = "pa55-never-shown-4711"


@pytest.fixture
def hub(tmp_path):
    with LocalHub(tmp_path / "hub", users=[ALICE, BOB]) as started:
        yield started


def _api(hub: LocalHub, token: str) -> HfApi:
    return HfApi(endpoint=hub.endpoint, token=token)


def _status(err: pytest.ExceptionInfo) -> int:
    return err.value.response.status_code


def test_missing_things_raise_the_clients_own_errors(hub, tmp_path):
    alice = _api(hub, ALICE.token)
    alice.create_repo("alice/app", repo_type="space", space_sdk="static")
    with pytest.raises(RepositoryNotFoundError):
        alice.repo_info("alice/nothing-here", repo_type="space")
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download("alice/app", "README.md", repo_type="space", revision="nope", endpoint=hub.endpoint,
                        token=ALICE.token, cache_dir=tmp_path)
    with pytest.raises(RemoteEntryNotFoundError):
        hf_hub_download("alice/app", "missing.txt", repo_type="space", endpoint=hub.endpoint, token=ALICE.token,
                        cache_dir=tmp_path)
    with pytest.raises(RemoteEntryNotFoundError):
        alice.create_commit("alice/app", [CommitOperationDelete("missing.txt")], commit_message="rm",
                            repo_type="space")
    with pytest.raises(RemoteEntryNotFoundError):
        alice.create_commit("alice/app", [CommitOperationDelete("no-folder/")], commit_message="rm", repo_type="space")
    assert hub.commit_count("alice/app") == 1


def test_bad_or_missing_token_gets_401(hub, raw):
    with pytest.raises(HfHubHTTPError) as err:
        _api(hub, "hf_not_a_token").whoami()
    assert _status(err) == 401
    with pytest.raises(HfHubHTTPError) as err:
        _api(hub, "hf_not_a_token").create_repo("alice/x", repo_type="space", space_sdk="static")
    assert _status(err) == 401
    answer = raw("POST", f"{hub.endpoint}/api/repos/create", None, {"name": "x", "type": "space", "sdk": "static"})
    assert answer.status == 401
    assert not hub.repo_exists("alice/x")


def test_writing_outside_own_namespaces_gets_403(hub):
    alice, bob = _api(hub, ALICE.token), _api(hub, BOB.token)
    alice.create_repo("alice/public", repo_type="space", space_sdk="static")
    with pytest.raises(HfHubHTTPError) as err:
        bob.create_repo("alice/bobs", repo_type="space", space_sdk="static")
    assert _status(err) == 403
    with pytest.raises(HfHubHTTPError) as err:
        bob.create_commit("alice/public", [CommitOperationAdd("x.txt", b"x")], commit_message="x", repo_type="space")
    assert _status(err) == 403
    with pytest.raises(HfHubHTTPError) as err:
        _api(hub, "hf_alice_read").create_commit("alice/public", [CommitOperationAdd("x.txt", b"x")],
                                                 commit_message="x", repo_type="space")
    assert _status(err) == 403
    assert _api(hub, "hf_alice_read").whoami()["auth"]["accessToken"]["role"] == "read"
    # Organisations the user belongs to are writable.
    alice.create_repo("acme/team-app", repo_type="space", space_sdk="static")
    alice.create_commit("acme/team-app", [CommitOperationAdd("index.html", b"hi")], commit_message="x",
                        repo_type="space")
    assert hub.commit_count("acme/team-app") == 2
    assert hub.commit_count("alice/public") == 1


def test_private_repos_are_invisible_to_others(hub, tmp_path):
    alice, bob = _api(hub, ALICE.token), _api(hub, BOB.token)
    alice.create_repo("alice/hidden", repo_type="model", private=True)
    assert alice.repo_info("alice/hidden").private is True
    assert _api(hub, "hf_alice_read").repo_info("alice/hidden").private is True
    with pytest.raises(RepositoryNotFoundError):
        bob.repo_info("alice/hidden")
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("alice/hidden", ".gitattributes", endpoint=hub.endpoint, cache_dir=tmp_path)
    with pytest.raises(RepositoryNotFoundError):
        bob.create_commit("alice/hidden", [CommitOperationAdd("x", b"x")], commit_message="x")
    assert [m.id for m in bob.list_models(author="alice")] == []
    assert [m.id for m in alice.list_models(author="alice")] == ["alice/hidden"]


@pytest.mark.parametrize("policy", [True, "paid-hardware"])
def test_free_account_policy_answers_402(tmp_path, policy):
    with LocalHub(tmp_path / "hub", free_account_policy=policy) as hub:
        api = _api(hub, hub.token)
        with pytest.raises(HfHubHTTPError) as err:
            api.create_repo("user/gpu", repo_type="space", space_sdk="gradio", space_hardware="t4-small")
        assert _status(err) == 402
        api.create_repo("user/site", repo_type="space", space_sdk="static")  # static Spaces stay free
        if policy is True:
            with pytest.raises(HfHubHTTPError) as err:
                api.create_repo("user/free", repo_type="space", space_sdk="docker")
            assert _status(err) == 402
            assert not hub.repo_exists("user/free")
        else:
            api.create_repo("user/free", repo_type="space", space_sdk="docker")
            with pytest.raises(HfHubHTTPError) as err:
                api.request_space_hardware("user/free", "a10g-small")
            assert _status(err) == 402
            assert hub.space_state("user/free").hardware == "cpu-basic"
        assert not hub.repo_exists("user/gpu")


def test_secret_values_never_appear_in_any_response(hub, raw, tmp_path):
    alice = _api(hub, ALICE.token)
    repo_id = "alice/secretive"
    alice.create_repo(repo_id, repo_type="space", space_sdk="gradio",
                      space_secrets=[{"key": "TOKEN", "value": SECRET}])
    alice.add_space_secret(repo_id, "OTHER", SECRET + "-2", description="second")
    alice.add_space_variable(repo_id, "PUBLIC", "visible")
    alice.create_commit(repo_id, [CommitOperationAdd("app.py", b"print(1)\n")], commit_message="app",
                        repo_type="space")
    head = hub.head(repo_id)
    base = f"{hub.endpoint}/api/spaces/{repo_id}"
    answers = [
        raw("GET", base, ALICE.token),
        raw("GET", f"{base}?blobs=true", ALICE.token),
        raw("GET", f"{base}/revision/{head}", ALICE.token),
        raw("GET", f"{base}/secrets", ALICE.token),
        raw("GET", f"{base}/variables", ALICE.token),
        raw("GET", f"{base}/runtime", ALICE.token),
        raw("GET", f"{base}/tree/main?recursive=true", ALICE.token),
        raw("GET", f"{base}/commits/main", ALICE.token),
        raw("GET", f"{base}/refs", ALICE.token),
        raw("GET", f"{hub.endpoint}/api/spaces?author=alice", ALICE.token),
        raw("GET", f"{hub.endpoint}/api/whoami-v2", ALICE.token),
        raw("POST", f"{base}/secrets", ALICE.token, {"key": "THIRD", "value": SECRET + "-3"}),
        raw("POST", f"{base}/restart", ALICE.token),
        raw("POST", f"{base}/hardware", ALICE.token, {"flavor": "cpu-basic"}),
        raw("POST", f"{base}/sleeptime", ALICE.token, {"seconds": 600}),
        raw("POST", f"{base}/pause", ALICE.token),
        raw("GET", f"{base}/secrets", BOB.token),
        raw("GET", f"{hub.endpoint}/spaces/{repo_id}/info/refs?service=git-upload-pack"),
        raw("POST", f"{hub.endpoint}/api/repos/create", ALICE.token,
            {"name": "secretive", "type": "space", "sdk": "gradio", "secrets": [{"key": "X", "value": SECRET}]}),
    ]
    for path in hub.list_files(repo_id):
        answers.append(raw("GET", f"{hub.endpoint}/spaces/{repo_id}/resolve/main/{path}", ALICE.token))
    assert [a.status for a in answers[:16]] == [200] * 16
    assert answers[16].status == 403 and answers[-1 - len(hub.list_files(repo_id))].status == 409
    for answer in answers:
        assert SECRET.encode() not in answer.body
        assert SECRET not in " ".join(answer.headers.values())
    assert set(alice.get_space_secrets(repo_id)) == {"TOKEN", "OTHER", "THIRD"}
    assert hub.space_state(repo_id).secrets["OTHER"] == SECRET + "-2"
