"""What the Hub's Space builder checks before anything runs, and the build log it writes.

After a commit the Hub reads the Space's configuration (README.md front matter) and builds an image; the upload
itself has succeeded either way. The checks here are the ones that decide whether a Space can start:

- ``CONFIG_ERROR``, found before the build: no README.md front matter, an sdk the Hub does not know, a Gradio
  ``sdk_version`` that is not a full version (``4.44.1``, not ``4.44``), an ``app_file`` that is not in the Space,
  an ``app_port`` that is not a port, or a Docker ``app_port`` that disagrees with the Dockerfile's ``EXPOSE``;
- ``BUILD_ERROR``, found by the build: a Docker Space without a Dockerfile, a requirements.txt line pip cannot
  read, a gradio pin in requirements.txt that the Gradio version of ``sdk_version`` does not satisfy.

Pure functions over the Space's files: ``check_space(sdk, paths, read)`` returns a ``BuildPlan``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Collection
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from beam_pusher.localhub import spaces

__all__ = ["CONFIG_ERROR", "BUILD_ERROR", "DEFAULT_APP_PORT", "DEFAULT_GRADIO_VERSION", "BuildPlan", "check_space"]

CONFIG_ERROR, BUILD_ERROR = "CONFIG_ERROR", "BUILD_ERROR"
DEFAULT_APP_PORT = 7860  # where the Hub sends a Docker Space's traffic when README.md sets no app_port
DEFAULT_GRADIO_VERSION = "5.49.1"  # what this local Hub installs when README.md names no sdk_version
CONFIG_REFERENCE = "https://huggingface.co/docs/hub/spaces-config-reference"
_EXPOSE = re.compile(r"^\s*EXPOSE\s+(.+?)\s*$", re.IGNORECASE | re.MULTILINE)

Reader = Callable[[str], "bytes | None"]


@dataclasses.dataclass(frozen=True)
class BuildPlan:
    """What the builder makes of a Space's files.

    Attributes:
        stage: None when the build succeeds, else ``CONFIG_ERROR`` or ``BUILD_ERROR``.
        error: the runtime's ``errorMessage`` when ``stage`` is set.
        sdk: the sdk the front matter names (the Space's setting when it has none).
        app_file: the file the Space runs (``Dockerfile`` for Docker Spaces).
        app_port: the port the Hub sends traffic to.
        sdk_version: the SDK version installed (Gradio: ``sdk_version`` or the default), when there is one.
        steps: build log lines of a build that runs, in order; the error lines come last.
    """

    stage: str | None
    error: str | None
    sdk: str | None
    app_file: str
    app_port: int
    sdk_version: str | None
    steps: tuple[str, ...]


def check_space(sdk_setting: str | None, paths: Collection[str], read: Reader) -> BuildPlan:
    """Runs the builder's checks over a Space's files.

    Args:
        sdk_setting: the sdk the Space was created with; the front matter's ``sdk`` wins over it.
        paths: every file path of the Space at the built commit.
        read: returns a file's bytes, None when the Space has no such file.
    """
    readme = read("README.md")
    card, problem = _card(readme)
    sdk = card.get("sdk") if card else sdk_setting
    sdk = sdk if isinstance(sdk, str) else sdk_setting
    app_file = spaces.app_file_of(sdk, card)
    app_port, port_problem = _app_port(card, sdk)
    version, version_problem = _sdk_version(card, sdk)
    problems = [problem] if problem else []
    if not problems:
        problems += _config_problems(card, sdk, app_file, paths)
        problems += [text for text in (port_problem, version_problem) if text]
        if sdk == "docker" and "Dockerfile" in paths and port_problem is None:
            problems += _expose_problems(read("Dockerfile") or b"", app_port, "app_port" in card)
    if problems:
        lines = tuple(f"Configuration error: {text}" for text in problems)
        lines += (f"Fix the front matter of README.md ({CONFIG_REFERENCE}) and commit again.",)
        return BuildPlan(CONFIG_ERROR, "; ".join(problems), sdk, app_file, app_port, version, lines)
    steps = _build_steps(sdk, app_file, app_port, version, paths, read)
    failures = _build_failures(sdk, version, paths, read)
    if failures:
        return BuildPlan(BUILD_ERROR, failures[0], sdk, app_file, app_port, version, steps + tuple(failures))
    return BuildPlan(None, None, sdk, app_file, app_port, version, steps + ("--> Build done: the image is ready",))


def _card(readme: bytes | None) -> tuple[dict[str, Any], str | None]:
    if readme is None:
        return {}, f"the Space has no README.md: add one whose YAML front matter sets at least sdk ({CONFIG_REFERENCE})"
    card, error = spaces.parse_front_matter(readme.decode("utf-8", "replace"))
    if error is not None:
        return {}, error
    if not card:
        return {}, ("README.md has no YAML front matter (a block between two '---' lines at the top) setting the "
                    "Space's sdk: start README.md with '---', 'sdk: gradio' (or streamlit, docker, static), '---'")
    return card, None


def _config_problems(card: dict[str, Any], sdk: Any, app_file: str, paths: Collection[str]) -> list[str]:
    if "sdk" not in card:
        return ["README.md's front matter sets no sdk: add 'sdk: gradio' (or streamlit, docker, static)"]
    if sdk not in spaces.SDKS:
        return [f"sdk {card['sdk']!r} in README.md is not a Space SDK: use one of {', '.join(spaces.SDKS)}"]
    if sdk != "docker" and app_file not in paths:
        source = "app_file in README.md" if card.get("app_file") else f"the default app_file of a {sdk} Space"
        return [f"application file {app_file!r} ({source}) is not in the Space: add it, or set app_file in README.md "
                "to the file that starts the app"]
    return []


def _app_port(card: dict[str, Any], sdk: Any) -> tuple[int, str | None]:
    value = card.get("app_port")
    if value is None or sdk != "docker":
        return DEFAULT_APP_PORT, None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        return DEFAULT_APP_PORT, f"app_port {value!r} in README.md is not a port: use a whole number from 1 to 65535"
    return value, None


def _sdk_version(card: dict[str, Any], sdk: Any) -> tuple[str | None, str | None]:
    """The Gradio version installed, and the problem with ``sdk_version`` if any (other SDKs are not checked)."""
    value = card.get("sdk_version")
    if sdk != "gradio":
        return (None if value is None else str(value)), None
    if value is None:
        return DEFAULT_GRADIO_VERSION, None
    text = str(value)
    try:
        full = len(Version(text).release) == 3
    except InvalidVersion:
        full = False
    if not full:
        quoted = "" if isinstance(value, str) else " (YAML read it as a number: quote it)"
        return None, (f"sdk_version {text!r} in README.md is not a full Gradio version{quoted}: write all three "
                      "parts as a string, e.g. sdk_version: \"4.44.1\", not 4.44")
    return text, None


def _expose_problems(dockerfile: bytes, app_port: int, port_given: bool) -> list[str]:
    exposed = set()
    for match in _EXPOSE.finditer(dockerfile.decode("utf-8", "replace")):
        for token in match.group(1).split():
            port = token.split("/", 1)[0]
            if port.isdigit():
                exposed.add(int(port))
    if not exposed or app_port in exposed:
        return []
    ports = ", ".join(str(port) for port in sorted(exposed))
    given = "set in README.md" if port_given else "the default, as README.md sets no app_port"
    return [f"app_port is {app_port} ({given}) but the Dockerfile EXPOSEs {ports}: the Hub would send traffic to a "
            f"port nothing listens on. Set app_port: {min(exposed)} in README.md, or serve on {app_port}"]


def _requirements(read: Reader) -> tuple[list[tuple[int, Requirement]], list[str]]:
    """The requirements of requirements.txt with their line numbers, and pip's errors for lines it cannot read."""
    content = read("requirements.txt")
    found, errors = [], []
    for number, raw in enumerate((content or b"").decode("utf-8", "replace").splitlines(), start=1):
        line = re.sub(r"(^|\s)#.*$", "", raw).strip()
        if not line or line.startswith("-") or "://" in line.split("@", 1)[0] or line.startswith((".", "/")):
            continue  # pip options, other files, URLs and local paths: not checked here
        try:
            found.append((number, Requirement(line)))
        except InvalidRequirement as err:
            errors.append(f"ERROR: Invalid requirement: {line!r} (requirements.txt, line {number}): {err}. "
                          "Write one package a line, e.g. 'gradio>=4.44' or 'numpy==1.26.4'")
    return found, errors


def _build_failures(sdk: Any, version: str | None, paths: Collection[str], read: Reader) -> list[str]:
    if sdk == "docker":
        if "Dockerfile" not in paths:
            return ["ERROR: failed to build: there is no Dockerfile at the root of the Space: a Docker Space is "
                    "built from its Dockerfile; add one, or set another sdk in README.md"]
        return []
    if sdk == "static":
        return []
    requirements, errors = _requirements(read)
    if errors:
        return errors
    for number, requirement in requirements:
        if sdk == "gradio" and canonicalize_name(requirement.name) == "gradio" and version is not None:
            if not requirement.specifier.contains(version, prereleases=True):
                source = "sdk_version in README.md" if version != DEFAULT_GRADIO_VERSION else "the default Gradio"
                return [f"ERROR: Cannot install gradio=={version} ({source}) and {requirement} (requirements.txt, line "
                        f"{number}): these versions conflict. Make sdk_version in README.md a version that "
                        f"requirements.txt allows, e.g. pin both to the same full version"]
    return []


def _build_steps(sdk: Any, app_file: str, app_port: int, version: str | None, paths: Collection[str],
                 read: Reader) -> tuple[str, ...]:
    """The log of a build that runs, up to the image (the error or "Build done" line is added by the caller)."""
    if sdk == "static":
        return (f"Static Space: {app_file} and the other files are served as they are, nothing to build",)
    if sdk == "docker":
        dockerfile = (read("Dockerfile") or b"").decode("utf-8", "replace")
        instructions = [line.strip() for line in dockerfile.splitlines() if line.strip() and line.strip()[0] != "#"]
        return (f"Building the Dockerfile ({len(instructions)} instructions); the Hub sends traffic to port {app_port}",
                *(f"--> {line}" for line in instructions[:20]))
    lines = [f"Space configuration: sdk {sdk}{f' {version}' if version else ''}, app_file {app_file}"]
    if sdk == "streamlit":
        lines.append("WARNING: the streamlit SDK is no longer offered for new Spaces: new Streamlit Spaces are Docker "
                     "Spaces (sdk: docker, a Dockerfile serving on port 8501, app_port: 8501)")
    lines.append(f"--> Installing {sdk}{f'=={version}' if version else ''}")
    if "requirements.txt" in paths:
        requirements, _ = _requirements(read)
        lines.append(f"--> RUN pip install --no-cache-dir -r requirements.txt ({len(requirements)} requirements)")
        lines += [f"    {requirement}" for _, requirement in requirements[:30]]
    else:
        lines.append("--> No requirements.txt: only the SDK is installed")
    return tuple(lines)
