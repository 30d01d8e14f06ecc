"""Runs a staged Dataflow job the way its workers would, on this machine: proof that a worker has what it needs.

A Dataflow worker starts from Beam's container, downloads what the launcher staged, ``pip install``s the staged
packages and runs the pipeline's DoFns, unpickled from the staged graph. This does the same offline::

    python beam_pusher/testing/dataflow_worker.py gs://bucket/staging --install   # STORAGE_EMULATOR_HOST=...

1. ``download_job``: the job's staged files (``pipeline.pb``, ``extra_packages.txt`` and the packages it names)
   from the staging location, through google-cloud-storage (a local emulator with ``STORAGE_EMULATOR_HOST``);
2. ``install_packages`` (``--install``): ``pip install`` of each staged package, as the worker's boot does;
3. ``run_job``: the pipeline proto on Beam's FnApiRunner in this process, every environment made embedded.

It imports nothing of beam_pusher, so it runs as a file in an environment that has only Beam (with its ``gcp``
extra, as Dataflow's container has) until the staged packages are installed.
"""

from __future__ import annotations

import argparse
import importlib
import os
import subprocess
import sys
from pathlib import Path

__all__ = ["download_job", "install_packages", "main", "run_job"]

PIPELINE_FILE = "pipeline.pb"
PACKAGES_FILE = "extra_packages.txt"


def _split(url: str) -> tuple[str, str]:
    if not url.startswith("gs://"):
        raise ValueError(f"{url!r} is not a gs:// staging location")
    bucket, _, prefix = url[len("gs://") :].partition("/")
    return bucket, prefix.strip("/")


def download_job(staging_location: str, folder: str | os.PathLike) -> Path:
    """Downloads the one job staged under ``staging_location`` into ``folder``; returns the folder.

    Raises:
      LookupError: No job, or more than one, is staged there.
    """
    from google.cloud import storage

    bucket_name, prefix = _split(staging_location)
    client = storage.Client.create_anonymous_client()  # the emulator needs no credentials; GCS would
    blobs = list(client.list_blobs(bucket_name, prefix=f"{prefix}/" if prefix else None))
    jobs = {b.name.rsplit("/", 1)[0] for b in blobs if b.name.endswith("/" + PIPELINE_FILE)}
    if len(jobs) != 1:
        raise LookupError(f"expected one staged job under {staging_location}, found {sorted(jobs)}")
    job = jobs.pop()
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    for blob in blobs:
        if blob.name.rsplit("/", 1)[0] == job:
            blob.download_to_filename(str(target / blob.name.rsplit("/", 1)[1]))
    return target


def install_packages(folder: str | os.PathLike) -> list[str]:
    """``pip install``s the packages ``extra_packages.txt`` names, from ``folder``; returns their file names."""
    listing = Path(folder) / PACKAGES_FILE
    names = [line.strip() for line in listing.read_text().splitlines() if line.strip()] if listing.exists() else []
    if names:
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", *(str(Path(folder) / n) for n in names)], check=True
        )
        importlib.invalidate_caches()  # this process imports them next; its finders may have listed site-packages
    return names


def run_job(folder: str | os.PathLike, pipeline_args: list[str] | None = None):
    """Runs the staged ``pipeline.pb`` of ``folder`` on FnApiRunner in this process; returns the PipelineResult."""
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.portability import python_urns
    from apache_beam.portability.api import beam_runner_api_pb2
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner

    proto = beam_runner_api_pb2.Pipeline.FromString((Path(folder) / PIPELINE_FILE).read_bytes())
    for environment in proto.components.environments.values():
        # Dataflow's environment is a Docker image with the staged artifacts; here, this very interpreter.
        environment.CopyFrom(
            beam_runner_api_pb2.Environment(urn=python_urns.EMBEDDED_PYTHON, capabilities=environment.capabilities)
        )
    result = FnApiRunner().run_via_runner_api(proto, PipelineOptions(pipeline_args or []))
    result.wait_until_finish()
    return result


def main(argv: list[str] | None = None) -> int:
    """Downloads, (with ``--install``) installs and runs the job staged under a staging location."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("staging_location", help="the job's --staging_location, gs://bucket/path")
    parser.add_argument("--folder", default="staged-job", help="where to download the job's files")
    parser.add_argument("--install", action="store_true", help="pip install the staged packages first")
    args = parser.parse_args(argv)
    folder = download_job(args.staging_location, args.folder)
    if args.install:
        print(f"installed {', '.join(install_packages(folder)) or 'nothing'}", flush=True)
    result = run_job(folder)
    print(f"job finished: {result.state}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
