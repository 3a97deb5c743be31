"""Tables as pandas DataFrames: one row per run, per run and epoch, or per data-set class.

Cells hold raw values (CSV-ready); `format_value` turns them into text for the report.
`df.attrs["keys"]` names each column's quantity and `df.attrs["notes"]` holds footnotes.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import pandas as pd

from reportgen.analysis.metrics import METRICS, column_value, metric
from reportgen.analysis.naming import model_label, varying_fields
from reportgen.analysis.wording import fmt_lr
from reportgen.results import RunOutcome

if TYPE_CHECKING:
    from reportgen.data import Split
    from reportgen.views import EpochTableArgs, TableArgs

NOT_RUN = "not run"
ACCURACY_KEYS = {"final_accuracy", "best_accuracy", "test_accuracy"}
LOSS_KEYS = {"final_train_loss", "final_test_loss", "train_loss", "test_loss", "first_logged_loss", "last_logged_loss"}
EPOCH_TITLES = {"epoch": "Epoch", "first_logged_loss": "Loss, first logged batch",
                "last_logged_loss": "Loss, last logged batch", "train_loss": "Mean train loss",
                "test_accuracy": "Test acc. (%)"}


# ---------------------------------------------------------------- tables

def run_table(view: TableArgs, outcomes: list[RunOutcome]) -> pd.DataFrame:
    """One row per run with the view's columns; a missing run's metrics read 'not run'."""
    rows = [[_run_cell(o, column) for column in view.columns] for o in outcomes]
    return _frame(rows, list(view.columns), [metric(c).title for c in view.columns], [])


def _run_cell(outcome: RunOutcome, column: str) -> Any:
    if outcome.result is None and metric(column).kind != "label":
        return NOT_RUN
    return column_value(outcome, column)


def epoch_table(view: EpochTableArgs, outcomes: list[RunOutcome]) -> pd.DataFrame:
    """Per run and epoch: the loss at the first and last logged batch, the mean loss, the accuracy."""
    fields = ["model"] + [f for f in varying_fields(o.planned for o in outcomes) if f != "model"]
    keys = fields + list(EPOCH_TITLES)
    rows, notes = [], []
    for outcome in outcomes:
        labels = [_label_value(outcome, f) for f in fields]
        if outcome.result is None:
            rows.append(labels + [NOT_RUN] * len(EPOCH_TITLES))
            continue
        for e in outcome.result.epochs:
            first, last = _logged_losses(e.step_losses, view.log_every)
            rows.append(labels + [e.epoch, first, last, e.train_loss, e.test_accuracy])
        notes += _logging_notes(outcome, view.log_every)
    titles = [metric(f).title if f in METRICS else f for f in fields] + list(EPOCH_TITLES.values())
    return _frame(rows, keys, titles, list(dict.fromkeys(notes)))


def _label_value(outcome: RunOutcome, field: str) -> Any:
    return column_value(outcome, field) if field in METRICS else outcome.planned.labels.get(field)


def logged_steps(steps: int, log_every: int) -> tuple[int, int] | None:
    """1-based numbers of the first and last logged batch of an epoch with `steps` batches."""
    if steps == 0:
        return None
    if steps < log_every:
        return 1, steps
    return log_every, steps // log_every * log_every


def _logged_losses(step_losses: list[float], log_every: int) -> tuple[float | None, float | None]:
    steps = logged_steps(len(step_losses), log_every)
    if steps is None:
        return None, None
    return step_losses[steps[0] - 1], step_losses[steps[1] - 1]


def _logging_notes(outcome: RunOutcome, log_every: int) -> list[str]:
    name = model_label(outcome.planned)
    notes = []
    for n in dict.fromkeys(len(e.step_losses) for e in outcome.result.epochs):
        steps = logged_steps(n, log_every)
        if steps is None:
            notes.append(f"{name}: per-batch losses were not recorded.")
        elif n < log_every:
            notes.append(f"{name}: an epoch has only {n} batches, fewer than the {log_every} between logs, "
                         f"so the losses at batch 1 and batch {n} are shown.")
        elif steps[0] == steps[1]:
            notes.append(f"{name}: losses logged every {log_every} batches; of {n} batches per epoch only batch "
                         f"{steps[0]} is logged, so both columns show it.")
        else:
            notes.append(f"{name}: losses logged every {log_every} batches; batches {steps[0]} and {steps[1]} "
                         f"of {n} per epoch are shown.")
    return notes


def dataset_table(split_train: Split, split_test: Split) -> pd.DataFrame:
    """Split sizes, the shape of one image as a tensor (C, H, W), and the images per class."""
    shape = "[" + ", ".join(str(s) for s in (1, *split_train.images.shape[1:])) + "]"
    rows = [["Images", len(split_train.labels), len(split_test.labels)],
            ["Shape of one image (C, H, W)", shape, shape]]
    train_counts = _class_counts(split_train)
    test_counts = _class_counts(split_test)
    for index, name in enumerate(split_train.classes):
        rows.append([f"{index}: {name}", train_counts[index], test_counts[index]])
    height, width = split_train.images.shape[1:]
    stored = " × ".join(map(str, split_train.images.shape))
    notes = [f"The shape is that of one image as ToTensor gives it: 1 channel of {height} × {width} pixels "
             f"(the files store {split_train.images.dtype} arrays of {stored})."]
    if split_train.source:
        notes.append(f"Read from {split_train.source}.")
    return _frame(rows, ["row", "train", "test"], ["", "Training", "Test"], notes)


def _class_counts(split: Split) -> list[int]:
    return [int(c) for c in split.labels.bincount(minlength=len(split.classes))]


def _frame(rows: list[list[Any]], keys: list[str], titles: list[str], notes: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=titles, dtype=object)  # object: keep None apart from NaN
    frame.attrs["keys"] = keys
    frame.attrs["notes"] = notes
    return frame


# ---------------------------------------------------------------- formatting

def format_value(key: str, value: Any) -> str:
    """A cell as text: accuracies with 2 decimals, losses with 4 significant digits, counts with separators."""
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "yes" if value else "no"
    if key == "lr":
        return fmt_lr(value)
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("∞" if value > 0 else "−∞")
    if key in ACCURACY_KEYS:
        return f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return significant(value, 4 if key in LOSS_KEYS else 3)


def significant(value: float, digits: int) -> str:
    """`value` with `digits` significant digits, trailing zeros kept; scientific when tiny or huge."""
    if value == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(value)))
    if magnitude >= 6 or magnitude < -4:
        return f"{value:.{digits - 1}e}"
    return f"{value:.{max(digits - 1 - magnitude, 0)}f}"


def is_numeric(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def write_csv(frame: pd.DataFrame, path) -> None:
    """The table's raw values; missing cells empty, non-finite numbers as nan/inf."""
    frame.map(lambda v: "" if v is None else v).to_csv(path, index=False, na_rep="nan")
