"""Placeholder rendering: which files are text, and how ``$NAME`` placeholders in them get their values.

Pure functions on bytes, strings and streams; nothing here imports Beam or huggingface_hub. Where templates are and
which files they hold is ``beam_pusher.sources``; the files beam_pusher writes itself (README.md front matter, the
model loader) are ``beam_pusher.frontmatter``.

Text or binary is decided by content, never by file name: a file is text when it has no NUL byte and decodes
as UTF-8 (a UTF-8 BOM is fine and kept; UTF-16/32 files contain NUL bytes and so count as binary). Every text file
is rendered; every other file passes through byte-identical. Text files of at most ``RENDER_LIMIT`` bytes are
rendered in memory; larger ones are rendered as streams, ``STREAM_CHUNK_SIZE`` bytes at a time, so a worker's
memory does not grow with the file: one streamed pass gives the rendered file's hashes, and the upload renders it
again as it sends it (``RenderedStream``). A placeholder cut in two by a chunk boundary is carried over to the next
chunk, so a streamed file renders exactly as it would whole.

Placeholder syntax (shell-like, on purpose, so templates read naturally):

- ``$NAME`` and ``${NAME}``, NAME = ``[A-Za-z_][A-Za-z0-9_]*``. ``$NAME`` takes the longest name, so
  ``$MODEL_VERSION`` is never read as ``$MODEL`` + ``_VERSION``; write ``${MODEL_REPO_ID}_x`` to glue text on.
- Only names that have a value are replaced; anything else (``$HOME``, JavaScript's ``${x}``) is left as written.
- ``$$NAME`` / ``$${NAME}`` write a literal ``$NAME`` / ``${NAME}`` when NAME has a value. A ``$$`` before any
  other text is left alone, because shell scripts and Makefiles (``$$HOME``) use it for their own purposes; in
  strict mode only, ``$${NAME}`` writes ``${NAME}`` for every NAME: that is how a strict template writes a literal
  ``${x}`` (a JavaScript template string, a shell ``${HOME}``).
- Values are inserted as-is and not rendered again.

References without a value. The braced form ``${NAME}`` is always a placeholder reference, so an undefined one is
always reported. The bare form is everyday shell, Dockerfile and Makefile syntax (``$HOME``, ``$PATH``, ``$1``), so
an undefined ``$NAME`` is reported only when it looks like a placeholder of this Space:

- NAME starts with ``MODEL_`` or ``SPACE_``, the names beam_pusher fills itself;
- NAME is a defined name followed by ``_`` and more (``$COLOR_DARK`` while ``COLOR`` is defined: the longest-name
  rule read it as one name; write ``${COLOR}_DARK``);
- NAME is a near miss of a defined name (``$COLOUR`` while ``COLOR`` is defined).

Escaped references (``$$...``) are never reported. Per Space, every placeholder the config defines
(``placeholders``, ``model_hub_repo_id`` for ``$MODEL_REPO_ID``, ``model_hub_repo_branch`` for ``$MODEL_VERSION``)
that no file uses is reported too. With ``strict_placeholders`` the Space fails with all of them listed; without it,
it is deployed with one warning that lists them, in its result and the log (``check_placeholder_use``).
"""

from __future__ import annotations

import codecs
import dataclasses
import difflib
import hashlib
import re
from collections.abc import Callable, Iterator, Mapping
from typing import BinaryIO

from beam_pusher.errors import PlaceholderError, SpecError
from beam_pusher.hashing import FileHashes, hash_bytes, hash_stream
from beam_pusher.rules import ENV_NAME_PATTERN
from beam_pusher.spec import PlaceholderUse, Rendering, SpaceSpec

__all__ = [
    "RENDER_LIMIT",
    "STREAM_CHUNK_SIZE",
    "TEXT_SAMPLE_SIZE",
    "NotTextError",
    "RenderedChunks",
    "RenderedFile",
    "check_placeholder_use",
    "defined_placeholders",
    "is_text",
    "placeholder_values",
    "render_bytes",
    "render_file",
    "render_text",
    "render_text_with_use",
]

RENDER_LIMIT = 10 * 1024 * 1024
"""Text files up to this size are rendered in memory; larger ones are rendered as streams."""

TEXT_SAMPLE_SIZE = 8192
"""How many leading bytes ``is_text`` needs to classify a file without reading it whole."""

STREAM_CHUNK_SIZE = 256 * 1024
"""Bytes read at a time when a large text file is rendered as a stream."""

