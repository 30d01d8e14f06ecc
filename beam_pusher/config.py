"""YAML batch config -> ``DeployConfig``: many Spaces, one file, every problem reported at once.

A config is validated completely before anything touches the Hub: a deploy that would fail on its fifth Space
because of a typo must fail before the first Space is pushed, and the user should fix every mistake in one pass.
So nothing here stops at the first problem; each one is collected as ``FILE:LINE: key: what is wrong; the fix``
(lines from the YAML node marks) and all of them are raised together as one ``ConfigError``.

Format::

    endpoint: http://127.0.0.1:8080      # optional; default HF_ENDPOINT / huggingface.co
    token: env:HF_TOKEN                  # optional; a reference, never a value
    defaults:                            # any SpaceSpec field except repo_id
      space_sdk: gradio
      placeholders: {ORG: acme}
    spaces:
      - repo_id: acme/penguins
        app_path: apps.gradio.img_classifier
        model_path: ../models/penguin    # relative to this file's folder
        placeholders: {TITLE: Penguins}  # merged key-wise over defaults (null removes a default entry)
        exclude: ["*.ipynb"]             # .gitignore patterns; a list replaces the default's list
        include: [.env.example]          # brings back a file excluded by default or by .gitignore
        keep: [data/]                    # never deleted by a deploy (.gitignore patterns too)

Each local template is read too (README.md, requirements.txt, Dockerfile): front matter the Hub would not build is
a problem, one it would guess at a warning (``DeployConfig.warnings``), as ``beam_pusher.frontmatter`` decides.

The field rules themselves live in ``SpaceSpec``: each field is checked by building a probe spec with just that
field, so a rule is written once and every broken field of every Space is still reported. The run-level settings ask
``beam_pusher.rules`` (endpoint) and ``beam_pusher.auth`` (token references); the YAML is read node by node, with
lines, by ``beam_pusher.yamlnodes``.
"""

from __future__ import annotations

import dataclasses
import datetime
import difflib
import fnmatch
import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from beam_pusher import auth, preflight, sources
from beam_pusher.errors import ConfigError, SpecError, TemplateError
from beam_pusher.rules import check_endpoint, is_url
from beam_pusher.spec import SpaceSpec
from beam_pusher.yamlnodes import BadValue, NodeReader, is_null, join, kind, line_of

__all__ = ["DeployConfig", "load_config", "parse_config"]

logger = logging.getLogger(__name__)

SPEC_FIELDS = tuple(f.name for f in dataclasses.fields(SpaceSpec))
DEFAULT_FIELDS = tuple(f for f in SPEC_FIELDS if f != "repo_id")
TOP_LEVEL_KEYS = ("defaults", "spaces", "endpoint", "token")
_MAPPING_FIELDS = ("placeholders", "secrets", "variables")
_BOOL_FIELDS = ("private", "strict_placeholders")
_PATH_FIELDS = ("app_path", "model_path")
_PATTERN_FIELDS = ("keep", "exclude", "include")  # lists of .gitignore patterns (beam_pusher.selection)
# Names people bring from the TFX component or from habit, pointed at the field that does the job here.
_HINTS = {"options": "placeholders", "repo_name": "repo_id", "username": "repo_id", "sdk": "space_sdk",
          "model": "model_path", "hf_access_token": "token"}
_PROBE = {"repo_id": "probe/probe", "app_path": "probe"}
# A field whose rule needs another field set to be checked alone: app_port is for Docker Spaces only.
_PROBE_WITH = {"app_port": {"space_sdk": "docker"}}
_DELETE = object()  # a null entry in a Space's mapping: drop the inherited default entry
_BAD = object()  # a value with a problem, already recorded


