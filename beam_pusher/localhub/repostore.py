"""Every repository of one local Hub: find (case-insensitively, as the Hub), create and delete them on disk.

Layout under ``data_dir/repos``: ``<models|datasets|spaces>/<namespace>/<name>.git`` and ``<name>.json`` (see
``storage``). A repository keeps the spelling it was created with; ``User/Demo`` finds ``user/demo``, and creating
``User/Demo`` next to ``user/demo`` is refused as a duplicate, as on the Hub.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from beam_pusher.localhub.gitobjects import GitRepo, Signature
from beam_pusher.localhub.names import valid_name
from beam_pusher.localhub.storage import REPO_TYPES, Repository, StorageError

__all__ = ["RepoStore"]


class RepoStore:
    """Every repository of one local Hub.

    Args:
        data_dir: root directory; repositories found there are served again (data survives a restart).
    """

    def __init__(self, data_dir: str | os.PathLike):
        self.root = Path(data_dir) / "repos"
        self.root.mkdir(parents=True, exist_ok=True)
        self._repos: dict[tuple[str, str], Repository] = {}  # keyed by (type, lowercase id)
        self._lock = threading.Lock()  # guards the registry only, never held during git work

    def _paths(self, repo_type: str, repo_id: str) -> tuple[Path, Path]:
        namespace, name = repo_id.split("/", 1)
        folder = self.root / f"{repo_type}s" / namespace
        return folder / f"{name}.git", folder / f"{name}.json"

    def _on_disk(self, repo_type: str, repo_id: str) -> str | None:
        """The id as spelled on disk of the repository ``repo_id`` names in any case, or None."""
        git_path, settings_path = self._paths(repo_type, repo_id)
        if settings_path.exists() and git_path.exists():
            return repo_id
        namespace, name = repo_id.lower().split("/", 1)
        try:
            folders = [entry for entry in os.scandir(self.root / f"{repo_type}s") if entry.name.lower() == namespace]
            for folder in folders:
                for entry in os.scandir(folder.path):
                    if entry.name.lower() == f"{name}.json" and (Path(folder.path) / f"{entry.name[:-5]}.git").exists():
                        return f"{folder.name}/{entry.name[:-5]}"
        except FileNotFoundError:
            return None
        return None

    def get(self, repo_type: str, repo_id: str) -> Repository | None:
        """The repository ``repo_id`` names, whatever the case of its letters, or None when it does not exist."""
        key = (repo_type, repo_id.lower())
        repo = self._repos.get(key)
        if repo is not None or repo_type not in REPO_TYPES or repo_id.count("/") != 1:
            return repo
        if not all(valid_name(part) for part in repo_id.split("/")):
            return None
        found = self._on_disk(repo_type, repo_id)
        if found is None:
            return None
        with self._lock:
            repo = self._repos.get(key)
            if repo is None:
                repo = Repository(repo_type, found, *self._paths(repo_type, found))
                self._repos[key] = repo
            return repo

    def create(
        self, repo_type: str, repo_id: str, settings: dict[str, Any], initial_files: dict[str, bytes], author: Signature
    ) -> Repository:
        """Creates a repository with its initial commit; StorageError(409) if it exists, in any case of letters."""
        if repo_type not in REPO_TYPES or repo_id.count("/") != 1 or not all(map(valid_name, repo_id.split("/"))):
            raise StorageError(400, f"Invalid repo {repo_type} {repo_id!r}: expected 'namespace/name' of a model, "
                               "dataset or space")
        with self._lock:
            if (repo_type, repo_id.lower()) in self._repos or self._on_disk(repo_type, repo_id) is not None:
                raise StorageError(409, f"You already created this {repo_type} repo")
            namespace = repo_id.split("/", 1)[0]
            for other in self._namespaces(repo_type, namespace):  # one folder per namespace, whatever its case
                repo_id = f"{other}/{repo_id.split('/', 1)[1]}"
            git_path, settings_path = self._paths(repo_type, repo_id)
            if git_path.exists():  # left over by an interrupted create
                shutil.rmtree(git_path)
            GitRepo.init(git_path)
            settings = {"id": uuid.uuid4().hex[:24], "created_at": time.time(), **settings}
            settings_path.write_text(json.dumps(settings, indent=1, sort_keys=True))
            repo = Repository(repo_type, repo_id, git_path, settings_path)
            self._repos[(repo_type, repo_id.lower())] = repo
        repo.write_initial_commit(initial_files, author)
        return repo

    def _namespaces(self, repo_type: str, namespace: str) -> list[str]:
        folder = self.root / f"{repo_type}s"
        if not folder.is_dir():
            return []
        return [entry.name for entry in os.scandir(folder) if entry.name.lower() == namespace.lower()][:1]

    def delete(self, repo_type: str, repo_id: str) -> None:
        repo = self.get(repo_type, repo_id)
        repo_id = repo.repo_id if repo is not None else repo_id
        git_path, settings_path = self._paths(repo_type, repo_id)
        with self._lock:
            self._repos.pop((repo_type, repo_id.lower()), None)
            trash = self.root / ".trash" / uuid.uuid4().hex
            trash.mkdir(parents=True)
            if settings_path.exists():
                os.replace(settings_path, trash / "settings.json")
            if git_path.exists():
                os.replace(git_path, trash / "repo.git")
        shutil.rmtree(trash, ignore_errors=True)

    def move(self, repo_type: str, repo_id: str, new_id: str) -> Repository:
        """Renames repository ``repo_id`` to ``new_id``: git data, settings and discussions move together.

        Raises:
            StorageError: 404 when ``repo_id`` does not exist, 409 when ``new_id`` does (in any case of letters).
        """
        repo = self.get(repo_type, repo_id)
        if repo is None:
            raise StorageError(404, f"Repository Not Found: {repo_type} {repo_id!r}", "RepoNotFound")
        with repo.lock, self._lock:  # no commit of the repository runs while its files move
            if self._on_disk(repo_type, new_id) is not None or (repo_type, new_id.lower()) in self._repos:
                raise StorageError(409, f"A {repo_type} repository called {new_id} already exists: choose another "
                                   "name, or delete that repository first")
            for other in self._namespaces(repo_type, new_id.split("/", 1)[0]):  # one folder per namespace
                new_id = f"{other}/{new_id.split('/', 1)[1]}"
            (git_path, settings_path), (new_git, new_settings) = self._paths(repo_type, repo.repo_id), self._paths(
                repo_type, new_id)
            new_git.parent.mkdir(parents=True, exist_ok=True)
            os.replace(git_path, new_git)
            os.replace(settings_path, new_settings)
            self._repos.pop((repo_type, repo.repo_id.lower()), None)
            moved = Repository(repo_type, new_id, new_git, new_settings)
            self._repos[(repo_type, new_id.lower())] = moved
        return moved

    def all(self, repo_type: str) -> list[Repository]:
        """Every repository of a type (for listings), sorted by id."""
        folder = self.root / f"{repo_type}s"
        found = []
        for settings_path in sorted(folder.glob("*/*.json")):
            repo = self.get(repo_type, f"{settings_path.parent.name}/{settings_path.stem}")
            if repo is not None:
                found.append(repo)
        return found
