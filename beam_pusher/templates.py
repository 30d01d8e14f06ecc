"""Placeholder rendering: which files are text, and how ``$NAME`` placeholders in them get their values.

Pure functions on bytes and strings; nothing here imports Beam or huggingface_hub. Where templates are and which
files they hold is ``beam_pusher.sources``; the files beam_pusher writes itself (README.md front matter, the model
loader) are ``beam_pusher.frontmatter``.

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

import re
from collections.abc import Mapping

from beam_pusher.errors import PlaceholderError, SpecError
from beam_pusher.rules import ENV_NAME_PATTERN
from beam_pusher.spec import SpaceSpec

__all__ = ["RENDER_LIMIT", "TEXT_SAMPLE_SIZE", "is_text", "placeholder_values", "render_bytes", "render_text"]

RENDER_LIMIT = 10 * 1024 * 1024
"""Text files larger than this are passed through unrendered, by reference.

Rendering needs the whole file in memory, while files above the Hub's 10 MB LFS threshold are data (vocabularies,
CSVs, weights) rather than app source; streaming them keeps a worker's memory independent of model size.
"""

TEXT_SAMPLE_SIZE = 8192
"""How many leading bytes ``is_text`` needs to classify a file without reading it whole."""

# A placeholder's NAME follows the rule its key in ``placeholders`` must follow, so every key can be referenced.
_REFERENCE = re.compile(rf"(\$?)\$(?:\{{({ENV_NAME_PATTERN})\}}|({ENV_NAME_PATTERN}))")
_STRICT_PREFIX = "MODEL_"
_MAX_REPORTED = 20


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
