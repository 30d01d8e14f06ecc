"""Repositories of the local Hub: bare git repositories plus a JSON settings file each, under one data directory.

Layout of ``data_dir``::

    repos/<models|datasets|spaces>/<namespace>/<name>.git    bare git repository (real commits, refs, trees)
    repos/<models|datasets|spaces>/<namespace>/<name>.json   settings: visibility, sdk, hardware, secrets, ...
    lfs/<oid[:2]>/<oid[2:4]>/<oid>                          LFS objects, shared by all repositories

Everything is on disk, so re-opening the same ``data_dir`` after a restart serves the same repositories. Commits to
one repository are serialized by that repository's lock; different repositories never wait for each other. This
module is one repository; ``repostore`` finds, creates and deletes them.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

from beam_pusher.localhub.gitobjects import (
    MODE_DIR,
    MODE_FILE,
    GitRepo,
    Signature,
    TreeEntry,
    is_sha,
    is_short_sha,
    valid_ref_name,
)
from beam_pusher.localhub.lfs import parse_pointer

__all__ = [
    "AddFile", "DeletePath", "FileInfo", "Repository", "Snapshot", "StorageError", "REPO_TYPES",
    "default_gitattributes",
]

REPO_TYPES = ("model", "dataset", "space")
DEFAULT_BRANCH = "main"
_LFS_PATTERNS = (
    "*.7z", "*.arrow", "*.bin", "*.bz2", "*.ckpt", "*.ftz", "*.gz", "*.h5", "*.joblib", "*.lfs.*", "*.mlmodel",
    "*.model", "*.msgpack", "*.npy", "*.npz", "*.onnx", "*.ot", "*.parquet", "*.pb", "*.pickle", "*.pkl", "*.pt",
    "*.pth", "*.rar", "*.safetensors", "saved_model/**/*", "*.tar.*", "*.tar", "*.tflite", "*.tgz", "*.wasm",
    "*.xz", "*.zip", "*.zst", "*tfevents*",
)
# Datasets get more: the Hub's default for a dataset also stores audio, images and video with LFS.
_DATASET_LFS_PATTERNS = (
    "*.lz4", "*.mds", "*.pcm", "*.sam", "*.raw", "*.aac", "*.flac", "*.mp3", "*.ogg", "*.wav", "*.bmp", "*.gif",
    "*.png", "*.tiff", "*.jpg", "*.jpeg", "*.webp", "*.mp4", "*.webm",
)


def default_gitattributes(repo_type: str) -> bytes:
    """The ``.gitattributes`` of a new repository's initial commit, as the Hub writes it for ``repo_type``."""
    patterns = _LFS_PATTERNS + (_DATASET_LFS_PATTERNS if repo_type == "dataset" else ())
    return "".join(f"{pattern} filter=lfs diff=lfs merge=lfs -text\n" for pattern in patterns).encode()


GITATTRIBUTES = default_gitattributes("model")
_SNAPSHOTS_PER_REPO = 8


class StorageError(Exception):
    """A request the repository cannot apply; ``status``/``code`` say how the HTTP layer answers it."""

    def __init__(self, status: int, message: str, code: str | None = None):
        super().__init__(message)
        self.status = status
        self.code = code


@dataclasses.dataclass(frozen=True)
class AddFile:
    """Commit operation: ``path`` gets the blob ``blob_sha`` (already written; an LFS pointer for LFS files)."""

    path: str
    blob_sha: str


@dataclasses.dataclass(frozen=True)
class DeletePath:
    """Commit operation: delete a file, or every file under a folder when ``folder`` is true."""

    path: str
    folder: bool = False


@dataclasses.dataclass(frozen=True)
class FileInfo:
    """A file as the Hub describes it: ``size`` is the content size (the LFS object's for LFS files)."""

    path: str
    blob_id: str
    size: int
    lfs_oid: str | None = None
    pointer_size: int | None = None


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """The flattened tree of one commit: ``files`` maps path -> blob sha, ``dirs`` maps folder -> tree sha."""

    commit: str
    files: dict[str, str]
    dirs: dict[str, str]


