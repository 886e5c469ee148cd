"""The project's custom TFX artifact types.

Their TYPE_NAME has to satisfy two rules at once on Kubeflow Pipelines v2:
- the compiler (KubeflowV2DagRunner) accepts a custom type only as a schema title of the
  form `<namespace>.<Title>`: one dot, a lowercase namespace of 3-21 characters;
- the container entrypoint rebuilds each artifact by importing its schema title as a
  Python class path.
So each TYPE_NAME is the import path of the class, from this top-level package:
`fer_artifacts.<Class>`.
"""

from tfx.types import artifact


class FerRejects(artifact.Artifact):
    """Rows FerExampleGen refused: rejects.csv (file,line,reason,detail) + summary.json."""

    TYPE_NAME = "fer_artifacts.FerRejects"


class ClassBalance(artifact.Artifact):
    """class_balance.json: per-split class shares, imbalance, drift, class weights."""

    TYPE_NAME = "fer_artifacts.ClassBalance"
