"""A Python environment made from Spaces' requirements.txt files, as the Hub builds one for each Space.

The local Hub's Spaces runtime (``LocalHub(run_spaces=True)``) and the tests that run the built-in apps use it. The
apps cannot run in the deployer's own virtualenv (gradio and streamlit need a protobuf that TFX's TensorFlow cannot
import beside), and a Space never runs in the deployer's environment anyway: a virtualenv of its own is made, the
requirements are ``pip install``-ed into it from the package index, and the app runs there in a subprocess.

Building one costs minutes (TensorFlow alone is a ~250 MB wheel), so environments are cached outside the
repository, under ``$BEAM_PUSHER_CACHE`` or ``~/.cache/beam-pusher``, as ``space-env-<key>``, where the key hashes the
interpreter's version and the normalized union of the requirement lines. A folder is used only once its
``.complete`` marker exists (written last), and builds take a file lock, so an interrupted or concurrent build never
yields a half-made environment. pip's own cache makes a rebuild after a requirement change cheaper.
``find_satisfying_env`` finds a cached environment in which every requirement of a Space is already installed
(``pip install`` would install nothing), so the Spaces made from the built-in apps all reuse the one environment
``builtin_apps_env`` builds for their union.

The interpreter is the base Python behind the one running (the virtualenv's ``home``): it exists wherever the
project's venv was made, and it is Python 3.10 under ``make setup``, which is also the Hub's default for Spaces.
``$BEAM_PUSHER_SPACE_PYTHON`` overrides it.
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

__all__ = [
    "BUILTIN_EXTRA",
    "SpaceEnv",
    "SpaceEnvError",
    "base_python",
    "builtin_apps_env",
    "builtin_requirement_files",
    "cache_root",
    "ensure_space_env",
    "env_key",
    "find_satisfying_env",
    "normalize_requirement_lines",
    "requirement_lines",
]

logger = logging.getLogger(__name__)

MARKER = ".complete"
BUILD_TIMEOUT = 1800  # seconds for one pip install; a cold TensorFlow download on a slow link fits
OUTPUT_TAIL = 12_000  # characters of pip's output kept in an error message

BUILTIN_EXTRA = ("gradio_client",)  # what the apps' test drivers need beyond the Spaces' own requirements
BUILTIN_CHECK_IMPORTS = ("gradio", "gradio_client", "streamlit", "streamlit.testing.v1", "tensorflow", "PIL",
                         "huggingface_hub")
OutputSink = Callable[[str], None]
ProcessSink = Callable[[subprocess.Popen], None]

# Variables of the parent process that would make the child Python or pip look at the wrong environment.
_LEAKY_VARIABLES = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PIP_REQUIRE_VIRTUALENV", "PIP_USER", "PIP_TARGET")


class SpaceEnvError(RuntimeError):
    """The Space environment could not be built; ``output`` holds what pip (or the check) printed."""

    def __init__(self, message: str, output: str = "") -> None:
        super().__init__(f"{message}\n--- output (last {OUTPUT_TAIL} characters) ---\n{output[-OUTPUT_TAIL:]}")
        self.output = output


@dataclasses.dataclass(frozen=True)
class SpaceEnv:
    """A built Space environment.

    Attributes:
      path: The virtualenv's folder.
      python: Its interpreter, to run ``python app.py`` or a driver script with.
      requirements: The normalized requirement lines it was built from (sorted).
      versions: Distribution name -> installed version of the packages the apps import.
      build_seconds: How long this call spent building it (0.0 when it came from the cache).
    """

    path: Path
    python: Path
    requirements: tuple[str, ...]
    versions: dict[str, str]
    build_seconds: float

    def child_env(self, **overrides: str) -> dict[str, str]:
        """Variables for a subprocess in this env: no leaked PYTHONPATH/VIRTUAL_ENV, the env's bin first on PATH."""
        env = {k: v for k, v in os.environ.items() if k not in _LEAKY_VARIABLES}
        env["PATH"] = f"{self.path / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        env["VIRTUAL_ENV"] = str(self.path)
        env.update(overrides)
        return env


