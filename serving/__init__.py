"""Serving the pushed model: TF Serving configuration (production) and a local server that
speaks TF Serving's gRPC and REST API (development and tests)."""
