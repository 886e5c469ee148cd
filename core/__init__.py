"""The TF-free base every layer may import: the one home of feature keys, class names and shapes
(features.py) and of output and metric names (names.py), argparse value types (arg_types.py),
progress lines and durations (progress.py), and the console quieting that entry points apply
(quiet.py). Nothing here imports TensorFlow or any other package of the project."""
