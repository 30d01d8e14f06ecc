"""The CLI end to end: main(argv) and real subprocesses against the local Hub server, over HTTP.

Deploys run real Beam pipelines (DirectRunner, in this process or in the subprocess); the Hub is the local Hub with
the real huggingface_hub client. The token only ever travels as a reference (an environment variable's name).
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request

import pytest
from huggingface_hub import CommitOperationAdd, CommitOperationDelete

from beam_pusher import PushResult, cli, report
from beam_pusher.demo import run_demo
from beam_pusher.testing import free_port
from beam_pusher.testing.pytest_plugin import LOCAL_HUB_TOKEN_ENV as TOKEN_ENV

BINARY = b"\x00\x01weights\x00\xff" * 64  # a NUL byte: the Hub stores it with LFS


def write_app(root, files: dict[str, str | bytes]) -> str:
    for path, content in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content if isinstance(content, bytes) else content.encode())
    return str(root)


def write_config(tmp_path, spaces: str, name: str = "spaces.yaml") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(spaces).lstrip(), encoding="utf-8")
    return str(path)


def two_space_config(tmp_path, user: str) -> str:
    write_app(tmp_path / "app", {"index.html": "<h1>$TITLE</h1>\n", "logo.bin": BINARY})
    return write_config(tmp_path, f"""
        defaults:
          space_sdk: static
          app_path: app
        spaces:
          - repo_id: {user}/alpha
            placeholders: {{TITLE: Alpha}}
          - repo_id: {user}/beta
            placeholders: {{TITLE: Beta}}
        """)


def hub_args(hub) -> list[str]:
    return ["--endpoint", hub.endpoint, "--token-env", TOKEN_ENV]


def run_cli(*args: str, env_extra: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key != "HF_TOKEN"}  # tokens only when a test says so
    env.update({"HF_HUB_DISABLE_XET": "1", "HF_HUB_DISABLE_TELEMETRY": "1", **(env_extra or {})})
    return subprocess.run([sys.executable, "-m", "beam_pusher", *args], capture_output=True, text=True, env=env,
                          timeout=timeout)


# -- help and usage ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command", [[], ["deploy"], ["plan"], ["validate"], ["push"], ["status"], ["rollback"], ["merge"], ["hub"],
                ["hub", "serve"], ["demo"]],
)
def test_help_of_every_command_shows_an_example(command, capsys):
    assert cli.main([*command, "--help"]) == 0
    out = capsys.readouterr().out
    assert "example" in out
    assert "beam-pusher " + " ".join(command) in out  # the example uses the command itself


def test_bad_usage_exits_2(capsys):
    assert cli.main(["deploy"]) == 2  # CONFIG missing
    assert cli.main(["validate", "x.yaml", "--unknown"]) == 2
    assert "unknown arguments --unknown" in capsys.readouterr().err


# -- validate ------------------------------------------------------------------------------------------------------


def test_validate_lists_every_problem_with_its_line(tmp_path, capsys):
    config = write_config(tmp_path, """
        defaults:
          space_sdk: gradio
        spaces:
          - repo_id: user/one
            app_path: apps.gradio.img_classifier
            privte: true
          - repo_id: not a repo id
            app_path: apps.gradio.img_classifier
          - repo_id: user/three
            app_path: apps.gradio.img_classifier
            space_sdk: flask
        """)
    assert cli.main(["validate", config]) == 2
    err = capsys.readouterr().err
    assert "3 problems" in err
    assert f"{config}:6: spaces[0].privte: unknown key; did you mean 'private'?" in err
    assert f"{config}:7: spaces[1].repo_id:" in err
    assert f"{config}:11: spaces[2].space_sdk:" in err and "'flask'" in err


def test_validate_good_config_lists_the_spaces(tmp_path, capsys):
    config = two_space_config(tmp_path, "user")
    assert cli.main(["validate", config]) == 0
    out = capsys.readouterr().out
    assert "valid, 2 Spaces" in out and "user/alpha" in out and "user/beta" in out


def test_validate_in_a_subprocess_reports_problems_on_stderr_with_exit_2(tmp_path):
    config = write_config(tmp_path, """
        spaces:
          - repo_id: user/one
            app_path: apps.gradio.img_classifier
            secrets: {API_KEY: env:CLI_TEST_UNSET_VARIABLE}
          - repo_id: user/one
            app_path: apps.gradio.img_classifier
        """)
    done = run_cli("validate", config)
    assert done.returncode == 2, done.stderr
    assert f"{config}:4: spaces[0].secrets.API_KEY:" in done.stderr and "CLI_TEST_UNSET_VARIABLE" in done.stderr
    assert f"{config}:5: spaces[1].repo_id: 'user/one' is listed twice (lines 2 and 5)" in done.stderr
    assert run_cli("validate", config, "--skip-secrets").returncode == 2  # the duplicate is still a problem


def test_a_config_with_a_nul_byte_exits_2_with_file_and_line(tmp_path):
    config = tmp_path / "nul.yaml"
    config.write_bytes(b"spaces:\n  - repo_id: user/one\x00\n    app_path: apps.gradio.img_classifier\n")
    for args in (["validate"], ["deploy", "--endpoint", "http://127.0.0.1:9"]):
        done = run_cli(args[0], str(config), *args[1:])
        assert done.returncode == 2, done.stderr
        assert f"{config}:2: yaml: the character #x0000 (a NUL byte)" in done.stderr
        assert "ReaderError" not in done.stderr and "Traceback" not in done.stderr


# -- deploy, plan, push --------------------------------------------------------------------------------------------


def test_deploy_prints_lines_and_table_and_writes_the_report(hub, tmp_path, capsys):
    config = two_space_config(tmp_path, hub.username)
    report_path = tmp_path / "report.json"
    args = ["deploy", config, "--endpoint", hub.endpoint, "--token-env", TOKEN_ENV, "--report", str(report_path)]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert "with FnApiRunner (in_memory, 1 worker)" in out  # the local default
    for name in ("alpha", "beta"):
        repo_id = f"{hub.username}/{name}"
        head = hub.head(repo_id)
        assert f"✓ {repo_id}  committed {head[:7]}" in out
        assert f"{hub.endpoint}/spaces/{repo_id}" in out
    assert "2 Spaces: 2 committed, 0 unchanged, 0 failed" in out
    assert hub.token not in out

    data = json.loads(report_path.read_text())
    results = [PushResult.from_dict(item) for item in data]
    assert [r.repo_id for r in results] == [f"{hub.username}/alpha", f"{hub.username}/beta"]
    for r in results:
        assert r.pushed and r.committed and r.error is None
        assert r.commit_id == hub.head(r.repo_id)
        assert r.files_added == 3 and r.files_updated == 0 and r.bytes_uploaded > len(BINARY)  # README.md too
    assert hub.read_file(f"{hub.username}/beta", "index.html") == b"<h1>Beta</h1>\n"


def test_plan_lists_changes_and_writes_nothing(hub, tmp_path, capsys):
    config = two_space_config(tmp_path, hub.username)
    assert cli.main(["deploy", config, *hub_args(hub), "--only", "alpha"]) == 0
    capsys.readouterr()
    counts = {"alpha": hub.commit_count(f"{hub.username}/alpha")}
    (tmp_path / "app" / "index.html").write_text("<h2>$TITLE</h2>\n")
    (tmp_path / "app" / "logo.bin").unlink()
    (tmp_path / "app" / "extra.txt").write_text("new\n")

    assert cli.main(["plan", config, *hub_args(hub), "--report", str(tmp_path / "plan.json")]) == 0
    out = capsys.readouterr().out
    assert f"· {hub.username}/alpha  would commit +1 ~1 -1" in out
    assert "    + extra.txt" in out and "    ~ index.html" in out and "    - logo.bin" in out
    assert f"· {hub.username}/beta  would commit +3 ~0 -0 (new Space" in out
    assert "nothing was written" in out
    assert hub.commit_count(f"{hub.username}/alpha") == counts["alpha"]
    assert not hub.repo_exists(f"{hub.username}/beta")
    planned = {r["repo_id"]: r for r in json.loads((tmp_path / "plan.json").read_text())}
    assert planned[f"{hub.username}/alpha"]["dry_run"] is True
    assert {c["path"] for c in planned[f"{hub.username}/alpha"]["planned"]} == {"extra.txt", "index.html", "logo.bin"}


def test_plan_and_deploy_count_a_new_spaces_files_the_same_way(hub, tmp_path, capsys):
    """The Hub creates a Space with its own README.md and .gitattributes; the deploy still counts from nothing."""
    write_app(tmp_path / "app", {"index.html": "<p>hi</p>\n", "logo.bin": BINARY, ".gitattributes": "*.bin lfs\n"})
    config = write_config(tmp_path, f"""
        spaces:
          - {{repo_id: {hub.username}/fresh, space_sdk: static, app_path: app}}
        """)
    plan, deploy = tmp_path / "plan.json", tmp_path / "deploy.json"
    assert cli.main(["plan", config, *hub_args(hub), "--report", str(plan)]) == 0
    assert f"{hub.username}/fresh  would commit +4 ~0 -0" in capsys.readouterr().out
    assert cli.main(["deploy", config, *hub_args(hub), "--report", str(deploy)]) == 0
    assert f"committed {hub.head(f'{hub.username}/fresh')[:7]}  +4 ~0 -0" in capsys.readouterr().out
    counts = ("files_added", "files_updated", "files_deleted", "files_unchanged")
    planned, done = (json.loads(path.read_text())[0] for path in (plan, deploy))
    assert [planned[k] for k in counts] == [done[k] for k in counts] == [4, 0, 0, 0]
    assert sorted(hub.list_files(f"{hub.username}/fresh")) == [".gitattributes", "README.md", "index.html",
                                                                 "logo.bin"]


def test_templates_and_models_on_the_hub_are_read_through_hf_urls(hub, api, tmp_path):
    """hf:// sources go through huggingface_hub's HfFileSystem, which finds the Hub through HF_ENDPOINT/HF_TOKEN."""
    from huggingface_hub import CommitOperationAdd

    source = f"{hub.username}/space-sources"
    api.create_repo(source, private=True)
    sources = {"app/index.html": b"<p>$MODEL_VERSION</p>\n", "app/static/logo.bin": BINARY,
               "model/weights.bin": BINARY * 3}
    api.create_commit(source, [CommitOperationAdd(p, data) for p, data in sources.items()], commit_message="sources")
    config = write_config(tmp_path, f"""
        spaces:
          - repo_id: {hub.username}/from-hf
            space_sdk: static
            app_path: hf://{source}/app
            model_path: hf://{source}/model
            placeholders: {{MODEL_VERSION: v3}}
        """)
    repo_id = f"{hub.username}/from-hf"
    env = {TOKEN_ENV: hub.token, "HF_ENDPOINT": hub.endpoint}
    without_token = run_cli("deploy", config, *hub_args(hub), env_extra=env)
    assert without_token.returncode == 1  # the private source answers 404 without a token
    assert f"'hf://{source}/app' does not exist" in without_token.stdout and "HF_TOKEN" in without_token.stdout
    assert not hub.repo_exists(repo_id)

    done = run_cli("deploy", config, *hub_args(hub), env_extra={**env, "HF_TOKEN": hub.token})
    assert done.returncode == 0, done.stdout + done.stderr
    assert hub.read_file(repo_id, "index.html") == b"<p>v3</p>\n"
    assert hub.read_file(repo_id, "static/logo.bin") == BINARY
    assert hub.read_file(repo_id, "model/weights.bin") == BINARY * 3
    assert hub.token not in done.stdout + done.stderr


