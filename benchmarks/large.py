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
  the figures say so), split by the local Hub's request timeline into start-up and hashing, the LFS PUT, the other
  requests and the time between them;
- for reference, ``HfApi.upload_file`` of the same file (the client hashing and uploading it, no Beam);
- process against process, as a user runs them: the deploy process's whole wall time (Python start-up and imports
  included) against ``hf upload`` of the same file to an existing Space; ``large_ratio`` is their quotient.

The uploads write the model to the local Hub's disk, whose speed varies from one write to the next, so each size
runs ``rounds`` times (raw PUT, ``upload_file``, deploy, each against a fresh Hub and after ``os.sync()`` so none pays
for another's pending writes) and the figures are the medians; the spread is reported beside them. After each deploy
the Space is checked: ``model/weights.bin`` is stored with LFS with the file's sha256, in one commit.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.client
import json
import os
import shutil
import statistics
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
    """One model size: medians over the rounds, their ranges, and the highest peak RSS of any round."""

    size: int
    t_sha256: float
    t_put: float
    t_upload_file: float
    t_import: float
    t_deploy: float
    t_deploy_process: float
    t_hf_upload_process: float
    maxrss_mib: float
    polled_rss_mib: float
    put_range: tuple[float, float]
    deploy_range: tuple[float, float]
    phases: dict[str, float]  # median seconds of the deploy's parts, from the local Hub's request timeline

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

    @property
    def large_ratio(self) -> float:
        """The largest model's deploy process against ``hf upload`` as a process (goal: at most 1.2)."""
        large = max(self.runs, key=lambda r: r.size)
        return large.t_deploy_process / large.t_hf_upload_process


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
                       "objects": [{"oid": oid, "size": size}]})
    conn.request("POST", f"/spaces/{repo_id}.git/info/lfs/objects/batch", body=body, headers={
        "Authorization": f"Bearer {hub.token}", "Accept": "application/vnd.git-lfs+json",
        "Content-Type": "application/vnd.git-lfs+json"})
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


def _upload_file(hub: HubProcess, path: Path) -> float:
    """Times ``HfApi.upload_file`` of ``path`` to a fresh Space: the client's own hashing and upload, no Beam."""
    from huggingface_hub import HfApi

    api = HfApi(endpoint=hub.endpoint, token=hub.token)
    repo_id = f"{hub.user}/upload-file"
    api.create_repo(repo_id, repo_type="space", space_sdk="gradio")
    start = time.perf_counter()
    api.upload_file(path_or_fileobj=str(path), path_in_repo="model/weights.bin", repo_id=repo_id, repo_type="space")
    return time.perf_counter() - start


def _hf_upload_process(hub: HubProcess, path: Path) -> float:
    """Times ``hf upload`` of ``path`` to an existing Space as a process of its own, imports included."""
    from huggingface_hub import HfApi

    repo_id = f"{hub.user}/hf-upload"
    HfApi(endpoint=hub.endpoint, token=hub.token).create_repo(repo_id, repo_type="space", space_sdk="gradio")
    env = dict(os.environ, HF_ENDPOINT=hub.endpoint, HF_TOKEN=hub.token, HF_HUB_DISABLE_XET="1",
               HF_HUB_DISABLE_PROGRESS_BARS="1")
    cmd = [str(Path(sys.executable).parent / "hf"), "upload", repo_id, str(path), "model/weights.bin",
           "--type", "space"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"hf upload exited {proc.returncode}:\n{proc.stdout[-2000:]}")
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


