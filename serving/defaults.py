"""The local server's defaults, TF-free (the CLI's help reads them)."""

DEFAULT_HOST = "127.0.0.1"  # local only unless asked: this server has no authentication
DEFAULT_GRPC_PORT, DEFAULT_REST_PORT = 8500, 8501  # TF Serving's ports
DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024  # a frame's faces are a few KB; bounds a bad client
DEFAULT_MAX_BATCH_SIZE = 32  # --enable_batching: rows joined into one model call
DEFAULT_BATCH_TIMEOUT_S = 0.002  # --enable_batching: how long a request waits for others
