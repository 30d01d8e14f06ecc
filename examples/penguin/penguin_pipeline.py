"""The penguin TFX pipeline, ending in a model repository and a live demo Space on the Hub.

    CsvExampleGen -> StatisticsGen -> SchemaGen -> Trainer -> Evaluator -> HFModelPusher -> HFSpacePusher

Without ``HF_ENDPOINT`` it starts beam_pusher's local Hub server (``beam_pusher.localhub.LocalHub``) and pushes there,
so it runs offline; with ``HF_ENDPOINT`` (e.g. https://huggingface.co) and ``HF_TOKEN`` set it pushes to that Hub::

    python examples/penguin/penguin_pipeline.py                                  # local Hub, offline
    HF_ENDPOINT=https://huggingface.co HF_TOKEN=hf_... \\
        python examples/penguin/penguin_pipeline.py --username YOUR_NAME           # the real Hub

The token is passed to the components as the reference ``env:HF_TOKEN``; its value never enters the pipeline.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from pathlib import Path

if not os.environ.get("HF_ENDPOINT"):
    # The local Hub speaks classic LFS, not Xet; huggingface_hub reads this once, at import.
    os.environ.setdefault("HF_HUB_DISABLE_XET", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

HERE = Path(__file__).resolve().parent
DATA_DIR = HERE / "data"
TRAINER_MODULE = HERE / "penguin_trainer.py"
APP_DIR = HERE / "app"

logger = logging.getLogger("penguin_pipeline")


def create_pipeline(
    *,
    pipeline_name: str,
    pipeline_root: str,
    metadata_path: str,
    username: str,
    endpoint: str | None,
    token: str | None,
    model_repo: str,
    space_repo: str,
    train_steps: int = 200,
    accuracy_threshold: float = 0.6,
    beam_pipeline_args: list[str] | None = None,
):
    """Builds the pipeline. ``token`` is a reference (``env:HF_TOKEN``) or None for the huggingface_hub login."""
    import tensorflow_model_analysis as tfma
    from tfx import v1 as tfx

    from beam_pusher.component import HFModelPusher, HFSpacePusher

    example_gen = tfx.components.CsvExampleGen(input_base=str(DATA_DIR))
    statistics_gen = tfx.components.StatisticsGen(examples=example_gen.outputs["examples"])
    schema_gen = tfx.components.SchemaGen(statistics=statistics_gen.outputs["statistics"], infer_feature_shape=True)
    trainer = tfx.components.Trainer(
        module_file=str(TRAINER_MODULE),
        examples=example_gen.outputs["examples"],
        schema=schema_gen.outputs["schema"],
        train_args=tfx.proto.TrainArgs(num_steps=train_steps),
        eval_args=tfx.proto.EvalArgs(num_steps=5),
    )
    eval_config = tfma.EvalConfig(
        model_specs=[tfma.ModelSpec(label_key="species", signature_name="serving_default")],
        slicing_specs=[tfma.SlicingSpec()],
        metrics_specs=[
            tfma.MetricsSpec(
                metrics=[
                    tfma.MetricConfig(
                        class_name="SparseCategoricalAccuracy",
                        threshold=tfma.MetricThreshold(
                            value_threshold=tfma.GenericValueThreshold(lower_bound={"value": accuracy_threshold})
                        ),
                    )
                ]
            )
        ],
    )
    evaluator = tfx.components.Evaluator(
        examples=example_gen.outputs["examples"], model=trainer.outputs["model"], eval_config=eval_config
    )
    model_pusher = HFModelPusher(
        username=username,
        hf_access_token=token,
        repo_name=model_repo,
        model=trainer.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],
        endpoint=endpoint,
        pipeline_tag="tabular-classification",
    )
    space_pusher = HFSpacePusher(
        username=username,
        hf_access_token=token,
        repo_name=space_repo,
        app_path=str(APP_DIR),
        space_sdk="gradio",
        pushed_model=model_pusher.outputs["pushed_model"],
        endpoint=endpoint,
    )
    return tfx.dsl.Pipeline(
        pipeline_name=pipeline_name,
        pipeline_root=pipeline_root,
        components=[example_gen, statistics_gen, schema_gen, trainer, evaluator, model_pusher, space_pusher],
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(metadata_path),
        beam_pipeline_args=beam_pipeline_args or ["--runner=FnApiRunner", "--direct_num_workers=1"],
    )


def pushed_model_properties(metadata_path: str) -> dict[str, dict]:
    """The custom properties of the newest PushedModel of each pusher, read from ML Metadata."""
    from ml_metadata.metadata_store import metadata_store
    from ml_metadata.proto import metadata_store_pb2

    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = metadata_path
    store = metadata_store.MetadataStore(config)
    out = {}
    for artifact in sorted(store.get_artifacts_by_type("PushedModel"), key=lambda a: a.id):
        events = store.get_events_by_artifact_ids([artifact.id])
        execution = store.get_executions_by_id([events[0].execution_id])[0]
        props = {
            k: v.int_value if v.HasField("int_value") else v.string_value for k, v in artifact.custom_properties.items()
        }
        out[execution.type.rsplit(".", 1)[-1]] = props
    return out


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--username", help="Hub user or organization (default with the local Hub: its user)")
    parser.add_argument("--output-dir", default=None, help="pipeline root, ML Metadata and the local Hub's data "
                        "(default: a new temporary folder)")
    parser.add_argument("--model-repo", default="penguin-model", help="model repository name (default penguin-model)")
    parser.add_argument("--space-repo", default="penguin-demo", help="Space name (default penguin-demo)")
    parser.add_argument("--train-steps", type=int, default=200, help="training steps (default 200)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("absl", "apache_beam", "tensorflow", "httpx", "httpx2", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    output = Path(args.output_dir or tempfile.mkdtemp(prefix="penguin-hf-")).resolve()
    output.mkdir(parents=True, exist_ok=True)

    local_hub = None
    endpoint = os.environ.get("HF_ENDPOINT") or None
    if endpoint is None:
        from beam_pusher.localhub import LocalHub

        local_hub = LocalHub(output / "local-hub").start()
        endpoint = local_hub.endpoint
        os.environ["HF_TOKEN"] = local_hub.token  # what a real user exports; the components only see "env:HF_TOKEN"
        username = args.username or local_hub.username
    elif not args.username:
        print("--username is required with HF_ENDPOINT", file=sys.stderr)
        return 2
    else:
        username = args.username
    token = "env:HF_TOKEN" if os.environ.get("HF_TOKEN") else None

    try:
        from tfx import v1 as tfx

        metadata_path = str(output / "metadata.sqlite")
        pipeline = create_pipeline(
            pipeline_name="penguin-hf",
            pipeline_root=str(output / "pipeline_root"),
            metadata_path=metadata_path,
            username=username,
            endpoint=endpoint,
            token=token,
            model_repo=args.model_repo,
            space_repo=args.space_repo,
            train_steps=args.train_steps,
        )
        tfx.orchestration.LocalDagRunner().run(pipeline)
        pushed = pushed_model_properties(metadata_path)
        model, space = pushed.get("HFModelPusher", {}), pushed.get("HFSpacePusher", {})
        if not model.get("pushed"):
            print("The model was not blessed by the Evaluator: nothing was pushed.")
            return 1
        print(f"Model: {model['repo_url']} (branch {model['model_version']}, commit {model['commit_id']})")
        print(f"Space: {space['repo_url']} (commit {space['commit_id']}, serving version {space['pushed_version']})")
        if local_hub is not None:
            card = local_hub.read_file(f"{username}/{args.model_repo}", "README.md", repo_type="model").decode()
            print("The model repository's main holds that version and a model card:\n  "
                  + "\n  ".join(card.split("---")[1].strip().splitlines()))
            app = local_hub.read_file(f"{username}/{args.space_repo}", "app.py").decode()
            filled = [line for line in app.splitlines() if line.startswith(("MODEL_REPO_ID", "MODEL_VERSION"))]
            print("The Space's app.py now reads:\n  " + "\n  ".join(filled))
            print(f"The local Hub's repositories are kept in {output / 'local-hub'}.")
        return 0
    finally:
        if local_hub is not None:
            local_hub.stop()


if __name__ == "__main__":
    sys.exit(main())
