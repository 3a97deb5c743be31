"""Seed statistics: summaries of a metric over the seeds and Welch's comparison of two groups
(analysis/aggregate.py groups runs into points over their seeds). Plain data in, plain dataclasses out (no torch,
no plotting).
"""
from __future__ import annotations

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