# A placeholder's NAME follows the rule its key in ``placeholders`` must follow, so every key can be referenced.
_REFERENCE = re.compile(rf"(\$?)\$(?:\{{({ENV_NAME_PATTERN})\}}|({ENV_NAME_PATTERN}))")
# The end of a chunk that may be the start of a reference the next chunk finishes ("$", "${MOD", "$$MODEL_VE").
_UNFINISHED = re.compile(r"\$+\{?[A-Za-z0-9_]*\Z")
# How much of a chunk's end may be carried over. A name longer than this is no defined name; it is still left as
# written, only an undefined one that long may be reported cut short.
_MAX_CARRY = 64 * 1024
_OWN_PREFIXES = ("MODEL_", "SPACE_")
_NEAR_MISS = 0.85
_MAX_REPORTED = 20
_WHERE = re.compile(r"^(.*):(\d+): ")


class NotTextError(Exception):
    """A streamed file turned out not to be UTF-8 text after its first chunk."""


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


def defined_placeholders(spec: SpaceSpec) -> dict[str, str]:
    """The placeholders the config defines for a Space, name -> the setting that defines it.

    ``SPACE_REPO_ID`` is not among them: every Space has it, and a template need not use it.
    """
    defined = {name: f"placeholders.{name}" for name in spec.placeholders}
    if spec.model_hub_repo_id is not None:
        defined["MODEL_REPO_ID"] = "model_hub_repo_id"
    if spec.model_hub_repo_branch is not None:
        defined["MODEL_VERSION"] = "model_hub_repo_branch"
    return defined


class _Renderer:
    """Renders one file, whole or chunk by chunk, and notes the names it filled and the references it could not."""

    def __init__(self, values: Mapping[str, str], *, path: str, strict: bool):
        self._values = values
        self._path = path
        self._strict = strict
        self._line = 1
        self._carry = ""
        self._carry_limit = max(_MAX_CARRY, max(map(len, values), default=0) + 4)
        self._suspects: dict[str, bool] = {}
        self.used: set[str] = set()
        self.unresolved: list[str] = []
        self.unresolved_total = 0
        self.changed = False

    def feed(self, text: str) -> str:
        """Renders what of ``text`` (and the carry) no later chunk can change; keeps the rest for the next call."""
        text = self._carry + text
        cut = len(text)
        tail = _UNFINISHED.search(text, max(0, cut - self._carry_limit))
        if tail:
            run = tail.group()
            dollars = len(run) - len(run.lstrip("$"))
            cut = tail.start() + max(0, dollars - 2)  # of a run of '$', only the last two can start a reference
        self._carry = text[cut:]
        return self.render(text[:cut])

    def finish(self) -> str:
        """Renders the carry: call once, after the last chunk."""
        text, self._carry = self._carry, ""
        return self.render(text)

    def use(self) -> PlaceholderUse:
        return PlaceholderUse(frozenset(self.used), tuple(self.unresolved), self.unresolved_total)

    def render(self, text: str) -> str:
        """Renders ``text`` as the next part of the file (whole references only: see ``feed``)."""
        if "$" not in text:
            self._line += text.count("\n")
            return text
        position, line = 0, self._line

        def replace(match: re.Match) -> str:
            nonlocal position, line
            escaped, braced, bare = match.groups()
            name = braced or bare
            written = match.group(0)
            if name in self._values:
                self.changed = True
                if escaped:
                    return written[1:]
                self.used.add(name)
                return self._values[name]
            if escaped:
                if braced and self._strict:
                    self.changed = True
                    return written[1:]
                return written
            if braced or self._suspect(name):
                line += text.count("\n", position, match.start())
                position = match.start()
                self._report(line, written)
            return written

        rendered = _REFERENCE.sub(replace, text)
        self._line += text.count("\n")
        return rendered

    def _suspect(self, name: str) -> bool:
        """Whether an undefined bare ``$NAME`` looks like a placeholder of this Space (see the module docstring)."""
        found = self._suspects.get(name)
        if found is None:
            found = (
                name.startswith(_OWN_PREFIXES)
                or any(name.startswith(f"{defined}_") for defined in self._values)
                or bool(difflib.get_close_matches(name, list(self._values), n=1, cutoff=_NEAR_MISS))
            )
            self._suspects[name] = found
        return found

    def _report(self, line: int, written: str) -> None:
        self.unresolved_total += 1
        if len(self.unresolved) < _MAX_REPORTED:
            self.unresolved.append(f"{self._path}:{line}: {written}")


