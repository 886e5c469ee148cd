# The pipeline image. Every task of the compiled Kubeflow pipeline runs in it with
#   python -m tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor ...
# (the command TFX's KubeflowV2DagRunner writes into the spec), which imports the
# executors and module functions named in the spec (components.*, models.trainer.run_fn,
# models.preprocessing.preprocessing_fn) from this project.
#   make image                     (needs a Docker engine)
#   docker push REGISTRY/fer-pipeline:TAG; fer-pipeline kubeflow compile --image REGISTRY/fer-pipeline:TAG ...
FROM python:3.10.13-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /pipeline

# Dependencies first, so this layer is rebuilt only when the pins change. The same
# constraints file as the local venv; two of the pinned packages (crcmod, pyfarmhash) ship
# no wheel and are compiled, so a compiler is installed for this step and removed after it.
COPY requirements.txt constraints.txt ./
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && pip install pip==24.3.1 \
 && pip install -r requirements.txt -c constraints.txt \
 && pip check \
 && apt-get purge -y build-essential \
 && apt-get autoremove -y \
 && rm -rf /var/lib/apt/lists/*

# The project, at the path the compiled spec expects (kubeflow/config.py: IMAGE_PROJECT_DIR,
# IMAGE_SCHEMA_FILE for ImportSchemaGen).
COPY setup.py ./
COPY core/ core/
COPY cli/ cli/
COPY client/ client/
COPY components/ components/
COPY dashboard/ dashboard/
COPY fer_artifacts/ fer_artifacts/
COPY kubeflow/ kubeflow/
COPY models/ models/
COPY pipeline/ pipeline/
COPY tools/ tools/
COPY schema/ schema/
COPY serving/ serving/
RUN pip install --no-deps -e .
ENV PYTHONPATH=/pipeline

# No ENTRYPOINT: each task's command comes from the compiled spec. Run on its own, the
# image shows the CLI.
CMD ["fer-pipeline", "--help"]
