"""Deploys under the Hub's quotas: one request budget per worker, and Spaces deferred for their commit quota."""

from __future__ import annotations

import threading
import time

import pytest

from beam_pusher.cli import main
from beam_pusher.commit import Committer, HubSettings
from beam_pusher.localhub.ratelimit import UNCOUNTED_ROUTES
from beam_pusher.report import ConsoleReport
from beam_pusher.retries import RequestBudget, commit_quota_retry_after, is_rate_limited, is_transient
from beam_pusher.runner import run_deploy
from beam_pusher.spec import DEFERRED, Outcome, PushResult, SpaceSpec
from beam_pusher.testing import LOCAL_HUB_TOKEN_ENV

RATE = (100, 10)  # requests per seconds: tight enough that a fleet of 60 Spaces spends several windows
COMMITS = 2


class _FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _headers(remaining: int, reset: int, quota: int = 100, window: int = 10) -> dict[str, str]:
    return {"RateLimit": f'"api";r={remaining};t={reset}',
            "RateLimit-Policy": f'"fixed window";"api";q={quota};w={window}'}


def test_budget_never_waits_for_a_hub_without_rate_limit_headers():
    budget = RequestBudget(clock=_FakeClock())
    for _ in range(1000):
        budget.acquire()
    budget.observe({"Content-Type": "application/json"}, 200)
    budget.acquire()
    assert budget.waited_seconds == 0


def test_budget_holds_every_thread_until_the_window_resets():
    budget = RequestBudget()
    budget.acquire()
    budget.observe(_headers(1, 1), 200)
    budget.acquire()  # the last request of the window
    released: list[float] = []
    start = time.monotonic()
    threads = [threading.Thread(target=lambda: (budget.acquire(), released.append(time.monotonic())))
               for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert len(released) == 3
    assert all(0.9 <= at - start < 3 for at in released)  # held until the reset (t=1 s), then all let through


def test_budget_keeps_the_lowest_count_and_the_earliest_reset_of_a_window():
    clock = _FakeClock()
    budget = RequestBudget(clock=clock)
    budget.observe(_headers(5, 10), 200)
    budget.observe(_headers(7, 10), 200)  # an answer that was counted earlier, arriving late
    for _ in range(5):
        budget.acquire()
    assert budget._remaining == 0
    clock.now = 9.5
    budget.observe(_headers(0, 1), 429)  # t rounded up: resets at 10.0, not 10.5
    assert budget.refusals == 1
    assert budget._reset_at == 10.0
    clock.now = 10.0
    budget.acquire()  # a new window, counted from the policy's quota
    assert budget._remaining == 99


def _hub_error(status_headers_message):
    import httpx2
    from huggingface_hub.errors import HfHubHTTPError

    status, headers, message = status_headers_message
    response = httpx2.Response(status, headers=headers, request=httpx2.Request("POST", "http://hub/api/x"))
    return HfHubHTTPError(message, response=response, server_message=message)


def test_a_commit_quota_refusal_is_not_retried_and_a_request_quota_one_is():
    commit = _hub_error((429, {**_headers(40, 3), "Retry-After": "3599"},
                                  "You have exceeded the rate limit for repository commits (128 per hour), please "
                                  "retry in about 1 hour."))
    requests = _hub_error((429, {**_headers(0, 3), "Retry-After": "3"}, "Rate limit reached"))
    assert commit_quota_retry_after(commit) == 3599 and not is_transient(commit) and not is_rate_limited(commit)
    assert commit_quota_retry_after(requests) is None and is_transient(requests) and is_rate_limited(requests)


def _fleet(tmp_path, username: str, count: int) -> list[SpaceSpec]:
    tpl = tmp_path / "tpl"
    tpl.mkdir()
    (tpl / "index.html").write_text("<p>{{NAME}}</p>\n")
    return [
        SpaceSpec(repo_id=f"{username}/quota-{i:02d}", app_path=str(tpl), space_sdk="static",
                  placeholders={"NAME": f"space {i}"})
        for i in range(count)
    ]


def _spend_commit_quota(hub_api, repo_id: str) -> None:
    hub_api.create_repo(repo_id, repo_type="space", space_sdk="static")
    for n in range(COMMITS):
        hub_api.upload_file(path_or_fileobj=f"run {n}\n".encode(), path_in_repo=f"note-{n}.txt", repo_id=repo_id,
                            repo_type="space")


def _counted(hub) -> int:
    return sum(n for route, n in hub.request_counts().items() if route not in UNCOUNTED_ROUTES)


@pytest.mark.local_hub(rate_limit=f"{RATE[0]}/{RATE[1]}", commit_quota=f"{COMMITS}/600")
def test_a_fleet_under_a_tight_rate_limit_commits_each_space_once_and_defers_the_one_over_its_commit_quota(
    local_hub, local_hub_token, hub_api, tmp_path
):
    specs = _fleet(tmp_path, local_hub.username, 60)
    over = specs[17].repo_id
    _spend_commit_quota(hub_api, over)
    time.sleep(RATE[1])  # start the run with a fresh request window, so its figures are its own
    before, refused_before = _counted(local_hub), local_hub.quota_refusals()["api"]
    started = time.monotonic()
    results = run_deploy(specs, endpoint=local_hub.endpoint, token=local_hub_token)
    elapsed = time.monotonic() - started
    requests = _counted(local_hub) - before

    by_id = {r.repo_id: r for r in results}
    assert [r.error for r in results] == [None] * 60  # no Space failed, for 429 or anything else
    deferred = by_id.pop(over)
    assert deferred.outcome is Outcome.DEFERRED and deferred.skipped == DEFERRED and not deferred.committed
    assert deferred.skip_message.startswith(f"{over}: deferred: commit quota, retry after about 10 minutes")
    assert "You have exceeded the rate limit for repository commits (2 per 10 minutes)" in deferred.skip_message
    assert local_hub.commit_count(over) == 1 + COMMITS  # the Hub's initial commit and the two that spent the quota
    assert all(r.committed for r in by_id.values())
    assert all(local_hub.commit_count(rid) == 2 for rid in by_id)  # the Hub's initial commit and exactly one deploy
    quota_bound = requests / (RATE[0] / RATE[1])
    refused = local_hub.quota_refusals()["api"] - refused_before
    print(f"{requests} requests, {refused} refused (429), {elapsed:.1f} s; quota-bound minimum {quota_bound:.1f} s")
    assert requests > RATE[0] * 2  # the run really spent several windows
    assert elapsed <= 1.3 * quota_bound


def _deferred_result() -> PushResult:
    message = "alice/x: deferred: commit quota, retry after about 1 hour (the Hub refused the commit: HTTP 429)"
    return PushResult("alice/x", pushed=False, skipped=DEFERRED, skip_message=message)


def test_the_report_shows_a_deferred_space_and_its_message():
    import io

    out = io.StringIO()
    report = ConsoleReport(total=2, stream=out, endpoint="http://hub", progress=False)
    ok = PushResult("alice/y", pushed=True, committed=True, commit_id="abcdef1234")
    report.finish([_deferred_result(), ok])
    text = out.getvalue()
    assert "alice/x  deferred: commit quota, retry after about 1 hour" in text
    assert "alice/x  deferred " in text.replace("deferred   ", "deferred ")  # the table's Result column
    assert "1 committed, 0 unchanged, 0 failed, 1 deferred (commit quota)" in text
    assert PushResult.from_dict({**_deferred_result().to_dict(), "outcome": "deferred"}) == _deferred_result()


@pytest.mark.local_hub(commit_quota="1/600")
def test_deploy_exits_1_and_says_when_to_retry_for_a_space_over_its_commit_quota(
    local_hub, local_hub_token, hub_api, tmp_path, capsys
):
    repo_id = f"{local_hub.username}/busy"
    hub_api.create_repo(repo_id, repo_type="space", space_sdk="static")
    hub_api.upload_file(path_or_fileobj=b"x\n", path_in_repo="x.txt", repo_id=repo_id, repo_type="space")
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "index.html").write_text("<p>hi</p>\n")
    status = main(["push", "--username", local_hub.username, "--repo-name", "busy", "--app-path",
                   str(tmp_path / "app"), "--space-sdk", "static", "--endpoint", local_hub.endpoint,
                   "--token-env", LOCAL_HUB_TOKEN_ENV])
    out = capsys.readouterr().out
    assert status == 1
    assert f"{repo_id}  deferred: commit quota, retry after about 10 minutes" in out
    assert local_hub.commit_count(repo_id) == 2


