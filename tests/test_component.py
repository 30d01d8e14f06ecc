"""HFSpacePusher and HFModelPusher in real TFX pipelines: sqlite ML Metadata, the local Hub, the real client.

Every pipeline run costs seconds (TFX, Beam, TensorFlow), so each run below checks several things at once.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from pathlib import Path

import pytest
from huggingface_hub import HfApi
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tfx import v1 as tfx
from tfx.orchestration import metadata
from tfx.orchestration.beam.beam_dag_runner import BeamDagRunner
from tfx.types import standard_artifacts

from beam_pusher.component import HFModelPusher, HFSpacePusher
from beam_pusher.errors import PushError, SpecError
from beam_pusher.executor import Executor

TOKEN_ENV = "BEAM_PUSHER_TFX_TEST_TOKEN"
APP = 'MODEL_REPO_ID = "$MODEL_REPO_ID"\nMODEL_VERSION = "$MODEL_VERSION"\nGREETING = "$GREETING"\n'


@pytest.mark.parametrize("name", ["HFSpacePusher", "HFModelPusher"])
def test_components_without_tfx_say_which_extra_to_install(name):
    """Without the tfx extra (simulated: the module is blocked), the import error names the install command."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "sys.modules['tfx'] = None  # as if tfx were not installed\n"
        "import beam_pusher\n"
        "assert beam_pusher.SpaceSpec and beam_pusher.DeploySpaces  # the rest of the API still loads\n"
        "try:\n"
        f"    from beam_pusher import {name}\n"
        "except ImportError as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert 'pip install "beam-pusher[tfx]"' in done.stdout, done.stdout
    assert f"beam_pusher.{name} needs TFX" in done.stdout


@pytest.mark.parametrize("name", ["HFSpacePusher", "HFModelPusher"])
def test_importing_the_component_module_without_tfx_says_which_extra_to_install(name):
    """``from beam_pusher.component import HFSpacePusher``, as TFX users write it, names the extra too."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "sys.modules['tfx'] = None  # as if tfx were not installed\n"
        "try:\n"
        f"    from beam_pusher.component import {name}\n"
        "except ImportError as exc:\n"
        "    print(type(exc).__name__, exc.name, exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ImportError tfx beam_pusher.component needs TFX"), done.stdout
    assert 'pip install "beam-pusher[tfx]"' in done.stdout, done.stdout


def test_the_vertex_module_without_tfx_kubeflow_v2_compiler_says_what_to_install():
    """``beam_pusher.component_vertex`` needs TFX's kfp extra, as TFX's KubeflowV2DagRunner does, and says so."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "sys.modules['kfp'] = None  # as if TFX's kfp extra were not installed\n"
        "try:\n"
        "    from beam_pusher.component_vertex import KubeflowV2DagRunner\n"
        "except ImportError as exc:\n"
        "    print(type(exc).__name__, exc.name, exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ImportError kfp"), done.stdout
    assert "beam_pusher.component_vertex needs TFX's Kubeflow V2 compiler" in done.stdout, done.stdout
    assert 'pip install "tfx[kfp]"' in done.stdout, done.stdout


@pytest.fixture(scope="module")
def model_uri(tmp_path_factory) -> str:
    """A Model artifact folder holding a small real SavedModel under Format-Serving, as Trainer writes it."""
    import tensorflow as tf

    class Scale(tf.Module):
        def __init__(self):
            super().__init__()
            self.w = tf.Variable([[2.0], [3.0]])

        @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32)])
        def __call__(self, x):
            return {"outputs": tf.matmul(x, self.w)}

    root = tmp_path_factory.mktemp("model")
    module = Scale()
    tf.saved_model.save(module, str(root / "Format-Serving"), signatures={"serving_default": module.__call__})
    return str(root)


@pytest.fixture
def hub(local_hub, monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, local_hub.token)
    return local_hub


@pytest.fixture
def template(tmp_path) -> str:
    root = tmp_path / "template"
    root.mkdir()
    (root / "app.py").write_text(APP)
    (root / "requirements.txt").write_text("gradio\n")
    return str(root)


def importers(model_uri: str, tmp_path: Path, blessed: int):
    blessing_dir = tmp_path / f"blessing-{blessed}"
    blessing_dir.mkdir(exist_ok=True)
    model = tfx.dsl.Importer(source_uri=model_uri, artifact_type=standard_artifacts.Model).with_id("model_importer")
    blessing = tfx.dsl.Importer(
        source_uri=str(blessing_dir),
        artifact_type=standard_artifacts.ModelBlessing,
        custom_properties={"blessed": blessed},
    ).with_id("blessing_importer")
    return model, blessing


def make_pipeline(name: str, tmp_path: Path, components) -> tfx.dsl.Pipeline:
    return tfx.dsl.Pipeline(
        pipeline_name=name,
        pipeline_root=str(tmp_path / "pipeline_root"),
        components=components,
        metadata_connection_config=metadata.sqlite_metadata_connection_config(str(tmp_path / "mlmd.sqlite")),
        enable_cache=False,
    )


