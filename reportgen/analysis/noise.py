"""Claims with their seed noise: numbers as 'mean ± std', comparisons as a difference with its 95 %
interval (Welch's t, analysis/stats.py) and a verdict. Every observer that ranks or compares says it here.
"""
from __future__ import annotations

import math
from typing import Any, Callable

from reportgen.analysis import wording as w
from reportgen.analysis.aggregate import compare_points, seed_summary, seeds_text
from reportgen.analysis.metrics import final_accuracy
from reportgen.analysis.stats import BEYOND_NOISE, NO_NOISE_ESTIMATE, NOT_DISTINGUISHABLE, Comparison, Summary
from reportgen.results import RunOutcome, RunResult

ONE_SEED = ("Each setting was trained with one seed, so there is no estimate of seed noise: the differences "
            "below are single measurements, not tested effects.")
CI = "CI"  # the report-wide note (seeds_note) says once that this is the 95 % interval and how it is computed


def fmt_spread(summary: Summary, fmt: Callable[[float], str], unit: str = "") -> str:
    """'87.3 ± 0.4 %' over several seeds; '87.3 %' with one."""
    if summary.n == 0 or summary.mean is None:
        return fmt(math.nan) + unit
    if summary.n < 2 or summary.std is None:
        return fmt(summary.mean) + unit
    return f"{fmt(summary.mean)} ± {fmt(summary.std)}{unit}"


def acc_text(point: RunOutcome, value: Callable[[RunResult], Any] = final_accuracy) -> str:
    """A point's accuracy over its seeds: '87.3 ± 0.4 %' (or the one run's '87.3 %')."""
    return fmt_spread(seed_summary(point, value), lambda v: w.fmt_float(v, 1), " %")


def seeds_note(points: list[RunOutcome]) -> str:
    """How many seeds stand behind each number and what 'beyond seed noise' means: said once per report."""
    if not any(p.result is not None for p in points):
        return ""
    said = seeds_text(points)
    if not said:
        return ONE_SEED
    return (f"Numbers are means ± standard deviation over {said} seeds per setting (epochs to a target: median and "
            f"range); a difference is beyond seed noise when its 95 % confidence interval ({CI}, Welch's t-test) "
            "excludes zero.")


def compare_sentence(a_name: str, a: RunOutcome, b_name: str, b: RunOutcome,
                     value: Callable[[RunResult], Any] = final_accuracy, what: str = "",
                     unit: str = "points", digits: int = 1) -> str:
    """One comparison of a against b on `value` (final accuracy unless `what` says otherwise):
    'lr 0.1 is 4.6 points above lr 0.01 (88.0 ± 0.4 vs 83.3 ± 0.1 %, 95 % CI +3.6 to +5.6; beyond seed noise).'"""
    said = _compare_sentence(a_name, a, b_name, b, value, f" in {what}" if what else "", unit, digits)
    return said[:1].upper() + said[1:]


def _compare_sentence(a_name: str, a: RunOutcome, b_name: str, b: RunOutcome, value: Callable[[RunResult], Any],
                      in_what: str, unit: str, digits: int) -> str:
    c = compare_points(a, b, value)
    values = _values(a, b, value, unit, digits)
    if c.difference is None or not math.isfinite(c.difference):
        return f"{a_name} against {b_name}{in_what}: {values}; not comparable."
    if c.verdict == NOT_DISTINGUISHABLE:
        return f"{a_name} and {b_name} are level within seed noise{in_what} ({values}, {_interval(c, digits)})."
    direction = "above" if c.difference > 0 else "below"
    said = f"{a_name} is {_abs(c.difference, digits)} {unit} {direction} {b_name}{in_what}"
    if c.verdict == NO_NOISE_ESTIMATE:
        return f"{said} ({values}; single runs, no noise estimate)."
    return f"{said} ({values}, {_interval(c, digits)}; beyond seed noise)."


def gap_text(a: RunOutcome, b: RunOutcome, value: Callable[[RunResult], Any] = final_accuracy,
             unit: str = "points", digits: int = 1, verdict: bool = True) -> str:
    """a − b with its interval and verdict, for a list: '+0.2 points, 95 % CI −0.2 to +0.6, within seed noise'
    (without the verdict when the sentence states it once for several gaps)."""
    c = compare_points(a, b, value)
    if c.difference is None or not math.isfinite(c.difference):
        return "not comparable"
    gap = f"{signed(c.difference, digits)} {unit}"
    if c.verdict == NO_NOISE_ESTIMATE:
        return f"{gap}, single runs"
    said = f"{gap} ({_interval(c, digits)})"
    return f"{said}, {'beyond' if c.verdict == BEYOND_NOISE else 'within'} seed noise" if verdict else said


def _values(a: RunOutcome, b: RunOutcome, value: Callable[[RunResult], Any], unit: str, digits: int) -> str:
    """'88.0 ± 0.4 vs 83.3 ± 0.1 %': the unit said once, after the second."""
    fmt = (lambda v: w.fmt_float(v, digits))
    pct = " %" if unit == "points" else ""
    return f"{fmt_spread(seed_summary(a, value), fmt)} vs {fmt_spread(seed_summary(b, value), fmt, pct)}"


def _interval(c: Comparison, digits: int) -> str:
    return f"{CI} {signed(c.low, digits)} to {signed(c.high, digits)}"


def signed(value: float, digits: int) -> str:
    """'+3.6', '−0.8' (a true minus sign)."""
    return f"{value:+.{digits}f}".replace("-", "−")


def _abs(value: float, digits: int) -> str:
    return f"{abs(value):.{digits}f}"
