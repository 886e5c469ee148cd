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


def test_check_data_reports_splits_rejects_duplicates_leaks_and_json(tmp_path):
    import shutil

    from tools import demo_data

    demo_data.write_demo_tree(str(tmp_path / "faces"), 60, seed=2)
    happy = sorted((tmp_path / "faces" / "train" / "happy").glob("*.png"))
    shutil.copy(happy[0], tmp_path / "faces" / "test" / "happy" / "again.png")  # a duplicate and a leak
    (tmp_path / "faces" / "train" / "sad" / "broken.jpg").write_bytes(b"\xff\xd8\xff")
    text = cli("check-data", str(tmp_path / "faces"))
    assert text.returncode == 1  # 1 of 62 rejected: above the default 0.1 %
    assert "files=62 valid=61 rejected=1" in text.stdout and "duplicates=1 leaks=1" in text.stdout
    assert "rejected train/sad/broken.jpg: corrupt" in text.stdout and "exceeds" in text.stderr
    assert "leak: test/happy/again.png (test) = train/happy/" in text.stdout
    rejects = tmp_path / "rejects.csv"
    js = cli("check-data", str(tmp_path / "faces"), "--json", "--max-reject-fraction", "0.05", "--rejects", str(rejects))
    assert js.returncode == 0, js.stderr
    report = json.loads(js.stdout)  # the whole of stdout
    assert report["ok"] is True and report["valid"] == 61 and report["rows"] == 62
    assert sum(report["by_split_emotion"]["test"].values()) == report["by_split"]["test"]
    assert [r["file"] for r in report["rejects"]] == ["train/sad/broken.jpg"]
    assert report["leaks"][0]["file"] == "test/happy/again.png"
    assert rejects.read_text().splitlines()[1].startswith("train/sad/broken.jpg,corrupt,")


def test_check_data_does_not_import_tensorflow(tmp_path):
    from tools import demo_data

    demo_data.write_demo_tree(str(tmp_path / "faces"), 30, seed=3)
    code = ("import sys; from cli.main import main; rc = main(['check-data', %r]); "
            "assert 'tensorflow' not in sys.modules, 'tensorflow imported'; sys.exit(rc)" % str(tmp_path / "faces"))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert result.returncode == 0, result.stderr


def test_check_data_says_in_one_line_that_a_decoding_worker_failed(tmp_path, monkeypatch, capsys):
    from cli.main import main
    from components.fer_image_gen import decoding, folders
    from tools import demo_data

    demo_data.write_demo_tree(str(tmp_path / "faces"), 10, seed=3)

    def dying(*args, **kwargs):
        raise decoding.WorkerError("decoding worker 1 (pid 42, exit code -9): ended while decoding a batch")

    monkeypatch.setattr(folders, "scan", dying)
    assert main(["check-data", str(tmp_path / "faces")]) == 1
    err = capsys.readouterr().err
    assert err == "error: decoding worker 1 (pid 42, exit code -9): ended while decoding a batch\n"


def test_demo_data_images_then_check_data(tmp_path):
    made = cli("demo-data", "--images", "jpg", "--rows", "40", "--no-usage", "--output", str(tmp_path / "faces"))
    assert made.returncode == 0, made.stderr
    report = json.loads(cli("check-data", str(tmp_path / "faces"), "--json").stdout)
    assert report["valid"] == 40 and report["layout"].startswith("emotions")
