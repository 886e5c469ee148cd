"""Progress lines for long work (TF-free, plain functions): durations as people read them,
and the Trainer's line per epoch with the time spent, the time left and the best validation
accuracy so far."""

from typing import Dict, Optional, Sequence


def format_duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def epoch_line(epoch: int, epochs: int, logs: Dict[str, float], best: Optional[float], best_epoch: Optional[int],
               elapsed_s: float, epoch_seconds: Sequence[float], patience_left: Optional[int] = None) -> str:
    """`epoch` counts from 1. The time left is the epochs left at the mean epoch time so far:
    an upper bound, since early stopping may end the run sooner (`patience_left` epochs
    without a new best would)."""
    metrics = ", ".join(f"{name} {logs[name]:.4f}" for name in ("loss", "accuracy", "val_loss", "val_accuracy")
                        if name in logs)
    line = f"[Trainer] epoch {epoch}/{epochs}: {metrics}"
    if best is not None:
        line += f"; best val_accuracy {best:.4f} (epoch {best_epoch})"
    mean = sum(epoch_seconds) / len(epoch_seconds) if epoch_seconds else 0.0
    line += f"; {format_duration(elapsed_s)} elapsed"
    if epoch < epochs:
        line += f", at most {format_duration(mean * (epochs - epoch))} left"
        if patience_left is not None and patience_left < epochs - epoch:
            line += f" (early stopping after {patience_left} more without a new best)"
    return line
