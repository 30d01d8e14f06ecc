"""SpacePusher against the local Hub server: retried commits, clear errors, and the Hub side of rollback and status.

Planning, 412 re-plans and the retry policy themselves are tested in test_commit.py.
"""

from __future__ import annotations

import pytest
from huggingface_hub import CommitOperationAdd

from beam_pusher import AppFile, SpaceSpec
from beam_pusher.commit import Committer, remote_tree
from beam_pusher.errors import SpecError
from beam_pusher.hashing import hash_bytes
from beam_pusher.hub import HubSettings, SpacePusher, space_status
from beam_pusher.rollback import rollback
from beam_pusher.spec import ChangeAction
from beam_pusher.testing import free_port
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


def test_an_endpoint_never_reached_is_not_retried(tmp_path, monkeypatch):
    """Connection refused before the Hub ever answered: one attempt, a message naming the endpoint."""
    endpoint = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv(TOKEN_ENV, "hf_unused")
    p = SpacePusher(HubSettings(endpoint=endpoint, token=f"env:{TOKEN_ENV}", backoff_seconds=60.0))
    result = p.push(SpaceSpec(repo_id="alice/x", app_path="unused"), [content_file("alice/x", "a", b"a")])
    assert not result.pushed
    assert f"cannot reach the Hub at {endpoint} (connection refused)" in result.error
    assert "attempts" not in result.error


def test_without_any_token_the_error_says_that_no_token_was_sent(hub):
    from huggingface_hub import HfApi

    from beam_pusher.commit import describe_error

    # conftest removes HF_TOKEN and points HF_HOME at a fresh folder: no token at all
    p = SpacePusher(HubSettings(endpoint=hub.endpoint, token=None))
    result = p.push(SpaceSpec(repo_id=f"{hub.username}/x", app_path="unused"), [content_file("x", "a", b"a")])
    assert not result.pushed and "no Hub token was sent: set HF_TOKEN, run `hf auth login`" in result.error
    with pytest.raises(Exception) as refused:  # the Hub's own 401, for a request sent without a token
        HfApi(endpoint=hub.endpoint, token=False).create_repo(f"{hub.username}/y", repo_type="space",
                                                              space_sdk="static")
    message = describe_error(refused.value, f"{hub.username}/y", token_sent=False)
    assert "HTTP 401" in message and "no Hub token was sent" in message and "rejected the token" not in message
    assert "rejected the token" in describe_error(refused.value, f"{hub.username}/y")


def test_the_free_account_policy_402_is_explained(tmp_path, monkeypatch):
    from beam_pusher.localhub import LocalHub

    with LocalHub(tmp_path / "hub", free_account_policy=True) as hub:
        monkeypatch.setenv(TOKEN_ENV, hub.token)
        spec = SpaceSpec(repo_id=f"{hub.username}/paid", app_path="unused", hardware="t4-small")
        result = pusher(hub).push(spec, [content_file(spec.repo_id, "app.py", b"x")])
    assert not result.pushed and "402" in result.error and "static" in result.error


