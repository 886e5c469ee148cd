"""fer-pipeline check-csv / demo-data, run as a user would (subprocesses)."""

import json
import os
import subprocess
import sys

PIXELS = " ".join(["7"] * 2304)


def cli(*args):
    return subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True, text=True,
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_check_csv_reports_and_exits_non_zero_over_threshold(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("emotion,pixels,Usage\n" + f"3,{PIXELS},Training\n" * 8 + "9,1 2,Nope\n" + f"1,{PIXELS},PublicTest\n")
    rejects = tmp_path / "rejects.csv"
    result = cli("check-csv", str(path), "--json", "--rejects", str(rejects))
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert {k: report[k] for k in ("rows", "valid", "rejected")} == {"rows": 10, "valid": 9, "rejected": 1}
    assert report["by_reason"]["usage"] == 1 and report["ok"] is False
    assert "exceeds" in result.stderr
    assert rejects.read_text().splitlines() == ["line,reason,detail", "10,usage,\"Usage 'Nope' is not one of Training, PublicTest, PrivateTest\""]

    ok = cli("check-csv", str(path), "--max-reject-fraction", "0.2", "--json")
    assert ok.returncode == 0 and json.loads(ok.stdout.splitlines()[-1])["ok"] is True


def test_check_csv_bad_file_is_a_clear_error(tmp_path):
    result = cli("check-csv", str(tmp_path / "missing.csv"))
    assert result.returncode == 2 and "missing.csv: no such file" in result.stderr


def test_check_csv_does_not_import_tensorflow(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text(f"emotion,pixels\n3,{PIXELS}\n")
    code = ("import sys; from cli.main import main; rc = main(['check-csv', %r]); "
            "assert 'tensorflow' not in sys.modules, 'tensorflow imported'; sys.exit(rc)" % str(path))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert result.returncode == 0, result.stderr


def test_demo_data_then_check_csv(tmp_path):
    out = tmp_path / "d" / "demo.csv.gz"
    made = cli("demo-data", "--output", str(out), "--rows", "50", "--seed", "1")
    assert made.returncode == 0, made.stderr
    checked = cli("check-csv", str(out), "--json")
    report = json.loads(checked.stdout.splitlines()[-1])
    assert checked.returncode == 0 and report["valid"] == 50 and report["by_split"]["eval"] == 5
    assert report["by_split"]["train"] + report["by_split"]["valid"] == 40 and report["by_split"]["test"] == 5


def test_run_help_lists_the_options():
    result = cli("run", "--help")
    for option in ("--data", "--output", "--epochs", "--batch-size", "--max-rows", "--model", "--beam-arg"):
        assert option in result.stdout
