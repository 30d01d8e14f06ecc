"""git's path patterns, as ``.gitattributes`` and ``.gitignore`` use them, for preupload's answers.

The Hub answers ``uploadMode: "lfs"`` for a path that the target revision's ``.gitattributes`` marks
``filter=lfs`` (the default ``*.bin``, ``*.safetensors``, ``saved_model/**/*``, ...) and ``shouldIgnore: true``
for a path its ``.gitignore`` excludes. Patterns follow git's wildmatch with ``WM_PATHNAME``: ``*`` and ``?`` stop at
``/``, ``**`` spans folders only between slashes, a pattern without a slash matches the name at any depth, one with
a slash is anchored at the root, ``!`` re-includes (``.gitignore`` only) and a trailing ``/`` matches folders only.

Example::

    GitAttributes.parse("*.bin filter=lfs diff=lfs merge=lfs -text\\n").is_lfs("model/weights.bin")  # True
    GitIgnore.parse("build/\\n*.log\\n!keep.log\\n").ignores("build/out.txt")  # True
"""

from __future__ import annotations

import dataclasses
import re

__all__ = ["GitAttributes", "GitIgnore"]


@dataclasses.dataclass(frozen=True)
class _Pattern:
    """One compiled pattern line: ``regex`` matches a whole path (anchored) or a name (floating)."""

    regex: re.Pattern[str]
    anchored: bool
    negate: bool = False
    dir_only: bool = False

    def matches(self, path: str, is_dir: bool) -> bool:
        if self.dir_only and not is_dir:
            return False
        return bool(self.regex.fullmatch(path if self.anchored else path.rsplit("/", 1)[-1]))


def _translate(pattern: str) -> str:
    """A regular expression for one wildmatch pattern (``WM_PATHNAME``)."""
    out, i, n = [], 0, len(pattern)
    while i < n:
        char = pattern[i]
        if char == "*" and pattern.startswith("**", i):
            before_ok = i == 0 or pattern[i - 1] == "/"
            after = pattern[i + 2 : i + 3]
            if before_ok and after == "/":  # "**/": any number of folders, none included
                out.append("(?:.*/)?")
                i += 3
                continue
            if before_ok and i + 2 == n:  # trailing "/**": everything inside
                out.append(".*")
                i += 2
                continue
            out.append("[^/]*")  # any other "**" is a plain "*"
            i += 2
            continue
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "\\" and i + 1 < n:
            i += 1
            out.append(re.escape(pattern[i]))
        elif char == "[":
            end = pattern.find("]", i + 2 if pattern[i + 1 : i + 2] in ("!", "^") else i + 1)
            if end == -1:
                out.append(re.escape(char))
            else:
                body = pattern[i + 1 : end]
                negate = body[:1] in ("!", "^")
                body = body[1:] if negate else body
                out.append(("[^/" if negate else "[") + body.replace("\\", "\\\\") + "]")
                i = end
        else:
            out.append(re.escape(char))
        i += 1
    return "".join(out)


def _strip_trailing_spaces(line: str) -> str:
    stripped = line.rstrip(" \t")
    if stripped.endswith("\\") and len(stripped) < len(line):  # "a\ " keeps its escaped space
        stripped += " "
    return stripped


def _compile(text: str, *, negate: bool = False) -> _Pattern | None:
    dir_only = text.endswith("/")
    text = text.rstrip("/")
    if not text:
        return None
    anchored = "/" in text
    text = text.lstrip("/")
    try:
        regex = re.compile(_translate(text), re.DOTALL)
    except re.error:  # a pattern git would not match anything with either
        return None
    return _Pattern(regex, anchored, negate, dir_only)


def _parents(path: str) -> list[str]:
    parts = path.split("/")
    return ["/".join(parts[:depth]) for depth in range(1, len(parts))]


@dataclasses.dataclass(frozen=True)
class GitIgnore:
    """The patterns of one root ``.gitignore``; ``ignores(path)`` as ``git check-ignore`` would answer."""

    patterns: tuple[_Pattern, ...] = ()

    @classmethod
    def parse(cls, text: str) -> GitIgnore:
        patterns = []
        for raw in text.splitlines():
            line = _strip_trailing_spaces(raw)
            if not line or line.startswith("#"):
                continue
            negate = line.startswith("!")
            if negate or line.startswith("\\!") or line.startswith("\\#"):
                line = line[1:]
            pattern = _compile(line, negate=negate)
            if pattern is not None:
                patterns.append(pattern)
        return cls(tuple(patterns))

    def _last_match(self, path: str, is_dir: bool) -> bool:
        ignored = False
        for pattern in self.patterns:
            if pattern.matches(path, is_dir):
                ignored = not pattern.negate
        return ignored

    def ignores(self, path: str) -> bool:
        """True if the file ``path`` is excluded: by a pattern, or because a folder above it is (git's rule)."""
        if not self.patterns:
            return False
        if any(self._last_match(folder, True) for folder in _parents(path)):
            return True
        return self._last_match(path, False)


@dataclasses.dataclass(frozen=True)
class GitAttributes:
    """The ``filter`` attribute of one root ``.gitattributes``: which paths git-lfs stores."""

    rules: tuple[tuple[_Pattern, str | None], ...] = ()

    @classmethod
    def parse(cls, text: str) -> GitAttributes:
        rules = []
        for raw in text.splitlines():
            fields = raw.strip().split()
            if not fields or fields[0].startswith("#") or fields[0].startswith("!"):
                continue  # comments; negative patterns are forbidden in attributes files
            if fields[0].endswith("/"):
                continue  # a folder pattern does not apply to the files inside it, in attributes files
            pattern = _compile(fields[0])
            for attribute in fields[1:]:
                if attribute.startswith("filter="):
                    value: str | None = attribute[len("filter=") :]
                elif attribute in ("-filter", "!filter"):
                    value = None
                else:
                    continue
                if pattern is not None:
                    rules.append((pattern, value))
        return cls(tuple(rules))

    def filter_of(self, path: str) -> str | None:
        """The ``filter`` attribute of ``path`` (the last matching line wins), or None if unset."""
        value = None
        for pattern, filter_value in self.rules:
            if pattern.matches(path, False):
                value = filter_value
        return value

    def is_lfs(self, path: str) -> bool:
        return self.filter_of(path) == "lfs"
