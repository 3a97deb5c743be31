"""Plain result records shared by the engine, the cache, the analysis and the report."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

PROBE_STEPS = 100  # gradient probes are recorded for this many first training steps of every run
PROBE_NAMES = ("grad_mean", "grad_abs_mean", "grad_norm", "step_loss")


def probe_columns(rows: list[list[float]]) -> dict[str, list[float]]:
    """Per-step probe rows (mean g, mean |g|, global L2 norm, loss) → one list per probe name."""
    return {name: [row[i] for row in rows] for i, name in enumerate(PROBE_NAMES)} if rows else {}


@dataclass(frozen=True)
class EpochMetrics:
    epoch: int  # 1-based
    train_loss: float  # mean over the epoch's training batches
    test_loss: float  # mean over test images
    test_accuracy: float  # percent
    seconds: float  # wall time of the epoch's training and evaluation
    step_losses: list[float] = field(default_factory=list)  # every training step's loss

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "EpochMetrics":
        return cls(**data)


@dataclass(frozen=True)
class Budget:
    """How far along a run's trajectory a question needs to go (not part of the cache key)."""

    max_epochs: int
    until_accuracy: float | None = None  # percent
    plateau_patience: int | None = None


@dataclass(frozen=True)
class RunResult:
    """One request's view of a cached trajectory: the epochs up to where its budget stopped."""

    key: str
    request: dict[str, Any]
    params: int  # trainable parameters, counted from the model
    epochs: list[EpochMetrics]
    stop_reason: str  # one of STOP_REASONS
    probes: dict[str, list[float]]  # grad_mean, grad_abs_mean, grad_norm, step_loss: first PROBE_STEPS steps
    budget: Budget
    machine: dict[str, Any] | None = None  # the machine that trained it (train.machine_info); None: unknown

    @property
    def final(self) -> EpochMetrics | None:
        return self.epochs[-1] if self.epochs else None

    @property
    def diverged(self) -> bool:
        return self.stop_reason in ("diverged", "stuck at chance")

    def epochs_to(self, accuracy: float) -> int | None:
        """The first epoch whose test accuracy is at least `accuracy` percent."""
        return next((e.epoch for e in self.epochs if e.test_accuracy >= accuracy), None)


STOP_REASONS = {
    "completed": "trained every epoch asked for",
    "target reached": "test accuracy reached the target",
    "epoch cap": "the epoch cap came before the target",
    "plateau": "the best accuracy stopped improving",
    "diverged": "the loss became NaN or infinite",
    "stuck at chance": "test accuracy stayed at chance level",
}


# ---------------------------------------------------------------- chance level and the stop rule

CHANCE_EPOCHS = 3  # epochs at chance-level accuracy after which the stop rule calls a run stuck
# Two margins above chance (100 / classes), for two purposes. Stopping a run ends training, so it counts an epoch
# as at chance only up to 1.5 points above it (inclusive), and only CHANCE_EPOCHS epochs in a row; describing a
# finished run ("stayed at chance") is one look at one number, so prose allows anything below 2 points above it.
STOP_CHANCE_MARGIN = 1.5
DESCRIBE_CHANCE_MARGIN = 2.0


def chance_accuracy(classes: int = 10) -> float:
    """Test accuracy in percent of guessing among `classes` balanced classes (both data sets have ten)."""
    return 100.0 / classes


def at_chance(accuracy: float | None, classes: int = 10, margin: float = DESCRIBE_CHANCE_MARGIN,
              inclusive: bool = False) -> bool:
    """Whether the accuracy (percent) is below chance plus `margin` points (at most, when `inclusive`: the
    stop rule's bound); NaN counts as at chance, None (no measurement) does not."""
    if accuracy is None:
        return False
    bound = chance_accuracy(classes) + margin
    return math.isnan(accuracy) or (accuracy <= bound if inclusive else accuracy < bound)


def decide(epochs: list[EpochMetrics], budget: Budget, classes: int = 10) -> tuple[int, str] | None:
    """Where the budget stops along this trajectory: (epoch count, reason), or None if it needs more epochs."""
    best, best_epoch, chance_run = -1.0, 0, 0
    for e in epochs[:budget.max_epochs]:
        if not math.isfinite(e.train_loss) or not math.isfinite(e.test_loss):
            return e.epoch, "diverged"
        stuck = at_chance(e.test_accuracy, classes, STOP_CHANCE_MARGIN, inclusive=True)
        chance_run = chance_run + 1 if stuck else 0
        if chance_run >= CHANCE_EPOCHS:
            return e.epoch, "stuck at chance"
        if budget.until_accuracy is not None and e.test_accuracy >= budget.until_accuracy:
            return e.epoch, "target reached"
        if e.test_accuracy > best:
            best, best_epoch = e.test_accuracy, e.epoch
        if budget.plateau_patience is not None and e.epoch - best_epoch >= budget.plateau_patience:
            return e.epoch, "plateau"
        if e.epoch == budget.max_epochs:
            return e.epoch, "completed" if budget.until_accuracy is None else "epoch cap"
    return None


@dataclass(frozen=True)
class PlannedRun:
    """A run as one question sees it: its cache key, parameters, budget and labels."""

    question: str
    key: str
    request: dict[str, Any]
    budget: Budget
    labels: dict[str, Any]  # model preset name and label, lr... for tables, legends and `select`
    overlays: tuple[str, ...] = ()  # profile overlays that changed this run, in words


@dataclass(frozen=True)
class RunOutcome:
    """A planned run with its result, or None when it is not in the cache (`build --no-train`)."""

    planned: PlannedRun
    result: RunResult | None