def test_one_bad_space_fails_alone_and_the_exit_status_says_so(hub, tmp_path):
    """A subprocess deploy where one Space's namespace is not writable: the others are pushed, exit status 1."""
    write_app(tmp_path / "app", {"index.html": "<p>ok</p>\n"})
    config = write_config(tmp_path, f"""
        defaults: {{space_sdk: static, app_path: app}}
        spaces:
          - repo_id: {hub.username}/first
          - repo_id: somebody-else/stolen
          - repo_id: {hub.username}/third
        """)
    report_path = tmp_path / "report.json"
    done = run_cli("deploy", config, *hub_args(hub), "--report", str(report_path),
                   env_extra={TOKEN_ENV: hub.token})
    assert done.returncode == 1, done.stdout + done.stderr
    for name in ("first", "third"):
        assert hub.commit_count(f"{hub.username}/{name}") >= 1
        assert f"{hub.username}/{name}  committed" in done.stdout
    assert not hub.repo_exists("somebody-else/stolen")
    table = done.stdout[done.stdout.index("Space  "):]
    row = next(line for line in table.splitlines() if line.startswith("somebody-else/stolen"))
    assert " failed " in row
    reason = table.splitlines()[table.splitlines().index(row) + 1]
    assert "403" in reason and "write" in reason
    assert "3 Spaces: 2 committed, 0 unchanged, 1 failed" in done.stdout
    assert hub.token not in done.stdout + done.stderr
    failed = [r for r in json.loads(report_path.read_text()) if r["error"]]
    assert [r["repo_id"] for r in failed] == ["somebody-else/stolen"]


