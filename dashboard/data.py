"""From a run directory to the numbers on the dashboard.

The run is read by pipeline/run_reader.py (the one reader of a run, also behind the console
and the run report): its latest evaluation, blessing, validation failures and class-balance
report, and the evaluation's metrics and confusion matrices per slice. Here they are arranged
into the Report that dashboard/render.py draws. No TensorFlow graph is loaded.
"""

import dataclasses
import json
import os
from typing import Dict, List, Optional, Tuple

from core import names
from pipeline import run_reader
# Re-exported: the page, the CLI and notebooks/model_analysis.ipynb name them through this module.
from pipeline.run_reader import (BASELINE, CANDIDATE, SliceKey, SliceMetrics, latest_artifacts,  # noqa: F401
                                 read_evaluation, validation_failures)

ACCURACY, TOP2, MACRO_F1, ECE, COUNT = names.ACCURACY, names.TOP2_ACCURACY, names.MACRO_F1, names.ECE, names.EXAMPLE_COUNT
PER_CLASS = names.PER_CLASS_METRICS
DashboardError = run_reader.RunError  # the run directory does not hold what the dashboard needs


@dataclasses.dataclass
class Report:
    run_dir: str
    evaluation_uri: str
    slices: Dict[SliceKey, SliceMetrics]
    models: List[str]  # CANDIDATE, plus BASELINE when the evaluation compared against one
    blessed: Optional[bool]
    validation_failures: List[str]
    class_balance: Optional[dict]
    test_overall: Optional[SliceMetrics] = None  # PrivateTest's overall slice, when the data had it

    @property
    def has_baseline(self) -> bool:
        return BASELINE in self.models

    def slice(self, *pairs: Tuple[str, int]) -> Optional[SliceMetrics]:
        return self.slices.get(tuple(pairs))

    def bucket_slices(self, column: str, buckets: int) -> List[Optional[SliceMetrics]]:
        """One entry per bucket value, None where the slice has no examples."""
        return [self.slice((column, value)) for value in range(buckets)]


def load_report(run_dir: str, baseline: bool = True) -> Report:
    """baseline=False drops the baseline model's numbers (`--baseline none`). DashboardError
    when the directory holds no run or no evaluation."""
    found = latest_artifacts(os.path.abspath(run_dir))
    slices, models = read_evaluation(found["evaluation"])
    if not baseline:
        models = [CANDIDATE]
    class_balance = None
    if found["class_balance"]:
        path = os.path.join(found["class_balance"], names.CLASS_BALANCE_FILE)
        if os.path.exists(path):
            with open(path) as f:
                class_balance = json.load(f)
    test_overall = read_evaluation(found["test_evaluation"])[0].get(()) if found["test_evaluation"] else None
    return Report(run_dir=os.path.abspath(run_dir), evaluation_uri=found["evaluation"], slices=slices,
                  models=models, blessed=found["blessed"], validation_failures=validation_failures(found["evaluation"]),
                  class_balance=class_balance, test_overall=test_overall)
