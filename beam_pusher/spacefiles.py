"""What one Space will hold, listed before anything is read: ``list_space_files`` makes the ``SpaceFiles`` that
``ReadAppFiles`` emits. Pure functions over fsspec, testable without Beam.
"""

from __future__ import annotations

import logging

from beam_pusher import frontmatter, sources, templates
from beam_pusher.hashing import hash_bytes
from beam_pusher.spec import AppFile, Exclusion, SpaceFiles, SpaceSpec

__all__ = ["content_file", "list_space_files"]

logger = logging.getLogger(__name__)


def content_file(repo_id: str, path: str, content: bytes) -> AppFile:
    """An in-memory file of a Space, with the hashes the Hub compares it by."""
    hashes = hash_bytes(content)
    return AppFile(repo_id, path, hashes.size, content=content, sha256=hashes.sha256, git_sha1=hashes.git_sha1)


def list_space_files(spec: SpaceSpec, *, base_dir: str | None = None) -> SpaceFiles:
    """One Space's files before rendering: its template's and embedded model's files, chosen as git would choose
    them, as references to read later, and the generated README.md (front matter the Hub builds) and
    model_loader.py, in memory. Relative paths are resolved against ``base_dir`` (default: the working directory).

    Raises:
      BeamPusherError: the template or model cannot be read, a placeholder value conflicts, the front matter
        cannot be built, or a path is listed twice (template vs ``model/``).
    """
    values = templates.placeholder_values(spec)  # conflicting values fail this Space here, before any read
    root = sources.resolve_app_path(spec.app_path, base_dir=base_dir)
    listing = sources.scan_source_files(root, exclude=spec.exclude, include=spec.include)
    template_files = list(listing.files)
    excluded: list[Exclusion] = list(listing.excluded)
    model_files = None
    if spec.model_path and not spec.model_hub_repo_id:
        model_root = sources.resolve_model_path(spec.model_path, base_dir=base_dir)
        model_listing = sources.scan_source_files(
            model_root, prefix="model/", exclude=spec.exclude, include=spec.include
        )
        model_files = list(model_listing.files)
        excluded.extend(model_listing.excluded)
    texts, readme_use = frontmatter.read_front_matter_sources(
        template_files, values, strict=spec.strict_placeholders
    )
    front = frontmatter.plan_front_matter(
        spec,
        [f.path for f in template_files],
        texts.get("README.md"),
        requirements_text=texts.get("requirements.txt"),
        dockerfile_text=texts.get("Dockerfile"),
    )
    for warning in front.warnings:
        logger.warning("%s: %s", spec.repo_id, warning)
    generated = frontmatter.generated_files(spec, template_files, model_files, texts.get("README.md"), front=front)
    files = [
        AppFile(spec.repo_id, source.path, source.size, source=source.url)
        for source in template_files + (model_files or [])
        if source.path not in generated
    ]
    files += [content_file(spec.repo_id, path, content) for path, content in sorted(generated.items())]
    # SpaceFiles refuses a path listed twice (template vs model/): that fails this Space here.
    return SpaceFiles(
        spec, tuple(files), warnings=front.warnings, placeholder_use=readme_use, excluded=tuple(excluded)
    )