def test_each_failure_names_the_repo_id_once(tmp_path, monkeypatch, caplog):
    """A refused create, a refused settings write and a commit given up on: the repo id once per message and log."""
    import logging

    from beam_pusher.localhub import LocalHub

    with LocalHub(tmp_path / "hub", free_account_policy="paid-hardware") as hub, \
            caplog.at_level(logging.WARNING, logger="beam_pusher"):
        monkeypatch.setenv(TOKEN_ENV, hub.token)
        repo_id = f"{hub.username}/once"
        refused = pusher(hub).push(SpaceSpec(repo_id=repo_id, app_path="unused", hardware="t4-small"),
                                   [content_file(repo_id, "app.py", b"x")])
        assert refused.error.startswith(f"{repo_id}: cannot create the Space: HTTP 402: ")
        assert "paid plan" in refused.error  # the rule and the fix are still named

        assert pusher(hub).push(SpaceSpec(repo_id=repo_id, app_path="unused"),
                                [content_file(repo_id, "app.py", b"x")]).error is None
        unsettled = pusher(hub).push(SpaceSpec(repo_id=repo_id, app_path="unused", hardware="t4-small"),
                                     [content_file(repo_id, "app.py", b"y")])
        assert unsettled.error.startswith(f"{repo_id}: the files were pushed, but not every setting: cannot apply ")
        assert "HTTP 402" in unsettled.error

        hub.faults.fail_next_commits(5, status=500)
        gave_up = pusher(hub, max_attempts=2).push(SpaceSpec(repo_id=repo_id, app_path="unused"),
                                                   [content_file(repo_id, "app.py", b"z")])
        assert gave_up.error.startswith(f"{repo_id}: gave up after 2 attempts; last error: HTTP 500")
    for error in (refused.error, unsettled.error, gave_up.error):
        assert error.count(repo_id) == 1, error
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 3 and all(w.count(repo_id) == 1 for w in warnings), warnings


# -- rollback and status: the Hub side of the CLI commands -------------------------------------------------------


def test_rollback_plans_the_old_tree_and_commits_only_the_difference(hub, api):
    repo_id = f"{hub.username}/rolled"
    api.create_repo(repo_id, repo_type="space", space_sdk="static")
    v1 = api.create_commit(repo_id, [CommitOperationAdd("app.py", b"v1\n"), CommitOperationAdd("same.txt", b"s\n")],
                           commit_message="v1", repo_type="space").oid
    v2 = api.create_commit(repo_id, [CommitOperationAdd("app.py", b"v2\n"), CommitOperationAdd("new.txt", b"n\n")],
                           commit_message="v2", repo_type="space").oid
    committer = Committer.connect(HubSettings(endpoint=hub.endpoint, token=f"env:{TOKEN_ENV}"))

    planned = rollback(committer, repo_id, v1, dry_run=True)
    assert planned.dry_run and planned.target == v1 and planned.commit.head == v2 and not planned.commit.committed
    assert [(c.action, c.path) for c in planned.commit.changes] == [("update", "app.py"), ("delete", "new.txt")]
    assert hub.head(repo_id) == v2

    done = rollback(committer, repo_id, v1, message="back to v1")
    assert done.commit.committed and done.commit.head == hub.head(repo_id) != v2
    assert (done.commit.count(ChangeAction.UPDATE), done.commit.count(ChangeAction.DELETE)) == (1, 1)
    assert hub.read_file(repo_id, "app.py") == b"v1\n" and "new.txt" not in hub.list_files(repo_id)
    assert api.list_repo_commits(repo_id, repo_type="space")[0].title == "back to v1"
    assert rollback(committer, repo_id, v1).commit.changes == ()  # already there: nothing to commit

    with pytest.raises(SpecError, match=f"no commit '{'0' * 40}'"):
        rollback(committer, repo_id, "0" * 40)
    with pytest.raises(SpecError, match="no such model"):
        rollback(committer, repo_id, v1, repo_type="model")
    with pytest.raises(SpecError, match="is not a Hub repository id"):
        rollback(committer, "no-namespace", v1)


def test_a_commit_prefix_matches_one_commit_or_names_every_match():
    from beam_pusher.rollback import match_commit

    commits = [("d014135a" + "1" * 32, "v3"), ("d0141ffe" + "2" * 32, "v2"), ("9c0ffee0" + "3" * 32, "v1")]
    assert match_commit("alice/x", "d014135", commits) == commits[0][0]
    assert match_commit("alice/x", "9C0F", commits) == commits[2][0]
    assert match_commit("alice/x", "beef", commits) is None
    with pytest.raises(SpecError) as info:
        match_commit("alice/x", "d014", commits)
    message = str(info.value)
    assert "'d014' matches 2 commits" in message and "d014135a1111 (v3)" in message and "d0141ffe2222 (v2)" in message
    assert "give more characters" in message
    with pytest.raises(SpecError, match="at least 4"):
        match_commit("alice/x", "d01", commits)


