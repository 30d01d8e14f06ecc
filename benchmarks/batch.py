"""Benchmarks 1 and 2: a batch deploy of many Spaces, then a no-op redeploy, against ``upload_folder`` by hand.

Three sides run as processes of their own, as a user runs them: ``python -m beam_pusher deploy CONFIG``, a Python
loop of ``create_repo`` + ``upload_folder``, and the same calls in a pool of 16 threads (the parallelism beam_pusher
uses), each against a fresh local Hub server in another process with latency added to every request, deploying the
same Spaces with the same files. Afterwards every Space is checked on the server:
exactly the expected tree, exactly one commit after the Space's creation; after the no-op redeploy, no new commit and
no uploaded byte.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from dataset import make_dataset, render_folder, write_config
from hubproc import HubProcess

__all__ = ["BatchFigures", "expected_tree", "run_batch"]

TOKEN_ENV = "BENCH_HF_TOKEN"
POOL_THREADS = 16  # beam_pusher's parallel pushes per worker
HERE = Path(__file__).resolve().parent


@dataclasses.dataclass
class BatchFigures:
    spaces: int
    files_per_space: int
    latency: float
    t_loop: float
    t_beam: float
    t_loop_noop: float
    t_beam_noop: float
    t_pool: float
    t_pool_noop: float
    noop_commits: int
    noop_bytes: int
    requests_loop: dict[str, int]
    requests_beam: dict[str, int]
    requests_loop_noop: dict[str, int]
    requests_beam_noop: dict[str, int]
    requests_pool: dict[str, int]
    requests_pool_noop: dict[str, int]
    beam_stdout_tail: str
    cpu: dict[str, float] = dataclasses.field(default_factory=dict)

    @property
    def batch_ratio(self) -> float:
        return self.t_beam / self.t_loop

    @property
    def noop_ratio(self) -> float:
        return self.t_beam_noop / self.t_loop_noop

    @property
    def pool_ratio(self) -> float:
        return self.t_beam / self.t_pool

    @property
    def pool_noop_ratio(self) -> float:
        return self.t_beam_noop / self.t_pool_noop

    def per_space(self, requests: dict[str, int]) -> float:
        """API requests per Space (the worker's one ``whoami`` included)."""
        return sum(requests.values()) / self.spaces

    @property
    def requests_ratio(self) -> float:
        """beam_pusher's requests per Space on a first deploy, against the thread pool's."""
        return self.per_space(self.requests_beam) / self.per_space(self.requests_pool)

    @property
    def requests_noop_ratio(self) -> float:
        return self.per_space(self.requests_beam_noop) / self.per_space(self.requests_pool_noop)


def expected_tree(folder: Path) -> dict[str, tuple[int, str, str]]:
    """``path -> (size, sha256, git blob sha1)`` of every file under ``folder``."""
    out = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            sha1 = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
            out[path.relative_to(folder).as_posix()] = (len(data), hashlib.sha256(data).hexdigest(), sha1)
    return out


def check_tree(hub: HubProcess, repo_id: str, expected: dict[str, tuple[int, str, str]]) -> list[str]:
    """Differences between the Space's tree on the server and ``expected`` (``.gitattributes`` aside)."""
    stored = {p: f for p, f in hub.call("list_files", repo_id).items() if p != ".gitattributes"}
    problems = []
    for path in sorted(set(stored) | set(expected)):
        if path not in stored:
            problems.append(f"{repo_id}: missing {path}")
        elif path not in expected:
            problems.append(f"{repo_id}: unexpected {path}")
        else:
            size, sha256, sha1 = expected[path]
            f = stored[path]
            same = f.lfs_sha256 == sha256 if f.lfs_sha256 else f.blob_id == sha1
            if not same or f.size != size:
                problems.append(f"{repo_id}: {path} differs")
    return problems


def _delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: after.get(k, 0) - before.get(k, 0) for k in sorted(after) if after.get(k, 0) != before.get(k, 0)}


def _cpu_seconds(usage: resource.struct_rusage) -> float:
    return usage.ru_utime + usage.ru_stime


def _timed(cmd: list[str], env: dict[str, str], log: Path) -> tuple[float, str, float]:
    """Runs ``cmd``; returns its wall time, its output and the CPU seconds it used."""
    cpu = _cpu_seconds(resource.getrusage(resource.RUSAGE_CHILDREN))
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    elapsed = time.perf_counter() - start
    cpu = _cpu_seconds(resource.getrusage(resource.RUSAGE_CHILDREN)) - cpu
    log.write_text(proc.stdout)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} ... exited {proc.returncode}; output in {log}:\n{proc.stdout[-3000:]}")
    return elapsed, proc.stdout, cpu


