"""Objects and refs of one bare git repository, written and read in git's own on-disk format.

The local Hub keeps every repository as a real bare git repository, so commit ids are real git SHAs and the git
CLI (``git clone``, ``git log``, ``git fsck``) sees exactly what the HTTP API reports. Objects are written as loose
objects directly (zlib of ``"<type> <size>\\0<body>"``) instead of through ``git hash-object``/``mktree``/
``commit-tree``: a benchmark deploying 50 Spaces x 30 files would otherwise spawn thousands of processes, and the
format is small and stable. ``git init`` creates each repository, and objects the CLI may have packed are still read
through ``git cat-file``.

Writers are safe to run concurrently: an object is written to a temporary file and renamed into place, and a ref is
replaced the same way. Callers serialize ref updates of one repository themselves (see ``storage``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import subprocess
import tempfile
import threading
import zlib
from pathlib import Path

__all__ = [
    "Commit", "GitRepo", "MergeResult", "Signature", "TreeEntry", "MODE_DIR", "MODE_FILE", "is_sha", "is_short_sha",
    "valid_ref_name",
]

MODE_FILE = "100644"
MODE_DIR = "40000"
_SHA = re.compile(r"^[0-9a-f]{40}$")
_SHORT_SHA = re.compile(r"^[0-9a-f]{7,39}$")
# Ref names the local Hub creates: branches and tags, where no component starts with "." (git's rule, and temp files
# start with ".tmp_"), and the Hub's pull request refs, refs/pr/1, refs/pr/2, ...
_REF_NAME = re.compile(
    r"^(refs/(heads|tags)/(?!\.)(?!.*(\.\.|/\.|//|\.lock$))[A-Za-z0-9._/-]+(?<!/)|refs/pr/[1-9][0-9]*)$"
)


@dataclasses.dataclass(frozen=True)
class TreeEntry:
    """One entry of a git tree: ``mode`` is git's octal string (``"100644"``, ``"40000"``)."""

    mode: str
    name: str
    sha: str

    @property
    def is_dir(self) -> bool:
        return self.mode == MODE_DIR


@dataclasses.dataclass(frozen=True)
class Signature:
    """Author or committer of a commit; ``timestamp`` is seconds since the epoch, UTC."""

    name: str
    email: str
    timestamp: int

    def encode(self) -> bytes:
        return f"{self.name} <{self.email}> {self.timestamp} +0000".encode()


@dataclasses.dataclass(frozen=True)
class MergeResult:
    """What a three-way merge produced: the merged ``tree`` and the paths in conflict (none: it merged cleanly)."""

    tree: str
    conflicts: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Commit:
    """A parsed commit object."""

    sha: str
    tree: str
    parents: tuple[str, ...]
    author: Signature
    message: str

    @property
    def title(self) -> str:
        return self.message.split("\n", 1)[0]

    @property
    def description(self) -> str:
        parts = self.message.split("\n", 1)
        return parts[1].strip("\n") if len(parts) == 2 else ""


def valid_ref_name(name: str) -> bool:
    """True if ``name`` (``refs/heads/x``, ``refs/tags/x`` or ``refs/pr/N``) is a ref the local Hub may create or read."""
    return bool(_REF_NAME.match(name))


def is_sha(value: str) -> bool:
    """True if ``value`` is a full lowercase 40-hex object id."""
    return bool(_SHA.match(value))


def is_short_sha(value: str) -> bool:
    """True if ``value`` may be an abbreviated object id (7 to 39 lowercase hex digits, as the Hub accepts)."""
    return bool(_SHORT_SHA.match(value))


def _parse_signature(raw: bytes) -> Signature:
    text = raw.decode("utf-8", "replace")
    match = re.match(r"^(.*) <(.*)> (\d+) [+-]\d{4}$", text)
    if not match:
        return Signature(text, "", 0)
    return Signature(match.group(1), match.group(2), int(match.group(3)))


def _tree_sort_key(entry: TreeEntry) -> bytes:
    # git orders a directory as if its name ended with "/", so "a.txt" < "a/" < "a0".
    return entry.name.encode() + (b"/" if entry.is_dir else b"")