def pushed_models(tmp_path: Path, node_id: str) -> list[dict]:
    """The custom properties of every PushedModel that ``node_id`` produced, oldest first, read from MLMD."""
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = str(tmp_path / "mlmd.sqlite")
    store = metadata_store.MetadataStore(config)
    node = next(c for c in store.get_contexts_by_type("node") if c.name.endswith("." + node_id))
    executions = sorted(store.get_executions_by_context(node.id), key=lambda e: e.id)
    out = []
    for execution in executions:
        events = store.get_events_by_execution_ids([execution.id])
        ids = [e.artifact_id for e in events if e.type == metadata_store_pb2.Event.OUTPUT]
        for artifact in store.get_artifacts_by_id(ids):
            props = {}
            for key, value in artifact.custom_properties.items():
                props[key] = value.int_value if value.HasField("int_value") else value.string_value
            out.append(props)
    return out


def files_containing(root: Path, needle: bytes) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


# Construction-time errors -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model_channel():
    return tfx.dsl.Importer(source_uri="/models/m", artifact_type=standard_artifacts.Model).outputs["result"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"space_sdk": "flask"}, "space_sdk='flask' is not a Space SDK"),
        ({"username": "bad user"}, "username='bad user' is not a valid Hub name"),
        ({"repo_name": "-demo"}, "repo_name='-demo' is not a valid Hub name"),
        ({"repo_name": "a..b"}, "repo_name='a..b'"),
        ({"model": None}, "HFSpacePusher has no model"),
        ({"model_hub_repo_id": "alice/m", "pushed_model": "MODEL_PUSH"}, "not both"),
        ({"model_hub_repo_branch": "v1"}, "needs model_hub_repo_id"),
        ({"model_hub_repo_id": "alice"}, "model_hub_repo_id='alice' is not a Hub repository id"),
        ({"model_hub_repo_id": "alice/m", "model_hub_repo_branch": "v 1"}, "not a usable branch name"),
        ({"hf_access_token": "env:1BAD"}, "must be a reference"),
        ({"space_secrets": {"API_KEY": "sk-literal"}}, "is not a reference"),
        ({"options": {"bad-name": "x"}}, "placeholders has the key 'bad-name'"),
        ({"hardware": "T4 Small"}, "is not a hardware flavor"),
        ({"app_path": ""}, "app_path='' is empty"),
        ({"exclude": ["!"]}, "exclude: '!' is not a .gitignore pattern"),
        ({"include": [3]}, "include=[3] must be a list of glob patterns"),
        ({"app_path": "/no/such/template"}, "app_path='/no/such/template' cannot be read where the pipeline is built"),
        ({"options": {"MODEL_REPO_ID": "other/model"}}, "options['MODEL_REPO_ID']='other/model' is not allowed"),
        ({"options": {"MODEL_VERSION": "v9"}, "pushed_model": "MODEL_PUSH"}, "use model_hub_repo_branch="),
        ({"options": {"MODEL_REPO_ID": "alice/m"}, "model_hub_repo_id": "alice/m"}, "use model_hub_repo_id="),
        ({"options": {"SPACE_REPO_ID": "alice/x"}}, "use username= and repo_name="),
    ],
)
def test_space_pusher_rejects_bad_arguments_at_construction(model_channel, kwargs, message):
    args = {"username": "alice", "app_path": "apps.gradio.img_classifier", "model": model_channel}
    if kwargs.get("pushed_model") == "MODEL_PUSH":
        upstream = HFModelPusher(username="alice", model=model_channel)
        kwargs = {**kwargs, "pushed_model": upstream.outputs["pushed_model"]}
    args.update(kwargs)
    with pytest.raises(SpecError, match=re.escape(message)):
        HFSpacePusher(**args)


def test_secret_values_never_appear_in_construction_errors(model_channel):
    with pytest.raises(SpecError) as info:
        HFSpacePusher(username="alice", app_path="x", model=model_channel, space_secrets={"K": "sk-do-not-echo"})
    assert "sk-do-not-echo" not in str(info.value)


def test_model_pusher_rejects_bad_arguments_at_construction(model_channel):
    with pytest.raises(SpecError, match=r"model_version='v1/\.\.' is not a usable branch name"):
        HFModelPusher(username="alice", model=model_channel, model_version="v1/..")
    with pytest.raises(SpecError, match="username='a--b' is not a valid Hub name"):
        HFModelPusher(username="a--b", model=model_channel)
    with pytest.raises(SpecError, match="HFModelPusher needs model"):
        HFModelPusher(username="alice", model=None)
    with pytest.raises(SpecError, match="version='main' is not a version: main always holds the latest"):
        HFModelPusher(username="alice", model=model_channel, model_version="main")
    with pytest.raises(SpecError, match="pipeline_tag='Tabular' is not a Hub task name"):
        HFModelPusher(username="alice", model=model_channel, pipeline_tag="Tabular")


def test_keys_and_specs_are_written_once_and_still_importable_from_the_component():
    from beam_pusher import component, component_spec

    keys = [name for name in component.__all__ if name.endswith("_KEY")]
    assert len(keys) == 24  # 18, exclude and include, title, pipeline_tag, template_fingerprint and create_pr
    for name in keys + ["HFSpacePusherSpec", "HFModelPusherSpec"]:
        assert getattr(component, name) is getattr(component_spec, name)
    assert set(component_spec.HFSpacePusherSpec.PARAMETERS) <= {getattr(component_spec, k) for k in keys}
    assert set(component_spec.HFModelPusherSpec.PARAMETERS) <= {getattr(component_spec, k) for k in keys}


