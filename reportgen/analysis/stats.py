"""Seed statistics: runs grouped by everything but their seed, summaries of a metric over the seeds,
and Welch's comparison of two groups. Plain data in, plain dataclasses out (no torch, no plotting).
"""
from __future__ import annotations

import json
import math
import statistics
import warnings
from dataclasses import dataclass
from typing import Any, Iterable

from reportgen.results import RunOutcome

BEYOND_NOISE = "beyond seed noise"
NOT_DISTINGUISHABLE = "not distinguishable"
NO_NOISE_ESTIMATE = "no noise estimate"
VERDICTS = (BEYOND_NOISE, NOT_DISTINGUISHABLE, NO_NOISE_ESTIMATE)
SERIES_METRICS = ("test_accuracy", "train_loss", "test_loss")  # the per-epoch metrics results.json keeps
TRAINED = "trained"  # metrics.outcome's value for a run that neither diverged nor got stuck


# ---------------------------------------------------------------- the metric functions (one place of contact)

def run_metric_names() -> list[str]:
    """The names of every scalar metric of a run, in the metrics module's order."""
    from reportgen.analysis.metrics import names_of_kind

    return names_of_kind("run")


def run_metric(outcome: RunOutcome, name: str) -> Any:
    """One scalar metric of one run; None when the run is not in the cache."""
    from reportgen.analysis.metrics import column_value

    return column_value(outcome, name)


# ---------------------------------------------------------------- summaries

@dataclass(frozen=True)
class Summary:
    """A metric over seeds. Only finite values count in n, mean, std, min and max;
    `non_finite` says how many were NaN or infinite (a diverged run), None values are left out."""

    n: int
    mean: float | None  # None when n == 0
    std: float | None  # sample standard deviation (ddof=1); None when n < 2 (no spread to estimate)
    min: float | None
    max: float | None
    values: tuple[float, ...]  # the finite values, in the order given
    non_finite: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "mean": self.mean, "std": self.std, "min": self.min, "max": self.max,
                "values": list(self.values), "non_finite": self.non_finite}


def summarize(values: Iterable[float | int | None]) -> Summary:
    """Summary of the numbers, ignoring None; NaN and ±inf are counted apart, not averaged."""
    present = [float(v) for v in values if v is not None]
    finite = tuple(v for v in present if math.isfinite(v))
    n = len(finite)
    return Summary(n=n, mean=statistics.fmean(finite) if n else None,
                   std=statistics.stdev(finite) if n >= 2 else None,
                   min=min(finite) if n else None, max=max(finite) if n else None,
                   values=finite, non_finite=len(present) - n)


# ---------------------------------------------------------------- comparison of two groups

@dataclass(frozen=True)
class Comparison:
    """mean(a) − mean(b) over the finite values, with Welch's confidence interval and p-value."""

    difference: float | None  # None when a side has no finite value
    low: float | None  # confidence interval of the difference; None without a noise estimate
    high: float | None
    p_value: float | None
    level: float
    n_a: int
    n_b: int
    verdict: str  # one of VERDICTS

    def to_dict(self) -> dict[str, Any]:
        return {"difference": self.difference, "low": self.low, "high": self.high, "p_value": self.p_value,
                "level": self.level, "n_a": self.n_a, "n_b": self.n_b, "verdict": self.verdict}


def compare(a: list[float], b: list[float], level: float = 0.95) -> Comparison:
    """Welch's t-test of a against b (scipy), judged by whether the interval excludes 0.

    Non-finite values and None are left out. Fewer than 2 values on a side: no noise estimate,
    no interval. Zero spread on both sides (scipy's t is undefined there): equal constants are
    not distinguishable (interval [0, 0], p = 1); different constants, each seen at least twice,
    count as beyond seed noise with the zero-width interval [d, d] and p = 0, since the seeds
    showed no noise at all.
    """
    sa, sb = summarize(a), summarize(b)
    difference = sa.mean - sb.mean if sa.n and sb.n else None
    if sa.n < 2 or sb.n < 2:
        return Comparison(difference, None, None, None, level, sa.n, sb.n, NO_NOISE_ESTIMATE)
    if sa.min == sa.max and sb.min == sb.max:
        exact = sa.values[0] - sb.values[0]  # no rounding from averaging equal numbers
        verdict = NOT_DISTINGUISHABLE if exact == 0 else BEYOND_NOISE
        return Comparison(exact, exact, exact, 1.0 if exact == 0 else 0.0, level, sa.n, sb.n, verdict)
    low, high, p_value = _welch(sa.values, sb.values, level)
    verdict = BEYOND_NOISE if low > 0 or high < 0 else NOT_DISTINGUISHABLE
    return Comparison(difference, low, high, p_value, level, sa.n, sb.n, verdict)


def _welch(a: tuple[float, ...], b: tuple[float, ...], level: float) -> tuple[float, float, float]:
    from scipy import stats as scipy_stats

    with warnings.catch_warnings():
        # One constant side makes scipy warn about precision loss in its variance; its answer is still right.
        warnings.simplefilter("ignore", RuntimeWarning)
        result = scipy_stats.ttest_ind(a, b, equal_var=False)
        interval = result.confidence_interval(level)
    return float(interval.low), float(interval.high), float(result.pvalue)


