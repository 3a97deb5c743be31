"""Tables as pandas DataFrames: one row per run, per run and epoch, or per data-set class.

Cells hold raw values (CSV-ready); `format_value` turns them into text for the report.
`df.attrs["keys"]` names each column's quantity and `df.attrs["notes"]` holds footnotes.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from reportgen.analysis.aggregate import count_seeds, seed_values, seeds_text, target_epochs
from reportgen.analysis.metrics import METRICS, column_value, metric
from reportgen.analysis.naming import model_label, varying_fields
from reportgen.analysis.stats import summarize
from reportgen.analysis.wording import fmt_lr
from reportgen.results import RunOutcome

from reportgen.view_args import EpochTableArgs, TableArgs

if TYPE_CHECKING:
    import pandas as pd

    from reportgen.data import Split

NOT_RUN = "not run"
ACCURACY_KEYS = {"final_accuracy", "best_accuracy", "test_accuracy"}
LOSS_KEYS = {"final_train_loss", "final_test_loss", "train_loss", "test_loss", "first_logged_loss", "last_logged_loss"}
EPOCH_TITLES = {"epoch": "Epoch", "first_logged_loss": "Loss, first logged batch",
                "last_logged_loss": "Loss, last logged batch", "train_loss": "Mean train loss",
                "test_accuracy": "Test acc. (%)"}


def distinguishing_columns(columns: list[str], outcomes: list[RunOutcome]) -> list[str]:
    """Run fields that differ between the runs but are not among `columns` (e.g. the optimizer)."""
    return [f for f in varying_fields(o.planned for o in outcomes) if f in METRICS and f not in columns]


# ---------------------------------------------------------------- tables

@dataclass(frozen=True)
class Spread:
    """A table cell over seeds: the mean and standard deviation of a numeric metric (CSV: two columns)."""

    mean: float
    std: float
    n: int


def run_table(view: TableArgs, outcomes: list[RunOutcome]) -> pd.DataFrame:
    """One row per run (or grid point, over its seeds) with the view's columns; missing runs read 'not run'."""
    rows = [[_run_cell(o, column) for column in view.columns] for o in outcomes]
    notes = []
    if said := seeds_text(outcomes):
        notes.append(f"Each row is a setting trained with {said} seeds: numbers are mean ± standard deviation "
                     "over the seeds; the rows per seed are in the CSV file marked “seeds”.")
    return _frame(rows, list(view.columns), [metric(c).title for c in view.columns], notes)


def per_seed_table(view: TableArgs, outcomes: list[RunOutcome]) -> pd.DataFrame | None:
    """The same table with one row per seed (and a seed column); None when no row has several seeds."""
    if not any(count_seeds(o) > 1 for o in outcomes):
        return None
    seeds = [s for o in outcomes for s in getattr(o, "seeds", (o,))]
    columns = ["seed", *(c for c in view.columns if c != "seed")]
    return run_table(view.model_copy(update={"columns": columns}), seeds)


def _run_cell(outcome: RunOutcome, column: str) -> Any:
    entry = metric(column)
    if outcome.result is None and entry.kind != "label":
        return NOT_RUN
    if entry.kind == "run" and count_seeds(outcome) > 1:
        return _over_seeds(column, seed_values(outcome, entry.value))
    return column_value(outcome, column)


def _over_seeds(column: str, values: list[Any]) -> Any:
    """One cell for several seeds: mean ± std of numbers; a shared word, or each word with its count."""
    if column == "epochs_to_target":  # a count of epochs: the median and range say it best
        return _target_cell(values)
    numbers = [v for v in values if is_numeric(v)]
    if len(numbers) == len(values):
        if len(set(numbers)) == 1:
            return numbers[0]  # the same in every seed (a parameter count): no spread to show
        summary = summarize(numbers)
        return Spread(summary.mean, summary.std or 0.0, summary.n) if summary.n > 1 else summary.mean
    counts = {v: values.count(v) for v in dict.fromkeys(map(str, values))}
    if len(counts) == 1:
        return next(iter(counts))
    return ", ".join(f"{word} in {count} of {len(values)}" for word, count in counts.items())


