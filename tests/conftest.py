"""Test settings: the local Hub server speaks classic LFS, not Xet, and nothing phones home.

huggingface_hub reads these variables once, at import, so they are set before anything imports it.
"""

import os
import tempfile

import pytest

os.environ["HF_HUB_DISABLE_XET"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
os.environ.setdefault("HF_HOME", tempfile.mkdtemp(prefix="beam-pusher-hf-home-"))
os.environ.pop("HF_TOKEN", None)

pytest_plugins = ["beam_pusher.testing.pytest_plugin"]


@pytest.fixture
def hub(local_hub, local_hub_token):
    """The local Hub, with its token reachable through the reference ``local_hub_token``."""
    return local_hub


@pytest.fixture
def api(hub_api):
    return hub_api
