"""App templates: where they are, which files they hold, and how their text is rendered.

Pure functions over fsspec, so the same code reads a template from the package, a local folder, ``gs://``,
``s3://``, ``memory://`` or ``hf://spaces/...``. Nothing here imports Beam or huggingface_hub: the transforms
call these functions on workers, and the config validator calls them before anything touches the Hub.

Text or binary is decided by content, never by file name: a file is text when it has no NUL byte and decodes
as UTF-8 (a UTF-8 BOM is fine and kept; UTF-16/32 files contain NUL bytes and so count as binary). Text files of at
most ``RENDER_LIMIT`` bytes get their placeholders replaced; every other file passes through byte-identical.

Placeholder syntax (shell-like, on purpose, so templates read naturally):

- ``$NAME`` and ``${NAME}``, NAME = ``[A-Za-z_][A-Za-z0-9_]*``. ``$NAME`` takes the longest name, so
  ``$MODEL_VERSION`` is never read as ``$MODEL`` + ``_VERSION``; write ``${MODEL_REPO_ID}_x`` to glue text on.
- Only names that have a value are replaced; anything else (``$HOME``, JavaScript's ``${x}``) is left as written.
- ``$$NAME`` / ``$${NAME}`` write a literal ``$NAME`` / ``${NAME}`` when NAME has a value. A ``$$`` before any
  other text is left alone, because shell scripts and Makefiles (``$$HOME``) use it for their own purposes.
- Values are inserted as-is and not rendered again.
- With ``strict=True`` a ``$MODEL_*`` reference left without a value is a ``PlaceholderError``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import fsspec.core
import yaml
from fsspec.implementations.local import LocalFileSystem

from beam_pusher.errors import PlaceholderError, SpecError, TemplateError
from beam_pusher.spec import SDKS, SpaceSpec

__all__ = [
    "BUILTIN_APPS_URL", "RENDER_LIMIT", "TEXT_SAMPLE_SIZE", "SourceFile", "builtin_apps", "default_app_file",
    "generated_files", "is_text", "list_source_files", "model_loader_source", "placeholder_values", "render_bytes",
    "render_readme", "render_text", "resolve_app_path", "resolve_model_path",
]  # fmt: skip

logger = logging.getLogger(__name__)

BUILTIN_APPS_URL: str = str(Path(__file__).resolve().parent / "apps")
"""Local path of the built-in templates (``apps/<sdk>/<name>``) inside the installed package."""

RENDER_LIMIT = 10 * 1024 * 1024
"""Text files larger than this are passed through unrendered, by reference.

