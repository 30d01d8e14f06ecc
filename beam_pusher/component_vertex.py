"""Compiling ``HFSpacePusher`` / ``HFModelPusher`` for Kubeflow V2 and Vertex AI: what to check before the tasks run.

A pusher without ``repo_name`` pushes to a repository named after the pipeline (``executor.default_repo_name``).
LocalDagRunner and BeamDagRunner hand executors the pipeline's name; a Kubeflow V2 / Vertex AI task does not (its
container gets only the ExecutorInput), so such a task could only fail when it runs, after the steps before it.
This module moves that failure to compile time.

Why a runner and a function, not a check inside the components: TFX's Kubeflow V2 compiler gives a component no hook
that knows it is compiling for Kubeflow V2. It reads ``exec_properties``, ``executor_spec`` and the channels, as the
compiler of LocalDagRunner and BeamDagRunner does; it never calls ``ExecutorSpec.encode()`` (only that compiler
does), and the ComponentSpec's ``type_check`` runs when the component is built. An exec property given as a
placeholder of the pipeline's name (``tfx.dsl.placeholders.execution_invocation().pipeline_info.id``) would resolve
on the local runners and be refused by the Kubeflow V2 compiler, but with TFX's own "Invalid placeholder for exec
prop" message, which neither names the component nor the fix, and it would change what the local runners compile and
record. So the check is explicit, in one place: ``check_for_vertex(pipeline)``, which ``KubeflowV2DagRunner`` below
(TFX's runner) calls before it compiles.

Example::

    from beam_pusher.component_vertex import KubeflowV2DagRunner
    from tfx.orchestration.kubeflow.v2.kubeflow_v2_dag_runner import KubeflowV2DagRunnerConfig

    runner = KubeflowV2DagRunner(config=KubeflowV2DagRunnerConfig(default_image="gcr.io/PROJECT/penguin:1"),
                                 output_filename="pipeline.json")
    runner.run(pipeline)  # SpecError before anything is written if a pusher has no repo_name

This module needs TFX's Kubeflow V2 compiler, as ``KubeflowV2DagRunner`` does: ``pip install "tfx[kfp]"``.
"""

from __future__ import annotations

from typing import Any, Dict, List

from beam_pusher import _needs_tfx

try:
    from tfx.dsl.components.base import base_node
    from tfx.orchestration import pipeline as tfx_pipeline
    from tfx.orchestration.kubeflow.v2 import kubeflow_v2_dag_runner
except ImportError as _exc:  # TFX, or its kfp extra, is missing: say which to install
    _error = _needs_tfx(__name__, _exc)
    if _error is None and (_exc.name or "").split(".")[0] == "kfp":
        _error = ImportError(
            f"{__name__} needs TFX's Kubeflow V2 compiler ({_exc.name} is not installed); "
            'install it with: pip install "tfx[kfp]"',
            name=_exc.name,
        )
    if _error is None:
        raise
    raise _error from _exc

from beam_pusher.component import HFModelPusher, HFSpacePusher
from beam_pusher.component_spec import REPO_NAME_KEY
from beam_pusher.errors import SpecError
from beam_pusher.executor import default_repo_name

__all__ = ["KubeflowV2DagRunner", "check_for_vertex"]

# Each pusher class and its default node id, which ``default_repo_name`` leaves out of the default name.
_PUSHERS = {HFSpacePusher: "HFSpacePusher", HFModelPusher: "HFModelPusher"}


def _default_id(node: base_node.BaseNode) -> str | None:
    """The pusher class's default node id, None for a node that is not a pusher."""
    for cls, component_id in _PUSHERS.items():
        if isinstance(node, cls):
            return component_id
    return None


def check_for_vertex(pipeline: tfx_pipeline.Pipeline) -> None:
    """Refuses a pipeline whose pushers would fail on Kubeflow V2 / Vertex AI for want of a ``repo_name``.

    Every ``HFSpacePusher`` and ``HFModelPusher`` of the pipeline must be given ``repo_name`` (a value, a runtime
    parameter or a placeholder): the default, the pipeline's name, is only known to executors on LocalDagRunner and
    BeamDagRunner. Every pusher without one is named in one error, with the name those runners would use.

    Example::

        check_for_vertex(pipeline)  # then compile it with any Kubeflow V2 runner

    Raises:
      SpecError: one line per pusher without ``repo_name``: its id, why, and ``repo_name="..."`` to add.
    """
    problems: List[str] = []
    for node in pipeline.components:
        component_id = _default_id(node)
        repo_name = node.exec_properties.get(REPO_NAME_KEY) if component_id else None
        if component_id is None or (repo_name is not None and repo_name != ""):  # placeholders overload ==
            continue
        name = default_repo_name(pipeline.pipeline_info.pipeline_name, node.id, component_id)
        problems.append(
            f"{type(node).__name__} {node.id!r}: repo_name is unset, and Kubeflow V2 / Vertex AI cannot supply the "
            "pipeline's name (the default) to the task at run time, so the task would fail when it runs. "
            f'Fix: give it repo_name="{name}" (the name LocalDagRunner and BeamDagRunner use) or another name.'
        )
    if problems:
        raise SpecError(
            f"Pipeline {pipeline.pipeline_info.pipeline_name!r} cannot run on Kubeflow V2 / Vertex AI:\n"
            + "\n".join(problems)
        )


class KubeflowV2DagRunner(kubeflow_v2_dag_runner.KubeflowV2DagRunner):
    """TFX's ``KubeflowV2DagRunner`` that first applies ``check_for_vertex``: a drop-in replacement.

    Example::

        runner = KubeflowV2DagRunner(config=KubeflowV2DagRunnerConfig(default_image="gcr.io/PROJECT/img:1"))
        runner.run(pipeline)
    """

    def run(self, pipeline: tfx_pipeline.Pipeline, *args: Any, **kwargs: Any) -> Dict[str, Any]:
        """Checks the pipeline's pushers (``check_for_vertex``), then compiles it as TFX's runner does.

        Raises:
          SpecError: a pusher has no ``repo_name``; nothing is compiled or written.
        """
        check_for_vertex(pipeline)
        return super().run(pipeline, *args, **kwargs)