# ---------------------------------------------------------------- runs grouped over seeds

@dataclass(frozen=True)
class RunGroup:
    """The runs of one run point that differ only in their seed."""

    labels: dict[str, Any]  # every label the runs share (all but `seed`)
    outcomes: tuple[RunOutcome, ...]

    @property
    def seeds(self) -> list[Any]:
        return [_seed_of(o) for o in self.outcomes]

    @property
    def present(self) -> list[RunOutcome]:
        """The runs that have a result (the others are not in the cache)."""
        return [o for o in self.outcomes if o.result is not None]


def _seed_of(outcome: RunOutcome) -> Any:
    labels = outcome.planned.labels
    return labels["seed"] if "seed" in labels else outcome.planned.request.get("seed")


def group_labels(outcome: RunOutcome) -> dict[str, Any]:
    return {k: v for k, v in outcome.planned.labels.items() if k != "seed"}


def group_runs(outcomes: Iterable[RunOutcome]) -> list[RunGroup]:
    """Runs grouped by every label except `seed`, groups and runs in order of first appearance."""
    groups: dict[str, tuple[dict[str, Any], list[RunOutcome]]] = {}
    for outcome in outcomes:
        labels = group_labels(outcome)
        ident = json.dumps(labels, sort_keys=True, default=repr)
        groups.setdefault(ident, (labels, []))[1].append(outcome)
    return [RunGroup(labels, tuple(runs)) for labels, runs in groups.values()]


def metric_summary(group: RunGroup, name: str) -> Summary:
    """A scalar metric over the group's seeds; missing runs and non-numeric values are left out."""
    return summarize(_number(run_metric(o, name)) for o in group.present)


def _number(value: Any) -> float | None:
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return float(value) if is_number else None


@dataclass(frozen=True)
class TargetSummary:
    """When the seeds reached the budget's target accuracy."""

    n: int  # seeds with a result
    reached: int
    median: float | None  # over the seeds that reached it
    min: int | None
    max: int | None

    @property
    def not_reached(self) -> int:
        return self.n - self.reached

    def describe(self) -> str:
        if not self.reached:
            return f"not reached in {self.n} of {self.n} seeds"
        spread = f" (range {self.min}–{self.max})" if self.min != self.max else ""
        missed = f"; not reached in {self.not_reached} of {self.n} seeds" if self.not_reached else ""
        return f"median epoch {self.median:g}{spread}{missed}"

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "reached": self.reached, "not_reached": self.not_reached, "median": self.median,
                "min": self.min, "max": self.max, "text": self.describe()}


def target_summary(group: RunGroup) -> TargetSummary | None:
    """`epochs_to_target` over the seeds; None when the runs have no target accuracy."""
    values = [run_metric(o, "epochs_to_target") for o in group.present]
    if not values or all(v is None for v in values):
        return None
    reached = sorted(v for v in values if isinstance(v, int) and not isinstance(v, bool))
    return TargetSummary(n=len(values), reached=len(reached),
                         median=statistics.median(reached) if reached else None,
                         min=reached[0] if reached else None, max=reached[-1] if reached else None)


@dataclass(frozen=True)
class OutcomeCounts:
    """How the seeds ended: trained, diverged, stuck at chance (metrics.outcome), and how many are missing."""

    n: int  # seeds with a result
    counts: dict[str, int]  # outcome → seeds, in order of first appearance
    missing: int  # seeds not in the cache

    def describe(self) -> str:
        failed = [f"{name} in {count} of {self.n} seeds" for name, count in self.counts.items() if name != TRAINED]
        text = "; ".join(failed) or (f"trained in all {self.n} seeds" if self.n else "no seed in the cache")
        return text + (f" ({self.missing} not in the cache)" if self.missing and self.n else "")

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "counts": dict(self.counts), "missing": self.missing, "text": self.describe()}


def outcome_counts(group: RunGroup) -> OutcomeCounts:
    counts: dict[str, int] = {}
    for outcome in group.present:
        name = run_metric(outcome, "outcome")
        counts[name] = counts.get(name, 0) + 1
    return OutcomeCounts(len(group.present), counts, len(group.outcomes) - len(group.present))


def series_summary(group: RunGroup, metric: str) -> list[Summary]:
    """Per epoch (element i is epoch i + 1) the metric over the seeds that trained that epoch:
    a run that stopped early counts only in its own epochs, so n can fall along the series."""
    if metric not in SERIES_METRICS:
        raise KeyError(f"unknown per-epoch metric {metric!r}; known: {', '.join(SERIES_METRICS)}")
    series = [[getattr(e, metric) for e in o.result.epochs] for o in group.present]
    length = max((len(s) for s in series), default=0)
    return [summarize(s[i] for s in series if i < len(s)) for i in range(length)]