def _deploy(hub: HubProcess, workdir: Path, template: Path, model_dir: Path, name: str) -> tuple[dict, int]:
    spec = {"repo_id": f"{hub.user}/{name}", "app_path": str(template), "space_sdk": "gradio",
            "model_path": str(model_dir)}
    spec_path = workdir / f"{name}.json"
    spec_path.write_text(json.dumps(spec))
    env = dict(os.environ, **{TOKEN_ENV: hub.token, "HF_HUB_DISABLE_XET": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1"})
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, str(HERE / "deploy_child.py"), str(spec_path), hub.endpoint, TOKEN_ENV],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stop, peak = threading.Event(), [0]
    poller = threading.Thread(target=_poll_rss, args=(proc.pid, stop, peak), daemon=True)
    poller.start()
    out, err = proc.communicate()
    process_s = time.perf_counter() - started
    stop.set()
    poller.join()
    if proc.returncode != 0:
        raise RuntimeError(f"deploy of {name} exited {proc.returncode}:\n{out[-2000:]}\n{err[-3000:]}")
    return {**json.loads(out.strip().splitlines()[-1]), "process_s": process_s}, peak[0]


def deploy_phases(child: dict, timeline: list[tuple[str, float, float]]) -> dict[str, float]:
    """Splits one deploy's wall time by what the local Hub saw of it.

    ``before_hub``: from the ``run_deploy`` call to its first request (pipeline construction and start-up, listing,
    hashing); ``lfs_put``: the LFS upload requests; ``other_requests``: every other request (plan, preupload, LFS
    batch, commit, settings); ``between``: the rest (client-side work between requests, the pipeline's wind-down).
    """
    requests = sorted((r for r in timeline if child["run_started"] <= r[1] <= child["run_finished"]),
                      key=lambda r: r[1])
    before = requests[0][1] - child["run_started"] if requests else child["run_s"]
    put = sum(end - start for route, start, end in requests if route == "lfs-upload")
    other = sum(end - start for route, start, end in requests if route != "lfs-upload")
    return {"before_hub": before, "lfs_put": put, "other_requests": other,
            "between": max(0.0, child["run_s"] - before - put - other)}


def describe_phases(phases: dict[str, float]) -> str:
    return (f"{phases['before_hub']:.1f} s before the first request (start-up, hashing) + LFS PUT "
            f"{phases['lfs_put']:.1f} s + other requests {phases['other_requests']:.1f} s + "
            f"{phases['between']:.1f} s between them")


def _deploy_round(
    workdir: Path, template: Path, model_dir: Path, size: int, oid: str
) -> tuple[float, float, dict, int]:
    """One raw PUT, one ``upload_file`` and one deploy of the model, each against a fresh Hub after ``os.sync()``."""
    os.sync()
    with HubProcess() as hub:
        t_put = _raw_put(hub, model_dir / "weights.bin", oid)
    os.sync()
    with HubProcess() as hub:
        t_upload_file = _upload_file(hub, model_dir / "weights.bin")
    os.sync()
    with HubProcess() as hub:
        t_hf_upload = _hf_upload_process(hub, model_dir / "weights.bin")
    os.sync()
    with HubProcess() as hub:
        name = f"large-{size // MiB}mib"
        child, polled = _deploy(hub, workdir, template, model_dir, name)
        repo_id = f"{hub.user}/{name}"
        stored = hub.call("list_files", repo_id)["model/weights.bin"]
        assert stored.lfs_sha256 == oid and stored.size == size, f"{repo_id}: the model was not stored whole"
        assert hub.call("commit_count", repo_id) == 2, f"{repo_id}: expected exactly one deploy commit"
        child["phases"] = deploy_phases(child, hub.call("request_timeline"))
    child["hf_upload_process_s"] = t_hf_upload
    return t_put, t_upload_file, child, polled


def run_large(
    workdir: Path, *, sizes: tuple[int, ...] = (100 * MiB, 1024 * MiB), rounds: int = 5, log=print
) -> LargeFigures:
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
            puts, upload_files, children, polled = [], [], [], []
            for _ in range(rounds):
                t_put, t_upload_file, child, peak = _deploy_round(workdir, template, model_dir, size, oid)
                puts.append(t_put)
                upload_files.append(t_upload_file)
                children.append(child)
                polled.append(peak)
        finally:
            shutil.rmtree(model_dir, ignore_errors=True)
        deploys = [c["run_s"] for c in children]
        run = LargeRun(size=size, t_sha256=t_sha, t_put=statistics.median(puts),
                       t_upload_file=statistics.median(upload_files),
                       t_import=statistics.median(c["import_s"] for c in children),
                       t_deploy=statistics.median(deploys),
                       t_deploy_process=statistics.median(c["process_s"] for c in children),
                       t_hf_upload_process=statistics.median(c["hf_upload_process_s"] for c in children),
                       maxrss_mib=max(c["maxrss_kib"] for c in children) / 1024,
                       polled_rss_mib=max(polled) / MiB, put_range=(min(puts), max(puts)),
                       deploy_range=(min(deploys), max(deploys)),
                       phases={k: statistics.median(c["phases"][k] for c in children)
                               for k in children[0]["phases"]})
        log(f"  {size // MiB} MiB, median of {rounds}: sha256 {t_sha:.1f} s + raw PUT {run.t_put:.1f} s "
            f"({run.put_range[0]:.1f}-{run.put_range[1]:.1f}) = {run.physical:.1f} s; deploy {run.t_deploy:.1f} s "
            f"({run.deploy_range[0]:.1f}-{run.deploy_range[1]:.1f}, +{run.t_import:.1f} s imports) = "
            f"{describe_phases(run.phases)}; HfApi.upload_file alone {run.t_upload_file:.1f} s; as processes: "
            f"deploy {run.t_deploy_process:.1f} s vs hf upload {run.t_hf_upload_process:.1f} s; "
            f"peak RSS {run.maxrss_mib:.0f} MiB (polled {run.polled_rss_mib:.0f})")
        runs.append(run)
    return LargeFigures(runs)


if __name__ == "__main__":
    import tempfile

    os.environ.setdefault("HF_HUB_DISABLE_XET", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    sizes = tuple(int(s) * MiB for s in sys.argv[1:]) or (100 * MiB, 1024 * MiB)
    with tempfile.TemporaryDirectory(prefix="bench-large-") as tmp:
        figures = run_large(Path(tmp), sizes=sizes)
    print(json.dumps({"peak_rss_mib": figures.peak_rss_mib, "rss_growth": figures.rss_growth,
                      "throughput_ratio": figures.throughput_ratio}))
