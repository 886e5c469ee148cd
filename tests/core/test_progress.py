"""core/progress.py: durations and the Trainer's epoch line."""

from core import progress


def test_durations_read_as_people_say_them():
    assert [progress.format_duration(s) for s in (0, 9.6, 65, 3599, 3600, 7384)] == \
        ["0s", "10s", "1m 05s", "59m 59s", "1h 00m", "2h 03m"]


def test_the_epoch_line_has_metrics_the_best_so_far_elapsed_and_time_left():
    line = progress.epoch_line(3, 60, {"loss": 1.25, "accuracy": 0.5, "val_loss": 1.3, "val_accuracy": 0.55,
                                       "learning_rate": 1e-4}, 0.56, 2, 195.0, [65.0, 65.0, 65.0], patience_left=7)
    assert line.startswith("[Trainer] epoch 3/60: loss 1.2500, accuracy 0.5000, val_loss 1.3000, val_accuracy 0.5500")
    assert "best val_accuracy 0.5600 (epoch 2)" in line and "3m 15s elapsed" in line
    assert "at most 1h 01m left (early stopping after 7 more without a new best)" in line  # 57 x 65 s
    assert "left" not in progress.epoch_line(60, 60, {"loss": 1.0}, None, None, 10.0, [10.0])
