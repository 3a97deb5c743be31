"""Run naming: the one vocabulary for a run in words, used by tables, figure legends, prose, the reproduction
check, the report's run lists, progress lines and executor messages.

A field in words (`field_text`: 'lr 0.1', 'SGD', 'shuffled', 'batch 64'), the model's label (`model_label`), a run's
name from the fields that tell it apart (`run_name`, `describe_run`, `name_runs`), a budget in words
(`describe_budget`), and the one-line form for logs (`log_name`: 'mlp lr=0.1 seed=0').
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping

from reportgen.results import Budget, PlannedRun, RunOutcome

# Run fields that tell runs apart in legends and tables, in the order they are named.
LABEL_FIELDS = ("model", "optimizer", "lr", "batch_size", "shuffle", "dataset", "train_subset", "test_subset",
                "image_size", "seed")
# Run fields prose names when they differ between runs of one model (seeds are summarised, not named).
PROSE_FIELDS = ("lr", "optimizer", "batch_size", "shuffle", "dataset")
FIELD_WORDS = {"batch_size": "batch", "train_subset": "train subset", "test_subset": "test subset",
               "image_size": "input", "dataset": "data"}
OPTIMIZER_NAMES = {"sgd": "SGD", "adam": "Adam"}


def lr_text(value: float) -> str:
    """A learning rate without trailing zeros: 1.0 → '1', 0.0010 → '0.001' (wording.fmt_lr adds NaN and infinity)."""
    return f"{value:.10f}".rstrip("0").rstrip(".") or f"{value:g}"


def model_label(planned: PlannedRun) -> str:
    """The model preset's label ('Tutorial MLP'), else its name, else the start of the run's key."""
    labels = planned.labels
    return str(labels.get("model_label") or labels.get("model") or planned.key[:8])


def field_text(planned: PlannedRun, field: str) -> str:
    """One run field in words: the model's label, 'lr 0.1', 'SGD', 'shuffled', 'batch 64'..."""
    value = planned.labels.get(field)
    if field == "model":
        return model_label(planned)
    if field == "shuffle":
        return "shuffled" if value else "in order"
    if field == "optimizer":
        return OPTIMIZER_NAMES.get(str(value), str(value))
    if field == "lr" and isinstance(value, float):
        return f"lr {lr_text(value)}"
    return f"{FIELD_WORDS.get(field, field)} {value}"


def varying_fields(runs: Iterable[PlannedRun]) -> list[str]:
    """The label fields whose value differs between the runs."""
    runs = list(runs)
    return [f for f in LABEL_FIELDS if len({repr(r.labels.get(f)) for r in runs}) > 1]


def run_name(planned: PlannedRun, fields: Iterable[str], budgets_vary: bool = False) -> str:
    """A short name for the run from the fields that tell it apart (its model's label when none do)."""
    parts = [field_text(planned, f) for f in fields]
    if budgets_vary:
        parts.append(describe_budget(planned.budget))
    return ", ".join(parts) or model_label(planned)


def describe_run(outcome: RunOutcome, fields: Iterable[str] = ()) -> str:
    """The model's label followed by the given run fields it has: 'Tutorial MLP, lr 0.1'."""
    labels = outcome.planned.labels
    return run_name(outcome.planned, ["model", *(f for f in fields if f in labels and f != "model")])


def name_runs(outcomes: list[RunOutcome]) -> Callable[[RunOutcome], str]:
    """A namer for prose that adds only the PROSE_FIELDS that differ between runs of the same model."""
    varying = []
    for field in PROSE_FIELDS:
        per_model: dict[object, set[str]] = {}
        for o in outcomes:
            per_model.setdefault(o.planned.labels.get("model"), set()).add(repr(o.planned.labels.get(field)))
        if any(len(values) > 1 for values in per_model.values()):
            varying.append(field)
    return lambda outcome: describe_run(outcome, varying)


def describe_budget(budget: Budget) -> str:
    """'10 epochs' or 'until 85 % test accuracy (cap 200 epochs, plateau 5)'."""
    if budget.until_accuracy is None:
        return f"{budget.max_epochs} epoch{'s' if budget.max_epochs != 1 else ''}"
    extra = f", plateau {budget.plateau_patience}" if budget.plateau_patience else ""
    return f"until {budget.until_accuracy:g} % test accuracy (cap {budget.max_epochs} epochs{extra})"


def log_name(request: Mapping[str, Any], model: str | None = None) -> str:
    """'mlp lr=0.1 seed=0': a run (a job's request) in one log line; `model` is the spec's model name, else the
    architecture stands for it."""
    return f"{model or request['arch']} lr={lr_text(float(request['lr']))} seed={request['seed']}"
