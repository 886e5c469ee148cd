import io
import os

import pytest

@pytest.fixture(scope="session")
def direct_run(demo_csv, tmp_path_factory):
    """The data stages on the default Beam configuration (DirectRunner, in_memory at this
    size): (pipeline_root, console output). The baseline of the Beam-configuration tests."""
    from pipeline import local_runner
    from pipeline.options import PipelineOptions

    out = str(tmp_path_factory.mktemp("direct"))
    stream = io.StringIO()
    local_runner.run(demo_csv, out, PipelineOptions(enable_training=False), stream=stream)
    return os.path.join(out, "pipeline_root"), stream.getvalue()
