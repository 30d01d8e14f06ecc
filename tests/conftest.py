"""Test settings: the local Hub server speaks classic LFS, not Xet, nothing phones home, and the hash cache of remote
files is a fresh folder.

huggingface_hub reads these variables once, at import, so they are set before anything imports it.
"""

import os
import tempfile

import pytest

os.environ["HF_HUB_DISABLE_XET"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
os.environ.setdefault("HF_HOME", tempfile.mkdtemp(prefix="beam-pusher-hf-home-"))
os.environ["BEAM_PUSHER_HASH_CACHE"] = tempfile.mkdtemp(prefix="beam-pusher-hashes-")  # never the user's cache
os.environ.pop("HF_TOKEN", None)

pytest_plugins = ["beam_pusher.testing.pytest_plugin"]

from beam_pusher.testing import free_port  # noqa: E402 - after the settings above; imports no client


@pytest.fixture
def hub(local_hub, local_hub_token):
    """The local Hub, with its token reachable through the reference ``local_hub_token``."""
    return local_hub


@pytest.fixture
def api(hub_api):
    return hub_api


class AwsSecrets:
    """moto's server in server mode, holding secrets, with an IAM user that may read them and one that may not."""

    def __init__(self):
        from moto.server import ThreadedMotoServer

        port = free_port()
        self.endpoint = f"http://127.0.0.1:{port}"
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self._server.start()
        self.reader = self.nobody = None

    def _client(self, service, key=None):
        import boto3

        keys = {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]} if key else {
            "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
        return boto3.client(service, endpoint_url=self.endpoint, region_name="us-east-1", **keys)

    def set_up(self, secrets: dict[str, str]) -> None:
        """Creates ``secrets`` and the two users, then has the server check every later request's permissions."""
        import json

        self._post("reset", b"")  # moto keeps its state per process, not per server
        manager, iam = self._client("secretsmanager"), self._client("iam")
        for name, value in secrets.items():
            manager.create_secret(Name=name, SecretString=value)
        policy = {"Version": "2012-10-17",
                  "Statement": [{"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": "*"}]}
        iam.create_user(UserName="worker")
        iam.put_user_policy(UserName="worker", PolicyName="read-secrets", PolicyDocument=json.dumps(policy))
        self.reader = iam.create_access_key(UserName="worker")["AccessKey"]
        iam.create_user(UserName="nobody")
        self.nobody = iam.create_access_key(UserName="nobody")["AccessKey"]
        self._post("reset-auth", b"0")  # permissions are checked from the next request on

    def _post(self, action: str, data: bytes) -> None:
        import urllib.request

        request = urllib.request.Request(f"{self.endpoint}/moto-api/{action}", data=data, method="POST",
                                         headers={"Content-Type": "text/plain"})
        urllib.request.urlopen(request, timeout=10).read()

    def use(self, monkeypatch, key) -> None:
        """Makes boto3 in this process (and processes it starts) talk to the server as the user of ``key``."""
        from beam_pusher import secretstores

        secretstores._aws_client.cache_clear()  # clients hold the credentials they were made with
        monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", self.endpoint)
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
            monkeypatch.delenv(name, raising=False)

    def stop(self) -> None:
        self._post("reset-auth", b"inf")  # moto's setting is process-wide
        self._server.stop()


@pytest.fixture
def aws_secrets(monkeypatch):
    """An ``AwsSecrets`` server for one test; call ``set_up`` then ``use``."""
    server = AwsSecrets()
    try:
        yield server
    finally:
        server.stop()
        from beam_pusher import secretstores

        secretstores._aws_client.cache_clear()

