"""Talks to the Hub about Spaces: push one, read their runtime stages, check that the Hub answers.

The commit itself (plan against the remote tree, one ``create_commit`` with ``parent_commit``, re-plan on 412,
retries) is ``beam_pusher.commit.Committer``; this module adds what is particular to Spaces. One ``SpacePusher``
lives in one worker (built in ``DoFn.setup``, where the token is resolved). A push is:

1. every check before the first write: secret references resolved and non-empty, write access to the namespace
   (``whoami``, asked once per worker), the Space's current settings read and planned against the declared ones
   (``beam_pusher.settings.plan_settings``); a Space that fails any of them is left exactly as it was;
2. one commit through the committer, which creates the Space first when it is missing (with all its settings);
3. only the settings that differ are written (a no-op deploy writes none, so the Space does not restart), then
   optionally wait for the Space to run. A write refused here is reported with what was and was not applied.

With ``HubSettings.create_pr`` step 2 commits to a pull request (``beam_pusher.pullrequests``) and step 3 is left
out: settings take effect at once, before anyone reviews, so they are not part of a pull request. The result lists
the settings that differ as ``settings_planned`` with a warning; a plain deploy after the merge writes them. A
Space that does not exist yet is not created (there is nothing to review a change against).

``space_status`` is the Hub side of the CLI's ``status`` command (``beam_pusher.rollback`` that of ``rollback``), and
``check_connection`` the one request the CLI makes before a run: they return data or raise, and print nothing.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from beam_pusher import builds
from beam_pusher.auth import resolve_secret
from beam_pusher.commit import CommitQuotaExceeded, Committer, HubSettings, RemoteState, push_result
from beam_pusher.errors import BeamPusherError, PushError, TokenError
from beam_pusher.pullrequests import no_space_for_pull_request, proposed_result
from beam_pusher.readahead import take_read
from beam_pusher.retries import describe_error, http_status, unreachable_message, unreachable_reason
from beam_pusher.rules import FAILED_STAGES
from beam_pusher.settings import (
    MANAGED_MARKER, CurrentSettings, SettingAction, SettingChange, SettingKind, plan_settings, secret_description,
)
from beam_pusher.spec import DEFERRED, AppFile, PushResult, SpaceSpec

__all__ = [
    "HubSettings", "SpacePusher", "SpaceStatus", "check_connection", "may_write", "space_status",
    "writable_namespaces",
]

logger = logging.getLogger(__name__)


# What the Hub's first commit of a new Space holds.
_SPACE_FIRST_FILES = (".gitattributes", "README.md")


class SpacePusher:
    """Pushes Spaces to the Hub. Build one per worker; it is not picklable (it holds the resolved token)."""

    def __init__(self, settings: HubSettings):
        self._settings = settings
        self.committer = Committer.connect(settings)  # resolves the token, here on the worker
        self.api = self.committer.api
        self._identity: Mapping[str, Any] | None = None  # whoami, asked once per worker (the Hub rate-limits it)
        self._identity_lock = threading.Lock()

    def __getstate__(self):
        raise TypeError("SpacePusher holds a resolved token and must not be pickled; pickle HubSettings instead.")

    # -- one Space ------------------------------------------------------------------------------------------------

    def push(self, spec: SpaceSpec, files: Sequence[AppFile], *, pushed_version: str | None = None) -> PushResult:
        """Deploys ``files`` and the settings of ``spec`` to ``spec.repo_id``; never raises for Hub problems.

        Every check comes before the first write (secret references, hardware, write access, the settings plan);
        a Space that fails one is left exactly as it was. What fails after the commit is reported in the result:
        ``settings_applied``, ``settings_failed`` and ``error``.
        """
        s = self._settings
        repo_url = f"{self.api.endpoint}/spaces/{spec.repo_id}"
        version = pushed_version or spec.model_hub_repo_branch or str(int(time.time()))
        secrets: dict[str, str] = {}
        changes: tuple[SettingChange, ...] = ()
        created: list[bool] = []  # the Space was created by this push, with its settings
        try:
            secrets = {name: resolve_secret(name, ref) for name, ref in spec.secrets.items()}
            self._check_write_access(spec.repo_id)
            state, current = take_read(self._settings, spec) or self.read_space(spec)
            changes = plan_settings(spec, current, secrets)
            outcome = self.committer.commit(
                spec.repo_id,
                files,
                repo_type="space",
                commit_message=spec.commit_message or f"Deploy {spec.name} with beam_pusher",
                keep=spec.keep,
                dry_run=s.dry_run,
                create_repo=(functools.partial(no_space_for_pull_request, spec.repo_id) if s.create_pr
                             else lambda: self._create_space(spec, secrets, created)),
                create_pr=s.create_pr,
                state=state,
            )
        except CommitQuotaExceeded as exc:  # not a failure of the deploy: this Space's commits wait for the quota
            message = self.committer.scrub(str(exc), *secrets.values())
            logger.warning("%s", message)
            return PushResult(repo_id=spec.repo_id, pushed=False, repo_url=repo_url, skipped=DEFERRED,
                              skip_message=message)
        except Exception as exc:  # noqa: BLE001 - a failed Space must never stop the others
            message = str(exc) if isinstance(exc, BeamPusherError) else self.committer.describe(exc, spec.repo_id)
            return self._failed(spec, repo_url, message, secrets, applied=changes if created else ())
        if s.dry_run:
            result = push_result(outcome, repo_id=spec.repo_id, repo_url=repo_url, pushed_version=version, dry_run=True)
            return dataclasses.replace(result, settings_planned=changes)
        if s.create_pr:
            return proposed_result(push_result(outcome, repo_id=spec.repo_id, repo_url=repo_url,
                                               pushed_version=version), changes)
        applied, failed, error = (changes, (), None) if created else self._apply_settings(spec, secrets, changes)
        stage = None
        if error is None and s.wait:
            try:
                stage = builds.wait_for_stage(self.committer, spec.repo_id, s.wait_timeout)
            except BeamPusherError as exc:
                error = str(exc)
        if stage in FAILED_STAGES:
            error = builds.failure_message(self.committer, spec.repo_id, stage)
        if error is not None:
            error = _named_once(spec.repo_id, self.committer.scrub(error, *secrets.values()))
            logger.warning("%s", error)
        result = push_result(outcome, repo_id=spec.repo_id, repo_url=repo_url, pushed_version=version,
                             runtime_stage=stage, error=error)
        if applied:
            logger.info("%s: settings written: %s", spec.repo_id, "; ".join(map(str, applied)))
        return dataclasses.replace(result, settings_applied=tuple(applied), settings_failed=tuple(failed))

    def _failed(self, spec: SpaceSpec, repo_url: str, message: str, secrets: Mapping[str, str],
                applied: Sequence[SettingChange] = ()) -> PushResult:
        message = self.committer.scrub(message, *secrets.values(), *self._secret_values(spec))
        message = _named_once(spec.repo_id, message)
        logger.warning("%s: not pushed: %s", spec.repo_id, message.removeprefix(f"{spec.repo_id}: "))
        return PushResult(repo_id=spec.repo_id, pushed=False, repo_url=repo_url, error=message,
                          settings_applied=tuple(applied))

    @staticmethod
    def _secret_values(spec: SpaceSpec) -> list[str]:
        values = []
        for name, ref in spec.secrets.items():
            try:
                values.append(resolve_secret(name, ref))
            except BeamPusherError:
                pass
        return values

    # -- checks before the first write ----------------------------------------------------------------------------

    def _check_write_access(self, repo_id: str) -> None:
        """Fails the Space before any write when the token may not write in its namespace (whoami says so)."""
        with self._identity_lock:
            if self._identity is None:
                self._identity = self.committer.call(repo_id, "ask the Hub whom the token belongs to", self.api.whoami)
            identity = self._identity
        namespace = repo_id.split("/", 1)[0]
        if may_write(identity, namespace) is False:
            own = writable_namespaces(identity)
            where = f"; it may write in: {', '.join(own)}" if own else "; it may write nowhere (a read token)"
            raise PushError(
                f"{repo_id}: the token of {identity.get('name')!r} has no write access to the namespace "
                f"{namespace!r}{where}, so the Hub would refuse every write (HTTP 403). Use a write token of a "
                "member of that namespace, or a repo_id in a namespace the token may write."
            )

    def read_space(self, spec: SpaceSpec) -> tuple[RemoteState, CurrentSettings | None]:
        """The Space and the settings it has now, as a push plans against them: one request, three for an existing
        Space (``beam_pusher.readahead`` sends them early on local runs)."""
        state = self.committer.call(spec.repo_id, "read the Space", lambda: self.committer.read_state(spec.repo_id))
        return state, self._current_settings(spec, state)

    def _current_settings(self, spec: SpaceSpec, state: RemoteState) -> CurrentSettings | None:
        """What the Space has now of the settings ``spec`` manages; None when the Space does not exist yet.

        Visibility, hardware and sleep time come with the Space's info in ``state``; secrets and variables cost a
        request each (the Hub lists them nowhere else), which is what finds the ones the config no longer names.
        """
        if not state.exists:
            return None
        rid, api, info = spec.repo_id, self.api, state.info

        def read() -> CurrentSettings:
            secrets = api.get_space_secrets(rid)
            variables = api.get_space_variables(rid)
            runtime = getattr(info, "runtime", None)
            flavor = (runtime.requested_hardware or runtime.hardware) if runtime is not None else None
            return CurrentSettings(
                secrets={key: secret.description for key, secret in secrets.items()},
                variables={key: (var.value, var.description) for key, var in variables.items()},
                hardware=str(getattr(flavor, "value", flavor)) if flavor else None,
                sleep_time=runtime.sleep_time if runtime is not None else None,
                private=bool(info.private),
            )

        return self.committer.call(rid, "read the Space's settings", read)

    # -- writes ---------------------------------------------------------------------------------------------------

    def _create_space(self, spec: SpaceSpec, secrets: Mapping[str, str], created: list[bool]
                      ) -> tuple[str, ...] | None:
        """Creates the Space with all its settings in one request, so it never runs without them.

        Returns the paths of the Hub's first commit when this call created it (``Committer.commit`` plans against
        them without reading the new Space), else None.
        """
        from huggingface_hub.errors import HfHubHTTPError

        def create() -> tuple[str, ...] | None:
            try:
                self.api.create_repo(
                    spec.repo_id, repo_type="space", space_sdk=spec.space_sdk, private=spec.private,
                    space_hardware=spec.hardware, space_sleep_time=spec.sleep_time,
                    space_secrets=[{"key": k, "value": v, "description": secret_description(v)}
                                   for k, v in secrets.items()] or None,
                    space_variables=[{"key": k, "value": v, "description": MANAGED_MARKER}
                                     for k, v in spec.variables.items()] or None,
                )
            except HfHubHTTPError as exc:
                if http_status(exc) != 409:
                    raise
                return None  # created meanwhile by someone else: the settings are written after the commit
            created.append(True)
            return _SPACE_FIRST_FILES

        return self.committer.call(spec.repo_id, "create the Space", create)

    def _apply_settings(self, spec: SpaceSpec, secrets: Mapping[str, str], changes: Sequence[SettingChange]
                        ) -> tuple[tuple[SettingChange, ...], tuple[SettingChange, ...], str | None]:
        """Writes ``changes`` in order; stops at the first refusal. Returns (applied, not applied, error)."""
        changes = tuple(changes)
        for done, change in enumerate(changes):
            try:
                self.committer.call(spec.repo_id, f"apply '{change}'", self._writer(spec, secrets, change))
            except PushError as exc:
                applied, failed = changes[:done], changes[done:]
                error = (
                    f"{spec.repo_id}: the files were pushed, but not every setting: "
                    f"{str(exc).removeprefix(f'{spec.repo_id}: ')}. Applied: "
                    f"{'; '.join(map(str, applied)) or 'nothing'}. Not applied: {'; '.join(map(str, failed))}. "
                    "Fix the cause and deploy again: only what is still different is written."
                )
                return applied, failed, error
        return changes, (), None

    def _writer(self, spec: SpaceSpec, secrets: Mapping[str, str], change: SettingChange) -> Callable[[], Any]:
        """The client call that makes one settings change."""
        api, rid, key = self.api, spec.repo_id, change.key
        delete = change.action is SettingAction.DELETE
        if change.kind is SettingKind.SECRET:
            if delete:
                return functools.partial(api.delete_space_secret, rid, key)
            value = secrets[key]
            return lambda: api.add_space_secret(rid, key, value, description=secret_description(value))
        if change.kind is SettingKind.VARIABLE:
            if delete:
                return functools.partial(api.delete_space_variable, rid, key)
            return functools.partial(api.add_space_variable, rid, key, spec.variables[key], description=MANAGED_MARKER)
        if change.kind is SettingKind.HARDWARE:
            return functools.partial(api.request_space_hardware, rid, spec.hardware)
        if change.kind is SettingKind.SLEEP_TIME:
            return functools.partial(api.set_space_sleep_time, rid, spec.sleep_time)
        return functools.partial(api.update_repo_settings, rid, repo_type="space", private=spec.private)


def writable_namespaces(identity: Mapping[str, Any]) -> list[str]:
    """The namespaces a token may write in, from ``HfApi.whoami()``: its user's and its organisations'.

    Empty for a read token. Fine-grained and OAuth tokens are not described here (see ``may_write``).
    """
    access = (identity.get("auth") or {}).get("accessToken") or {}
    if access.get("role") != "write":
        return []
    orgs = [org.get("name") for org in identity.get("orgs") or () if org.get("roleInOrg") != "read"]
    return [name for name in [identity.get("name"), *orgs] if name]


def may_write(identity: Mapping[str, Any], namespace: str) -> bool | None:
    """Whether the token that ``HfApi.whoami()`` described may write in ``namespace``.

    None when whoami does not tell (a fine-grained or OAuth token, whose scopes the Hub checks on each write).
    """
    role = ((identity.get("auth") or {}).get("accessToken") or {}).get("role")
    if role == "read":
        return False
    if role != "write":
        return None
    return namespace.casefold() in {name.casefold() for name in writable_namespaces(identity)}


def _named_once(repo_id: str, message: str) -> str:
    """``message`` as a result's error: standing alone, so it starts with ``repo_id``, and names it only there."""
    return f"{repo_id}: {message.removeprefix(f'{repo_id}: ')}"


