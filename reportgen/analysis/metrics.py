"""The metric registry: every quantity a table column, a figure axis or a reference check may name.

A metric has a kind: `label` (a run field such as the model or lr), `run` (one number or word per
run), `epoch` (a value per epoch, drawn by `curves`) or `step` (a value per early training step, drawn
by `step_curves`). Its title, axis label and unit are defined here once, for tables, figures and checks.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Literal

from reportgen.registry import Args, NoArgs, Registry
from reportgen.results import RunOutcome, RunResult

MetricKind = Literal["label", "run", "epoch", "step"]


@dataclass(frozen=True)
class Metric:
    name: str
    kind: MetricKind
    title: str  # table column header
    help: str  # one line for `reportgen vocab`
    value: Callable[[Any], Any] | None = None  # label: labels → value; run: RunResult → value; epoch: EpochMetrics → value
    axis: str = ""  # axis label of a figure (defaults to the title)
    unit: str = ""  # "%" for accuracies: reference checks print it
    checkable: bool = False  # a reference number may be checked against it
    numeric: bool = True  # may be drawn as bars or averaged over seeds
    args: type[Args] = NoArgs
    # A difference within ±margin does not matter (the "equivalent" verdict, analysis/stats.py); None: the metric
    # is not compared between settings, or no difference is too small to matter. A spec may override it per
    # question or observer (`margin`).
    margin: float | None = None
    better: Literal["higher", "lower"] | None = None  # which direction is "ahead"; None: neither (a count)

    @property
    def axis_label(self) -> str:
        return self.axis or self.title


METRICS: Registry[Metric] = Registry("metric")


def metric(name: str) -> Metric:
    return METRICS.get(name)


def axis_label(name: str) -> str:
    return METRICS.get(name).axis_label if name in METRICS else name


def names_of_kind(*kinds: MetricKind, numeric: bool | None = None) -> list[str]:
    return [m.name for m in METRICS.entries() if m.kind in kinds and (numeric is None or m.numeric == numeric)]


def comparable_metrics() -> list[str]:
    """The per-run metrics two settings are compared on: those with a margin (a spec may set theirs)."""
    return [m.name for m in METRICS.entries() if m.kind == "run" and m.margin is not None]


def column_value(outcome: RunOutcome, column: str) -> Any:
    """A table cell: a run label (model, lr...) or a run metric; None when the run is missing."""
    entry = METRICS.get(column)
    if entry.kind == "label":
        return entry.value(outcome.planned.labels)
    if entry.kind != "run":
        raise KeyError(f"{column!r} is a per-{entry.kind} series, not a table column")
    return entry.value(outcome.result) if outcome.result else None


# ---------------------------------------------------------------- run fields (labels)

def _label(field: str, title: str, help: str) -> Metric:
    return Metric(field, "label", title, help, value=lambda labels, f=field: labels.get(f), numeric=False)


METRICS.add(Metric("model", "label", "Model", "the model preset's label", numeric=False,
                   value=lambda labels: labels.get("model_label") or labels.get("model")))
for _field, _title, _help in (
        ("lr", "Learning rate", "the learning rate"),
        ("optimizer", "Optimizer", "sgd or adam"), ("batch_size", "Batch", "training batch size"),
        ("shuffle", "Shuffled", "whether batches are reshuffled every epoch"),
        ("dataset", "Data set", "the data set's name"), ("seed", "Seed", "the run's seed")):
    METRICS.add(_label(_field, _title, _help))


# ---------------------------------------------------------------- per-run metrics

def run_metric(name: str, title: str, help: str, **facts: Any) -> Callable[[Callable[[RunResult], Any]], Callable]:
    """Decorator: register a per-run metric computed from a RunResult (facts: unit, checkable, numeric, axis)."""
    def register(fn: Callable[[RunResult], Any]) -> Callable[[RunResult], Any]:
        METRICS.add(Metric(name, "run", title, help, value=fn, **facts))
        return fn
    return register


# Margins are judgements, not measurements: half a point of accuracy (50 of 10,000 test images) turns no
# question of this report; 0.02 of cross-entropy is a change in a loss's second decimal; one epoch is the
# resolution of an epoch count.
ACCURACY_MARGIN, LOSS_MARGIN, EPOCH_MARGIN = 0.5, 0.02, 1.0


@run_metric("final_accuracy", "Final test acc. (%)", "test accuracy after the last epoch", unit="%", checkable=True,
      axis="final test accuracy (%)", margin=ACCURACY_MARGIN, better="higher")
def final_accuracy(r: RunResult) -> float | None:
    return r.final.test_accuracy if r.final else None


@run_metric("best_accuracy", "Best test acc. (%)", "highest test accuracy of any epoch", unit="%", checkable=True,
      axis="best test accuracy (%)", margin=ACCURACY_MARGIN, better="higher")
def best_accuracy(r: RunResult) -> float | None:
    return max((e.test_accuracy for e in r.epochs), default=None)


@run_metric("first_epoch_accuracy", "Acc. after epoch 1 (%)", "test accuracy after the first epoch", unit="%",
      axis="test accuracy after epoch 1 (%)", margin=ACCURACY_MARGIN, better="higher")
def first_epoch_accuracy(r: RunResult) -> float | None:
    return r.epochs[0].test_accuracy if r.epochs else None


@run_metric("final_train_loss", "Final train loss", "mean training loss of the last epoch", margin=LOSS_MARGIN,
      better="lower")
def final_train_loss(r: RunResult) -> float | None:
    return r.final.train_loss if r.final else None


@run_metric("final_test_loss", "Final test loss", "test loss after the last epoch", margin=LOSS_MARGIN, better="lower")
def final_test_loss(r: RunResult) -> float | None:
    return r.final.test_loss if r.final else None


@run_metric("epochs_to_target", "Epoch reaching target", "first epoch at the run's until_accuracy target, or 'not reached'",
      checkable=True, numeric=False, margin=EPOCH_MARGIN, better="lower")
def epochs_to_target(r: RunResult) -> int | str | None:
    """First epoch at the budget's target accuracy; 'not reached' when it never got there."""
    if r.budget.until_accuracy is None:
        return None
    return r.epochs_to(r.budget.until_accuracy) or "not reached"


