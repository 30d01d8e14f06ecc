"""DeploySpaces end to end: TestPipeline -> local Hub server over HTTP -> the real huggingface_hub client."""

from __future__ import annotations

import hashlib
import inspect
import io
import logging
import os
import pickle

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from beam_pusher import AppFile, SpaceFiles, SpaceSpec
from beam_pusher.commit import remote_tree
from beam_pusher.errors import SpecError
from beam_pusher.runner import run_deploy
from beam_pusher.testing.pytest_plugin import LOCAL_HUB_TOKEN_ENV as TOKEN_ENV
from beam_pusher.transforms import DeploySpaces, PushToSpace, ReadAppFiles, RenderPlaceholders

BINARY = b"\x00\x01PNG\x00$MODEL_VERSION\x00\xff\xfe"
LARGE_SIZE = 11 * 1024 * 1024


def make_template(root) -> dict[str, bytes]:
    """Writes a template that exercises every rendering rule; returns path -> expected bytes after rendering."""
    files = {
        "app.py": (b'REPO = "$MODEL_REPO_ID"\nVERSION = "${MODEL_VERSION}"\nGREETING = "$GREETING"\n',
                   b'REPO = "alice/model"\nVERSION = "v7"\nGREETING = "hello"\n'),
        "config/settings.json": (b'{"model": "$MODEL_REPO_ID", "keep": "$UNKNOWN"}\n',
                                 b'{"model": "alice/model", "keep": "$UNKNOWN"}\n'),
        "Dockerfile": (b"FROM python:3.10\nENV MODEL=$MODEL_REPO_ID\n", b"FROM python:3.10\nENV MODEL=alice/model\n"),
        "deep/er/nested/notes": (b"version $MODEL_VERSION\n", b"version v7\n"),
        "données/émoji-✓.txt": ("héllo $GREETING\n".encode(), "héllo hello\n".encode()),
        "empty.txt": (b"", b""),
        "assets/logo.bin": (BINARY, BINARY),
        "weights/large.bin": (None, None),
    }
    expected = {}
    for path, (content, rendered) in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if content is None:
            with open(target, "wb") as f:
                block = bytes(range(256)) * 4096
                for _ in range(LARGE_SIZE // len(block)):
                    f.write(block)
            rendered = target.read_bytes()
        else:
            target.write_bytes(content)
        expected[path] = rendered
    return expected


def spec_for(hub, name, template, **kwargs):
    kwargs.setdefault("model_hub_repo_id", "alice/model")
    kwargs.setdefault("model_hub_repo_branch", "v7")
    kwargs.setdefault("placeholders", {"GREETING": "hello"})
    return SpaceSpec(repo_id=f"{hub.username}/{name}", app_path=str(template), **kwargs)


def deploy(hub, specs, **kwargs):
    kwargs.setdefault("backoff_seconds", 0.05)
    return run_deploy(specs, endpoint=hub.endpoint, token=f"env:{TOKEN_ENV}", **kwargs)


def space_files(api, repo_id):
    return {path: f for path, f in remote_tree(api, repo_id).items()}


def test_deploy_holds_exactly_the_rendered_files(hub, api, tmp_path):
    expected = make_template(tmp_path / "tpl")
    spec = spec_for(hub, "full", tmp_path / "tpl")

    with BeamTestPipeline() as p:
        results = p | beam.Create([spec]) | DeploySpaces(endpoint=hub.endpoint, token=f"env:{TOKEN_ENV}")
        assert_that(
            results | beam.Map(lambda r: (r.repo_id, r.pushed, r.committed, r.error, r.files_added + r.files_updated)),
            equal_to([(spec.repo_id, True, True, None, len(expected) + 1)]),  # + the generated README.md
        )

    remote = space_files(api, spec.repo_id)
    assert set(remote) - {".gitattributes"} == set(expected) | {"README.md"}
    for path, content in expected.items():
        assert hub.read_file(spec.repo_id, path) == content, path
    assert remote["weights/large.bin"].sha256 is not None, "a > 10 MB file must be stored with LFS"
    assert remote["assets/logo.bin"].size == len(BINARY)
    readme = hub.read_file(spec.repo_id, "README.md").decode()
    assert "sdk: gradio" in readme and "app_file: app.py" in readme
    assert hub.commit_count(spec.repo_id) >= 1


def test_redeploy_uploads_only_what_changed_and_deletes_what_is_gone(hub, api, tmp_path):
    make_template(tmp_path / "tpl")
    spec = spec_for(hub, "incremental", tmp_path / "tpl")
    first = deploy(hub, [spec])[0]
    assert first.committed and first.error is None
    commits = hub.commit_count(spec.repo_id)

    again = deploy(hub, [spec])[0]
    assert (again.pushed, again.committed, again.commit_id) == (True, False, first.commit_id)
    assert again.files_added == again.files_updated == again.files_deleted == again.bytes_uploaded == 0
    assert hub.commit_count(spec.repo_id) == commits

    (tmp_path / "tpl" / "deep/er/nested/notes").write_text("changed $MODEL_VERSION\n")
    (tmp_path / "tpl" / "empty.txt").unlink()
    changed = deploy(hub, [spec])[0]
    assert changed.committed and changed.error is None
    assert (changed.files_added, changed.files_updated, changed.files_deleted) == (0, 1, 1)
    assert changed.bytes_uploaded == len(b"changed v7\n")
    assert hub.commit_count(spec.repo_id) == commits + 1
    assert hub.read_file(spec.repo_id, "deep/er/nested/notes") == b"changed v7\n"
    assert "empty.txt" not in space_files(api, spec.repo_id)


def test_a_failing_space_does_not_stop_the_others(hub, api, tmp_path):
    (tmp_path / "good").mkdir()
    (tmp_path / "good" / "app.py").write_text("print('ok')\n")
    good = spec_for(hub, "good", tmp_path / "good")
    bad = spec_for(hub, "bad", tmp_path / "does-not-exist")
    api.create_repo(bad.repo_id, repo_type="space", space_sdk="gradio")
    bad_head = hub.head(bad.repo_id)

    results = {r.repo_id: r for r in deploy(hub, [good, bad])}

    assert results[good.repo_id].error is None and results[good.repo_id].committed
    assert results[bad.repo_id].pushed is False
    assert "does-not-exist" in results[bad.repo_id].error
    assert hub.head(bad.repo_id) == bad_head
    assert hub.read_file(good.repo_id, "app.py") == b"print('ok')\n"


def test_dry_run_writes_nothing_and_reports_the_plan(hub, api, tmp_path):
    (tmp_path / "tpl").mkdir()
    (tmp_path / "tpl" / "app.py").write_text("v1\n")
    (tmp_path / "tpl" / "old.txt").write_text("old\n")
    spec = spec_for(hub, "dry", tmp_path / "tpl")
    deploy(hub, [spec])
    commits = hub.commit_count(spec.repo_id)
    (tmp_path / "tpl" / "app.py").write_text("v2\n")
    (tmp_path / "tpl" / "old.txt").unlink()
    (tmp_path / "tpl" / "new.txt").write_text("new\n")

    result = deploy(hub, [spec], dry_run=True)[0]

    assert result.dry_run and not result.pushed and not result.committed and result.error is None
    assert sorted((c.action, c.path) for c in result.planned) == [
        ("add", "new.txt"), ("delete", "old.txt"), ("update", "app.py"),
    ]
    assert hub.commit_count(spec.repo_id) == commits
    assert hub.read_file(spec.repo_id, "app.py") == b"v1\n"

    new_space = deploy(hub, [spec_for(hub, "never-created", tmp_path / "tpl")], dry_run=True)[0]
    assert {c.action for c in new_space.planned} == {"add"}
    with pytest.raises(Exception):
        api.space_info(f"{hub.username}/never-created")


def test_keep_patterns_and_gitattributes_survive_the_mirror(hub, api, tmp_path):
    (tmp_path / "tpl").mkdir()
    (tmp_path / "tpl" / "app.py").write_text("app\n")
    spec = spec_for(hub, "keep", tmp_path / "tpl", keep=("data/*",))
    deploy(hub, [spec])
    from huggingface_hub import CommitOperationAdd

    api.create_commit(
        spec.repo_id,
        [CommitOperationAdd("data/user.csv", b"a,b\n"), CommitOperationAdd("stray.txt", b"x")],
        commit_message="by hand",
        repo_type="space",
    )
    result = deploy(hub, [spec])[0]
    assert result.files_deleted == 1
    remote = space_files(api, spec.repo_id)
    assert "data/user.csv" in remote and "stray.txt" not in remote


def test_the_token_is_never_pickled_into_the_pipeline(hub, tmp_path, monkeypatch):
    monkeypatch.setenv("PICKLE_SECRET_VALUE", "pickled-secret-value-42")
    transform = DeploySpaces(endpoint=hub.endpoint, token=f"env:{TOKEN_ENV}")
    push = PushToSpace(endpoint=hub.endpoint, token=f"env:{TOKEN_ENV}")
    spec = spec_for(hub, "pickle", tmp_path, secrets={"API_KEY": "env:PICKLE_SECRET_VALUE"})
    with BeamTestPipeline() as p:
        specs = p | beam.Create([spec])
        _ = specs | transform
        _ = specs | "Composed" >> (ReadAppFiles() | RenderPlaceholders() | push)
        graph = p.to_runner_api(use_fake_coders=True).SerializeToString()
    assert hub.token.encode() not in pickle.dumps(transform)
    assert hub.token.encode() not in pickle.dumps(push)
    assert hub.token.encode() not in graph
    for secret in (b"pickled-secret-value-42", hub.token.encode()):  # secrets travel as references only
        assert secret not in graph and secret not in pickle.dumps(spec)
    for make in (DeploySpaces, PushToSpace):
        with pytest.raises(SpecError) as error:
            make(token=hub.token)
        assert hub.token not in str(error.value)


def test_unresolvable_token_fails_every_space_clearly(hub, tmp_path):
    (tmp_path / "tpl").mkdir()
    (tmp_path / "tpl" / "app.py").write_text("app\n")
    results = run_deploy([spec_for(hub, "no-token", tmp_path / "tpl")], endpoint=hub.endpoint,
                         token="env:BEAM_PUSHER_UNSET_VARIABLE")
    assert not results[0].pushed and "BEAM_PUSHER_UNSET_VARIABLE" in results[0].error
    assert hub.head(f"{hub.username}/no-token") is None


@pytest.mark.parametrize("mode", ["in_memory", "multi_threading", "multi_processing"])
def test_runs_on_every_direct_runner_mode(hub, tmp_path, mode):
    (tmp_path / "tpl").mkdir()
    (tmp_path / "tpl" / "app.py").write_text('MODEL = "$MODEL_REPO_ID"\n')
    specs = [spec_for(hub, f"mode-{mode.replace('_', '-')}-{i}", tmp_path / "tpl") for i in range(3)]
    args = ["--runner=DirectRunner"]
    if mode != "in_memory":
        args += [f"--direct_running_mode={mode}", "--direct_num_workers=2"]
    results = deploy(hub, specs, pipeline_args=args)
    assert [r.error for r in results] == [None] * 3
    for spec in specs:
        assert hub.read_file(spec.repo_id, "app.py") == b'MODEL = "alice/model"\n'


def test_the_local_default_never_tries_to_download_the_prism_runner(hub, tmp_path, caplog):
    # Beam 2.74's DirectRunner first tries Prism, a binary fetched from GitHub; the default runs on FnApiRunner.
    (tmp_path / "tpl").mkdir()
    (tmp_path / "tpl" / "app.py").write_text("app\n")
    with caplog.at_level(logging.INFO, logger="apache_beam"):
        results = deploy(hub, [spec_for(hub, "local-runner", tmp_path / "tpl")])
    assert results[0].error is None
    assert "prism" not in caplog.text.lower()
    assert "statecache" in caplog.text  # FnApiRunner's SDK worker logged at INFO, so the capture did work


def test_counters_report_spaces_and_files(hub, tmp_path):
    (tmp_path / "tpl").mkdir()
    (tmp_path / "tpl" / "app.py").write_text("app\n")
    specs = [spec_for(hub, "count-a", tmp_path / "tpl"), spec_for(hub, "count-b", tmp_path / "missing")]
    pipeline = beam.Pipeline(options=PipelineOptions(["--runner=DirectRunner"]))
    _ = pipeline | beam.Create(specs) | DeploySpaces(endpoint=hub.endpoint, token=f"env:{TOKEN_ENV}")
    metrics = pipeline.run().metrics().query()["counters"]
    totals = {m.key.metric.name: m.committed for m in metrics}
    assert totals["spaces_pushed"] == 1
    assert totals["spaces_failed"] == 1
    assert totals["files_uploaded"] == 2  # app.py and the generated README.md


def test_strict_placeholders_fail_the_space_with_file_and_line(hub, tmp_path):
    (tmp_path / "tpl").mkdir()
    (tmp_path / "tpl" / "app.py").write_text("a = 1\nrepo = '$MODEL_REPO_ID'\n")
    spec = SpaceSpec(repo_id=f"{hub.username}/strict", app_path=str(tmp_path / "tpl"), strict_placeholders=True)
    result = deploy(hub, [spec])[0]
    assert not result.pushed
    assert "app.py" in result.error and "2" in result.error and "MODEL_REPO_ID" in result.error
    assert hub.head(spec.repo_id) is None


def test_secrets_and_variables_are_applied_without_leaking(hub, api, tmp_path, monkeypatch, caplog):
    from beam_pusher.report import ConsoleReport, write_report

    monkeypatch.setenv("DEMO_SECRET_VALUE", "s3cr3t-value-123")
    (tmp_path / "tpl").mkdir()
    (tmp_path / "tpl" / "app.py").write_text("app\n")
    spec = spec_for(hub, "settings", tmp_path / "tpl", secrets={"API_KEY": "env:DEMO_SECRET_VALUE"},
                    variables={"THEME": "dark"})
    with caplog.at_level(logging.DEBUG):
        result = deploy(hub, [spec])[0]
        assert result.error is None
        assert api.get_space_variables(spec.repo_id)["THEME"].value == "dark"
        assert "s3cr3t-value-123" not in repr(result)
        assert os.environ["DEMO_SECRET_VALUE"] == "s3cr3t-value-123"

        # A changed value, then a settings write the Hub refuses: the value is in no result, error, log or report.
        monkeypatch.setenv("DEMO_SECRET_VALUE", "s3cr3t-value-456")
        hub.faults.fail_next("space-hardware", 1, status=400)
        refused = deploy(hub, [spec_for(hub, "settings", tmp_path / "tpl", secrets={"API_KEY": "env:DEMO_SECRET_VALUE"},
                                        hardware="t4-small")])[0]
        assert refused.error and "HTTP 400" in refused.error
        assert [str(c) for c in refused.settings_failed] == ["hardware: cpu-basic -> t4-small",
                                                             "secret API_KEY: set (changed)",
                                                             "variable THEME: delete (removed from the config)"]
    write_report(tmp_path / "report.json", [result, refused])
    console = ConsoleReport(total=2, stream=io.StringIO())
    console.finish([result, refused], [spec.repo_id])
    for value in ("s3cr3t-value-123", "s3cr3t-value-456"):
        for text in (repr([result, refused]), refused.error, caplog.text, (tmp_path / "report.json").read_text(),
                     console.stream.getvalue(), str(api.get_space_secrets(spec.repo_id))):
            assert value not in text
        assert value.encode() not in pickle.dumps([result, refused])
    assert hub.space_state(spec.repo_id).secrets == {"API_KEY": "s3cr3t-value-123"}  # not applied: left as it was


@pytest.mark.parametrize("layout", ["local_dir", "cache"])
def test_embedded_model_loads_from_the_downloaded_space(hub, tmp_path, monkeypatch, layout):
    """get_model() where the Space's files are plain files (local_dir, like a clone) or cache symlinks into blobs/."""
    import importlib

    import tensorflow as tf
    from huggingface_hub import snapshot_download

    class Doubler(tf.Module):  # a tiny real SavedModel: twice the sum of its two inputs
        @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32, name="x")])
        def serve(self, x):
            return tf.reduce_sum(x, axis=1, keepdims=True) * 2.0

    doubler = Doubler()
    model_dir = tmp_path / "model"
    tf.saved_model.save(doubler, str(model_dir / "Format-Serving"), signatures={"serving_default": doubler.serve})
    (tmp_path / "tpl").mkdir()
    (tmp_path / "tpl" / "app.py").write_text("from model_loader import get_model\n")
    spec = SpaceSpec(repo_id=f"{hub.username}/embedded", app_path=str(tmp_path / "tpl"), model_path=str(model_dir))
    assert deploy(hub, [spec])[0].error is None

    where = {"local_dir": tmp_path / "downloaded"} if layout == "local_dir" else {"cache_dir": tmp_path / "cache"}
    local = snapshot_download(spec.repo_id, repo_type="space", endpoint=hub.endpoint, token=hub.token, **where)
    assert os.path.exists(os.path.join(local, "model", "Format-Serving", "saved_model.pb"))
    assert os.path.islink(os.path.join(local, "model_loader.py")) == (layout == "cache")
    monkeypatch.syspath_prepend(local)
    monkeypatch.delitem(__import__("sys").modules, "model_loader", raising=False)
    model = importlib.import_module("model_loader").get_model()
    output = model.signatures["serving_default"](x=tf.constant([[1.5, 2.0]]))
    assert float(next(iter(output.values()))[0][0]) == 7.0