def test_unknown_beam_flags_reach_pipeline_options(hub, tmp_path, capsys, caplog):
    config = two_space_config(tmp_path, hub.username)
    caplog.set_level("INFO", logger="beam_pusher.cli")
    args = ["deploy", config, "--only", "alpha", *hub_args(hub), "--direct_running_mode=multi_threading",
            "--direct_num_workers=3", "--job_name", "xyz"]
    assert cli.main(args) == 0
    assert "with FnApiRunner (multi_threading, 3 workers, job xyz)" in capsys.readouterr().out
    logged = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("Beam pipeline options"))
    assert "'direct_num_workers': 3" in logged and "'job_name': 'xyz'" in logged
    assert "'direct_running_mode': 'multi_threading'" in logged  # a given flag wins over the local default


def test_bad_beam_flags_exit_2_before_anything_is_pushed(hub, tmp_path, capsys):
    config = two_space_config(tmp_path, hub.username)
    assert cli.main(["deploy", config, *hub_args(hub), "--runner", "NoSuchRunner"]) == 2
    assert "Unexpected pipeline runner: NoSuchRunner" in capsys.readouterr().err  # Beam's own message
    assert cli.main(["deploy", config, *hub_args(hub), "--onyl", "alpha"]) == 2
    err = capsys.readouterr().err
    assert "unknown option --onyl" in err and "Did you mean --only?" in err
    assert cli.main(["deploy", config, *hub_args(hub), "--direct_num_workers=many"]) == 2
    err = capsys.readouterr().err
    assert "Beam rejected the pipeline flags: argument --direct_num_workers: invalid int value" in err
    assert not hub.repo_exists(f"{hub.username}/alpha") and not hub.repo_exists(f"{hub.username}/beta")


