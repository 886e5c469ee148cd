"""Defaults of the Kubeflow variant (no TensorFlow import: the CLI's parser reads them).

kubeflow/ (Kubeflow Pipelines v2 / Vertex AI Pipelines: compile create_pipeline() and submit
it) is a namespace package, without __init__.py, so that Kubeflow's own SDKs, which install
into the kubeflow.* namespace, still import beside it (tests/kubeflow/test_namespace.py)."""

from core import names

# What `make image` tags; push it to a registry the cluster can pull from and pass --image.
DEFAULT_IMAGE = "fer-pipeline:0.1.0"
DEFAULT_BUCKET = "gs://fer-pipeline"
DEFAULT_PIPELINE_ROOT = f"{DEFAULT_BUCKET}/pipeline_root"
DEFAULT_DATA_ROOT = f"{DEFAULT_BUCKET}/data"
# Where the Dockerfile puts the project: WORKDIR and PYTHONPATH of the image.
IMAGE_PROJECT_DIR = "/pipeline"
IMAGE_SCHEMA_FILE = f"{IMAGE_PROJECT_DIR}/schema/{names.SCHEMA_FILE}"
# Each Beam stage runs inside one pod: DirectRunner over all of the pod's cores
# (direct_num_workers=0 means one worker per core). Dataflow/Flink/Spark: --beam-arg.
DEFAULT_BEAM_ARGS = ("--runner=DirectRunner", "--direct_running_mode=multi_processing", "--direct_num_workers=0")
DEFAULT_EXPERIMENT = "fer"

# Runtime parameters of the compiled pipeline.
DATA_ROOT_PARAMETER = "data_root"
# With --warm-start: what the Trainer starts from, resolved by WarmStart in the cluster: `shipped`
# (the model in the image), or the URI of a SavedModel, a pushed model's base path (its newest
# version) or a Model artifact. KFP's cache keys on this string: a base path that got a newer
# version since a cached run needs `kubeflow submit --no-cache` (or name the version's folder).
WARM_START_PARAMETER = "warm_start"
TEACHER_PARAMETER = "teacher"  # --teacher's SavedModels, comma-separated, resolved by the Teacher task
# The Trainer's runtime parameters are declared from pipeline/options.py (runtime_parameter_fields).
