"""The built-in apps, deployed with a real TF model to the local Hub and downloaded back, run and predict.

Each test builds a tiny real model here (TensorFlow in the project's venv), deploys it with ``run_deploy``, downloads
the Space with ``snapshot_download`` as the Hub's builder would, and runs the app in a separate environment made
from the Space's requirements.txt (``beam_pusher.localhub.appenv``): gradio/streamlit need a protobuf that TFX's
TensorFlow cannot live with, and a Space never runs in the deployer's environment anyway.

The Streamlit app is deployed as the Hub takes new Streamlit Spaces, a Docker Space: it is run as its Dockerfile's
command says (``streamlit run app.py``), under ``AppTest`` and as a server answering on its health endpoint.

The apps reach nothing but loopback: embedded-model apps run with ``HF_HUB_OFFLINE=1``, gradio's analytics and
streamlit's usage stats are off, and the hub-mode app reaches only the local Hub through ``HF_ENDPOINT``.

The first run builds the Space environment (minutes: TensorFlow is a large wheel); later runs reuse it from
``~/.cache/beam-pusher`` (see ``beam_pusher.localhub.appenv``).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from beam_pusher.localhub import appenv
from beam_pusher import sources
from beam_pusher.runner import run_deploy
from beam_pusher.spec import SpaceSpec
from beam_pusher.testing import free_port

TOKEN_ENV = "BEAM_PUSHER_TEST_APPS_TOKEN"
APPS_DIR = Path(sources.BUILTIN_APPS_URL)
REQUIREMENT_FILES = sorted(APPS_DIR.glob("*/*/requirements.txt"))
DRIVER_REQUIREMENTS = appenv.BUILTIN_EXTRA  # what the test drivers need beyond the Spaces' own requirements
CHECK_IMPORTS = ("gradio", "gradio_client", "streamlit", "streamlit.testing.v1", "tensorflow", "PIL", "huggingface_hub")
REPORT = ("gradio", "gradio_client", "streamlit", "tensorflow-cpu", "keras", "protobuf", "numpy", "huggingface-hub")
IMAGE_LABELS = ("daisy", "rose", "tulip")
TEXT_LABELS = ("negative", "positive")
IMAGE_SIZE = 32
START_TIMEOUT = 240  # seconds for `python app.py` to answer HTTP (importing gradio is the slow part)
DEAD_PROXY = "http://127.0.0.1:9"  # the discard port: nothing listens there
RUN_TIMEOUT = 600  # seconds for a driver script (model load + prediction)
# A cold Space env build downloads TensorFlow and gradio; pytest's default timeout (setup.cfg) is too short for it.
pytestmark = pytest.mark.timeout(2700)


# The Space environment ------------------------------------------------------------------------------------------


class _SpaceEnvOnce:
    """Builds the shared Space env on first use, inside a test, so a failed build fails that test with pip's output.

    A fixture raising would report an error, not a failure; and the outcome (env or error) is kept, so the second
    test does not retry a build that just failed.
    """

    def __init__(self) -> None:
        self._env: appenv.SpaceEnv | None = None
        self._error: appenv.SpaceEnvError | None = None

    def get(self) -> appenv.SpaceEnv:
        if self._env is None and self._error is None:
            try:
                self._env = appenv.ensure_space_env(
                    REQUIREMENT_FILES, extra=DRIVER_REQUIREMENTS, check_imports=CHECK_IMPORTS, report=REPORT
                )
            except appenv.SpaceEnvError as exc:
                self._error = exc
        if self._error is not None:
            pytest.fail(str(self._error), pytrace=False)
        return self._env


@pytest.fixture(scope="session")
def space_environment() -> _SpaceEnvOnce:
    return _SpaceEnvOnce()


def test_requirement_files_are_the_builtin_apps():
    # The env is keyed by every built-in app's requirements; a new app must be covered by it.
    assert [p.parent.relative_to(APPS_DIR).as_posix() for p in REQUIREMENT_FILES] == [
        name.split(".", 1)[1].replace(".", "/") for name in sources.builtin_apps()
    ]


def test_requirement_lines_normalize_and_union(tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("# comment\ngradio>=4.0\nhuggingface_hub >= 0.20  # hub\n\n", encoding="utf-8")
    b.write_text("Pillow\nhuggingface-hub>=0.20\n", encoding="utf-8")
    assert appenv.requirement_lines([a, b]) == ("gradio>=4.0", "huggingface-hub>=0.20", "pillow")
    assert appenv.env_key(("a",), "cpython 3.10.13 x86_64") != appenv.env_key(("a",), "cpython 3.11.7 x86_64")


# Models, built with the project's TensorFlow -------------------------------------------------------------------


@pytest.fixture(scope="session")
def image_model(tmp_path_factory) -> Path:
    """A tiny real image classifier: a SavedModel (``model.export``) for 32x32 RGB in [0, 1], plus labels.txt."""
    import keras

    keras.utils.set_random_seed(7)
    model = keras.Sequential(
        [
            keras.Input(shape=(IMAGE_SIZE, IMAGE_SIZE, 3)),
            keras.layers.Conv2D(4, 3, strides=2, activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(len(IMAGE_LABELS), activation="softmax"),
        ]
    )
    folder = tmp_path_factory.mktemp("image-model")
    model.export(str(folder), verbose=False)
    (folder / "labels.txt").write_text("".join(f"{label}\n" for label in IMAGE_LABELS), encoding="utf-8")
    return folder


@pytest.fixture(scope="session")
def tfx_image_model(tmp_path_factory) -> Path:
    """An image classifier exported as TFX's Trainer does: ``serving_default`` takes serialized tf.Examples.

    The signature parses the bytes feature ``image`` (a PNG, as TFX image pipelines keep images), decodes and resizes
    it in the graph, and returns ``probabilities``; the model sits in ``Format-Serving`` of a Model artifact folder
    with its labels under ``assets/``.
    """
    import tensorflow as tf

    class ServingModel(tf.Module):
        def __init__(self):
            super().__init__()
            weights = np.eye(3, dtype=np.float32) * 6.0 + np.arange(9, dtype=np.float32).reshape(3, 3) * 0.1
            self.w = tf.Variable(weights)
            self.b = tf.Variable([0.1, -0.2, 0.05])

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
        def serve(self, examples):
            parsed = tf.io.parse_example(examples, {"image": tf.io.FixedLenFeature([], tf.string)})

            def pixels(png):
                image = tf.cast(tf.io.decode_png(png, channels=3), tf.float32) / 255.0
                return tf.image.resize(image, [IMAGE_SIZE, IMAGE_SIZE])

            images = tf.map_fn(pixels, parsed["image"], fn_output_signature=tf.float32)
            logits = tf.matmul(tf.reduce_mean(images, axis=[1, 2]), self.w) + self.b
            return {"probabilities": tf.nn.softmax(logits)}

    serving = tmp_path_factory.mktemp("tfx-image-model") / "Format-Serving"
    module = ServingModel()
    tf.saved_model.save(module, str(serving), signatures={"serving_default": module.serve})
    (serving / "assets").mkdir(exist_ok=True)
    (serving / "assets" / "labels.txt").write_text("".join(f"{label}\n" for label in IMAGE_LABELS), encoding="utf-8")
    return serving


@pytest.fixture(scope="session")
def text_model(tmp_path_factory) -> Path:
    """A tiny real text classifier taking a batch of strings (as TFX text models do), plus labels.txt."""
    import keras

    keras.utils.set_random_seed(11)
    vocabulary = ["wonderful", "great", "day", "waste", "time", "complete"]
    model = keras.Sequential(
        [
            keras.Input(shape=(), dtype="string"),
            keras.layers.TextVectorization(vocabulary=vocabulary, output_mode="multi_hot"),
            keras.layers.Dense(len(TEXT_LABELS), activation="softmax"),
        ]
    )
    folder = tmp_path_factory.mktemp("text-model")
    model.export(str(folder), verbose=False)
    (folder / "labels.txt").write_text("".join(f"{label}\n" for label in TEXT_LABELS), encoding="utf-8")
    return folder


def reference_scores(model_dir: Path, batch: np.ndarray) -> np.ndarray:
    """What the model itself says for ``batch``, computed here with the project's TensorFlow."""
    import tensorflow as tf

    fn = tf.saved_model.load(str(model_dir)).signatures["serving_default"]
    name = sorted(fn.structured_input_signature[1])[0]
    (output,) = fn(**{name: tf.constant(batch)}).values()
    return output.numpy()[0].astype(np.float64)


