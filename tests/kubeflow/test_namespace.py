"""kubeflow/ is a namespace package: the project's kubeflow.runner and a Kubeflow SDK installed
into the same kubeflow.* namespace (as kubeflow-training and kubeflow-katib install) import
side by side in one process."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_projects_kubeflow_and_another_distributions_import_together(tmp_path):
    sdk = tmp_path / "site" / "kubeflow" / "training"
    sdk.mkdir(parents=True)
    (sdk / "__init__.py").write_text("NAME = 'another distribution'\n")
    code = ("import sys; sys.path.append(sys.argv[1]); "
            "from kubeflow import config; import kubeflow.training as other; "
            "print(config.__file__); print(other.NAME)")
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path / "site")], cwd=REPO, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    ours, theirs = result.stdout.splitlines()
    assert ours.startswith(str(REPO / "kubeflow")) and theirs == "another distribution"
    assert not (REPO / "kubeflow" / "__init__.py").exists()