# -- rollback --------------------------------------------------------------------------------------------------------


def check_connection(api: Any, *, timeout: float = 10.0) -> None:
    """One request to ``api``'s Hub before a run, so that what would fail every Space fails once, at once.

    Raises:
      PushError: the Hub cannot be reached (connection refused, unknown host): naming the endpoint.
      TokenError: the Hub rejected ``api``'s token (HTTP 401).

    Anything else (a slow answer, a 5xx) is left to the run, whose calls retry what is transient.
    """
    from huggingface_hub.utils import build_hf_headers, get_session

    token = api.token if isinstance(getattr(api, "token", None), str) else None
    url = f"{api.endpoint.rstrip('/')}/api/whoami-v2"
    try:
        response = get_session().get(url, headers=build_hf_headers(token=token), timeout=timeout)
    except Exception as exc:  # noqa: BLE001 - only an unreachable Hub is decided here
        reason = unreachable_reason(exc)
        if reason:
            raise PushError(unreachable_message(api.endpoint, reason)) from None
        logger.debug("could not check %s first (%s); going on", api.endpoint, type(exc).__name__)
        return
    if response.status_code == 401 and token is not None:
        raise TokenError(
            f"the Hub at {api.endpoint} rejected the token (HTTP 401); give a valid one: set HF_TOKEN, run "
            "`hf auth login`, or give --token-env with a variable that holds a token for this Hub."
        )


