"""Opt-in quotas: the Hub's API rate limit per token (429 with RateLimit headers) and its commit quota per repo."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from huggingface_hub import CommitOperationAdd, HfApi
from huggingface_hub.errors import HfHubHTTPError
from huggingface_hub.utils import parse_ratelimit_headers

from beam_pusher.localhub import HubUser, LocalHub, RateLimit
from beam_pusher.localhub.serve import build_parser


def _add(path: str, content: bytes = b"x\n") -> list[CommitOperationAdd]:
    return [CommitOperationAdd(path, content)]


def test_no_quota_and_no_ratelimit_headers_by_default(local_hub, hub_api, raw):
    for _ in range(30):
        hub_api.whoami()
    answer = raw("GET", f"{local_hub.endpoint}/api/whoami-v2", token=local_hub.token)
    assert answer.status == 200 and "RateLimit" not in answer.headers
    assert local_hub.quota_refusals() == {"api": 0, "commit": 0}


@pytest.mark.local_hub(rate_limit="4/30")
def test_every_api_answer_carries_headers_the_client_parses(local_hub, raw):
    url = f"{local_hub.endpoint}/api/whoami-v2"
    answers = [raw("GET", url, token=local_hub.token) for _ in range(5)]
    assert [answer.status for answer in answers] == [200, 200, 200, 200, 429]
    first = parse_ratelimit_headers(answers[0].headers)
    assert (first.resource_type, first.remaining, first.limit, first.window_seconds) == ("api", 3, 4, 30)
    assert 1 <= first.reset_in_seconds <= 30
    refused = answers[-1]
    info = parse_ratelimit_headers(refused.headers)
    assert (info.remaining, info.limit, info.window_seconds) == (0, 4, 30)
    assert refused.headers["RateLimit-Policy"] == '"fixed window";"api";q=4;w=30'
    assert int(refused.headers["Retry-After"]) == info.reset_in_seconds
    assert "4 API requests in 30 seconds" in refused.json()["error"]
    assert local_hub.quota_refusals() == {"api": 1, "commit": 0}


def test_quota_is_counted_per_token_and_per_address_when_anonymous(tmp_path, raw):
    alice, bob = HubUser("alice", "hf_alice", read_tokens=("hf_alice_read",)), HubUser("bob", "hf_bob")
    with LocalHub(tmp_path / "hub", users=[alice, bob], rate_limit="3/30") as hub:
        url = f"{hub.endpoint}/api/whoami-v2"
        assert [raw("GET", url, token="hf_alice").status for _ in range(4)] == [200, 200, 200, 429]
        assert raw("GET", url, token="hf_alice_read").status == 200  # another token of the same user
        assert raw("GET", url, token="hf_bob").status == 200
        models = f"{hub.endpoint}/api/models"
        assert [raw("GET", models).status for _ in range(4)] == [200, 200, 200, 429]
        # Git reads and downloads are not API requests: they do not count.
        hub_api = HfApi(endpoint=hub.endpoint, token="hf_bob")
        hub_api.create_repo("bob/files", repo_type="model")
        resolve = f"{hub.endpoint}/bob/files/resolve/main/.gitattributes"
        assert all(raw("GET", resolve, token="hf_bob").status == 200 for _ in range(5))


@pytest.mark.local_hub(rate_limit="6/3")
def test_the_client_waits_for_the_reset_and_then_succeeds(local_hub, hub_api):
    repo_id = f"{local_hub.username}/patient"
    hub_api.create_repo(repo_id, repo_type="model")
    while local_hub.quota_refusals()["api"] == 0:  # use the window up (repo_info is not retried by the client)
        try:
            hub_api.repo_info(repo_id)
        except HfHubHTTPError as err:
            assert err.response.status_code == 429
            assert "reached your 'api' rate limit" in str(err)
    # Listings go through the client's backoff, which reads RateLimit and sleeps until the window resets.
    assert hub_api.list_repo_files(repo_id) == [".gitattributes"]
    assert local_hub.quota_refusals()["api"] >= 2
    # So does preupload: a whole commit survives a used-up window.
    while local_hub.quota_refusals()["api"] < 3:
        try:
            hub_api.repo_info(repo_id)
        except HfHubHTTPError:
            pass
    info = hub_api.create_commit(repo_id, _add("a.txt"), commit_message="after the reset")
    assert info.oid == local_hub.head(repo_id, repo_type="model")


@pytest.mark.local_hub(commit_quota="2/3600")
def test_commit_quota_answers_the_hubs_message_per_repository(local_hub, hub_api):
    first, second = f"{local_hub.username}/busy", f"{local_hub.username}/calm"
    for repo_id in (first, second):
        hub_api.create_repo(repo_id, repo_type="space", space_sdk="static")  # the initial commit does not count
    hub_api.create_commit(first, _add("index.html", b"1"), commit_message="1", repo_type="space")
    hub_api.create_commit(first, _add("index.html", b"2"), commit_message="2", repo_type="space")
    with pytest.raises(HfHubHTTPError) as err:
        hub_api.create_commit(first, _add("index.html", b"3"), commit_message="3", repo_type="space")
    response = err.value.response
    assert response.status_code == 429
    assert "You have exceeded the rate limit for repository commits (2 per hour)" in str(err.value)
    assert "retry in about 1 hour" in str(err.value)
    assert 3000 < int(response.headers["Retry-After"]) <= 3600
    assert local_hub.read_file(first, "index.html") == b"2" and local_hub.commit_count(first) == 3
    hub_api.create_commit(second, _add("index.html", b"1"), commit_message="1", repo_type="space")
    assert local_hub.quota_refusals() == {"api": 0, "commit": 1}


@pytest.mark.local_hub(commit_quota="1/2")
def test_a_refused_commit_does_not_use_the_quota_and_the_window_resets(local_hub, hub_api):
    repo_id = f"{local_hub.username}/stale"
    hub_api.create_repo(repo_id, repo_type="space", space_sdk="static")
    stale = local_hub.head(repo_id)
    hub_api.create_commit(repo_id, _add("a.txt"), commit_message="a", repo_type="space")
    with pytest.raises(HfHubHTTPError) as err:  # the window is used up
        hub_api.create_commit(repo_id, _add("b.txt"), commit_message="b", repo_type="space")
    assert err.value.response.status_code == 429 and "(1 per 2 seconds)" in str(err.value)
    retry_after = int(err.value.response.headers["Retry-After"])
    assert 1 <= retry_after <= 2
    time.sleep(retry_after)
    with pytest.raises(HfHubHTTPError) as err:  # a stale parent: 412, and the commit is not counted
        hub_api.create_commit(repo_id, _add("b.txt"), commit_message="b", repo_type="space", parent_commit=stale)
    assert err.value.response.status_code == 412
    hub_api.create_commit(repo_id, _add("b.txt"), commit_message="b", repo_type="space")
    assert local_hub.commit_count(repo_id) == 3


def test_rate_limits_are_parsed_and_validated():
    assert RateLimit.parse("1000/300") == RateLimit(1000, 300)
    assert str(RateLimit.parse(" 20 / 2 ")) == "20/2"
    for bad in ("1000", "1000/5m", "0/10", "10/0", "-1/10", "ten/10"):
        with pytest.raises(ValueError, match="1000/300"):
            RateLimit.parse(bad)
    with pytest.raises(ValueError, match="rate limit '100 per minute'"):
        LocalHub(rate_limit="100 per minute")


def test_hub_serve_takes_the_quota_flags(capsys):
    args = build_parser().parse_args(["--rate-limit", "100/10", "--commit-quota", "128/3600"])
    assert (args.rate_limit, args.commit_quota) == (RateLimit(100, 10), RateLimit(128, 3600))
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["--rate-limit", "100"])
    assert exit_info.value.code == 2
    assert "'100' is not COUNT/SECONDS" in capsys.readouterr().err


def test_hub_serve_applies_the_rate_limit(tmp_path, raw):
    command = [sys.executable, "-m", "beam_pusher.localhub.serve", "--port", "0", "--token", "hf_served",
               "--data-dir", str(tmp_path / "hub"), "--rate-limit", "2/60"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as server:
        try:
            endpoint = server.stdout.readline().strip()
            statuses = [raw("GET", f"{endpoint}/api/whoami-v2", token="hf_served").status for _ in range(3)]
            assert statuses == [200, 200, 429]
        finally:
            server.terminate()
            server.wait(timeout=10)
