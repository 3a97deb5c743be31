"""Claims with their seed noise: numbers as 'mean ± std', comparisons as a difference with its 95 %
interval (Welch's t, analysis/stats.py) and a verdict. Every observer that ranks or compares says it here.
"""
from __future__ import annotations

import math
from typing import Any, Callable

from reportgen.analysis import wording as w
from reportgen.analysis.aggregate import compare_points, seed_summary, seeds_text
from reportgen.analysis.metrics import final_accuracy
from reportgen.analysis.stats import BEYOND_NOISE, NO_NOISE_ESTIMATE, Comparison, Summary
from reportgen.results import RunOutcome, RunResult

ONE_SEED = ("Each setting was trained with one seed, so there is no estimate of seed noise: the differences "
            "below are single measurements, not tested effects.")


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
    """How many seeds stand behind each number, said once."""
    if not any(p.result is not None for p in points):
        return ""
    said = seeds_text(points)
    if not said:
        return ONE_SEED
    return (f"Numbers are means ± standard deviation over {said} seeds per setting; a difference is called "
            "beyond seed noise when its 95 % interval (Welch's t-test) excludes zero.")


def compare_sentence(a_name: str, a: RunOutcome, b_name: str, b: RunOutcome,
                     value: Callable[[RunResult], Any] = final_accuracy, what: str = "final test accuracy",
                     unit: str = "points", digits: int = 1) -> str:
    """One comparison of a against b on `value`: the difference, its interval and what it means."""
    said = _compare_sentence(a_name, a, b_name, b, value, what, unit, digits)
    return said[:1].upper() + said[1:]


def _compare_sentence(a_name: str, a: RunOutcome, b_name: str, b: RunOutcome, value: Callable[[RunResult], Any],
                      what: str, unit: str, digits: int) -> str:
    c = compare_points(a, b, value)
    fmt = (lambda v: w.fmt_float(v, digits))
    spread_a, spread_b = seed_summary(a, value), seed_summary(b, value)
    pct = " %" if unit == "points" else ""
    values = f"{fmt_spread(spread_a, fmt, pct)} against {fmt_spread(spread_b, fmt, pct)}"
    if c.verdict == NO_NOISE_ESTIMATE:
        if c.difference is None or not math.isfinite(c.difference):
            return f"{a_name} against {b_name} ({what}): {values}; not comparable."
        return (f"{a_name} against {b_name} ({what}): {values}, a gap of {_signed(c.difference, digits)} {unit} "
                "from single runs, with no noise estimate.")
    interval = _interval(c, digits, unit)
    if c.verdict == BEYOND_NOISE:
        direction = "above" if c.difference > 0 else "below"
        return (f"{a_name} is {_abs(c.difference, digits)} {unit} {direction} {b_name} in {what} ({values}; "
                f"{interval}): beyond seed noise.")
    return (f"{a_name} and {b_name} cannot be told apart in {what} over {_seeds(c)}: {values} "
            f"({interval}).")


def _interval(c: Comparison, digits: int, unit: str) -> str:
    return (f"difference {_signed(c.difference, digits)} {unit}, 95 % interval {_signed(c.low, digits)} "
            f"to {_signed(c.high, digits)}")


def _seeds(c: Comparison) -> str:
    return f"{c.n_a} seeds" if c.n_a == c.n_b else f"{c.n_a} and {c.n_b} seeds"


def _signed(value: float, digits: int) -> str:
    return f"{value:+.{digits}f}".replace("-", "−")


def _abs(value: float, digits: int) -> str:
    return f"{abs(value):.{digits}f}"