def test_a_literal_token_is_accepted_with_a_warning_that_does_not_show_it(model_channel, caplog):
    with caplog.at_level(logging.WARNING, logger="beam_pusher.component"):
        pusher = HFModelPusher(username="alice", model=model_channel, hf_access_token="hf_literalLITERALliteral")
    assert pusher.exec_properties["hf_access_token"] == "hf_literalLITERALliteral"
    assert "literal token" in caplog.text and "hf_literalLITERALliteral" not in caplog.text


# Pipelines --------------------------------------------------------------------------------------------------------


def test_space_pusher_on_local_dag_runner_records_the_hub_commit_and_reruns_without_a_new_commit(
    hub, model_uri, template, tmp_path, caplog, capfd
):
    caplog.set_level(logging.DEBUG)
    model, blessing = importers(model_uri, tmp_path, blessed=1)
    pusher = HFSpacePusher(
        username=hub.username,
        hf_access_token=f"env:{TOKEN_ENV}",
        app_path=template,
        space_sdk="gradio",
        options={"GREETING": "hello"},
        model=model.outputs["result"],
        model_blessing=blessing.outputs["result"],
        endpoint=hub.endpoint,
    )
    pipeline = make_pipeline("penguin-local", tmp_path, [model, blessing, pusher])
    repo_id = f"{hub.username}/penguin-local"  # repo_name defaults to the pipeline's name

    tfx.orchestration.LocalDagRunner().run(pipeline)
    commits_after_first = hub.commit_count(repo_id)
    tfx.orchestration.LocalDagRunner().run(pipeline)

    first, second = pushed_models(tmp_path, "HFSpacePusher")
    head = HfApi(endpoint=hub.endpoint, token=hub.token).space_info(repo_id).sha
    assert first["pushed"] == 1 and first["committed"] == 1
    assert first["repo_id"] == repo_id
    assert first["commit_id"] == head == hub.head(repo_id)
    assert first["repo_url"] == first["pushed_destination"] == f"{hub.endpoint}/spaces/{repo_id}"
    assert first["pushed_version"]
    # The re-run changed nothing: no new commit, still pushed, the same commit id.
    assert second["pushed"] == 1 and second["committed"] == 0
    assert second["commit_id"] == head
    assert hub.commit_count(repo_id) == commits_after_first
    # The Space holds the app and the embedded serving model.
    files = hub.list_files(repo_id)
    assert {"app.py", "README.md", "model_loader.py", "requirements.txt", "model/saved_model.pb"} <= set(files)
    saved_model = (Path(model_uri) / "Format-Serving" / "saved_model.pb").read_bytes()
    assert hub.read_file(repo_id, "model/saved_model.pb") == saved_model
    assert b'GREETING = "hello"' in hub.read_file(repo_id, "app.py")
    # The token is nowhere: not in ML Metadata, not in the pipeline root, not in the logs.
    token = hub.token.encode()
    assert token not in (tmp_path / "mlmd.sqlite").read_bytes()
    assert files_containing(tmp_path / "pipeline_root", token) == []
    out, err = capfd.readouterr()
    assert hub.token not in caplog.text and hub.token not in out and hub.token not in err
    assert "Pushing the Space" in caplog.text  # the capture did see the executor's logs


def test_space_pusher_on_beam_dag_runner_with_a_literal_token(hub, model_uri, template, tmp_path):
    model, blessing = importers(model_uri, tmp_path, blessed=1)
    pusher = HFSpacePusher(
        username=hub.username,
        hf_access_token=hub.token,  # the proposal's interface: works on local runners, documented as stored in MLMD
        repo_name="beam-demo",
        app_path=template,
        space_sdk="streamlit",
        model=model.outputs["result"],
        model_blessing=blessing.outputs["result"],
        endpoint=hub.endpoint,
    )
    BeamDagRunner().run(make_pipeline("penguin-beam", tmp_path, [model, blessing, pusher]))

    (props,) = pushed_models(tmp_path, "HFSpacePusher")
    repo_id = f"{hub.username}/beam-demo"
    assert props["pushed"] == 1
    assert props["commit_id"] == HfApi(endpoint=hub.endpoint).space_info(repo_id, token=hub.token).sha
    assert props["repo_url"] == f"{hub.endpoint}/spaces/{repo_id}"
    assert "model/saved_model.pb" in hub.list_files(repo_id)
    assert b"sdk: streamlit" in hub.read_file(repo_id, "README.md")
    # The literal was exposed to the workers for the push only, but it is an execution property: docs/tfx.md says
    # it is stored in ML Metadata, and so it is.
    assert not [k for k in os.environ if k.startswith("BEAM_PUSHER_TOKEN_")]
    assert hub.token.encode() in (tmp_path / "mlmd.sqlite").read_bytes()


