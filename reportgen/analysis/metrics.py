"""Named scalar metrics of one run, shared by tables, bar charts, references and observers."""
from __future__ import annotations

from typing import Any, Callable

from reportgen.results import RunOutcome, RunResult


def final_accuracy(r: RunResult) -> float | None:
    return r.final.test_accuracy if r.final else None


def best_accuracy(r: RunResult) -> float | None:
    return max((e.test_accuracy for e in r.epochs), default=None)


def final_train_loss(r: RunResult) -> float | None:
    return r.final.train_loss if r.final else None


def final_test_loss(r: RunResult) -> float | None:
    return r.final.test_loss if r.final else None


def epochs_to_target(r: RunResult) -> int | str | None:
    """First epoch at the budget's target accuracy; 'not reached' when it never got there."""
    if r.budget.until_accuracy is None:
        return None
    return r.epochs_to(r.budget.until_accuracy) or "not reached"


def epochs_trained(r: RunResult) -> int:
    return len(r.epochs)


def seconds_per_epoch(r: RunResult) -> float | None:
    return sum(e.seconds for e in r.epochs) / len(r.epochs) if r.epochs else None


def params(r: RunResult) -> int:
    return r.params


def stop_reason(r: RunResult) -> str:
    return r.stop_reason


def outcome(r: RunResult) -> str:
    return r.stop_reason if r.diverged else "trained"


RUN_METRICS: dict[str, Callable[[RunResult], Any]] = {
    f.__name__: f for f in (final_accuracy, best_accuracy, final_train_loss, final_test_loss, epochs_to_target,
                            epochs_trained, seconds_per_epoch, params, stop_reason, outcome)
}

LABEL_COLUMNS = {"model": "model_label", "lr": "lr", "optimizer": "optimizer", "batch_size": "batch_size",
                 "shuffle": "shuffle", "dataset": "dataset"}

COLUMN_TITLES = {
    "model": "Model", "lr": "Learning rate", "optimizer": "Optimizer", "batch_size": "Batch", "shuffle": "Shuffled",
    "dataset": "Data set", "final_accuracy": "Final test acc. (%)", "best_accuracy": "Best test acc. (%)",
    "final_train_loss": "Final train loss", "final_test_loss": "Final test loss",
    "epochs_to_target": "Epoch reaching target", "epochs_trained": "Epochs trained",
    "seconds_per_epoch": "Seconds / epoch", "params": "Trainable parameters", "stop_reason": "Why it stopped",
    "outcome": "Outcome",
}


def column_value(outcome_: RunOutcome, column: str) -> Any:
    """A table cell: a run label (model, lr...) or a metric; None when the run is missing."""
    if column in LABEL_COLUMNS:
        return outcome_.planned.labels.get(LABEL_COLUMNS[column])
    if column not in RUN_METRICS:
        raise KeyError(f"unknown column {column!r}; known: {', '.join([*LABEL_COLUMNS, *RUN_METRICS])}")
    return RUN_METRICS[column](outcome_.result) if outcome_.result else None