def test_rollback_leaves_kept_paths_and_gitattributes_as_they_are(hub, api):
    from huggingface_hub import CommitOperationDelete

    repo_id = f"{hub.username}/rolled-kept"
    api.create_repo(repo_id, repo_type="space", space_sdk="static")
    commit = api.create_commit
    commit(repo_id, [CommitOperationAdd("app.py", b"v1\n"), CommitOperationAdd("data/old.csv", b"old\n")],
           commit_message="v1", repo_type="space")
    v2 = commit(repo_id, [CommitOperationDelete(".gitattributes"), CommitOperationAdd("data/users.csv", b"u\n")],
                commit_message="v2: no .gitattributes", repo_type="space").oid
    commit(repo_id, [CommitOperationAdd("app.py", b"v3\n"), CommitOperationAdd(".gitattributes", b"*.bin lfs\n"),
                     CommitOperationAdd("data/users.csv", b"u2\n"), CommitOperationDelete("data/old.csv"),
                     CommitOperationAdd("data/new.csv", b"n\n"), CommitOperationAdd("stray.txt", b"s\n")],
           commit_message="v3", repo_type="space")
    committer = Committer.connect(HubSettings(endpoint=hub.endpoint, token=f"env:{TOKEN_ENV}"))

    done = rollback(committer, repo_id, v2, keep=["data/"])
    assert done.commit.committed
    files = hub.list_files(repo_id)
    assert set(files) == {".gitattributes", "README.md", "app.py", "data/users.csv", "data/new.csv"}  # no stray.txt
    assert hub.read_file(repo_id, "app.py") == b"v1\n"  # restored
    assert hub.read_file(repo_id, "data/users.csv") == b"u2\n"  # kept as it is now, not rolled back
    assert hub.read_file(repo_id, ".gitattributes") == b"*.bin lfs\n"  # v2 had none: never deleted
    with pytest.raises(SpecError, match="keep: '!' is not a .gitignore pattern"):
        rollback(committer, repo_id, v2, keep=["!"])


def test_space_status_reads_each_stage_and_keeps_going_past_a_missing_space(hub, api):
    running, broken, missing = f"{hub.username}/up", f"{hub.username}/no-readme", f"{hub.username}/never-deployed"
    readme = b"---\nsdk: static\n---\n"
    pusher(hub).push(SpaceSpec(repo_id=running, app_path="unused", space_sdk="static"),
                     [content_file(running, "README.md", readme), content_file(running, "index.html", b"<p>up</p>\n")])
    pusher(hub).push(SpaceSpec(repo_id=broken, app_path="unused", space_sdk="static"),
                     [content_file(broken, "index.html", b"<p>no card</p>\n")])

    up, bad, gone = space_status(api, [running, broken, missing])
    assert (up.repo_id, up.stage, up.found, up.error, up.failed) == (running, "RUNNING", True, None, False)
    assert up.url == f"{hub.endpoint}/spaces/{running}" and up.hardware
    assert (bad.repo_id, bad.stage, bad.found, bad.error, bad.failed) == (broken, "CONFIG_ERROR", True, None, True)
    assert (gone.repo_id, gone.stage, gone.found, gone.failed) == (missing, None, False, True)
    assert "does not exist" in gone.error
    assert space_status(api, []) == []


# -- Space settings: declared state, planned, only differences written, nothing half-done ------------------------

README = b"---\nsdk: static\n---\n"
WRITE_ROUTES = ("create-repo", "preupload", "commit", "space-hardware", "space-sleeptime", "settings", "space-restart")


def static_space(repo_id, body: bytes = b"<p>hi</p>\n") -> list[AppFile]:
    """The files of a static Space that builds and runs on the local Hub."""
    return [content_file(repo_id, "README.md", README), content_file(repo_id, "index.html", body)]


