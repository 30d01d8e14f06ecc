"""The elements that flow through a deployment: what to deploy, the files, and what happened.

All are frozen dataclasses so they pickle cheaply and identically on every Beam runner.
``SpaceSpec`` validates itself on construction: a bad value fails where it is written, never on a worker
after files were uploaded.
"""

from __future__ import annotations

import collections
import dataclasses
import enum
from collections.abc import Mapping
from typing import Any

from beam_pusher.auth import check_secret_reference
from beam_pusher.errors import SpecError
from beam_pusher.rules import SDKS, check_env_name, check_space_sdk, validate_repo_id
from beam_pusher.selection import Exclusion, check_patterns
from beam_pusher.settings import SettingChange, check_hardware, check_sleep_time

__all__ = [
    "AppFile",
    "ChangeAction",
    "Exclusion",
    "Outcome",
    "PlaceholderUse",
    "PlannedChange",
    "PushResult",
    "Rendering",
    "SDKS",
    "SettingChange",
    "SpaceFiles",
    "SpaceSpec",
    "validate_repo_id",
]

def _check_mapping(name: str, value: Any, what: str) -> dict[str, str]:
    """A mapping of ``NAME`` keys (placeholders, secrets, variables) with scalar values, as strings."""
    if not isinstance(value, Mapping):
        raise SpecError(f"{name} must be a mapping of {what}, got {type(value).__name__}: {value!r}.")
    out = {}
    for key, item in value.items():
        check_env_name(key, field=name)
        if not isinstance(item, (str, int, float, bool)):
            raise SpecError(f"{name}[{key!r}] must be a string, got {type(item).__name__}.")
        out[key] = str(item)
    return out


def _check_text(name: str, value: Any) -> None:
    """An optional text field (``title``, ``commit_message``, ...): None or a string that is not blank."""
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise SpecError(f"{name}={value!r} must be a non-empty string.")


def _check_app_port(port: Any, sdk: str) -> None:
    """``app_port``: None, or a TCP port, for a Docker Space only (the Hub serves other SDKs on their own port)."""
    if port is None:
        return
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise SpecError(f"app_port={port!r} is not a port: give a whole number from 1 to 65535, such as 8501.")
    if sdk != "docker":
        raise SpecError(
            f"app_port={port} is set for a {sdk} Space, but only Docker Spaces choose their port. Fix: drop app_port, "
            "or set space_sdk: docker with a template that has a Dockerfile."
        )


