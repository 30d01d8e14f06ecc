"""Talks to the Hub about Spaces: push one, with its settings.

The commit itself (plan against the remote tree, one ``create_commit`` with ``parent_commit``, re-plan on 412,
retries) is ``beam_pusher.commit.Committer``; this module adds what is particular to Spaces. One ``SpacePusher``
lives in one worker (built in ``DoFn.setup``, where the token is resolved). A push is:

1. validate and resolve everything local first (secret references), so a bad Space fails before any network call;
2. one commit through the committer, which creates the Space first when it is missing;
3. Space settings (secrets, variables, hardware), then optionally wait for the Space to run.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Sequence

from beam_pusher.auth import resolve_secret
from beam_pusher.commit import Committer, HubSettings, push_result
from beam_pusher.errors import BeamPusherError, PushError
from beam_pusher.rules import FAILED_STAGES
from beam_pusher.spec import AppFile, PushResult, SpaceSpec

__all__ = ["HubSettings", "SpacePusher"]

logger = logging.getLogger(__name__)


class SpacePusher:
    """Pushes Spaces to the Hub. Build one per worker; it is not picklable (it holds the resolved token)."""

    def __init__(self, settings: HubSettings):
        self._settings = settings
        self.committer = Committer.connect(settings)  # resolves the token, here on the worker
        self.api = self.committer.api

    def __getstate__(self):
        raise TypeError("SpacePusher holds a resolved token and must not be pickled; pickle HubSettings instead.")

    # -- one Space ------------------------------------------------------------------------------------------------

    def push(self, spec: SpaceSpec, files: Sequence[AppFile], *, pushed_version: str | None = None) -> PushResult:
        """Deploys ``files`` to ``spec.repo_id``; never raises for Hub problems, reports them in the result."""
        s = self._settings
        repo_url = f"{self.api.endpoint}/spaces/{spec.repo_id}"
        version = pushed_version or spec.model_hub_repo_branch or str(int(time.time()))
        try:
            secrets = {name: resolve_secret(name, ref) for name, ref in spec.secrets.items()}
            outcome = self.committer.commit(
                spec.repo_id,
                files,
                repo_type="space",
                commit_message=spec.commit_message or f"Deploy {spec.name} with beam_pusher",
                keep=spec.keep,
                dry_run=s.dry_run,
                create_repo=lambda: self._create_space(spec),
            )
            stage = None
            if not s.dry_run:
                self._apply_settings(spec, secrets)
                if s.wait:
                    stage = self._wait_until_running(spec.repo_id)
        except BeamPusherError as exc:
            return self._failed(spec, repo_url, str(exc))
        except Exception as exc:  # noqa: BLE001 - a failed Space must never stop the others
            return self._failed(spec, repo_url, self.committer.describe(exc, spec.repo_id))
        error = None
        if stage in FAILED_STAGES:
            error = f"{spec.repo_id}: the Space was pushed but does not run (stage {stage}); see its logs on the Hub."
        return push_result(outcome, repo_id=spec.repo_id, repo_url=repo_url, pushed_version=version,
                           dry_run=s.dry_run, runtime_stage=stage, error=error)  # fmt: skip

    def _failed(self, spec: SpaceSpec, repo_url: str, message: str) -> PushResult:
        message = self.committer.scrub(message, *self._secret_values(spec))
        logger.warning("%s: not pushed: %s", spec.repo_id, message)
        return PushResult(repo_id=spec.repo_id, pushed=False, repo_url=repo_url, error=message)

    @staticmethod
    def _secret_values(spec: SpaceSpec) -> list[str]:
        values = []
        for name, ref in spec.secrets.items():
            try:
                values.append(resolve_secret(name, ref))
            except BeamPusherError:
                pass
        return values

    def _create_space(self, spec: SpaceSpec) -> None:
        create = functools.partial(self.api.create_repo, spec.repo_id, repo_type="space", space_sdk=spec.space_sdk,
                                   private=spec.private, space_hardware=spec.hardware, exist_ok=True)  # fmt: skip
        self.committer.call(spec.repo_id, "create the Space", create)

    def _apply_settings(self, spec: SpaceSpec, secrets: dict[str, str]) -> None:
        rid, api, call = spec.repo_id, self.api, self.committer.call
        for key, value in secrets.items():
            call(rid, f"set the secret {key}", functools.partial(api.add_space_secret, rid, key, value))
        if spec.variables:
            current = call(rid, "read the variables", functools.partial(api.get_space_variables, rid))
            for key, value in spec.variables.items():
                if key not in current or current[key].value != value:
                    call(rid, f"set the variable {key}", functools.partial(api.add_space_variable, rid, key, value))
        if spec.hardware:
            runtime = call(rid, "read the runtime", functools.partial(api.get_space_runtime, rid))
            if spec.hardware not in (runtime.requested_hardware, runtime.hardware):
                call(rid, "request hardware", functools.partial(api.request_space_hardware, rid, spec.hardware))

    def _wait_until_running(self, repo_id: str) -> str:
        deadline = time.monotonic() + self._settings.wait_timeout
        delay = 0.2
        read = functools.partial(self.api.get_space_runtime, repo_id)
        while True:
            runtime = self.committer.call(repo_id, "read the runtime", read)
            stage = str(getattr(runtime.stage, "value", runtime.stage))
            if stage == "RUNNING" or stage in FAILED_STAGES:
                return stage
            if time.monotonic() >= deadline:
                raise PushError(
                    f"{repo_id}: pushed, but still {stage} after {self._settings.wait_timeout:g} s; "
                    "raise wait_timeout or check the Space's build logs."
                )
            time.sleep(delay)
            delay = min(delay * 2, 5.0)

