"""``beam-pusher demo`` (``make demo``): deploy ``configs/demo.yaml`` to an embedded local Hub, deploy it again, run it.

What it shows, from a fresh checkout and without internet beyond the package index:

1. the demo's tiny TensorFlow models are made if missing (``examples/models/make_tiny_model.py``);
2. a local Hub that runs Spaces (``LocalHub(run_spaces=True)``) starts in a temporary folder; the Spaces' app
   environment is made from the built-in apps' requirements (cached in ``~/.cache/beam-pusher``: minutes the first
   time only); the text Space's model repository (``user/tiny-text-classifier``) is pushed, so the Space's
   ``model_hub_repo_id`` points at a real model;
3. the config's Spaces are deployed as one Beam pipeline: a line per Space, then the table with URLs;
4. the same config is deployed again: every Space is unchanged, nothing is uploaded, no commit is made;
5. each Space's app runs: the demo waits until every one is RUNNING (it answers HTTP) and prints its page and app
   URLs; then it keeps serving until Ctrl-C, or stops at once with ``wait=False`` (``--no-wait``, or when ``CI`` is
   set or stdin is not a terminal);
6. the Hub stops with its apps, and every temporary file is removed. The exit status is 0 only if all of that held.

The local Hub speaks classic LFS, not Xet, and huggingface_hub reads ``HF_HUB_DISABLE_XET`` once, at import: the
demo sets it before anything imports huggingface_hub (the CLI imports it lazily for this reason).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from beam_pusher.errors import BeamPusherError
from beam_pusher.spec import PushResult, SpaceSpec

__all__ = ["DEMO_TOKEN_ENV", "TEXT_MODEL_REPO", "run_demo"]

DEMO_TOKEN_ENV = "BEAM_PUSHER_DEMO_TOKEN"  # the pipeline gets env:BEAM_PUSHER_DEMO_TOKEN, never the token itself
TEXT_MODEL_REPO = "tiny-text-classifier"
_SOURCE_ROOT = Path(__file__).resolve().parent.parent
_HUB_SETTINGS = {"HF_HUB_DISABLE_XET": "1", "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
APP_START_TIMEOUT = 600.0  # seconds for every Space to run: three apps importing TensorFlow at once on 2 cores
_BUSY = ("BUILDING", "APP_STARTING")


class DemoError(BeamPusherError):
    """A demo step did not do what the demo promises; the message says which and why."""


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """Sets environment variables for the demo and restores the previous ones afterwards."""
    previous = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _check_hub_client() -> None:
    if "huggingface_hub" not in sys.modules:
        return
    from huggingface_hub import constants

    if not constants.HF_HUB_DISABLE_XET:
        raise DemoError("huggingface_hub was imported before the demo could set HF_HUB_DISABLE_XET=1; run the demo "
                        "in a fresh process (python -m beam_pusher demo).")


def _make_models(models_dir: Path, say) -> tuple[Path, Path]:
    script = models_dir / "make_tiny_model.py"
    image, text = models_dir / "tiny_classifier", models_dir / "tiny_text_classifier"
    if not all((m / "saved_model.pb").is_file() and (m / "labels.txt").is_file() for m in (image, text)):
        say("  making the tiny TensorFlow models (first run only; TensorFlow takes a few seconds to start) ...")
        done = subprocess.run([sys.executable, str(script), "--out-dir", str(models_dir)], capture_output=True,
                              text=True, timeout=300)
        if done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
            raise DemoError(f"{script} failed (exit {done.returncode}); is the tfx extra installed?\n{tail}")
    for model in (image, text):
        size = sum(f.stat().st_size for f in model.rglob("*") if f.is_file())
        say(f"  {model.relative_to(_SOURCE_ROOT)}  ({size / 1000:.0f} kB)")
    return image, text


def _push_model_repo(hub, text_model: Path) -> str:
    from huggingface_hub import HfApi

    repo_id = f"{hub.username}/{TEXT_MODEL_REPO}"
    api = HfApi(endpoint=hub.endpoint, token=hub.token)
    api.create_repo(repo_id, repo_type="model", exist_ok=True)
    info = api.upload_folder(repo_id=repo_id, folder_path=str(text_model), repo_type="model",
                             commit_message="Tiny text classifier for the beam-pusher demo")
    return info.oid


def _check_first(results, hub) -> None:
    failed = [f"{r.repo_id}: {r.error}" for r in results if r.error]
    if failed:
        raise DemoError("the first deploy failed for:\n  " + "\n  ".join(failed))
    missing = [r.repo_id for r in results if not r.committed or not hub.repo_exists(r.repo_id)]
    if missing:
        raise DemoError(f"the first deploy made no commit for {', '.join(missing)}")


def _check_second(results, heads_before: dict[str, str | None], hub) -> None:
    problems = [f"{r.repo_id}: {r.error}" for r in results if r.error]
    for r in results:
        uploaded = r.files_added + r.files_updated + r.files_deleted
        if r.committed or uploaded or r.bytes_uploaded:
            problems.append(f"{r.repo_id}: re-uploaded {uploaded} files ({r.bytes_uploaded} bytes)")
        if hub.head(r.repo_id) != heads_before.get(r.repo_id):
            problems.append(f"{r.repo_id}: a new commit appeared")
    if problems:
        raise DemoError("the second deploy was not a no-op:\n  " + "\n  ".join(problems))


def should_wait(wait: bool | None = None) -> bool:
    """Whether the demo keeps serving until Ctrl-C: ``wait`` if given, else when stdin is a terminal and CI is unset."""
    if wait is not None:
        return wait
    return not os.environ.get("CI") and sys.stdin is not None and sys.stdin.isatty()


def run_demo(
    *, stream: TextIO | None = None, config_path: str | os.PathLike | None = None,
    models_dir: str | os.PathLike | None = None, wait: bool | None = None,
) -> int:
    """Runs the demo; returns 0 if every step did what it promises, 1 if not, 2 without a source checkout.

    ``wait``: keep serving until Ctrl-C (SIGINT) or SIGTERM once the apps run; None decides by ``should_wait``.
    """
    stream = stream if stream is not None else sys.stdout

    def say(text: str = "") -> None:
        stream.write(text + "\n")
        stream.flush()

    config_path = Path(config_path) if config_path else _SOURCE_ROOT / "configs" / "demo.yaml"
    models_dir = Path(models_dir) if models_dir else _SOURCE_ROOT / "examples" / "models"
    if not config_path.is_file() or not (models_dir / "make_tiny_model.py").is_file():
        say(f"beam-pusher demo: needs a source checkout ({config_path} and {models_dir}/make_tiny_model.py); "
            "run it from a clone of the repository with 'make demo'.")
        return 2
    started = time.monotonic()
    home = tempfile.mkdtemp(prefix="beam-pusher-demo-")
    # Everything temporary goes under one folder removed at the end: Beam's and TensorFlow's scratch files too.
    scratch = os.path.join(home, "tmp")
    os.mkdir(scratch)
    settings = {**_HUB_SETTINGS, "HF_HOME": os.path.join(home, "hf-home"), "TMPDIR": scratch}
    previous_tempdir, tempfile.tempdir = tempfile.tempdir, scratch
    try:
        with _environment(settings):
            _check_hub_client()
            return _run(stream, say, config_path, models_dir, home, started, should_wait(wait))
    except DemoError as exc:
        say(f"\nThe demo failed: {exc}")
        return 1
    finally:
        tempfile.tempdir = previous_tempdir
        shutil.rmtree(home, ignore_errors=True)


def _deploy(specs: list[SpaceSpec], stream: TextIO, **deploy_options) -> list[PushResult]:
    """Deploys ``specs`` on the local default runner, printing a line per Space and the table, as the CLI does."""
    from beam_pusher.report import ConsoleReport
    from beam_pusher.runner import build_options, describe_runner, run_deploy

    options = build_options()
    report = ConsoleReport(total=len(specs), stream=stream, endpoint=deploy_options.get("endpoint"))
    report.start(runner=describe_runner(options))
    with contextlib.closing(report):
        results = run_deploy(specs, pipeline_args=options, on_result=report.add, **deploy_options)
    return report.finish(results, [s.repo_id for s in specs])


def _run(stream: TextIO, say, config_path: Path, models_dir: Path, home: str, started: float, wait: bool) -> int:
    from beam_pusher.config import load_config
    from beam_pusher.localhub import LocalHub

    say(f"beam-pusher demo: deploy {config_path.relative_to(_SOURCE_ROOT)} to a local Hub, deploy it again, run it.\n")
    say("[1/5] Demo models")
    _, text_model = _make_models(models_dir, say)
    with LocalHub(os.path.join(home, "hub"), run_spaces=True, app_start_timeout=APP_START_TIMEOUT) as hub, \
            _environment({DEMO_TOKEN_ENV: hub.token}):
        say(f"\n[2/5] Local Hub at {hub.endpoint} (user '{hub.username}'), running Spaces")
        _app_environment(say)
        commit = _push_model_repo(hub, text_model)
        say(f"  model repository {hub.username}/{TEXT_MODEL_REPO} pushed (commit {commit[:7]}): "
            f"{hub.url(f'{hub.username}/{TEXT_MODEL_REPO}', 'model')}")
        config = load_config(config_path)
        run = dict(endpoint=hub.endpoint, token=f"env:{DEMO_TOKEN_ENV}", base_dir=str(config_path.parent),
                   stream=stream)

        say("\n[3/5] First deploy")
        first = _deploy(config.specs, **run)
        _check_first(first, hub)
        heads = {r.repo_id: hub.head(r.repo_id) for r in first}
        commits = sum(hub.commit_count(r.repo_id) for r in first)

        say("\n[4/5] Second deploy of the same config: nothing should be uploaded")
        second = _deploy(config.specs, **run)
        _check_second(second, heads, hub)
        if sum(hub.commit_count(r.repo_id) for r in second) != commits:
            raise DemoError("the number of commits changed during the second deploy")
        say(f"\nSecond deploy: {len(second)} Spaces unchanged, 0 files uploaded, no new commit.")

        say("\n[5/5] The Spaces' apps start (importing TensorFlow and the SDKs takes a while)")
        _wait_until_running(hub, [r.repo_id for r in first], say)
        say(f"\n  Local Hub: {hub.endpoint}/")
        if wait:
            say("\nOpen the URLs above in a browser. Serving until Ctrl-C ...")
            _serve_until_interrupted()
            say("\nCtrl-C: stopping the apps and the local Hub.")
    say(f"Demo finished in {time.monotonic() - started:.0f} s: {len(first)} Spaces deployed, redeployed and run; "
        "the local Hub and its apps are stopped and its files removed.")
    return 0


def _app_environment(say) -> None:
    """Makes (or finds in the cache) the environment every demo Space's requirements are installed in."""
    from beam_pusher.localhub import appenv

    say("  the Spaces' app environment (built from the apps' requirements.txt the first time: minutes) ...")
    try:
        env = appenv.builtin_apps_env()
    except appenv.SpaceEnvError as exc:
        raise DemoError(f"the Spaces' app environment could not be built: {exc}") from None
    state = f"built in {env.build_seconds:.0f} s" if env.build_seconds else "cached"
    say(f"  {env.path} ({state})")


def _wait_until_running(hub, repo_ids: list[str], say) -> None:
    """Waits until no Space builds or starts; prints each one's page and app URLs; fails unless all run."""
    deadline = time.monotonic() + APP_START_TIMEOUT + 60
    stages = {}
    while time.monotonic() < deadline:
        stages = {repo_id: hub.space_state(repo_id).runtime for repo_id in repo_ids}
        if not any(runtime["stage"] in _BUSY for runtime in stages.values()):
            break
        time.sleep(1)
    problems = []
    for repo_id, runtime in stages.items():
        say(f"  {repo_id:<28} {runtime['stage']:<13} page {hub.url(repo_id)}")
        say(f"  {'':<28} {'':<13} app  {hub.app_url(repo_id) or '-'}")
        if runtime["stage"] != "RUNNING":
            log = "\n      ".join(hub.space_logs(repo_id)[-12:] or hub.space_logs(repo_id, build=True)[-12:])
            problems.append(f"{repo_id}: {runtime['stage']}: {runtime.get('errorMessage')}\n      {log}")
    if problems:
        raise DemoError("not every Space runs:\n  " + "\n  ".join(problems))


def _serve_until_interrupted() -> None:
    """Blocks until Ctrl-C (SIGINT) or SIGTERM."""
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
