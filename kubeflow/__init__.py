"""Kubeflow Pipelines v2 / Vertex AI Pipelines: compile create_pipeline() and submit it."""