def test_unblessed_model_reaches_neither_a_space_nor_a_model_repo(hub, model_uri, template, tmp_path):
    model, blessing = importers(model_uri, tmp_path, blessed=0)
    space = HFSpacePusher(
        username=hub.username,
        hf_access_token=f"env:{TOKEN_ENV}",
        app_path=template,
        model=model.outputs["result"],
        model_blessing=blessing.outputs["result"],
        endpoint=hub.endpoint,
    ).with_id("space")
    model_pusher = HFModelPusher(
        username=hub.username,
        hf_access_token=f"env:{TOKEN_ENV}",
        repo_name="unblessed-model",
        model=model.outputs["result"],
        model_blessing=blessing.outputs["result"],
        endpoint=hub.endpoint,
    )
    space_from_hub = HFSpacePusher(
        username=hub.username,
        hf_access_token=f"env:{TOKEN_ENV}",
        repo_name="unblessed-hub-space",
        app_path=template,
        pushed_model=model_pusher.outputs["pushed_model"],
        endpoint=hub.endpoint,
    ).with_id("space_from_hub")
    tfx.orchestration.LocalDagRunner().run(
        make_pipeline("unblessed", tmp_path, [model, blessing, space, model_pusher, space_from_hub])
    )

    for node in ("space", "HFModelPusher", "space_from_hub"):
        (props,) = pushed_models(tmp_path, node)
        assert props["pushed"] == 0 and "commit_id" not in props and "repo_id" not in props, node
    assert not hub.repo_exists(f"{hub.username}/unblessed")
    assert not hub.repo_exists(f"{hub.username}/unblessed-model", repo_type="model")
    assert not hub.repo_exists(f"{hub.username}/unblessed-hub-space")


def test_model_pusher_feeds_the_space_the_model_repo_and_version(hub, model_uri, template, tmp_path):
    model, blessing = importers(model_uri, tmp_path, blessed=1)
    model_pusher = HFModelPusher(
        username=hub.username,
        hf_access_token=f"env:{TOKEN_ENV}",
        repo_name="penguin-model",
        model_version="v1",
        model=model.outputs["result"],
        model_blessing=blessing.outputs["result"],
        endpoint=hub.endpoint,
    )
    space = HFSpacePusher(
        username=hub.username,
        hf_access_token=f"env:{TOKEN_ENV}",
        repo_name="penguin-space",
        app_path=template,
        options={"GREETING": "hi"},
        pushed_model=model_pusher.outputs["pushed_model"],
        endpoint=hub.endpoint,
    )
    pipeline = make_pipeline("penguin-hub", tmp_path, [model, blessing, model_pusher, space])
    tfx.orchestration.LocalDagRunner().run(pipeline)

    model_repo, space_repo = f"{hub.username}/penguin-model", f"{hub.username}/penguin-space"
    (model_props,) = pushed_models(tmp_path, "HFModelPusher")
    assert model_props["pushed"] == 1 and model_props["model_version"] == model_props["pushed_version"] == "v1"
    assert model_props["repo_id"] == model_repo
    assert model_props["commit_id"] == hub.head(model_repo, repo_type="model", revision="v1")
    api = HfApi(endpoint=hub.endpoint, token=hub.token)
    assert model_props["commit_id"] == api.model_info(model_repo, revision="v1").sha
    assert model_props["repo_url"] == f"{hub.endpoint}/{model_repo}"
    assert model_props["pushed_destination"] == f"{hub.endpoint}/{model_repo}/tree/v1"
    assert hub.read_file(model_repo, "saved_model.pb", repo_type="model", revision="v1") == (
        Path(model_uri) / "Format-Serving/saved_model.pb"
    ).read_bytes()

    (space_props,) = pushed_models(tmp_path, "HFSpacePusher")
    assert space_props["pushed"] == 1 and space_props["commit_id"] == hub.head(space_repo)
    assert space_props["model_hub_repo_id"] == model_repo and space_props["model_version"] == "v1"
    app = hub.read_file(space_repo, "app.py").decode()
    assert app == f'MODEL_REPO_ID = "{model_repo}"\nMODEL_VERSION = "v1"\nGREETING = "hi"\n'
    assert not [p for p in hub.list_files(space_repo) if p.startswith("model/") or p == "model_loader.py"]


def test_space_pusher_leaves_out_secrets_and_takes_exclude_and_include(hub, tmp_path):
    root = tmp_path / "user-app"
    for path, text in {"app.py": APP, ".env": "API_KEY=sk-fake\n", "notes.ipynb": "{}\n", "debug.log": "ok\n",
                       ".venv/pyvenv.cfg": "home = /usr\n", ".gitignore": "scratch/\n", "scratch/x.txt": "x\n"}.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    pusher = HFSpacePusher(
        username=hub.username,
        hf_access_token=f"env:{TOKEN_ENV}",
        repo_name="user-app",
        app_path=str(root),
        model_hub_repo_id="alice/model",
        options={"GREETING": "hi"},
        exclude=["*.ipynb"],
        include=["debug.log"],
        endpoint=hub.endpoint,
    )
    tfx.orchestration.LocalDagRunner().run(make_pipeline("user-app", tmp_path, [pusher]))

    (props,) = pushed_models(tmp_path, "HFSpacePusher")
    assert props["pushed"] == 1
    files = set(HfApi(endpoint=hub.endpoint, token=hub.token).list_repo_files(f"{hub.username}/user-app",
                                                                               repo_type="space"))
    assert files == {".gitattributes", ".gitignore", "README.md", "app.py", "debug.log"}


