"""Makes the demo's tiny models: a TensorFlow SavedModel image classifier and a SavedModel text classifier.

The demo (``python -m beam_pusher demo``) deploys real models, so what reaches the local Hub is what a TFX Trainer
would export, only a few kilobytes instead of megabytes. Both are built from fixed weights, so every build
classifies the same way:

- ``tiny_classifier/``: a Keras convolutional net over 64x64 RGB images (pixels in [0, 1]) exported as a
  SavedModel with a ``serving_default`` signature, plus ``labels.txt`` (three penguin species). It picks the
  species from the image's dominant colour channel.
- ``tiny_text_classifier/``: a SavedModel whose serving signature takes serialized ``tf.Example``s (TFX's
  ``examples`` input) with the string feature ``text`` and returns ``probabilities`` for ``negative`` and
  ``positive``, from a small sentiment word list; plus ``labels.txt``.

Usage::

    python examples/models/make_tiny_model.py            # builds what is missing, next to this script
    python examples/models/make_tiny_model.py --force    # rebuilds both
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
IMAGE_MODEL = "tiny_classifier"
TEXT_MODEL = "tiny_text_classifier"
IMAGE_SIZE = 64
IMAGE_LABELS = ("Adelie", "Chinstrap", "Gentoo")
TEXT_LABELS = ("negative", "positive")
TEXT_FEATURE = "text"
# Word -> sentiment weight; the sum over a text's words is the logit of "positive".
SENTIMENT_WORDS = {
    "good": 1.5, "great": 2.0, "excellent": 2.5, "wonderful": 2.5, "love": 2.0, "loved": 2.0, "nice": 1.0,
    "best": 2.0, "fun": 1.0, "enjoyed": 1.5, "amazing": 2.5, "recommend": 1.5,
    "bad": -1.5, "terrible": -2.5, "awful": -2.5, "boring": -1.5, "waste": -2.0, "worst": -2.5, "hate": -2.0,
    "poor": -1.5, "disappointing": -2.0, "broken": -1.5, "not": -0.5,
}


def _quiet_tensorflow():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter is not for demo users
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    return tf


def _replace_dir(build, target: Path) -> None:
    """Builds into a temporary folder next to ``target`` and moves it into place, so a crash leaves no half model."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        build(tmp)
        tmp.chmod(0o755)  # mkdtemp makes it private; the model is meant to be read by anyone
        if target.exists():
            shutil.rmtree(target)
        tmp.rename(target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def build_image_model(out: Path) -> None:
    """A 64x64 RGB image classifier as a SavedModel, plus labels.txt."""
    tf = _quiet_tensorflow()
    import keras
    import numpy as np

    inputs = keras.Input(shape=(IMAGE_SIZE, IMAGE_SIZE, 3), name="image")
    # Each of the three filters passes one colour channel through; pooling then gives the mean of each channel.
    conv = keras.layers.Conv2D(3, 1, activation="relu", name="channels")
    pooled = keras.layers.GlobalAveragePooling2D(name="mean_colour")(conv(inputs))
    dense = keras.layers.Dense(len(IMAGE_LABELS), activation="softmax", name="probabilities")
    model = keras.Model(inputs, dense(pooled), name="tiny_penguin_classifier")
    conv.set_weights([np.eye(3, dtype="float32").reshape(1, 1, 3, 3), np.zeros(3, dtype="float32")])
    dense.set_weights([np.eye(3, dtype="float32") * 8.0, np.zeros(3, dtype="float32")])
    model.export(str(out), format="tf_saved_model", verbose=False)
    (out / "labels.txt").write_text("\n".join(IMAGE_LABELS) + "\n", encoding="utf-8")
    # Smoke check: a red image is the first species.
    loaded = tf.saved_model.load(str(out))
    fn = loaded.signatures["serving_default"]
    name = sorted(fn.structured_input_signature[1])[0]
    red = np.zeros((1, IMAGE_SIZE, IMAGE_SIZE, 3), dtype="float32")
    red[..., 0] = 1.0
    scores = list(fn(**{name: tf.constant(red)}).values())[0].numpy()[0]
    assert int(scores.argmax()) == 0, scores


def build_text_model(out: Path) -> None:
    """A sentiment classifier over serialized tf.Examples (feature ``text``) as a SavedModel, plus labels.txt."""
    tf = _quiet_tensorflow()

    class SentimentModel(tf.Module):
        def __init__(self):
            super().__init__()
            words = tf.constant(list(SENTIMENT_WORDS))
            weights = tf.constant(list(SENTIMENT_WORDS.values()), dtype=tf.float32)
            self.table = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(words, weights), 0.0)
            self.bias = tf.Variable(0.0, name="bias")

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
        def classify(self, text):
            cleaned = tf.strings.regex_replace(tf.strings.lower(text), r"[^a-z' ]", " ")
            tokens = tf.strings.split(cleaned)
            logit = tf.reduce_sum(self.table.lookup(tokens), axis=1) + self.bias
            positive = tf.sigmoid(logit)
            return {"probabilities": tf.stack([1.0 - positive, positive], axis=1)}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
        def serve(self, examples):
            spec = {TEXT_FEATURE: tf.io.FixedLenFeature([], tf.string, default_value="")}
            return self.classify(tf.io.parse_example(examples, spec)[TEXT_FEATURE])

    module = SentimentModel()
    tf.saved_model.save(module, str(out), signatures={"serving_default": module.serve})
    (out / "labels.txt").write_text("\n".join(TEXT_LABELS) + "\n", encoding="utf-8")
    # Smoke check: a glowing review is positive.
    loaded = tf.saved_model.load(str(out))
    feature = tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"What a wonderful day!"]))
    example = tf.train.Example(features=tf.train.Features(feature={TEXT_FEATURE: feature})).SerializeToString()
    scores = loaded.signatures["serving_default"](examples=tf.constant([example]))["probabilities"].numpy()[0]
    assert scores[1] > 0.5, scores


def is_built(path: Path) -> bool:
    """Whether ``path`` holds a finished model (a SavedModel and its labels)."""
    return (path / "saved_model.pb").is_file() and (path / "labels.txt").is_file()


def make_models(out_dir: Path = HERE, *, force: bool = False) -> dict[str, Path]:
    """Builds the models missing under ``out_dir`` (all of them with ``force``); returns name -> folder."""
    built = {}
    for name, build in ((IMAGE_MODEL, build_image_model), (TEXT_MODEL, build_text_model)):
        target = out_dir / name
        if force or not is_built(target):
            _replace_dir(build, target)
        built[name] = target
    return built


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Make the demo's tiny TensorFlow models (an image and a text classifier).",
        epilog="example:\n  python examples/models/make_tiny_model.py --out-dir /tmp/models --force",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out-dir", type=Path, default=HERE, help="where to write (default: next to this script)")
    parser.add_argument("--force", action="store_true", help="rebuild models that already exist")
    args = parser.parse_args(argv)
    for name, path in make_models(args.out_dir, force=args.force).items():
        size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
        print(f"{name}: {path} ({size / 1024:.0f} kB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
