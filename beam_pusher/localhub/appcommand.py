"""What the local Spaces runtime runs for a Space: its requirements, the app's command and the app's environment.

As on the Hub, the SDK decides how a Space starts:

- ``gradio``: ``python APP_FILE`` with ``GRADIO_SERVER_PORT`` and ``GRADIO_SERVER_NAME=127.0.0.1``; the SDK package is
  ``gradio`` (``gradio==SDK_VERSION`` when README.md names one) unless requirements.txt names it itself;
- ``streamlit``: ``streamlit run APP_FILE`` on the given port;
- ``docker``: a Dockerfile whose ``CMD``/``ENTRYPOINT`` is ``streamlit run FILE`` runs as a Streamlit app, and one that
  is ``python FILE`` with gradio in requirements.txt as a Gradio app, both from requirements.txt; no image is built,
  so any other Dockerfile stays simulated (``plan_launch`` says why, and the runtime writes it in the logs);
- ``static``: the files are served as they are.

Pure functions over the Space's files, like ``builder.check_space``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shlex
from collections.abc import Mapping
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from beam_pusher.localhub import spaces
from beam_pusher.localhub.appenv import normalize_requirement_lines
from beam_pusher.localhub.builder import BuildPlan, Reader

__all__ = ["GRADIO", "STATIC", "STREAMLIT", "AppLaunch", "app_command", "app_environment", "plan_launch"]

GRADIO, STREAMLIT, STATIC = "gradio", "streamlit", "static"
DEAD_PROXY = "http://127.0.0.1:9"  # the discard port: an app's requests to anything but loopback fail at once
_INSTRUCTION = re.compile(r"^\s*(CMD|ENTRYPOINT)\s+(.+?)\s*$", re.IGNORECASE | re.MULTILINE)


@dataclasses.dataclass(frozen=True)
class AppLaunch:
    """How a Space's app starts.

    Attributes:
        kind: ``gradio`` (``python APP_FILE``), ``streamlit`` (``streamlit run APP_FILE``) or ``static``.
        app_file: the file that starts the app (the page a static Space opens on).
        requirements: the normalized requirement lines installed before the start: requirements.txt and the SDK.
        description: one line for the build log: what runs and why.
    """

    kind: str
    app_file: str
    requirements: tuple[str, ...]
    description: str


def plan_launch(plan: BuildPlan, read: Reader) -> tuple[AppLaunch | None, str | None]:
    """``(launch, None)`` for a Space the runtime can run, ``(None, reason)`` for one that stays simulated.

    Raises:
        SpaceEnvError: requirements.txt has a line the runtime cannot install (an option such as ``-r``).
    """
    card, _ = spaces.parse_front_matter((read("README.md") or b"").decode("utf-8", "replace"))
    version = (card or {}).get("sdk_version")
    lines = normalize_requirement_lines((read("requirements.txt") or b"").decode("utf-8", "replace").splitlines(),
                                        "requirements.txt")
    if plan.sdk == STATIC:
        return AppLaunch(STATIC, plan.app_file, (), f"Static Space: serving {plan.app_file} and the other files"), None
    if plan.sdk in (GRADIO, STREAMLIT):
        lines = _with_sdk(lines, plan.sdk, None if version is None else str(version))
        description = f"{plan.sdk} app: {_command_text(plan.sdk, plan.app_file)}"
        return AppLaunch(plan.sdk, plan.app_file, lines, description), None
    if plan.sdk != "docker":
        return None, f"sdk {plan.sdk!r} is not run by this local Hub"
    command = _docker_command((read("Dockerfile") or b"").decode("utf-8", "replace"))
    if command is not None and command[:2] == ["streamlit", "run"] and len(command) > 2:
        description = f"Docker Space whose Dockerfile runs Streamlit: {_command_text(STREAMLIT, command[2])}"
        return AppLaunch(STREAMLIT, command[2], _with_sdk(lines, STREAMLIT, None), description), None
    names = {canonicalize_name(re.split(r"[^A-Za-z0-9._-]", line, maxsplit=1)[0]) for line in lines}
    runs_python = command is not None and len(command) == 2 and re.fullmatch(r"python3?(\.\d+)?", command[0])
    if runs_python and "gradio" in names:
        description = f"Docker Space whose Dockerfile runs a Gradio app: {_command_text(GRADIO, command[1])}"
        return AppLaunch(GRADIO, command[1], lines, description), None
    shown = "no CMD or ENTRYPOINT" if command is None else f"the command {shlex.join(command)!r}"
    return None, (f"this local Hub builds no Docker images: the Dockerfile has {shown}, not 'streamlit run FILE' "
                  "or 'python FILE' (with gradio in requirements.txt), so this Space is simulated")


def _with_sdk(lines: tuple[str, ...], sdk: str, version: str | None) -> tuple[str, ...]:
    """requirements.txt plus the SDK package, as the Hub installs it: pinned to sdk_version when README.md gives one."""
    named = False
    for line in lines:
        try:
            named = named or canonicalize_name(Requirement(line).name) == sdk
        except InvalidRequirement:
            continue  # pip reports it in the build log
    extra = [f"{sdk}=={version}"] if version else [] if named else [sdk]
    return tuple(sorted(set(lines) | set(extra)))


def _docker_command(dockerfile: str) -> list[str] | None:
    """The argv of the Dockerfile's last ``CMD`` (after its ``ENTRYPOINT``, when it has one), or None."""
    found: dict[str, list[str]] = {}
    for match in _INSTRUCTION.finditer(dockerfile):
        text = match.group(2)
        try:
            argv = json.loads(text) if text.startswith("[") else shlex.split(text)
        except ValueError:
            continue
        if isinstance(argv, list) and all(isinstance(part, str) for part in argv):
            found[match.group(1).upper()] = argv
    argv = found.get("ENTRYPOINT", []) + found.get("CMD", [])
    if argv[:2] in (["sh", "-c"], ["/bin/sh", "-c"]) and len(argv) == 3:
        argv = shlex.split(argv[2])
    if argv[:3] in (["python", "-m", "streamlit"], ["python3", "-m", "streamlit"]):
        argv = argv[2:]
    return argv or None