def test_components_compile_for_vertex_without_the_token(hub, tmp_path, monkeypatch):
    from tfx.orchestration.kubeflow.v2.kubeflow_v2_dag_runner import KubeflowV2DagRunner, KubeflowV2DagRunnerConfig

    model = tfx.dsl.Importer(source_uri="gs://bucket/model", artifact_type=standard_artifacts.Model)
    model_pusher = HFModelPusher(username="alice", hf_access_token=f"env:{TOKEN_ENV}", model=model.outputs["result"])
    space = HFSpacePusher(
        username="alice",
        hf_access_token=f"env:{TOKEN_ENV}",
        app_path="apps.gradio.img_classifier",
        pushed_model=model_pusher.outputs["pushed_model"],
        options={"TITLE": "Penguins"},
        space_secrets={"API_KEY": "env:API_KEY"},
        private=True,
        exclude=["*.ipynb", "/notebooks/"],
    )
    pipeline = tfx.dsl.Pipeline(pipeline_name="penguin-vertex", pipeline_root="gs://bucket/root",
                                components=[model, model_pusher, space])
    runner = KubeflowV2DagRunner(
        config=KubeflowV2DagRunnerConfig(default_image="gcr.io/project/penguin:latest"),
        output_dir=str(tmp_path),
        output_filename="pipeline.json",
    )
    runner.run(pipeline, write_out=True)

    compiled = (tmp_path / "pipeline.json").read_text()
    assert hub.token not in compiled
    assert "beam_pusher.executor.Executor" in compiled and "beam_pusher.executor.ModelPusherExecutor" in compiled
    assert f"env:{TOKEN_ENV}" in compiled
    assert "/notebooks/" in compiled  # a list parameter compiles too


def compile_for_vertex(pipeline, out_dir: Path) -> dict:
    """The pipeline compiled by KubeflowV2DagRunner, as the JSON Vertex AI Pipelines receives."""
    from tfx.orchestration.kubeflow.v2.kubeflow_v2_dag_runner import KubeflowV2DagRunner, KubeflowV2DagRunnerConfig

    runner = KubeflowV2DagRunner(config=KubeflowV2DagRunnerConfig(default_image="gcr.io/project/penguin:latest"),
                                 output_dir=str(out_dir), output_filename="pipeline.json")
    runner.run(pipeline, write_out=True)
    return json.loads((out_dir / "pipeline.json").read_text())["pipelineSpec"]


def run_vertex_task(spec: dict, task: str, artifacts: dict[str, str], task_root: Path) -> None:
    """Runs one compiled task as Vertex would: its container's args, ``{{$}}`` replaced by the ExecutorInput."""
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_run_executor

    parameters = {name: value["runtimeValue"]["constantValue"]
                  for name, value in spec["root"]["dag"]["tasks"][task]["inputs"]["parameters"].items()}
    schemas = {"model": "tfx.Model", "pushed_model": "tfx.PushedModel"}
    inputs = {k: v for k, v in artifacts.items() if k != "pushed_model"}

    def artifact_list(key: str, uri: str) -> dict:
        return {"artifacts": [{"name": f"projects/p/artifacts/{task}-{key}", "uri": uri,
                               "type": {"schemaTitle": schemas[key]}}]}

    executor_input = {
        "inputs": {"parameters": parameters, "artifacts": {k: artifact_list(k, v) for k, v in inputs.items()}},
        "outputs": {"artifacts": {"pushed_model": artifact_list("pushed_model", artifacts["pushed_model"])},
                    "outputFile": str(task_root / "executor_output.json")},
    }
    container = spec["deploymentSpec"]["executors"][f"{task}_executor"]["container"]
    assert container["command"][-1] == "tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor"
    args = [json.dumps(executor_input) if arg == "{{$}}" else arg for arg in container["args"]]
    kubeflow_v2_run_executor.main(kubeflow_v2_run_executor._parse_flags(["run_executor", *args]))


def test_a_compiled_vertex_task_runs_through_tfx_kubeflow_v2_entrypoint(hub, model_uri, template, tmp_path):
    model = tfx.dsl.Importer(source_uri=model_uri, artifact_type=standard_artifacts.Model)
    space = HFSpacePusher(username=hub.username, hf_access_token=f"env:{TOKEN_ENV}", repo_name="vertex-demo",
                          app_path=template, model=model.outputs["result"], endpoint=hub.endpoint)
    unnamed = HFSpacePusher(username=hub.username, hf_access_token=f"env:{TOKEN_ENV}", app_path=template,
                            model=model.outputs["result"], endpoint=hub.endpoint).with_id("unnamed")
    pipeline = tfx.dsl.Pipeline(pipeline_name="penguin-vertex", pipeline_root=str(tmp_path / "root"),
                                components=[model, space, unnamed])
    spec = compile_for_vertex(pipeline, tmp_path)

    task_root = tmp_path / "root" / "123" / "penguin-vertex-20250101" / "HFSpacePusher_abc"
    output_uri = task_root / "pushed_model"
    run_vertex_task(spec, "HFSpacePusher", {"model": model_uri, "pushed_model": str(output_uri)}, task_root)

    repo_id = f"{hub.username}/vertex-demo"
    assert {"app.py", "model/saved_model.pb", "model_loader.py"} <= set(hub.list_files(repo_id))
    output = json.loads((task_root / "executor_output.json").read_text())
    properties = output["artifacts"]["pushed_model"]["artifacts"][0]["metadata"]
    assert properties["pushed"] == 1 and properties["commit_id"] == hub.head(repo_id)
    assert properties["repo_url"] == f"{hub.endpoint}/spaces/{repo_id}"
    assert (output_uri / "push_result.json").is_file()
    leftovers = [p for p in task_root.rglob("*") if p.is_file() and "result" in p.name and p.suffix == ".jsonl"]
    assert leftovers == []  # no result files left in the pipeline root
    assert hub.token not in json.dumps(spec)

    # Vertex gives executors no pipeline name, so a pusher without repo_name stops before anything reaches the Hub.
    unnamed_root = task_root.parent / "unnamed_def"
    with pytest.raises(SpecError, match="give repo_name= to the component"):
        run_vertex_task(spec, "unnamed", {"model": model_uri, "pushed_model": str(unnamed_root / "out")}, unnamed_root)
    assert not hub.repo_exists(f"{hub.username}/penguin-vertex")