def settings_seen(api, repo_id) -> tuple[dict, dict]:
    """What the Hub shows of a Space's secrets and variables: descriptions, values and update times."""
    secrets = {k: (s.description, s.updated_at) for k, s in api.get_space_secrets(repo_id).items()}
    variables = {k: (v.value, v.description, v.updated_at) for k, v in api.get_space_variables(repo_id).items()}
    return secrets, variables


def delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {route: after.get(route, 0) - before.get(route, 0) for route in set(after) | set(before)
            if after.get(route, 0) != before.get(route, 0)}


@pytest.mark.local_hub(runtime_delay=1.0)
def test_a_redeploy_that_changes_nothing_writes_no_setting_and_restarts_nothing(hub, api, monkeypatch):
    """Defect 2: every deploy set every secret again, so every Space with a secret rebuilt on every deploy."""
    monkeypatch.setenv("D2_SECRET", "s3cr3t-d2-value")
    repo_id = f"{hub.username}/no-restart"
    spec = SpaceSpec(repo_id=repo_id, app_path="unused", space_sdk="static", secrets={"API_KEY": "env:D2_SECRET"},
                     variables={"THEME": "dark"})
    first = pusher(hub, wait=True).push(spec, static_space(repo_id))
    assert first.error is None and first.runtime_stage == "RUNNING"
    assert hub.space_state(repo_id).secrets == {"API_KEY": "s3cr3t-d2-value"}
    seen, counts = settings_seen(api, repo_id), hub.request_counts()

    again = pusher(hub).push(spec, static_space(repo_id))
    changed = delta(hub.request_counts(), counts)
    assert again.error is None and not again.committed
    assert api.get_space_runtime(repo_id).stage == "RUNNING"  # any settings write would have started a build
    assert settings_seen(api, repo_id) == seen
    assert changed.get("space-secrets") == 1 and changed.get("space-variables") == 1  # one read each, no write
    assert not any(changed.get(route) for route in WRITE_ROUTES), changed
    assert again.settings_applied == ()
    assert [str(c) for c in first.settings_applied] == ["secret API_KEY: set (new)", "variable THEME: set (new)"]
    description = api.get_space_secrets(repo_id)["API_KEY"].description
    assert description.startswith("managed by beam-pusher; v1$") and "s3cr3t" not in description

    monkeypatch.setenv("D2_SECRET", "rotated-value")  # a new value is written, and the Space rebuilds
    rotated = pusher(hub).push(spec, static_space(repo_id))
    assert [str(c) for c in rotated.settings_applied] == ["secret API_KEY: set (changed)"]
    assert api.get_space_runtime(repo_id).stage == "BUILDING"
    assert hub.space_state(repo_id).secrets == {"API_KEY": "rotated-value"}


def test_secrets_and_variables_dropped_from_the_config_are_deleted_and_hand_set_ones_stay(hub, api, monkeypatch):
    """Defect 3: a secret or variable removed from the config (or set to null) stayed on the Space."""
    from beam_pusher.config import parse_config

    monkeypatch.setenv("D3_A", "value-a")
    monkeypatch.setenv("D3_B", "value-b")
    repo_id = f"{hub.username}/dropped"
    both = SpaceSpec(repo_id=repo_id, app_path="unused", space_sdk="static",
                     secrets={"A": "env:D3_A", "B": "env:D3_B"}, variables={"X": "1", "Y": "2"})
    assert pusher(hub).push(both, static_space(repo_id)).error is None
    api.add_space_secret(repo_id, "HAND", "typed-in-the-ui")
    api.add_space_variable(repo_id, "HAND_VAR", "h")

    fewer = SpaceSpec(repo_id=repo_id, app_path="unused", space_sdk="static", secrets={"A": "env:D3_A"},
                      variables={"X": "1"})
    result = pusher(hub).push(fewer, static_space(repo_id))
    assert result.error is None and not result.committed
    state = hub.space_state(repo_id)
    assert state.secrets == {"A": "value-a", "HAND": "typed-in-the-ui"}
    assert state.variables == {"X": "1", "HAND_VAR": "h"}
    assert [str(c) for c in result.settings_applied] == ["secret B: delete (removed from the config)",
                                                         "variable Y: delete (removed from the config)"]

    # A null entry in a Space drops the defaults' secret: the one the deploy set is deleted.
    config = parse_config(f"""
defaults: {{app_path: /, space_sdk: static, secrets: {{A: env:D3_A}}, variables: {{X: "1"}}}}
spaces:
  - repo_id: {repo_id}
    secrets: {{A: null}}
    variables: {{X: null}}
""", environ={"D3_A": "value-a"})
    nulled = pusher(hub).push(config.specs[0], static_space(repo_id))
    assert [str(c) for c in nulled.settings_applied] == ["secret A: delete (removed from the config)",
                                                         "variable X: delete (removed from the config)"]
    state = hub.space_state(repo_id)
    assert (state.secrets, state.variables) == ({"HAND": "typed-in-the-ui"}, {"HAND_VAR": "h"})

    named = SpaceSpec(repo_id=repo_id, app_path="unused", space_sdk="static", secrets={"HAND": "env:D3_B"})
    assert [str(c) for c in pusher(hub).push(named, static_space(repo_id)).settings_applied] == [
        "secret HAND: set (set by hand)"]  # named by the config: overwritten, and managed from now on
    assert hub.space_state(repo_id).secrets == {"HAND": "value-b"}


