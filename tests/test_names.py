"""core/names.py is the one home of the output and metric names: no other Python file of
the project spells one of them in a string literal (docstrings aside), and the names it
restates from TFX equal TFX's."""

import ast
import re
from pathlib import Path

from core import names

REPO = Path(__file__).resolve().parents[1]
SOURCE_DIRS = ("bench", "cli", "client", "components", "dashboard", "fer_artifacts", "kubeflow", "models",
               "pipeline", "schema", "serving")


def _docstrings(tree):
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                yield first.value


def copies(path: Path, root: Path = REPO):
    tree = ast.parse(path.read_text(), str(path))
    skip = {id(node) for node in _docstrings(tree)}
    patterns = [(name, re.compile(rf"(?<![\w.]){re.escape(name)}(?!\w)")) for name in names.DISTINCTIVE]
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            for name, pattern in patterns:
                if pattern.search(node.value):
                    yield f"{path.relative_to(root)}:{node.lineno}: {name!r}"


def test_no_name_is_spelt_outside_the_catalogue():
    found = []
    for directory in SOURCE_DIRS:
        for path in sorted((REPO / directory).rglob("*.py")):
            if path != REPO / "models" / "names.py":
                found += copies(path)
    assert not found, "use core/names.py instead:\n" + "\n".join(found)


def test_the_grep_finds_a_copy(tmp_path):
    (tmp_path / "x.py").write_text('"""training_summary.json in a docstring is fine."""\n'
                                   'path = "runs/training_summary.json"\nother = "val_macro_f1_x"\n')
    assert list(copies(tmp_path / "x.py", tmp_path)) == ["x.py:2: 'training_summary.json'"]


def test_tfx_names_are_tfx_s():
    from tfx.components.evaluator import constants as evaluator_constants
    from tfx.components.pusher import executor as pusher_executor
    from tfx.components.schema_gen import executor as schema_gen_executor

    assert names.BLESSED_PROPERTY == evaluator_constants.ARTIFACT_PROPERTY_BLESSED_KEY
    assert names.SCHEMA_FILE == schema_gen_executor.DEFAULT_FILE_NAME
    assert names.PUSHED_PROPERTY == pusher_executor._PUSHED_KEY
    assert names.PUSHED_DESTINATION_PROPERTY == pusher_executor._PUSHED_DESTINATION_KEY
