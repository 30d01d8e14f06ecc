"""One build and start of a Space by the local Spaces runtime: check out, make the environment, start, watch.

``build_and_run`` is what ``spacerun.SpaceRunner`` runs in a thread for each new build of a Space; it writes the
stages and log lines into the ``SpaceRun`` that the HTTP handlers read.
"""

from __future__ import annotations

import functools
import http.server
import logging
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

from beam_pusher.localhub import appcommand, appenv
from beam_pusher.localhub.runtime import SpaceTimeline, build_banner, clock
from beam_pusher.localhub.storage import Repository

if TYPE_CHECKING:
    from beam_pusher.localhub.spacerun import SpaceRun, SpaceRunner

__all__ = ["build_and_run", "check_out"]

logger = logging.getLogger(__name__)

_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def build_and_run(runner: SpaceRunner, run: SpaceRun, repo: Repository, timeline: SpaceTimeline) -> None:
    """Builds the Space's current head and runs its app until ``run`` is stopped or the app exits."""
    assert timeline.plan is not None and timeline.head is not None
    for line in build_banner(timeline):
        run.log("build", line)
    folder = runner.work_dir / repo.repo_id.replace("/", "--")
    if folder.exists():
        shutil.rmtree(folder, ignore_errors=True)  # the previous build's checkout
    files = folder / "app"
    count = check_out(repo, timeline.head, files, runner.state.lfs)
    read = _reader(files)
    try:
        launch, simulated = appcommand.plan_launch(timeline.plan, read)
    except appenv.SpaceEnvError as err:
        return _build_failed(run, str(err).split("\n", 1)[0])
    if launch is None:
        run.simulated = simulated
        run.log("build", f"Simulated: {simulated}")
        return
    run.description = launch.description
    run.log("build", f"--> Checked out {count} files of commit {timeline.head[:7]}; {launch.description}")
    env = _environment(runner, run, launch)
    if env is None or run.cancelled.is_set():
        return
    run.log("build", "--> Build done: the environment is ready")
    run.set_stage("APP_STARTING", over="build")
    _start(runner, run, repo, launch, env, folder)


def check_out(repo: Repository, commit: str, dest: Path, lfs) -> int:  # type: ignore[no-untyped-def]
    """Writes every file of ``commit`` under ``dest`` (LFS files with their content); returns how many."""
    files = repo.snapshot(commit).files
    for path, blob in files.items():
        target = dest / path
        target.parent.mkdir(parents=True, exist_ok=True)
        info = repo.file_info(path, blob)
        if info.lfs_oid:
            with lfs.open(info.lfs_oid) as source, target.open("wb") as out:
                shutil.copyfileobj(source, out, 1024 * 1024)
        else:
            target.write_bytes(repo.read_blob(blob))
    return len(files)


def _reader(folder: Path):  # type: ignore[no-untyped-def]
    def read(path: str) -> bytes | None:
        file = folder / path
        return file.read_bytes() if file.is_file() else None

    return read


def _build_failed(run: SpaceRun, error: str) -> None:
    run.log("build", error if error.startswith("ERROR") else f"ERROR: {error}")
    run.set_stage("BUILD_ERROR", error)


