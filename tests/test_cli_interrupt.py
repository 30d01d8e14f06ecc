"""The CLI stopped by a signal, ``--report`` checked up front, and output a user can read: real subprocesses of
``beam-pusher`` against the local Hub over HTTP (with latency added, so a deploy is still under way when stopped).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap

import pytest

from beam_pusher.testing.pytest_plugin import LOCAL_HUB_TOKEN_ENV as TOKEN_ENV

SPACES = 10
STATES = {"committed", "unchanged", "failed", "not attempted"}
UNKNOWN = "state unknown: the run was stopped before its result came back"


def cli_env(hub, **extra: str) -> dict[str, str]:
    """The environment of a user's shell: no test-wide switches (progress bars on), the token by reference."""
    env = {k: v for k, v in os.environ.items() if k not in ("HF_TOKEN", "HF_HUB_DISABLE_PROGRESS_BARS")}
    return {**env, "HF_HUB_DISABLE_XET": "1", "HF_HUB_DISABLE_TELEMETRY": "1", TOKEN_ENV: hub.token, **extra}


def run_cli(hub, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "beam_pusher", *args], capture_output=True, text=True,
                          env=cli_env(hub), timeout=timeout)


def hub_args(hub) -> list[str]:
    return ["--endpoint", hub.endpoint, "--token-env", TOKEN_ENV]


def write_template(root, version: str) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "index.html").write_text(f"<h1>$TITLE {version}</h1>\n")
    (root / "weights.bin").write_bytes(b"\x00" + version.encode() * 2000)  # binary: stored with LFS
    (root / f"only-in-{version}.txt").write_text(f"{version}\n")  # so a new tree also adds and deletes a file


def ten_spaces(tmp_path, user: str) -> str:
    spaces = "\n".join(f"  - {{repo_id: {user}/space-{i}, placeholders: {{TITLE: S{i}}}}}" for i in range(SPACES))
    path = tmp_path / "spaces.yaml"
    path.write_text(f"defaults: {{space_sdk: static, app_path: app}}\nspaces:\n{spaces}\n")
    return str(path)


def trees(hub, user: str) -> dict[str, dict[str, bytes]]:
    """Every Space's files and their contents, as the Hub holds them now."""
    out = {}
    for i in range(SPACES):
        repo_id = f"{user}/space-{i}"
        files = hub.list_files(repo_id) if hub.repo_exists(repo_id) else {}
        out[repo_id] = {path: hub.read_file(repo_id, path) for path in files}
    return out


