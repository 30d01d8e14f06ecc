"""The files beam_pusher writes into a Space itself: README.md front matter, and the model loader.

The Hub reads a Space's SDK and entry point from the YAML front matter of its README.md, so every deploy writes it:
the template's own keys and body are kept, and the keys the Hub builds from are set to what the Space holds
(``plan_front_matter``):

- ``sdk`` is the Space's ``space_sdk``; when that differs from the template README's ``sdk``, the template's
  ``sdk_version`` (a version of the other SDK) is dropped;
- Gradio (and Streamlit) get a full ``sdk_version``: the template README's, else the version that requirements.txt
  pins (``gradio==4.44.1``). A README version that is not a full version, or that requirements.txt does not allow,
  is an error: the Hub would not build the Space. No version at all is a warning: the Hub would pick one;
- ``app_file``: the template README's when the template has that file, else the SDK's usual file; a warning when
  the Space will not have it;
- Docker gets ``app_port``: the config's ``app_port``, else the template README's, else the port the Dockerfile
  ``EXPOSE``s, else the Hub's 7860. A port the Dockerfile does not expose, or a Docker template without a
  Dockerfile, is an error.

When a model is embedded, a ``model_loader.py`` exposing ``get_model()`` goes next to the app. Pure functions, like
``templates``, except ``read_front_matter_sources``, which reads the few template files the front matter needs.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from beam_pusher import templates
from beam_pusher.errors import SpecError, TemplateError
from beam_pusher.rules import check_space_sdk
from beam_pusher.sources import BUILTIN_APPS_URL, SourceFile
from beam_pusher.spec import PlaceholderUse, SpaceSpec

__all__ = [
    "DEFAULT_APP_PORT",
    "FrontMatter",
    "default_app_file",
    "generated_files",
    "model_loader_source",
    "plan_front_matter",
    "read_front_matter_sources",
    "render_readme",
]

logger = logging.getLogger(__name__)

DEFAULT_APP_PORT = 7860
"""Where the Hub sends a Docker Space's traffic when its README.md sets no ``app_port``."""

def default_app_file(sdk: str, files: Iterable[str]) -> str | None:
    """The ``app_file`` a Space of ``sdk`` should declare, given its file paths; ``None`` for docker."""
    check_space_sdk(sdk)
    if sdk == "docker":
        return None
    top = sorted(f for f in files if "/" not in f)
    if sdk == "static":
        pages = [f for f in top if f.lower().endswith((".html", ".htm"))]
        return "index.html" if "index.html" in top or not pages else pages[0]
    preferred = ["app.py", "streamlit_app.py", "main.py"] if sdk == "streamlit" else ["app.py", "main.py"]
    for name in preferred:
        if name in top:
            return name
    scripts = [f for f in top if f.endswith(".py") and f != "model_loader.py"]
    return scripts[0] if len(scripts) == 1 else "app.py"


# README front matter -------------------------------------------------------------------------------------------

_FRONT_OPEN = re.compile(r"\A---[ \t]*\r?\n")
_FRONT_CLOSE = re.compile(r"^---[ \t]*(?:\r?\n|\Z)", re.MULTILINE)


def _split_front_matter(text: str) -> tuple[str | None, str]:
    text = text.lstrip("\ufeff")  # the Hub only sees front matter that starts the file
    opening = _FRONT_OPEN.match(text)
    if not opening:
        return None, text
    closing = _FRONT_CLOSE.search(text, opening.end())
    if not closing:
        return None, text
    return text[opening.end() : closing.start()], text[closing.end() :]


def _parse_front_matter(front: str) -> dict:
    try:
        data = yaml.safe_load(front) if front.strip() else {}
    except yaml.YAMLError as exc:
        raise TemplateError(
            f"README.md front matter is not valid YAML: {exc}. Fix: correct the block between the '---' lines."
        ) from exc
    if not isinstance(data, dict):
        raise TemplateError(
            f"README.md front matter must be a mapping of keys (title:, sdk:, ...), got {type(data).__name__}."
        )
    return data