def test_templates_and_models_are_read_through_fsspec_urls(hub, tmp_path):
    import fsspec

    fs = fsspec.filesystem("memory")
    fs.pipe({
        "/bp-test/tpl/app.py": b'M = "$MODEL_VERSION"\n',
        "/bp-test/tpl/static/img.bin": BINARY,
        "/bp-test/model/weights.bin": BINARY * 3,
    })
    spec = SpaceSpec(repo_id=f"{hub.username}/from-memory", app_path="memory://bp-test/tpl",
                     model_path="memory://bp-test/model", placeholders={"MODEL_VERSION": "v9"})
    # in_memory runs the workers in this process, where the memory:// filesystem lives
    result = deploy(hub, [spec], pipeline_args=["--runner=DirectRunner"])[0]
    assert result.error is None
    assert hub.read_file(spec.repo_id, "app.py") == b'M = "v9"\n'
    assert hub.read_file(spec.repo_id, "static/img.bin") == BINARY
    assert hub.read_file(spec.repo_id, "model/weights.bin") == BINARY * 3
    assert b"def get_model" in hub.read_file(spec.repo_id, "model_loader.py")


def test_a_file_lost_before_the_push_fails_the_space_instead_of_deleting_it(hub, tmp_path):
    from beam_pusher.hashing import hash_bytes
    from beam_pusher.transforms import PushToSpace, _CollectSpaceFn

    (tmp_path / "tpl").mkdir()
    (tmp_path / "tpl" / "app.py").write_text("app\n")
    (tmp_path / "tpl" / "data.txt").write_text("data\n")
    spec = spec_for(hub, "manifest", tmp_path / "tpl")
    deploy(hub, [spec])
    head = hub.head(spec.repo_id)

    # What RenderPlaceholders' regroup step would get if data.txt and README.md were lost between the steps.
    def listed(path):
        return AppFile(spec.repo_id, path, 1, source=str(tmp_path / "tpl" / path))

    h = hash_bytes(b"app\n")
    arrived = AppFile(spec.repo_id, "app.py", h.size, content=b"app\n", sha256=h.sha256, git_sha1=h.git_sha1)
    listing = SpaceFiles(spec, (listed("README.md"), listed("app.py"), listed("data.txt")))
    grouped = (spec.repo_id, {"listing": [listing], "rendered": [arrived], "failed": []})
    with BeamTestPipeline() as p:
        results = (p | beam.Create([grouped]) | beam.ParDo(_CollectSpaceFn())
                   | PushToSpace(endpoint=hub.endpoint, token=f"env:{TOKEN_ENV}"))
        assert_that(results | beam.Map(lambda r: (r.pushed, "missing: ['README.md', 'data.txt']" in r.error)),
                    equal_to([(False, True)]))
    assert hub.head(spec.repo_id) == head
    assert hub.read_file(spec.repo_id, "data.txt") == b"data\n"