@dataclasses.dataclass(frozen=True)
class SpaceSpec:
    """What one Space should hold after a deploy.

    Attributes:
      repo_id: The Space, ``namespace/name``.
      app_path: The app template: ``apps.gradio.img_classifier``, ``apps/gradio/img_classifier``, an absolute path
        or any fsspec URL (``gs://``, ``s3://``, ``memory://``, ``file://``, ``hf://spaces/...``).
      space_sdk: ``gradio``, ``streamlit``, ``docker`` or ``static``.
      model_path: URL of a model directory to embed under ``model/`` (with a generated ``model_loader.py``).
      model_hub_repo_id: A model repository the app loads from instead (fills ``$MODEL_REPO_ID``).
      model_hub_repo_branch: The model's branch or tag (fills ``$MODEL_VERSION``).
      placeholders: More ``$NAME`` -> value replacements for the template's text files.
      private: Whether the Space is private (True) or public (False); None leaves an existing Space's visibility
        as it is (a new Space is public).
      hardware: Space hardware flavor (``cpu-basic``, ``t4-small``, ...; ``huggingface_hub.SpaceHardware``); None
        leaves it as it is.
      sleep_time: Seconds without visitors before the Space sleeps, -1 for never (upgraded hardware only); None
        leaves it as it is.
      secrets: Space secret name -> reference such as ``env:NAME``, resolved on the worker; never a value. The
        Space's secrets are declared state: one this tool set that is not listed here is deleted; one set by hand
        (in the Hub's UI) is left alone unless listed, and then overwritten.
      variables: Space variable name -> value, declared state like ``secrets``.
      keep: Patterns of Space files a deploy never deletes, in .gitignore syntax (``data/``, ``*.db``): the same
        language as ``exclude``, so ``data/*`` keeps all of ``data/``, subfolders included, as it would ignore them.
      exclude: More files of the template and model to leave out, in .gitignore syntax, matched against Space paths
        (``*.ipynb``, ``/notebooks/``, ``model/assets/``), on top of the default exclusions and the template's own
        ``.gitignore`` files (see ``beam_pusher.selection``).
      include: Patterns that bring back files the defaults, a ``.gitignore`` or ``exclude`` leave out
        (``.env.example``); a ``.env``-like file brought back is uploaded with a warning.
      commit_message: Summary of the deploy's commit.
      strict_placeholders: Fail the Space when a placeholder reference has no value (every ``${NAME}``, and a
        ``$NAME`` that looks like one: see ``beam_pusher.templates``) or a defined placeholder is used by no file;
        without it the Space is deployed with one warning in its result and the log.
      title: Title in the README front matter (default: the Space's name).
      app_port: The port a Docker Space's app listens on, written as ``app_port`` in the README front matter
        (default: the template README's ``app_port``, else the Dockerfile's ``EXPOSE``, else 7860). Docker only.

    Example::

        SpaceSpec(repo_id="alice/penguins", app_path="apps.gradio.img_classifier",
                  model_hub_repo_id="alice/penguin-model", model_hub_repo_branch="v3")
    """

    repo_id: str
    app_path: str
    space_sdk: str = "gradio"
    model_path: str | None = None
    model_hub_repo_id: str | None = None
    model_hub_repo_branch: str | None = None
    placeholders: Mapping[str, str] = dataclasses.field(default_factory=dict)
    private: bool | None = None
    hardware: str | None = None
    sleep_time: int | None = None
    secrets: Mapping[str, str] = dataclasses.field(default_factory=dict)
    variables: Mapping[str, str] = dataclasses.field(default_factory=dict)
    keep: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    include: tuple[str, ...] = ()
    commit_message: str | None = None
    strict_placeholders: bool = False
    title: str | None = None
    app_port: int | None = None

    def __post_init__(self) -> None:
        validate_repo_id(self.repo_id)
        if not isinstance(self.app_path, str) or not self.app_path.strip():
            raise SpecError(
                f"app_path={self.app_path!r} is empty: give a template such as 'apps.gradio.img_classifier', "
                "a folder path or an fsspec URL."
            )
        check_space_sdk(self.space_sdk)
        if self.model_path is not None and (not isinstance(self.model_path, str) or not self.model_path.strip()):
            raise SpecError(f"model_path={self.model_path!r} must be a non-empty path or URL, or None.")
        if self.model_hub_repo_id is not None:
            validate_repo_id(self.model_hub_repo_id, field="model_hub_repo_id")
        _check_text("model_hub_repo_branch", self.model_hub_repo_branch)
        if self.hardware is not None:
            check_hardware(self.hardware)
        if self.sleep_time is not None:
            check_sleep_time(self.sleep_time, self.hardware)
        object.__setattr__(self, "placeholders", _check_mapping("placeholders", self.placeholders, "name -> value"))
        secrets = _check_mapping("secrets", self.secrets, "name -> reference")
        for key, ref in secrets.items():
            check_secret_reference(key, ref)
        object.__setattr__(self, "secrets", secrets)
        object.__setattr__(self, "variables", _check_mapping("variables", self.variables, "name -> value"))
        for name in ("keep", "exclude", "include"):
            object.__setattr__(self, name, check_patterns(getattr(self, name), field=name))
        if self.private is not None and not isinstance(self.private, bool):
            raise SpecError(f"private={self.private!r} must be true or false.")
        if not isinstance(self.strict_placeholders, bool):
            raise SpecError(f"strict_placeholders={self.strict_placeholders!r} must be true or false.")
        _check_text("commit_message", self.commit_message)
        _check_text("title", self.title)
        _check_app_port(self.app_port, self.space_sdk)

    @property
    def name(self) -> str:
        """The Space's name without its namespace."""
        return self.repo_id.split("/", 1)[1]


@dataclasses.dataclass(frozen=True)
class Rendering:
    """How a large text file is rendered while it streams from its source to the Hub.

    Attributes:
      values: The placeholder values, as sorted ``(name, value)`` pairs.
      strict: Whether the Space renders in strict mode (``$${NAME}`` then writes ``${NAME}`` for every name).
    """

    values: tuple[tuple[str, str], ...]
    strict: bool = False


