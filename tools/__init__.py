"""Tools beside the pipeline, used by the CLI, the tests and the benchmarks: synthetic FER
data (`fer-pipeline demo-data`) and the evaluation of a pushed SavedModel on a FER CSV
(`fer-pipeline evaluate`). Not part of create_pipeline()."""
