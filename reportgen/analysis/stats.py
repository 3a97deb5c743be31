"""Seed statistics: summaries of a metric over the seeds, and the comparison of two settings (paired t on
per-seed differences or Welch's t) judged as *ahead*, *equivalent* or *unresolved*. Plain data in, plain
dataclasses out (no torch, no plotting); which test applies is decided in analysis/pairing.py.
"""
from __future__ import annotations

import math
import statistics
import warnings
from dataclasses import dataclass
from typing import Any, Iterable

from reportgen.analysis.metrics import column_value, names_of_kind
from reportgen.results import RunOutcome

AHEAD = "ahead"  # the interval excludes zero: one setting is ahead of the other
EQUIVALENT = "equivalent"  # the whole interval lies within ±margin: a difference that does not matter
UNRESOLVED = "unresolved"  # neither: these seeds cannot tell
NO_NOISE_ESTIMATE = "no noise estimate"  # one seed on a side: nothing to judge with
VERDICTS = (AHEAD, EQUIVALENT, UNRESOLVED, NO_NOISE_ESTIMATE)
PAIRED, WELCH = "paired t", "Welch"
TESTS = (PAIRED, WELCH)
ALPHA = 0.05  # family-wise error rate: every family's claims hold together at 95 %
POWER = 0.80  # the power at which a question's resolvable difference is stated
SERIES_METRICS = ("test_accuracy", "train_loss", "test_loss")  # the per-epoch metrics results.json keeps


# ---------------------------------------------------------------- the metric functions (one place of contact)

def run_metric_names() -> list[str]:
    """The names of every scalar metric of a run, in the metrics module's order."""
    return names_of_kind("run")


def run_metric(outcome: RunOutcome, name: str) -> Any:
    """One scalar metric of one run; None when the run is not in the cache."""
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


# ---------------------------------------------------------------- comparison of two settings

@dataclass(frozen=True)
class Comparison:
    """mean(a) − mean(b) over the finite values, with its confidence interval at `level` and the verdict."""

    difference: float | None  # None when a side has no finite value
    low: float | None  # confidence interval of the difference; None without a noise estimate
    high: float | None
    p_value: float | None
    level: float  # the interval's confidence level (family-adjusted: 1 − ALPHA / family size)
    n_a: int
    n_b: int
    verdict: str  # one of VERDICTS
    test: str = WELCH  # one of TESTS
    margin: float | None = None  # ±margin within which a difference does not matter; None: no equivalence claim
    se: float | None = None  # standard error of the difference
    df: float | None = None  # the t distribution's degrees of freedom

    def to_dict(self) -> dict[str, Any]:
        return {"difference": self.difference, "low": self.low, "high": self.high, "p_value": self.p_value,
                "level": self.level, "n_a": self.n_a, "n_b": self.n_b, "verdict": self.verdict, "test": self.test,
                "margin": self.margin}


def verdict_of(low: float, high: float, margin: float | None) -> str:
    """Ahead when the interval excludes zero; equivalent when it lies within ±margin; else unresolved.

    Ahead is checked first: an interval that excludes zero resolved a difference, however small.
    """
    if low > 0 or high < 0:
        return AHEAD
    bound = margin or 0.0  # without a margin only the exact [0, 0] of equal constants is equivalent
    if -bound <= low and high <= bound:
        return EQUIVALENT
    return UNRESOLVED


