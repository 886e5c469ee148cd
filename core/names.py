"""The names more than one module reads or writes, in one TF-free place: files inside
artifacts, properties on artifacts, and metric names. The components that write them, the
Trainer, the run report, the Evaluator's config, the dashboard and the benchmarks import
them from here; tests/test_names.py fails on a quoted copy anywhere else.

(Feature keys, class names, splits and shapes have their own home: core/features.py.)
"""

# ---- files inside artifacts --------------------------------------------------------------
REJECTS_FILE = "rejects.csv"  # FerRejects: the rows FerExampleGen refused (file,line,reason,detail)
REJECTS_SUMMARY_FILE = "summary.json"  # FerRejects: rows by split and reject reason
DUPLICATES_FILE = "duplicates.csv"  # FerRejects of FerImageGen: kind,file,split,first_file,first_split
CLASS_BALANCE_FILE = "class_balance.json"  # ClassBalance: shares, imbalance, drift, class weights
TRAINING_SUMMARY_FILE = "training_summary.json"  # ModelRun: the Trainer's epochs, history, config
SCHEMA_FILE = "schema.pbtxt"  # TFX's name inside a Schema artifact; schema/ uses it too

# ---- properties on artifacts (MLMD custom properties) ------------------------------------
EXAMPLE_SPLITS_PROPERTY = "example_splits"  # ModelEvaluation: JSON list of the splits measured
SKIPPED_PROPERTY = "skipped"  # ModelEvaluation: 1 when none of the wanted splits existed
REUSED_VERSION_PROPERTY = "reused_existing_version"  # PushedModel: 1 when the same model was already served
# Model of WarmStart (components/warm_start): --warm-start as given, the SavedModel it resolved
# to where the task ran, and that folder's name (the version a base path's newest was)
WARM_START_SOURCE_PROPERTY = "warm_start_source"
WARM_START_SAVED_MODEL_PROPERTY = "warm_start_saved_model"
WARM_START_VERSION_PROPERTY = "warm_start_version"
# Model of Teacher (components/teacher): JSON list of the SavedModels --teacher resolved to
TEACHER_SAVED_MODELS_PROPERTY = "teacher_saved_models"
# TFX's own, restated for the readers that do not import TFX (tests/test_names.py checks them)
BLESSED_PROPERTY = "blessed"  # ModelBlessing
PUSHED_PROPERTY = "pushed"  # PushedModel
PUSHED_DESTINATION_PROPERTY = "pushed_destination"  # PushedModel

# ---- metric names: TFMA's keys in an evaluation, Keras' in a training history ------------
ACCURACY = "sparse_categorical_accuracy"  # TFMA's SparseCategoricalAccuracy
TOP2_ACCURACY = "top2_accuracy"  # TFMA (eval_config) and Keras (trainer) alike
MACRO_F1 = "macro_f1"
MAJORITY_LIFT = "accuracy_over_majority"  # accuracy minus the most frequent class's share
ECE = "expected_calibration_error"
EXAMPLE_COUNT = "example_count"
PER_CLASS_METRICS = ("precision", "recall", "f1_score")  # TFMA's names, one value per class id

# The face detectors by name (client/detectors.py builds them and loads OpenCV; the CLI and
# pipeline/options.py offer the names without loading it). A new detector: its class in
# client/detectors.py and its name here.
DETECTOR_NAMES = ("haar", "blazeface", "mtcnn")

# The names tests/test_names.py looks for in string literals: distinctive enough that a
# match is a copy. ("skipped", "blessed", "pushed" are also ordinary words and JSON keys.)
DISTINCTIVE = (REJECTS_FILE, REJECTS_SUMMARY_FILE, DUPLICATES_FILE, CLASS_BALANCE_FILE, TRAINING_SUMMARY_FILE, SCHEMA_FILE,
               EXAMPLE_SPLITS_PROPERTY, REUSED_VERSION_PROPERTY, PUSHED_DESTINATION_PROPERTY, WARM_START_SOURCE_PROPERTY,
               WARM_START_SAVED_MODEL_PROPERTY, WARM_START_VERSION_PROPERTY, ACCURACY,
               TOP2_ACCURACY, MACRO_F1, MAJORITY_LIFT, ECE, EXAMPLE_COUNT)
