"""The local server's defaults, TF-free (the CLI's help reads them)."""

from core import features

DEFAULT_HOST = "127.0.0.1"  # local only unless asked: this server has no authentication
DEFAULT_GRPC_PORT, DEFAULT_REST_PORT = features.TF_SERVING_GRPC_PORT, features.TF_SERVING_REST_PORT  # TF Serving's
DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024  # a frame's faces are a few KB; bounds a bad client
# Rows one request may carry: a frame holds a handful of faces. Bounds what one request can make
# the model allocate (the paper CNN's first activation is 0.5 MB a row in float32).
DEFAULT_MAX_BATCH_ROWS = 256
DEFAULT_MAX_BATCH_SIZE = 32  # --enable_batching: rows joined into one model call
DEFAULT_BATCH_TIMEOUT_S = 0.002  # --enable_batching: how long a request waits for others
DEFAULT_MAX_ENQUEUED_BATCHES = 100  # --enable_batching: batches waiting before UNAVAILABLE
DEFAULT_WORKERS = 8  # requests run at once, per API (REST, gRPC)
DEFAULT_QUEUED_REQUESTS = 32  # requests waiting for a worker, per API, before 503 / RESOURCE_EXHAUSTED
# Open REST connections; beyond, a new one evicts one with no request in flight (silent ones
# first), and only when all have one in flight is it answered 503. An idle connection costs the
# event loop a few KB (bench/results/serving_flood.md); the fd limit bounds it too (serve raises
# its soft limit to the hard one, and lowers the cap to what the limit leaves).
DEFAULT_MAX_CONNECTIONS = 4096
DEFAULT_FIRST_BYTE_TIMEOUT_S = 5.0  # a new connection that sends nothing in this time is closed
DEFAULT_READ_TIMEOUT_S = 10.0  # a request's headers and body must arrive within this, once begun
DEFAULT_IDLE_TIMEOUT_S = 30.0  # a kept-alive connection with no request is closed after this
DEFAULT_REQUEST_TIMEOUT_S = 30.0  # TF Serving's --rest_api_timeout_in_ms default (30000)
DEFAULT_POLL_SECONDS = 1.0  # TF Serving's --file_system_poll_wait_seconds default