@run_metric("epochs_trained", "Epochs trained", "how many epochs the run trained before it stopped", margin=EPOCH_MARGIN)
def epochs_trained(r: RunResult) -> int:
    return len(r.epochs)


@run_metric("seconds_per_epoch", "Seconds / epoch", "mean wall time of an epoch (training and evaluation); for a run trained in a lockstep group, its share of the group's (times of groups of different sizes are not compared)",
      axis="seconds per epoch")
def seconds_per_epoch(r: RunResult) -> float | None:
    return sum(e.seconds for e in r.epochs) / len(r.epochs) if r.epochs else None


@run_metric("params", "Trainable parameters", "number of trainable parameters", checkable=True,
      axis="trainable parameters")
def params(r: RunResult) -> int:
    return r.params


@run_metric("stop_reason", "Why it stopped", "completed, target reached, plateau, diverged...", numeric=False)
def stop_reason(r: RunResult) -> str:
    return r.stop_reason


@run_metric("outcome", "Outcome", "'trained', or how the run failed (diverged, stuck at chance)", numeric=False)
def outcome(r: RunResult) -> str:
    return r.stop_reason if r.diverged else "trained"


# ---------------------------------------------------------------- per-epoch and per-step series

for _name, _title, _axis, _help in (
        ("train_loss", "Mean train loss", "training loss\n(cross-entropy)", "mean training loss of each epoch"),
        ("test_loss", "Test loss", "test loss\n(cross-entropy)", "test loss after each epoch"),
        ("test_accuracy", "Test acc. (%)", "test accuracy (%)", "test accuracy after each epoch")):
    METRICS.add(Metric(_name, "epoch", _title, _help, value=lambda e, n=_name: getattr(e, n), axis=_axis,
                       unit="%" if _name == "test_accuracy" else ""))

for _name, _title, _axis, _help in (
        ("step_loss", "Batch loss", "batch loss\n(cross-entropy)", "the loss of each early training step"),
        ("grad_mean", "Mean gradient entry", "mean gradient entry", "mean of all gradient entries at each early step"),
        ("grad_abs_mean", "Mean |gradient entry|", "mean |gradient entry|", "mean absolute gradient entry at each early step"),
        ("grad_norm", "Gradient L2 norm", "gradient L2 norm", "global L2 norm of the gradient at each early step")):
    METRICS.add(Metric(_name, "step", _title, _help, axis=_axis))
