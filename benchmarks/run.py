"""``make bench``: the benchmarks of beam_pusher against a local Hub, side by side, in one run.

1. batch: 50 Spaces x 30 files, 100 ms latency per request; ``beam-pusher deploy`` vs ``upload_folder`` in a pool of
   16 threads and in a loop;
2. no-op: the same deploy again: commits, bytes and time against the loop doing the same;
3. large model: a 100 MiB and a 1 GiB model embedded; peak RSS, its growth, and time against the physical limit;
4. TFX: ``HFSpacePusher`` on ``LocalDagRunner`` vs ``DeploySpaces`` alone;
5. quota: 200 Spaces under the free tier's request quota, its window scaled 30 times down (1,000 requests per
   10 s): API requests per Space (first deploy and no-op), 429s, and wall time against the quota-bound minimum, for
   ``beam-pusher deploy`` and the ``upload_folder`` loop;
6. remote: a Space whose 1 GiB model is on s3:// (a local moto server), deployed and redeployed: MiB of the model
   the no-op reads (``remote.py``).

Prints a table, then as its very last line the figures as ``name=value`` pairs. Exits 1 only when a deploy left a
Space in a wrong state (a correctness failure); a missed goal is reported in the table, not as an exit status.
Options: ``--only batch,large,tfx,quota,remote``, ``--spaces N``, ``--quota-spaces N``, ``--latency S``,
``--remote-mib N``, ``--keep DIR`` (keep the work folder).
"""

from __future__ import annotations

import os

os.environ["HF_HUB_DISABLE_XET"] = "1"  # before huggingface_hub is imported anywhere: the local Hub speaks classic LFS
os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("PYTHONWARNINGS", "ignore::FutureWarning")

import argparse  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

from batch import run_batch  # noqa: E402
from large import describe_phases, run_large  # noqa: E402
from quota import rows as quota_rows  # noqa: E402
from quota import run_quota  # noqa: E402
from remote import rows as remote_rows  # noqa: E402
from remote import run_remote  # noqa: E402
from tfx_bench import run_tfx  # noqa: E402

KEYS = ("batch_ratio", "noop_ratio", "pool_ratio", "pool_noop_ratio", "requests_ratio", "requests_noop_ratio",
        "noop_commits", "peak_rss_mib", "rss_growth", "throughput_ratio", "large_ratio", "tfx_overhead_s",
        "quota_requests_per_space", "quota_time_ratio", "remote_noop_read_mib")
GOALS = {
    "batch_ratio": ("<=", 0.25),
    "noop_ratio": ("<=", 0.5),
    "pool_ratio": ("<=", 1.0),
    "pool_noop_ratio": ("<=", 1.0),
    "requests_ratio": ("<=", 0.5),
    "requests_noop_ratio": ("<=", 0.5),
    "noop_commits": ("<=", 0),
    "peak_rss_mib": ("<=", 400),
    "rss_growth": ("<=", 1.3),
    "throughput_ratio": (">=", 0.7),
    "large_ratio": ("<=", 1.2),
    "remote_noop_read_mib": ("<", 1),
}


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = "?"
    try:
        meminfo = Path("/proc/meminfo").read_text().splitlines()
        kib = int(next(line for line in meminfo if line.startswith("MemTotal")).split()[1])
        ram = f"{kib / 1024 / 1024:.0f} GiB"
    except (OSError, StopIteration, ValueError):
        pass
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"{os.cpu_count()} CPUs ({cpu}), {ram} RAM, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}; load average at start {load}")


def _fmt(value: float) -> str:
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    if isinstance(value, int):
        return str(value)
    return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"


