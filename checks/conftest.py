"""Settings of the slow checks (``make dataflow-check``): as in tests/, the local Hub speaks classic LFS."""

import os
import tempfile

os.environ["HF_HUB_DISABLE_XET"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
os.environ.setdefault("HF_HOME", tempfile.mkdtemp(prefix="beam-pusher-hf-home-"))
os.environ.pop("HF_TOKEN", None)

pytest_plugins = ["beam_pusher.testing.pytest_plugin"]
