"""Reading one secret from a platform's secret store, on the worker that needs it.

``beam_pusher.auth`` parses references and calls these readers for ``gcp-secret:`` and ``aws-secret:``:

- Google Secret Manager (``read_gcp_secret``): ``AccessSecretVersion`` with the worker's Application Default
  Credentials -- on Dataflow, the worker service account, which needs ``roles/secretmanager.secretAccessor``.
  ``BEAM_PUSHER_SECRET_MANAGER_EMULATOR_HOST=host:port`` points the client at a local server (plain gRPC, anonymous
  credentials), as ``PUBSUB_EMULATOR_HOST`` does for Pub/Sub.
- AWS Secrets Manager (``read_aws_secret``): ``GetSecretValue`` with boto3's default credential chain and region
  (the region of an ARN wins); ``AWS_ENDPOINT_URL_SECRETS_MANAGER`` points it at a local server.

The client libraries are optional (extras ``gcp`` and ``aws``) and imported on first use. Errors are ``TokenError``
that name the reference, what went wrong (missing, denied, library absent) and the fix -- never the value.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re

from beam_pusher.errors import TokenError

__all__ = ["GCP_EMULATOR_ENV", "read_aws_secret", "read_gcp_secret"]

GCP_EMULATOR_ENV = "BEAM_PUSHER_SECRET_MANAGER_EMULATOR_HOST"
"""``host:port`` of a local Secret Manager server; unset on real workers."""

_TIMEOUT = 30.0
_ARN_REGION = re.compile(r"^arn:aws[a-z-]*:secretsmanager:(?P<region>[a-z0-9-]+):")


@functools.lru_cache(maxsize=4)
def _gcp_client(emulator_host: str | None):
    """One Secret Manager client per process (and emulator host): a worker resolving many secrets reuses it."""
    try:
        from google.cloud import secretmanager
    except ImportError:
        raise ImportError("google-cloud-secret-manager") from None
    if not emulator_host:
        return secretmanager.SecretManagerServiceClient()
    import grpc
    from google.auth.credentials import AnonymousCredentials
    from google.cloud.secretmanager_v1.services.secret_manager_service.transports import (
        SecretManagerServiceGrpcTransport,
    )

    def transport(**kwargs):
        return SecretManagerServiceGrpcTransport(channel=lambda host, **_: grpc.insecure_channel(host), **kwargs)

    return secretmanager.SecretManagerServiceClient(
        credentials=AnonymousCredentials(), client_options={"api_endpoint": emulator_host}, transport=transport
    )


def read_gcp_secret(name: str, *, what: str) -> str:
    """The payload of the Secret Manager version ``name`` (``projects/P/secrets/S/versions/V``) as text.

    Args:
      name: The secret version's resource name.
      what: How messages name what is being resolved (``token reference 'gcp-secret:...'``).

    Raises:
      TokenError: The library is missing, the version does not exist, or the caller may not access it.
    """
    try:
        client = _gcp_client(os.environ.get(GCP_EMULATOR_ENV) or None)
    except ImportError:
        raise TokenError(f"{what}: google-cloud-secret-manager is not installed on this worker; install "
                         "'beam-pusher[gcp]' (Dataflow's own worker image has it).") from None
    from google.api_core import exceptions

    try:
        response = client.access_secret_version(name=name, timeout=_TIMEOUT)
    except exceptions.NotFound:
        raise TokenError(f"{what}: Secret Manager has no secret version {name} (NotFound); create it with "
                         "'gcloud secrets create' / 'gcloud secrets versions add', or fix the project, secret or "
                         "version in the reference.") from None
    except exceptions.PermissionDenied:
        raise TokenError(f"{what}: access to {name} was denied (PermissionDenied); grant the worker's service "
                         "account roles/secretmanager.secretAccessor on that secret (on Dataflow: the account given "
                         "by --service_account_email, else the project's Compute Engine default account).") from None
    except exceptions.GoogleAPIError as exc:
        raise TokenError(f"{what}: Secret Manager could not be read ({type(exc).__name__}); check the worker's "
                         "credentials and its network route to secretmanager.googleapis.com.") from None
    except Exception as exc:  # noqa: BLE001 - e.g. DefaultCredentialsError: no credentials on this machine
        raise TokenError(f"{what}: Secret Manager could not be reached ({type(exc).__name__}); run where "
                         "Application Default Credentials exist (a GCP worker, or 'gcloud auth application-default "
                         "login').") from None
    return _text(response.payload.data, what)


def _text(data: bytes, what: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise TokenError(f"{what}: the secret is not UTF-8 text; store the token or secret as text.") from None


class _WithoutResponseBodies(logging.Filter):
    """Drops botocore's DEBUG record of each response body: a GetSecretValue body is the secret itself."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Response body")


_RESPONSE_BODY_FILTER = _WithoutResponseBodies()


@functools.lru_cache(maxsize=8)
def _aws_client(region: str | None):
    import boto3

    logging.getLogger("botocore.parsers").addFilter(_RESPONSE_BODY_FILTER)  # the same filter is added once
    return boto3.session.Session().client("secretsmanager", region_name=region)


def read_aws_secret(secret_id: str, key: str | None, *, what: str) -> str:
    """The value of the AWS Secrets Manager secret ``secret_id`` (a name or ARN); with ``key``, that JSON field.

    Args:
      secret_id: The secret's name or ARN.
      key: A key of the secret's JSON object to return instead of the whole string.
      what: How messages name what is being resolved.

    Raises:
      TokenError: boto3 is missing, the secret does not exist, access is denied, or ``key`` is not in it.
    """
    match = _ARN_REGION.match(secret_id)
    try:
        client = _aws_client(match.group("region") if match else None)
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:
        raise TokenError(f"{what}: boto3 is not installed on this worker; install 'beam-pusher[aws]'.") from None
    try:
        response = client.get_secret_value(SecretId=secret_id)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code == "ResourceNotFoundException":
            raise TokenError(f"{what}: AWS Secrets Manager has no secret {secret_id} (ResourceNotFoundException); "
                             "create it ('aws secretsmanager create-secret') or fix the name and region.") from None
        if code in ("AccessDeniedException", "AccessDenied") or status == 403:
            raise TokenError(f"{what}: access to {secret_id} was denied (HTTP {status}, {code}); allow "
                             "secretsmanager:GetSecretValue on it for the workers' role (and kms:Decrypt for a "
                             "customer key).") from None
        raise TokenError(f"{what}: AWS Secrets Manager refused {secret_id} ({code or type(exc).__name__}); "
                         "check the secret and the workers' credentials.") from None
    except BotoCoreError as exc:  # no credentials, no region, endpoint unreachable
        raise TokenError(f"{what}: AWS Secrets Manager could not be asked ({type(exc).__name__}); give the workers "
                         "credentials and a region (AWS_DEFAULT_REGION), or an ARN.") from None
    if "SecretString" in response:
        value = response["SecretString"]
    else:
        value = _text(response.get("SecretBinary", b""), what)
    return value if key is None else _json_field(value, key, secret_id, what)


def _json_field(value: str, key: str, secret_id: str, what: str) -> str:
    try:
        fields = json.loads(value)
    except ValueError:
        fields = None
    if not isinstance(fields, dict):
        raise TokenError(f"{what}: the secret {secret_id} is not a JSON object, so it has no key {key!r}; drop "
                         f"'#{key}' to use the whole secret.")
    if key not in fields:
        raise TokenError(f"{what}: the secret {secret_id} has no key {key!r} (it has: {', '.join(sorted(fields))}); "
                         "fix the key after '#'.")
    return str(fields[key])