def _environment(runner: SpaceRunner, run: SpaceRun, launch: appcommand.AppLaunch) -> appenv.SpaceEnv | None:
    """The environment of ``launch``'s requirements: a cached one that has them all, else one ``pip`` makes now."""
    if launch.kind == appcommand.STATIC:
        return None if run.cancelled.is_set() else appenv.SpaceEnv(Path(), Path(), (), {}, 0.0)
    run.log("build", f"--> Requirements: {', '.join(launch.requirements)}")
    try:
        env = appenv.find_satisfying_env(launch.requirements, root=runner.env_root)
        if env is not None:
            run.log("build", f"--> Every requirement is installed in the cached environment {env.path.name}: "
                             "pip has nothing to install")
            return env
        run.log("build", "--> RUN pip install -r requirements.txt (a new environment: minutes the first time)")
        return appenv.ensure_space_env([], extra=launch.requirements, root=runner.env_root,
                                       on_output=lambda line: run.log("build", line),
                                       on_process=run.add_process)
    except appenv.SpaceEnvError as err:
        if run.cancelled.is_set():
            return None
        errors = [line for line in err.output.splitlines() if line.startswith("ERROR")]
        _build_failed(run, errors[-1] if errors else str(err).split("\n", 1)[0])
        return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start(runner: SpaceRunner, run: SpaceRun, repo: Repository, launch: appcommand.AppLaunch,
           env: appenv.SpaceEnv, folder: Path) -> None:
    run.log("run", f"===== Application Startup at {clock(time.time())} =====")
    if launch.kind == appcommand.STATIC:
        return _serve_static(run, folder / "app", launch.app_file)
    port = _free_port()
    with repo.lock:
        settings = repo.settings
        variables = {name: item["value"] for name, item in settings.get("variables", {}).items()}
        secrets = {name: item["value"] for name, item in settings.get("secrets", {}).items()}
    home = folder / "home"
    home.mkdir(parents=True, exist_ok=True)
    environ = appcommand.app_environment(env.child_env(), repo_id=repo.repo_id, port=port, home=home,
                                         endpoint=runner.state.endpoint, variables=variables,
                                         secrets=secrets)
    command = appcommand.app_command(launch, env.python, port)
    process = subprocess.Popen(command, cwd=folder / "app", env=environ, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True, errors="replace",
                               start_new_session=True)
    run.add_process(process)
    pump = threading.Thread(target=_pump, args=(run, process), daemon=True, name=f"space-log-{repo.repo_id}")
    pump.start()
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + runner.start_timeout
    while not run.cancelled.is_set():
        if process.poll() is not None:
            pump.join(timeout=5)
            return _crashed(run, process.returncode)
        if _answers(url):
            run.log("run", f"The app answers at {url}")
            run.set_stage("RUNNING", url=url, over="run")
            break
        if time.monotonic() > deadline:
            run.log("run", f"The app did not answer {url} within {runner.start_timeout:.0f} s: stopping it")
            run.stop()
            return run.set_stage("RUNTIME_ERROR", f"The app did not answer HTTP within {runner.start_timeout:.0f} s")
        time.sleep(0.5)
    returncode = process.wait()
    pump.join(timeout=5)
    if not run.cancelled.is_set():
        _crashed(run, returncode)


def _answers(url: str) -> bool:
    try:
        with _NO_PROXY.open(url, timeout=5) as response:
            return response.status < 500
    except urllib.error.HTTPError as err:
        return err.code < 500
    except (urllib.error.URLError, OSError):
        return False


def _pump(run: SpaceRun, process: subprocess.Popen) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        run.log("run", line.rstrip("\n"))


def _crashed(run: SpaceRun, returncode: int) -> None:
    lines = [line.text for line in run.lines("run") if line.text.strip()]
    reason = lines[-1] if len(lines) > 1 else "the app exited"
    run.set_stage("RUNTIME_ERROR", f"Exit code: {returncode}. Reason: {reason}")


class _StaticHandler(http.server.SimpleHTTPRequestHandler):
    run: SpaceRun

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - http.server's signature
        self.run.log("run", f"{self.address_string()} {format % args}")


def _serve_static(run: SpaceRun, folder: Path, app_file: str) -> None:
    handler = type("_Handler", (_StaticHandler,), {"run": run})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(folder)))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True,
                     name=f"space-static-{run.repo_id}").start()
    run.serve_static(server)
    url = f"http://127.0.0.1:{server.server_address[1]}/" + ("" if app_file == "index.html" else app_file)
    run.log("run", f"Serving {app_file} and the Space's other files at {url}")
    run.set_stage("RUNNING", url=url, over="run")
