"""The TFMA slicing dashboard: one self-contained HTML page from a run's Evaluator output."""
