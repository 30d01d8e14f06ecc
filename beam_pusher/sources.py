"""Where app templates and models are, and which files they hold: paths and URLs in, ``SourceFile`` lists out.

Pure functions over fsspec, so the same code reads a template from the package, a local folder, ``gs://``,
``s3://``, ``memory://`` or ``hf://spaces/...``. Which files a listing leaves out (secrets, virtualenvs, caches,
what ``.gitignore`` lists, ``exclude``/``include``) is ``beam_pusher.selection``'s rule; this module walks the folder
and asks it. Nothing here imports Beam or huggingface_hub: the transforms call these functions on workers, and the
config validator calls them before anything touches the Hub.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path

import fsspec.core
from fsspec.implementations.local import LocalFileSystem

from beam_pusher.errors import TemplateError
from beam_pusher.rules import is_url
from beam_pusher.selection import Exclusion, Selector, describe_exclusions

__all__ = [
    "BUILTIN_APPS_URL",
    "SourceFile",
    "SourceListing",
    "builtin_apps",
    "list_source_files",
    "resolve_app_path",
    "resolve_model_path",
    "scan_source_files",
]

logger = logging.getLogger(__name__)

BUILTIN_APPS_URL: str = str(Path(__file__).resolve().parent / "apps")
"""Local path of the built-in templates (``apps/<sdk>/<name>``) inside the installed package."""

# Names joined by dots and slashes: ``apps.gradio.img_classifier``, and the proposal's ``apps/gradio.img_classifier``.
_NAMES = re.compile(r"^[A-Za-z_]\w*(?:[./][A-Za-z_]\w*)+$")


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

    Accepted forms: ``apps.gradio.img_classifier``, ``apps/gradio/img_classifier`` and the mixed
    ``apps/gradio.img_classifier`` of the HFSpacePusher proposal (relative to ``base_dir`` or the working directory:
    a folder of the literal name first, then the folder the dots spell; when neither exists and the name starts
    with ``apps``, the built-in template of that name), absolute paths, ``file://`` and any fsspec URL (``gs://``,
    ``memory://``, ...).

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
    if is_url(value) and not value.startswith(("file://", "local://")):
        return _resolve_remote(value, check=check, what=what)
    local = value.split("://", 1)[1] if "://" in value else value
    local = os.path.expanduser(local)
    base = os.path.abspath(base_dir) if base_dir else os.getcwd()
    candidates = [os.path.normpath(os.path.join(base, local))]
    if want_dir and not os.path.isabs(local):
        relative = local.replace("\\", "/").strip("/")
        if "." in relative and _NAMES.match(relative):
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


@dataclasses.dataclass(frozen=True)
class SourceListing:
    """What ``scan_source_files`` found under one root: the files to upload and what it left out, and why.

    Attributes:
      files: The files a Space gets, sorted by path.
      excluded: The files and folders left out (a folder once, for everything in it), sorted by path.
    """

    files: tuple[SourceFile, ...]
    excluded: tuple[Exclusion, ...] = ()


def list_source_files(root_url: str, *, prefix: str = "") -> list[SourceFile]:
    """The files ``scan_source_files`` selects under ``root_url`` with the default exclusions only.

    A ``.env``-like file left out is logged once, at WARNING.
    """
    listing = scan_source_files(root_url, prefix=prefix)
    secrets = [e.path for e in listing.excluded if e.is_secret]
    if secrets:
        logger.warning("%s: not uploading %s: .env files may hold secrets", root_url, ", ".join(secrets))
    return list(listing.files)


def scan_source_files(
    root_url: str, *, prefix: str = "", exclude: Sequence[str] = (), include: Sequence[str] = ()
) -> SourceListing:
    """Lists the files under ``root_url``, recursively, that a Space gets: chosen as git would choose them.

    Left out: the default exclusions (secrets such as ``.env``, ``.git``, virtualenvs, ``node_modules``, caches, OS
    files, logs), what the root's and nested ``.gitignore`` files list, and ``exclude``; ``include`` brings back
    any of them (see ``beam_pusher.selection`` for the pattern language). A left-out folder is not walked unless an
    ``include`` pattern might bring back a file in it, and only ``.gitignore`` files are read to decide.

    A single file yields one entry named by its base name, whatever the patterns say: it was named on purpose.
    ``prefix`` (e.g. ``"model/"``) is prepended to each path, a missing trailing ``/`` added; ``exclude`` and
    ``include`` are matched against these Space paths, ``.gitignore`` patterns against paths below their folder.

    Raises:
      TemplateError: the root is missing or holds no files to upload, or a path to upload escapes the root
        (``..`` components, or a local symlink resolving outside the root), or a local symlink is broken or loops.
    """
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    fs, root = _url_to_fs(root_url, what="template")
    selector = Selector(exclude, include)
    excluded: dict[str, Exclusion] = {}
    if isinstance(fs, LocalFileSystem):
        files = _list_local(root, prefix, selector, excluded)
    else:
        files = _list_remote(fs, root, root_url.rstrip("/"), prefix, selector, excluded)
    if not files:
        left_out = f" ({describe_exclusions(sorted(excluded.values(), key=lambda e: e.path))})" if excluded else ""
        raise TemplateError(
            f"{root_url!r} holds no files to upload{left_out}. Fix: point at the folder that contains the app "
            "(app.py, requirements.txt, ...), or bring files back with include:."
        )
    files.sort(key=lambda f: f.path)
    logger.debug("listed %d files under %s, left out %d", len(files), root_url, len(excluded))
    return SourceListing(tuple(files), tuple(sorted(excluded.values(), key=lambda e: e.path)))


def _read_gitignore(selector: Selector, folder: str, read) -> None:
    try:
        text = read().decode("utf-8", errors="replace")
    except OSError as exc:
        raise TemplateError(
            f"cannot read {folder}.gitignore ({type(exc).__name__}: {exc}). Fix: make it readable."
        ) from exc
    selector.add_gitignore(folder, text)


def _list_local(root: str, prefix: str, selector: Selector, excluded: dict[str, Exclusion]) -> list[SourceFile]:
    if os.path.isfile(root):
        return [SourceFile(prefix + os.path.basename(root), os.path.abspath(root), os.path.getsize(root))]
    if not os.path.isdir(root):
        raise TemplateError(f"{root!r} does not exist. Fix: give an existing folder or file.")
    real_root = os.path.realpath(root)
    out: list[SourceFile] = []

    def walk(folder: str, rel: str, ancestors: frozenset[str], covered: bool) -> None:
        gitignore = os.path.join(folder, ".gitignore")
        if not covered and os.path.isfile(gitignore):
            _read_gitignore(selector, rel, lambda: Path(gitignore).read_bytes())
        with os.scandir(folder) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                path = rel + entry.name
                is_dir = entry.is_dir()
                if is_dir and os.path.isfile(os.path.join(entry.path, "pyvenv.cfg")):
                    selector.add_virtualenv(path + "/")
                key = path + "/" if is_dir else path
                why = selector.reason(key, prefix + key)
                if why is not None and not covered:
                    excluded[key] = Exclusion(prefix + key, why)
                if why is not None and (not is_dir or selector.prunes):
                    continue
                real = os.path.realpath(entry.path)
                if entry.is_symlink() and os.path.commonpath([real, real_root]) != real_root:
                    if why is not None:
                        continue  # a left-out folder's links (a virtualenv's bin/python) are never followed
                    raise TemplateError(
                        f"{path!r} is a symlink to {real!r}, outside the template root {root!r}. Fix: copy the "
                        "file into the template or remove the link."
                    )
                if is_dir:
                    if real in ancestors:
                        raise TemplateError(f"{path!r} is a symlink loop in {root!r}. Fix: remove the link.")
                    walk(entry.path, path + "/", ancestors | {real}, covered or why is not None)
                elif entry.is_file():
                    if selector.included_secret(path, prefix + path):
                        logger.warning("uploading %s%s although it may hold secrets: include: names it", prefix, path)
                    out.append(SourceFile(prefix + path, os.path.abspath(entry.path), entry.stat().st_size))
                elif entry.is_symlink():
                    raise TemplateError(f"{path!r} in {root!r} is a broken symlink. Fix: remove or repair it.")
                else:
                    logger.warning("skipping %s: not a regular file", path)

    walk(root, "", frozenset({real_root}), False)
    return out


def _list_remote(
    fs, root: str, root_url: str, prefix: str, selector: Selector, excluded: dict[str, Exclusion]
) -> list[SourceFile]:
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
    listed: list[tuple[str, str, dict]] = []
    for path, info in found.items():
        rel = path[len(base) :] if path.startswith(base) else None
        parts = rel.split("/") if rel else []
        if not parts or any(p in ("", ".", "..") for p in parts):
            raise TemplateError(
                f"{path!r} escapes the template root {root_url!r} (or has an empty or '..' component). Fix: "
                "rename the file."
            )
        listed.append((path, rel, info))
    for _, rel, _ in listed:
        if rel.rsplit("/", 1)[-1] == "pyvenv.cfg" and "/" in rel:
            selector.add_virtualenv(rel.rsplit("/", 1)[0] + "/")
    for path, rel, _ in sorted(listed, key=lambda item: item[1].count("/")):  # shallow .gitignore files first
        folder = rel[: -len(".gitignore")]
        if rel.rsplit("/", 1)[-1] == ".gitignore" and _top_exclusion(selector, folder, prefix, {}) is None:
            _read_gitignore(selector, folder, lambda: fs.cat_file(path))
    folders: dict[str, str | None] = {}
    out = []
    for path, rel, info in listed:
        top = _top_exclusion(selector, rel, prefix, folders)
        if top is not None:
            excluded.setdefault(top, Exclusion(prefix + top, folders[top]))
            if selector.prunes or selector.reason(rel, prefix + rel) is not None:
                continue
        elif (why := selector.reason(rel, prefix + rel)) is not None:
            excluded[rel] = Exclusion(prefix + rel, why)
            continue
        size = info.get("size")
        out.append(SourceFile(prefix + rel, f"{root_url}/{rel}", int(size if size is not None else fs.size(path))))
    return out


def _top_exclusion(selector: Selector, rel: str, prefix: str, folders: dict[str, str | None]) -> str | None:
    """The outermost folder above ``rel`` that is left out (``".venv/"``), or None; ``folders`` caches reasons."""
    parts = rel.split("/")[:-1]
    for depth in range(1, len(parts) + 1):
        folder = "/".join(parts[:depth]) + "/"
        if folder not in folders:
            folders[folder] = selector.reason(folder, prefix + folder)
        if folders[folder] is not None:
            return folder
    return None