@dataclasses.dataclass(frozen=True)
class DeployConfig:
    """A validated batch config: the Spaces to deploy and the run-level settings.

    Attributes:
      specs: One ``SpaceSpec`` per Space, in file order, defaults already merged and paths resolved.
      path: Absolute path of the config file (None when parsed from a string).
      endpoint: Hub endpoint URL from the config, or None to follow ``HF_ENDPOINT`` / the default.
      token: Token reference such as ``env:HF_TOKEN``, or None to follow huggingface_hub's conventions.
      warnings: ``FILE:LINE: key: ...`` for what is valid but may not work as meant (a ``streamlit`` Space, a
        template's front matter the Hub would guess at); ``validate`` prints them, a deploy goes ahead.
    """

    specs: tuple[SpaceSpec, ...]
    path: str | None = None
    endpoint: str | None = None
    token: str | None = None
    # Found about the config, not part of it: two configs that say the same are equal whatever their templates hold.
    warnings: tuple[str, ...] = dataclasses.field(default=(), compare=False)

    @property
    def repo_ids(self) -> tuple[str, ...]:
        """The Spaces' repository ids, in file order."""
        return tuple(spec.repo_id for spec in self.specs)

    def select(self, patterns: Iterable[str]) -> DeployConfig:
        """Keeps the Spaces whose repo id or name matches any glob pattern (``--only``); no patterns keeps all.

        Example::

            config.select(["user/penguin-*", "text-*"])
        """
        patterns = list(patterns)
        if not patterns:
            return self
        return dataclasses.replace(self, specs=tuple(s for s in self.specs if any(_matches(s, p) for p in patterns)))


def _matches(spec: SpaceSpec, pattern: str) -> bool:
    """A pattern without '/' matches the Space's name alone (``--only 'penguin-*'``), else the whole repo id."""
    if "/" in pattern:
        return fnmatch.fnmatchcase(spec.repo_id, pattern)
    return fnmatch.fnmatchcase(spec.name, pattern)


def load_config(
    path: str | os.PathLike,
    *,
    check_secrets: bool = True,
    environ: Mapping[str, str] | None = None,
    remote: bool = False,
) -> DeployConfig:
    """Reads and validates a batch config file; relative paths in it are resolved against its folder.

    Args:
      path: The YAML file.
      check_secrets: Also require every ``env:NAME`` reference (Space secrets, ``token``) to be set in ``environ``;
        off when validating on a machine that is not the one that deploys.
      environ: Environment to check references against (default ``os.environ``). Values are never read out.
      remote: The deploy runs on remote workers (Dataflow): ``env:`` and ``file:`` references are problems there,
        since the workers have neither this machine's environment nor its files; secret-store references
        (``gcp-secret:``, ``aws-secret:``) are what resolves.

    Returns:
      The validated ``DeployConfig``.

    Raises:
      ConfigError: The file cannot be read or is invalid; ``problems`` lists every problem found.
    """
    source = os.fspath(path)
    try:
        data = Path(source).read_bytes()
    except OSError as err:
        problem = f"{source}: cannot read the config file ({err.__class__.__name__}: {err}); check the path."
        raise ConfigError(problem, problems=[problem]) from err
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        column = err.start - (data.rfind(b"\n", 0, err.start) + 1) + 1
        problem = (f"{source}:{line}: yaml: not UTF-8 text (byte 0x{data[err.start]:02x} in column {column}); save the "
                   "file as UTF-8.")
        raise ConfigError(f"{source}: 1 problem in the config:\n  {problem}", problems=[problem]) from None
    absolute = os.path.abspath(source)
    config = parse_config(
        text, source=source, base_dir=os.path.dirname(absolute), check_secrets=check_secrets, environ=environ,
        remote=remote,
    )
    return dataclasses.replace(config, path=absolute)


def parse_config(
    text: str,
    *,
    source: str = "<string>",
    base_dir: str | None = None,
    check_secrets: bool = True,
    environ: Mapping[str, str] | None = None,
    remote: bool = False,
) -> DeployConfig:
    """Validates config text; see ``load_config``.

    Args:
      text: The YAML text.
      source: Name used in problem messages (the file path as the user wrote it).
      base_dir: Folder relative ``app_path``/``model_path`` values are resolved against (default: the current
        working directory).
      check_secrets: See ``load_config``.
      environ: See ``load_config``.
      remote: See ``load_config``.

    Raises:
      ConfigError: With every problem, each ``FILE:LINE: key: what is wrong; the fix``.
    """
    parser = _Parser(
        source=source,
        base_dir=os.path.abspath(base_dir if base_dir is not None else os.getcwd()),
        check_secrets=check_secrets,
        environ=os.environ if environ is None else environ,
        remote=remote,
    )
    config = parser.read(text)
    if parser.problems:
        problems = [problem for _, problem in sorted(parser.problems, key=lambda p: p[0])]
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        raise ConfigError(f"{source}: {count} in the config:\n" + "\n".join(f"  {p}" for p in problems), problems)
    assert config is not None
    logger.debug("Config %s: %s Spaces", source, len(config.specs))
    return config


