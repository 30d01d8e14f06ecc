"""Benchmark 4: what running the push as a TFX component costs over running ``DeploySpaces`` alone.

Two processes deploy the same template and embedded model to two fresh Spaces of one local Hub (no added latency):

- ``beam``: ``run_deploy([SpaceSpec(...)])``, the pipeline the component's executor builds, on the local runner;
- ``tfx``: a TFX pipeline (Model and ModelBlessing importers -> ``HFSpacePusher``) on ``LocalDagRunner`` with sqlite
  ML Metadata and the same Beam flags (``beam_pipeline_args=LOCAL_PIPELINE_ARGS``).

Each process reports its import time and the time of the run call; ``tfx_overhead_s`` is the difference of the run
calls (orchestration: MLMD, importers, artifact resolution, the executor). Imports (TFX pulls in TensorFlow) are
reported separately. Both Spaces are checked to hold the same files, with one commit each.

A third process times one pusher execution as TFX makes it -- the executor built from its context, then ``Do`` --
with ``beam_pipeline_args=['--runner=FnApiRunner']`` (what docs/tfx.md recommends): ``pusher_s`` for a new Space,
``pusher_noop_s`` for an unchanged redeploy (medians of three), and ``sdist_s``, what TFX's ``BaseBeamExecutor``
spends per execution packaging TFX as an sdist for the workers whenever Beam flags are given; the executors skip
that for local runners, where the workers import the installed TFX.

Child mode: ``python benchmarks/tfx_bench.py --child {beam,tfx,executor} WORKDIR ENDPOINT TOKEN_ENV REPO_NAME``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TOKEN_ENV = "BENCH_HF_TOKEN"


@dataclasses.dataclass
class TfxFigures:
    beam_import_s: float
    beam_run_s: float
    tfx_import_s: float
    tfx_run_s: float
    pusher_s: float = 0.0
    pusher_noop_s: float = 0.0
    sdist_s: float = 0.0

    @property
    def overhead_s(self) -> float:
        return self.tfx_run_s - self.beam_run_s


def _inputs(workdir: Path) -> tuple[Path, Path]:
    """A template and a Model artifact folder (``Format-Serving`` holds the model files, as Trainer writes them)."""
    template = workdir / "template"
    template.mkdir(parents=True, exist_ok=True)
    (template / "app.py").write_text("from model_loader import get_model\nMODEL = get_model()\n")
    (template / "requirements.txt").write_text("gradio\ntensorflow\n")
    model_uri = workdir / "model"
    serving = model_uri / "Format-Serving"
    (serving / "variables").mkdir(parents=True, exist_ok=True)
    (serving / "saved_model.pb").write_bytes(b"\x08\x01\x12\x00" + os.urandom(200 * 1024))
    (serving / "variables" / "variables.data-00000-of-00001").write_bytes(os.urandom(2 * 1024 * 1024))
    (serving / "variables" / "variables.index").write_bytes(os.urandom(1024))
    return template, model_uri


def _executor_child(workdir: Path, endpoint: str, token_env: str, repo_name: str) -> dict:
    """Times ``Executor(context).Do(...)`` with ``--runner=FnApiRunner``, new Spaces and unchanged redeploys."""
    from tfx.dsl.components.base.base_beam_executor import BaseBeamExecutor
    from tfx.types import standard_artifacts
    from tfx.utils import dependency_utils

    from beam_pusher.executor import Executor

    def push(repo: str, run: int) -> float:
        model = standard_artifacts.Model()
        model.uri = str(workdir / "model")
        output = standard_artifacts.PushedModel()
        output.uri = str(workdir / "executor" / f"{repo}-{run}")
        start = time.perf_counter()
        context = BaseBeamExecutor.Context(beam_pipeline_args=["--runner=FnApiRunner"], unique_id=f"{repo}-{run}",
                                           tmp_dir=str(workdir / "executor" / "tmp"))
        Executor(context).Do({"model": [model]}, {"pushed_model": [output]}, {
            "username": "user", "hf_access_token": f"env:{token_env}", "repo_name": repo, "endpoint": endpoint,
            "app_path": str(workdir / "template"), "space_sdk": "gradio"})
        return time.perf_counter() - start

    push(f"{repo_name}-warm", 0)  # the first run loads what every later one shares
    new = [push(f"{repo_name}-{i}", 1) for i in range(3)]
    noop = [push(f"{repo_name}-{i}", 2) for i in range(3)]
    start = time.perf_counter()
    dependency_utils.build_ephemeral_package()
    sdist = time.perf_counter() - start
    return {"pusher_s": statistics.median(new), "pusher_noop_s": statistics.median(noop), "sdist_s": sdist}


def _child(mode: str, workdir: Path, endpoint: str, token_env: str, repo_name: str) -> dict:
    if mode == "executor":
        return _executor_child(workdir, endpoint, token_env, repo_name)
    start = time.perf_counter()
    from beam_pusher.runner import LOCAL_PIPELINE_ARGS

    template, model_uri = workdir / "template", workdir / "model"
    if mode == "beam":
        import apache_beam  # noqa: F401 - loaded on first use by the runner: an import, not part of the run
        import beam_pusher.transforms  # noqa: F401
        from beam_pusher.runner import run_deploy
        from beam_pusher.spec import SpaceSpec

        imported = time.perf_counter()
        spec = SpaceSpec(f"user/{repo_name}", str(template), model_path=str(model_uri / "Format-Serving"))
        (result,) = run_deploy([spec], endpoint=endpoint, token=f"env:{token_env}")
        assert result.error is None and result.committed, result
    else:
        from tfx import v1 as tfx
        from tfx.orchestration import metadata
        from tfx.types import standard_artifacts

        from beam_pusher.component import HFSpacePusher

        imported = time.perf_counter()
        blessing_dir = workdir / "blessing"
        blessing_dir.mkdir(exist_ok=True)
        model = tfx.dsl.Importer(source_uri=str(model_uri), artifact_type=standard_artifacts.Model).with_id("model")
        blessing = tfx.dsl.Importer(source_uri=str(blessing_dir), artifact_type=standard_artifacts.ModelBlessing,
                                    custom_properties={"blessed": 1}).with_id("blessing")
        pusher = HFSpacePusher(username="user", hf_access_token=f"env:{token_env}", app_path=str(template),
                               space_sdk="gradio", repo_name=repo_name, model=model.outputs["result"],
                               model_blessing=blessing.outputs["result"], endpoint=endpoint)
        pipeline = tfx.dsl.Pipeline(
            pipeline_name="bench-tfx", pipeline_root=str(workdir / "pipeline_root"),
            components=[model, blessing, pusher], enable_cache=False,
            metadata_connection_config=metadata.sqlite_metadata_connection_config(str(workdir / "mlmd.sqlite")),
            beam_pipeline_args=list(LOCAL_PIPELINE_ARGS),
        )
        tfx.orchestration.LocalDagRunner().run(pipeline)
    done = time.perf_counter()
    return {"import_s": imported - start, "run_s": done - imported}


def run_tfx(workdir: Path, *, log=print) -> TfxFigures:
    """Runs benchmark 4 in ``workdir``."""
    from hubproc import HubProcess

    workdir.mkdir(parents=True, exist_ok=True)
    _inputs(workdir)
    out = {}
    with HubProcess() as hub:
        env = dict(os.environ, **{TOKEN_ENV: hub.token, "HF_HUB_DISABLE_XET": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1",
                                  "TF_CPP_MIN_LOG_LEVEL": "2"})
        for mode in ("beam", "tfx"):
            cmd = [sys.executable, __file__, "--child", mode, str(workdir), hub.endpoint, TOKEN_ENV, f"tfx-{mode}"]
            proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            if proc.returncode != 0:
                raise RuntimeError(f"tfx benchmark ({mode}) exited {proc.returncode}:\n{proc.stderr[-4000:]}")
            out[mode] = json.loads(proc.stdout.strip().splitlines()[-1])
            log(f"  {mode}: run {out[mode]['run_s']:.1f} s (+{out[mode]['import_s']:.1f} s imports)")
        cmd = [sys.executable, __file__, "--child", "executor", str(workdir), hub.endpoint, TOKEN_ENV, "tfx-executor"]
        proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"tfx benchmark (executor) exited {proc.returncode}:\n{proc.stderr[-4000:]}")
        out["executor"] = json.loads(proc.stdout.strip().splitlines()[-1])
        log(f"  one pusher with --runner=FnApiRunner: {out['executor']['pusher_s']:.2f} s, unchanged "
            f"{out['executor']['pusher_noop_s']:.2f} s (TFX's sdist, skipped: {out['executor']['sdist_s']:.1f} s)")
        trees = {}
        for mode in ("beam", "tfx"):
            repo_id = f"user/tfx-{mode}"
            assert hub.call("commit_count", repo_id) == 2, f"{repo_id}: expected exactly one deploy commit"
            files = hub.call("list_files", repo_id)
            trees[mode] = {p: (f.size, f.lfs_sha256 or f.blob_id) for p, f in files.items() if p != "README.md"}
        assert trees["beam"] == trees["tfx"], f"the two Spaces differ: {trees}"
    return TfxFigures(out["beam"]["import_s"], out["beam"]["run_s"], out["tfx"]["import_s"], out["tfx"]["run_s"],
                      **out["executor"])


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_DISABLE_XET", "1")
    if sys.argv[1:2] == ["--child"]:
        mode, workdir, endpoint, token_env, repo_name = sys.argv[2:7]
        print(json.dumps(_child(mode, Path(workdir), endpoint, token_env, repo_name)))
    else:
        import tempfile

        sys.path.insert(0, str(HERE))
        with tempfile.TemporaryDirectory(prefix="bench-tfx-") as tmp:
            figures = run_tfx(Path(tmp))
        print(json.dumps({**dataclasses.asdict(figures), "tfx_overhead_s": figures.overhead_s}))
