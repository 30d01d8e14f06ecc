"""What ``validate`` checks of a Space before any deploy, without touching the Hub.

A config is checked completely before anything is written (``beam_pusher.config``); these are the checks that need
more than the config's text: whether this machine can open a URL's filesystem, and what the Space's template makes
of its README front matter (as ``beam_pusher.frontmatter`` decides it for the deploy, which checks the same again
before it writes).
"""

from __future__ import annotations

import dataclasses

from beam_pusher import frontmatter, sources, templates
from beam_pusher.errors import SpecError, TemplateError
from beam_pusher.rules import is_url
from beam_pusher.spec import SpaceSpec

__all__ = ["TemplateCheck", "check_template", "missing_filesystem"]

# The extra that installs the filesystem of a scheme, where beam-pusher has one.
_FILESYSTEM_EXTRAS = {"gs": "gcp", "gcs": "gcp", "s3": "s3", "s3a": "s3"}

_STREAMLIT_WARNING = (
    "the Hub no longer creates Streamlit Spaces: if this Space does not exist yet, deploy it as a Docker Space "
    "(space_sdk: docker, a Dockerfile that runs streamlit on port 8501 and app_port: 8501, as "
    "apps.streamlit.img_classifier does)."
)


def missing_filesystem(url: str) -> str | None:
    """Why fsspec cannot open ``url`` here (its scheme unknown, or the filesystem not installed); None if it can.

    Each protocol of a chain (``simplecache::s3://b/x``) is checked. Only the import is tried: no bucket is read.

    Example::

        missing_filesystem("s3://bucket/app")  # "... install 'beam-pusher[s3]' ..." where s3fs is missing
    """
    import fsspec

    for part in url.split("::"):
        protocol = part.split("://", 1)[0]
        try:
            fsspec.get_filesystem_class(protocol)
        except ValueError:
            return (f"{url!r}: fsspec knows no filesystem for {protocol}://; use a local path or a URL such as "
                    "gs://, s3://, hf:// or memory://.")
        except ImportError as err:
            extra = _FILESYSTEM_EXTRAS.get(protocol)
            fix = f"pip install 'beam-pusher[{extra}]'" if extra else str(err).splitlines()[0]
            return (f"{url!r}: the filesystem for {protocol}:// is not installed here; {fix} (on the workers too: "
                    "see docs/dataflow.md).")
    return None


@dataclasses.dataclass(frozen=True)
class TemplateCheck:
    """What ``check_template`` found: each problem under the config key it belongs to."""

    errors: tuple[tuple[str, str], ...] = ()
    warnings: tuple[tuple[str, str], ...] = ()


def check_template(spec: SpaceSpec, base_dir: str) -> TemplateCheck:
    """What the Space's template makes of its front matter (local templates only), as ``(key, message)`` pairs.

    A remote template (``gs://``, ``hf://``) is read by the deploy, which checks the same before writing; a local
    one that cannot be listed (yet) fails its deploy, which says why.
    """
    warnings = [("space_sdk", _STREAMLIT_WARNING)] if spec.space_sdk == "streamlit" else []
    if is_url(spec.app_path) and not spec.app_path.startswith(("file://", "local://")):
        return TemplateCheck(warnings=tuple(warnings))
    try:
        values = templates.placeholder_values(spec)
    except SpecError as err:
        return TemplateCheck(errors=(("placeholders", str(err)),), warnings=tuple(warnings))
    try:
        root = sources.resolve_app_path(spec.app_path, base_dir=base_dir)
        listing = sources.scan_source_files(root, exclude=spec.exclude, include=spec.include)
        template_files = list(listing.files)
        texts, _ = frontmatter.read_front_matter_sources(template_files, values)
    except (OSError, TemplateError):
        return TemplateCheck(warnings=tuple(warnings))
    try:
        front = frontmatter.plan_front_matter(
            spec, [f.path for f in template_files], texts.get("README.md"),
            requirements_text=texts.get("requirements.txt"), dockerfile_text=texts.get("Dockerfile"),
        )
    except TemplateError as err:
        return TemplateCheck(errors=(("app_path", f"{spec.app_path}: {err}"),), warnings=tuple(warnings))
    secrets = [e.path for e in listing.excluded if e.is_secret]
    if secrets:
        warnings.append(("app_path", f"{spec.app_path}: not uploading {', '.join(secrets)}: .env files may hold "
                                     "secrets (include: uploads one anyway)"))
    errors = tuple(("app_path", f"{spec.app_path}: {error}") for error in front.errors)
    warnings += [("app_path", f"{spec.app_path}: {warning}") for warning in front.warnings]
    return TemplateCheck(errors=errors, warnings=tuple(warnings))