def assert_matches_model(prediction: dict[str, float], expected: np.ndarray, labels: tuple[str, ...]) -> None:
    """The app's {label: probability} is the model's output under the right names, best first."""
    assert set(prediction) <= set(labels), prediction
    assert list(prediction) == sorted(prediction, key=prediction.get, reverse=True)
    for label, probability in prediction.items():
        assert probability == pytest.approx(expected[labels.index(label)], abs=1e-4), (label, prediction, expected)
    best = labels[int(np.argmax(expected))]
    assert next(iter(prediction)) == best


# Deploy and download --------------------------------------------------------------------------------------------


@pytest.fixture
def hub(local_hub, monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, local_hub.token)
    return local_hub


def deploy_and_download(hub, spec: SpaceSpec, dest: Path) -> Path:
    """Deploys ``spec`` to the local Hub and downloads the Space as the Hub's builder would see it."""
    from huggingface_hub import snapshot_download

    (result,) = run_deploy([spec], endpoint=hub.endpoint, token=f"env:{TOKEN_ENV}")
    assert result.pushed and result.error is None, result
    folder = snapshot_download(spec.repo_id, repo_type="space", endpoint=hub.endpoint, token=hub.token, local_dir=dest)
    return Path(folder)


def assert_env_covers(env: appenv.SpaceEnv, space: Path) -> None:
    """The env was made from (a superset of) this Space's own requirements.txt."""
    wanted = set(appenv.requirement_lines([space / "requirements.txt"]))
    assert wanted <= set(env.requirements), sorted(wanted - set(env.requirements))