def test_token_env_must_name_a_set_variable(hub, tmp_path, capsys):
    config = two_space_config(tmp_path, hub.username)
    assert cli.main(["deploy", config, "--endpoint", hub.endpoint, "--token-env", "CLI_TEST_NOT_SET"]) == 2
    assert "CLI_TEST_NOT_SET is not set" in capsys.readouterr().err
    assert cli.main(["deploy", config, "--endpoint", hub.endpoint, "--token-env", hub.token]) == 2
    err = capsys.readouterr().err
    assert "never the token itself" in err and hub.token not in err


def test_push_one_space_from_component_style_flags(hub, tmp_path, capsys):
    app = write_app(tmp_path / "app", {"index.html": "<p>$GREETING from $MODEL_REPO_ID@$MODEL_VERSION</p>\n"})
    args = ["push", "--repo-name", "pushed", "--app-path", app, "--space-sdk", "static", "--option", "GREETING=hi",
            "--model-hub-repo-id", "user/model", "--model-hub-repo-branch", "v2", *hub_args(hub)]
    assert cli.main(args) == 0  # no --username: the token's user
    assert f"{hub.username}/pushed  committed" in capsys.readouterr().out
    assert hub.read_file(f"{hub.username}/pushed", "index.html") == b"<p>hi from user/model@v2</p>\n"
    assert cli.main([*args, "--option", "NOEQUALS"]) == 2


def test_push_accepts_the_proposals_app_path_form(hub, capsys):
    from beam_pusher import sources

    args = ["push", "--repo-name", "proposal", "--app-path", "apps/gradio.img_classifier", *hub_args(hub)]
    assert cli.main(args) == 0, capsys.readouterr()
    builtin = os.path.join(sources.BUILTIN_APPS_URL, "gradio", "img_classifier", "app.py")
    with open(builtin, "rb") as f:
        assert hub.read_file(f"{hub.username}/proposal", "app.py") == f.read()


