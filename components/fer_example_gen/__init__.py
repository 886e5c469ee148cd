"""FER-2013 CSV ingestion: the row parser (no TensorFlow) and the TFX ExampleGen."""