def test_an_empty_secret_variable_fails_validate_and_the_push_before_any_write(hub, api, monkeypatch):
    """Defect 4: ``MY_API_KEY= beam-pusher deploy`` reported "unchanged" and wiped the Space's secret."""
    from beam_pusher.config import parse_config
    from beam_pusher.errors import ConfigError

    monkeypatch.setenv("D4_KEY", "the-real-key")
    repo_id = f"{hub.username}/empty-secret"
    spec = SpaceSpec(repo_id=repo_id, app_path="unused", space_sdk="static", secrets={"API_KEY": "env:D4_KEY"},
                     variables={"X": "1"})
    assert pusher(hub).push(spec, static_space(repo_id)).error is None
    commits, counts = hub.commit_count(repo_id), hub.request_counts()

    monkeypatch.setenv("D4_KEY", "")
    changed = SpaceSpec(repo_id=repo_id, app_path="unused", space_sdk="static", secrets={"API_KEY": "env:D4_KEY"},
                        variables={"X": "2"})
    result = pusher(hub).push(changed, static_space(repo_id, b"<p>v2</p>\n"))
    assert not result.pushed and "D4_KEY" in result.error and "empty" in result.error
    assert result.settings_applied == ()
    state = hub.space_state(repo_id)
    assert (state.secrets, state.variables) == ({"API_KEY": "the-real-key"}, {"X": "1"})
    assert hub.commit_count(repo_id) == commits and not delta(hub.request_counts(), counts)  # not even a read

    text = f"spaces:\n  - {{repo_id: {repo_id}, app_path: /, secrets: {{API_KEY: env:D4_KEY}}}}\n"
    with pytest.raises(ConfigError) as info:
        parse_config(text, environ={"D4_KEY": ""})
    assert "spaces[0].secrets.API_KEY: refers to the environment variable D4_KEY, which is empty" in str(info.value)


