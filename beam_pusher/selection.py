"""Which files of a template or model folder go to a Space: chosen as git would choose them, in one pattern language.

Every pattern here (``exclude``, ``include``, ``keep`` and the folder's own ``.gitignore`` files) is a gitignore
pattern, matched by the maintained ``pathspec`` library (``GitIgnoreSpec``), so it means what it means in git:

- ``*.log`` (no ``/``) matches at any depth; ``/build`` or ``data/*.csv`` (a ``/`` not at the end) are anchored at
  the root; ``*`` never crosses a ``/``, ``**`` does (``data/**/*.csv``); ``logs/`` matches only a folder;
- a pattern that matches a folder takes everything under it: ``data/*`` matches the folder ``data/sub`` and so
  ``data/sub/deep.csv`` too, exactly as in a ``.gitignore``. ``data/*`` with ``!data/*/`` is "only the files
  directly in data/";
- ``!pattern`` re-includes what an earlier pattern of the same list matched.

A file is left out when any of these, in this order, leaves it out, and ``include`` does not bring it back:

1. the default exclusions (``DEFAULT_EXCLUDES``): ``.env`` and ``.env.*`` files (they hold secrets; ``.env.example``
   too: only ``include`` uploads one), ``.git``, virtualenvs (``.venv/``, ``venv/`` and any folder holding a
   ``pyvenv.cfg``), ``node_modules/``, caches, OS files and ``*.log``;
2. the folder's ``.gitignore`` files, the root one and nested ones, the deeper one deciding as in git (a ``!`` in a
   ``.gitignore`` re-includes only what a ``.gitignore`` left out, never a default exclusion);
3. the Space's ``exclude`` patterns.

``include`` patterns re-include a path any layer left out (``include: [.env.example]``). Only the contents of
``.gitignore`` files are read to decide: the rest is decided on names, so listings stay streaming-friendly on any
fsspec filesystem. Nothing here imports Beam or huggingface_hub.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any

import pathspec

from beam_pusher.errors import SpecError

__all__ = [
    "DEFAULT_EXCLUDES",
    "SECRET",
    "Exclusion",
    "PathPatterns",
    "Selector",
    "check_patterns",
    "describe_exclusions",
]

SECRET = "secret"
"""The reason given for a ``.env``-like file: it may hold API keys, so a deploy says it left one out."""
VIRTUALENV = "virtualenv"

DEFAULT_EXCLUDES: tuple[tuple[str, str], ...] = (
    (".env", SECRET),
    (".env.*", SECRET),
    (".git", "git"),
    (".venv/", VIRTUALENV),
    ("venv/", VIRTUALENV),
    ("node_modules/", "node_modules"),
    ("__pycache__/", "cache"),
    ("*.pyc", "cache"),
    (".pytest_cache/", "cache"),
    (".mypy_cache/", "cache"),
    (".ruff_cache/", "cache"),
    (".ipynb_checkpoints/", "cache"),
    (".DS_Store", "OS file"),
    ("Thumbs.db", "OS file"),
    ("*.log", "log"),
)
"""(gitignore pattern, reason) of what a deploy leaves out unless ``include`` names it."""



@dataclasses.dataclass(frozen=True)
class Exclusion:
    """A file or folder of a template or model that a deploy leaves out, and why.

    Attributes:
      path: Its path in the Space; a folder's ends with ``/`` (``.venv/``), and stands for everything in it.
      reason: ``secret``, ``git``, ``virtualenv``, ``node_modules``, ``cache``, ``OS file`` or ``log`` (a default
        exclusion), the ``.gitignore`` that lists it (``.gitignore``, ``sub/.gitignore``), or ``exclude``.
    """

    path: str
    reason: str

    @property
    def is_secret(self) -> bool:
        """Whether it is a ``.env``-like file, which may hold API keys."""
        return self.reason == SECRET


_DEFAULTS = pathspec.GitIgnoreSpec.from_lines(p for p, _ in DEFAULT_EXCLUDES)
_DEFAULT_REASONS = tuple(reason for _, reason in DEFAULT_EXCLUDES)
_EXAMPLES = {"keep": "data/", "exclude": "*.ipynb", "include": ".env.example"}


def check_patterns(value: Any, *, field: str) -> tuple[str, ...]:
    """``value`` (one pattern or a list of them) as a tuple of gitignore patterns, else SpecError.

    A pattern that gitignore syntax cannot read (``!`` alone, a trailing ``\\``) or that matches nothing (a ``#``
    comment, ``/``) is refused, so a typo does not silently keep, exclude or include nothing.
    """
    patterns = (value,) if isinstance(value, str) else value
    example = _EXAMPLES.get(field, "data/")
    if not isinstance(patterns, (list, tuple)) or not all(isinstance(p, str) and p.strip() for p in patterns):
        raise SpecError(
            f"{field}={value!r} must be a list of glob patterns in .gitignore syntax, such as {example!r}."
        )
    for pattern in patterns:
        try:
            compiled = pathspec.GitIgnoreSpec.from_lines([pattern]).patterns
        except ValueError as exc:
            raise SpecError(
                f"{field}: {pattern!r} is not a .gitignore pattern ({exc}); write e.g. {example!r}."
            ) from None
        if not compiled or compiled[0].include is None:
            raise SpecError(
                f"{field}: {pattern!r} matches nothing in .gitignore syntax (a '#' starts a comment); write e.g. "
                f"{example!r}, or '\\#name' for a name that starts with '#'."
            )
    return tuple(patterns)


class PathPatterns:
    """A list of gitignore patterns, compiled once: ``PathPatterns(["data/", "*.tmp"]).matches("data/a/b.csv")``."""

    def __init__(self, patterns: Iterable[str] = ()):
        self.patterns = tuple(patterns)
        self._spec = pathspec.GitIgnoreSpec.from_lines(self.patterns) if self.patterns else None

    def __bool__(self) -> bool:
        return self._spec is not None

    def matches(self, path: str) -> bool:
        """Whether the patterns select ``path`` (a folder's path ends with ``/``), as ``git check-ignore`` would."""
        return self._spec is not None and bool(self._spec.match_file(path))


class Selector:
    """Decides, path by path, whether a listing leaves a file or folder out, and why.

    The walker feeds it what it finds on the way (``add_gitignore``, ``add_virtualenv``) before it asks about the
    paths below. ``rel`` is a path relative to the listed root (what ``.gitignore`` files are relative to),
    ``space_path`` the path in the Space (what ``exclude`` and ``include`` are matched against); a folder's paths
    end with ``/``.

    Args:
      exclude: The Space's ``exclude`` patterns.
      include: The Space's ``include`` patterns.
    """

    def __init__(self, exclude: Sequence[str] = (), include: Sequence[str] = ()):
        self._exclude = PathPatterns(exclude)
        self._include = PathPatterns(include)
        self._gitignores: list[tuple[str, str, pathspec.GitIgnoreSpec]] = []  # (folder, its .gitignore, spec)
        self._virtualenvs: set[str] = set()

    @property
    def prunes(self) -> bool:
        """Whether a left-out folder can be skipped whole: only when no ``include`` could bring back a file in it."""
        return not self._include

    def add_gitignore(self, folder: str, text: str) -> None:
        """Honours the ``.gitignore`` of ``folder`` (``""`` for the root, else ``"sub/"``) for the paths below it."""
        spec = pathspec.GitIgnoreSpec.from_lines(text.splitlines())
        if spec.patterns:
            self._gitignores.append((folder, f"{folder}.gitignore", spec))
            self._gitignores.sort(key=lambda g: -len(g[0]))  # the deepest decides first, as in git

    def add_virtualenv(self, folder: str) -> None:
        """Marks ``folder`` (``"env/"``) as a virtualenv: it holds a ``pyvenv.cfg``."""
        self._virtualenvs.add(folder)

    def reason(self, rel: str, space_path: str) -> str | None:
        """Why the path is left out (``secret``, ``virtualenv``, ``.gitignore``, ``exclude``, ...), or None."""
        if self._include.matches(space_path):
            return None
        return self.layer_reason(rel, space_path)

    def included_secret(self, rel: str, space_path: str) -> bool:
        """Whether ``include`` brings back a path that the defaults leave out as a secret (worth a warning)."""
        return self._include.matches(space_path) and self.layer_reason(rel, space_path) == SECRET

    def layer_reason(self, rel: str, space_path: str) -> str | None:
        """Why the defaults, a ``.gitignore`` or ``exclude`` leave the path out, ``include`` not considered."""
        if any(rel.startswith(folder) for folder in self._virtualenvs):
            return VIRTUALENV
        found = _DEFAULTS.check_file(space_path)
        if found.include:
            return _DEFAULT_REASONS[found.index]
        for folder, name, spec in self._gitignores:
            if rel.startswith(folder):
                found = spec.check_file(rel[len(folder) :])
                if found.include is not None:
                    if found.include:
                        return name
                    break  # a deeper '!' re-included it
        if self._exclude.matches(space_path):
            return "exclude"
        return None


def describe_exclusions(excluded: Sequence[Exclusion], *, limit: int = 8) -> str:
    """``excluded 3: .env (secret), .venv/ (virtualenv), app.log (.gitignore)``; the first ``limit`` are named."""
    named = ", ".join(f"{e.path} ({e.reason})" for e in excluded[:limit])
    more = f", and {len(excluded) - limit} more" if len(excluded) > limit else ""
    return f"excluded {len(excluded)}: {named}{more}"