class Repository:
    """One repository: its git objects, refs, settings and locks.

    Args:
        repo_type: ``model``, ``dataset`` or ``space``.
        repo_id: ``namespace/name``.
        git_path: the bare repository directory.
        settings_path: the JSON settings file.
    """

    def __init__(self, repo_type: str, repo_id: str, git_path: Path, settings_path: Path):
        self.repo_type = repo_type
        self.repo_id = repo_id
        self.namespace, self.name = repo_id.split("/", 1)
        self.git = GitRepo(git_path)
        self.settings_path = settings_path
        self.settings: dict[str, Any] = json.loads(settings_path.read_text())
        self.lock = threading.RLock()  # serializes commits, ref updates and settings writes of this repository
        self._snapshots: collections.OrderedDict[str, Snapshot] = collections.OrderedDict()
        self._blob_info: dict[str, tuple[int, str | None, int | None]] = {}
        self._cache_lock = threading.Lock()

    # Settings ----------------------------------------------------------------------------------------------------

    @property
    def private(self) -> bool:
        return bool(self.settings.get("private"))

    def save_settings(self) -> None:
        """Writes the settings file atomically; call with ``self.lock`` held."""
        fd, tmp = tempfile.mkstemp(dir=self.settings_path.parent, prefix=".tmp_")
        with os.fdopen(fd, "w") as handle:
            json.dump(self.settings, handle, indent=1, sort_keys=True)
        os.replace(tmp, self.settings_path)

    # Revisions ---------------------------------------------------------------------------------------------------

    def branch_head(self, branch: str) -> str | None:
        name = branch if branch.startswith("refs/heads/") else f"refs/heads/{branch}"
        return self.git.read_ref(name) if valid_ref_name(name) else None

    def resolve(self, revision: str | None) -> str | None:
        """Commit SHA of a revision, or None if unknown.

        A revision is a branch or tag (short or ``refs/...`` name), a pull request ref (``refs/pr/N``), a full
        commit SHA, or an abbreviated one (7+ hex digits, unique in the repository), as the Hub resolves them.
        """
        revision = revision or DEFAULT_BRANCH
        if revision.startswith("refs/"):
            return self.git.read_ref(revision) if valid_ref_name(revision) else None
        for prefix in ("refs/heads/", "refs/tags/"):
            if valid_ref_name(prefix + revision):
                sha = self.git.read_ref(prefix + revision)
                if sha is not None:
                    return sha
        if is_sha(revision):
            return revision if self.git.is_commit(revision) else None
        return self.git.find_commit(revision) if is_short_sha(revision) else None

    def branches(self) -> dict[str, str]:
        return {name[len("refs/heads/") :]: sha for name, sha in self.git.refs().items() if name.startswith("refs/heads/")}

    def tags(self) -> dict[str, str]:
        return {name[len("refs/tags/") :]: sha for name, sha in self.git.refs().items() if name.startswith("refs/tags/")}

    def pull_requests(self) -> dict[str, str]:
        """``{"refs/pr/1": sha, ...}``, in the order of their numbers."""
        found = {name: sha for name, sha in self.git.refs().items() if name.startswith("refs/pr/")}
        return dict(sorted(found.items(), key=lambda item: int(item[0].rsplit("/", 1)[1])))

    def create_ref(self, name: str, sha: str) -> None:
        """Creates a branch or tag ref; 409 if it exists, 400 if the name is not a valid ref name."""
        if not valid_ref_name(name):
            raise StorageError(
                400, f"Invalid reference name {name.split('/', 2)[-1]!r}: use letters, digits, '-', '_', '.' and '/'"
            )
        with self.lock:
            existing = set(self.git.refs())
            if name in existing:
                raise StorageError(409, f"Reference {name} already exists")
            if any(other.startswith(name + "/") or name.startswith(other + "/") for other in existing):
                raise StorageError(409, f"Reference {name} conflicts with an existing reference")
            self.git.write_ref(name, sha)

    def delete_ref(self, name: str) -> None:
        with self.lock:
            if self.git.read_ref(name) is None:
                raise StorageError(404, f"Invalid rev id: {name} does not exist in {self.repo_id!r}",
                                   "RevisionNotFound")
            self.git.delete_ref(name)

    # Trees -------------------------------------------------------------------------------------------------------

    def snapshot(self, commit: str) -> Snapshot:
        """The flattened tree of ``commit`` (cached per commit; commits never change)."""
        with self._cache_lock:
            found = self._snapshots.get(commit)
            if found is not None:
                self._snapshots.move_to_end(commit)
                return found
        files: dict[str, str] = {}
        dirs: dict[str, str] = {}

        def walk(tree_sha: str, prefix: str) -> None:
            for entry in self.git.read_tree(tree_sha):
                path = prefix + entry.name
                if entry.is_dir:
                    dirs[path] = entry.sha
                    walk(entry.sha, path + "/")
                elif entry.mode != "160000":  # submodules have no content here
                    files[path] = entry.sha

        walk(self.git.read_commit(commit).tree, "")
        snap = Snapshot(commit, files, dirs)
        self._remember(snap)
        return snap

    def _remember(self, snap: Snapshot) -> None:
        with self._cache_lock:
            self._snapshots[snap.commit] = snap
            while len(self._snapshots) > _SNAPSHOTS_PER_REPO:
                self._snapshots.popitem(last=False)

    def file_info(self, path: str, blob_sha: str) -> FileInfo:
        """Size and LFS details of a blob; LFS pointers are recognized by their content, as git-lfs does."""
        cached = self._blob_info.get(blob_sha)
        if cached is None:
            _, data = self.git.read(blob_sha)
            pointer = parse_pointer(data)
            cached = (len(data), pointer[0], pointer[1]) if pointer else (len(data), None, None)
            with self._cache_lock:
                self._blob_info[blob_sha] = cached
        blob_size, lfs_oid, lfs_size = cached
        if lfs_oid is None:
            return FileInfo(path, blob_sha, blob_size)
        return FileInfo(path, blob_sha, int(lfs_size or 0), lfs_oid, blob_size)

    def read_blob(self, blob_sha: str) -> bytes:
        return self.git.read(blob_sha)[1]

    # Commits -----------------------------------------------------------------------------------------------------

    def commit(
        self,
        branch: str,
        operations: list[AddFile | DeletePath],
        message: str,
        author: Signature,
        parent_commit: str | None = None,
        *,
        new_ref: str | None = None,
    ) -> str:
        """Applies ``operations`` on top of ``branch`` (a branch name or ``refs/pr/N``) as one commit; returns its SHA.

        With ``new_ref`` (a pull request's ``refs/pr/N``) the commit goes to that new ref instead, made on top of
        ``parent_commit`` when given (full or abbreviated), else on the head of ``branch``; ``branch`` is unchanged.
        A commit whose tree equals the head's is still made, as on the Hub: the client itself leaves out unchanged
        files (preupload returns their remote oid) and sends no commit when nothing is left.

        Raises:
            StorageError: 404 (unknown branch or parent, deleting a missing path), 412 (``parent_commit`` is not the
                head), 409 (``new_ref`` exists), 400 (a file and a folder with the same path).
        """
        ref = branch if branch.startswith("refs/") else f"refs/heads/{branch}"
        with self.lock:
            head = self.git.read_ref(ref) if valid_ref_name(ref) else None
            if head is None:
                raise StorageError(404, f"Invalid rev id: {branch!r} is not a branch of {self.repo_id!r}: commit to an "
                                   "existing branch", "RevisionNotFound")
            base = head
            if new_ref is not None:
                base = self.resolve(parent_commit) if parent_commit else head
                if base is None:
                    raise StorageError(404, f"Invalid rev id: parent commit {parent_commit!r} is not a commit of "
                                       f"{self.repo_id!r}", "RevisionNotFound")
                if self.git.read_ref(new_ref) is not None:
                    raise StorageError(409, f"Reference {new_ref} already exists")
            elif parent_commit is not None and not _same_commit(parent_commit, head):
                raise StorageError(412, "The branch was updated since you opened this page. Please refresh and try "
                                   f"again. (The parent commit {parent_commit} is not the head of {branch!r}, which is "
                                   f"{head}.)")
            files = dict(self.snapshot(base).files)
            for operation in operations:
                _apply(files, operation)
            sha = self._write_commit(files, [base], message, author)
            self.git.write_ref(new_ref or ref, sha)
            return sha

    def merge(self, branch: str, theirs: str, message: str, author: Signature) -> str:
        """Merges commit ``theirs`` into ``branch`` with a real three-way git merge; returns the merge commit's SHA.

        Raises:
            StorageError: 404 (unknown branch), 409 (the merge has conflicts; the paths are named).
        """
        with self.lock:
            head = self.branch_head(branch)
            if head is None:
                raise StorageError(404, f"Invalid rev id: {branch!r} is not a branch of {self.repo_id!r}",
                                   "RevisionNotFound")
            result = self.git.merge(head, theirs)
            if result.conflicts:
                raise StorageError(409, f"Merge conflict in {', '.join(result.conflicts)}: the pull request changes "
                                   f"files that changed on {branch!r} since; update the pull request and merge again")
            sha = self.git.write_commit(result.tree, [head, theirs], author, message)
            self.git.write_ref(f"refs/heads/{branch}", sha)
            return sha

    def squash(self, ref: str, message: str, author: Signature) -> str:
        """Points ``ref`` at one new root commit holding its head's tree (super-squash); returns that commit's SHA."""
        with self.lock:
            head = self.git.read_ref(ref)
            if head is None:
                raise StorageError(404, f"Invalid rev id: {ref!r} is not a branch of {self.repo_id!r}",
                                   "RevisionNotFound")
            sha = self.git.write_commit(self.git.read_commit(head).tree, [], author, message)
            self.git.write_ref(ref, sha)
            return sha

    def conflicts(self, branch: str, theirs: str) -> tuple[str, ...]:
        """Paths that would conflict if ``theirs`` were merged into ``branch`` now."""
        head = self.branch_head(branch)
        return () if head is None else self.git.merge(head, theirs).conflicts

    def write_initial_commit(self, files: dict[str, bytes], author: Signature) -> str:
        """Creates the first commit of ``main`` (``.gitattributes``, and README.md for a Space)."""
        with self.lock:
            blobs = {path: self.git.write_blob(data) for path, data in files.items()}
            sha = self._write_commit(blobs, [], "initial commit", author)
            self.git.write_ref(f"refs/heads/{DEFAULT_BRANCH}", sha)
            return sha

    def _write_commit(self, files: dict[str, str], parents: list[str], message: str, author: Signature) -> str:
        children: dict[str, dict[str, TreeEntry]] = collections.defaultdict(dict)
        children[""] = {}
        for path, blob in files.items():
            folder, _, name = path.rpartition("/")
            ancestor = folder
            while ancestor and ancestor not in children:  # every ancestor folder gets a tree, even if it only has folders
                children[ancestor] = {}
                ancestor = ancestor.rpartition("/")[0]
            children[folder][name] = TreeEntry(MODE_FILE, name, blob)
        dirs: dict[str, str] = {}
        for folder in sorted(children, key=lambda f: f.count("/") if f else -1, reverse=True):
            tree = self.git.write_tree(list(children[folder].values()))
            if folder:
                dirs[folder] = tree
                parent, _, name = folder.rpartition("/")
                children.setdefault(parent, {})[name] = TreeEntry(MODE_DIR, name, tree)
            else:
                root = tree
        sha = self.git.write_commit(root, parents, author, message)
        self._remember(Snapshot(sha, dict(files), dirs))
        return sha

    def history(self, commit: str) -> list[str]:
        """Commit SHAs reachable from ``commit``, newest first, in ``git log``'s order.

        A linear history is walked here; one with a merge (a merged pull request) is listed by ``git rev-list``.
        """
        shas = []
        current: str | None = commit
        while current is not None:
            parents = self.git.read_commit(current).parents
            if len(parents) > 1:
                return self.git.rev_list(commit)
            shas.append(current)
            current = parents[0] if parents else None
        return shas

    def last_commits(self, commit: str, paths: list[str]) -> dict[str, str]:
        """For each path at ``commit``, the newest commit in its history that changed it (``expand=True``)."""
        pending, found = set(paths), {}
        for sha in self.history(commit):
            if not pending:
                break
            snap, parents = self.snapshot(sha), self.git.read_commit(sha).parents
            before = self.snapshot(parents[0]) if parents else None
            for path in list(pending):
                oid = snap.files.get(path) or snap.dirs.get(path)
                if before is None or oid != (before.files.get(path) or before.dirs.get(path)):
                    found[path] = sha
                    pending.discard(path)
        return found


