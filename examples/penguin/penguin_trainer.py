"""Trainer module of the penguin example: a small Keras classifier of the three penguin species.

TFX's ``Trainer`` calls ``run_fn``. The exported SavedModel has two signatures:

- ``serving_default`` takes serialized ``tf.Example``s (what ``Evaluator`` and TF Serving send);
- ``predict_features`` takes the four measurements as float tensors (what the Space's Gradio app sends).

``tf_keras`` (Keras 2) is used because TFX 1.16's Trainer and Evaluator expect Keras 2 SavedModels.
"""

from __future__ import annotations

import tensorflow as tf
import tf_keras as keras
from tensorflow_metadata.proto.v0 import schema_pb2
from tensorflow_transform.tf_metadata import schema_utils
from tfx import v1 as tfx
from tfx_bsl.public import tfxio

FEATURES = ["culmen_length_mm", "culmen_depth_mm", "flipper_length_mm", "body_mass_g"]
LABEL = "species"
CLASSES = 3
BATCH_SIZE = 32


def _dataset(file_pattern, data_accessor, schema, batch_size: int) -> tf.data.Dataset:
    return data_accessor.tf_dataset_factory(
        file_pattern, tfxio.TensorFlowDatasetOptions(batch_size=batch_size, label_key=LABEL), schema
    ).repeat()


def _model() -> keras.Model:
    inputs = [keras.layers.Input(shape=(1,), name=name) for name in FEATURES]
    x = keras.layers.concatenate(inputs)
    for units in (16, 16):
        x = keras.layers.Dense(units, activation="relu")(x)
    outputs = keras.layers.Dense(CLASSES, activation="softmax")(x)
    model = keras.Model(inputs=inputs, outputs=outputs)
    model.compile(
        optimizer=keras.optimizers.Adam(0.01),
        loss=keras.losses.SparseCategoricalCrossentropy(),
        metrics=[keras.metrics.SparseCategoricalAccuracy()],
    )
    return model


def _signatures(model: keras.Model, schema) -> dict:
    feature_spec = schema_utils.schema_as_feature_spec(schema).feature_spec
    feature_spec.pop(LABEL)

    @tf.function(input_signature=[tf.TensorSpec(shape=[None], dtype=tf.string, name="examples")])
    def serve_examples(serialized):
        features = tf.io.parse_example(serialized, feature_spec)
        return {"outputs": model(features)}

    @tf.function(input_signature=[tf.TensorSpec(shape=[None], dtype=tf.float32, name=name) for name in FEATURES])
    def predict_features(*values):
        features = {name: tf.reshape(value, [-1, 1]) for name, value in zip(FEATURES, values)}
        return {"probabilities": model(features)}

    return {"serving_default": serve_examples, "predict_features": predict_features}


def run_fn(fn_args: tfx.components.FnArgs) -> None:
    """Trains the model and writes the serving SavedModel to ``fn_args.serving_model_dir``."""
    schema = tfx.utils.parse_pbtxt_file(fn_args.schema_path, schema_pb2.Schema())
    train = _dataset(fn_args.train_files, fn_args.data_accessor, schema, BATCH_SIZE)
    evaluation = _dataset(fn_args.eval_files, fn_args.data_accessor, schema, BATCH_SIZE)
    model = _model()
    model.fit(
        train,
        steps_per_epoch=fn_args.train_steps,
        validation_data=evaluation,
        validation_steps=fn_args.eval_steps,
        verbose=0,
    )
    model.save(fn_args.serving_model_dir, save_format="tf", signatures=_signatures(model, schema))