def requirement_lines(files: Iterable[os.PathLike | str]) -> tuple[str, ...]:
    """The union of the requirement lines in ``files``, without comments or blank lines, sorted and deduplicated.

    Whitespace inside a line is dropped and names are lower-cased with ``_`` as ``-`` so that ``huggingface_hub`` and
    ``huggingface-hub`` key the same environment. Options (``-r``, ``--index-url``) are refused: a Space's file holds
    plain requirements, and an include would hide what the key covers.
    """
    out: set[str] = set()
    for file in files:
        out.update(normalize_requirement_lines(Path(file).read_text(encoding="utf-8").splitlines(), str(file)))
    return tuple(sorted(out))


def normalize_requirement_lines(lines: Iterable[str], source: str) -> tuple[str, ...]:
    """``requirement_lines`` for the lines of one file named ``source`` (in the error for an option line)."""
    out = set()
    for raw in lines:
        line = raw.split(" #", 1)[0].strip() if not raw.lstrip().startswith("#") else ""
        if not line:
            continue
        if line.startswith("-"):
            raise SpaceEnvError(f"{source}: option line {line!r} is not supported in a Space's requirements here: "
                                "list plain requirements, one a line")
        line = re.sub(r"\s+", "", line)
        name = re.match(r"[A-Za-z0-9._-]+", line)
        if name:
            line = re.sub(r"[-_.]+", "-", name.group(0)).lower() + line[name.end() :]
        out.add(line)
    return tuple(sorted(out))


def base_python() -> Path:
    """The interpreter a Space env is made with: ``$BEAM_PUSHER_SPACE_PYTHON``, else the base Python of this one."""
    override = os.environ.get("BEAM_PUSHER_SPACE_PYTHON")
    if override:
        found = shutil.which(override)
        if not found:
            raise SpaceEnvError(
                f"BEAM_PUSHER_SPACE_PYTHON={override!r} is not an executable; give a path to python3.x."
            )
        return Path(found)
    major, minor = sys.version_info[:2]
    for name in (f"python{major}.{minor}", f"python{major}", "python"):
        candidate = Path(sys.base_prefix) / "bin" / name
        if candidate.exists():
            return candidate
    return Path(sys.executable)  # a venv's python can make another venv too (its pyvenv.cfg points at the base)


def _python_tag(python: Path) -> str:
    out = subprocess.run(
        [str(python), "-c", "import platform, sys; print(sys.implementation.name, platform.python_version(), "
         "platform.machine())"],
        capture_output=True, text=True, check=False, timeout=60,
    )
    if out.returncode != 0:
        raise SpaceEnvError(f"{python} does not run", out.stdout + out.stderr)
    return out.stdout.strip()


def cache_root() -> Path:
    """Where Space envs live: ``$BEAM_PUSHER_CACHE`` or ``$XDG_CACHE_HOME/beam-pusher`` (``~/.cache/beam-pusher``)."""
    root = os.environ.get("BEAM_PUSHER_CACHE")
    if root:
        return Path(root)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "beam-pusher"


def env_key(requirements: Sequence[str], python_tag: str) -> str:
    """A short hash of what decides an environment's content: the interpreter and the requirement lines."""
    text = json.dumps({"python": python_tag, "requirements": sorted(requirements)}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _run(cmd: list[str], *, env: dict[str, str], log: Path, timeout: float, on_output: OutputSink | None = None,
         on_process: ProcessSink | None = None) -> None:
    """Runs a build step, appending its output to ``log``; raises SpaceEnvError with that output when it fails.

    Each output line is also given to ``on_output`` as it comes (the Spaces runtime's build log), and the process
    to ``on_process`` (so a newer build or the Hub's stop can end it); it runs in a process group of its own.
    """
    deadline = time.monotonic() + timeout
    with log.open("a", encoding="utf-8") as f:
        f.write(f"$ {' '.join(cmd)}\n")
        f.flush()
        if on_output is not None:
            on_output(f"$ {' '.join(cmd)}")
        process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True,
                                   errors="replace", start_new_session=True)
        if on_process is not None:
            on_process(process)
        assert process.stdout is not None
        timed_out = False
        for line in process.stdout:  # pip prints a line at least every few seconds while it downloads
            f.write(line)
            if on_output is not None:
                on_output(line.rstrip("\n"))
            if time.monotonic() > deadline:
                timed_out = True
                process.kill()
                break
        returncode = process.wait()
        if timed_out:
            f.write(f"\n(timed out after {timeout:.0f} s)\n")
    if timed_out or returncode != 0:
        output = log.read_text(encoding="utf-8", errors="replace")
        raise SpaceEnvError(f"building the Space environment failed at: {' '.join(cmd)} (log: {log})", output)