def render_text_with_use(
    text: str, values: Mapping[str, str], *, path: str, strict: bool = False
) -> tuple[str, PlaceholderUse]:
    """Renders ``text`` (syntax: see the module docstring) and says which names it used and which it could not fill.

    Never raises for a missing value: the caller decides, for the whole Space, with ``check_placeholder_use``.
    ``strict`` only decides what ``$${NAME}`` writes for an undefined NAME.
    """
    renderer = _Renderer(values, path=path, strict=strict)
    return renderer.render(text), renderer.use()


def render_text(text: str, values: Mapping[str, str], *, path: str, strict: bool) -> str:
    """Replaces ``$NAME`` and ``${NAME}`` for the names in ``values`` (syntax: see the module docstring).

    Line endings and every other character are kept, so only the placeholders change.

    Raises:
      PlaceholderError: ``strict`` and a reference has no value; names the file, line and fix.
    """
    rendered, use = render_text_with_use(text, values, path=path, strict=strict)
    if strict and use.unresolved_total:
        raise PlaceholderError(_unresolved_message(use) + " and strict_placeholders is on. " + _FIX)
    return rendered


def render_bytes(data: bytes, values: Mapping[str, str], *, path: str, strict: bool) -> bytes:
    """Renders one whole file: text gets placeholders replaced, anything else is returned unchanged.

    Text means the whole file has no NUL byte and decodes as UTF-8 (a BOM stays in place; CRLF stays CRLF).

    Raises:
      PlaceholderError: as ``render_text``.
    """
    text = _decode(data)
    if text is None:
        return data
    rendered = render_text(text, values, path=path, strict=strict)
    return data if rendered == text else rendered.encode("utf-8")


def _decode(data: bytes) -> str | None:
    """The text of a file that renders: None for binary and for text without a '$' (nothing to render)."""
    if b"\x00" in data or b"$" not in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


# Whole files, in memory or as streams ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class RenderedFile:
    """One file after ``render_file``.

    Attributes:
      hashes: Size and hashes of the file as the Space gets it (rendered).
      content: The rendered bytes when they are held in memory (text up to ``RENDER_LIMIT`` rendered bytes).
      rendering: Set for a large text file that placeholders change: the upload renders its source again, as a
        ``RenderedStream``. None with no ``content`` means the source goes up byte-identical.
      use: What rendering found (names used, references without a value).
      streamed: Whether the file was rendered as a stream.
      cached: Whether ``hashes`` came from the hash cache (``beam_pusher.hashcache``), so nothing was read.
    """

    hashes: FileHashes
    content: bytes | None = None
    rendering: Rendering | None = None
    use: PlaceholderUse = PlaceholderUse()
    streamed: bool = False
    cached: bool = False


def render_file(
    open_source: Callable[[], BinaryIO], size: int, values: Mapping[str, str], *, path: str, strict: bool = False
) -> RenderedFile:
    """Renders one file of ``size`` bytes read from ``open_source()`` (a context manager giving a seekable stream).

    Text up to ``RENDER_LIMIT`` bytes is rendered in memory; larger text is rendered as a stream in constant memory,
    and comes back with ``rendering`` when placeholders change it (or with ``content``, when it renders to at most
    ``RENDER_LIMIT`` bytes). Binary files are hashed while streaming and go up byte-identical. Missing values are
    not raised: see ``render_text_with_use``.

    Raises:
      OSError: the file changed size while it was read.
    """
    with open_source() as stream:
        sample = stream.read(TEXT_SAMPLE_SIZE)
        if is_text(sample):
            if size <= RENDER_LIMIT:
                data = sample + stream.read()
                text = _decode(data)
                if text is None:
                    return RenderedFile(hash_bytes(data), content=data)
                rendered, use = render_text_with_use(text, values, path=path, strict=strict)
                content = data if rendered == text else rendered.encode("utf-8")
                return RenderedFile(hash_bytes(content), content=content, use=use)
            stream.seek(0)
            try:
                return _render_large(stream, size, values, path=path, strict=strict)
            except NotTextError:
                pass  # a NUL byte or invalid UTF-8 past the sample: binary after all
        stream.seek(0)
        return RenderedFile(hash_stream(stream, size))


