"""The files beam_pusher writes into a Space itself: README.md front matter, and the model loader.

The Hub reads a Space's SDK and entry point from the YAML front matter of its README.md, so every deploy writes it:
the template's own keys and body are kept, ``sdk`` and ``app_file`` are set to what the Space holds. When a model is
embedded, a ``model_loader.py`` exposing ``get_model()`` goes next to the app. Pure functions, like ``templates``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from pathlib import Path

import yaml

from beam_pusher.errors import SpecError, TemplateError
from beam_pusher.rules import check_space_sdk
from beam_pusher.sources import BUILTIN_APPS_URL, SourceFile
from beam_pusher.spec import SpaceSpec

__all__ = ["default_app_file", "generated_files", "model_loader_source", "render_readme"]

logger = logging.getLogger(__name__)


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


def render_readme(existing: str | None, *, sdk: str, app_file: str | None, title: str | None) -> str:
    """The Space's README.md: front matter with the right ``sdk`` and ``app_file``, the template's keys and body.

    gradio/streamlit get ``app_file`` (the argument, else the template's, else ``app.py``); static likewise with
    ``index.html``; docker gets no ``app_file`` and ``app_port: 7860`` unless the template sets one. A given ``title``
    replaces the template's; ``None`` keeps it. Lines of keys not touched stay as written (comments included).
    Without ``existing`` a short README is generated. A UTF-8 BOM is dropped: the Hub needs ``---`` first.

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
    if sdk == "docker":
        wanted["app_file"] = None
        if "app_port" not in data:
            wanted["app_port"] = 7860
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
) -> dict[str, bytes]:
    """The files beam_pusher writes itself: README.md, plus model_loader.py when a model is embedded.

    Args:
      spec: The Space.
      template_files: The template's files (decides the default ``app_file``).
      model_files: The embedded model's files (paths under ``model/``), or None/empty when nothing is embedded.
      readme_text: The template's README.md, already rendered, or None. The result replaces it.

    A template's own ``model_loader.py`` is kept (not overwritten): its author chose how to load the model.

    Raises:
      TemplateError: the template has files under ``model/`` while a model is embedded there.
    """
    paths = {f.path for f in template_files}
    front = _split_front_matter(readme_text)[0] if readme_text is not None else None
    data = _parse_front_matter(front) if front is not None else {}
    app_file = None if data.get("app_file") in paths else default_app_file(spec.space_sdk, paths)
    title = spec.title or (None if data.get("title") else spec.name)
    out = {"README.md": render_readme(readme_text, sdk=spec.space_sdk, app_file=app_file, title=title).encode()}
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