def _dump(data: dict, newline: str = "\n") -> str:
    text = yaml.safe_dump(data, allow_unicode=True, default_flow_style=False, sort_keys=False, width=1 << 30)
    return newline.join(text.rstrip("\n").splitlines())


def _edit_top_level(lines: list[str], key: str, new_line: str | None) -> list[str]:
    """Removes ``key`` (with its continuation lines) and puts ``new_line`` where it was, or at the end."""
    out: list[str] = []
    placed = False
    skipping = False
    pattern = re.compile(rf"^['\"]?{re.escape(key)}['\"]?[ \t]*:")
    for line in lines:
        if skipping and (line[:1] in (" ", "\t") or (line.startswith("-") and not line.startswith("---"))):
            continue
        skipping = False
        if pattern.match(line):
            skipping = True
            if new_line is not None and not placed:
                out.append(new_line)
                placed = True
            continue
        out.append(line)
    if new_line is not None and not placed:
        out.append(new_line)
    return out


def render_readme(
    existing: str | None,
    *,
    sdk: str,
    app_file: str | None,
    title: str | None,
    sdk_version: str | None = None,
    app_port: int | None = None,
) -> str:
    """The Space's README.md: front matter with the right ``sdk`` and ``app_file``, the template's keys and body.

    gradio/streamlit get ``app_file`` (the argument, else the template's, else ``app.py``); static likewise with
    ``index.html``; docker gets no ``app_file`` and ``app_port`` (the argument, else the template's, else 7860).
    A given ``sdk_version`` is written; without one the template's is kept, unless the template was for another
    sdk. A given ``title`` replaces the template's; ``None`` keeps it. Lines of keys not touched stay as written
    (comments included). Without ``existing`` a short README is generated. A UTF-8 BOM is dropped: the Hub needs
    ``---`` first. ``plan_front_matter`` decides the arguments from the template's files.

    Raises:
      TemplateError: the template's front matter is not a YAML mapping.
    """
    check_space_sdk(sdk)
    title = None if title is None else " ".join(str(title).split())  # one line: front matter stays simple
    if existing is None:
        existing = f"# {title or 'Space'}\n\nThis Space was deployed with beam_pusher.\n"
    newline = "\r\n" if "\r\n" in existing else "\n"
    front, body = _split_front_matter(existing)
    data = _parse_front_matter(front) if front is not None else {}
    wanted: dict[str, object] = {}
    if title is not None or "title" not in data:
        wanted["title"] = title or "Space"
    wanted["sdk"] = sdk
    if sdk_version is not None:
        wanted["sdk_version"] = sdk_version
    elif data.get("sdk") not in (None, sdk):
        wanted["sdk_version"] = None  # a version of the template's other sdk means nothing for this one
    if sdk == "docker":
        wanted["app_file"] = None
        if app_port is not None or "app_port" not in data:
            wanted["app_port"] = app_port or DEFAULT_APP_PORT
    else:
        default = "index.html" if sdk == "static" else "app.py"
        wanted["app_file"] = app_file or data.get("app_file") or default
    expected = {k: v for k, v in {**data, **wanted}.items() if v is not None or k not in wanted}
    lines = front.splitlines() if front is not None else []
    for key, value in wanted.items():
        lines = _edit_top_level(lines, key, None if value is None else _dump({key: value}))
    new_front = newline.join(lines)
    try:
        ok = _parse_front_matter(new_front) == expected
    except TemplateError:
        ok = False
    if not ok:  # unusual layout (flow style, anchors): write the mapping afresh, losing only comments
        new_front = _dump(expected, newline)
    if front is None and body and not body.startswith(("\n", "\r\n")):
        body = newline + body
    return f"---{newline}{new_front}{newline}---{newline}{body}"


# What the front matter will say ---------------------------------------------------------------------------------

_PINNED_SDKS = ("gradio", "streamlit")  # the SDKs whose version the Hub installs from sdk_version
_EXPOSE = re.compile(r"^\s*EXPOSE\s+(.+)$", re.IGNORECASE)
_SOURCE_FILES = ("README.md", "requirements.txt", "Dockerfile")