def _render_large(stream: BinaryIO, size: int, values: Mapping[str, str], *, path: str, strict: bool) -> RenderedFile:
    chunks = RenderedChunks(stream, values, path=path, strict=strict)
    sha256 = hashlib.sha256()
    rendered_size = 0
    for chunk in chunks:
        sha256.update(chunk)
        rendered_size += len(chunk)
    if chunks.read != size:
        raise OSError(f"the file changed while it was read: listed as {size} bytes, read {chunks.read}")
    use = chunks.renderer.use()
    if not chunks.renderer.changed:
        return RenderedFile(FileHashes(size, sha256.hexdigest(), None), use=use, streamed=True)
    if rendered_size <= RENDER_LIMIT:  # placeholders made it small: keep it like any small file
        stream.seek(0)
        content = b"".join(RenderedChunks(stream, values, path=path, strict=strict))
        return RenderedFile(hash_bytes(content), content=content, use=use, streamed=True)
    hashes = FileHashes(rendered_size, sha256.hexdigest(), None)  # above the git blob limit: LFS, sha256 only
    rendering = Rendering(tuple(sorted(values.items())), strict)
    return RenderedFile(hashes, rendering=rendering, use=use, streamed=True)


class RenderedChunks:
    """Iterates over the rendered bytes of a UTF-8 stream; raises ``NotTextError`` when it turns out not to be text."""

    def __init__(self, stream: BinaryIO, values: Mapping[str, str], *, path: str, strict: bool):
        self._stream = stream
        self.renderer = _Renderer(values, path=path, strict=strict)
        self.read = 0  # source bytes read so far

    def __iter__(self) -> Iterator[bytes]:
        decoder = codecs.getincrementaldecoder("utf-8")()
        while chunk := self._stream.read(STREAM_CHUNK_SIZE):
            self.read += len(chunk)
            if b"\x00" in chunk:
                raise NotTextError
            out = self.renderer.feed(self._decode(decoder, chunk, final=False))
            if out:
                yield out.encode("utf-8")
        last = self.renderer.feed(self._decode(decoder, b"", final=True)) + self.renderer.finish()
        if last:
            yield last.encode("utf-8")

    @staticmethod
    def _decode(decoder: codecs.IncrementalDecoder, chunk: bytes, *, final: bool) -> str:
        try:
            return decoder.decode(chunk, final=final)
        except UnicodeDecodeError:
            raise NotTextError from None


# A Space's placeholders, all files together --------------------------------------------------------------------

_FIX = (
    "Fix: give each value in placeholders (model_hub_repo_id fills $MODEL_REPO_ID, model_hub_repo_branch fills "
    "$MODEL_VERSION), write ${NAME}_text rather than $NAME_text, write $${NAME} for a literal ${NAME}, drop "
    "placeholders no file uses, or turn strict_placeholders off."
)


def _unresolved_message(use: PlaceholderUse) -> str:
    def where(text: str) -> tuple[str, int]:
        found = _WHERE.match(text)
        return (found.group(1), int(found.group(2))) if found else (text, 0)

    shown = sorted(use.unresolved, key=where)[:_MAX_REPORTED]
    more = use.unresolved_total - len(shown)
    return "; ".join(shown) + (f" (and {more} more)" if more > 0 else "") + (
        " has no value" if use.unresolved_total == 1 else " have no value"
    )


def check_placeholder_use(spec: SpaceSpec, use: PlaceholderUse) -> tuple[str | None, str | None]:
    """Applies the placeholder rules to a whole Space, once every file is rendered: ``(error, warning)``.

    Reports every reference without a value and every defined placeholder that no file uses (module docstring).
    With ``strict_placeholders`` that is the error that fails the Space, else the one warning of this Space; both
    are None when there is nothing to report.
    """
    defined = defined_placeholders(spec)
    unused = sorted(set(defined) - use.used)
    parts = []
    if use.unresolved_total:
        parts.append(_unresolved_message(use))
    if unused:
        names = ", ".join(f"${name} ({defined[name]})" for name in unused)
        parts.append(f"{names} {'is' if len(unused) == 1 else 'are'} defined but used by no file")
    if not parts:
        return None, None
    found = "; ".join(parts)
    if spec.strict_placeholders:
        return f"{spec.repo_id}: {found}, and strict_placeholders is on. {_FIX}", None
    return None, (
        f"placeholders: {found}; references without a value were left as written. Set strict_placeholders: true "
        "to fail such a Space instead."
    )
