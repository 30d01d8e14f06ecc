"""Fault injection: the client's own retries survive injected 503/429 and dropped connections; seeds reproduce."""

from __future__ import annotations

import pytest
from huggingface_hub import CommitOperationAdd
from huggingface_hub.errors import HfHubHTTPError

from beam_pusher.localhub import DEFAULT_FAULT_ROUTES, FaultInjector


def test_injected_503_and_429_on_preupload_are_retried(local_hub, hub_api):
    repo_id = f"{local_hub.username}/flaky"
    hub_api.create_repo(repo_id, repo_type="space", space_sdk="static")
    local_hub.faults.fail_next("preupload", 1, status=503)
    local_hub.faults.fail_next("preupload", 1, status=429)
    info = hub_api.create_commit(repo_id, [CommitOperationAdd("index.html", b"<p>ok</p>")], commit_message="x",
                                 repo_type="space")
    assert info.oid == local_hub.head(repo_id)
    assert local_hub.faults.counts == {"503": 1, "429": 1}
    assert local_hub.request_count("preupload") == 3


def test_dropped_lfs_upload_connection_is_retried(local_hub, hub_api):
    repo_id = f"{local_hub.username}/dropped"
    hub_api.create_repo(repo_id, repo_type="model")
    local_hub.faults.fail_next("lfs-upload", 1, status=0)
    content = b"\x00" * 300_000
    hub_api.create_commit(repo_id, [CommitOperationAdd("w.bin", content)], commit_message="x")
    assert local_hub.read_file(repo_id, "w.bin", repo_type="model") == content
    assert local_hub.faults.counts == {"drop": 1}
    assert local_hub.request_count("lfs-upload") == 2


def test_fail_next_commits_fails_without_committing(local_hub, hub_api):
    repo_id = f"{local_hub.username}/fail-commit"
    hub_api.create_repo(repo_id, repo_type="space", space_sdk="static")
    local_hub.faults.fail_next_commits(1, status=500)
    with pytest.raises(HfHubHTTPError) as err:
        hub_api.create_commit(repo_id, [CommitOperationAdd("a.txt", b"a")], commit_message="a", repo_type="space")
    assert err.value.response.status_code == 500
    assert err.value.response.headers["X-Request-Id"]
    assert local_hub.commit_count(repo_id) == 1
    hub_api.create_commit(repo_id, [CommitOperationAdd("a.txt", b"a")], commit_message="a", repo_type="space")
    assert local_hub.commit_count(repo_id) == 2
    assert local_hub.faults.total == 1


def _decisions(injector: FaultInjector, route: str, n: int) -> list[tuple[str, int] | None]:
    found = []
    for _ in range(n):
        fault = injector.decide(route)
        found.append(None if fault is None else (fault.kind, fault.status))
    return found


def test_random_faults_are_seeded_and_limited_to_retried_routes():
    first = FaultInjector(error_rate=0.3, drop_rate=0.1, seed=42)
    second = FaultInjector(error_rate=0.3, drop_rate=0.1, seed=42)
    sequence = _decisions(first, "preupload", 200)
    assert sequence == _decisions(second, "preupload", 200)
    kinds = {fault for fault in sequence if fault is not None}
    assert {("error", 500), ("error", 503), ("error", 429), ("drop", 0)} <= kinds
    assert 40 < sum(fault is not None for fault in sequence) < 120
    assert _decisions(first, "commit", 50) == [None] * 50  # not retried by the client: spared by default
    assert "commit" not in DEFAULT_FAULT_ROUTES and "preupload" in DEFAULT_FAULT_ROUTES
    first.configure(routes="all", seed=1)
    assert any(_decisions(first, "commit", 50))
    assert first.counts["drop"] + first.counts["500"] + first.counts["503"] + first.counts["429"] == first.total


def test_fault_settings_are_validated():
    injector = FaultInjector()
    with pytest.raises(ValueError, match="error_rate"):
        injector.configure(error_rate=1.5)
    with pytest.raises(ValueError, match="exceeds 1"):
        injector.configure(error_rate=0.6, drop_rate=0.6)
    injector.configure(latency=0.25, retry_after=1)
    assert injector.decide("whoami") is None
    assert injector.counts == {"delayed": 1}
    injector.reset()
    assert (injector.latency, injector.counts) == (0.0, {})