@dataclasses.dataclass(frozen=True)
class FrontMatter:
    """What a Space's README.md front matter will say, and what is wrong or doubtful about it.

    Attributes:
      app_file: The file the Space runs (None for docker).
      app_port: The port a Docker Space is served on (None for other SDKs).
      sdk_version: The SDK version to write, or None to write none.
      errors: Why the Hub would not build the Space: each fails the Space before anything is written.
      warnings: What may not work as meant; the Space is deployed, and its result says so.
    """

    app_file: str | None
    app_port: int | None
    sdk_version: str | None
    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


def plan_front_matter(
    spec: SpaceSpec,
    paths: Collection[str],
    readme_text: str | None,
    *,
    requirements_text: str | None = None,
    dockerfile_text: str | None = None,
) -> FrontMatter:
    """Decides the front matter keys the Hub builds from (module docstring) and checks them.

    Args:
      spec: The Space.
      paths: The template's file paths.
      readme_text: The template's README.md, rendered, or None.
      requirements_text: Its requirements.txt, rendered; None when it has none or it was not read.
      dockerfile_text: Its Dockerfile, rendered; None when it has none or it was not read.

    Raises:
      TemplateError: the template's front matter is not a YAML mapping.
    """
    front = _split_front_matter(readme_text)[0] if readme_text is not None else None
    data = _parse_front_matter(front) if front is not None else {}
    errors: list[str] = []
    warnings: list[str] = []
    sdk = spec.space_sdk
    app_file = app_port = sdk_version = None
    if sdk == "docker":
        app_port = _docker_port(spec, data, paths, dockerfile_text, errors)
    else:
        app_file = _app_file(sdk, data, paths, warnings)
    if sdk in _PINNED_SDKS:
        same_sdk = data.get("sdk") in (None, sdk)
        readme_version = data.get("sdk_version") if same_sdk else None
        known = requirements_text is not None or "requirements.txt" not in paths
        sdk_version = _sdk_version(sdk, readme_version, requirements_text, known, errors, warnings)
    return FrontMatter(app_file, app_port, sdk_version, tuple(errors), tuple(warnings))


def _app_file(sdk: str, data: Mapping[str, Any], paths: Collection[str], warnings: list[str]) -> str:
    declared = data.get("app_file")
    if declared in paths:
        return declared
    app_file = default_app_file(sdk, paths) or "app.py"
    if declared is not None:
        warnings.append(
            f"README.md's app_file {declared!r} is not in the template, so the Space runs {app_file!r} instead. "
            f"Fix: add {declared!r} to the template, or set app_file to the file that starts the app."
        )
    elif app_file not in paths:
        warnings.append(
            f"app_file {app_file!r} (the usual file of a {sdk} Space) is not in the template: the Space will not "
            "start. Fix: add it, or set app_file in the template's README.md to the file that starts the app."
        )
    return app_file


def _docker_port(
    spec: SpaceSpec, data: Mapping[str, Any], paths: Collection[str], dockerfile: str | None, errors: list[str]
) -> int:
    if "Dockerfile" not in paths:
        errors.append(
            "a Docker Space is built from the Dockerfile at its root, and the template has none. Fix: add a "
            "Dockerfile to the template, or deploy it with another space_sdk."
        )
    readme_port = data.get("app_port")
    if readme_port is not None and (
        isinstance(readme_port, bool) or not isinstance(readme_port, int) or not 1 <= readme_port <= 65535
    ):
        errors.append(f"README.md's app_port {readme_port!r} is not a port: use a whole number from 1 to 65535.")
        readme_port = None
    exposed = _exposed_ports(dockerfile or "")
    if spec.app_port is not None:
        port, source = spec.app_port, "app_port in the config"
    elif readme_port is not None:
        port, source = readme_port, "app_port in the template's README.md"
    elif exposed:
        port, source = exposed[0], "the Dockerfile's EXPOSE"
    else:
        port, source = DEFAULT_APP_PORT, "the Hub's default"
    if exposed and port not in exposed:
        listed = ", ".join(str(p) for p in exposed)
        errors.append(
            f"app_port is {port} ({source}) but the Dockerfile EXPOSEs {listed}: the Hub would send traffic to a "
            f"port nothing listens on. Fix: set app_port: {exposed[0]}, or serve and EXPOSE {port} in the Dockerfile."
        )
    return port