def _same_commit(given: str, head: str) -> bool:
    """True if ``given`` names ``head``: in full, or abbreviated to 7+ hex digits as the client allows."""
    return given == head or (is_short_sha(given) and head.startswith(given))


def _apply(files: dict[str, str], operation: AddFile | DeletePath) -> None:
    if isinstance(operation, AddFile):
        path = operation.path
        prefix = path + "/"
        if any(existing.startswith(prefix) for existing in files):
            raise StorageError(400, f"Cannot add file {path!r}: a folder with this path exists in the repository")
        parts = path.split("/")
        for depth in range(1, len(parts)):
            if "/".join(parts[:depth]) in files:
                raise StorageError(
                    400, f"Cannot add file {path!r}: {'/'.join(parts[:depth])!r} is a file, not a folder"
                )
        files[path] = operation.blob_sha
    elif operation.folder:
        prefix = operation.path.rstrip("/") + "/"
        doomed = [path for path in files if path.startswith(prefix)]
        if not doomed:
            raise StorageError(404, f"A folder with this name doesn't exist: {operation.path!r}", "EntryNotFound")
        for path in doomed:
            del files[path]
    elif operation.path in files:
        del files[operation.path]
    elif any(path.startswith(operation.path + "/") for path in files):
        _apply(files, DeletePath(operation.path, folder=True))  # a folder named without its trailing "/", as the Hub
    else:
        raise StorageError(404, f"A file with this name doesn't exist: {operation.path!r}", "EntryNotFound")
