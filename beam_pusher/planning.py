"""Planning a push: which files to add, update and delete, from the local files and the remote tree. Pure.

``RemoteState`` is a repository as one ``repo_info`` request read it (``Committer.read_state``); ``plan_changes``
compares local files with its files, by the hashes the Hub keeps: the git blob sha1 of a regular file, the sha256
of an LFS file. ``beam_pusher.commit`` turns the plan into one commit; its names are re-exported there.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any

from beam_pusher.selection import PathPatterns
from beam_pusher.spec import AppFile, ChangeAction, PlannedChange

__all__ = ["RemoteFile", "RemoteState", "plan_changes", "remote_tree"]

_NEVER_DELETED = frozenset({".gitattributes"})


@dataclasses.dataclass(frozen=True)
class RemoteFile:
    """A file of the remote tree, with the hash the Hub keeps for it."""

    path: str
    size: int
    git_sha1: str
    sha256: str | None = None  # set for LFS files


@dataclasses.dataclass(frozen=True)
class RemoteState:
    """A repository as one ``repo_info`` request read it: head commit, files, and the info itself.

    ``info`` is the client's ``RepoInfo`` (a ``SpaceInfo`` for Spaces: visibility, runtime, card data), None when the
    repository does not exist; then ``head`` is None and ``files`` is empty.
    """

    head: str | None
    files: dict[str, RemoteFile]
    info: Any = None

    @property
    def exists(self) -> bool:
        return self.info is not None


def plan_changes(
    local: Iterable[AppFile], remote: dict[str, RemoteFile], *, keep: Sequence[str] = (), mirror: bool = True
) -> tuple[list[PlannedChange], int]:
    """Compares local files with the remote tree; returns (changes, number of unchanged files).

    A file is unchanged when its hash equals the remote one: sha256 for LFS files, the git blob sha1 otherwise. A
    local file above ``GIT_BLOB_LIMIT`` has no sha1; should the remote keep such a file as a regular blob, which the
    Hub does not allow, it is uploaded again (as LFS) rather than compared.

    ``keep`` patterns are .gitignore patterns (the language of ``exclude``): ``data/`` or ``data/*`` keep everything
    under ``data/``, ``data/*.csv`` only the CSV files directly in it, ``*.db`` any ``.db`` file; ``.gitattributes``
    is always kept.
    """
    changes: list[PlannedChange] = []
    unchanged = 0
    local_paths = set()
    for f in sorted(local, key=lambda f: f.path):
        local_paths.add(f.path)
        r = remote.get(f.path)
        if r is None:
            changes.append(PlannedChange(ChangeAction.ADD, f.path, f.size))
        elif (r.sha256 is not None and r.sha256 == f.sha256) or (r.sha256 is None and r.git_sha1 == f.git_sha1):
            unchanged += 1
        else:
            changes.append(PlannedChange(ChangeAction.UPDATE, f.path, f.size))
    if mirror:
        kept = PathPatterns(keep)
        for path in sorted(set(remote) - local_paths):
            if path not in _NEVER_DELETED and not kept.matches(path):
                changes.append(PlannedChange(ChangeAction.DELETE, path, remote[path].size))
    return changes, unchanged


def remote_tree(
    api: Any, repo_id: str, *, repo_type: str = "space", revision: str | None = None
) -> dict[str, RemoteFile]:
    """The remote files of a repository at ``revision``, listed with ``list_repo_tree`` (for tests and views)."""
    from huggingface_hub.hf_api import RepoFile

    return {
        e.path: RemoteFile(e.path, e.size, e.blob_id, e.lfs.sha256 if e.lfs else None)
        for e in api.list_repo_tree(repo_id, repo_type=repo_type, revision=revision, recursive=True)
        if isinstance(e, RepoFile)
    }
