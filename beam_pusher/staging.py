"""Staging the running beam_pusher for remote workers, so they unpickle the pipeline's DoFns with the same code.

A remote runner's workers (Dataflow, Flink, Spark) start from a container that has Beam but not beam_pusher. Unless
the user chose how workers get it (``--setup_file``, ``--extra_package``, ``--sdk_container_image``), the package
this process imported is packed as a wheel -- the package folder as it is, built-in apps included, with the installed
distribution's metadata (name, version, requirements) -- and passed as ``--extra_package``; Beam stages it and the
workers ``pip install`` it. Packing the imported folder needs no build backend and no network, and works the same
from an editable checkout (the checkout's files, local changes included) and from an installed wheel.

The wheel is built once per process into a private temporary folder, removed when the process exits.
"""

from __future__ import annotations

import atexit
import base64
import functools
import hashlib
import logging
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import beam_pusher
from beam_pusher.errors import SpecError

if TYPE_CHECKING:
    from apache_beam.options.pipeline_options import PipelineOptions

__all__ = ["DISTRIBUTION", "build_wheel", "stage_package", "staging_choice"]

logger = logging.getLogger(__name__)

DISTRIBUTION = "beam-pusher"
"""The distribution name the package is installed under."""

# TFX's Beam executors stage TFX itself as ``tfx_ephemeral-<version>.tar.gz`` when the user chose nothing: that is
# TFX's staging, not the user's choice of how workers get beam_pusher.
_TFX_EPHEMERAL = "tfx_ephemeral-"
_SKIPPED_DIRS = frozenset({"__pycache__"})
_SKIPPED_SUFFIXES = (".pyc", ".pyo")
_WHEEL_TAG = "py3-none-any"


def staging_choice(options: PipelineOptions) -> str | None:
    """The user's own way of giving workers beam_pusher (``--setup_file x``), or None when they gave none."""
    from apache_beam.options.pipeline_options import SetupOptions, WorkerOptions

    setup = options.view_as(SetupOptions)
    worker = options.view_as(WorkerOptions)
    packages = [p for p in setup.extra_packages or () if not os.path.basename(p).startswith(_TFX_EPHEMERAL)]
    for flag, value in (
        ("--setup_file", setup.setup_file),
        ("--extra_package", packages),
        ("--sdk_container_image", worker.sdk_container_image),
    ):
        if value:
            return f"{flag} {value if isinstance(value, str) else ' '.join(value)}"
    return None


def stage_package(options: PipelineOptions) -> str | None:
    """Adds the running beam_pusher as ``--extra_package`` when the runner is remote and the user chose nothing.

    Changes ``options`` in place (Beam's option views share one dict) and says in one log line what was staged.
    The ``tfx_ephemeral`` package that TFX's executors add for TFX itself is kept, and is no choice of the user's.

    Args:
      options: The pipeline's options; local runners and options that already say how workers get beam_pusher are
        left as they are.

    Returns:
      The staged wheel's path, or None when nothing was staged.

    Raises:
      SpecError: beam_pusher is not installed as a distribution, so its requirements are unknown.

    Example::

        options = PipelineOptions(["--runner=DataflowRunner", "--project=p", "--temp_location=gs://b/tmp"])
        stage_package(options)  # options now carry --extra_package=/tmp/.../beam_pusher-0.1.0-py3-none-any.whl
    """
    from apache_beam.options.pipeline_options import SetupOptions, StandardOptions

    from beam_pusher.runner import runner_kind

    if runner_kind(options.view_as(StandardOptions).runner).is_local:
        return None
    chosen = staging_choice(options)
    if chosen:
        logger.info("Workers get beam_pusher from %s; nothing else is staged.", chosen)
        return None
    wheel = _cached_wheel()
    setup = options.view_as(SetupOptions)
    setup.extra_packages = [*(setup.extra_packages or ()), wheel]  # after TFX's own package, if any
    logger.info(
        "Staging %s (beam_pusher from %s) for the workers; pass --sdk_container_image, --setup_file or "
        "--extra_package to choose otherwise.", os.path.basename(wheel), _package_dir(),
    )
    return wheel