class GitRepo:
    """A bare git repository on disk.

    Args:
        path: the repository directory (``.../name.git``); it must exist (see ``GitRepo.init``).
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._objects = self.path / "objects"
        self._commit_cache: dict[str, Commit] = {}
        self._cache_lock = threading.Lock()

    @classmethod
    def init(cls, path: str | os.PathLike, initial_branch: str = "main") -> GitRepo:
        """Creates a bare repository with ``git init`` so that its layout and config are git's own."""
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["git", "init", "--quiet", "--bare", f"--initial-branch={initial_branch}", str(path)],
            check=True,
            capture_output=True,
        )
        return cls(path)

    # Objects -----------------------------------------------------------------------------------------------------

    def _object_path(self, sha: str) -> Path:
        return self._objects / sha[:2] / sha[2:]

    def write(self, kind: str, body: bytes) -> str:
        """Stores an object (``kind`` is blob, tree or commit) and returns its SHA; a no-op if it exists."""
        header = f"{kind} {len(body)}\0".encode()
        sha = hashlib.sha1(header + body).hexdigest()
        target = self._object_path(sha)
        if target.exists():
            return sha
        target.parent.mkdir(exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix="tmp_obj_")
        try:
            with os.fdopen(fd, "wb") as handle:
                compressor = zlib.compressobj(1)
                handle.write(compressor.compress(header))
                handle.write(compressor.compress(body))
                handle.write(compressor.flush())
            os.chmod(tmp, 0o444)
            os.replace(tmp, target)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return sha

    def exists(self, sha: str) -> bool:
        if not _SHA.match(sha):
            return False
        return self._object_path(sha).exists() or self._cat_file(sha) is not None

    def read(self, sha: str) -> tuple[str, bytes]:
        """Returns ``(kind, body)`` of an object; raises KeyError when it does not exist."""
        if not _SHA.match(sha):
            raise KeyError(sha)
        try:
            raw = zlib.decompress(self._object_path(sha).read_bytes())
        except FileNotFoundError:
            found = self._cat_file(sha)
            if found is None:
                raise KeyError(sha) from None
            return found
        header, _, body = raw.partition(b"\0")
        kind = header.split(b" ", 1)[0].decode()
        return kind, body

    def _cat_file(self, sha: str) -> tuple[str, bytes] | None:
        # Objects that git itself packed (e.g. after a manual `git gc`) are not loose files.
        kind = subprocess.run(
            ["git", "-C", str(self.path), "cat-file", "-t", sha], capture_output=True, check=False
        )
        if kind.returncode != 0:
            return None
        kind_name = kind.stdout.decode().strip()
        body = subprocess.run(["git", "-C", str(self.path), "cat-file", kind_name, sha], capture_output=True, check=True)
        return kind_name, body.stdout

    def write_blob(self, data: bytes) -> str:
        return self.write("blob", data)

    def write_tree(self, entries: list[TreeEntry]) -> str:
        body = b"".join(
            f"{entry.mode} {entry.name}".encode() + b"\0" + bytes.fromhex(entry.sha)
            for entry in sorted(entries, key=_tree_sort_key)
        )
        return self.write("tree", body)

    def read_tree(self, sha: str) -> list[TreeEntry]:
        kind, body = self.read(sha)
        if kind != "tree":
            raise KeyError(sha)
        entries, pos = [], 0
        while pos < len(body):
            space = body.index(b" ", pos)
            nul = body.index(b"\0", space)
            mode = body[pos:space].decode()
            name = body[space + 1 : nul].decode("utf-8", "surrogateescape")
            entries.append(TreeEntry(mode, name, body[nul + 1 : nul + 21].hex()))
            pos = nul + 21
        return entries

    def write_commit(self, tree: str, parents: list[str], author: Signature, message: str) -> str:
        lines = [b"tree " + tree.encode()]
        lines += [b"parent " + parent.encode() for parent in parents]
        lines += [b"author " + author.encode(), b"committer " + author.encode()]
        text = message if message.endswith("\n") else message + "\n"
        return self.write("commit", b"\n".join(lines) + b"\n\n" + text.encode())

    def read_commit(self, sha: str) -> Commit:
        """Returns a parsed commit (cached: commits never change); raises KeyError if ``sha`` is not a commit."""
        cached = self._commit_cache.get(sha)
        if cached is not None:
            return cached
        kind, body = self.read(sha)
        if kind != "commit":
            raise KeyError(sha)
        head, _, message = body.partition(b"\n\n")
        tree, parents, author = "", [], Signature("", "", 0)
        for line in head.split(b"\n"):
            key, _, value = line.partition(b" ")
            if key == b"tree":
                tree = value.decode()
            elif key == b"parent":
                parents.append(value.decode())
            elif key == b"author":
                author = _parse_signature(value)
        commit = Commit(sha, tree, tuple(parents), author, message.decode("utf-8", "replace").rstrip("\n"))
        with self._cache_lock:
            self._commit_cache[sha] = commit
        return commit

    def is_commit(self, sha: str) -> bool:
        try:
            self.read_commit(sha)
        except KeyError:
            return False
        return True

    def find_commit(self, prefix: str) -> str | None:
        """The one commit whose id starts with ``prefix`` (7+ hex digits), or None if none or several do."""
        if not _SHORT_SHA.match(prefix):
            return None
        folder = self._objects / prefix[:2]
        names = os.listdir(folder) if folder.is_dir() else []
        found = {prefix[:2] + name for name in names if name.startswith(prefix[2:]) and _SHA.match(prefix[:2] + name)}
        if any((self._objects / "pack").glob("*.pack")):  # objects git itself packed are not loose files
            found |= set(self._git("rev-parse", "--disambiguate=" + prefix, check=False).split())
        commits = [sha for sha in found if self.is_commit(sha)]
        return commits[0] if len(commits) == 1 else None

    def rev_list(self, commit: str) -> list[str]:
        """Every commit reachable from ``commit`` in ``git log``'s order (for histories with merges)."""
        return self._git("rev-list", commit).split()

    def merge(self, ours: str, theirs: str) -> MergeResult:
        """Three-way merge of two commits' trees with ``git merge-tree --write-tree``; nothing is committed.

        The merged tree is written to the object store; ``conflicts`` lists the paths git could not merge.
        """
        done = subprocess.run(
            ["git", "-C", str(self.path), "merge-tree", "--write-tree", "--name-only", "--no-messages", ours, theirs],
            capture_output=True, text=True, check=False,
        )
        if done.returncode not in (0, 1):
            raise RuntimeError(f"git merge-tree {ours} {theirs} failed: {done.stderr.strip()}")
        lines = done.stdout.splitlines()
        return MergeResult(lines[0], tuple(sorted(set(lines[1:]))) if done.returncode == 1 else ())

    def merge_base(self, first: str, second: str) -> str | None:
        found = self._git("merge-base", first, second, check=False).strip()
        return found if _SHA.match(found) else None

    def diff(self, base: str, head: str) -> str:
        """``git diff`` between two commits, as the Hub shows a pull request's changes."""
        return self._git("diff", "--no-color", "--no-ext-diff", base, head, check=False)

    def _git(self, *args: str, check: bool = True) -> str:
        done = subprocess.run(["git", "-C", str(self.path), *args], capture_output=True, check=check)
        return done.stdout.decode("utf-8", "replace") if done.returncode == 0 else ""

    # Refs --------------------------------------------------------------------------------------------------------

    def read_ref(self, name: str) -> str | None:
        """Returns the SHA a ref (``refs/heads/main``) points to, or None."""
        if not _REF_NAME.match(name):
            return None
        try:
            value = (self.path / name).read_text().strip()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return self._packed_refs().get(name)
        return value if _SHA.match(value) else None

    def refs(self) -> dict[str, str]:
        """Every branch and tag, ``{"refs/heads/main": sha, ...}``."""
        found = dict(self._packed_refs())
        refs_dir = self.path / "refs"
        for root, _, files in os.walk(refs_dir):
            for file_name in files:
                full = Path(root) / file_name
                name = full.relative_to(self.path).as_posix()
                if not _REF_NAME.match(name):
                    continue
                value = full.read_text().strip()
                if _SHA.match(value):
                    found[name] = value
        return dict(sorted(found.items()))

    def _packed_refs(self) -> dict[str, str]:
        try:
            text = (self.path / "packed-refs").read_text()
        except FileNotFoundError:
            return {}
        found = {}
        for line in text.splitlines():
            parts = line.split(" ", 1)
            if len(parts) == 2 and _SHA.match(parts[0]):
                found[parts[1]] = parts[0]
        return found

    def write_ref(self, name: str, sha: str) -> None:
        """Points ``name`` at ``sha`` (atomic rename) and refreshes the files git's dumb HTTP protocol reads."""
        if not _REF_NAME.match(name) or not _SHA.match(sha):
            raise ValueError(f"invalid ref {name!r} -> {sha!r}")
        self._atomic_write(self.path / name, sha + "\n")
        self.update_server_info()

    def delete_ref(self, name: str) -> None:
        try:
            os.unlink(self.path / name)
        except FileNotFoundError:
            pass
        if name in self._packed_refs():
            kept = [line for line in (self.path / "packed-refs").read_text().splitlines() if not line.endswith(" " + name)]
            self._atomic_write(self.path / "packed-refs", "\n".join(kept) + "\n")
        self.update_server_info()

    def update_server_info(self) -> None:
        """Writes ``info/refs`` and ``objects/info/packs`` as ``git update-server-info`` does, without a process."""
        lines = []
        for name, sha in self.refs().items():
            lines.append(f"{sha}\t{name}\n")
            try:
                kind, body = self.read(sha)
            except KeyError:
                continue
            if kind == "tag":  # annotated tags also list the object they point to
                target = body.split(b"\n", 1)[0].split(b" ", 1)[1].decode()
                lines.append(f"{target}\t{name}^{{}}\n")
        self._atomic_write(self.path / "info" / "refs", "".join(lines))
        pack_dir = self._objects / "pack"
        packs = sorted(p.name for p in pack_dir.glob("*.pack")) if pack_dir.exists() else []
        self._atomic_write(self._objects / "info" / "packs", "".join(f"P {name}\n" for name in packs) + "\n")

    @staticmethod
    def _atomic_write(path: Path, text: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp_")
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, path)