def test_an_unknown_hardware_fails_validate_and_plan_and_nothing_is_written(hub, api, tmp_path, monkeypatch, capsys):
    """Defect 5: hardware ``super-gpu-9000`` failed with HTTP 400 after the variables and secrets were set."""
    from beam_pusher import cli

    monkeypatch.setenv("D5_KEY", "key-1")
    repo_id = f"{hub.username}/super-gpu"
    spec = SpaceSpec(repo_id=repo_id, app_path="unused", space_sdk="static", variables={"THEME": "dark"})
    assert pusher(hub).push(spec, static_space(repo_id)).error is None
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "index.html").write_text("<p>new</p>\n")
    config = tmp_path / "spaces.yaml"
    config.write_text(f"spaces:\n  - repo_id: {repo_id}\n    app_path: app\n    space_sdk: static\n"
                      "    hardware: super-gpu-9000\n    variables: {THEME: light}\n"
                      "    secrets: {API_KEY: env:D5_KEY}\n")
    seen, commits, counts = settings_seen(api, repo_id), hub.commit_count(repo_id), hub.request_counts()
    for command in ("validate", "plan", "deploy"):
        assert cli.main([command, str(config), *(["--endpoint", hub.endpoint, "--token-env", TOKEN_ENV]
                                                 if command != "validate" else [])]) == 2
        err = capsys.readouterr().err
        assert "spaces[0].hardware: hardware='super-gpu-9000' is not a hardware flavor of the Hub" in err
        assert "cpu-basic" in err and "t4-small" in err
    assert not delta(hub.request_counts(), counts)  # nothing read, nothing written
    assert settings_seen(api, repo_id) == seen and hub.commit_count(repo_id) == commits


def test_plan_and_deploy_fail_a_namespace_the_token_cannot_write_before_any_write(tmp_path, monkeypatch, capsys):
    """Defect 8: ``plan`` said "would commit" for a namespace the token cannot write; deploy then failed with 403."""
    from huggingface_hub import HfApi

    from beam_pusher import cli
    from beam_pusher.localhub import HubUser, LocalHub

    users = [HubUser("alice", "hf_alice_write_token", orgs=("acme",), read_tokens=("hf_alice_read_token",)),
             HubUser("bob", "hf_bob_write_token")]
    with LocalHub(tmp_path / "hub", users=users) as hub:
        HfApi(endpoint=hub.endpoint, token="hf_bob_write_token").create_repo("bob/demo", repo_type="space",
                                                                             space_sdk="static")
        monkeypatch.setenv(TOKEN_ENV, "hf_alice_write_token")
        counts = hub.request_counts()
        for dry_run in (True, False):
            result = pusher(hub, dry_run=dry_run).push(
                SpaceSpec(repo_id="bob/demo", app_path="unused", space_sdk="static", variables={"X": "1"}),
                static_space("bob/demo"))
            assert not result.pushed and result.planned == () and result.settings_planned == ()
            assert "no write access to the namespace 'bob'" in result.error and "403" in result.error
            assert "it may write in: alice, acme" in result.error
        assert not any(delta(hub.request_counts(), counts).get(route) for route in WRITE_ROUTES)
        assert hub.commit_count("bob/demo") == 1 and hub.space_state("bob/demo").variables == {}

        org = pusher(hub, dry_run=True).push(SpaceSpec(repo_id="ACME/demo", app_path="unused", space_sdk="static"),
                                             static_space("ACME/demo"))
        assert org.error is None and org.planned  # an organisation of the user: writable, in any case of letters

        monkeypatch.setenv(TOKEN_ENV, "hf_alice_read_token")
        read_only = pusher(hub, dry_run=True).push(SpaceSpec(repo_id="alice/demo", app_path="unused"),
                                                   static_space("alice/demo"))
        assert "no write access to the namespace 'alice'; it may write nowhere" in read_only.error

        (tmp_path / "app").mkdir()
        (tmp_path / "app" / "index.html").write_text("<p>x</p>\n")
        config = tmp_path / "spaces.yaml"
        config.write_text("defaults: {app_path: app, space_sdk: static}\nspaces:\n  - repo_id: bob/demo\n"
                          "  - repo_id: alice/mine\n")
        monkeypatch.setenv(TOKEN_ENV, "hf_alice_write_token")
        assert cli.main(["plan", str(config), "--endpoint", hub.endpoint, "--token-env", TOKEN_ENV]) == 1
        out = capsys.readouterr().out
        assert "✗ bob/demo  failed: the token of 'alice' has no write access to the namespace 'bob'" in out
        assert "· alice/mine  would commit" in out
        assert "2 Spaces planned: 1 would commit, 0 up to date, 1 failed" in out
        assert not hub.repo_exists("alice/mine")


