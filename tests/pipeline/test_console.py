"""pipeline/console.py's StageReporter on a real MLMD store: a running stage gets its start
line and then a heartbeat line while it runs."""

import io
import time

from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2

from pipeline.console import StageReporter


def _store(path):
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = path
    config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
    return metadata_store.MetadataStore(config)


def test_a_running_stage_prints_a_heartbeat(tmp_path):
    path = str(tmp_path / "metadata.sqlite")
    store = _store(path)
    stream = io.StringIO()
    with StageReporter("fer", path, stream, heartbeat_s=0.4):
        node_type = store.put_context_type(metadata_store_pb2.ContextType(name="node"))
        run_type = store.put_execution_type(metadata_store_pb2.ExecutionType(name="Transform"))
        [context_id] = store.put_contexts([metadata_store_pb2.Context(type_id=node_type, name="fer.Transform")])
        execution = metadata_store_pb2.Execution(type_id=run_type,
                                                 last_known_state=metadata_store_pb2.Execution.RUNNING)
        store.put_execution(execution, artifact_and_events=[],
                            contexts=[metadata_store_pb2.Context(id=context_id, type_id=node_type,
                                                                 name="fer.Transform")])
        time.sleep(2.0)
    lines = stream.getvalue().splitlines()
    assert lines[0] == "==> Transform ..."
    beats = [line for line in lines[1:] if line.startswith("    Transform running, ")]
    assert 2 <= len(beats) <= 5 and beats[-1].endswith("s")