def _command_text(kind: str, app_file: str) -> str:
    return f"python {app_file}" if kind == GRADIO else f"streamlit run {app_file}"


def app_command(launch: AppLaunch, python: os.PathLike | str, port: int) -> list[str]:
    """The argv that starts ``launch`` with ``python`` (the Space environment's) on ``127.0.0.1:port``."""
    if launch.kind == GRADIO:
        return [str(python), launch.app_file]
    if launch.kind == STREAMLIT:
        return [str(python), "-m", "streamlit", "run", launch.app_file, "--server.port", str(port),
                "--server.address", "127.0.0.1", "--server.headless", "true",
                "--browser.gatherUsageStats", "false"]
    raise ValueError(f"a {launch.kind} Space has no command: its files are served by the runtime itself")


def app_environment(base: Mapping[str, str], *, repo_id: str, port: int, home: Path, endpoint: str,
                    variables: Mapping[str, str], secrets: Mapping[str, str]) -> dict[str, str]:
    """The app's environment variables, as a Space's container has them, with everything kept on this machine.

    ``base`` is the Space environment's (``SpaceEnv.child_env()``); the Hub's own ``HF_TOKEN`` is dropped (an app
    gets a token only as a secret), the Space's variables and then its secrets are added, ``HF_ENDPOINT`` points at
    this local Hub, and any HTTP request to a host other than loopback goes to a dead local proxy.
    """
    env = {key: value for key, value in base.items() if key not in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")}
    namespace, name = repo_id.split("/", 1)
    env.update({
        "SPACE_ID": repo_id, "SPACE_AUTHOR_NAME": namespace, "SPACE_REPO_NAME": name,
        "PORT": str(port), "GRADIO_SERVER_PORT": str(port), "GRADIO_SERVER_NAME": "127.0.0.1",
        "GRADIO_ANALYTICS_ENABLED": "False", "GRADIO_TEMP_DIR": str(home / "gradio"),
        "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false", "STREAMLIT_SERVER_HEADLESS": "true",
        "HF_ENDPOINT": endpoint, "HF_HOME": str(home / "hf"), "HF_HUB_DISABLE_XET": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1", "MPLCONFIGDIR": str(home / "mpl"), "TF_CPP_MIN_LOG_LEVEL": "2",
        "PYTHONUNBUFFERED": "1", "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
        **{key: DEAD_PROXY for key in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy")},
    })
    env.update(variables)
    env.update(secrets)
    return env

