"""The benchmark's Spaces: one template, N embedded models, and the same files pre-rendered for the baseline.

Each Space holds 30 files: 19 text files of the template (with placeholders), 8 small binary assets, its own
embedded model (a 5 MB random ``model/weights.bin`` and a ``model/config.json``) and the generated
``model_loader.py``; README.md is generated from the template's. Content is seeded, so every run deploys the same
bytes, and random, so nothing compresses or deduplicates across Spaces.

``render_folder`` writes what a Space should hold with the same ``beam_pusher.templates`` functions the pipeline
uses, so the baseline uploads exactly the tree beam_pusher deploys (the benchmark checks that afterwards).
"""

from __future__ import annotations

import dataclasses
import os
import random
from pathlib import Path

import yaml

from beam_pusher import frontmatter, sources, templates
from beam_pusher.spec import SpaceSpec

__all__ = ["Dataset", "make_dataset", "render_folder", "write_config"]

MODEL_SIZE = 5 * 1000 * 1000
_TEXT_FILES = 16  # + README.md, app.py, requirements.txt = 19
_BINARY_FILES = 8


@dataclasses.dataclass(frozen=True)
class Dataset:
    """Where the benchmark's inputs are."""

    root: Path
    template: Path
    specs: tuple[SpaceSpec, ...]


def _text(rng: random.Random, lines: int, kind: str) -> str:
    words = ["alpha", "beta", "gamma", "delta", "penguin", "model", "tensor", "gradio", "space", "deploy"]
    body = []
    for i in range(lines):
        line = " ".join(rng.choice(words) for _ in range(rng.randint(4, 12)))
        if i % 7 == 0:
            line += " # $SPACE_REPO_ID by ${TEAM} (#$SPACE_INDEX)"
        body.append(f"# {line}" if kind == "py" else line)
    return "\n".join(body) + "\n"


def _write_template(template: Path, rng: random.Random) -> None:
    template.mkdir(parents=True)
    (template / "README.md").write_text(
        "---\ntitle: Benchmark\nemoji: 🐧\ncolorFrom: blue\ncolorTo: green\n---\n\n# $SPACE_REPO_ID\n\nBy ${TEAM}.\n"
    )
    (template / "app.py").write_text(
        "import gradio as gr\nfrom model_loader import get_model\n\nSPACE = '$SPACE_REPO_ID'\nTEAM = '${TEAM}'\n"
        "demo = gr.Interface(fn=lambda x: x, inputs='text', outputs='text', title=SPACE)\ndemo.launch()\n"
    )
    (template / "requirements.txt").write_text("gradio\nnumpy\n")
    for i in range(_TEXT_FILES):
        kind = ("py", "md", "json", "txt")[i % 4]
        sub = {"py": "src", "md": "docs", "json": "config", "txt": "data"}[kind]
        path = template / sub / f"file_{i:02d}.{kind}"
        path.parent.mkdir(exist_ok=True)
        if kind == "json":
            path.write_text('{"space": "$SPACE_REPO_ID", "team": "${TEAM}", "index": "$SPACE_INDEX"}\n')
        else:
            path.write_text(_text(rng, rng.randint(30, 150), kind))
    (template / "assets").mkdir()
    for i in range(_BINARY_FILES):
        data = b"\x89PNG\r\n\x1a\n\x00" + rng.randbytes(rng.randint(4, 64) * 1024)
        (template / "assets" / f"image_{i}.png").write_bytes(data)


def make_dataset(root: Path, n_spaces: int, user: str, *, prefix: str = "bench", seed: int = 6) -> Dataset:
    """Writes the template and ``n_spaces`` model folders under ``root``; returns the Spaces' specs."""
    rng = random.Random(seed)
    template = root / "template"
    _write_template(template, rng)
    specs = []
    for i in range(n_spaces):
        model = root / "models" / f"m{i:03d}"
        model.mkdir(parents=True)
        (model / "weights.bin").write_bytes(rng.randbytes(MODEL_SIZE))
        (model / "config.json").write_text(f'{{"index": {i}, "layers": [64, 32, 3]}}\n')
        specs.append(
            SpaceSpec(
                repo_id=f"{user}/{prefix}-{i:03d}",
                app_path=str(template),
                space_sdk="gradio",
                model_path=str(model),
                placeholders={"TEAM": "Benchmarks", "SPACE_INDEX": str(i)},
            )
        )
    return Dataset(root, template, tuple(specs))


def write_config(path: Path, specs: list[SpaceSpec] | tuple[SpaceSpec, ...]) -> Path:
    """A batch config (``beam-pusher deploy`` format) for ``specs``; endpoint and token come from the CLI flags."""
    spaces = [
        {
            "repo_id": s.repo_id,
            "app_path": s.app_path,
            "space_sdk": s.space_sdk,
            "model_path": s.model_path,
            "placeholders": dict(s.placeholders),
        }
        for s in specs
    ]
    path.write_text(yaml.safe_dump({"spaces": spaces}, sort_keys=False))
    return path


def render_folder(spec: SpaceSpec, out: Path) -> Path:
    """Writes the files ``spec``'s Space should hold into ``out``, rendered as beam_pusher renders them.

    Binary and large files are hard-linked, not copied: beam_pusher pushes them byte-identical too.
    """
    values = templates.placeholder_values(spec)
    template_files = sources.list_source_files(sources.resolve_app_path(spec.app_path))
    model_files = sources.list_source_files(sources.resolve_model_path(spec.model_path), prefix="model/")
    readme = next((f for f in template_files if f.path == "README.md"), None)
    readme_text = None
    if readme is not None:
        readme_text = templates.render_text(
            Path(readme.url).read_text(encoding="utf-8"), values, path="README.md", strict=spec.strict_placeholders
        )
    generated = frontmatter.generated_files(spec, template_files, model_files, readme_text)
    for source in template_files + model_files:
        if source.path in generated:
            continue
        target = out / source.path
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(source.url, "rb") as f:
            sample = f.read(templates.TEXT_SAMPLE_SIZE)
        if source.size > templates.RENDER_LIMIT or not templates.is_text(sample):
            os.link(source.url, target)  # passed through byte-identical by beam_pusher too
            continue
        data = Path(source.url).read_bytes()
        target.write_bytes(templates.render_bytes(data, values, path=source.path, strict=spec.strict_placeholders))
    for path, content in generated.items():
        target = out / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    return out
