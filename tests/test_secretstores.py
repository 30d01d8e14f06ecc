"""gcp-secret: and aws-secret: references, resolved by the real client libraries against local servers.

Google Secret Manager: ``beam_pusher.testing.secret_manager.LocalSecretManager`` (gRPC, ``AccessSecretVersion``).
AWS Secrets Manager: moto in server mode, with IAM checks on so that access can be denied.
"""

from __future__ import annotations

import json
import logging
import pickle

import apache_beam as beam
import pytest

from beam_pusher import auth
from beam_pusher.errors import SpecError, TokenError
from beam_pusher.report import write_report
from beam_pusher.runner import run_deploy
from beam_pusher.spec import SpaceSpec
from beam_pusher.transforms import DeploySpaces

VERSION = "projects/demo/secrets/hf-token/versions/3"
TOKEN_VALUE = "hf_from_secret_manager_0123456789"
SECRET_VALUE = "sk-weather-api-9876543210"


@pytest.mark.parametrize(("reference", "kind"), [
    ("gcp-secret:projects/p-1/secrets/hf_token/versions/latest", auth.ReferenceKind.GCP_SECRET),
    ("gcp-secret:projects/p/secrets/s/versions/7", auth.ReferenceKind.GCP_SECRET),
    ("aws-secret:prod/hf-token", auth.ReferenceKind.AWS_SECRET),
    ("aws-secret:app#API_KEY", auth.ReferenceKind.AWS_SECRET),
    ("aws-secret:arn:aws:secretsmanager:eu-west-1:123456789012:secret:hf-AbCdEf", auth.ReferenceKind.AWS_SECRET),
    ("env:HF_TOKEN", auth.ReferenceKind.ENV),
    ("file:/run/secrets/hf", auth.ReferenceKind.FILE),
    ("gcp-secret:projects/p/secrets/s", None),  # no version: say which one
    ("gcp-secret:hf-token", None),
    ("aws-secret:", None),
    ("aws-secret:app#", None),
    ("hf_literal", None),
])
def test_reference_kinds(reference, kind):
    assert auth.reference_kind(reference) is kind
    assert auth.has_reference_prefix(reference) or reference == "hf_literal"


def test_secret_store_references_are_token_and_secret_references():
    assert auth.check_token_reference(f"gcp-secret:{VERSION}") == f"gcp-secret:{VERSION}"
    assert auth.check_secret_reference("API_KEY", f"gcp-secret:{VERSION}") == VERSION
    assert auth.check_secret_reference("API_KEY", "aws-secret:app#API_KEY") == "app"
    with pytest.raises(SpecError, match="gcp-secret:projects/P/secrets/S/versions/V"):
        auth.check_token_reference("gcp-secret:hf-token")


def test_only_secret_store_references_resolve_on_remote_workers():
    for reference in ("gcp-secret:" + VERSION, "aws-secret:hf-token", None, "not a reference"):
        assert auth.remote_reference_problem(reference) is None
    problem = auth.remote_reference_problem("env:HF_TOKEN")
    assert "'env:HF_TOKEN' reads an environment variable" in problem and "gcp-secret:projects/P" in problem
    assert "reads a file" in auth.remote_reference_problem("file:/run/secrets/hf")


def test_gcp_secret_token_and_space_secret(local_secret_manager):
    local_secret_manager.add("projects/demo/secrets/hf-token/versions/1", "old")
    local_secret_manager.add(VERSION, TOKEN_VALUE + "\n")
    local_secret_manager.add("projects/demo/secrets/weather/versions/1", SECRET_VALUE)
    assert auth.resolve_token(f"gcp-secret:{VERSION}") == TOKEN_VALUE
    assert auth.resolve_token("gcp-secret:projects/demo/secrets/hf-token/versions/latest") == TOKEN_VALUE
    assert auth.resolve_secret("API_KEY", "gcp-secret:projects/demo/secrets/weather/versions/1") == SECRET_VALUE
    assert local_secret_manager.calls == 3