def test_the_public_transforms_compose_with_pipes_alone(hub, tmp_path):
    expected = make_template(tmp_path / "tpl")
    spec = spec_for(hub, "composed", tmp_path / "tpl")
    binaries = {"assets/logo.bin", "weights/large.bin"}
    # Text files come back rendered in memory; binary ones stay references to their source, known by their sha256.
    want = sorted((path, hashlib.sha256(data).hexdigest() if path in binaries else data)
                  for path, data in expected.items())

    def rendered_view(space):
        files = [(f.path, f.sha256 if f.content is None else f.content) for f in space.files if f.path != "README.md"]
        return space.spec.repo_id, space.error, sorted(files)

    with BeamTestPipeline() as p:
        rendered = p | beam.Create([spec]) | ReadAppFiles() | RenderPlaceholders()
        results = rendered | PushToSpace(endpoint=hub.endpoint, token=f"env:{TOKEN_ENV}")
        assert_that(rendered | "View" >> beam.Map(rendered_view), equal_to([(spec.repo_id, None, want)]),
                    label="Rendered")
        assert_that(results | "Outcome" >> beam.Map(lambda r: (r.repo_id, r.error, r.committed)),
                    equal_to([(spec.repo_id, None, True)]), label="Pushed")

    for path, content in expected.items():
        assert hub.read_file(spec.repo_id, path) == content, path


