"""Teacher: --teacher's value (one string, so a Kubeflow runtime parameter can carry it) in, a
Model artifact holding each SavedModel out, for FerTrainer's `teacher` input (distillation,
models/distillation.py). Resolved where the task runs, like WarmStart (logic.py)."""

import json

from tfx.dsl.component.experimental.annotations import OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import standard_artifacts

from components.teacher import logic
from core import names


@component
def Teacher(  # noqa: N802 - TFX component names are classes
    sources: Parameter[str],
    model: OutputArtifact[standard_artifacts.Model],
):
    resolved = logic.stage(sources, model.uri)
    model.set_string_custom_property(names.TEACHER_SAVED_MODELS_PROPERTY, json.dumps(resolved))
    print(f"[Teacher] {len(resolved)} model(s) copied to {model.uri}: {', '.join(resolved)}", flush=True)
