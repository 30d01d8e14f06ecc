"""Repeats no-op redeploys and fails on the first one that changes a Space (a lost file shows up as a deletion).

Not part of ``make bench``: a tool to reproduce, and to check a fix for, a redeploy that deleted a file it should have
kept (seen once in a no-op redeploy of the batch benchmark's 50 Spaces under load). Each round runs
``python -m beam_pusher deploy`` as a user would, then checks every Space's commit count on the server::

    python benchmarks/redeploy_stress.py --spaces 50 --rounds 10 [beam flags, e.g. --direct_num_workers=8]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_DISABLE_XET", "1")

from dataset import make_dataset, write_config  # noqa: E402
from hubproc import HubProcess  # noqa: E402

TOKEN_ENV = "BENCH_HF_TOKEN"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spaces", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--latency", type=float, default=0.1)
    args, beam_args = parser.parse_known_args(argv)
    with tempfile.TemporaryDirectory(prefix="redeploy-stress-") as tmp, HubProcess(latency=args.latency) as hub:
        ds = make_dataset(Path(tmp) / "data", args.spaces, hub.user)
        config = write_config(Path(tmp) / "spaces.yaml", ds.specs)
        env = dict(os.environ, **{TOKEN_ENV: hub.token, "PYTHONWARNINGS": "ignore::FutureWarning"})
        command = [sys.executable, "-m", "beam_pusher", "deploy", str(config), "--endpoint", hub.endpoint,
                   "--token-env", TOKEN_ENV, *beam_args]
        for round_ in range(args.rounds + 1):
            before = {s.repo_id: hub.call("commit_count", s.repo_id) for s in ds.specs} if round_ else {}
            start = time.perf_counter()
            proc = subprocess.run(command, env=env, capture_output=True, text=True)
            summary = next((l for l in proc.stdout.splitlines() if " Spaces: " in l), proc.stderr[-500:])
            print(f"round {round_} ({'first deploy' if not round_ else 'no-op'}): {time.perf_counter() - start:.1f} s; "
                  f"{summary}", flush=True)
            if proc.returncode != 0:
                print("\n".join(l for l in proc.stdout.splitlines() if "✗" in l or "↳" in l), flush=True)
                return 1
            if not round_:
                trees = {s.repo_id: set(hub.call("list_files", s.repo_id)) for s in ds.specs}
            changed = [r for r, n in before.items() if hub.call("commit_count", r) != n]
            for repo_id in changed:
                now = set(hub.call("list_files", repo_id))
                print(f"  {repo_id}: the no-op redeploy committed: lost {sorted(trees[repo_id] - now)}, "
                      f"gained {sorted(now - trees[repo_id])}", flush=True)
            if changed:
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
