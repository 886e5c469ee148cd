"""Every bad input a user can give the commands: one line that names what was wrong, a
non-zero exit, never a traceback (run as a user would, in a subprocess)."""

import gzip
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

PIXELS = " ".join(["7"] * 2304)
# A user's environment: the test suite's own TF_CPP_MIN_LOG_LEVEL (tests/conftest.py) left out.
USER_ENV = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}


def command(*args, module="cli.main"):
    result = subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, cwd=REPO,
                            timeout=300, env=USER_ENV)
    return result.returncode, [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]


def assert_one_line_error(rc, lines, expected_rc, *names):
    assert rc == expected_rc, lines
    assert not any("Traceback" in line for line in lines), lines
    assert len(lines) == 1, lines
    for name in names:
        assert name in lines[0], lines


@pytest.fixture
def files(tmp_path):
    complete = gzip.compress(f"emotion,pixels,Usage\n0,{PIXELS},Training\n".encode())
    truncated = tmp_path / "cut.csv.gz"
    truncated.write_bytes(complete[:15])  # cut inside the header
    header_only = tmp_path / "header.csv"
    header_only.write_text("emotion,pixels,Usage\n")
    good = tmp_path / "good.csv"
    good.write_text(f"emotion,pixels,Usage\n0,{PIXELS},Training\n")
    empty_run = tmp_path / "run"
    empty_run.mkdir()
    (empty_run / "metadata.sqlite").write_bytes(b"")
    return {"truncated": str(truncated), "header_only": str(header_only), "good": str(good), "dir": str(tmp_path),
            "empty_run": str(empty_run)}


