"""`fer-pipeline serve`: the local server speaking TF Serving's API.

Production serving is TF Serving itself (serving/ holds its configuration). This server
exists because `tensorflow_model_server` installs from no package registry these machines
reach, while this runs wherever Python and TensorFlow do: development, tests, benchmarks.
It serves one model from a TF Serving model base path (<base>/<version>/saved_model.pb),
the newest version, and picks up newly pushed versions while running.
"""

import dataclasses
import logging
import signal
import threading
from typing import Optional

from serving import grpc_server, rest
from serving.batching import Batcher
from serving.model_store import ModelStore

from serving.defaults import (DEFAULT_BATCH_TIMEOUT_S, DEFAULT_GRPC_PORT, DEFAULT_HOST,  # noqa: E402,F401
                              DEFAULT_MAX_BATCH_SIZE, DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_REST_PORT)


@dataclasses.dataclass
class RunningServer:
    store: ModelStore
    grpc: object
    rest: Optional[object]
    grpc_port: int
    rest_port: Optional[int]

    def stop(self) -> None:
        self.grpc.stop(grace=2).wait()
        if self.rest is not None:
            self.rest.shutdown()
            self.rest.server_close()
        self.store.stop()


def start(model_base_path: str, model_name: str = "fer", host: str = DEFAULT_HOST,
          grpc_port: int = DEFAULT_GRPC_PORT, rest_port: Optional[int] = DEFAULT_REST_PORT,
          max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES, poll_seconds: float = 1.0,
          enable_batching: bool = False, max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
          batch_timeout_s: float = DEFAULT_BATCH_TIMEOUT_S) -> RunningServer:
    """Port 0 picks a free port (tests); rest_port None leaves REST off. enable_batching:
    Predict requests are batched server-side (serving/batching_parameters.txt's values)."""
    batcher = Batcher(max_batch_size, batch_timeout_s) if enable_batching else None
    store = ModelStore(model_name, model_base_path, poll_seconds=poll_seconds, batcher=batcher)
    store.start()
    grpc = grpc_server.start(store, host, grpc_port, max_message_bytes)
    http = rest.start(store, host, rest_port, max_message_bytes) if rest_port is not None else None
    return RunningServer(store, grpc, http, grpc.bound_port, http.server_address[1] if http else None)


def serve_forever(**kwargs) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    server = start(**kwargs)
    current = server.store.get(server.store.model_name)
    logging.info("serving %s version %d from %s: gRPC %s:%d%s", server.store.model_name, current.version,
                 server.store.base_path, kwargs.get("host", DEFAULT_HOST), server.grpc_port,
                 f", REST :{server.rest_port}" if server.rest_port else "")
    stopped = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopped.set())
    stopped.wait()
    server.stop()
