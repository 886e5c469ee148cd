"""docs/beam.md's worked Beam argument sets (Dataflow, Flink, Spark) use only options Beam's
own parser knows: a misspelt option would be dropped by Beam with a warning at run time."""

import re
from pathlib import Path

from apache_beam.options.pipeline_options import PipelineOptions

BEAM_DOC = Path(__file__).resolve().parents[2] / "docs" / "beam.md"


def documented_sets():
    section = BEAM_DOC.read_text()
    sets, current = {}, None
    for line in section.splitlines():
        heading = re.match(r"# (Dataflow|Flink|Spark)\b", line)
        if heading:
            current = sets.setdefault(heading.group(1), [])
        elif current is not None and line.startswith("--beam-arg="):
            current += re.findall(r"--beam-arg=(\S+)", line)
    return sets


def test_every_documented_beam_option_is_known_to_beam():
    sets = documented_sets()
    assert set(sets) == {"Dataflow", "Flink", "Spark"}
    for name, args in sets.items():
        assert len(args) >= 3, name
        options = PipelineOptions(args)
        unknown = set(options.get_all_options(retain_unknown_options=True)) - set(options.get_all_options())
        assert not unknown, (name, unknown)
        parsed = options.get_all_options()
        runner = {"Dataflow": "DataflowRunner", "Flink": "PortableRunner", "Spark": "PortableRunner"}[name]
        assert parsed["runner"] == runner
        if runner == "PortableRunner":  # the SDK worker pool beside each task manager / executor
            assert parsed["job_endpoint"] and parsed["environment_type"] == "EXTERNAL"
            assert parsed["environment_config"] == "localhost:50000"