CASES = [  # (id, arguments with {file} placeholders, module, exit code, names the line must hold)
    ("check-csv gzip cut in its header", ["check-csv", "{truncated}"], "cli.main", 2,
     ["{truncated}", "cannot read the header"]),
    ("check-csv header only", ["check-csv", "{header_only}"], "cli.main", 1, ["{header_only}", "no data rows"]),
    ("check-csv rejects into a missing folder", ["check-csv", "{good}", "--rejects", "{dir}/missing/r.csv"],
     "cli.main", 2, ["--rejects", "{dir}/missing"]),
    ("check-csv fraction above 1", ["check-csv", "{good}", "--max-reject-fraction", "2"], "cli.main", 2,
     ["--max-reject-fraction", "2"]),
    ("demo-data 0 rows", ["demo-data", "--rows", "0", "--output", "{dir}/d.csv"], "cli.main", 2, ["--rows", "0"]),
    ("demo-data output is a folder", ["demo-data", "--rows", "3", "--output", "{dir}"], "cli.main", 2,
     ["--output", "{dir}", "folder"]),
    ("kubeflow compile unknown model", ["kubeflow", "compile", "--output", "{dir}/p.json", "--model", "nope"],
     "cli.main", 2, ["--model", "'nope'"]),
    ("run 0 rows", ["run", "--data", "{good}", "--output", "{dir}/o", "--max-rows", "0"], "cli.main", 2,
     ["--max-rows", "0"]),
    ("run fraction above 1", ["run", "--data", "{good}", "--output", "{dir}/o", "--max-reject-fraction", "2"],
     "cli.main", 2, ["--max-reject-fraction", "2"]),
    ("run data is a folder that is no data set", ["run", "--data", "{dir}", "--output", "{dir}/o"], "cli.main", 2,
     ["--data", "{dir}", "folder(s) run", "neither splits nor emotions"]),
    ("run data does not exist", ["run", "--data", "{dir}/nope", "--output", "{dir}/o"], "cli.main", 2,
     ["--data", "{dir}/nope", "no such file or folder"]),
    ("run warm start that is no model", ["run", "--data", "{good}", "--output", "{dir}/o", "--warm-start",
                                         "{dir}"], "cli.main", 2, ["--warm-start", "{dir}", "no saved_model.pb"]),
    ("run teacher that is no model", ["run", "--data", "{good}", "--output", "{dir}/o", "--teacher",
                                      "shipped,{dir}"], "cli.main", 2, ["--teacher", "{dir}", "no saved_model.pb"]),
    ("run teacher list with an empty entry", ["run", "--data", "{good}", "--output", "{dir}/o", "--teacher",
                                              "shipped,"], "cli.main", 2, ["--teacher", "separated by commas"]),
    ("run teacher that is an empty string", ["run", "--data", "{good}", "--output", "{dir}/o", "--teacher", ""],
     "cli.main", 2, ["--teacher", "give one or more SavedModels"]),
    ("run distillation settings without a teacher", ["run", "--data", "{good}", "--output", "{dir}/o",
                                                     "--distill-alpha", "0.3"], "cli.main", 2,
     ["--distill-alpha without --teacher"]),
    ("run teacher with class weights", ["run", "--data", "{good}", "--output", "{dir}/o", "--teacher", "shipped",
                                        "--class-weights"], "cli.main", 2, ["--class-weights with --teacher"]),
    ("kubeflow compile teacher list with an empty entry", ["kubeflow", "compile", "--output", "{dir}/p.json",
                                                           "--teacher", "shipped,,gs://b/m"], "cli.main", 2,
     ["--teacher", "separated by commas"]),
    ("run Beam argument Beam refuses", ["run", "--data", "{good}", "--output", "{dir}/o",
                                        "--beam-arg=--direct_num_workers=two"], "cli.main", 2,
     ["--beam-arg", "--direct_num_workers", "'two'"]),
    ("kubeflow compile Beam argument Beam refuses", ["kubeflow", "compile", "--output", "{dir}/p.json",
                                                     "--beam-arg=--direct_num_workers=two"], "cli.main", 2,
     ["--beam-arg", "--direct_num_workers", "'two'"]),
    ("check-data on a folder that is no data set", ["check-data", "{dir}"], "cli.main", 2,
     ["{dir}", "folder(s) run", "accepted"]),
    ("check-data on a file", ["check-data", "{good}"], "cli.main", 2, ["{good}", "not a folder"]),
    ("dashboard on an empty metadata.sqlite", ["dashboard", "--run", "{empty_run}", "--output", "{dir}/d.html"],
     "cli.main", 2, ["{empty_run}/metadata.sqlite"]),
    ("serve port out of range", ["serve", "--port", "99999"], "cli.main", 2, ["--port", "99999"]),
    ("predict misspelt flag", ["predict", "{good}", "--jsn"], "cli.main", 2,
     ["unrecognized arguments: --jsn", "(see fer-pipeline predict --help)"]),
    ("kubeflow compile misspelt flag", ["kubeflow", "compile", "--output", "{dir}/p.json", "--imgae", "x"], "cli.main",
     2, ["--imgae", "(see fer-pipeline kubeflow compile --help)"]),
    ("fer-webcam timeline into a missing folder", ["--source", "{good}", "--timeline", "{dir}/missing/t.csv"],
     "client.webcam", 2, ["--timeline", "{dir}/missing"]),
    ("fer-webcam smoothing 0", ["--smoothing", "0"], "client.webcam", 2, ["--smoothing", "0"]),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line(files, case):
    _, args, module, rc, names = case
    rc_got, lines = command(*[a.format(**files) for a in args], module=module)
    assert_one_line_error(rc_got, lines, rc, *[n.format(**files) for n in names])


def test_json_output_is_one_document_on_stdout(files):
    import json

    result = subprocess.run([sys.executable, "-m", "cli.main", "check-csv", files["good"], "--json"],
                            capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 0
    assert json.loads(result.stdout)["valid"] == 1  # the whole of stdout parses
    assert files["good"] in result.stderr  # the human summary went to stderr


@pytest.mark.parametrize("module", ["cli.main", "client.webcam"])
def test_version(module):
    result = subprocess.run([sys.executable, "-m", module, "--version"], capture_output=True, text=True, cwd=REPO,
                            timeout=120)
    assert result.returncode == 0 and result.stdout.split()[0] in ("fer-pipeline", "fer-webcam")
    assert result.stdout.split()[1][0].isdigit() or "not installed" in result.stdout


def test_the_first_lines_of_a_run_are_the_project_s_own(files, tmp_path):
    """TensorFlow's start-up lines and google-api's warnings go to the run's log file."""
    result = subprocess.run([sys.executable, "-m", "cli.main", "run", "--data", files["header_only"], "--output",
                             str(tmp_path / "out")], capture_output=True, text=True, cwd=REPO, timeout=600,
                            env=USER_ENV)
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert result.returncode == 1
    assert lines[0].startswith("FER pipeline: data ")
    assert not any("tensorflow" in line or "FutureWarning" in line or "Traceback" in line for line in lines), lines
    assert lines[-1].startswith("error: the pipeline run failed: ValueError: FerExampleGen: no valid rows")
    (log,) = os.listdir(tmp_path / "out" / "logs")
    text = (tmp_path / "out" / "logs" / log).read_text()
    assert "cpu_feature_guard" in text and "Traceback" in text  # kept, in the log: TensorFlow's lines, the traceback


def test_every_option_with_a_default_shows_it_in_help():
    import argparse

    from cli.main import build_parser
    from client.webcam import build_parser as webcam_parser

    def missing(parser, name):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub, child in action.choices.items():
                    yield from missing(child, f"{name} {sub}")
            elif (action.option_strings and action.default not in (None, False, argparse.SUPPRESS)
                  and not isinstance(action, argparse._VersionAction)
                  and "default" not in (action.help or "").lower()):
                yield f"{name} {action.option_strings[0]} (default {action.default!r})"

    assert not list(missing(build_parser(), "fer-pipeline")) + list(missing(webcam_parser(), "fer-webcam"))
