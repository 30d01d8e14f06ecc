"""SpacePusher against the local Hub server: retried commits and clear errors.

Planning, 412 re-plans and the retry policy themselves are tested in test_commit.py.
"""

from __future__ import annotations

from beam_pusher import AppFile, SpaceSpec
from beam_pusher.hashing import hash_bytes
from beam_pusher.hub import HubSettings, SpacePusher
from beam_pusher.testing.pytest_plugin import LOCAL_HUB_TOKEN_ENV as TOKEN_ENV


def content_file(repo_id, path, data: bytes) -> AppFile:
    h = hash_bytes(data)
    return AppFile(repo_id, path, h.size, content=data, sha256=h.sha256, git_sha1=h.git_sha1)


def pusher(hub, **kwargs) -> SpacePusher:
    kwargs.setdefault("backoff_seconds", 0.01)
    return SpacePusher(HubSettings(endpoint=hub.endpoint, token=f"env:{TOKEN_ENV}", **kwargs))


def test_commit_failures_are_retried_and_then_reported(hub):
    repo_id = f"{hub.username}/flaky"
    p = pusher(hub, max_attempts=3)
    spec = SpaceSpec(repo_id=repo_id, app_path="unused")
    p.push(spec, [content_file(repo_id, "app.py", b"v1\n")])
    before = hub.commit_count(repo_id)

    hub.faults.fail_next_commits(2, status=503)
    survived = p.push(spec, [content_file(repo_id, "app.py", b"v2\n")])
    assert survived.error is None and hub.commit_count(repo_id) == before + 1

    hub.faults.fail_next_commits(5, status=500)
    failed = p.push(spec, [content_file(repo_id, "app.py", b"v3\n")])
    assert not failed.pushed and "gave up after 3 attempts" in failed.error and "500" in failed.error
    assert hub.read_file(repo_id, "app.py") == b"v2\n"  # the failed push left the Space as it was
    assert hub.commit_count(repo_id) == before + 1


def test_refused_pushes_name_the_reason_and_never_the_token(hub):
    p = pusher(hub)
    spec = SpaceSpec(repo_id="someone-else/space", app_path="unused")
    result = p.push(spec, [content_file(spec.repo_id, "app.py", b"x")])
    assert not result.pushed and "403" in result.error and "write access" in result.error
    assert hub.token not in result.error


def test_a_bad_token_is_reported_as_401_without_echoing_it(hub, monkeypatch):
    monkeypatch.setenv("BAD_TOKEN_FOR_TEST", "hf_not_a_valid_token_value")
    bad = SpacePusher(HubSettings(endpoint=hub.endpoint, token="env:BAD_TOKEN_FOR_TEST"))
    result = bad.push(SpaceSpec(repo_id=f"{hub.username}/x", app_path="unused"), [content_file("x", "a", b"a")])
    assert not result.pushed and "401" in result.error
    assert "hf_not_a_valid_token_value" not in result.error


def test_the_free_account_policy_402_is_explained(tmp_path, monkeypatch):
    from beam_pusher.localhub import LocalHub

    with LocalHub(tmp_path / "hub", free_account_policy=True) as hub:
        monkeypatch.setenv(TOKEN_ENV, hub.token)
        spec = SpaceSpec(repo_id=f"{hub.username}/paid", app_path="unused", hardware="t4-small")
        result = pusher(hub).push(spec, [content_file(spec.repo_id, "app.py", b"x")])
    assert not result.pushed and "402" in result.error and "static" in result.error