@dataclasses.dataclass(frozen=True)
class AppFile:
    """One file of a Space: either held in memory (``content``) or streamed from ``source`` on push.

    Rendered text files up to 10 MiB and generated files carry ``content``; binary and large files carry only their
    ``source`` URL plus the hashes computed while streaming it, so no worker ever holds a whole model. A large text
    file whose placeholders change it also carries ``rendering``: it is rendered again, chunk by chunk, as it is
    uploaded, and ``size`` and the hashes are those of the rendered bytes.
    """

    repo_id: str
    path: str
    size: int
    source: str | None = None
    content: bytes | None = None
    sha256: str | None = None
    git_sha1: str | None = None
    rendering: Rendering | None = None

    def __post_init__(self) -> None:
        if (self.source is None) == (self.content is None):
            raise SpecError(f"AppFile {self.path!r} needs exactly one of source and content.")
        if self.rendering is not None and self.source is None:
            raise SpecError(f"AppFile {self.path!r} has a rendering but no source to render while streaming.")


@dataclasses.dataclass(frozen=True)
class PlaceholderUse:
    """What rendering found in one file or in a whole Space: the names it filled, the references it could not.

    Attributes:
      used: Placeholder names that had a value and were found.
      unresolved: ``path:line: reference`` of references without a value (the first few of each file).
      unresolved_total: How many such references there were in all.
    """

    used: frozenset[str] = frozenset()
    unresolved: tuple[str, ...] = ()
    unresolved_total: int = 0

    def __or__(self, other: PlaceholderUse) -> PlaceholderUse:
        return PlaceholderUse(
            self.used | other.used, self.unresolved + other.unresolved, self.unresolved_total + other.unresolved_total
        )


@dataclasses.dataclass(frozen=True)
class SpaceFiles:
    """One Space and every file it will hold: what ``ReadAppFiles`` lists and ``RenderPlaceholders`` renders.

    A Space that failed on the way (unreadable template, placeholder error, a file lost before the push) carries
    ``error`` and no files, so it reaches ``PushToSpace`` as one element like any other and is reported, not pushed.
    A Space's files are its whole tree in mirror mode, so a path may appear only once: with two files for one path,
    which one the Space gets would be left to chance.

    Attributes:
      spec: The Space.
      files: Its files, each with ``repo_id == spec.repo_id`` and a path of its own.
      error: Why the Space cannot be pushed; None while it can.
      warnings: What the push result should say although the Space can be pushed (front matter, placeholders).
      placeholder_use: What rendering found in the files rendered so far (README.md, while listing); the
        placeholder rules are applied to the whole Space once all its files are rendered.
      excluded: What the listing left out of the template and model, and why (reported with the result).

    Example::

        SpaceFiles(spec, (AppFile(spec.repo_id, "app.py", 4, content=b"app\\n"),))
    """

    spec: SpaceSpec
    files: tuple[AppFile, ...] = ()
    error: str | None = None
    warnings: tuple[str, ...] = ()
    placeholder_use: PlaceholderUse = PlaceholderUse()
    excluded: tuple[Exclusion, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "warnings", tuple(self.warnings))
        object.__setattr__(self, "excluded", tuple(self.excluded))
        if not isinstance(self.spec, SpaceSpec):
            raise SpecError(f"SpaceFiles.spec must be a SpaceSpec, got {type(self.spec).__name__}: {self.spec!r}.")
        files = tuple(self.files)
        object.__setattr__(self, "files", files)
        others = sorted({f.repo_id for f in files} - {self.spec.repo_id})
        if others:
            raise SpecError(
                f"SpaceFiles for {self.spec.repo_id!r} holds files of {', '.join(others)}: every file must belong "
                "to the Space it is listed for; list each Space's files in a SpaceFiles of its own."
            )
        duplicates = sorted(path for path, n in collections.Counter(f.path for f in files).items() if n > 1)
        if duplicates:
            raise SpecError(
                f"more than one file for {', '.join(duplicates)}: a Space holds one file per path; list each path "
                "once."
            )


class ChangeAction(str, enum.Enum):
    """What a commit does to one file. The values are the strings JSON reports hold ("add", "update", "delete")."""

    ADD = "add"
    UPDATE = "update"
    DELETE = "delete"

    def __str__(self) -> str:
        return self.value

    @property
    def mark(self) -> str:
        """The one-character mark listings show: ``+`` add, ``~`` update, ``-`` delete."""
        return _MARKS[self]


_MARKS = {ChangeAction.ADD: "+", ChangeAction.UPDATE: "~", ChangeAction.DELETE: "-"}