def test_vertex_compile_fails_early_for_a_pusher_without_repo_name(tmp_path):
    from tfx.orchestration.kubeflow.v2.kubeflow_v2_dag_runner import KubeflowV2DagRunnerConfig

    from beam_pusher.component_vertex import KubeflowV2DagRunner, check_for_vertex

    def build(**repo_names) -> tfx.dsl.Pipeline:
        model = tfx.dsl.Importer(source_uri="gs://bucket/model", artifact_type=standard_artifacts.Model)
        model_pusher = HFModelPusher(username="alice", hf_access_token=f"env:{TOKEN_ENV}",
                                     model=model.outputs["result"], repo_name=repo_names.get("model"))
        common = dict(username="alice", hf_access_token=f"env:{TOKEN_ENV}", app_path="apps.gradio.img_classifier",
                      pushed_model=model_pusher.outputs["pushed_model"])
        named = HFSpacePusher(repo_name="penguin-demo", **common)
        unnamed = HFSpacePusher(repo_name=repo_names.get("space"), **common).with_id("unnamed")
        return tfx.dsl.Pipeline(pipeline_name="penguin-vertex", pipeline_root="gs://bucket/root",
                                components=[model, model_pusher, named, unnamed])

    config = KubeflowV2DagRunnerConfig(default_image="gcr.io/project/penguin:latest")
    runner = KubeflowV2DagRunner(config=config, output_dir=str(tmp_path / "out"), output_filename="pipeline.json")
    with pytest.raises(SpecError) as info:
        runner.run(build(), write_out=True)
    message = str(info.value)
    assert "HFSpacePusher 'unnamed': repo_name is unset" in message
    assert "HFModelPusher 'HFModelPusher': repo_name is unset" in message
    assert "Kubeflow V2 / Vertex AI cannot supply the pipeline's name" in message
    assert 'Fix: give it repo_name="penguin-vertex-unnamed"' in message  # what the local runners would use
    assert 'Fix: give it repo_name="penguin-vertex"' in message
    assert "'HFSpacePusher'" not in message  # the named pusher is fine
    assert not (tmp_path / "out").exists()  # nothing compiled, nothing written
    with pytest.raises(SpecError, match="penguin-vertex-unnamed"):
        check_for_vertex(build())  # the same rule, for any Kubeflow V2 runner

    runtime = tfx.dsl.experimental.RuntimeParameter(name="space_name", ptype=str, default="penguin-other")
    check_for_vertex(build(model="penguin-model", space=runtime))  # a runtime parameter is a name given at run time

    # With repo_name set it compiles exactly as TFX's runner does, so the compiled tasks run as the test above shows.
    check_for_vertex(build(model="penguin-model", space="penguin-other"))
    ours = runner.run(build(model="penguin-model", space="penguin-other"), write_out=True)
    assert json.loads((tmp_path / "out" / "pipeline.json").read_text())["pipelineSpec"] == ours["pipelineSpec"]
    theirs = compile_for_vertex(build(model="penguin-model", space="penguin-other"), tmp_path)
    assert ours["pipelineSpec"] == theirs
    parameters = theirs["root"]["dag"]["tasks"]["unnamed"]["inputs"]["parameters"]
    assert parameters["repo_name"]["runtimeValue"]["constantValue"] == {"stringValue": "penguin-other"}


def test_a_failed_push_fails_the_component_with_the_reason(hub, model_uri, tmp_path):
    from tfx.dsl.components.base.base_beam_executor import BaseBeamExecutor

    model = standard_artifacts.Model()
    model.uri = model_uri
    output = standard_artifacts.PushedModel()
    output.uri = str(tmp_path / "pushed_model")
    executor = Executor(BaseBeamExecutor.Context(beam_pipeline_args=[], tmp_dir=str(tmp_path / "tmp"), unique_id="1"))
    exec_properties = {
        "username": hub.username,
        "hf_access_token": f"env:{TOKEN_ENV}",
        "repo_name": "broken",
        "endpoint": hub.endpoint,
        "app_path": str(tmp_path / "no-such-template"),
        "space_sdk": "gradio",
    }
    with pytest.raises(PushError, match="no-such-template") as info:
        executor.Do({"model": [model]}, {"pushed_model": [output]}, exec_properties)
    assert hub.token not in str(info.value)
    assert "pushed" not in output.mlmd_artifact.custom_properties
    assert not hub.repo_exists(f"{hub.username}/broken")


# Field-readiness: caching, collisions, versions, the model repository --------------------------------------------


def execution_states(tmp_path: Path, node_id: str) -> list[str]:
    """The MLMD states of ``node_id``'s executions, oldest first: COMPLETE, CACHED, FAILED."""
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = str(tmp_path / "mlmd.sqlite")
    store = metadata_store.MetadataStore(config)
    node = next(c for c in store.get_contexts_by_type("node") if c.name.endswith("." + node_id))
    executions = sorted(store.get_executions_by_context(node.id), key=lambda e: e.id)
    return [metadata_store_pb2.Execution.State.Name(e.last_known_state) for e in executions]


