"""Namespaces and repository names: the local Hub accepts what the Hub accepts, at start-up and on the wire."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from huggingface_hub import CommitOperationAdd, HfApi, hf_hub_download

from beam_pusher.localhub import HubUser, LocalHub

ROOT = Path(__file__).resolve().parents[2]
DUMMY = HubUser("__DUMMY_TRANSFORMERS_USER__", "hf_dummy_write", orgs=("__valid_org__",))


def test_namespaces_starting_with_underscore_work_end_to_end(tmp_path):
    with LocalHub(tmp_path / "hub", users=[DUMMY]) as hub:
        api = HfApi(endpoint=hub.endpoint, token=DUMMY.token)
        assert api.whoami()["name"] == DUMMY.name
        for repo_id in (f"{DUMMY.name}/_private_model_", "__valid_org__/demo"):
            api.create_repo(repo_id)
            api.create_commit(repo_id, [CommitOperationAdd("config.json", b"{}\n")], commit_message="config")
            assert api.repo_exists(repo_id)
            assert api.model_info(repo_id).id == repo_id
            path = hf_hub_download(repo_id, "config.json", endpoint=hub.endpoint, token=DUMMY.token,
                                   cache_dir=tmp_path / "cache")
            assert Path(path).read_bytes() == b"{}\n"
        assert hub.commit_count("__valid_org__/demo", repo_type="model") == 2


@pytest.mark.parametrize("name", ["-leading-dash", "trailing.", "double--dash", "dot..dot", "a" * 97, "sp ace"])
def test_names_the_hub_refuses_are_refused(local_hub, raw, name):
    # Sent raw: the client's own validation would refuse most of these before any request.
    for body in ({"name": name, "type": "model"}, {"name": "ok", "organization": name, "type": "model"}):
        answer = raw("POST", f"{local_hub.endpoint}/api/repos/create", local_hub.token, body)
        assert answer.status == 400
        assert repr(name) in answer.json()["error"] and "start and end with a letter, a digit or '_'" in (
            answer.json()["error"])
    assert not (local_hub.data_dir / "repos" / "models" / local_hub.username).exists()


@pytest.mark.parametrize("user, orgs", [("-bad", ()), ("good", ("a--b",)), ("with/slash", ())])
def test_accounts_are_checked_against_the_same_rule_at_start_up(user, orgs):
    with pytest.raises(ValueError, match="start and end with a letter, a digit or '_'"):
        HubUser(user, "hf_token", orgs=orgs)


@pytest.mark.parametrize("flag, value", [("--user", "-bad"), ("--org", "bad--org"), ("--user", "x" * 97)])
def test_hub_serve_refuses_a_bad_user_or_org_before_serving(tmp_path, flag, value):
    command = [sys.executable, "-m", "beam_pusher.localhub.serve", "--port", "0", "--data-dir", str(tmp_path / "d"),
               "--token", "hf_cli_token", f"{flag}={value}"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stdout == ""  # no endpoint printed: nothing was served
    assert f"Invalid {flag} {value!r}" in done.stderr and "start and end with a letter" in done.stderr