# Running apps ---------------------------------------------------------------------------------------------------


def app_environment(env: appenv.SpaceEnv, tmp_path: Path, **overrides: str) -> dict[str, str]:
    """Variables for an app process: loopback only, nothing phones home, caches under the test's tmp_path."""
    home = tmp_path / "app-home"
    home.mkdir(exist_ok=True)
    values = {
        "GRADIO_ANALYTICS_ENABLED": "False",
        "GRADIO_SERVER_NAME": "127.0.0.1",
        "GRADIO_TEMP_DIR": str(home / "gradio"),
        "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",
        "HF_HUB_OFFLINE": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_XET": "1",
        "HF_HOME": str(home / "hf"),
        "MPLCONFIGDIR": str(home / "mpl"),
        "TF_CPP_MIN_LOG_LEVEL": "2",
        # Any HTTP(S) request to a host other than loopback goes to a dead local "proxy" and fails at once, so a
        # phone-home added by a future gradio/streamlit/huggingface_hub release cannot leave the machine.
        **{name: DEAD_PROXY for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy")},
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
        "PYTHONUNBUFFERED": "1",
    }
    values.update(overrides)
    child = env.child_env(**values)
    child.pop("HF_TOKEN", None)  # a Space gets a token only as a secret; these tests give none
    if "HF_ENDPOINT" not in overrides:
        child.pop("HF_ENDPOINT", None)
    return child


def run_driver(env: appenv.SpaceEnv, source: str, args: list[str], *, cwd: Path, environ: dict[str, str]) -> dict:
    """Runs a driver script in the Space env; returns the JSON it printed last, or fails with its output."""
    script = cwd.parent / "driver.py"
    script.write_text(source, encoding="utf-8")
    done = subprocess.run(
        [str(env.python), str(script), *args],
        cwd=cwd, env=environ, capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False,
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        pytest.fail(
            f"driver exited {done.returncode}\n--- stdout ---\n{done.stdout}\n--- stderr ---\n{done.stderr[-8000:]}"
        )
    return json.loads(lines[-1])


def wait_until_serving(url: str, process: subprocess.Popen, log: Path) -> None:
    """Polls ``url`` until it answers 200; fails with the app's log if the app dies or is too slow."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the app exited with {process.returncode} before serving:\n{log.read_text(errors='replace')}")
        try:
            with opener.open(url, timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    pytest.fail(f"the app did not answer {url} within {START_TIMEOUT} s:\n{log.read_text(errors='replace')}")


GRADIO_DRIVER = """
import json, sys
from gradio_client import Client, handle_file

url, kind, value = sys.argv[1:4]
client = Client(url, verbose=False)
endpoints = sorted(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
result = client.predict(handle_file(value) if kind == "file" else value, api_name="/predict")
print(json.dumps({"endpoints": endpoints, "result": result}))
"""


def predict_through_gradio(env, space: Path, tmp_path: Path, kind: str, value: str, **environ: str) -> dict:
    """Starts ``python app.py`` in the Space folder and predicts through gradio_client; returns what it saw."""
    port = free_port()
    child = app_environment(env, tmp_path, GRADIO_SERVER_PORT=str(port), **environ)
    log = tmp_path / "app.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [str(env.python), "app.py"], cwd=space, env=child, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_until_serving(url, process, log)
        seen = run_driver(env, GRADIO_DRIVER, [url, kind, value], cwd=space, environ=child)
        assert process.poll() is None, log.read_text(errors="replace")
        return seen
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=20)


def label_output(result: dict) -> dict[str, float]:
    """gradio's Label output as {label: confidence}, in the order the app gave."""
    assert result.get("label") is not None, result
    return {c["label"]: c["confidence"] for c in result["confidences"]}


# The tests ------------------------------------------------------------------------------------------------------


def test_gradio_image_app_with_embedded_model_predicts_through_gradio_client(
    hub, image_model, space_environment, tmp_path
):
    from PIL import Image

    spec = SpaceSpec(
        repo_id=f"{hub.username}/gradio-img",
        app_path="apps.gradio.img_classifier",
        space_sdk="gradio",
        model_path=str(image_model),
    )
    space = deploy_and_download(hub, spec, tmp_path / "space")
    assert (space / "model_loader.py").is_file() and (space / "model" / "saved_model.pb").is_file()
    assert (space / "model" / "labels.txt").read_text(encoding="utf-8").split() == list(IMAGE_LABELS)
    env = space_environment.get()
    assert_env_covers(env, space)

    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 256, size=(IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
    png = tmp_path / "input.png"
    Image.fromarray(pixels).save(png)  # already the model's size, so the app's resize changes nothing
    seen = predict_through_gradio(env, space, tmp_path, "file", str(png))

    assert "/predict" in seen["endpoints"]
    prediction = label_output(seen["result"])
    assert len(prediction) == len(IMAGE_LABELS)
    expected = reference_scores(image_model, pixels[None].astype(np.float32) / 255)
    assert_matches_model(prediction, expected, IMAGE_LABELS)
    assert seen["result"]["label"] == next(iter(prediction))


def test_gradio_image_app_calls_a_tfx_serving_signature_with_serialized_examples(
    hub, tfx_image_model, space_environment, tmp_path
):
    import tensorflow as tf
    from PIL import Image

    spec = SpaceSpec(
        repo_id=f"{hub.username}/gradio-tfx-img",
        app_path="apps.gradio.img_classifier",
        model_path=str(tfx_image_model),
    )
    space = deploy_and_download(hub, spec, tmp_path / "space")
    assert (space / "model" / "saved_model.pb").is_file() and (space / "model" / "assets" / "labels.txt").is_file()
    env = space_environment.get()

    y, x = np.mgrid[0:48, 0:40]
    pixels = np.stack([x * 6, y * 5, (x + y) * 2], axis=-1).astype(np.uint8)  # not the model's size: it resizes
    png = tmp_path / "input.png"
    Image.fromarray(pixels).save(png)
    seen = predict_through_gradio(env, space, tmp_path, "file", str(png))

    prediction = label_output(seen["result"])
    assert len(prediction) == len(IMAGE_LABELS)
    feature = tf.train.Feature(bytes_list=tf.train.BytesList(value=[png.read_bytes()]))
    example = tf.train.Example(features=tf.train.Features(feature={"image": feature})).SerializeToString()
    fn = tf.saved_model.load(str(tfx_image_model)).signatures["serving_default"]
    expected = fn(examples=tf.constant([example]))["probabilities"].numpy()[0].astype(np.float64)
    assert_matches_model(prediction, expected, IMAGE_LABELS)


STREAMLIT_DRIVER = """
import json, sys
from streamlit.testing.v1 import AppTest

app_file, timeout = sys.argv[1], float(sys.argv[2])
at = AppTest.from_file(app_file, default_timeout=timeout)
at.run()
first = {
    "exceptions": [e.value for e in at.exception],
    "titles": [t.value for t in at.title],
    "radio": list(at.radio[0].options) if at.radio else [],
    "info": [i.value for i in at.info],
    "markdown": [m.value for m in at.markdown],
}
at.radio[0].set_value("Sample").run()
seen = {
    "first": first,
    "exceptions": [e.value for e in at.exception],
    "errors": [e.value for e in at.error],
    "markdown": [m.value for m in at.markdown],
    "images": len(at.get("image")) + len(at.get("imgs")),  # the element's name changed across streamlit versions
    "table": at.table[0].value.to_dict(orient="list") if at.table else None,
}
# The pixels the app fed the model for its sample image, so the test can check the numbers against the model.
sys.path.insert(0, ".")
import app
seen["sample_pixels"] = app._prepare(app.sample_image(), (None, %(size)d, %(size)d, 3), "float32").tolist()
print(json.dumps(seen))
"""


def test_streamlit_image_app_with_embedded_model_renders_and_predicts_under_apptest(
    hub, image_model, space_environment, tmp_path
):
    spec = SpaceSpec(
        repo_id=f"{hub.username}/streamlit-img",
        app_path="apps.streamlit.img_classifier",
        space_sdk="docker",
        model_path=str(image_model),
    )
    space = deploy_and_download(hub, spec, tmp_path / "space")
    readme = (space / "README.md").read_text(encoding="utf-8")
    assert "sdk: docker" in readme and "app_port: 8501" in readme
    env = space_environment.get()
    assert_env_covers(env, space)
    command = dockerfile_command(space)
    app_file = command[command.index("run") + 1]  # what the Space's container runs: streamlit run app.py
    assert command[:2] == ["streamlit", "run"] and (space / app_file).is_file()

    seen = run_driver(
        env, STREAMLIT_DRIVER % {"size": IMAGE_SIZE}, [str(space / app_file), "120"], cwd=space,
        environ=app_environment(env, tmp_path),
    )

    first = seen["first"]
    assert first["exceptions"] == [] and first["titles"] == ["Image classifier"]
    assert first["radio"] == ["Upload", "Sample"]
    assert first["info"] == ["Upload an image to see what the model predicts."]
    assert seen["exceptions"] == [] and seen["errors"] == [], seen
    assert seen["images"] == 1
    table = seen["table"]
    assert table is not None and set(table) == {"class", "probability"}
    prediction = dict(zip(table["class"], table["probability"]))
    expected = reference_scores(image_model, np.asarray(seen["sample_pixels"], dtype=np.float32))
    assert_matches_model(prediction, expected, IMAGE_LABELS)
    shown = [re.fullmatch(r"\*\*Prediction:\*\* (\S+) \(([\d.]+)%\)", m) for m in seen["markdown"]]
    shown = [m for m in shown if m]
    assert len(shown) == 1, seen["markdown"]
    best = table["class"][0]
    assert shown[0].group(1) == best
    assert float(shown[0].group(2)) == pytest.approx(100 * expected[IMAGE_LABELS.index(best)], abs=0.06)


def dockerfile_command(space: Path) -> list[str]:
    """The exec-form CMD of the Space's Dockerfile: what its container runs."""
    dockerfile = (space / "Dockerfile").read_text(encoding="utf-8")
    (command,) = re.findall(r"^CMD (\[.*\])\s*$", dockerfile, re.M)
    return json.loads(command)


def test_streamlit_docker_space_serves_as_its_dockerfile_says(hub, image_model, space_environment, tmp_path):
    """The Dockerfile's command, run in the Space env (on a free port rather than 8501), serves the app."""
    spec = SpaceSpec(
        repo_id=f"{hub.username}/streamlit-serve",
        app_path="apps.streamlit.img_classifier",
        space_sdk="docker",
        model_path=str(image_model),
    )
    space = deploy_and_download(hub, spec, tmp_path / "space")
    command = dockerfile_command(space)
    assert "--server.port=8501" in command and "app_port: 8501" in (space / "README.md").read_text(encoding="utf-8")
    env = space_environment.get()
    port = free_port()
    command = [str(env.path / "bin" / "streamlit"), *command[1:]]
    command = [f"--server.port={port}" if arg.startswith("--server.port=") else arg for arg in command]
    command = ["--server.address=127.0.0.1" if arg.startswith("--server.address=") else arg for arg in command]
    log = tmp_path / "app.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [*command, "--server.headless=true"], cwd=space, env=app_environment(env, tmp_path), stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        wait_until_serving(f"http://127.0.0.1:{port}/_stcore/health", process, log)  # the Dockerfile's HEALTHCHECK
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(f"http://127.0.0.1:{port}/", timeout=10) as response:
            assert response.status == 200 and b"<html" in response.read().lower()
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=20)


def test_gradio_text_app_in_hub_mode_downloads_the_model_from_the_hub(hub, text_model, space_environment, tmp_path):
    from huggingface_hub import HfApi

    model_repo = f"{hub.username}/sentiment-model"
    api = HfApi(endpoint=hub.endpoint, token=hub.token)
    api.create_repo(model_repo)
    api.upload_folder(repo_id=model_repo, folder_path=str(text_model), commit_message="model v1")
    api.create_tag(model_repo, tag="v1")
    spec = SpaceSpec(
        repo_id=f"{hub.username}/gradio-text",
        app_path="apps.gradio.text_classifier",
        model_hub_repo_id=model_repo,
        model_hub_repo_branch="v1",
    )
    space = deploy_and_download(hub, spec, tmp_path / "space")
    source = (space / "app.py").read_text(encoding="utf-8")
    assert f'MODEL_REPO_ID = "{model_repo}"' in source and 'MODEL_VERSION = "v1"' in source
    assert not (space / "model").exists() and not (space / "model_loader.py").exists()
    env = space_environment.get()
    assert_env_covers(env, space)

    text = "What a wonderful day!"
    seen = predict_through_gradio(
        env, space, tmp_path, "text", text, HF_HUB_OFFLINE="0", HF_ENDPOINT=hub.endpoint
    )  # the one network peer: the local Hub, for the model

    prediction = label_output(seen["result"])
    assert len(prediction) == len(TEXT_LABELS)
    assert_matches_model(prediction, reference_scores(text_model, np.array([text])), TEXT_LABELS)
    assert any((tmp_path / "app-home" / "hf").rglob("saved_model.pb"))  # fetched from the Hub into the app's cache


def test_a_failed_build_step_reports_its_output(tmp_path):
    log = tmp_path / "build.log"
    with pytest.raises(appenv.SpaceEnvError) as caught:
        appenv._run([sys.executable, "-c", "print('no matching distribution'); raise SystemExit(1)"],
                       env=dict(os.environ), log=log, timeout=60)
    assert "no matching distribution" in str(caught.value) and str(log) in str(caught.value)