_CHECK = """
import importlib, importlib.metadata as md, json, sys
for module in sys.argv[2:]:
    importlib.import_module(module)
names = sys.argv[1].split(",")
print(json.dumps({n: md.version(n) for n in names if n}))
"""


def ensure_space_env(
    requirement_files: Sequence[os.PathLike | str],
    *,
    extra: Sequence[str] = (),
    check_imports: Sequence[str] = (),
    report: Sequence[str] = (),
    root: os.PathLike | str | None = None,
    python: os.PathLike | str | None = None,
    on_output: OutputSink | None = None,
    on_process: ProcessSink | None = None,
) -> SpaceEnv:
    """Returns the Space environment for these requirements, building it first unless a complete one is cached.

    Args:
      requirement_files: The Spaces' requirements.txt files; their union is installed in one ``pip install``.
      extra: More requirement lines (e.g. ``gradio_client`` for the test driver); part of the key.
      check_imports: Modules that must import after a build; a failure is a SpaceEnvError with the traceback, and
        the env is rebuilt on the next call.
      report: Distributions whose installed versions are returned in ``SpaceEnv.versions``.
      root: The cache folder (default ``cache_root()``).
      python: The interpreter to make the venv with (default ``base_python()``).
      on_output: Called with each line the build prints, as it prints it.
      on_process: Called with each build process when it starts (it runs in a process group of its own).

    Raises:
      SpaceEnvError: venv creation, pip or the import check failed; the message ends with the output.
    """
    python = Path(python) if python else base_python()
    lines = tuple(sorted(set(requirement_lines(requirement_files)) | set(extra)))
    key = env_key(lines, _python_tag(python))
    root = Path(root) if root else cache_root()
    root.mkdir(parents=True, exist_ok=True)
    path = root / f"space-env-{key}"
    env_python = path / "bin" / "python"
    with (root / f"space-env-{key}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another test process may be building the same env
        started = time.monotonic()
        built = False
        if not (path / MARKER).exists():
            _build(path, python, lines, on_output, on_process)
            built = True
        # Importing gradio and TensorFlow takes many seconds, so a reused env is only asked for its versions.
        versions = _check(path, env_python, check_imports if built else (), report)
        seconds = time.monotonic() - started if built else 0.0
        logger.info("Space env %s %s in %.1f s", path, "built" if built else "reused", seconds)
    return SpaceEnv(path, env_python, lines, versions, seconds)


def _build(path: Path, python: Path, lines: tuple[str, ...], on_output: OutputSink | None,
           on_process: ProcessSink | None) -> None:
    if path.exists():
        shutil.rmtree(path)  # an interrupted build: no marker, so nothing in it can be trusted
    path.parent.mkdir(parents=True, exist_ok=True)
    log = path.parent / f"{path.name}.log"
    log.write_text("", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in _LEAKY_VARIABLES}
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    hooks = {"on_output": on_output, "on_process": on_process}
    _run([str(python), "-m", "venv", str(path)], env=env, log=log, timeout=300, **hooks)
    requirements = path / "space-requirements.txt"
    requirements.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    pip = [str(path / "bin" / "python"), "-m", "pip"]
    _run([*pip, "install", "--upgrade", "pip"], env=env, log=log, timeout=BUILD_TIMEOUT, **hooks)
    _run([*pip, "install", "--progress-bar", "off", "-r", str(requirements)], env=env, log=log, timeout=BUILD_TIMEOUT,
         **hooks)
    (path / MARKER).write_text(json.dumps({"requirements": lines, "built": time.time()}), encoding="utf-8")


def _check(path: Path, env_python: Path, modules: Sequence[str], report: Sequence[str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _LEAKY_VARIABLES}
    env.update(TF_CPP_MIN_LOG_LEVEL="2", GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1")
    done = subprocess.run(
        [str(env_python), "-c", _CHECK, ",".join(report), *modules],
        capture_output=True, text=True, env=env, timeout=600, check=False, cwd=path,
    )
    if done.returncode != 0:
        (path / MARKER).unlink(missing_ok=True)  # rebuilt next time rather than failing forever
        raise SpaceEnvError(f"the Space environment {path} is broken: importing {', '.join(modules)} failed",
                            done.stdout + done.stderr)
    return json.loads(done.stdout.strip().splitlines()[-1])


def builtin_requirement_files() -> list[Path]:
    """The requirements.txt of every built-in app template (``beam_pusher/apps/SDK/NAME/requirements.txt``)."""
    apps = Path(__file__).resolve().parent.parent / "apps"
    return sorted(apps.glob("*/*/requirements.txt"))


def builtin_apps_env(**options: object) -> SpaceEnv:
    """The environment of the built-in apps' union of requirements (plus ``BUILTIN_EXTRA``), built once and cached.

    The tests that run the apps and the demo's Spaces share it: every built-in app's Space finds it with
    ``find_satisfying_env``. ``options`` are passed to ``ensure_space_env``.
    """
    return ensure_space_env(builtin_requirement_files(), extra=BUILTIN_EXTRA,
                            check_imports=BUILTIN_CHECK_IMPORTS, **options)  # type: ignore[arg-type]


def _installed(env_path: Path) -> dict[str, str]:
    """Canonical distribution name -> version of what is installed in a venv, read from its metadata files."""
    import importlib.metadata

    found: dict[str, str] = {}
    for site in env_path.glob("lib/python*/site-packages"):
        for dist in importlib.metadata.distributions(path=[str(site)]):
            name = dist.metadata["Name"]
            if name:
                found[canonicalize_name(name)] = dist.version
    return found


def _satisfied(lines: Sequence[str], installed: dict[str, str]) -> bool:
    for line in lines:
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            return False  # pip will say what is wrong with it
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        version = installed.get(canonicalize_name(requirement.name))
        if version is None or requirement.url or not requirement.specifier.contains(version, prereleases=True):
            return False
    return True


def find_satisfying_env(lines: Sequence[str], *, root: os.PathLike | str | None = None,
                        python: os.PathLike | str | None = None) -> SpaceEnv | None:
    """A complete cached environment of the same interpreter in which every requirement line is installed, or None.

    ``pip install`` of ``lines`` into it would install nothing, so a Space with these requirements can run in it.
    The most recently built match wins.
    """
    python = Path(python) if python else base_python()
    root = Path(root) if root else cache_root()
    version = _python_tag(python).split()[1]
    candidates = []
    for marker in root.glob(f"space-env-*/{MARKER}"):
        path = marker.parent
        config_file = path / "pyvenv.cfg"
        config = config_file.read_text(encoding="utf-8", errors="replace") if config_file.is_file() else ""
        if not re.search(rf"^version(_info)?\s*=\s*{re.escape(version)}\s*$", config, re.MULTILINE):
            continue
        candidates.append((marker.stat().st_mtime, path))
    for _, path in sorted(candidates, reverse=True):
        if _satisfied(lines, _installed(path)):
            try:
                built = json.loads((path / MARKER).read_text(encoding="utf-8"))
            except (OSError, ValueError):
                built = {}
            return SpaceEnv(path, path / "bin" / "python", tuple(built.get("requirements", ())), {}, 0.0)
    return None