def test_a_settings_write_refused_after_the_commit_reports_what_was_and_was_not_applied(hub, api, tmp_path):
    import io
    import json

    from beam_pusher.report import ConsoleReport, write_report

    repo_id = f"{hub.username}/half"
    spec = SpaceSpec(repo_id=repo_id, app_path="unused", space_sdk="static", variables={"X": "1"})
    assert pusher(hub).push(spec, static_space(repo_id)).error is None
    bigger = SpaceSpec(repo_id=repo_id, app_path="unused", space_sdk="static", variables={"X": "2"},
                       hardware="t4-small", sleep_time=600)
    hub.faults.fail_next("space-sleeptime", 1, status=400)
    result = pusher(hub).push(bigger, static_space(repo_id, b"<p>v2</p>\n"))
    assert result.committed and result.commit_id == hub.head(repo_id) and result.files_updated == 1
    assert [str(c) for c in result.settings_applied] == ["hardware: cpu-basic -> t4-small"]
    assert [str(c) for c in result.settings_failed] == ["sleep_time: 172800 -> 600", "variable X: set (changed)"]
    assert "HTTP 400" in result.error and "Applied: hardware: cpu-basic -> t4-small." in result.error
    assert "Not applied: sleep_time: 172800 -> 600; variable X: set (changed)." in result.error
    state = hub.space_state(repo_id)
    assert (state.hardware, state.sleep_time, state.variables) == ("t4-small", None, {"X": "1"})

    stream = io.StringIO()
    ConsoleReport(total=1, stream=stream).finish([result], [repo_id])
    out = stream.getvalue()
    assert "    ~ applied: hardware: cpu-basic -> t4-small" in out
    assert "    ~ not applied: variable X: set (changed)" in out
    row = next(line for line in out.splitlines() if line.startswith(repo_id) and " failed " in line)
    assert "+0 ~1 -0" in row and "1/3 applied" in row
    write_report(tmp_path / "report.json", [result])
    reported = json.loads((tmp_path / "report.json").read_text())[0]
    assert [c["kind"] for c in reported["settings_failed"]] == ["sleep_time", "variable"]

    again = pusher(hub).push(bigger, static_space(repo_id, b"<p>v2</p>\n"))  # only what is still different
    assert again.error is None and not again.committed
    assert [str(c) for c in again.settings_applied] == ["sleep_time: 172800 -> 600", "variable X: set (changed)"]
    state = hub.space_state(repo_id)
    assert (state.hardware, state.sleep_time, state.variables) == ("t4-small", 600, {"X": "2"})


def test_plan_lists_settings_changes_next_to_file_changes_without_secret_values(hub, api, monkeypatch):
    monkeypatch.setenv("PLAN_KEY", "plan-secret-value")
    repo_id = f"{hub.username}/planned"
    spec = SpaceSpec(repo_id=repo_id, app_path="unused", space_sdk="static", variables={"OLD": "1"})
    pusher(hub).push(spec, static_space(repo_id))
    counts = hub.request_counts()
    changed = SpaceSpec(repo_id=repo_id, app_path="unused", space_sdk="static", hardware="t4-small", private=True,
                        secrets={"API_KEY": "env:PLAN_KEY"}, variables={"NEW": "2"})
    planned = pusher(hub, dry_run=True).push(changed, static_space(repo_id, b"<p>v2</p>\n"))
    assert [str(c) for c in planned.settings_planned] == [
        "hardware: cpu-basic -> t4-small", "visibility: public -> private", "secret API_KEY: set (new)",
        "variable NEW: set (new)", "variable OLD: delete (removed from the config)"]
    assert not any(delta(hub.request_counts(), counts).get(route) for route in WRITE_ROUTES)
    assert hub.space_state(repo_id).variables == {"OLD": "1"}

    from beam_pusher.report import ConsoleReport

    lines = ConsoleReport(total=1, dry_run=True).lines(planned)
    assert lines[0].endswith("would commit +0 ~1 -0 (on " + planned.commit_id[:7] + ", 1 file unchanged); "
                             "would write 5 settings")
    assert lines[1:] == ["    ~ index.html  (10 B)", "    ~ hardware: cpu-basic -> t4-small",
                         "    ~ visibility: public -> private", "    + secret API_KEY: set (new)",
                         "    + variable NEW: set (new)", "    - variable OLD: delete (removed from the config)"]
    assert "plan-secret-value" not in repr(planned) + "\n".join(lines)


