"""Imports point down the layers: cli and tools at the top, then pipeline and kubeflow, then
components, then models (with fer_artifacts and schema beside it), and under everything core
(TF-free names, feature keys, argparse types, console helpers), which imports nothing of the project. client (the face detectors and
the 48x48 crop the live client feeds the model) sits beside models, importing only it: the image
ingest (components/fer_image_gen) converts faces with the client's own functions, so training and
serving convert identically. Lazy imports inside functions count too."""

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PROJECT = {"core", "cli", "tools", "pipeline", "kubeflow", "components", "models", "fer_artifacts", "schema", "dashboard",
           "serving", "client", "bench"}
# What each package may import from the project (itself included).
ALLOWED = {
    "core": {"core"},
    "models": {"models", "core"},
    "fer_artifacts": {"fer_artifacts", "models", "core"},
    "schema": {"schema", "models", "core"},
    "client": {"client", "models", "core"},
    "components": {"components", "models", "fer_artifacts", "schema", "client", "core"},
    "pipeline": {"pipeline", "components", "models", "fer_artifacts", "schema", "core"},
    "dashboard": {"dashboard", "pipeline", "models", "fer_artifacts", "core"},  # a run, read through pipeline/run_reader.py
}


def project_imports(path: Path):
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            if top in PROJECT:
                yield node.lineno, top


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_point_down(package):
    wrong = [f"{path.relative_to(REPO)}:{line} imports {top}"
             for path in sorted((REPO / package).rglob("*.py"))
             for line, top in project_imports(path) if top not in ALLOWED[package]]
    assert not wrong, "\n".join(wrong)