Rendering needs the whole file in memory, while files above the Hub's 10 MB LFS threshold are data (vocabularies,
CSVs, weights) rather than app source; streaming them keeps a worker's memory independent of model size.
"""

TEXT_SAMPLE_SIZE = 8192
"""How many leading bytes ``is_text`` needs to classify a file without reading it whole."""

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_REFERENCE = re.compile(rf"(\$?)\$(?:\{{({_NAME})\}}|({_NAME}))")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*(?:://|::)")
_DOTTED = re.compile(r"^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+$")
_SKIP_DIRS = frozenset({".git", "__pycache__"})
_STRICT_PREFIX = "MODEL_"
_MAX_REPORTED = 20


@dataclasses.dataclass(frozen=True)
class SourceFile:
    """One file of a template or model, before rendering.

    Attributes:
      path: Where the file goes in the Space: a relative posix path (``model/saved_model.pb``).
      url: Where to read it: an fsspec URL or local path.
      size: Its size in bytes.
    """

    path: str
    url: str
    size: int


def builtin_apps() -> list[str]:
    """The built-in templates as dotted names, e.g. ``apps.gradio.img_classifier``."""
    root = Path(BUILTIN_APPS_URL)
    return sorted(
        f"apps.{sdk.name}.{app.name}"
        for sdk in root.iterdir()
        if sdk.is_dir() and not sdk.name.startswith(("_", "."))
        for app in sdk.iterdir()
        if app.is_dir() and not app.name.startswith(("_", "."))
    )


def resolve_app_path(app_path: str, *, base_dir: str | None = None, check: bool = True) -> str:
    """Turns an ``app_path`` as users write it into the URL of the template's root folder.

    Accepted forms: ``apps.gradio.img_classifier`` and ``apps/gradio/img_classifier`` (relative to ``base_dir`` or
    the working directory; when no such local folder exists and the name starts with ``apps``, the built-in
    template of that name), absolute paths, ``file://`` and any fsspec URL (``gs://``, ``memory://``, ...).

    Args:
      app_path: The value from the spec or config.
      base_dir: Folder that relative paths are relative to (the config file's folder); default the cwd.
      check: Whether to check that a remote URL exists (local paths are always checked).

    Returns:
      An absolute local path, or the fsspec URL as given (without a trailing slash).

    Raises:
      TemplateError: nothing is there; the message lists where it looked and the built-in templates.
    """
    return _resolve(app_path, base_dir=base_dir, check=check, what="app_path", want_dir=True)


def resolve_model_path(model_path: str, *, base_dir: str | None = None, check: bool = True) -> str:
    """Like ``resolve_app_path`` for a model directory or single model file (no built-in fallback)."""
    return _resolve(model_path, base_dir=base_dir, check=check, what="model_path", want_dir=False)


def _resolve(value: str, *, base_dir: str | None, check: bool, what: str, want_dir: bool) -> str:
    if not isinstance(value, str) or not value.strip():
        raise TemplateError(f"{what}={value!r} is empty: give a folder path or an fsspec URL.")
    if _URL.match(value) and not value.startswith(("file://", "local://")):
        return _resolve_remote(value, check=check, what=what)
    local = value.split("://", 1)[1] if "://" in value else value
    local = os.path.expanduser(local)
    base = os.path.abspath(base_dir) if base_dir else os.getcwd()
    candidates = [os.path.normpath(os.path.join(base, local))]
    if want_dir and not os.path.isabs(local):
        relative = local.replace("\\", "/").strip("/")
        if _DOTTED.match(relative):
            relative = relative.replace(".", "/")
            candidates.append(os.path.normpath(os.path.join(base, relative)))
        parts = relative.split("/")
        if parts[0] == "apps" and len(parts) > 1:
            candidates.append(os.path.join(BUILTIN_APPS_URL, *parts[1:]))
    for candidate in candidates:
        if os.path.isdir(candidate) or (not want_dir and os.path.isfile(candidate)):
            logger.debug("%s=%r resolved to %s", what, value, candidate)
            return candidate
    if want_dir and any(os.path.isfile(c) for c in candidates):
        raise TemplateError(f"{what}={value!r} is a file; an app template must be a folder holding app.py and more.")
    looked = ", ".join(dict.fromkeys(candidates))
    hint = f" Built-in templates: {', '.join(builtin_apps())}." if want_dir else ""
    raise TemplateError(
        f"{what}={value!r} was not found (looked in: {looked}).{hint} Fix: give an existing folder (relative to "
        f"{base}), an absolute path, or an fsspec URL such as gs://bucket/folder."
    )


def _resolve_remote(value: str, *, check: bool, what: str) -> str:
    url = value.rstrip("/") or value
    if not check:
        return url
    fs, path = _url_to_fs(url, what=what)
    try:
        exists = fs.exists(path)
    except Exception as exc:  # noqa: BLE001 - every backend raises its own types; say which URL failed
        raise TemplateError(f"{what}={value!r} could not be checked: {type(exc).__name__}: {exc}") from exc
    if not exists:
        raise TemplateError(
            f"{what}={value!r} does not exist. Fix: check the URL{_private_repo_hint(url)}, or use a built-in "
            f"template such as {', '.join(builtin_apps()) or 'apps.gradio.img_classifier'}."
        )
    return url


def _private_repo_hint(url: str) -> str:
    """The Hub answers 404 for a private repository without a token, so an hf:// URL may exist after all."""
    if not url.startswith("hf://"):
        return ""
    return " (a private Hub repository also needs HF_TOKEN, and another Hub HF_ENDPOINT, where the pipeline runs)"


def _url_to_fs(url: str, *, what: str = "path"):
    try:
        return fsspec.core.url_to_fs(url)
    except ImportError as exc:
        raise TemplateError(
            f"{what}={url!r} needs an fsspec filesystem that is not installed ({exc}). Fix: install it, e.g. "
            "'pip install gcsfs' for gs:// or 's3fs' for s3://."
        ) from exc
    except ValueError as exc:
        raise TemplateError(f"{what}={url!r} is not a valid fsspec URL: {exc}") from exc


def list_source_files(root_url: str, *, prefix: str = "") -> list[SourceFile]:
    """Lists every file under ``root_url``, recursively, as Space paths sorted by path.

    ``.git`` (folder or file), ``__pycache__`` and ``*.pyc`` are skipped. A single file yields one entry named by
    its base name. ``prefix`` (e.g. ``"model/"``) is prepended to each path; a missing trailing ``/`` is added.

    Raises:
      TemplateError: the root is missing or holds no files, or a path escapes the root (``..`` components, or a
        local symlink resolving outside the root), or a local symlink is broken or loops.
    """
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    fs, root = _url_to_fs(root_url, what="template")
    if isinstance(fs, LocalFileSystem):
        files = _list_local(root, prefix)
    else:
        files = _list_remote(fs, root, root_url.rstrip("/"), prefix)
    if not files:
        raise TemplateError(
            f"{root_url!r} holds no files (after skipping .git and __pycache__). Fix: point at the folder that "
            "contains the app (app.py, requirements.txt, ...)."
        )
    files.sort(key=lambda f: f.path)
    logger.debug("listed %d files under %s", len(files), root_url)
    return files


def _list_local(root: str, prefix: str) -> list[SourceFile]:
    if os.path.isfile(root):
        return [SourceFile(prefix + os.path.basename(root), os.path.abspath(root), os.path.getsize(root))]
    if not os.path.isdir(root):
        raise TemplateError(f"{root!r} does not exist. Fix: give an existing folder or file.")
    real_root = os.path.realpath(root)
    out: list[SourceFile] = []

    def walk(folder: str, rel: str, ancestors: frozenset[str]) -> None:
        with os.scandir(folder) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                name = entry.name
                path = rel + name
                real = os.path.realpath(entry.path)
                if entry.is_symlink() and os.path.commonpath([real, real_root]) != real_root:
                    raise TemplateError(
                        f"{path!r} is a symlink to {real!r}, outside the template root {root!r}. Fix: copy the "
                        "file into the template or remove the link."
                    )
                if entry.is_dir():
                    if name in _SKIP_DIRS:
                        continue
                    if real in ancestors:
                        raise TemplateError(f"{path!r} is a symlink loop in {root!r}. Fix: remove the link.")
                    walk(entry.path, path + "/", ancestors | {real})
                elif entry.is_file():
                    if name == ".git" or name.endswith(".pyc"):
                        continue
                    out.append(SourceFile(prefix + path, os.path.abspath(entry.path), entry.stat().st_size))
                elif entry.is_symlink():
                    raise TemplateError(f"{path!r} in {root!r} is a broken symlink. Fix: remove or repair it.")
                else:
                    logger.warning("skipping %s: not a regular file", path)

    walk(root, "", frozenset({real_root}))
    return out


def _list_remote(fs, root: str, root_url: str, prefix: str) -> list[SourceFile]:
    try:
        if fs.isfile(root):
            name = root.rstrip("/").rsplit("/", 1)[-1]
            return [SourceFile(prefix + name, root_url, int(fs.size(root)))]
        found = fs.find(root, withdirs=False, detail=True)
        if not found and not fs.exists(root):
            raise FileNotFoundError(root)
    except FileNotFoundError as exc:
        raise TemplateError(f"{root_url!r} does not exist. Fix: check the URL{_private_repo_hint(root_url)}.") from exc
    base = root.rstrip("/") + "/"
    out = []
    for path, info in found.items():
        rel = path[len(base) :] if path.startswith(base) else None
        parts = rel.split("/") if rel else []
        if not parts or any(p in ("", ".", "..") for p in parts):
            raise TemplateError(
                f"{path!r} escapes the template root {root_url!r} (or has an empty or '..' component). Fix: "
                "rename the file."
            )
        if any(p in _SKIP_DIRS for p in parts[:-1]) or parts[-1] == ".git" or parts[-1].endswith(".pyc"):
            continue
        size = info.get("size")
        out.append(SourceFile(prefix + rel, f"{root_url}/{rel}", int(size if size is not None else fs.size(path))))
    return out


def is_text(sample: bytes) -> bool:
    """Whether a file is text, judged by (a sample of) its bytes: no NUL byte and valid UTF-8.

    A multibyte character cut off by the end of the sample is tolerated, so the first ``TEXT_SAMPLE_SIZE`` bytes of
    a UTF-8 file count as text. An empty file is text (rendering it is a no-op).
    """
    if b"\x00" in sample:
        return False
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.reason == "unexpected end of data" and exc.start >= len(sample) - 3
    return True


def placeholder_values(spec: SpaceSpec) -> dict[str, str]:
    """The placeholder values for one Space.

    ``MODEL_REPO_ID`` / ``MODEL_VERSION`` come from ``model_hub_repo_id`` / ``model_hub_repo_branch`` when set,
    ``SPACE_REPO_ID`` is the Space itself, then every ``spec.placeholders`` entry. A user placeholder may fill a
    ``MODEL_*`` name whose spec field is unset, but never silently contradict a field that is set.

    Raises:
      SpecError: a user placeholder gives a different value for a name that a spec field already sets.
    """
    values: dict[str, str] = {}
    fixed = {
        "MODEL_REPO_ID": (spec.model_hub_repo_id, "model_hub_repo_id"),
        "MODEL_VERSION": (spec.model_hub_repo_branch, "model_hub_repo_branch"),
        "SPACE_REPO_ID": (spec.repo_id, "repo_id"),
    }
    for name, (value, field) in fixed.items():
        if value is None:
            continue
        user = spec.placeholders.get(name)
        if user is not None and user != value:
            raise SpecError(
                f"placeholders[{name!r}]={user!r} contradicts {field}={value!r}, which sets ${name}. Fix: drop the "
                f"placeholder or set {field} to the value you want."
            )
        values[name] = value
    for name, value in spec.placeholders.items():
        values.setdefault(name, value)
    return values


def render_text(text: str, values: Mapping[str, str], *, path: str, strict: bool) -> str:
    """Replaces ``$NAME`` and ``${NAME}`` for the names in ``values`` (syntax: see the module docstring).

    Line endings and every other character are kept, so only the placeholders change.

    Raises:
      PlaceholderError: ``strict`` and a ``$MODEL_*`` reference has no value; names the file, line and fix.
    """
    missing: list[tuple[int, str]] = []

    def replace(match: re.Match) -> str:
        escaped, braced, bare = match.groups()
        name = braced or bare
        if name in values:
            return match.group(0)[1:] if escaped else values[name]
        if strict and not escaped and name.startswith(_STRICT_PREFIX):
            missing.append((text.count("\n", 0, match.start()) + 1, match.group(0)))
        return match.group(0)

    rendered = _REFERENCE.sub(replace, text) if "$" in text else text
    if missing:
        where = "; ".join(f"{path}:{line}: {ref}" for line, ref in missing[:_MAX_REPORTED])
        more = f" (and {len(missing) - _MAX_REPORTED} more)" if len(missing) > _MAX_REPORTED else ""
        raise PlaceholderError(
            f"{where}{more} has no value and strict_placeholders is on. Fix: set model_hub_repo_id (fills "
            "$MODEL_REPO_ID) and model_hub_repo_branch (fills $MODEL_VERSION), give the value in placeholders, "
            "or turn strict_placeholders off."
        )
    return rendered


def render_bytes(data: bytes, values: Mapping[str, str], *, path: str, strict: bool) -> bytes:
    """Renders one whole file: text gets placeholders replaced, anything else is returned unchanged.

    The caller passes files of at most ``RENDER_LIMIT`` bytes; bigger ones are not rendered at all. Text means
    the whole file has no NUL byte and decodes as UTF-8 (a BOM stays in place; CRLF stays CRLF).
    """
    if b"\x00" in data or b"$" not in data:
        return data
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return data
    rendered = render_text(text, values, path=path, strict=strict)
    return data if rendered == text else rendered.encode("utf-8")


def default_app_file(sdk: str, files: Iterable[str]) -> str | None:
    """The ``app_file`` a Space of ``sdk`` should declare, given its file paths; ``None`` for docker."""
    if sdk not in SDKS:
        raise SpecError(f"space_sdk={sdk!r} is not a Space SDK: use one of {', '.join(SDKS)}.")
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
    if sdk not in SDKS:
        raise SpecError(f"space_sdk={sdk!r} is not a Space SDK: use one of {', '.join(SDKS)}.")
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
_MODEL_DIR_LINE = 'MODEL_DIR = Path(__file__).resolve().parent / "model"'


def model_loader_source(model_dir: str = "model") -> str:
    """Source of the ``model_loader.py`` placed at the Space root when a model is embedded under ``model_dir``."""
    parts = model_dir.strip("/").split("/")
    if not model_dir.strip("/") or any(p in ("", ".", "..") for p in parts) or "\\" in model_dir:
        raise SpecError(f"model_dir={model_dir!r} must be a relative posix folder such as 'model'.")
    source = _MODEL_LOADER_FILE.read_text(encoding="utf-8")
    if _MODEL_DIR_LINE not in source:  # pragma: no cover - guards edits of the loader file
        raise TemplateError(f"{_MODEL_LOADER_FILE} lost its line {_MODEL_DIR_LINE!r}.")
    return source.replace(_MODEL_DIR_LINE, f"MODEL_DIR = Path(__file__).resolve().parent / {'/'.join(parts)!r}")


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