def _target_cell(values: list[Any]) -> str:
    middle, count, n, reached = target_epochs(values)
    missed = n - count
    if not reached:
        return f"not reached ({n} of {n} seeds)"
    said = f"{middle:g} (median; {reached[0]}–{reached[-1]})" if reached[0] != reached[-1] else f"{middle:g}"
    return said + (f"; not reached in {missed} of {n}" if missed else "")


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
        seeds = [s for s in getattr(outcome, "seeds", (outcome,)) if s.result is not None]
        for k in range(len(outcome.result.epochs)):
            cells = [_epoch_cells(s.result.epochs[k], view.log_every) for s in seeds if len(s.result.epochs) > k]
            rows.append(labels + [k + 1, *(_over_seeds(key, list(values)) for key, values in
                                           zip(list(EPOCH_TITLES)[1:], zip(*cells)))])
        notes += [n for s in seeds[:1] for n in _logging_notes(s, view.log_every)]
        if len(seeds) > 1:
            notes.append(f"{model_label(outcome.planned)}: mean ± standard deviation over {len(seeds)} seeds.")
    titles = [metric(f).title if f in METRICS else f for f in fields] + list(EPOCH_TITLES.values())
    return _frame(rows, keys, titles, list(dict.fromkeys(notes)))


def _epoch_cells(e, log_every: int) -> tuple[Any, ...]:
    first, last = _logged_losses(e.step_losses, log_every)
    return first, last, e.train_loss, e.test_accuracy


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
    images = split_train.images  # (N, H, W) for one channel, (N, C, H, W) for several
    channels, height, width = (1, *images.shape[1:]) if images.dim() == 3 else tuple(images.shape[1:])
    shape = f"[{channels}, {height}, {width}]"
    rows = [["Images", len(split_train.labels), len(split_test.labels)],
            ["Shape of one image (C, H, W)", shape, shape]]
    train_counts = _class_counts(split_train)
    test_counts = _class_counts(split_test)
    for index, name in enumerate(split_train.classes):
        rows.append([f"{index}: {name}", train_counts[index], test_counts[index]])
    stored = " × ".join(map(str, images.shape))
    notes = [f"The shape is that of one image as ToTensor gives it: {channels} channel{'s' if channels > 1 else ''} "
             f"of {height} × {width} pixels "
             f"(the files store {split_train.images.dtype} arrays of {stored})."]
    if split_train.source:
        notes.append(f"Read from {split_train.source}.")
    return _frame(rows, ["row", "train", "test"], ["", "Training", "Test"], notes)


def _class_counts(split: Split) -> list[int]:
    return [int(c) for c in split.labels.bincount(minlength=len(split.classes))]


def _frame(rows: list[list[Any]], keys: list[str], titles: list[str], notes: list[str]) -> pd.DataFrame:
    import pandas as pd  # heavy: imported when a table is made, so loading a spec (views.py) stays light

    frame = pd.DataFrame(rows, columns=titles, dtype=object)  # object: keep None apart from NaN
    frame.attrs["keys"] = keys
    frame.attrs["notes"] = notes
    return frame


# ---------------------------------------------------------------- formatting

def format_value(key: str, value: Any) -> str:
    """A cell as text: accuracies with 2 decimals, losses with 4 significant digits, counts with separators."""
    if value is None:
        return "—"
    if isinstance(value, Spread):
        mean = format_value(key, value.mean)
        decimals = len(mean.split(".")[1]) if "." in mean and "e" not in mean else 0
        return f"{mean} ± {value.std:,.{decimals}f}"  # the spread to the mean's last digit
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
    return isinstance(value, (int, float, Spread)) and not isinstance(value, bool)


def is_numeric_text(text: str) -> bool:
    """A formatted cell that reads as a number ('87.30', '1,234', '—'), for right-aligning it."""
    return text == "—" or bool(re.fullmatch(r"[−+-]?[\d,.]+(e[−+-]?\d+)?( ± [\d,.]+)?", text))


def write_csv(frame: pd.DataFrame, path) -> None:
    """The table's raw values; missing cells empty, non-finite numbers as nan/inf."""
    _spread_as_columns(frame).map(lambda v: "" if v is None else v).to_csv(path, index=False, na_rep="nan")


def _spread_as_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean ± std cells become two numeric CSV columns, '<title> (mean)' and '<title> (std)'."""
    import pandas as pd

    out = pd.DataFrame(index=frame.index)
    for title in frame.columns:
        column = frame[title]
        if any(isinstance(v, Spread) for v in column):
            out[f"{title} (mean)"] = [v.mean if isinstance(v, Spread) else v for v in column]
            out[f"{title} (std)"] = [v.std if isinstance(v, Spread) else (0.0 if is_numeric(v) else None) for v in column]
        else:
            out[title] = column
    return out