@dataclasses.dataclass(frozen=True)
class PlannedChange:
    """One file change a push makes (or, in a dry run, would make).

    ``action`` accepts the enum or its string value (as a JSON report holds it) and is stored as a ``ChangeAction``.
    """

    action: ChangeAction
    path: str
    size: int = 0

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "action", ChangeAction(self.action))
        except ValueError:
            allowed = ", ".join(repr(a.value) for a in ChangeAction)
            raise SpecError(
                f"PlannedChange {self.path!r}: action={self.action!r} is not a file change; use one of {allowed}."
            ) from None


class Outcome(str, enum.Enum):
    """What happened to one Space in a deploy (or a plan), as reports and tables name it."""

    COMMITTED = "committed"
    UNCHANGED = "unchanged"
    WOULD_COMMIT = "would commit"
    WOULD_SET = "would set"
    """A plan with no file change but settings to write."""
    UP_TO_DATE = "up to date"
    PROPOSED = "proposed"
    """The files went to a pull request (``--pr``) that is open for review; ``main`` is unchanged."""
    FAILED = "failed"
    NOT_ATTEMPTED = "not attempted"
    """The run was stopped before this Space's commit was sent: nothing was committed to it."""


@dataclasses.dataclass(frozen=True)
class PushResult:
    """The outcome of deploying one Space.

    ``error`` is None on success; ``warnings`` say what was deployed but may not work as meant (placeholders left
    unfilled, an ``app_file`` the Space lacks, ...).

    Files: ``planned`` lists the file changes of a dry run; the counts say what a deploy committed. Settings:
    ``settings_planned`` lists the settings writes of a dry run; a deploy lists what it wrote in
    ``settings_applied`` and, when a write was refused after the commit, that write and every one not attempted
    after it in ``settings_failed`` (``error`` says why). None of them holds a secret's value.

    ``skipped`` says why a Space's push was not attempted (``"interrupted"``: the run was stopped before its commit
    was sent), so a stopped run still gives every Space a state; ``outcome`` names that state.

    ``excluded`` lists what the template and model held that the Space did not get, and why (``.env``: secret).

    Pull requests (``create_pr``): ``pr_num`` and ``pr_url`` name the open pull request that holds the change;
    ``commit_id`` is then its head, not ``main``'s, and ``committed`` says whether this run added a commit to it.
    Space settings are not part of a pull request: a differing setting is listed in ``settings_planned`` (not written)
    and named in ``warnings``.
    """

    repo_id: str
    pushed: bool
    commit_id: str | None = None
    repo_url: str | None = None
    pushed_version: str | None = None
    committed: bool = False
    files_added: int = 0
    files_updated: int = 0
    files_deleted: int = 0
    files_unchanged: int = 0
    bytes_uploaded: int = 0
    error: str | None = None
    dry_run: bool = False
    planned: tuple[PlannedChange, ...] = ()
    runtime_stage: str | None = None
    settings_planned: tuple[SettingChange, ...] = ()
    settings_applied: tuple[SettingChange, ...] = ()
    settings_failed: tuple[SettingChange, ...] = ()
    skipped: str | None = None
    warnings: tuple[str, ...] = ()
    excluded: tuple[Exclusion, ...] = ()
    pr_num: int | None = None
    pr_url: str | None = None

    @property
    def outcome(self) -> Outcome:
        """Committed, proposed, unchanged, failed, not attempted; or, in a dry run, would commit / up to date."""
        if self.error:
            return Outcome.FAILED
        if self.skipped:
            return Outcome.NOT_ATTEMPTED
        if self.pr_num is not None:
            return Outcome.PROPOSED
        if self.dry_run:
            if self.planned:
                return Outcome.WOULD_COMMIT
            return Outcome.WOULD_SET if self.settings_planned else Outcome.UP_TO_DATE
        return Outcome.COMMITTED if self.committed else Outcome.UNCHANGED

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (for reports and TFX artifact properties)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PushResult:
        """The inverse of ``to_dict``; an ``outcome`` key (as reports add it) is derived, so it is not read."""
        fields = {key: value for key, value in data.items() if key != "outcome"}
        fields["planned"] = tuple(PlannedChange(**c) for c in fields.get("planned", ()))
        for name in ("settings_planned", "settings_applied", "settings_failed"):
            fields[name] = tuple(SettingChange(**c) for c in fields.get(name, ()))
        fields["warnings"] = tuple(fields.get("warnings", ()))
        fields["excluded"] = tuple(Exclusion(**e) for e in fields.get("excluded", ()))
        return cls(**fields)