def _child_env(hub: HubProcess) -> dict[str, str]:
    env = dict(os.environ)
    env.update({TOKEN_ENV: hub.token, "HF_HUB_DISABLE_XET": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1"})
    env.pop("HF_TOKEN", None)
    return env


def _deploy_twice(name: str, cmd: list[str], hub: HubProcess, expected: dict[str, dict], workdir: Path,
                  log) -> dict[str, Any]:
    """Deploys, checks every Space, redeploys unchanged; returns the times, request counts and no-op commits."""
    env = _child_env(hub)
    out: dict[str, Any] = {}
    for phase in ("first", "noop"):
        before = hub.call("request_counts")
        commits_before = {r: hub.call("commit_count", r) for r in expected} if phase == "noop" else {}
        server_cpu = hub.cpu_seconds()
        seconds, stdout, client_cpu = _timed(cmd, env, workdir / f"{name}-{phase}.log")
        server_cpu = hub.cpu_seconds() - server_cpu
        requests = _delta(hub.call("request_counts"), before)
        log(f"  {name} {phase}: {seconds:.1f} s, {sum(requests.values())} requests; CPU: client {client_cpu:.1f} s, "
            f"Hub server {server_cpu:.1f} s")
        problems = []
        for repo_id, tree in expected.items():
            problems += check_tree(hub, repo_id, tree)
        if phase == "first":
            problems += [f"{r}: {n} commits, expected 2 (creation + deploy)" for r in expected
                         if (n := hub.call("commit_count", r)) != 2]
        assert not problems, f"{name} {phase} deploy left wrong Spaces:\n" + "\n".join(problems[:20])
        out[phase] = {"seconds": seconds, "requests": requests, "stdout": stdout, "client_cpu": client_cpu,
                      "server_cpu": server_cpu}
        if phase == "noop":
            out["noop_commits"] = sum(hub.call("commit_count", r) - n for r, n in commits_before.items())
    return out


def run_batch(workdir: Path, *, n_spaces: int = 50, latency: float = 0.1, beam_args: tuple[str, ...] = (),
              log=print) -> BatchFigures:
    """Runs benchmarks 1 and 2 in ``workdir``; raises AssertionError when a Space ends in the wrong state.

    Each side gets a fresh local Hub of its own, so neither profits from LFS objects the other uploaded.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    ds = make_dataset(workdir / "data", n_spaces, "user", prefix="bench")
    jobs, expected = [], {}
    for spec in ds.specs:
        folder = render_folder(spec, workdir / "rendered" / spec.name)
        expected[spec.repo_id] = expected_tree(folder)
        jobs.append([spec.repo_id, str(folder)])
    files_per_space = len(expected[ds.specs[0].repo_id])
    (workdir / "jobs.json").write_text(json.dumps(jobs))
    config = write_config(workdir / "spaces.yaml", ds.specs)
    report = workdir / "report.json"
    log(f"batch: {n_spaces} Spaces x {files_per_space} files, {latency * 1000:.0f} ms latency per request")
    with HubProcess(latency=latency) as hub:
        loop = _deploy_twice("loop", [sys.executable, str(HERE / "loop_upload.py"), str(workdir / "jobs.json"),
                                      hub.endpoint, TOKEN_ENV], hub, expected, workdir, log)
    with HubProcess(latency=latency) as hub:
        pool = _deploy_twice("pool", [sys.executable, str(HERE / "loop_upload.py"), str(workdir / "jobs.json"),
                                      hub.endpoint, TOKEN_ENV, str(POOL_THREADS)], hub, expected, workdir, log)
    with HubProcess(latency=latency) as hub:
        beam_cmd = [sys.executable, "-m", "beam_pusher", "deploy", str(config), "--endpoint", hub.endpoint,
                    "--token-env", TOKEN_ENV, "--report", str(report), *beam_args]
        beam = _deploy_twice("beam_pusher", beam_cmd, hub, expected, workdir, log)
    results = json.loads(report.read_text())
    errors = [r["error"] for r in results if r["error"]]
    assert not errors, f"no-op redeploy failed: {errors[:3]}"
    noop_bytes = sum(r["bytes_uploaded"] for r in results)
    log(f"  no-op: beam_pusher made {beam['noop_commits']} commits and uploaded {noop_bytes} bytes; "
        f"the loop made {loop['noop_commits']} commits")
    return BatchFigures(
        spaces=n_spaces, files_per_space=files_per_space, latency=latency,
        t_loop=loop["first"]["seconds"], t_beam=beam["first"]["seconds"],
        t_loop_noop=loop["noop"]["seconds"], t_beam_noop=beam["noop"]["seconds"],
        noop_commits=beam["noop_commits"], noop_bytes=noop_bytes,
        requests_loop=loop["first"]["requests"], requests_beam=beam["first"]["requests"],
        requests_loop_noop=loop["noop"]["requests"], requests_beam_noop=beam["noop"]["requests"],
        t_pool=pool["first"]["seconds"], t_pool_noop=pool["noop"]["seconds"],
        requests_pool=pool["first"]["requests"], requests_pool_noop=pool["noop"]["requests"],
        beam_stdout_tail="\n".join(beam["first"]["stdout"].splitlines()[-3:]),
        cpu={f"{side}_{phase}_{who}": run[phase][f"{who}_cpu"]
             for side, run in (("loop", loop), ("pool", pool), ("beam", beam))
             for phase in ("first", "noop") for who in ("client", "server")},
    )


if __name__ == "__main__":
    import argparse
    import tempfile

    parser = argparse.ArgumentParser(description="Benchmarks 1-2 alone (make bench runs all four).")
    parser.add_argument("--spaces", type=int, default=50)
    parser.add_argument("--latency", type=float, default=0.1)
    args, beam = parser.parse_known_args()
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        figures = run_batch(Path(tmp), n_spaces=args.spaces, latency=args.latency, beam_args=tuple(beam))
    result: Any = dataclasses.asdict(figures)
    result.update(batch_ratio=figures.batch_ratio, noop_ratio=figures.noop_ratio, pool_ratio=figures.pool_ratio,
                  pool_noop_ratio=figures.pool_noop_ratio, requests_ratio=figures.requests_ratio,
                  requests_noop_ratio=figures.requests_noop_ratio)
    print(json.dumps(result, indent=1))