def test_status_shows_stages_and_fails_for_a_missing_space(hub, tmp_path, capsys):
    config = two_space_config(tmp_path, hub.username)
    assert cli.main(["deploy", config, "--only", "alpha", *hub_args(hub)]) == 0
    capsys.readouterr()
    assert cli.main(["status", config, *hub_args(hub)]) == 1
    out = capsys.readouterr().out
    alpha = next(line for line in out.splitlines() if line.startswith(f"{hub.username}/alpha"))
    beta = next(line for line in out.splitlines() if line.startswith(f"{hub.username}/beta"))
    assert "RUNNING" in alpha and "NOT FOUND" in beta
    assert cli.main(["status", config, "--only", "alpha", *hub_args(hub)]) == 0


def test_status_counts_every_stage_but_running_as_not_running(tmp_path, capsys, monkeypatch):
    from huggingface_hub import HfApi

    from beam_pusher.localhub import LocalHub

    with LocalHub(tmp_path / "hub", runtime_delay=1.5) as hub:
        monkeypatch.setenv(TOKEN_ENV, hub.token)
        config = two_space_config(tmp_path, hub.username)
        assert cli.main(["deploy", config, *hub_args(hub)]) == 0
        api = HfApi(endpoint=hub.endpoint, token=hub.token)
        while api.get_space_runtime(f"{hub.username}/alpha").stage != "RUNNING":
            time.sleep(0.1)  # bounded by the runtime delay
        api.restart_space(f"{hub.username}/beta")  # BUILDING again for 1.5 s
        capsys.readouterr()
        assert cli.main(["status", config, *hub_args(hub)]) == 1
    out = capsys.readouterr().out
    assert f"2 Spaces, 1 not running: {hub.username}/beta (BUILDING)" in out


