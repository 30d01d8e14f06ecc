"""Benchmark 5: a fleet deploy under the Hub's request quota, ``beam-pusher deploy`` against an ``upload_folder`` loop.

The Hub's free tier allows 1,000 API requests per 5 minutes; here the window is scaled down 30 times (1,000 per
10 s) so that a fleet of Spaces spends several windows in a benchmark of a minute or two. Each side deploys its own
Spaces to a local Hub of its own (a process, ``hubproc.HubProcess``) that enforces that policy, then deploys them
again unchanged. Reported per side: API requests per Space (first deploy and no-op; git, download and LFS transfer
requests are not API requests and are not counted, as on the Hub), the 429s the Hub answered, and the wall time
against the quota-bound minimum (requests / quota rate). Every Space is checked afterwards: exactly its files, one
commit after its creation.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

from batch import TOKEN_ENV, _child_env, _timed, expected_tree
from hubproc import HubProcess

__all__ = ["QuotaFigures", "run_quota"]

HERE = Path(__file__).resolve().parent
POLICY = (1000, 10)  # the free tier's 1,000 requests, per 300 s / 30
_UNCOUNTED = frozenset({"git", "resolve", "lfs-upload", "lfs-download"})  # as beam_pusher.localhub.ratelimit


@dataclasses.dataclass
class SideFigures:
    """One side's first deploy and no-op redeploy."""

    seconds: float
    requests: int
    refused: int
    noop_seconds: float
    noop_requests: int
    noop_refused: int

    def quota_bound(self, requests: int) -> float:
        return requests / (POLICY[0] / POLICY[1])


@dataclasses.dataclass
class QuotaFigures:
    spaces: int
    beam: SideFigures
    loop: SideFigures


def _template(root: Path) -> Path:
    tpl = root / "template"
    tpl.mkdir(parents=True, exist_ok=True)
    (tpl / "index.html").write_text("<!doctype html>\n<h1>${TITLE}</h1>\n<script src='app.js'></script>\n")
    (tpl / "app.js").write_text("document.title = document.querySelector('h1').textContent;\n")
    (tpl / "style.css").write_text("h1 { font-family: sans-serif; }\n")
    return tpl


def _counted(counts: dict[str, int]) -> int:
    return sum(n for route, n in counts.items() if route not in _UNCOUNTED)


def _check(hub: HubProcess, repo_id: str, expected: dict[str, tuple[int, str, str]]) -> list[str]:
    """Differences between the Space's files and ``expected``; README.md (the Hub's on creation, or beam-pusher's
    with front matter) and .gitattributes aside."""
    stored = {p: f for p, f in hub.call("list_files", repo_id).items() if p not in {"README.md", ".gitattributes"}}
    if set(stored) != set(expected):
        return [f"{repo_id}: holds {sorted(stored)}, expected {sorted(expected)}"]
    return [f"{repo_id}: {p} differs" for p, (size, _, sha1) in expected.items()
            if stored[p].blob_id != sha1 or stored[p].size != size]


def _run(name: str, cmd: list[str], hub: HubProcess, expected: dict[str, dict], workdir: Path, log) -> SideFigures:
    figures: dict[str, Any] = {}
    for phase in ("first", "noop"):
        before, refused = _counted(hub.call("request_counts")), hub.call("quota_refusals")["api"]
        seconds, _, _ = _timed(cmd, _child_env(hub), workdir / f"{name}-{phase}.log")
        requests = _counted(hub.call("request_counts")) - before
        refused = hub.call("quota_refusals")["api"] - refused
        log(f"  {name} {phase}: {seconds:.1f} s, {requests} API requests, {refused} answered 429")
        problems = [p for repo_id, tree in expected.items() for p in _check(hub, repo_id, tree)]
        problems += [f"{r}: {n} commits, expected 2 (creation + deploy)" for r in expected
                     if (n := hub.call("commit_count", r)) != 2]
        assert not problems, f"{name} {phase} deploy left wrong Spaces:\n" + "\n".join(problems[:20])
        figures[phase] = (seconds, requests, refused)
    return SideFigures(*figures["first"], *figures["noop"])


def run_quota(workdir: Path, *, n_spaces: int = 200, log=print) -> QuotaFigures:
    """Runs the quota benchmark in ``workdir``; raises AssertionError when a Space ends in the wrong state."""
    workdir.mkdir(parents=True, exist_ok=True)
    tpl = _template(workdir)
    names = [f"quota-{i:03d}" for i in range(n_spaces)]
    spaces = [{"repo_id": f"user/{n}", "app_path": str(tpl), "space_sdk": "static",
               "placeholders": {"TITLE": f"Space {n}"}} for n in names]
    config = workdir / "spaces.yaml"
    config.write_text(json.dumps({"spaces": spaces}))  # JSON is YAML
    jobs, expected_loop = [], {}
    for n in names:  # the loop uploads what a user would render by hand: the same pages, title filled in
        folder = workdir / "rendered" / n
        folder.mkdir(parents=True)
        for f in tpl.iterdir():
            (folder / f.name).write_text(f.read_text().replace("${TITLE}", f"Space {n}"))
        jobs.append([f"user/{n}", str(folder)])
        expected_loop[f"user/{n}"] = expected_tree(folder)
    (workdir / "jobs.json").write_text(json.dumps(jobs))
    policy = f"{POLICY[0]}/{POLICY[1]}"
    log(f"quota: {n_spaces} Spaces, {policy} API requests per token and window (the free tier's, 30 times faster)")
    with HubProcess(rate_limit=policy) as hub:
        loop = _run("loop", [sys.executable, str(HERE / "loop_upload.py"), str(workdir / "jobs.json"), hub.endpoint,
                             TOKEN_ENV], hub, expected_loop, workdir, log)
    with HubProcess(rate_limit=policy) as hub:
        cmd = [sys.executable, "-m", "beam_pusher", "deploy", str(config), "--endpoint", hub.endpoint, "--token-env",
               TOKEN_ENV]
        beam = _run("beam_pusher", cmd, hub, expected_loop, workdir, log)
    return QuotaFigures(n_spaces, beam, loop)


def rows(q: QuotaFigures) -> list[tuple[str, str]]:
    """The benchmark's lines for ``run.py``'s table."""
    out = [(f"quota: {q.spaces} Spaces, {POLICY[0]} requests / {POLICY[1]} s",
            "beam-pusher deploy vs upload_folder loop")]
    for label, side in (("  beam-pusher", q.beam), ("  upload_folder loop", q.loop)):
        out.append((label, f"first {side.requests / q.spaces:.1f} req/Space, {side.refused} x 429, "
                           f"{side.seconds:.1f} s vs quota-bound {side.quota_bound(side.requests):.1f} s; no-op "
                           f"{side.noop_requests / q.spaces:.1f} req/Space, {side.noop_refused} x 429, "
                           f"{side.noop_seconds:.1f} s"))
    return out


if __name__ == "__main__":
    import argparse
    import tempfile

    parser = argparse.ArgumentParser(description="Benchmark 5 alone (make bench runs it with the others).")
    parser.add_argument("--spaces", type=int, default=200)
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-quota-") as tmp:
        figures = run_quota(Path(tmp), n_spaces=args.spaces)
    for key, text in rows(figures):
        print(f"{key:<40}  {text}")
    print(f"total {time.perf_counter() - started:.0f} s")