def test_read_app_files_reports_an_unreadable_template_as_one_element(tmp_path):
    (tmp_path / "tpl").mkdir()
    (tmp_path / "tpl" / "app.py").write_text("app\n")
    good = SpaceSpec(repo_id="alice/good", app_path="tpl")
    bad = SpaceSpec(repo_id="alice/bad", app_path="missing")
    with BeamTestPipeline() as p:
        listed = p | beam.Create([good, bad]) | ReadAppFiles(base_dir=str(tmp_path))
        assert_that(
            listed | beam.Map(lambda s: (s.spec.repo_id, sorted(f.path for f in s.files), s.error is None)),
            equal_to([("alice/good", ["README.md", "app.py"], True), ("alice/bad", [], False)]),
        )


def test_a_space_given_twice_is_reported_and_not_pushed(hub, tmp_path):
    (tmp_path / "tpl").mkdir()
    (tmp_path / "tpl" / "app.py").write_text("app\n")
    spec = spec_for(hub, "twice", tmp_path / "tpl")
    results = deploy(hub, [spec, spec])
    assert len(results) == 1
    assert not results[0].pushed and "appears 2 times" in results[0].error
    assert hub.head(spec.repo_id) is None


def test_space_files_refuse_a_path_twice_and_files_of_another_space():
    spec = SpaceSpec(repo_id="alice/app", app_path="tpl")
    app = AppFile("alice/app", "app.py", 4, content=b"app\n")
    assert SpaceFiles(spec, [app]).files == (app,)
    with pytest.raises(SpecError, match=r"more than one file for app\.py: a Space holds one file per path"):
        SpaceFiles(spec, (app, app))
    with pytest.raises(SpecError, match=r"holds files of bob/other"):
        SpaceFiles(spec, (app, AppFile("bob/other", "x.py", 1, content=b"x")))
    with pytest.raises(SpecError, match=r"must be a SpaceSpec"):
        SpaceFiles("alice/app")