def test_a_first_deploy_and_a_no_op_cost_the_fewest_requests_that_keep_the_space_safe(hub, api):
    """A new Space: one read (404), its creation, the client's upload steps and one commit, never a second read;
    a redeploy that changes nothing: one read of the Space and one of each settings list, no write."""
    repo_id = f"{hub.username}/few-requests"
    spec = SpaceSpec(repo_id=repo_id, app_path="unused", space_sdk="static")
    p = pusher(hub)
    p.push(SpaceSpec(repo_id=f"{hub.username}/warm-up", app_path="unused", space_sdk="static"),
           static_space(f"{hub.username}/warm-up"))  # the worker's one whoami
    counts = hub.request_counts()
    first = p.push(spec, static_space(repo_id))
    assert first.error is None and first.committed
    assert delta(hub.request_counts(), counts) == {"repo-info": 1, "create-repo": 1, "validate-yaml": 1,
                                                    "preupload": 1, "commit": 1}
    assert set(remote_tree(api, repo_id)) == {".gitattributes", "README.md", "index.html"}
    assert hub.read_file(repo_id, "README.md") == static_space(repo_id)[0].content  # ours, not the Hub's first one

    counts = hub.request_counts()
    again = p.push(spec, static_space(repo_id))
    assert again.error is None and not again.committed
    assert delta(hub.request_counts(), counts) == {"repo-info": 1, "space-secrets": 1, "space-variables": 1}


def test_spaces_pushed_at_once_upload_a_shared_model_once(hub, api):
    """Ten Spaces sharing one LFS object, pushed by ten threads: one upload and one verify, not ten."""
    from concurrent.futures import ThreadPoolExecutor

    model = bytes(range(256)) * 8192  # 2 MiB, binary: LFS
    p = pusher(hub)
    specs = [SpaceSpec(repo_id=f"{hub.username}/shared-{i}", app_path="unused", space_sdk="static")
             for i in range(10)]
    counts = hub.request_counts()
    with ThreadPoolExecutor(10) as pool:
        results = list(pool.map(
            lambda spec: p.push(spec, [*static_space(spec.repo_id), content_file(spec.repo_id, "model.bin", model)]),
            specs))
    assert [r.error for r in results] == [None] * 10 and all(r.committed for r in results)
    changed = delta(hub.request_counts(), counts)
    assert (changed.get("lfs-upload"), changed.get("lfs-verify")) == (1, 1), changed
    for spec in specs:
        stored = remote_tree(api, spec.repo_id)["model.bin"]
        assert stored.sha256 == hash_bytes(model).sha256 and stored.size == len(model)


def test_a_hub_without_xet_storage_fails_once_with_the_setting_that_fixes_it(hub, monkeypatch):
    """With hf_xet installed and Xet not disabled, huggingface_hub uploads large files through Xet, which the local
    Hub (classic LFS) answers with 404: say so and how to fix it, at once, instead of retrying a network error."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", False)  # as a user's shell without the setting
    repo_id = f"{hub.username}/xet-less"
    counts = hub.request_counts()
    result = pusher(hub).push(SpaceSpec(repo_id=repo_id, app_path="unused", space_sdk="static"),
                              [*static_space(repo_id), content_file(repo_id, "model.bin", bytes(range(256)) * 4096)])
    assert not result.pushed and "has no Xet storage" in result.error and "HF_HUB_DISABLE_XET=1" in result.error
    assert hub.endpoint in result.error and "attempts" not in result.error
    assert delta(hub.request_counts(), counts).get("commit") is None  # nothing committed