def compare(a: list[float], b: list[float], level: float = 1 - ALPHA, margin: float | None = None,
            paired: bool = False) -> Comparison:
    """a − b judged by its interval at `level`: paired t on the per-seed differences (a[i] and b[i] are the same
    seed) or Welch's t-test (scipy), and the three verdicts against ±margin.

    Non-finite values and None are left out (a paired comparison with one left out falls back to Welch).
    Fewer than 2 values on a side: no noise estimate, no interval. Zero spread (of both sides, or of the paired
    differences): scipy's t is undefined there, and the interval is the exact difference [d, d]: ahead unless
    d is 0, which is equivalent.
    """
    if paired and not _all_finite(a, b):
        paired = False
    sa, sb = summarize(a), summarize(b)
    difference = sa.mean - sb.mean if sa.n and sb.n else None
    test = PAIRED if paired else WELCH
    if sa.n < 2 or sb.n < 2:
        return Comparison(difference, None, None, None, level, sa.n, sb.n, NO_NOISE_ESTIMATE, test, margin)
    if paired:
        low, high, p_value, se, df = _paired(sa.values, sb.values, level)
    elif sa.min == sa.max and sb.min == sb.max:
        exact = sa.values[0] - sb.values[0]  # no rounding from averaging equal numbers
        low, high, p_value, se, df = exact, exact, 1.0 if exact == 0 else 0.0, 0.0, None
    else:
        low, high, p_value, se, df = _welch(sa.values, sb.values, level)
    return Comparison(difference, low, high, p_value, level, sa.n, sb.n, verdict_of(low, high, margin), test, margin,
                      se, df)


def _all_finite(a: list[float], b: list[float]) -> bool:
    return len(a) == len(b) and all(v is not None and math.isfinite(v) for v in (*a, *b))


def _paired(a: tuple[float, ...], b: tuple[float, ...], level: float) -> tuple[float, float, float, float, float]:
    from scipy import stats as scipy_stats

    differences = [x - y for x, y in zip(a, b)]
    if min(differences) == max(differences):  # every seed moved by the same amount: no noise left to test
        d = differences[0]
        return d, d, 1.0 if d == 0 else 0.0, 0.0, float(len(differences) - 1)
    result = scipy_stats.ttest_1samp(differences, 0.0)
    interval = result.confidence_interval(level)
    se = statistics.stdev(differences) / math.sqrt(len(differences))
    return float(interval.low), float(interval.high), float(result.pvalue), se, float(len(differences) - 1)


def _welch(a: tuple[float, ...], b: tuple[float, ...], level: float) -> tuple[float, float, float, float, float]:
    from scipy import stats as scipy_stats

    with warnings.catch_warnings():
        # One constant side makes scipy warn about precision loss in its variance; its answer is still right.
        warnings.simplefilter("ignore", RuntimeWarning)
        result = scipy_stats.ttest_ind(a, b, equal_var=False)
        interval = result.confidence_interval(level)
    se = math.sqrt(statistics.variance(a) / len(a) + statistics.variance(b) / len(b))
    return float(interval.low), float(interval.high), float(result.pvalue), se, float(result.df)


# ---------------------------------------------------------------- resolution and prediction

def resolvable_difference(c: Comparison, power: float = POWER) -> float | None:
    """The smallest true difference this comparison's design detects with probability `power` at its level,
    from the measured noise: (t(1 − α/2) + t(power)) · standard error, both at the test's degrees of freedom.
    None without a noise estimate (or with none measured: zero spread)."""
    from scipy import stats as scipy_stats

    if c.se is None or c.df is None or c.se == 0:
        return None
    alpha = 1 - c.level
    return float((scipy_stats.t.ppf(1 - alpha / 2, c.df) + scipy_stats.t.ppf(power, c.df)) * c.se)


def prediction_interval(values: list[float], level: float = 1 - ALPHA) -> tuple[float, float] | None:
    """Where one new run lands with probability `level`: mean ± t · s · √(1 + 1/n); None with fewer than
    2 values or no spread (a zero-width interval is no estimate of where a new run lands)."""
    from scipy import stats as scipy_stats

    s = summarize(values)
    if s.n < 2 or not s.std:
        return None
    half = float(scipy_stats.t.ppf(1 - (1 - level) / 2, s.n - 1)) * s.std * math.sqrt(1 + 1 / s.n)
    return s.mean - half, s.mean + half