class _Parser(NodeReader):
    """One parse of one config: the YAML reader, plus where relative paths start and which secrets to check."""

    def __init__(
        self, *, source: str, base_dir: str, check_secrets: bool, environ: Mapping[str, str], remote: bool = False
    ):
        super().__init__(source)
        self.warnings: list[tuple[int, str]] = []
        self.base_dir = base_dir
        self.check_secrets = check_secrets
        self.environ = environ
        self.remote = remote

    def _unknown_key(self, key_node: yaml.Node, path: str, key: str, allowed: Iterable[str]) -> None:
        allowed = list(allowed)
        if key in _HINTS and _HINTS[key] in allowed:
            guess = [_HINTS[key]]
        else:
            guess = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
        hint = f"did you mean '{guess[0]}'? " if guess else ""
        self.problem(line_of(key_node), join(path, key), f"unknown key; {hint}allowed keys: {', '.join(allowed)}.")

    def read_root(self, root: yaml.Node | None) -> DeployConfig | None:
        if root is None or not isinstance(root, yaml.MappingNode):
            got = "an empty file" if root is None else kind(root)
            line = 1 if root is None else line_of(root)
            self.problem(line, "(top level)", f"the config must be a mapping with 'spaces' (and optionally "
                         f"'defaults', 'endpoint', 'token'), got {got}; see configs/example.yaml.")
            return None
        entries = self.entries(root, "")
        for key, (key_node, _) in entries.items():
            if key not in TOP_LEVEL_KEYS and not key.startswith("x-"):
                self._unknown_key(key_node, "", key, TOP_LEVEL_KEYS)
        endpoint = self._endpoint(entries.get("endpoint"))
        token = self._token(entries.get("token"))
        defaults, default_keys = self._defaults(entries.get("defaults"))
        if "spaces" not in entries:
            self.problem(line_of(root), "spaces", "missing; list the Spaces to deploy under 'spaces:', each with at "
                         "least 'repo_id' (see configs/example.yaml).")
            return None
        specs = self._spaces(entries["spaces"][1], defaults, default_keys)
        for spec, line, path in specs:
            self._check_template(path, line, spec)
        if self.problems:
            return None
        warnings = tuple(warning for _, warning in sorted(self.warnings, key=lambda w: w[0]))
        return DeployConfig(specs=tuple(s for s, _, _ in specs), endpoint=endpoint, token=token, warnings=warnings)

    def warn(self, line: int, key: str, message: str) -> None:
        """Records what is valid but may not work as meant, like ``problem`` records what is wrong."""
        self.warnings.append((line, f"{self.source}:{line}: {key}: {message}"))

    def _check_template(self, path: str, line: int, spec: SpaceSpec) -> None:
        """What the Space's template makes of its front matter, checked before any deploy (``preflight``)."""
        found = preflight.check_template(spec, self.base_dir)
        for key, message in found.errors:
            self.problem(line, f"{path}.{key}", message)
        for key, message in found.warnings:
            self.warn(line, f"{path}.{key}", message)

    def _scalar(self, entry: tuple[yaml.Node, yaml.Node] | None, key: str) -> Any:
        """The value of a top-level setting: None when absent or null, _BAD when unreadable."""
        if entry is None:
            return None
        try:
            return self.value(entry[1], key)
        except BadValue:
            return _BAD

    def _endpoint(self, entry: tuple[yaml.Node, yaml.Node] | None) -> str | None:
        value = self._scalar(entry, "endpoint")
        if value is None or value is _BAD:
            return None
        try:
            return check_endpoint(value, field="")  # the problem's key already names the setting
        except SpecError as err:
            self.problem(line_of(entry[0]), "endpoint", str(err))
            return None

    def _token(self, entry: tuple[yaml.Node, yaml.Node] | None) -> str | None:
        value = self._scalar(entry, "token")
        if value is None or value is _BAD:
            return None
        try:
            # The rule lives with the token resolver; its message never echoes the value (it may be the token).
            auth.check_token_reference(value if isinstance(value, str) else "")
        except SpecError as err:
            self.problem(line_of(entry[0]), "token", str(err))
            return None
        self._check_reference(line_of(entry[0]), "token", value, what="token")
        return value

    def _check_reference(self, line: int, key: str, reference: str, *, what: str) -> None:
        """Records a problem when ``reference`` cannot resolve where the deploy runs.

        On a remote runner, ``env:`` and ``file:`` cannot; on this machine (when secrets are checked), the variable
        must be set and not empty (an empty value is a mistake, never a secret: deployed, it would wipe the Space's
        secret), and the file must exist. Secret-store references are checked by the worker that reads them.
        """
        if self.remote:
            problem = auth.remote_reference_problem(reference)
            if problem:
                self.problem(line, key, f"the runner is remote: {problem}")
            return
        if not self.check_secrets:
            return
        name, path = auth.env_reference_name(reference), auth.file_reference_path(reference)
        if name is not None and name not in self.environ:
            self.problem(line, key, f"refers to the environment variable {name}, which is not set; set {name} in "
                         "the environment that runs the deploy, or validate without checking secrets.")
        elif name is not None and not self.environ[name]:
            self.problem(line, key, f"refers to the environment variable {name}, which is empty; set {name} to the "
                         "value, or remove the entry (a deploy then deletes the secret it set).")
        if path is not None and not os.path.isfile(path):
            self.problem(line, key, f"the {what} file {path} does not exist here; mount it, use 'env:NAME', or "
                         "validate without checking secrets.")

    def _defaults(self, entry: tuple[yaml.Node, yaml.Node] | None) -> tuple[dict[str, Any] | None, set[str]]:
        """The defaults' fields (None when they have problems) and the keys they name, good or bad.

        A Space is only built on problem-free defaults, and a field the defaults name (even wrongly) is not
        reported again as missing from each Space.
        """
        if entry is None:
            return {}, set()
        key_node, node = entry
        if is_null(node):
            return {}, set()
        if not isinstance(node, yaml.MappingNode):
            self.problem(line_of(key_node), "defaults", f"must be a mapping of Space fields, got {kind(node)}; "
                         "e.g. 'defaults: {space_sdk: gradio, private: true}'.")
            return None, set(DEFAULT_FIELDS)
        before = len(self.problems)
        fields = {}
        entries = self.entries(node, "defaults")
        for key, (field_key_node, value_node) in entries.items():
            if key == "repo_id":
                self.problem(line_of(field_key_node), "defaults.repo_id", "a default repo_id would give every Space "
                             "the same id; give repo_id in each entry under 'spaces'.")
            elif key not in DEFAULT_FIELDS:
                self._unknown_key(field_key_node, "defaults", key, DEFAULT_FIELDS)
            else:
                value = self._field(f"defaults.{key}", key, field_key_node, value_node)
                if value is not _BAD:
                    fields[key] = value
        return (fields if len(self.problems) == before else None), set(entries)

    def _spaces(
        self, node: yaml.Node, defaults: dict[str, Any] | None, default_keys: set[str]
    ) -> list[tuple[SpaceSpec, int, str]]:
        """Each Space's spec, with the line its entry starts on and its key path (``spaces[3]``)."""
        if not isinstance(node, yaml.SequenceNode) or not node.value:
            got = "an empty list" if isinstance(node, yaml.SequenceNode) else kind(node)
            self.problem(line_of(node), "spaces", f"must be a list of Spaces, got {got}; write '- repo_id: user/name' "
                         "entries under 'spaces:'.")
            return []
        specs = []
        first_line: dict[str, int] = {}
        for index, item in enumerate(node.value):
            path = f"spaces[{index}]"
            if not isinstance(item, yaml.MappingNode):
                self.problem(line_of(item), path, f"each Space must be a mapping with at least 'repo_id', got "
                             f"{kind(item)}; write '- repo_id: user/name'.")
                continue
            before = len(self.problems)
            fields = {}
            entries = self.entries(item, path)
            for key, (key_node, value_node) in entries.items():
                if key not in SPEC_FIELDS:
                    self._unknown_key(key_node, path, key, SPEC_FIELDS)
                    continue
                value = self._field(f"{path}.{key}", key, key_node, value_node)
                if value is not _BAD:
                    fields[key] = value
            repo_id = fields.get("repo_id")
            if "repo_id" not in entries:
                self.problem(line_of(item), path, "missing repo_id; every Space needs 'repo_id: namespace/name'.")
            elif isinstance(repo_id, str):
                line = line_of(entries["repo_id"][0])
                if repo_id in first_line:
                    self.problem(line, f"{path}.repo_id", f"{repo_id!r} is listed twice (lines "
                                 f"{first_line[repo_id]} and {line}); each Space may appear once, so remove "
                                 "or rename one.")
                else:
                    first_line[repo_id] = line
            if "app_path" not in entries and "app_path" not in default_keys:
                self.problem(line_of(item), path, "missing app_path; give it in this Space or under 'defaults' "
                             "(e.g. 'app_path: apps.gradio.img_classifier').")
            if defaults is None or len(self.problems) != before:
                continue
            merged = _merge(defaults, fields)
            try:
                specs.append((SpaceSpec(**merged), line_of(item), path))
            except SpecError as err:  # a rule spanning fields; per-field rules were checked already
                self.problem(line_of(item), path, str(err))
        return specs

    def _field(self, key_path: str, field: str, key_node: yaml.Node, node: yaml.Node) -> Any:
        """The validated value of one SpaceSpec field, or _BAD after reporting why."""
        line = line_of(key_node)
        if field in _MAPPING_FIELDS:
            return self._mapping_field(key_path, field, line, node)
        try:
            value = self.value(node, key_path)
        except BadValue:
            return _BAD
        if field in _PATTERN_FIELDS and value is None:
            value = ()  # 'exclude:' with nothing under it: no patterns
        try:
            probe = SpaceSpec(**{**_PROBE, **_PROBE_WITH.get(field, {}), field: value})
        except SpecError as err:
            self.problem(line, key_path, str(err).rstrip(".") + _typing_hint(field, value, node) + ".")
            return _BAD
        if field in _PATTERN_FIELDS:
            return getattr(probe, field)
        if field in _PATH_FIELDS and value is not None:
            return self._path(key_path, field, line, value)
        return value

    def _mapping_field(self, key_path: str, field: str, line: int, node: yaml.Node) -> Any:
        if is_null(node):
            return {}
        what = "name -> reference ('env:NAME')" if field == "secrets" else "name -> value"
        if not isinstance(node, yaml.MappingNode):
            # The kind of node only, never its text: a mistyped secrets block may hold the secret itself.
            self.problem(line, key_path, f"must be a mapping of {what}, got {kind(node)}; write it as "
                         f"'{field}: {{NAME: ...}}' or as indented 'NAME: ...' lines.")
            return _BAD
        out = {}
        ok = True
        for name, (name_node, value_node) in self.entries(node, key_path).items():
            entry_path = f"{key_path}.{name}"
            try:
                value = self.value(value_node, entry_path)
            except BadValue:
                ok = False
                continue
            if value is None:
                out[name] = _DELETE
                continue
            try:
                SpaceSpec(**{**_PROBE, field: {name: value}})
            except SpecError as err:
                self.problem(line_of(name_node), entry_path, str(err))
                ok = False
                continue
            if field == "secrets":
                self._check_reference(line_of(name_node), entry_path, value, what="secret")
            out[name] = value
        return out if ok else _BAD

    def _path(self, key_path: str, field: str, line: int, value: str) -> Any:
        """A URL or built-in app name as written; a local path made absolute against the config's folder."""
        if is_url(value):
            missing = preflight.missing_filesystem(value)
            if missing:
                self.problem(line, key_path, missing)
                return _BAD
            return value  # remote: read (and checked) by the deploy, never from here
        if field == "model_path":
            # Not checked for existence: the model may be written by a step that runs after validation.
            return os.path.normpath(os.path.join(self.base_dir, os.path.expanduser(value)))
        try:
            resolved = sources.resolve_app_path(value, base_dir=self.base_dir, check=False)
        except TemplateError as err:
            self.problem(line, key_path, str(err))
            return _BAD
        if Path(resolved).is_relative_to(sources.BUILTIN_APPS_URL):
            # Kept by name: each worker finds the built-in app inside its own installed package.
            return value
        return resolved


def _typing_hint(field: str, value: Any, node: yaml.Node) -> str:
    """Why YAML may have typed a value other than the user meant: the usual cause of a type problem."""
    if field in _BOOL_FIELDS:
        quoted = isinstance(value, str) and getattr(node, "style", None) in ("'", '"')
        return " (without quotes: a quoted value is text)" if quoted else ""
    if isinstance(value, (bool, int, float, datetime.date)):
        kind = "date" if isinstance(value, datetime.date) else "boolean" if isinstance(value, bool) else "number"
        return f" (YAML read it as a {kind}: quote it)"
    return ""


def _merge(defaults: Mapping[str, Any], fields: Mapping[str, Any]) -> dict[str, Any]:
    """A Space's fields over the defaults: mappings merge key-wise (null drops an entry), the rest replaces."""
    merged = {**defaults, **fields}
    for name in _MAPPING_FIELDS:
        combined = {**defaults.get(name, {}), **fields.get(name, {})}
        merged[name] = {k: v for k, v in combined.items() if v is not _DELETE}
    return merged
