"""The pipeline image's Dockerfile, read and checked (no Docker engine on these machines):
the Python and pins the venv uses, and everything the compiled spec loads inside it."""

import re
import shlex
from pathlib import Path

import pytest
from setuptools import find_packages

from kubeflow import config

ROOT = Path(__file__).resolve().parents[2]
# Pinned packages with no wheel on PyPI, compiled at install time (they are the locally
# built wheels in pip's cache after `make venv`): the image needs a compiler for them.
BUILT_FROM_SOURCE = ("crcmod", "pyfarmhash")


def instructions(text: str):
    """[(INSTRUCTION, argument string)] with line continuations joined and comments dropped."""
    result, current = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        current += " " + stripped.rstrip("\\").strip() if current else stripped.rstrip("\\").strip()
        if not stripped.endswith("\\"):
            keyword, _, rest = current.partition(" ")
            result.append((keyword.upper(), rest.strip()))
            current = ""
    assert not current, "dangling line continuation"
    return result


@pytest.fixture(scope="module")
def dockerfile():
    return instructions((ROOT / "Dockerfile").read_text())


def constraints():
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==")
            pins[re.sub(r"[-_.]+", "-", name.strip().lower())] = version.strip()  # PEP 503 names
    return pins


def test_python_310_slim_as_the_local_venv(dockerfile):
    keyword, base = dockerfile[0]
    assert keyword == "FROM"
    match = re.fullmatch(r"python:(\d+\.\d+\.\d+)-slim(-\w+)?", base)
    assert match, base
    assert match.group(1) == (ROOT / ".python-version").read_text().strip()


def test_installs_with_the_same_constraints_and_checks_them(dockerfile):
    copies = [args for kw, args in dockerfile if kw == "COPY"]
    runs = [args for kw, args in dockerfile if kw == "RUN"]
    assert "requirements.txt constraints.txt ./" in copies
    install = next(r for r in runs if "-r requirements.txt" in r)
    assert "-c constraints.txt" in install and "pip check" in install
    assert dockerfile.index(("COPY", "requirements.txt constraints.txt ./")) < dockerfile.index(("RUN", install))
    # The compiler is there while the from-source packages build, and gone after.
    assert "build-essential" in install and install.index("build-essential") < install.index("-r requirements.txt")
    assert "apt-get purge -y build-essential" in install
    pins = constraints()
    for package in BUILT_FROM_SOURCE:
        assert package in pins


def test_constraints_pin_the_stack_that_installs_cleanly():
    pins = constraints()
    expected = {"tfx": "1.16.0", "tensorflow": "2.16.2", "keras": "3.6.0", "tf-keras": "2.16.0", "kfp": "2.5.0",
                "keras-tuner": "1.4.7", "apache-beam": "2.59.0"}
    assert {name: pins.get(name) for name in expected} == expected
    assert pins["numpy"].startswith("1.")
    assert tuple(int(p) for p in pins["protobuf"].split(".")[:2]) < (4, 21)
    assert tuple(int(p) for p in pins["joblib"].split(".")[:2]) < (1, 5)


def test_every_project_package_is_copied_to_the_path_the_spec_uses(dockerfile):
    assert ("WORKDIR", config.IMAGE_PROJECT_DIR) in dockerfile
    env = " ".join(args for kw, args in dockerfile if kw == "ENV")
    assert f"PYTHONPATH={config.IMAGE_PROJECT_DIR}" in env
    copied = {shlex.split(args)[0].rstrip("/") for kw, args in dockerfile if kw == "COPY"}
    top_level = {p.split(".")[0] for p in find_packages(str(ROOT), include=["cli*", "pipeline*", "components*",
                                                                         "models*", "schema*", "kubeflow*",
                                                                         "fer_artifacts*", "dashboard*", "serving*",
                                                                         "client*"])}
    assert top_level <= copied, top_level - copied
    assert "setup.py" in copied
    # ImportSchemaGen reads IMAGE_SCHEMA_FILE: schema/ is copied into the project dir.
    assert config.IMAGE_SCHEMA_FILE == f"{config.IMAGE_PROJECT_DIR}/schema/schema.pbtxt"
    assert (ROOT / "schema" / "schema.pbtxt").exists()
    assert any(kw == "RUN" and "pip install --no-deps -e ." in args for kw, args in dockerfile)


def test_no_entrypoint_overrides_the_spec_command(dockerfile):
    assert not [args for kw, args in dockerfile if kw == "ENTRYPOINT"]


def test_build_context_leaves_out_venv_runs_data_and_tests():
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".git", ".venv", "runs", "tests", "*.csv", "*.csv.gz"} <= ignored


def test_make_image_tags_what_compile_uses_by_default():
    makefile = (ROOT / "Makefile").read_text()
    assert f"IMAGE ?= {config.DEFAULT_IMAGE}" in makefile
    assert re.search(r"^image:\n(\t.*\n)*\tdocker build -t \$\(IMAGE\) \.", makefile, re.M)


def test_the_setup_py_includes_the_kubeflow_package():
    assert '"kubeflow*"' in (ROOT / "setup.py").read_text() and '"fer_artifacts*"' in (ROOT / "setup.py").read_text()
