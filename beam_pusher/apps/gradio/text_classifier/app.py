"""Text classifier demo: type a sentence, see the scores the model gives each class.

Deployed by beam_pusher. The model comes from one of two places:

- hub mode: beam_pusher fills MODEL_REPO_ID (and MODEL_VERSION) below, and the model repository is downloaded
  with huggingface_hub on the first prediction;
- embedded mode: the values below stay unfilled and the model ships in this Space under model/, loaded by the
  generated model_loader.py.

The model is a TensorFlow SavedModel or Keras model that takes a batch of strings, as TFX-trained text models do.
When its serving signature takes serialized tf.Examples (TFX's "examples" input), the text is sent as the string
feature TEXT_FEATURE (set the TEXT_FEATURE placeholder at deploy time; default "text"). Class names come from a
labels.txt (one per line) next to the model or to this file, else the class index is shown.
"""

from __future__ import annotations

import functools
import math
import os
from pathlib import Path

import gradio as gr
import numpy as np

MODEL_REPO_ID = "$MODEL_REPO_ID"
MODEL_VERSION = "$MODEL_VERSION"
TEXT_FEATURE = "$TEXT_FEATURE"
DEFAULT_TEXT_FEATURE = "text"
TOP_K = 5
APP_DIR = Path(__file__).resolve().parent
KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")
OUTPUT_KEYS = ("probabilities", "scores", "predictions", "outputs", "output_0")
EXAMPLES_INPUT = "examples"


def _filled(value: str | None) -> str | None:
    """A placeholder's value, or None when it was not filled in at deploy time (it still starts with '$')."""
    value = (value or "").strip()
    return None if not value or value.startswith("$") else value


def _shallowest(paths) -> list[Path]:
    return sorted(paths, key=lambda p: (len(p.parts), str(p)))


def _load_keras(path: Path):
    try:
        import keras
    except ImportError:
        from tensorflow import keras
    return keras.models.load_model(str(path), compile=False)


def load_from(path: Path):
    """Loads the SavedModel or Keras file found in ``path``; returns (model, the folder that holds it)."""
    if path.is_file():
        return _load_keras(path), path.parent
    saved = _shallowest(path.rglob("saved_model.pb"))
    if saved:
        import tensorflow as tf

        return tf.saved_model.load(str(saved[0].parent)), saved[0].parent
    keras_files = _shallowest(p for p in path.rglob("*") if p.suffix.lower() in KERAS_SUFFIXES)
    if keras_files:
        return _load_keras(keras_files[0]), keras_files[0].parent
    raise RuntimeError(f"No TensorFlow SavedModel (saved_model.pb) or Keras file (.keras, .h5) under {path}.")


@functools.lru_cache(maxsize=1)
def load_model():
    """Returns (model, model folder, model root): from the Hub repository if one is set, else the embedded model."""
    repo_id = _filled(MODEL_REPO_ID) or os.environ.get("MODEL_REPO_ID")
    if repo_id:
        from huggingface_hub import snapshot_download

        revision = _filled(MODEL_VERSION) or os.environ.get("MODEL_VERSION") or None
        root = Path(snapshot_download(repo_id, revision=revision))
        return (*load_from(root), root)
    try:
        import model_loader
    except ImportError as exc:
        raise RuntimeError(
            "This Space has no model: deploy it with model_hub_repo_id (a model repository) or with model_path "
            "(embeds the model and generates model_loader.py)."
        ) from exc
    root = Path(getattr(model_loader, "MODEL_DIR", APP_DIR))
    model = model_loader.get_model()
    if isinstance(model, (str, os.PathLike)):
        return (*load_from(Path(model)), root)
    folder = Path(model_loader.get_model_path()) if hasattr(model_loader, "get_model_path") else root
    return model, (folder if folder.is_dir() else folder.parent), root


@functools.lru_cache(maxsize=4)
def load_labels(folder: Path, root: Path) -> tuple[str, ...]:
    """Class names from the first labels.txt found from the model folder up to its root, or next to this file."""
    places = [folder, folder / "assets"]
    places += [p for p in folder.parents if p == root or root in p.parents]
    for place in [*places, APP_DIR]:
        labels = place / "labels.txt"
        if labels.is_file():
            return tuple(line.strip() for line in labels.read_text(encoding="utf-8").splitlines() if line.strip())
    return ()


def _example(text: str, feature: str) -> bytes:
    """A serialized tf.Example holding ``text`` as the bytes feature ``feature``."""
    import tensorflow as tf

    value = tf.train.Feature(bytes_list=tf.train.BytesList(value=[text.encode("utf-8")]))
    return tf.train.Example(features=tf.train.Features(feature={feature: value})).SerializeToString()


def _call(model, text: str):
    """Runs the model on one string: its serving signature if it has one, else the model itself."""
    import tensorflow as tf

    signatures = getattr(model, "signatures", None)
    if signatures is not None and "serving_default" in signatures:
        fn = signatures["serving_default"]
        name = sorted(fn.structured_input_signature[1])[0]
        if name == EXAMPLES_INPUT:
            feature = _filled(TEXT_FEATURE) or os.environ.get("TEXT_FEATURE") or DEFAULT_TEXT_FEATURE
            return fn(**{name: tf.constant([_example(text, feature)])})
        return fn(**{name: tf.constant([text])})
    if getattr(model, "inputs", None):
        return model(tf.constant([text]), training=False)
    if callable(model):
        return model(tf.constant([text]))
    raise RuntimeError(f"Cannot call the loaded model ({type(model).__name__}).")


def _scores(outputs) -> np.ndarray:
    """One probability per class from whatever the model returned (dict, list, tensor; logits or probabilities)."""
    if isinstance(outputs, dict):
        key = next((k for k in OUTPUT_KEYS if k in outputs), sorted(outputs)[0])
        outputs = outputs[key]
    if isinstance(outputs, (list, tuple)):
        outputs = outputs[0]
    scores = np.asarray(outputs.numpy() if hasattr(outputs, "numpy") else outputs, dtype=np.float64)
    scores = scores.reshape(scores.shape[0], -1)[0] if scores.ndim > 1 else scores.reshape(-1)
    if scores.size == 1:  # one sigmoid unit: probability of class 1
        p = scores[0] if 0.0 <= scores[0] <= 1.0 else 1.0 / (1.0 + math.exp(-scores[0]))
        return np.array([1.0 - p, p])
    if scores.min() < 0.0 or scores.max() > 1.0:  # logits
        scores = np.exp(scores - scores.max())
        scores = scores / scores.sum()
    return scores


def predict(text: str) -> dict[str, float]:
    """The scores for ``text`` as {label: probability}, best first (every class)."""
    if text is None or not text.strip():
        return {}
    model, folder, root = load_model()
    scores = _scores(_call(model, text))
    labels = load_labels(folder, root)
    order = np.argsort(-scores, kind="stable")
    return {(labels[i] if i < len(labels) else f"class {i}"): float(scores[i]) for i in order}


demo = gr.Interface(
    fn=predict,
    inputs=gr.Textbox(label="Text", lines=3, placeholder="Type a sentence to classify"),
    outputs=gr.Label(num_top_classes=TOP_K, label="Prediction"),
    title="Text classifier",
    description="Type a sentence to see the scores the model gives each class.",
    examples=[["What a wonderful day!"], ["This was a complete waste of time."]],
    cache_examples=False,
)

if __name__ == "__main__":
    demo.launch()