def test_a_committer_connected_to_a_hub_shares_one_budget_per_token(local_hub):
    from beam_pusher.retries import budget_for

    Committer.connect(HubSettings(endpoint=local_hub.endpoint, token=None))
    assert budget_for(local_hub.endpoint, "Bearer a") is budget_for(local_hub.endpoint + "/", "Bearer a")
    assert budget_for(local_hub.endpoint, "Bearer a") is not budget_for(local_hub.endpoint, "Bearer b")


def test_the_budget_comes_back_when_another_client_factory_replaced_it(local_hub):
    """A fixture or an application that sets its own client factory after a deploy must not switch the budget off
    for the next deploy (the CI failure: 429s in a fleet run after the local Hub's tests restored the bare client)."""
    from huggingface_hub.utils import _http

    from beam_pusher.retries import install_request_budget

    previous = _http._GLOBAL_CLIENT_FACTORY
    try:
        install_request_budget()
        _http.set_client_factory(_http.default_client_factory)
        install_request_budget()
        hooks = _http.get_session().event_hooks
        assert [hook.__name__ for hook in hooks["request"]][-1:] == ["_before_request"]
        assert [hook.__name__ for hook in hooks["response"]][-1:] == ["_after_response"]
        install_request_budget()  # idempotent: one pair of hooks, not two
        assert [hook.__name__ for hook in _http.get_session().event_hooks["request"]].count("_before_request") == 1
    finally:
        _http.set_client_factory(previous)