def test_gcp_secret_missing_and_denied_say_what_to_do(local_secret_manager):
    local_secret_manager.add(VERSION, TOKEN_VALUE)
    local_secret_manager.deny("projects/demo/secrets/hf-token")
    with pytest.raises(TokenError, match=r"no secret version projects/demo/secrets/nope/versions/1 \(NotFound\)"):
        auth.resolve_token("gcp-secret:projects/demo/secrets/nope/versions/1")
    with pytest.raises(TokenError) as denied:
        auth.resolve_secret("API_KEY", f"gcp-secret:{VERSION}")
    assert f"secret 'API_KEY': access to {VERSION} was denied (PermissionDenied)" in str(denied.value)
    assert "roles/secretmanager.secretAccessor" in str(denied.value)
    assert TOKEN_VALUE not in str(denied.value)


def test_aws_secret_token_json_key_missing_and_denied(aws_secrets, monkeypatch):
    aws_secrets.set_up({"hf-token": TOKEN_VALUE, "app": json.dumps({"API_KEY": SECRET_VALUE, "OTHER": "x"})})
    aws_secrets.use(monkeypatch, aws_secrets.reader)
    assert auth.resolve_token("aws-secret:hf-token") == TOKEN_VALUE
    assert auth.resolve_secret("API_KEY", "aws-secret:app#API_KEY") == SECRET_VALUE
    with pytest.raises(TokenError, match=r"has no key 'NOPE' \(it has: API_KEY, OTHER\)") as no_key:
        auth.resolve_secret("API_KEY", "aws-secret:app#NOPE")
    with pytest.raises(TokenError, match=r"no secret missing \(ResourceNotFoundException\); create it"):
        auth.resolve_token("aws-secret:missing")
    aws_secrets.use(monkeypatch, aws_secrets.nobody)
    with pytest.raises(TokenError, match=r"access to hf-token was denied .*allow secretsmanager:GetSecret") as denied:
        auth.resolve_token("aws-secret:hf-token")
    for error in (no_key, denied):
        assert TOKEN_VALUE not in str(error.value) and SECRET_VALUE not in str(error.value)


def test_a_deploy_reads_token_and_secrets_from_the_stores_and_shows_them_nowhere(
    hub, local_secret_manager, aws_secrets, monkeypatch, tmp_path, caplog
):
    local_secret_manager.add(VERSION, hub.token)
    aws_secrets.set_up({"app": json.dumps({"API_KEY": SECRET_VALUE})})
    aws_secrets.use(monkeypatch, aws_secrets.reader)
    caplog.set_level(logging.DEBUG)  # after the set-up, which sends the values to the servers
    (tmp_path / "tpl").mkdir()
    (tmp_path / "tpl" / "app.py").write_text("app\n")
    spec = SpaceSpec(repo_id=f"{hub.username}/stored-secrets", app_path=str(tmp_path / "tpl"),
                     secrets={"API_KEY": "aws-secret:app#API_KEY"})
    transform = DeploySpaces(endpoint=hub.endpoint, token=f"gcp-secret:{VERSION}")
    results = run_deploy([spec], endpoint=hub.endpoint, token=f"gcp-secret:{VERSION}")
    assert results[0].error is None and results[0].committed
    assert hub.space_state(spec.repo_id).secrets == {"API_KEY": SECRET_VALUE}
    write_report(str(tmp_path / "report.json"), results)

    pipeline = beam.Pipeline()
    _ = pipeline | beam.Create([spec]) | transform
    graph = pipeline.to_runner_api(use_fake_coders=True).SerializeToString()
    for value in (hub.token, SECRET_VALUE):
        assert value.encode() not in graph and value.encode() not in pickle.dumps(transform)
        assert value not in caplog.text and value not in repr(results)
        assert value not in (tmp_path / "report.json").read_text()
    assert "stored-secrets" in caplog.text  # the capture saw the push's own logs