# -- status ----------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SpaceStatus:
    """One Space's runtime, as ``space_status`` read it.

    Attributes:
      repo_id: The Space.
      url: Its page on the Hub.
      stage: The runtime stage (``RUNNING``, ``BUILDING``, ``BUILD_ERROR``, ...); None when it could not be read.
      hardware: The hardware it runs on, else the requested one; None when unknown.
      found: False when the Space does not exist (or the token cannot see it).
      error: Why the stage could not be read, when it could not.
    """

    repo_id: str
    url: str
    stage: str | None = None
    hardware: str | None = None
    found: bool = True
    error: str | None = None

    @property
    def failed(self) -> bool:
        """Whether the Space does not run and will not without a change: a failed stage, or no stage at all."""
        return self.stage is None or self.stage in FAILED_STAGES

    @property
    def running(self) -> bool:
        """Whether the Space runs now (``RUNNING``); building, sleeping, paused and failed Spaces do not."""
        return self.stage == "RUNNING"


def space_status(api: Any, repo_ids: Sequence[str], *, max_workers: int = 8) -> list[SpaceStatus]:
    """The runtime of each Space in ``repo_ids`` (in that order), read in parallel with ``api`` (an ``HfApi``).

    A Space that cannot be read gets a status with its ``error``; it never hides the others.
    """
    if not repo_ids:
        return []
    with ThreadPoolExecutor(max_workers=min(max_workers, len(repo_ids)), thread_name_prefix="status") as pool:
        return list(pool.map(lambda repo_id: _status_of(api, repo_id), repo_ids))


def _status_of(api: Any, repo_id: str) -> SpaceStatus:
    from huggingface_hub.errors import RepositoryNotFoundError

    url = f"{api.endpoint}/spaces/{repo_id}"
    try:
        runtime = api.get_space_runtime(repo_id)
    except RepositoryNotFoundError:
        return SpaceStatus(repo_id, url, found=False, error="the Space does not exist (deploy it first)")
    except Exception as exc:  # noqa: BLE001 - one unreadable Space does not hide the others
        token = api.token if isinstance(getattr(api, "token", None), str) else None
        error = describe_error(exc, repo_id, token, endpoint=api.endpoint, token_sent=token is not None)
        return SpaceStatus(repo_id, url, error=error.removeprefix(f"{repo_id}: "))
    hardware = runtime.hardware or runtime.requested_hardware
    return SpaceStatus(
        repo_id,
        url,
        stage=str(getattr(runtime.stage, "value", runtime.stage)),
        hardware=str(getattr(hardware, "value", hardware)) if hardware else None,
    )
