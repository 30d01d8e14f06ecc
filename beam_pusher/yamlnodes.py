"""YAML read node by node, so that every problem carries its line: the reading half of the batch config.

``config.py`` says what a config means; this module reads YAML the way it needs. A value that cannot be built (an
unknown tag) is a recorded problem, not an exception that ends the parse; a mapping's ``<<`` merges are applied and
its duplicate keys reported (YAML itself silently keeps the last one); and every problem is collected as
``FILE:LINE: key: what is wrong; the fix``, lines taken from the node marks.
"""

from __future__ import annotations

from typing import Any

import yaml

__all__ = ["BadValue", "NodeReader", "is_null", "join", "kind", "line_of"]

_MERGE_TAG = "tag:yaml.org,2002:merge"
_NULL_TAG = "tag:yaml.org,2002:null"


class BadValue(Exception):
    """A node could not be turned into a value; the problem is already recorded."""


def line_of(node: yaml.Node) -> int:
    """The 1-based line a node starts on."""
    return node.start_mark.line + 1


def kind(node: yaml.Node) -> str:
    """What a node is, in words for a problem message ("a mapping", "a list", "a single value")."""
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    return "a single value"


def is_null(node: yaml.Node) -> bool:
    """Whether a node is YAML's null (an empty value, ``null`` or ``~``)."""
    return isinstance(node, yaml.ScalarNode) and node.tag == _NULL_TAG


def join(path: str, key: Any) -> str:
    """The dotted key path of ``key`` under ``path`` (``spaces[0]`` + ``title`` -> ``spaces[0].title``)."""
    return f"{path}.{key}" if path else str(key)


class NodeReader:
    """One parse of one YAML document: the loader that builds values from nodes, and the problems found so far.

    Subclasses implement ``read_root``, which walks the root node and records problems with ``problem``.

    Attributes:
      source: Name of the file in problem messages, as the user wrote it.
      problems: (line, message) of every problem found, in the order found.
    """

    def __init__(self, source: str):
        self.source = source
        self.problems: list[tuple[int, str]] = []
        self._loader: yaml.SafeLoader | None = None

    def problem(self, line: int, key: str, message: str) -> None:
        """Records ``FILE:LINE: key: message``."""
        self.problems.append((line, f"{self.source}:{line}: {key}: {message}"))

    def read(self, text: str) -> Any:
        """Parses ``text`` and returns what ``read_root`` makes of its root node; None after a syntax problem."""
        try:
            self._loader = yaml.SafeLoader(text)  # checks every character first
        except yaml.reader.ReaderError as err:
            self._character_problem(text, err)
            return None
        try:
            try:
                root = self._loader.get_single_node()
            except yaml.MarkedYAMLError as err:
                self._syntax_problem(err)
                return None
            except yaml.reader.ReaderError as err:
                self._character_problem(text, err)
                return None
            return self.read_root(root)
        finally:
            self._loader.dispose()

    def read_root(self, root: yaml.Node | None) -> Any:
        """Walks the document's root node (None for an empty document)."""
        raise NotImplementedError

    def _syntax_problem(self, err: yaml.MarkedYAMLError) -> None:
        mark = err.problem_mark or err.context_mark
        at = mark.line + 1 if mark is not None else 1
        what = ", ".join(part for part in (err.context, err.problem) if part)
        where = f" (column {mark.column + 1})" if mark is not None else ""
        if "single document" in what:
            fix = "a config is one YAML document: remove the '---' line and what follows, or merge it into the first"
        else:
            fix = "fix the syntax on this line (indent with spaces; quote values holding ': ', ' #', '{' or '[')"
        self.problem(at, "yaml", f"invalid YAML: {what}{where}; {fix}.")

    def _character_problem(self, text: str, err: yaml.reader.ReaderError) -> None:
        """A character YAML does not allow (a NUL byte, a control character), with its line and column."""
        position = max(0, min(err.position, len(text)))
        line = text.count("\n", 0, position) + 1
        column = position - (text.rfind("\n", 0, position) + 1) + 1
        code = err.character if isinstance(err.character, int) else ord(str(err.character)[:1] or "\0")
        name = " (a NUL byte)" if code == 0 else ""
        self.problem(line, "yaml", f"the character #x{code:04x}{name} in column {column} is not allowed in YAML; "
                     "remove it (a file with NUL bytes may have been saved as UTF-16: save it as UTF-8).")

    def value(self, node: yaml.Node, key: str) -> Any:
        """The Python value of a node; an unreadable one (e.g. an unknown tag) is recorded, then BadValue."""
        try:
            return self._loader.construct_object(node, deep=True)
        except yaml.YAMLError as err:
            self.problem(line_of(node), key, f"cannot read this value ({getattr(err, 'problem', err)}); "
                         "use plain YAML strings, numbers, booleans, lists and mappings.")
            raise BadValue from err

    def entries(self, node: yaml.MappingNode, path: str) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        """Key -> (key node, value node) of a mapping, with ``<<`` merges applied and duplicate keys reported."""
        self._report_duplicates(node, path)
        try:
            self._loader.flatten_mapping(node)
        except yaml.YAMLError as err:
            self.problem(line_of(node), path or "(top level)", f"bad '<<' merge ({getattr(err, 'problem', err)}); "
                         "merge only mappings, e.g. '<<: *common'.")
        entries: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:  # merged entries come first, so explicit keys win
            try:
                key = self.value(key_node, path or "(top level)")
            except BadValue:
                continue
            if not isinstance(key, str):
                self.problem(line_of(key_node), path or "(top level)",
                             f"the key {key!r} is not a name; keys are field names such as 'repo_id'.")
                continue
            entries[key] = (key_node, value_node)
        return entries

    def _report_duplicates(self, node: yaml.MappingNode, path: str) -> None:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:
                continue
            try:
                key = self._loader.construct_object(key_node, deep=True)
            except yaml.YAMLError:
                continue  # reported by entries(), once
            if isinstance(key, (dict, list)):
                continue  # reported by entries() as a key that is not a name
            if key in seen:
                self.problem(line_of(key_node), join(path, key), f"given twice (lines {seen[key]} and "
                             f"{line_of(key_node)}); YAML keeps only the last one, so delete one of them.")
            else:
                seen[key] = line_of(key_node)
