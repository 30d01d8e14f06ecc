"""Several users from a users file: tokens, organisation roles and the access rules between them."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from huggingface_hub import CommitOperationAdd, HfApi
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

from beam_pusher.localhub import LocalHub
from beam_pusher.localhub.users_file import UsersFileError, load_users

ROOT = Path(__file__).resolve().parents[2]
USERS_FILE = Path(__file__).with_name("users.yaml")


def _add() -> list[CommitOperationAdd]:
    return [CommitOperationAdd("app.py", b"print('hi')\n")]  # an operation is spent once committed


def _api(hub: LocalHub, token: str) -> HfApi:
    return HfApi(endpoint=hub.endpoint, token=token)


def _status(err: pytest.ExceptionInfo) -> int:
    return err.value.response.status_code


@pytest.mark.local_hub(users_file="users.yaml")
def test_the_marker_serves_the_users_of_the_file(local_hub):
    assert [user.name for user in local_hub.users] == ["alice", "bob", "carol", "dave", "erin"]
    assert local_hub.username == "alice" and local_hub.token == "hf_alice_write"
    who = _api(local_hub, "hf_carol_write").whoami()
    assert who["name"] == "carol"
    assert who["orgs"] == [{"type": "org", "name": "acme", "fullname": "acme", "roleInOrg": "contributor"}]
    assert _api(local_hub, "hf_alice_read").whoami()["auth"]["accessToken"]["role"] == "read"


@pytest.mark.local_hub(users_file="users.yaml")
def test_access_rules_between_users_and_org_roles(local_hub):
    alice, bob, carol, dave, erin = (_api(local_hub, f"hf_{name}_write")
                                     for name in ("alice", "bob", "carol", "dave", "erin"))
    alice.create_repo("acme/team", repo_type="space", space_sdk="static", private=True)
    with pytest.raises(HfHubHTTPError) as err:  # a read token cannot push, not even to its user's own org
        _api(local_hub, "hf_alice_read").create_commit("acme/team", _add(), commit_message="x", repo_type="space")
    assert _status(err) == 403
    bob.create_commit("acme/team", _add(), commit_message="bob has write", repo_type="space")
    with pytest.raises(HfHubHTTPError) as err:  # a contributor writes only to the repos it created
        carol.create_commit("acme/team", _add(), commit_message="x", repo_type="space")
    assert _status(err) == 403 and "contributor member of 'acme'" in str(err.value)
    carol.create_repo("acme/carols", repo_type="space", space_sdk="static")
    carol.create_commit("acme/carols", _add(), commit_message="carol's own", repo_type="space")
    with pytest.raises(HfHubHTTPError) as err:  # a read member sees the org's private repos, writes nothing
        dave.create_commit("acme/team", _add(), commit_message="x", repo_type="space")
    assert _status(err) == 403 and "read member of 'acme'" in str(err.value)
    assert dave.repo_info("acme/team", repo_type="space").private is True
    with pytest.raises(HfHubHTTPError) as err:
        dave.create_repo("acme/daves", repo_type="space", space_sdk="static")
    assert _status(err) == 403
    with pytest.raises(RepositoryNotFoundError):  # not a member: the private repo does not exist for erin
        erin.repo_info("acme/team", repo_type="space")
    with pytest.raises(HfHubHTTPError) as err:
        erin.create_repo("acme/erins", repo_type="space", space_sdk="static")
    assert _status(err) == 403
    assert local_hub.commit_count("acme/team") == 2 and local_hub.commit_count("acme/carols") == 2
    assert not local_hub.repo_exists("acme/daves") and not local_hub.repo_exists("acme/erins")


def test_every_problem_of_a_users_file_is_reported_without_tokens(tmp_path):
    path = tmp_path / "users.json"
    path.write_text(json.dumps({
        "users": [{"name": "-bad", "token": "hf_secret_one"}, {"name": "ok", "token": "hf_secret_two", "extra": 1},
                  {"name": "twin", "token": "hf_secret_two"}],
        "orgs": {"acme": {"ok": "owner", "ghost": "write"}},
    }))
    with pytest.raises(UsersFileError) as err:
        load_users(path)
    message = str(err.value)
    for expected in ("users[0].name '-bad'", "unknown key 'extra'", "users[2].token of 'twin' is already the token",
                     "orgs.acme.ok: role 'owner' is not one of read, contributor, write, admin",
                     "orgs.acme.ghost: no user 'ghost'", str(path)):
        assert expected in message
    assert "hf_secret" not in message
    with pytest.raises(ValueError, match="users or users_file, not both"):
        LocalHub(users_file=USERS_FILE, users=load_users(USERS_FILE))


def _serve(*flags: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "beam_pusher.localhub.serve", "--port", "0", *flags]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_hub_serve_takes_a_users_file(tmp_path):
    process = _serve("--data-dir", str(tmp_path / "d"), "--users-file", str(USERS_FILE))
    try:
        endpoint = process.stdout.readline().strip()
        assert endpoint.startswith("http://127.0.0.1:"), process.stderr.read()
        request = urllib.request.Request(f"{endpoint}/api/whoami-v2", headers={"Authorization": "Bearer hf_bob_write"})
        with urllib.request.urlopen(request, timeout=30) as answer:
            assert json.load(answer)["orgs"][0]["roleInOrg"] == "write"
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert process.returncode == 0


def test_hub_serve_refuses_a_users_file_mixed_with_one_user_flags(tmp_path):
    done = subprocess.run([sys.executable, "-m", "beam_pusher.localhub.serve", "--port", "0", "--users-file",
                           str(USERS_FILE), "--user", "zed", "--token", "hf_zed"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2 and done.stdout == ""
    assert "--users-file declares every user: leave out --user, --token" in done.stderr
