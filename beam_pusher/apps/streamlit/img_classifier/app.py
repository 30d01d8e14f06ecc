"""Image classifier demo (Streamlit): upload an image, see the classes the model predicts.

It runs as a Docker Space: the Dockerfile next to it starts ``streamlit run app.py`` on port 8501 (README.md's
app_port), as the Hub's own Streamlit template does.

Deployed by beam_pusher. The model comes from one of two places:

- hub mode: beam_pusher fills MODEL_REPO_ID (and MODEL_VERSION) below, and the model repository is downloaded
  with huggingface_hub on the first prediction;
- embedded mode: the values below stay unfilled and the model ships in this Space under model/, loaded by the
  generated model_loader.py.

A TensorFlow SavedModel (such as TFX's serving export) or a Keras file (.keras, .h5) works, with either kind of
serving signature TFX exports:

- raw tensors: pixels (float, scaled by PIXEL_SCALE, or uint8), resized to the model's input shape when its
  signature tells it, else to 224x224; a string input other than "examples" gets the image encoded as PNG;
- serialized tf.Examples (TFX's "examples" input, the usual serving_default): the image is sent PNG-encoded as the
  bytes feature IMAGE_FEATURE (set the IMAGE_FEATURE placeholder at deploy time; default "image"), which the
  model's own preprocessing decodes and resizes.

Class names come from a labels.txt (one per line) next to the model or to this file, else the class index is shown.
The UI is built by main(), which Streamlit runs on every interaction; the model is loaded once per process
(st.cache_resource).
"""

from __future__ import annotations

import functools
import math
import os
from pathlib import Path

import numpy as np
import streamlit as st
from PIL import Image

MODEL_REPO_ID = "$MODEL_REPO_ID"
MODEL_VERSION = "$MODEL_VERSION"
IMAGE_FEATURE = "$IMAGE_FEATURE"
DEFAULT_IMAGE_FEATURE = "image"
EXAMPLES_INPUT = "examples"
TOP_K = 5
DEFAULT_SIZE = (224, 224)
PIXEL_SCALE = 1 / 255  # pixels are multiplied by this; use 1.0 for a model that rescales its input itself
APP_DIR = Path(__file__).resolve().parent
KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")
OUTPUT_KEYS = ("probabilities", "scores", "predictions", "outputs", "output_0")


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


@st.cache_resource(show_spinner="Loading the model...")
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


def _signature(model):
    """(function of a batch, input shape or None, input dtype name, input name) for a SavedModel or a Keras model."""
    signatures = getattr(model, "signatures", None)
    if signatures is not None and "serving_default" in signatures:
        fn = signatures["serving_default"]
        name, spec = sorted(fn.structured_input_signature[1].items())[0]
        return (lambda batch: fn(**{name: batch})), tuple(spec.shape), spec.dtype.name, name
    inputs = getattr(model, "inputs", None)
    if inputs:
        dtype = getattr(inputs[0].dtype, "name", inputs[0].dtype)
        return (lambda batch: model(batch, training=False)), tuple(inputs[0].shape), str(dtype), None
    if callable(model):
        return model, None, "float32", None
    raise RuntimeError(f"Cannot call the loaded model ({type(model).__name__}).")


def _as_image(image) -> Image.Image:
    return image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image).astype(np.uint8))


def _png(image) -> bytes:
    import io

    buffer = io.BytesIO()
    _as_image(image).convert("RGB").save(buffer, format="PNG")
    return buffer.getvalue()


def _example(image, feature: str) -> bytes:
    """A serialized tf.Example holding the image, PNG-encoded, as the bytes feature ``feature``."""
    import tensorflow as tf

    value = tf.train.Feature(bytes_list=tf.train.BytesList(value=[_png(image)]))
    return tf.train.Example(features=tf.train.Features(feature={feature: value})).SerializeToString()


def _model_input(image, shape, dtype: str, name: str | None):
    """The batch of one the model's signature takes: pixels, a serialized tf.Example, or encoded image bytes."""
    if dtype != "string":
        return _prepare(image, shape, dtype)
    if name == EXAMPLES_INPUT:
        feature = _filled(IMAGE_FEATURE) or os.environ.get("IMAGE_FEATURE") or DEFAULT_IMAGE_FEATURE
        return np.array([_example(image, feature)], dtype=object)
    return np.array([_png(image)], dtype=object)


def _prepare(image, shape, dtype: str) -> np.ndarray:
    """The image as a batch of one, shaped like the model's input."""
    image = _as_image(image)
    (height, width), channels, target = DEFAULT_SIZE, 3, None
    if shape and len(shape) == 4:
        height, width, channels = shape[1] or height, shape[2] or width, shape[3] or 3
    elif shape and len(shape) == 3:  # (batch, height, width): grayscale without a channel axis
        height, width, channels = shape[1] or height, shape[2] or width, 1
    elif shape and len(shape) == 2 and shape[1]:  # flattened pixels, e.g. (None, 784) for 28x28 grayscale
        channels = 1 if math.isqrt(shape[1]) ** 2 == shape[1] else 3
        height = width = math.isqrt(shape[1] // channels)
        target = (1, shape[1])
    image = image.convert("L" if channels == 1 else "RGB").resize((width, height))
    pixels = np.asarray(image)
    pixels = pixels.astype(np.uint8) if dtype == "uint8" else pixels.astype(np.float32) * PIXEL_SCALE
    return pixels.reshape(target or (1, *pixels.shape))


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


def predict(image) -> dict[str, float]:
    """The top classes for ``image`` (a PIL image or an array) as {label: probability}, best first."""
    if image is None:
        return {}
    import tensorflow as tf

    model, folder, root = load_model()
    call, shape, dtype, name = _signature(model)
    scores = _scores(call(tf.constant(_model_input(image, shape, dtype, name))))
    labels = load_labels(folder, root)
    best = np.argsort(-scores, kind="stable")[:TOP_K]
    return {(labels[i] if i < len(labels) else f"class {i}"): float(scores[i]) for i in best}



def sample_image() -> Image.Image:
    """A generated colour gradient, so the app can be tried without uploading a file."""
    y, x = np.mgrid[0:DEFAULT_SIZE[0], 0:DEFAULT_SIZE[1]]
    rgb = np.stack([x, y, (x + y) // 2], axis=-1) * 255 // max(DEFAULT_SIZE)
    return Image.fromarray(rgb.astype(np.uint8))


def main() -> None:
    """The page: pick an image (upload or sample), show it and the top classes."""
    st.set_page_config(page_title="Image classifier", page_icon="📷")
    st.title("Image classifier")
    source = st.radio("Image", ["Upload", "Sample"], horizontal=True)
    image = None
    if source == "Upload":
        uploaded = st.file_uploader("Upload an image", type=["png", "jpg", "jpeg", "bmp", "gif", "webp"])
        if uploaded is not None:
            image = Image.open(uploaded)
    else:
        image = sample_image()
    if image is None:
        st.info("Upload an image to see what the model predicts.")
        return
    st.image(image, caption="Input", width=300)
    try:
        scores = predict(image)
    except Exception as exc:  # shown in the page rather than as a traceback
        st.error(f"Prediction failed: {exc}")
        return
    best = next(iter(scores))
    st.markdown(f"**Prediction:** {best} ({scores[best]:.1%})")
    st.table({"class": list(scores), "probability": [round(p, 4) for p in scores.values()]})


if __name__ == "__main__":
    main()