def _verdict(key: str, value: float) -> str:
    if key not in GOALS:
        return "(reported)"
    op, goal = GOALS[key]
    if isinstance(value, float) and math.isnan(value):
        return f"goal {op} {goal}: not measured"
    met = {"<=": value <= goal, "<": value < goal, ">=": value >= goal}[op]
    return f"goal {op} {goal}: {'met' if met else 'MISSED'}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="batch,large,tfx,quota,remote",
                        help="comma-separated: batch, large, tfx, quota, remote")
    parser.add_argument("--quota-spaces", type=int, default=200, help="Spaces in the quota benchmark (default 200)")
    parser.add_argument("--spaces", type=int, default=50, help="Spaces in the batch benchmark (default 50)")
    parser.add_argument("--latency", type=float, default=0.1, help="seconds added per request (default 0.1)")
    parser.add_argument("--large-mib", default="100,1024", help="model sizes in MiB (default 100,1024)")
    parser.add_argument("--remote-mib", type=int, default=1024, help="size of the s3:// model in MiB (default 1024)")
    parser.add_argument("--keep", help="work in this folder and keep it")
    args = parser.parse_args(argv)
    only = set(args.only.split(","))
    figures: dict[str, float] = {key: float("nan") for key in KEYS}
    rows: list[tuple[str, str]] = []
    failed = False
    started = time.perf_counter()
    print(f"machine: {machine()}", flush=True)
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="beam-pusher-bench-"))

    def attempt(name: str, fn) -> None:
        nonlocal failed
        try:
            fn()
        except Exception:  # noqa: BLE001 - one broken benchmark must not hide the others' figures
            failed = True
            print(f"{name} benchmark FAILED:\n{traceback.format_exc()}", flush=True)

    def batch() -> None:
        b = run_batch(work / "batch", n_spaces=args.spaces, latency=args.latency, log=_log)
        figures.update(batch_ratio=b.batch_ratio, noop_ratio=b.noop_ratio, pool_ratio=b.pool_ratio,
                       pool_noop_ratio=b.pool_noop_ratio, requests_ratio=b.requests_ratio,
                       requests_noop_ratio=b.requests_noop_ratio, noop_commits=b.noop_commits)
        rows.extend([
            (f"batch: {b.spaces} Spaces x {b.files_per_space} files, {b.latency * 1000:.0f} ms/request",
             f"beam-pusher deploy {b.t_beam:.1f} s vs upload_folder pool {b.t_pool:.1f} s, loop {b.t_loop:.1f} s"),
            ("  requests per Space (beam-pusher / pool / loop)",
             f"{b.per_space(b.requests_beam):.1f} / {b.per_space(b.requests_pool):.1f} / "
             f"{b.per_space(b.requests_loop):.1f}"),
            ("  CPU seconds, client + Hub server (beam-pusher / pool / loop)",
             " / ".join(f"{b.cpu[f'{side}_first_client']:.1f} + {b.cpu[f'{side}_first_server']:.1f}"
                        for side in ("beam", "pool", "loop"))),
            ("no-op redeploy", f"beam-pusher {b.t_beam_noop:.1f} s vs pool {b.t_pool_noop:.1f} s, loop "
                               f"{b.t_loop_noop:.1f} s; {b.noop_commits} commits, {b.noop_bytes} bytes uploaded"),
            ("  requests per Space (beam-pusher / pool / loop)",
             f"{b.per_space(b.requests_beam_noop):.1f} / {b.per_space(b.requests_pool_noop):.1f} / "
             f"{b.per_space(b.requests_loop_noop):.1f}"),
            ("  CPU seconds, client + Hub server (beam-pusher / pool / loop)",
             " / ".join(f"{b.cpu[f'{side}_noop_client']:.1f} + {b.cpu[f'{side}_noop_server']:.1f}"
                        for side in ("beam", "pool", "loop"))),
        ])

    def large() -> None:
        sizes = tuple(int(s) * 1024 * 1024 for s in args.large_mib.split(","))
        f = run_large(work / "large", sizes=sizes, log=_log)
        figures.update(peak_rss_mib=f.peak_rss_mib, rss_growth=f.rss_growth, throughput_ratio=f.throughput_ratio,
                       large_ratio=f.large_ratio)
        for r in f.runs:
            rows.extend([
                (f"large model {r.size // 2**20} MiB",
                 f"peak RSS {r.maxrss_mib:.0f} MiB; deploy {r.t_deploy:.1f} s (run_deploy, Beam start-up included, "
                 f"+{r.t_import:.1f} s imports) vs limit {r.physical:.1f} s (sha256 {r.t_sha256:.1f} s + raw PUT "
                 f"{r.t_put:.1f} s); HfApi.upload_file {r.t_upload_file:.1f} s; medians"),
                ("  as processes, imports included", f"deploy {r.t_deploy_process:.1f} s vs hf upload "
                                                     f"{r.t_hf_upload_process:.1f} s"),
                ("  where the deploy's time went", describe_phases(r.phases)),
            ])

    def tfx() -> None:
        t = run_tfx(work / "tfx", log=_log)
        figures.update(tfx_overhead_s=t.overhead_s)
        rows.append(("TFX HFSpacePusher vs DeploySpaces", f"run {t.tfx_run_s:.1f} s vs {t.beam_run_s:.1f} s; imports "
                     f"{t.tfx_import_s:.1f} s vs {t.beam_import_s:.1f} s (TFX loads TensorFlow)"))
        rows.append(("  one pusher, --runner=FnApiRunner", f"{t.pusher_s:.2f} s new Space, {t.pusher_noop_s:.2f} s "
                     f"unchanged (TFX's sdist for workers, skipped locally: {t.sdist_s:.1f} s)"))

    def quota() -> None:
        q = run_quota(work / "quota", n_spaces=args.quota_spaces, log=_log)
        figures.update(quota_requests_per_space=q.beam.requests / q.spaces,
                       quota_time_ratio=q.beam.seconds / q.beam.quota_bound(q.beam.requests))
        rows.extend(quota_rows(q))

    def remote() -> None:
        r = run_remote(work / "remote", mib=args.remote_mib, log=_log)
        figures.update(remote_noop_read_mib=r.noop_read_mib)
        rows.extend(remote_rows(r))

    for name, fn in (("batch", batch), ("large", large), ("tfx", tfx), ("quota", quota), ("remote", remote)):
        if name in only:
            _log(f"== {name}")
            attempt(name, fn)
    if not args.keep:
        import shutil

        shutil.rmtree(work, ignore_errors=True)

    print()
    width = max(len(k) for k, _ in rows) if rows else 10
    for key, text in rows:
        print(f"{key:<{width}}  {text}")
    print()
    for key in KEYS:
        print(f"{key:<{width}}  {_fmt(figures[key]):>8}  {_verdict(key, figures[key])}")
    print(f"total {time.perf_counter() - started:.0f} s")
    print(" ".join(f"{key}={_fmt(figures[key])}" for key in KEYS), flush=True)
    return 1 if failed else 0


def _log(message: str) -> None:
    print(message, flush=True)


if __name__ == "__main__":
    sys.exit(main())