def _exposed_ports(dockerfile: str) -> list[int]:
    """The ports of the Dockerfile's EXPOSE instructions, in order (``8501``, ``8501/tcp``; not ``$PORT``)."""
    ports: list[int] = []
    for line in re.sub(r"\\\r?\n", " ", dockerfile).splitlines():
        match = _EXPOSE.match(line)
        for token in match.group(1).split() if match else ():
            port = token.split("/", 1)[0]
            if port.isdigit() and 1 <= int(port) <= 65535 and int(port) not in ports:
                ports.append(int(port))
    return ports


def _sdk_version(
    sdk: str, readme_version: Any, requirements: str | None, known: bool, errors: list[str], warnings: list[str]
) -> str | None:
    """The ``sdk_version`` to write: the README's (checked) or the one requirements.txt pins; None for none."""
    from packaging.version import InvalidVersion, Version

    requirement = _requirement(requirements or "", sdk)
    if readme_version is not None:
        text = str(readme_version)
        try:
            version = Version(text)
        except InvalidVersion:
            version = None
        if sdk == "gradio" and (version is None or len(version.release) != 3 or not isinstance(readme_version, str)):
            quoted = "" if isinstance(readme_version, str) else " (YAML read it as a number)"
            errors.append(
                f"README.md's sdk_version {text!r} is not a full Gradio version{quoted}: the Hub needs all three "
                'parts. Fix: write it as a quoted full version, e.g. sdk_version: "4.44.1".'
            )
        elif version is not None and requirement is not None and not requirement[1].specifier.contains(version, True):
            errors.append(
                f"README.md's sdk_version {text!r} disagrees with {requirement[1]} in requirements.txt (line "
                f"{requirement[0]}): the Hub installs {sdk}=={text} and the build fails. Fix: pin the same full "
                f"version in both, or drop sdk_version and keep the pin ({sdk}==X.Y.Z), which beam_pusher writes."
            )
        return text
    pinned = _pinned_version(requirement[1]) if requirement else None
    if pinned is None and known:
        warnings.append(
            f"no {sdk} version: README.md sets no sdk_version and requirements.txt pins no {sdk}==X.Y.Z, so the Hub "
            f"picks a version the app was not tested with. Fix: pin {sdk}==X.Y.Z in the template's requirements.txt "
            "(beam_pusher writes it as sdk_version)."
        )
    return pinned


