"""Benchmark: redeploying a Space whose model lives on s3://, without reading the model again.

A ``weights.bin`` of ``--mib`` MiB (default 1024) is put into a local S3 (moto's server, ``LocalS3``, in a process of
its own, which counts the object bytes it serves) and deployed as the embedded model of one Space, against a local
Hub in another process; then the same Space is deployed again. Measured, as the storage server saw it:

- ``remote_first_read_mib``: MiB of the model served during the first deploy (hashed while rendering, then read
  again to upload it: the LFS batch API wants the sha256 before it hands out the upload URL);
- ``remote_noop_read_mib``: MiB served during the no-op redeploy (goal < 1: the hashes come from the hash cache,
  keyed by the object's ETag), and its wall time (``run_deploy`` only, imports excluded);
- with ``--uncached``, for comparison, the same no-op with ``hash_cache=False``: what every redeploy read before.

moto answers each ranged GET by copying the whole object, so s3fs reads in blocks of 256 MiB here (its default
is 50 MiB; fsspec's configuration, for this process only): that changes how many requests read the model, not how
many bytes. Even so the first deploy's time is mostly the server's, not the deploy's.

The Space is checked after each deploy: one commit, ``model/weights.bin`` with the model's sha256. Run alone with
``python benchmarks/remote.py [--mib N]``; ``benchmarks/run.py --only remote`` runs it beside the others.
"""

from __future__ import annotations

import os

os.environ["HF_HUB_DISABLE_XET"] = "1"  # before huggingface_hub is imported anywhere: the local Hub speaks classic LFS
os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import hashlib  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

from hubproc import HubProcess  # noqa: E402

__all__ = ["RemoteFigures", "run_remote"]

MiB = 1024 * 1024
TOKEN_ENV = "BENCH_HF_TOKEN"
_KEY = "model/weights.bin"


@dataclasses.dataclass
class RemoteFigures:
    size: int
    t_put: float
    first_s: float
    first_read_mib: float
    noop_s: float
    noop_read_mib: float
    noop_commits: int
    uncached_noop_s: float
    uncached_noop_read_mib: float


class S3Process:
    """``LocalS3`` in a child process (so serving the model does not share this interpreter), driven over stdin."""

    def __init__(self):
        self._process = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--serve-s3"],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.environ = dict(line.split("=", 1) for line in self._ask("environ").split())

    def _ask(self, command: str) -> str:
        self._process.stdin.write(command + "\n")
        self._process.stdin.flush()
        answer = self._process.stdout.readline()
        if not answer:
            raise RuntimeError(f"the local S3 process ended (exit status {self._process.poll()})")
        return answer.strip()

    def bytes_served(self, key: str) -> int:
        return int(self._ask(f"served {key}"))

    def reset_counts(self) -> None:
        self._ask("reset")

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.stdin.close()
            self._process.wait(30)


def _serve_s3() -> None:
    from beam_pusher.testing.local_s3 import LocalS3

    with LocalS3() as s3:
        for line in sys.stdin:
            command, _, arg = line.strip().partition(" ")
            if command == "environ":
                answer = " ".join(f"{k}={v}" for k, v in s3.environ.items())
            elif command == "served":
                answer = str(s3.bytes_served(arg))
            else:
                s3.reset_counts()
                answer = "ok"
            print(answer, flush=True)


def _write_model(path: Path, size: int) -> str:
    """A binary file of ``size`` bytes (a random MiB repeated: nothing here compresses); returns its sha256."""
    block = os.urandom(MiB)
    digest = hashlib.sha256()
    with open(path, "wb") as f:
        for offset in range(0, size, MiB):
            chunk = block[: min(MiB, size - offset)]
            f.write(chunk)
            digest.update(chunk)
    return digest.hexdigest()


def _deploy(spec, hub: HubProcess, cache: str | bool) -> tuple[float, object]:
    from beam_pusher.runner import run_deploy

    started = time.perf_counter()
    (result,) = run_deploy([spec], endpoint=hub.endpoint, token=f"env:{TOKEN_ENV}", hash_cache=cache)
    elapsed = time.perf_counter() - started
    if result.error:
        raise RuntimeError(f"deploy failed: {result.error}")
    return elapsed, result


def _check(hub: HubProcess, repo_id: str, sha256: str, commits: int | None) -> int:
    """Checks the Space holds the model, and (after the first deploy) no more commits than ``commits``."""
    from huggingface_hub import HfApi

    api = HfApi(endpoint=hub.endpoint, token=hub.token)
    (info,) = api.get_paths_info(repo_id, [_KEY], repo_type="space")
    found = hub.call("commit_count", repo_id)
    if info.lfs is None or info.lfs.sha256 != sha256 or (commits is not None and found != commits):
        raise RuntimeError(f"{repo_id}: expected {_KEY} with sha256 {sha256} and {commits} commits; found {info} "
                           f"and {found} commits")
    return found