def test_with_caching_on_an_edited_template_redeploys_and_an_unchanged_one_is_cached(
    hub, model_uri, template, tmp_path
):
    def run() -> None:
        model, blessing = importers(model_uri, tmp_path, blessed=1)
        pusher = HFSpacePusher(username=hub.username, hf_access_token=f"env:{TOKEN_ENV}", repo_name="cached",
                               app_path=template, model=model.outputs["result"],
                               model_blessing=blessing.outputs["result"], endpoint=hub.endpoint)
        pipeline = make_pipeline("cached", tmp_path, [model, blessing, pusher])
        pipeline.enable_cache = True
        tfx.orchestration.LocalDagRunner().run(pipeline)

    repo_id = f"{hub.username}/cached"
    run()
    (Path(template) / "app.py").write_text(APP + "EDITED = True\n")
    run()
    edited_head = hub.head(repo_id)
    run()

    assert execution_states(tmp_path, "HFSpacePusher") == ["COMPLETE", "COMPLETE", "CACHED"]
    first, second, *_ = pushed_models(tmp_path, "HFSpacePusher")
    assert b"EDITED = True" in hub.read_file(repo_id, "app.py")
    assert second["committed"] == 1 and second["commit_id"] == edited_head != first["commit_id"]
    assert first["template_fingerprint"] != second["template_fingerprint"]
    assert second["template_fingerprint"].startswith("sha256:")
    assert hub.head(repo_id) == edited_head  # the cached run pushed nothing


def test_space_pusher_with_create_pr_records_the_pull_request_and_leaves_main_alone(
    hub, model_uri, template, tmp_path
):
    def run(**kwargs) -> None:
        model, blessing = importers(model_uri, tmp_path, blessed=1)
        pusher = HFSpacePusher(username=hub.username, hf_access_token=f"env:{TOKEN_ENV}", repo_name="reviewed",
                               app_path=template, model=model.outputs["result"],
                               model_blessing=blessing.outputs["result"], endpoint=hub.endpoint, **kwargs)
        tfx.orchestration.LocalDagRunner().run(make_pipeline("reviewed", tmp_path, [model, blessing, pusher]))

    repo_id = f"{hub.username}/reviewed"
    run()
    head = hub.head(repo_id)
    (Path(template) / "app.py").write_text(APP + "EDITED = True\n")
    run(create_pr=True)

    first, second = pushed_models(tmp_path, "HFSpacePusher")
    assert "pr_url" not in first and second["pushed"] == 1 and second["committed"] == 1
    assert second["pr_num"] == 1
    assert second["pr_url"] == second["pushed_destination"] == f"{hub.endpoint}/spaces/{repo_id}/discussions/1"
    assert second["commit_id"] == hub.head(repo_id, revision="refs/pr/1")
    assert hub.head(repo_id) == head and b"EDITED = True" not in hub.read_file(repo_id, "app.py")
    assert b"EDITED = True" in hub.read_file(repo_id, "app.py", revision="refs/pr/1")


def test_template_fingerprint_sees_content_and_large_files_without_reading_them(tmp_path):
    from beam_pusher.component import FINGERPRINT_READ_LIMIT, template_fingerprint

    root = tmp_path / "t"
    (root / "data").mkdir(parents=True)
    (root / "app.py").write_text("A = 1\n")
    weights = root / "data" / "weights.bin"
    weights.write_bytes(b"\0" * (FINGERPRINT_READ_LIMIT + 1))
    first = template_fingerprint(str(root))
    assert template_fingerprint(str(root)) == first
    (root / "app.py").write_text("A = 2\n")  # same size, other content
    second = template_fingerprint(str(root))
    assert second != first
    os.utime(weights, ns=(1, 1))  # a large file counts by its size and checksum (here: mtime), not its bytes
    assert template_fingerprint(str(root)) != second
    assert template_fingerprint("apps.gradio.img_classifier").startswith("sha256:")


def test_two_space_pushers_without_repo_name_get_a_space_each_on_beam_dag_runner(hub, model_uri, template, tmp_path):
    model, blessing = importers(model_uri, tmp_path, blessed=1)
    common = dict(username=hub.username, hf_access_token=f"env:{TOKEN_ENV}", app_path=template, endpoint=hub.endpoint,
                  model_blessing=blessing.outputs["result"])
    embedded = HFSpacePusher(model=model.outputs["result"], **common)
    from_hub = HFSpacePusher(model_hub_repo_id="alice/other-model", **common).with_id("hub_demo")
    BeamDagRunner().run(make_pipeline("two-demos", tmp_path, [model, blessing, embedded, from_hub]))

    (first,) = pushed_models(tmp_path, "HFSpacePusher")
    (second,) = pushed_models(tmp_path, "hub_demo")
    assert first["repo_id"] == f"{hub.username}/two-demos"
    assert second["repo_id"] == f"{hub.username}/two-demos-hub_demo"
    assert {"model/saved_model.pb", "model_loader.py"} <= set(hub.list_files(first["repo_id"]))
    assert b'MODEL_REPO_ID = "$MODEL_REPO_ID"' in hub.read_file(first["repo_id"], "app.py")
    assert b'MODEL_REPO_ID = "alice/other-model"' in hub.read_file(second["repo_id"], "app.py")
    assert "model_loader.py" not in hub.list_files(second["repo_id"])
    assert hub.commit_count(first["repo_id"]) == hub.commit_count(second["repo_id"]) == 2  # created, then pushed
    # The README's title is the Space's name, not the template's.
    assert b"title: two-demos-hub_demo" in hub.read_file(second["repo_id"], "README.md")