def deploy_and_signal(hub, args: list[str], signals: list[signal.Signals], after: str) -> tuple[int, str, str]:
    """Starts a deploy, sends ``signals`` once a line of its output starts with ``after``; returns status, out, err."""
    proc = subprocess.Popen([sys.executable, "-m", "beam_pusher", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=cli_env(hub))
    try:
        seen = []
        for line in iter(proc.stdout.readline, ""):
            seen.append(line)
            if line.startswith(after):
                for sig in signals:
                    proc.send_signal(sig)
                break
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    return proc.returncode, "".join(seen) + out, err


def report_states(path) -> dict[str, dict]:
    return {r["repo_id"]: r for r in json.loads(path.read_text())}


# -- item 1: SIGINT / SIGTERM ---------------------------------------------------------------------------------------


@pytest.mark.local_hub(latency=0.1)
@pytest.mark.parametrize("signals", [[signal.SIGINT], [signal.SIGTERM], [signal.SIGINT, signal.SIGINT]],
                         ids=["SIGINT", "SIGTERM", "SIGINT-twice"])
def test_a_signal_mid_deploy_stops_cleanly_with_every_space_reported(hub, tmp_path, signals):
    config = ten_spaces(tmp_path, hub.username)
    write_template(tmp_path / "app", "v1")
    assert run_cli(hub, "deploy", config, *hub_args(hub)).returncode == 0
    old = trees(hub, hub.username)
    write_template(tmp_path / "app", "v2")
    hub.faults.fail_next_commits(4, status=503)  # some Spaces back off and retry: not all commits are sent at once
    report = tmp_path / "report.json"

    status, out, err = deploy_and_signal(hub, ["deploy", config, *hub_args(hub), "--report", str(report)], signals,
                                         after="✓")
    stopped = trees(hub, hub.username)
    heads = {repo_id: hub.head(repo_id) for repo_id in stopped}

    assert status == 130, out + err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert f"{signals[0].name}: starting no new pushes" in err
    states = report_states(report)
    assert sorted(states) == sorted(stopped)  # all ten, each with a state
    assert {s["outcome"] for s in states.values()} <= STATES
    assert re.search(r"^Space +Result +Commit", out, re.M) and f"{SPACES} Spaces: " in out  # table and summary
    assert list(tmp_path.glob("*.tmp-*")) == []

    # Converge: the rerun commits what the stopped run did not; then nothing is left to commit.
    assert run_cli(hub, "deploy", config, *hub_args(hub)).returncode == 0
    new = trees(hub, hub.username)
    plan = run_cli(hub, "plan", config, *hub_args(hub))
    assert plan.returncode == 0 and f"{SPACES} Spaces planned: 0 would commit, {SPACES} up to date" in plan.stdout

    for repo_id, state in states.items():
        assert old[repo_id] != new[repo_id]
        assert stopped[repo_id] in (old[repo_id], new[repo_id]), repo_id  # one commit, all or nothing
        if state["outcome"] == "committed":
            assert stopped[repo_id] == new[repo_id] and state["commit_id"] == heads[repo_id]
        elif state["outcome"] == "not attempted":
            assert state["skipped"] == "interrupted" and stopped[repo_id] == old[repo_id]
        else:  # given up on (second signal): what it holds is unknown, and the report says so
            assert state["outcome"] == "failed" and UNKNOWN in state["error"], state


@pytest.mark.local_hub(latency=0.1)
def test_a_signal_before_any_push_leaves_every_space_untouched(hub, tmp_path):
    config = ten_spaces(tmp_path, hub.username)
    write_template(tmp_path / "app", "v1")
    report = tmp_path / "report.json"
    status, out, err = deploy_and_signal(hub, ["deploy", config, *hub_args(hub), "--report", str(report)],
                                         [signal.SIGTERM], after="Deploying")
    assert status == 130, out + err
    states = report_states(report)
    assert len(states) == SPACES and {s["outcome"] for s in states.values()} == {"not attempted"}
    assert f"{SPACES} Spaces: 0 committed, 0 unchanged, 0 failed, {SPACES} not attempted" in out
    assert f"stopped by SIGTERM; {SPACES} of {SPACES} Spaces not done: deploy again to finish them." in err
    assert not any(hub.repo_exists(repo_id) for repo_id in states)


# -- item 2: --report checked before anything is written ----------------------------------------------------------


@pytest.mark.parametrize("where", ["directory", "missing folder", "under a file"])
def test_a_report_path_that_cannot_be_written_exits_2_before_any_push(hub, tmp_path, where):
    config = ten_spaces(tmp_path, hub.username)
    write_template(tmp_path / "app", "v1")
    (tmp_path / "a-file").write_text("x\n")
    path = {"directory": tmp_path, "missing folder": tmp_path / "nope" / "r.json",
            "under a file": tmp_path / "a-file" / "r.json"}[where]
    done = run_cli(hub, "deploy", config, *hub_args(hub), "--only", "space-0", "--report", str(path))
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"beam-pusher: error: --report {path}: the path " in done.stderr and "give a file in a folder" in done.stderr
    assert not hub.repo_exists(f"{hub.username}/space-0")
    assert [p.name for p in tmp_path.rglob("*.tmp-*")] == []


# -- item 8: output a user can read ---------------------------------------------------------------------------------


def test_output_off_a_terminal_has_no_progress_bars_or_library_warnings(hub, tmp_path):
    config = ten_spaces(tmp_path, hub.username)
    write_template(tmp_path / "app", "v1")
    done = run_cli(hub, "deploy", config, *hub_args(hub), "--only", "space-[01]")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr == ""  # no huggingface_hub bars, no Beam or library warnings
    assert "\r" not in done.stdout and "\x1b" not in done.stdout
    assert re.search(r"2 Spaces: 2 committed, .* · \d+ files uploaded \(.*\) · \d+\.\d s$", done.stdout.strip())

    (tmp_path / "app" / "only-in-v1.txt").write_text("changed\n")
    done = run_cli(hub, "deploy", config, *hub_args(hub), "--only", "space-0")
    assert done.returncode == 0 and done.stderr == ""
    assert " · 1 file uploaded (" in done.stdout


def test_apitools_noise_is_dropped_unless_vv(hub, tmp_path):
    """Beam logs ``apitools not found`` on the root logger on some installs; here it is logged mid-run the same way."""
    config = ten_spaces(tmp_path, hub.username)
    write_template(tmp_path / "app", "v1")
    script = textwrap.dedent("""
        import logging, sys, threading
        from beam_pusher import cli
        threading.Timer(0.5, logging.warning, ["apitools not found, skipping the Dataflow client"]).start()
        sys.exit(cli.main(sys.argv[1:]))
        """)
    args = ["deploy", config, *hub_args(hub), "--only", "space-0"]
    quiet = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, env=cli_env(hub),
                           timeout=180)
    assert quiet.returncode == 0 and "apitools" not in quiet.stderr
    loud = subprocess.run([sys.executable, "-c", script, "-vv", *args], capture_output=True, text=True,
                          env=cli_env(hub), timeout=180)
    assert loud.returncode == 0 and "WARNING root: apitools not found" in loud.stderr


# -- item 9: -v before the command, and where to put -vv ----------------------------------------------------------


def test_verbose_before_the_command_logs_ours_without_library_screens(hub, tmp_path):
    config = ten_spaces(tmp_path, hub.username)
    write_template(tmp_path / "app", "v1")
    done = run_cli(hub, "-v", "deploy", config, *hub_args(hub), "--only", "space-0")
    assert done.returncode == 0, done.stderr
    assert f"INFO beam_pusher.commit: {hub.username}/space-0: committed" in done.stderr
    assert "apache_beam" not in done.stderr and "httpx" not in done.stderr  # no typehint screens, no request lines


def test_a_failure_says_how_to_rerun_it_with_vv(hub, tmp_path):
    config = ten_spaces(tmp_path, hub.username)
    write_template(tmp_path / "app", "v1")
    (tmp_path / "not-a-folder").write_text("x\n")
    args = ["deploy", config, "--only", "space-0", *hub_args(hub), "--runner", "BundleBasedDirectRunner",
            "--temp_location", str(tmp_path / "not-a-folder")]
    done = run_cli(hub, "-v", *args)  # results are written under --temp_location on this runner: it fails
    assert done.returncode == 1, done.stdout + done.stderr
    assert "beam-pusher: the pipeline failed: " in done.stderr
    assert f"for details, run it again with -vv: beam-pusher -vv deploy {config} --only space-0" in done.stderr