@functools.lru_cache(maxsize=1)
def _cached_wheel() -> str:
    folder = tempfile.mkdtemp(prefix="beam-pusher-staging-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return build_wheel(folder)


def _package_dir() -> Path:
    return Path(beam_pusher.__file__).resolve().parent


def _package_files(root: Path) -> Iterator[tuple[Path, str]]:
    """(file, path inside the wheel) for every file of the package folder, sorted, without bytecode caches."""
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in _SKIPPED_DIRS and not d.startswith("."))
        for name in sorted(files):
            if not name.endswith(_SKIPPED_SUFFIXES):
                path = Path(folder) / name
                yield path, f"{root.name}/{path.relative_to(root).as_posix()}"


def _distribution() -> metadata.Distribution:
    try:
        return metadata.distribution(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        raise SpecError(
            f"beam_pusher is imported from {_package_dir()} but not installed, so its requirements are unknown and "
            "it cannot be staged for remote workers; pip install it (pip install -e . in a checkout), or pass "
            "--setup_file, --extra_package or --sdk_container_image."
        ) from None


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def _metadata_files(dist: metadata.Distribution, version: str) -> dict[str, bytes]:
    """The ``.dist-info`` files of the wheel: METADATA from the installed distribution's, at ``version``.

    Read through ``importlib.metadata`` (``dist.metadata``, ``dist.requires``), so an ``.egg-info`` of a checkout
    serves as well as an installed ``.dist-info``.
    """
    info = dist.metadata
    lines = ["Metadata-Version: 2.1", f"Name: {info['Name'] or DISTRIBUTION}", f"Version: {version}"]
    for field in ("Summary", "License", "Requires-Python"):
        if info[field]:
            lines.append(f"{field}: {info[field]}")
    lines += [f"Provides-Extra: {extra}" for extra in info.get_all("Provides-Extra") or ()]
    lines += [f"Requires-Dist: {requirement}" for requirement in dist.requires or ()]
    files = {
        "METADATA": ("\n".join(lines) + "\n").encode(),
        "WHEEL": f"Wheel-Version: 1.0\nGenerator: beam_pusher.staging\nRoot-Is-Purelib: true\nTag: {_WHEEL_TAG}\n"
        .encode(),
    }
    entry_points = dist.read_text("entry_points.txt")
    if entry_points:
        files["entry_points.txt"] = entry_points.encode()
    return files


def build_wheel(folder: str | os.PathLike) -> str:
    """Packs the imported beam_pusher package as a wheel in ``folder``; returns the wheel's path.

    The version is the running ``beam_pusher.__version__``; name and requirements come from the installed
    distribution's metadata, so ``pip install`` on a worker brings the same dependencies the launcher has.

    Raises:
      SpecError: beam_pusher is not installed as a distribution.
    """
    dist = _distribution()
    version = beam_pusher.__version__
    stem = f"{DISTRIBUTION.replace('-', '_')}-{version}"
    path = Path(folder) / f"{stem}-{_WHEEL_TAG}.whl"
    record = []
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as wheel:
        for source, name in _package_files(_package_dir()):
            data = source.read_bytes()
            wheel.writestr(name, data)
            record.append(_record_line(name, data))
        for name, data in _metadata_files(dist, version).items():
            wheel.writestr(f"{stem}.dist-info/{name}", data)
            record.append(_record_line(f"{stem}.dist-info/{name}", data))
        record.append(f"{stem}.dist-info/RECORD,,")
        wheel.writestr(f"{stem}.dist-info/RECORD", "\n".join(record) + "\n")
    logger.debug("Built %s from %s (%s files)", path, _package_dir(), len(record))
    return str(path)