def test_push_to_space_and_deploy_spaces_take_the_same_keywords():
    push = inspect.signature(PushToSpace).parameters
    deploy_ = inspect.signature(DeploySpaces).parameters
    read, render = inspect.signature(ReadAppFiles).parameters, inspect.signature(RenderPlaceholders).parameters
    assert set(deploy_) - set(push) == {"base_dir", "hash_cache"} == set(read) | set(render)
    for name, parameter in {**read, **render}.items():
        assert (deploy_[name].default, deploy_[name].annotation) == (parameter.default, parameter.annotation), name
    for name, parameter in push.items():
        assert parameter.kind is inspect.Parameter.KEYWORD_ONLY, name
        assert (deploy_[name].default, deploy_[name].annotation) == (parameter.default, parameter.annotation), name
    with pytest.raises(SpecError, match=r"parallel_pushes=0 .* at least 1"):
        PushToSpace(parallel_pushes=0)


@pytest.mark.local_hub(runtime_delay=10.0)  # long enough to see a build that a write started
def test_a_fleet_redeployed_unchanged_makes_no_commit_and_no_settings_write_and_keeps_running(hub, api, tmp_path,
                                                                                            monkeypatch):
    """10 Spaces with secrets, variables and hardware: a second deploy of the same config writes nothing at all."""
    import time

    (tmp_path / "tpl").mkdir()
    (tmp_path / "tpl" / "index.html").write_text("<p>$MODEL_VERSION</p>\n")

    def fleet(theme_of_1="dark", hardware_of_2="t4-small"):
        specs = []
        for i in range(10):
            hardware = hardware_of_2 if i == 2 else ("cpu-upgrade" if i % 2 else "t4-small")
            specs.append(spec_for(hub, f"fleet-{i}", tmp_path / "tpl", space_sdk="static",
                                  secrets={"API_KEY": f"env:FLEET_KEY_{i}", "SHARED": "env:FLEET_SHARED"},
                                  variables={"INDEX": str(i), "THEME": theme_of_1 if i == 1 else "dark"},
                                  hardware=hardware, sleep_time=3600 if i % 3 == 0 else None))
        return specs

    monkeypatch.setenv("FLEET_SHARED", "shared-fleet-value")
    for i in range(10):
        monkeypatch.setenv(f"FLEET_KEY_{i}", f"fleet-key-value-{i}")
    repo_ids = [s.repo_id for s in fleet()]

    first = deploy(hub, fleet(), wait=True)
    assert [(r.error, r.committed, r.runtime_stage) for r in first] == [(None, True, "RUNNING")] * 10
    assert [len(r.settings_applied) for r in first] == [5 + (i % 3 == 0) for i in range(10)]  # hardware, 2+2, sleep
    assert {hub.space_state(rid).hardware for rid in repo_ids} == {"t4-small", "cpu-upgrade"}
    commits = {rid: hub.commit_count(rid) for rid in repo_ids}
    seen = {rid: (api.get_space_secrets(rid), api.get_space_variables(rid)) for rid in repo_ids}
    seen = {rid: ({k: (v.description, v.updated_at) for k, v in s.items()},
                  {k: (v.value, v.description, v.updated_at) for k, v in var.items()})
            for rid, (s, var) in seen.items()}
    counts = hub.request_counts()

    again = deploy(hub, fleet())
    after = hub.request_counts()
    stages = {rid: api.get_space_runtime(rid).stage for rid in repo_ids}
    assert [(r.error, r.committed, r.settings_applied) for r in again] == [(None, False, ())] * 10
    assert stages == {rid: "RUNNING" for rid in repo_ids}  # nothing restarted
    writes = {route: after.get(route, 0) - counts.get(route, 0) for route in
              ("create-repo", "preupload", "commit", "space-hardware", "space-sleeptime", "settings", "space-restart")}
    assert writes == dict.fromkeys(writes, 0)
    # Secrets and variables share a route with their reads: one read of each per Space, and nothing more.
    assert [after.get(r, 0) - counts.get(r, 0) for r in ("space-secrets", "space-variables")] == [10, 10]
    assert {rid: hub.commit_count(rid) for rid in repo_ids} == commits
    for rid in repo_ids:
        secrets, variables = api.get_space_secrets(rid), api.get_space_variables(rid)
        assert {k: (v.description, v.updated_at) for k, v in secrets.items()} == seen[rid][0]
        assert {k: (v.value, v.description, v.updated_at) for k, v in variables.items()} == seen[rid][1]

    # A changed secret, variable or hardware is written to that Space alone, which builds again: observably.
    monkeypatch.setenv("FLEET_KEY_0", "rotated-fleet-key")
    started = time.monotonic()
    changed = {r.repo_id: [str(c) for c in r.settings_applied]
               for r in deploy(hub, fleet(theme_of_1="light", hardware_of_2="a10g-small"))}
    stages = {rid: api.get_space_runtime(rid).stage for rid in repo_ids}
    assert time.monotonic() - started < 10.0, "too slow to see the builds within the runtime delay"
    assert changed == {rid: [] for rid in repo_ids} | {
        repo_ids[0]: ["secret API_KEY: set (changed)"], repo_ids[1]: ["variable THEME: set (changed)"],
        repo_ids[2]: ["hardware: t4-small -> a10g-small"]}
    assert stages == {rid: "BUILDING" if rid in repo_ids[:3] else "RUNNING" for rid in repo_ids}
    assert hub.space_state(repo_ids[0]).secrets["API_KEY"] == "rotated-fleet-key"
