"""Benchmark 3: embedding a large model. Memory must not grow with the model; time must approach the physical limit.

For each model size a random (incompressible) ``weights.bin`` is written to a temporary folder and deployed with
``SpaceSpec(model_path=folder)`` by ``deploy_child.py`` in a process of its own, against a local Hub (no added
latency) in another process. Measured:

- the deploy process's peak RSS: ``getrusage`` high-water mark reported by the process itself, cross-checked by
  polling it with psutil every 20 ms from here;
- the physical limit of a correct LFS upload on this machine: one sha256 pass over the file plus one raw streaming
  HTTP PUT of it (http.client, 1 MiB chunks) to the upload URL that the local Hub's LFS batch API hands out, against
  a fresh local Hub so nothing is deduplicated;
- the deploy time: the whole ``run_deploy`` call (pipeline construction and start-up included, imports excluded;
  the figures say so).

Afterwards the Space is checked: ``model/weights.bin`` is stored with LFS with the file's sha256, one commit.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.client
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path

from hubproc import HubProcess

__all__ = ["LargeFigures", "run_large"]

HERE = Path(__file__).resolve().parent
TOKEN_ENV = "BENCH_HF_TOKEN"
MiB = 1024 * 1024
_CHUNK = MiB


@dataclasses.dataclass
class LargeRun:
    size: int
    t_sha256: float
    t_put: float
    t_import: float
    t_deploy: float
    t_process: float
    maxrss_mib: float
    polled_rss_mib: float

    @property
    def physical(self) -> float:
        return self.t_sha256 + self.t_put


@dataclasses.dataclass
class LargeFigures:
    runs: list[LargeRun]

    @property
    def peak_rss_mib(self) -> float:
        return max(r.maxrss_mib for r in self.runs)

    @property
    def rss_growth(self) -> float:
        small, large = min(self.runs, key=lambda r: r.size), max(self.runs, key=lambda r: r.size)
        return large.maxrss_mib / small.maxrss_mib

    @property
    def throughput_ratio(self) -> float:
        large = max(self.runs, key=lambda r: r.size)
        return large.physical / large.t_deploy


def write_random_file(path: Path, size: int) -> str:
    """Writes ``size`` random bytes (incompressible); returns their sha256."""
    digest = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left:
            chunk = os.urandom(min(16 * MiB, left))
            digest.update(chunk)
            f.write(chunk)
            left -= len(chunk)
    return digest.hexdigest()


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _raw_put(hub: HubProcess, path: Path, oid: str) -> float:
    """Times one streaming PUT of ``path`` to the upload href the LFS batch API gives for a fresh Space."""
    from huggingface_hub import HfApi

    repo_id = f"{hub.user}/raw-put"
    HfApi(endpoint=hub.endpoint, token=hub.token).create_repo(repo_id, repo_type="space", space_sdk="gradio")
    size = path.stat().st_size
    base = urllib.parse.urlsplit(hub.endpoint)
    conn = http.client.HTTPConnection(base.hostname, base.port, timeout=600)
    body = json.dumps({"operation": "upload", "transfers": ["basic"], "hash_algo": "sha256",
                       "objects": [{"oid": oid, "size": size}]})  # fmt: skip
    conn.request("POST", f"/spaces/{repo_id}.git/info/lfs/objects/batch", body=body, headers={
        "Authorization": f"Bearer {hub.token}", "Accept": "application/vnd.git-lfs+json",
        "Content-Type": "application/vnd.git-lfs+json"})  # fmt: skip
    answer = json.loads(conn.getresponse().read())
    conn.close()
    upload = answer["objects"][0]["actions"]["upload"]
    href = urllib.parse.urlsplit(upload["href"])
    start = time.perf_counter()
    conn = http.client.HTTPConnection(href.hostname, href.port, timeout=600)
    conn.putrequest("PUT", f"{href.path}?{href.query}")
    for key, value in {**upload.get("header", {}), "Content-Length": str(size)}.items():
        conn.putheader(key, value)
    conn.endheaders()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            conn.send(chunk)
    response = conn.getresponse()
    response.read()
    elapsed = time.perf_counter() - start
    conn.close()
    if response.status != 200:
        raise RuntimeError(f"raw LFS PUT answered {response.status}")
    return elapsed


def _poll_rss(pid: int, stop: threading.Event, peak: list[int]) -> None:
    import psutil

    try:
        proc = psutil.Process(pid)
        while not stop.wait(0.02):
            peak[0] = max(peak[0], proc.memory_info().rss)
    except psutil.Error:
        pass  # the process ended


def _template(root: Path) -> Path:
    template = root / "template"
    template.mkdir(parents=True, exist_ok=True)
    (template / "app.py").write_text("from model_loader import get_model\nprint(get_model, '$SPACE_REPO_ID')\n")
    (template / "requirements.txt").write_text("gradio\n")
    (template / "README.md").write_text("---\ntitle: Large model\n---\n# $SPACE_REPO_ID\n")
    return template


def _deploy(hub: HubProcess, workdir: Path, template: Path, model_dir: Path, name: str) -> tuple[dict, float, int]:
    spec = {"repo_id": f"{hub.user}/{name}", "app_path": str(template), "space_sdk": "gradio",
            "model_path": str(model_dir)}  # fmt: skip
    spec_path = workdir / f"{name}.json"
    spec_path.write_text(json.dumps(spec))
    env = dict(os.environ, **{TOKEN_ENV: hub.token, "HF_HUB_DISABLE_XET": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1"})
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, str(HERE / "deploy_child.py"), str(spec_path), hub.endpoint, TOKEN_ENV],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    stop, peak = threading.Event(), [0]
    poller = threading.Thread(target=_poll_rss, args=(proc.pid, stop, peak), daemon=True)
    poller.start()
    out, err = proc.communicate()
    elapsed = time.perf_counter() - start
    stop.set()
    poller.join()
    if proc.returncode != 0:
        raise RuntimeError(f"deploy of {name} exited {proc.returncode}:\n{out[-2000:]}\n{err[-3000:]}")
    return json.loads(out.strip().splitlines()[-1]), elapsed, peak[0]


def run_large(workdir: Path, *, sizes: tuple[int, ...] = (100 * MiB, 1024 * MiB), log=print) -> LargeFigures:
    """Runs benchmark 3 in ``workdir`` (model files are deleted after each size)."""
    workdir.mkdir(parents=True, exist_ok=True)
    template = _template(workdir)
    runs = []
    for size in sizes:
        model_dir = workdir / f"model-{size // MiB}mib"
        model_dir.mkdir()
        try:
            oid = write_random_file(model_dir / "weights.bin", size)
            _sha256_file(model_dir / "weights.bin")  # warm the page cache as the deploy will find it
            start = time.perf_counter()
            assert _sha256_file(model_dir / "weights.bin") == oid
            t_sha = time.perf_counter() - start
            with HubProcess() as hub:
                t_put = _raw_put(hub, model_dir / "weights.bin", oid)
            with HubProcess() as hub:
                name = f"large-{size // MiB}mib"
                child, t_process, polled = _deploy(hub, workdir, template, model_dir, name)
                repo_id = f"{hub.user}/{name}"
                stored = hub.call("list_files", repo_id)["model/weights.bin"]
                assert stored.lfs_sha256 == oid and stored.size == size, f"{repo_id}: the model was not stored whole"
                assert hub.call("commit_count", repo_id) == 2, f"{repo_id}: expected exactly one deploy commit"
        finally:
            shutil.rmtree(model_dir, ignore_errors=True)
        run = LargeRun(size=size, t_sha256=t_sha, t_put=t_put, t_import=child["import_s"],
                       t_deploy=child["run_s"], t_process=t_process, maxrss_mib=child["maxrss_kib"] / 1024,
                       polled_rss_mib=polled / MiB)  # fmt: skip
        log(f"  {size // MiB} MiB: sha256 {t_sha:.1f} s + raw PUT {t_put:.1f} s = {run.physical:.1f} s; deploy "
            f"{run.t_deploy:.1f} s (+{run.t_import:.1f} s imports); peak RSS {run.maxrss_mib:.0f} MiB "
            f"(polled {run.polled_rss_mib:.0f})")  # fmt: skip
        runs.append(run)
    return LargeFigures(runs)


if __name__ == "__main__":
    import tempfile

    os.environ.setdefault("HF_HUB_DISABLE_XET", "1")
    sizes = tuple(int(s) * MiB for s in sys.argv[1:]) or (100 * MiB, 1024 * MiB)
    with tempfile.TemporaryDirectory(prefix="bench-large-") as tmp:
        figures = run_large(Path(tmp), sizes=sizes)
    print(json.dumps({"peak_rss_mib": figures.peak_rss_mib, "rss_growth": figures.rss_growth,
                      "throughput_ratio": figures.throughput_ratio}))  # fmt: skip