def test_model_versions_are_immutable_and_an_unchanged_model_reruns_as_a_no_op(hub, model_uri, template, tmp_path):
    def run(model_dir: str, *, version: str | None = None) -> None:
        model, blessing = importers(model_dir, tmp_path, blessed=1)
        model_pusher = HFModelPusher(username=hub.username, hf_access_token=f"env:{TOKEN_ENV}", repo_name="m",
                                     model_version=version, model=model.outputs["result"],
                                     model_blessing=blessing.outputs["result"], endpoint=hub.endpoint,
                                     pipeline_tag="tabular-regression")
        space = HFSpacePusher(username=hub.username, hf_access_token=f"env:{TOKEN_ENV}", repo_name="s",
                              app_path=template, pushed_model=model_pusher.outputs["pushed_model"],
                              endpoint=hub.endpoint)
        tfx.orchestration.LocalDagRunner().run(make_pipeline("versions", tmp_path, [model, blessing, model_pusher,
                                                                                      space]))

    model_repo, space_repo = f"{hub.username}/m", f"{hub.username}/s"
    run(model_uri)
    run(model_uri)  # no cache: everything runs again, and nothing changes
    (m1, m2), (s1, s2) = pushed_models(tmp_path, "HFModelPusher"), pushed_models(tmp_path, "HFSpacePusher")
    assert re.fullmatch(r"v\d{10}", m1["pushed_version"]) and m2["pushed_version"] == m1["pushed_version"]
    assert s1["pushed_version"] == s2["pushed_version"] == m1["pushed_version"] == s1["model_version"]
    assert (m1["committed"], m2["committed"], s1["committed"], s2["committed"]) == (1, 0, 1, 0)
    assert m2["commit_id"] == m1["commit_id"] == hub.head(model_repo, repo_type="model", revision=m1["model_version"])
    assert hub.commit_count(space_repo) == 2

    # main holds the latest version and a model card with what TFX knew.
    saved_model = (Path(model_uri) / "Format-Serving" / "saved_model.pb").read_bytes()
    assert hub.read_file(model_repo, "saved_model.pb", repo_type="model") == saved_model
    card = hub.read_file(model_repo, "README.md", repo_type="model").decode()
    assert "library_name: tfx" in card and "pipeline_tag: tabular-regression" in card
    assert f"model_version: {m1['model_version']}" in card
    assert "tfx_blessed: true" in card and "tfx_pipeline: versions" in card

    # A fixed version, pushed again with another model, fails; the version and the Space stay as they were.
    other = tmp_path / "other-model"
    shutil.copytree(model_uri, other)
    (other / "Format-Serving" / "assets").mkdir(exist_ok=True)
    (other / "Format-Serving" / "assets" / "vocab.txt").write_text("adelie\n")
    run(model_uri, version="v1")
    space_head = hub.head(space_repo)
    with pytest.raises(Exception, match="version 'v1' already exists with other model files"):
        run(str(other), version="v1")
    assert "assets/vocab.txt" not in hub.list_files(model_repo, repo_type="model", revision="v1")
    assert hub.head(space_repo) == space_head
    assert execution_states(tmp_path, "HFModelPusher")[-1] == "FAILED"


def test_space_pusher_reads_token_and_space_secret_from_secret_manager_and_records_neither(
    hub, model_uri, template, tmp_path, local_secret_manager, caplog
):
    caplog.set_level(logging.DEBUG)
    secret_value = "sk-component-secret-5150"
    local_secret_manager.add("projects/demo/secrets/hf-token/versions/1", hub.token)
    local_secret_manager.add("projects/demo/secrets/weather/versions/2", secret_value)
    model, blessing = importers(model_uri, tmp_path, blessed=1)
    pusher = HFSpacePusher(
        username=hub.username,
        repo_name="penguin-secret-store",
        hf_access_token="gcp-secret:projects/demo/secrets/hf-token/versions/latest",
        space_secrets={"WEATHER_KEY": "gcp-secret:projects/demo/secrets/weather/versions/2"},
        app_path=template,
        model=model.outputs["result"],
        model_blessing=blessing.outputs["result"],
        endpoint=hub.endpoint,
    )
    tfx.orchestration.LocalDagRunner().run(make_pipeline("penguin-secret-store", tmp_path, [model, blessing, pusher]))
    (pushed,) = pushed_models(tmp_path, "HFSpacePusher")
    assert pushed["pushed"] == 1
    assert hub.space_state(f"{hub.username}/penguin-secret-store").secrets == {"WEATHER_KEY": secret_value}
    for value in (hub.token.encode(), secret_value.encode()):
        assert value not in (tmp_path / "mlmd.sqlite").read_bytes()
        assert files_containing(tmp_path / "pipeline_root", value) == []
        assert value.decode() not in caplog.text
    assert b"gcp-secret:projects/demo/secrets/hf-token/versions/latest" in (tmp_path / "mlmd.sqlite").read_bytes()
