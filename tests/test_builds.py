"""After the push: a deploy that waits reports each Space's terminal stage, and the log lines of one that fails;
``beam-pusher logs`` prints a Space's logs and ``beam-pusher restart`` restarts a config's Spaces."""

from __future__ import annotations

import io
import json

from beam_pusher.cli import main
from beam_pusher.report import ConsoleReport
from beam_pusher.runner import run_deploy
from beam_pusher.spec import Outcome, SpaceSpec
from beam_pusher.testing import LOCAL_HUB_TOKEN_ENV

_BAD_APP_FILE = "application file 'app.py' (app_file in README.md) is not in the Space"


def _templates(tmp_path):
    good, bad = tmp_path / "good", tmp_path / "bad"
    good.mkdir()
    (good / "index.html").write_text("<p>hi</p>\n")
    bad.mkdir()
    (bad / "ui.py").write_text("import gradio\n")  # two scripts and no app.py: the Space has no app file to run
    (bad / "train.py").write_text("print('training')\n")
    return good, bad


def _deploy_both(local_hub, local_hub_token, tmp_path):
    good, bad = _templates(tmp_path)
    specs = [
        SpaceSpec(repo_id=f"{local_hub.username}/built-good", app_path=str(good), space_sdk="static"),
        SpaceSpec(repo_id=f"{local_hub.username}/built-bad", app_path=str(bad), space_sdk="gradio"),
    ]
    results = run_deploy(specs, endpoint=local_hub.endpoint, token=local_hub_token, wait=True, wait_timeout=60)
    return {r.repo_id.split("/")[1]: r for r in results}


def test_a_deploy_that_waits_reports_running_and_a_config_error_with_its_build_log(
    local_hub, local_hub_token, tmp_path
):
    results = _deploy_both(local_hub, local_hub_token, tmp_path)
    good, bad = results["built-good"], results["built-bad"]
    assert good.error is None and good.runtime_stage == "RUNNING" and good.committed
    assert bad.committed and bad.runtime_stage == "CONFIG_ERROR" and bad.outcome is Outcome.FAILED
    assert "it ended CONFIG_ERROR; the last lines of its build log" in bad.error
    assert f"beam-pusher logs {bad.repo_id} --build" in bad.error
    build_log = local_hub.space_logs(bad.repo_id, build=True)
    assert any(_BAD_APP_FILE in line for line in build_log)
    assert all(f"    | {line}" in bad.error for line in build_log[-10:])

    out = io.StringIO()
    ConsoleReport(total=2, stream=out, endpoint=local_hub.endpoint, progress=False).finish(list(results.values()))
    text = out.getvalue()
    assert "built-good  committed" in text and "RUNNING" in text
    assert "built-bad  failed: the Space was pushed but does not run: it ended CONFIG_ERROR" in text
    assert text.count(_BAD_APP_FILE) >= 2  # under the Space's line and under its row of the table


def test_deploy_wait_writes_the_stage_and_the_log_lines_into_the_report(local_hub, local_hub_token, tmp_path):
    _, bad = _templates(tmp_path)
    config = tmp_path / "spaces.yaml"
    config.write_text(f"spaces:\n  - repo_id: {local_hub.username}/reported\n    app_path: {bad}\n"
                      "    space_sdk: gradio\n")
    report = tmp_path / "report.json"
    status = main(["deploy", str(config), "--wait", "--wait-timeout", "60", "--report", str(report),
                   "--endpoint", local_hub.endpoint, "--token-env", LOCAL_HUB_TOKEN_ENV])
    assert status == 1
    [entry] = json.loads(report.read_text())
    assert entry["outcome"] == "failed" and entry["runtime_stage"] == "CONFIG_ERROR"
    assert _BAD_APP_FILE in entry["error"]


def test_logs_prints_a_spaces_build_and_run_logs(local_hub, local_hub_token, tmp_path, capsys):
    results = _deploy_both(local_hub, local_hub_token, tmp_path)
    capsys.readouterr()
    bad = results["built-bad"].repo_id
    assert main(["logs", bad, "--build", "--endpoint", local_hub.endpoint, "--token-env", LOCAL_HUB_TOKEN_ENV]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed == local_hub.space_logs(bad, build=True)
    assert any(_BAD_APP_FILE in line for line in printed)
    good = results["built-good"].repo_id
    assert main(["logs", good, "--endpoint", local_hub.endpoint, "--token-env", LOCAL_HUB_TOKEN_ENV]) == 0
    assert capsys.readouterr().out.splitlines() == local_hub.space_logs(good)


def test_logs_of_a_space_that_does_not_exist_fails_and_says_so(local_hub, local_hub_token, capsys):
    missing = f"{local_hub.username}/nowhere"
    assert main(["logs", missing, "--endpoint", local_hub.endpoint, "--token-env", LOCAL_HUB_TOKEN_ENV]) == 1
    out = capsys.readouterr().out
    assert missing in out and "cannot read the Space's logs" in out


def test_restart_restarts_the_matched_spaces_only(local_hub, local_hub_token, hub_api, tmp_path, capsys):
    good, _ = _templates(tmp_path)
    names = ["restart-a", "restart-b", "other"]
    for name in names:
        hub_api.create_repo(f"{local_hub.username}/{name}", repo_type="space", space_sdk="static")
        hub_api.upload_folder(folder_path=str(good), repo_id=f"{local_hub.username}/{name}", repo_type="space")
    config = tmp_path / "spaces.yaml"
    config.write_text("spaces:\n" + "".join(f"  - repo_id: {local_hub.username}/{n}\n    app_path: {good}\n"
                                            "    space_sdk: static\n" for n in names))
    factory = "Factory reboot: building from scratch, without cached layers or installed packages"
    capsys.readouterr()
    status = main(["restart", str(config), "--only", "restart-*", "--factory", "--endpoint", local_hub.endpoint,
                   "--token-env", LOCAL_HUB_TOKEN_ENV])
    out = capsys.readouterr().out
    assert status == 0
    assert f"{local_hub.username}/restart-a  factory restarted" in out
    assert f"{local_hub.username}/restart-b  factory restarted" in out
    assert "other" not in out and "2 Spaces: 2 restarted, 0 failed" in out
    rebuilt = {n: factory in local_hub.space_logs(f"{local_hub.username}/{n}", build=True) for n in names}
    assert rebuilt == {"restart-a": True, "restart-b": True, "other": False}
