"""Clients of the served FER model. They know TF Serving's API and core/features.py only:
never the pipeline, TFX or the trainer."""
