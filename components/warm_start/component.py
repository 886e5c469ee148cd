"""WarmStart: --warm-start's value (a string, so a Kubeflow runtime parameter can carry it) in,
a Model artifact out, for FerTrainer's base_model and the Evaluator's baseline.

It replaces an Importer, which takes a Model artifact's URI as is: this resolves `shipped` (the
model packaged with the code, in the container on a cluster), a SavedModel folder, a TF Serving
base path (newest version) or a Model artifact folder where the task runs (logic.py)."""

from tfx.dsl.component.experimental.annotations import OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import standard_artifacts

from components.warm_start import logic
from core import names


@component
def WarmStart(  # noqa: N802 - TFX component names are classes
    source: Parameter[str],
    model: OutputArtifact[standard_artifacts.Model],
):
    staged = logic.stage(source, model.uri)
    model.set_string_custom_property(names.WARM_START_SOURCE_PROPERTY, staged.source)
    model.set_string_custom_property(names.WARM_START_SAVED_MODEL_PROPERTY, staged.saved_model)
    model.set_string_custom_property(names.WARM_START_VERSION_PROPERTY, staged.version)
    given = f" (--warm-start {staged.source})" if staged.source.rstrip("/") != staged.saved_model else ""
    print(f"[WarmStart] {staged.saved_model}{given} copied to {model.uri}", flush=True)