def _requirement(requirements: str, package: str):
    """``(line number, Requirement)`` of ``package`` in requirements.txt, or None; lines pip options are skipped."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    for number, raw in enumerate(requirements.splitlines(), start=1):
        line = re.sub(r"(^|\s)#.*$", "", raw).strip()
        if not line or line.startswith(("-", ".", "/")):
            continue
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue  # the Hub's builder reports it; not a front matter matter
        if canonicalize_name(requirement.name) == package:
            return number, requirement
    return None


def _pinned_version(requirement) -> str | None:
    """The full version an exact pin (``==4.44.1``; ``==4.44`` is 4.44.0) names, else None."""
    from packaging.version import InvalidVersion, Version

    specs = list(requirement.specifier)
    if len(specs) != 1 or specs[0].operator != "==" or specs[0].version.endswith("*"):
        return None
    try:
        version = Version(specs[0].version)
    except InvalidVersion:
        return None
    if version.local or version.epoch or len(version.release) > 3:
        return None
    if version.pre or version.post or version.dev:
        return str(version) if len(version.release) == 3 else None
    return ".".join(str(part) for part in (*version.release, 0, 0)[:3])


def read_front_matter_sources(
    template_files: Iterable[SourceFile], values: Mapping[str, str], *, strict: bool = False
) -> tuple[dict[str, str], PlaceholderUse]:
    """Reads and renders the template files the front matter depends on: README.md, requirements.txt, Dockerfile.

    Returns their texts by path (files that are not UTF-8 text are left out) and what rendering README.md found,
    which counts for the Space's placeholders (the Space's README.md is the one generated from it).
    """
    import fsspec

    texts: dict[str, str] = {}
    use = PlaceholderUse()
    for source in template_files:
        if source.path not in _SOURCE_FILES:
            continue
        with fsspec.open(source.url, "rb") as f:
            data = f.read()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            continue
        rendered, found = templates.render_text_with_use(text, values, path=source.path, strict=strict)
        texts[source.path] = rendered
        if source.path == "README.md":
            use = found
    return texts, use


# Generated files -----------------------------------------------------------------------------------------------

_MODEL_LOADER_FILE = Path(BUILTIN_APPS_URL) / "_model_loader.py"
_MODEL_DIR_LINE = 'MODEL_DIR = Path(os.path.abspath(__file__)).parent / "model"'


def model_loader_source(model_dir: str = "model") -> str:
    """Source of the ``model_loader.py`` placed at the Space root when a model is embedded under ``model_dir``."""
    parts = model_dir.strip("/").split("/")
    if not model_dir.strip("/") or any(p in ("", ".", "..") for p in parts) or "\\" in model_dir:
        raise SpecError(f"model_dir={model_dir!r} must be a relative posix folder such as 'model'.")
    source = _MODEL_LOADER_FILE.read_text(encoding="utf-8")
    if _MODEL_DIR_LINE not in source:  # pragma: no cover - guards edits of the loader file
        raise TemplateError(f"{_MODEL_LOADER_FILE} lost its line {_MODEL_DIR_LINE!r}.")
    return source.replace(_MODEL_DIR_LINE, _MODEL_DIR_LINE.replace('"model"', repr("/".join(parts))))


def generated_files(
    spec: SpaceSpec,
    template_files: list[SourceFile],
    model_files: list[SourceFile] | None,
    readme_text: str | None,
    *,
    front: FrontMatter | None = None,
) -> dict[str, bytes]:
    """The files beam_pusher writes itself: README.md, plus model_loader.py when a model is embedded.

    Args:
      spec: The Space.
      template_files: The template's files (decide the default ``app_file``).
      model_files: The embedded model's files (paths under ``model/``), or None/empty when nothing is embedded.
      readme_text: The template's README.md, already rendered, or None. The result replaces it.
      front: The front matter ``plan_front_matter`` decided from the template's files; None decides it from
        ``readme_text`` and the paths alone (requirements.txt and Dockerfile unread).

    The README's title is ``spec.title``, else the Space's name, also over the template's own ``title:`` (which
    names the template, not each Space made from it). A template's own ``model_loader.py`` is kept (not
    overwritten): its author chose how to load the model.

    Raises:
      TemplateError: the front matter has errors (the Hub would not build the Space), or the template has files
        under ``model/`` while a model is embedded there.
    """
    paths = {f.path for f in template_files}
    if front is None:
        front = plan_front_matter(spec, paths, readme_text)
    if front.errors:
        raise TemplateError(f"{spec.repo_id}: README.md front matter the Hub would not build: {' '.join(front.errors)}")
    readme = render_readme(
        readme_text,
        sdk=spec.space_sdk,
        app_file=front.app_file,
        title=spec.title or spec.name,  # a template's own title names the template, not each Space made from it
        sdk_version=front.sdk_version,
        app_port=front.app_port,
    )
    out = {"README.md": readme.encode()}
    if model_files:
        clash = sorted(p for p in paths if p.startswith("model/"))
        if clash:
            raise TemplateError(
                f"the template has {clash[0]!r} under model/, where the embedded model goes. Fix: move the "
                "template's files out of model/ or do not embed a model (use model_hub_repo_id)."
            )
        if "model_loader.py" in paths:
            logger.info("%s: keeping the template's own model_loader.py", spec.repo_id)
        else:
            out["model_loader.py"] = model_loader_source("model").encode()
    return out
