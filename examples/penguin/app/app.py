"""Penguin species demo: move the sliders, see which species the model predicts.

Deployed by beam_pusher's HFSpacePusher, which fills MODEL_REPO_ID and MODEL_VERSION below with the model repository
and the version branch that HFModelPusher pushed in the same pipeline run. The features are the Palmer Penguins
measurements scaled to [0, 1], as in the training data.
"""

from __future__ import annotations

import functools

import gradio as gr

MODEL_REPO_ID = "$MODEL_REPO_ID"
MODEL_VERSION = "$MODEL_VERSION"
FEATURES = ["culmen_length_mm", "culmen_depth_mm", "flipper_length_mm", "body_mass_g"]
SPECIES = ["Adelie", "Chinstrap", "Gentoo"]


@functools.lru_cache(maxsize=None)
def signature():
    """The model's ``predict_features`` signature, downloaded once from the model repository's version branch."""
    import tensorflow as tf
    from huggingface_hub import snapshot_download

    path = snapshot_download(MODEL_REPO_ID, revision=MODEL_VERSION)
    return tf.saved_model.load(path).signatures["predict_features"]


def predict(*values: float) -> dict[str, float]:
    import tensorflow as tf

    inputs = {name: tf.constant([value], dtype=tf.float32) for name, value in zip(FEATURES, values)}
    probabilities = signature()(**inputs)["probabilities"].numpy()[0]
    return {species: float(p) for species, p in zip(SPECIES, probabilities)}


demo = gr.Interface(
    fn=predict,
    inputs=[gr.Slider(0.0, 1.0, value=0.5, label=name) for name in FEATURES],
    outputs=gr.Label(num_top_classes=3),
    title="Penguin species",
    description=f"Model {MODEL_REPO_ID} at {MODEL_VERSION}, trained and pushed by a TFX pipeline.",
)

if __name__ == "__main__":
    demo.launch()