def test_status_with_a_rejected_token_says_so_in_one_line(hub, tmp_path, capsys, monkeypatch):
    config = two_space_config(tmp_path, hub.username)
    monkeypatch.setenv("CLI_TEST_WRONG_TOKEN", "hf_wrong_token_value")
    assert cli.main(["status", config, "--endpoint", hub.endpoint, "--token-env", "CLI_TEST_WRONG_TOKEN"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    (line,) = captured.err.splitlines()
    assert f"the Hub at {hub.endpoint} rejected the token (HTTP 401)" in line and "--token-env" in line
    assert "HfHubHTTPError" not in line and "hf_wrong_token_value" not in line


def test_no_token_at_all_is_explained_before_anything_is_written(hub, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    # conftest points HF_HOME at a fresh folder: no cached login either
    config = two_space_config(tmp_path, hub.username)
    wanted = "no Hub token: set HF_TOKEN, run `hf auth login`, or give --token-env"
    for args in (["deploy", config], ["push", "--repo-name", "alpha", "--username", hub.username, "--app-path",
                                      str(tmp_path / "app"), "--space-sdk", "static"],
                 ["rollback", f"{hub.username}/alpha", "--to", "0" * 40]):
        assert cli.main([*args, "--endpoint", hub.endpoint]) == 2, args
        err = capsys.readouterr().err
        assert wanted in err and "401" not in err, err
    assert not hub.repo_exists(f"{hub.username}/alpha")


def test_push_with_a_missing_app_path_exits_2_like_deploy(hub, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["push", "--repo-name", "nope", "--app-path", "./nope", *hub_args(hub)]
    assert cli.main(args) == 2
    assert "app_path='./nope' was not found" in capsys.readouterr().err
    assert not hub.repo_exists(f"{hub.username}/nope")


def test_an_unreachable_endpoint_fails_the_run_once_and_at_once(hub, tmp_path, monkeypatch):
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there: connecting is refused
    config = two_space_config(tmp_path, hub.username)
    env = {TOKEN_ENV: hub.token}
    for args in (["deploy", config], ["plan", config], ["status", config],
                 ["rollback", f"{hub.username}/alpha", "--to", "abcdef1"]):
        done = run_cli(*args, "--endpoint", endpoint, "--token-env", TOKEN_ENV, env_extra=env)
        assert done.returncode == 1, done.stdout + done.stderr
        output = done.stdout + done.stderr
        assert output.count(f"cannot reach the Hub at {endpoint}") == 1, output
        assert "connection refused" in output and "attempts" not in output and "retrying" not in output
        assert f"{hub.username}/alpha" not in done.stdout  # no line per Space


# -- rollback ------------------------------------------------------------------------------------------------------


def test_rollback_restores_the_earlier_tree_in_one_new_commit(hub, api):
    """Through a subprocess: v1 -> v2 (changed, deleted, added, LFS file changed) -> rollback to v1."""
    repo_id = f"{hub.username}/rolled"
    api.create_repo(repo_id, repo_type="space", space_sdk="static")
    v1_files = {"index.html": b"<p>v1</p>\n", "model/weights.bin": BINARY, "gone-in-v2.txt": b"old\n"}
    v1 = api.create_commit(repo_id, [CommitOperationAdd(p, c) for p, c in v1_files.items()], commit_message="v1",
                           repo_type="space").oid
    v1_tree = {path: hub.read_file(repo_id, path) for path in hub.list_files(repo_id)}
    api.create_commit(repo_id, [
        CommitOperationAdd("index.html", b"<p>v2</p>\n"), CommitOperationAdd("model/weights.bin", BINARY[::-1]),
        CommitOperationAdd("new-in-v2.txt", b"new\n"), CommitOperationDelete("gone-in-v2.txt"),
    ], commit_message="v2", repo_type="space")
    assert hub.list_files(repo_id)["model/weights.bin"].is_lfs
    count = hub.commit_count(repo_id)

    done = run_cli("rollback", repo_id, "--to", v1, *hub_args(hub), env_extra={TOKEN_ENV: hub.token})
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"rolled back to {v1[:7]}" in done.stdout and "+1 ~2 -1" in done.stdout
    assert hub.commit_count(repo_id) == count + 1
    assert {path: hub.read_file(repo_id, path) for path in hub.list_files(repo_id)} == v1_tree
    assert hub.token not in done.stdout + done.stderr

    # Rolling back to the same files again is a no-op, and a dry run lists nothing to do.
    assert cli.main(["rollback", repo_id, "--to", v1, *hub_args(hub)]) == 0
    assert hub.commit_count(repo_id) == count + 1


def test_rollback_keep_leaves_matching_paths_as_they_are(hub, api, capsys):
    repo_id = f"{hub.username}/rolled-keep"
    api.create_repo(repo_id, repo_type="space", space_sdk="static")
    v1 = api.create_commit(repo_id, [CommitOperationAdd("index.html", b"v1\n")], commit_message="v1",
                           repo_type="space").oid
    api.create_commit(repo_id, [CommitOperationAdd("index.html", b"v2\n"), CommitOperationAdd("data/a.csv", b"a\n"),
                                CommitOperationAdd("data/sub/b.csv", b"b\n")], commit_message="v2",
                      repo_type="space")

    assert cli.main(["rollback", repo_id, "--to", v1, "--keep", "data/*.csv", *hub_args(hub)]) == 0
    assert "+0 ~1 -1" in capsys.readouterr().out  # index.html restored, data/sub/b.csv deleted, data/a.csv kept
    files = hub.list_files(repo_id)
    assert {"data/a.csv", "index.html"} <= set(files) and "data/sub/b.csv" not in files
    assert cli.main(["rollback", repo_id, "--to", v1, "--keep", "!", *hub_args(hub)]) == 2
    assert "keep: '!' is not a .gitignore pattern" in capsys.readouterr().err


def test_rollback_of_an_unknown_commit_is_a_usage_error(hub, api, capsys):
    repo_id = f"{hub.username}/rolled"
    api.create_repo(repo_id, repo_type="space", space_sdk="static")
    assert cli.main(["rollback", repo_id, "--to", "0" * 40, *hub_args(hub)]) == 2
    assert "no commit" in capsys.readouterr().err
    assert cli.main(["rollback", f"{hub.username}/missing", "--to", "0" * 40, *hub_args(hub)]) == 2


def test_rollback_accepts_an_unambiguous_commit_id_prefix(hub, api, capsys):
    repo_id = f"{hub.username}/prefixed"
    api.create_repo(repo_id, repo_type="space", space_sdk="static")
    v1 = api.create_commit(repo_id, [CommitOperationAdd("index.html", b"<p>v1</p>\n")], commit_message="v1",
                           repo_type="space").oid
    api.create_commit(repo_id, [CommitOperationAdd("index.html", b"<p>v2</p>\n")], commit_message="v2",
                      repo_type="space")
    assert cli.main(["rollback", repo_id, "--to", v1[:4].upper(), *hub_args(hub)]) == 0, capsys.readouterr()
    assert f"rolled back to {v1[:7]}" in capsys.readouterr().out
    assert hub.read_file(repo_id, "index.html") == b"<p>v1</p>\n"

    count = hub.commit_count(repo_id)
    assert cli.main(["rollback", repo_id, "--to", v1[:3], *hub_args(hub)]) == 2
    assert "at least 4" in capsys.readouterr().err
    unknown = next(p for p in ("0000", "ffff", "abcd") if not any(
        c.commit_id.startswith(p) for c in api.list_repo_commits(repo_id, repo_type="space")))
    assert cli.main(["rollback", repo_id, "--to", unknown, *hub_args(hub)]) == 2
    assert f"no commit {unknown!r}" in capsys.readouterr().err
    assert hub.commit_count(repo_id) == count


# -- hub serve, demo, report ---------------------------------------------------------------------------------------


def test_hub_serve_prints_the_endpoint_first():
    token = "hf_cli_serve_test_token"
    env = {**os.environ, "HF_HUB_DISABLE_XET": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "beam_pusher", "hub", "serve", "--port", "0", "--token", token],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        endpoint = proc.stdout.readline().strip()
        assert endpoint.startswith("http://127.0.0.1:")
        request = urllib.request.Request(f"{endpoint}/api/whoami-v2", headers={"authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert json.load(response)["name"] == "user"
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0


def test_demo_without_a_source_checkout_exits_2(tmp_path):
    out = io.StringIO()
    assert run_demo(stream=out, config_path=tmp_path / "missing.yaml") == 2
    assert "needs a source checkout" in out.getvalue()


class _Terminal(io.StringIO):
    def __init__(self, encoding: str):
        super().__init__()
        self._encoding = encoding

    @property
    def encoding(self) -> str:
        return self._encoding

    def isatty(self) -> bool:
        return True


def test_report_falls_back_to_ascii_and_draws_progress_on_a_terminal():
    stream = _Terminal("ascii")
    console = report.ConsoleReport(total=2, stream=stream)
    assert console.progress
    console.start()
    console.add(PushResult("user/a", pushed=True, commit_id="a" * 40, committed=True, files_added=1))
    results = console.finish(
        [PushResult("user/a", pushed=True, commit_id="a" * 40, committed=True, files_added=1)], ["user/a", "user/b"]
    )
    text = stream.getvalue()
    text.encode("ascii")  # nothing the terminal cannot show
    assert "ok user/a  committed aaaaaaa  +1 ~0 -0" in text
    assert "[" in text and "1/2 Spaces" in text  # the progress bar after the first result
    assert "x user/b  failed: the pipeline returned no result" in text  # a lost Space counts as failed
    assert [r.repo_id for r in results if r.error] == ["user/b"]


def test_a_deploy_where_every_space_failed_is_not_summed_up_as_a_plan():
    stream = io.StringIO()
    console = report.ConsoleReport(total=1, stream=stream)
    console.finish([PushResult("user/a", pushed=False, error="user/a: boom")], ["user/a"])
    assert "1 Space: 0 committed, 0 unchanged, 1 failed" in stream.getvalue()
    assert "planned" not in stream.getvalue() and "nothing was written" not in stream.getvalue()

    stream = io.StringIO()
    report.ConsoleReport(total=1, stream=stream, dry_run=True).finish(
        [PushResult("user/a", pushed=False, error="user/a: boom")], ["user/a"])
    assert "1 Space planned: 0 would commit, 0 up to date, 1 failed" in stream.getvalue()


def test_validate_and_deploy_show_warnings(hub, tmp_path, capsys):
    write_app(tmp_path / "app", {"app.py": "color = '${COLOR}'\n", "requirements.txt": "gradio\n"})
    config = write_config(tmp_path, f"""
        spaces:
          - repo_id: {hub.username}/warned
            app_path: app
            placeholders: {{UNUSED: x}}
        """)
    assert cli.main(["validate", config]) == 0
    out = capsys.readouterr().out
    assert "1 warning:\n" in out and "spaces[0].app_path" in out and "no gradio version" in out
    assert cli.main(["deploy", config, *hub_args(hub)]) == 0
    out = capsys.readouterr().out
    assert "  warning: no gradio version: README.md sets no sdk_version" in out
    assert "  warning: placeholders: app.py:1: ${COLOR} has no value; $UNUSED (placeholders.UNUSED) is defined" in out
