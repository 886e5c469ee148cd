"""Image-folder ingestion: the folder reader (no TensorFlow) and the TFX ExampleGen."""