def run_remote(work: Path, *, mib: int = 1024, uncached: bool = False,
               log: Callable[[str], None] = print) -> RemoteFigures:
    """Deploys a Space whose ``mib`` MiB model is on s3://, then redeploys it; with ``uncached``, once more without
    the hash cache (NaN figures otherwise)."""
    import boto3
    import fsspec.config
    from boto3.s3.transfer import TransferConfig

    from beam_pusher.spec import SpaceSpec

    work.mkdir(parents=True, exist_ok=True)
    size = mib * MiB
    template = work / "tpl"
    template.mkdir(exist_ok=True)
    (template / "app.py").write_text("import gradio\n")
    (template / "requirements.txt").write_text("gradio==4.44.1\n")
    model = work / "weights.bin"
    sha256 = _write_model(model, size)
    s3 = S3Process()
    saved = {name: os.environ.get(name) for name in (*s3.environ, TOKEN_ENV, "AWS_PROFILE")}
    try:
        os.environ.update(s3.environ)
        os.environ.pop("AWS_PROFILE", None)
        fsspec.config.conf.setdefault("s3", {})["default_block_size"] = 256 * MiB
        started = time.perf_counter()
        parts = TransferConfig(multipart_chunksize=128 * MiB)  # moto joins parts slowly: few large ones
        boto3.client("s3", endpoint_url=s3.environ["AWS_ENDPOINT_URL_S3"]).upload_file(str(model), "bucket", _KEY,
                                                                                       Config=parts)
        t_put = time.perf_counter() - started
        model.unlink()
        log(f"remote: {mib} MiB model put into the local S3 in {t_put:.1f} s")
        with HubProcess() as hub:
            os.environ[TOKEN_ENV] = hub.token
            spec = SpaceSpec(repo_id=f"{hub.user}/remote-model", app_path=str(template),
                             model_path="s3://bucket/model")
            cache = str(work / "hashes")
            runs, commits = [], None
            plan = [("first deploy", cache), ("no-op", cache)] + ([("no-op without cache", False)] if uncached else [])
            for what, setting in plan:
                s3.reset_counts()
                elapsed, result = _deploy(spec, hub, setting)
                read = s3.bytes_served(_KEY) / MiB
                runs.append((elapsed, read, result))
                commits = _check(hub, spec.repo_id, sha256, commits)
                log(f"remote: {what}: {elapsed:.1f} s, {read:.1f} MiB of the model read, "
                    f"{'committed' if result.committed else 'no commit'}")
    finally:
        s3.stop()
        fsspec.config.conf.get("s3", {}).pop("default_block_size", None)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    (first_s, first_read, _), (noop_s, noop_read, noop) = runs[:2]
    plain_s, plain_read, _ = runs[2] if uncached else (float("nan"), float("nan"), None)
    return RemoteFigures(size, t_put, first_s, first_read, noop_s, noop_read, int(noop.committed), plain_s,
                         plain_read)


def rows(f: RemoteFigures) -> list[tuple[str, str]]:
    """Table rows for ``benchmarks/run.py``."""
    out = [
        (f"remote model: {f.size // MiB} MiB on s3:// (local moto server)",
         f"first deploy {f.first_s:.1f} s, {f.first_read_mib:.0f} MiB read (hash, then upload)"),
        ("  no-op redeploy (hash cache)",
         f"{f.noop_s:.1f} s, {f.noop_read_mib:.2f} MiB of the model read, {f.noop_commits} commits"),
    ]
    if f.uncached_noop_read_mib == f.uncached_noop_read_mib:  # measured (not NaN)
        out.append(("  no-op redeploy, hash_cache=False",
                    f"{f.uncached_noop_s:.1f} s, {f.uncached_noop_read_mib:.0f} MiB read"))
    return out


def main(argv: list[str] | None = None) -> int:
    if argv is None and sys.argv[1:] == ["--serve-s3"]:
        _serve_s3()
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=1024, help="model size in MiB (default 1024)")
    parser.add_argument("--uncached", action="store_true", help="also redeploy with hash_cache=False, for comparison")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="beam-pusher-remote-") as work:
        f = run_remote(Path(work), mib=args.mib, uncached=args.uncached)
    for key, text in rows(f):
        print(f"{key:<45}  {text}")
    print(f"remote_noop_read_mib={f.noop_read_mib:.3g} remote_noop_s={f.noop_s:.2f} "
          f"remote_first_read_mib={f.first_read_mib:.0f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
