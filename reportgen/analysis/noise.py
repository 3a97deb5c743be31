"""Claims with their seed noise: numbers as 'mean ± std', comparisons as a difference with its family-corrected
interval (analysis/families.py) and one of three verdicts. Every observer that ranks or compares says it here.
"""
from __future__ import annotations

import math
import re
from typing import Any, Callable

from reportgen.analysis import wording as w
from reportgen.analysis.aggregate import seed_summary, seeds_text
from reportgen.analysis.families import Family, Pair
from reportgen.analysis.metrics import final_accuracy, metric
from reportgen.analysis.stats import (AHEAD, ALPHA, EQUIVALENT, NO_NOISE_ESTIMATE, POWER, UNRESOLVED, Comparison,
                                      Summary, resolvable_difference)
from reportgen.results import RunOutcome, RunResult

ONE_SEED = ("Each setting was trained with one seed, so there is no estimate of seed noise: the differences "
            "below are single measurements, not tested effects.")
CI = "CI"  # the report-wide note (seeds_note) says once what this interval is and how it is corrected


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
    """How many seeds stand behind each number, what the three verdicts mean, what a family is and how it is
    corrected: said once per report (the Answers page)."""
    if not any(p.result is not None for p in points):
        return ""
    said = seeds_text(points)
    if not said:
        return ONE_SEED
    return (f"Numbers are means ± standard deviation over {said} seeds per setting (epochs to a target: median and "
            f"range). A comparison is the difference of two settings' means with its confidence interval ({CI}): a "
            "paired t-test on the per-seed differences where seed s of both starts from the same weights and batch "
            "order, Welch's t-test otherwise. Ahead: the CI excludes zero. Equivalent: it lies within ± the metric's "
            "margin (0.5 points of accuracy unless the question says otherwise). Unresolved: neither; these seeds "
            "cannot tell. Each CI is Bonferroni-corrected for every pairwise comparison the question's observer "
            f"could state (m of them: 100 − {100 * ALPHA:g}/m % each), so all its verdicts hold "
            f"together at {100 * (1 - ALPHA):g} %.")


def family_note(families: list[Family]) -> str:
    """Per question: which test each family used, at which level, and the smallest gap its design resolves."""
    parts = [_family_part(f) for f in families if f.size]
    parts = [p for p in parts if p]
    return f"Tests: {'; '.join(parts)}." if parts else ""


def _family_part(f: Family) -> str:
    judged = [(p, c) for p, c in f.comparisons() if c.low is not None]
    if not judged:
        return (f"{f.observer}: {w.plural(f.size, 'comparison')}, none with two or more measured seeds on both "
                "sides (no test)")
    tests = " and ".join(f.tests())
    said = f"{f.observer}: {w.plural(f.size, 'comparison')} ({f.what}), {tests}, {_level(f.level)} intervals"
    resolution = resolution_text(judged)
    return f"{said}; {resolution}" if resolution else said


def _level(level: float) -> str:
    return f"{100 * level:.3g} %"


def resolution_text(judged: list[tuple[Pair, Comparison]]) -> str:
    """'gaps of 1.2–3.4 points are resolvable at 80 % power': per metric, from each comparison's measured noise."""
    by_metric: dict[str, list[float]] = {}
    for pair, c in judged:
        mde = resolvable_difference(c)
        if mde is not None:
            by_metric.setdefault(pair.metric, []).append(mde)
    parts = []
    for name, values in by_metric.items():
        unit, digits = unit_of(name)
        low, high = min(values), max(values)
        span = f"{low:.{digits}f}" if f"{low:.{digits}f}" == f"{high:.{digits}f}" else f"{low:.{digits}f}–{high:.{digits}f}"
        what = metric(name).axis_label.split(" (")[0].replace("\n", " ").lower()
        parts.append(f"{what} gaps of {span}{' ' + unit if unit else ''}")
    if not parts:
        return ""
    seeds = sorted({n for _, c in judged for n in (c.n_a, c.n_b)})
    said = str(seeds[0]) if len(seeds) == 1 else f"{seeds[0]}–{seeds[-1]}"
    return f"with {said} seeds, {w.join_words(parts)} or more are resolvable at {100 * POWER:g} % power"


def unit_of(name: str) -> tuple[str, int]:
    """How a difference of this metric is written: ('points', 1) for accuracies, ('epochs', 1), ('', 3) for losses."""
    m = metric(name)
    if m.unit == "%":
        return "points", 1
    if "epoch" in name:
        return "epochs", 1
    return "", 3


def seeds_n(c: Comparison) -> str:
    """'3 seeds' or '3 and 6 seeds': what each side of a comparison rests on."""
    return f"{c.n_a} seeds" if c.n_a == c.n_b else f"{c.n_a} and {c.n_b} seeds"


def _margin(c: Comparison, unit: str, digits: int) -> str:
    """'±0.5 points', '±1 epoch', '±0.02'."""
    unit = unit[:-1] if c.margin == 1 and unit.endswith("s") else unit
    return f"±{c.margin:g}{' ' + unit if unit else ''}"


def _ahead_first(c: Comparison, better: str | None) -> bool:
    """Whether a (the comparison's first side) is the one ahead: higher, or lower where lower is better."""
    return (c.difference >= 0) != (better == "lower")


def compare_sentence(a_name: str, a: RunOutcome, b_name: str, b: RunOutcome, family: Family,
                     name: str = "final_accuracy", what: str = "") -> str:
    """One comparison of a against b on metric `name`, in the family's terms:
    'Lr 0.1 is 4.6 points ahead of lr 0.01 (88.0 ± 0.4 vs 83.3 ± 0.1 %, CI +3.6 to +5.6).'
    'Wider MLP is equivalent to Tutorial MLP within ±0.5 points (…, CI −0.3 to +0.4).'
    'Lr 0.1 against lr 0.01: unresolved with 3 seeds (…, CI −3.0 to +5.0).'"""
    said = _compare_sentence(a_name, a, b_name, b, family, name, f" in {what}" if what else "")
    return said[:1].upper() + said[1:]


def _compare_sentence(a_name: str, a: RunOutcome, b_name: str, b: RunOutcome, family: Family, name: str,
                      in_what: str) -> str:
    c = family.compare(a, b, name)
    unit, digits = unit_of(name)
    value = metric(name).value
    if c.difference is None or not math.isfinite(c.difference):
        return f"{a_name} against {b_name}{in_what}: {_values(a, b, value, unit, digits)}; not comparable."
    if c.verdict in (AHEAD, NO_NOISE_ESTIMATE) and not _ahead_first(c, metric(name).better):
        a_name, a, b_name, b, c = b_name, b, a_name, a, family.compare(b, a, name)
    values = _values(a, b, value, unit, digits)
    gap = f"{_abs(c.difference, digits)}{' ' + unit if unit else ''}"
    if c.verdict == NO_NOISE_ESTIMATE:
        return f"{a_name} is {gap} {'above' if c.difference >= 0 else 'below'} {b_name}{in_what} ({values}; single runs, no noise estimate)."
    if c.verdict == AHEAD:
        return f"{a_name} is {gap} ahead of {b_name}{in_what} ({values}, {_interval(c, digits)})."
    if c.verdict == EQUIVALENT:
        return f"{a_name} is equivalent to {b_name}{in_what} within {_margin(c, unit, digits)} ({values}, {_interval(c, digits)})."
    return f"{a_name} against {b_name}{in_what}: unresolved with {seeds_n(c)} ({values}, {_interval(c, digits)})."


def gap_text(a: RunOutcome, b: RunOutcome, family: Family, name: str = "final_accuracy", verdict: bool = True) -> str:
    """a − b with its interval and verdict, for a list: '+0.2 points (CI −0.2 to +0.6), equivalent within ±0.5 points'
    (without the verdict when the sentence states it once for several gaps)."""
    c = family.compare(a, b, name)
    unit, digits = unit_of(name)
    if c.difference is None or not math.isfinite(c.difference):
        return "not comparable"
    gap = f"{signed(c.difference, digits)}{' ' + unit if unit else ''}"
    if c.verdict == NO_NOISE_ESTIMATE:
        return f"{gap}, single runs"
    said = f"{gap} ({_interval(c, digits)})"
    return f"{said}, {verdict_words(c, unit, digits)}" if verdict else said


def verdict_words(c: Comparison, unit: str = "points", digits: int = 1) -> str:
    """'ahead', 'equivalent within ±0.5 points', 'unresolved with 3 seeds'."""
    if c.verdict == EQUIVALENT:
        return f"equivalent within {_margin(c, unit, digits)}"
    if c.verdict == UNRESOLVED:
        return f"unresolved with {seeds_n(c)}"
    return c.verdict


def edge(leader: RunOutcome, other: RunOutcome, other_name: str, family: Family, name: str = "final_accuracy",
         interval: bool = True) -> str:
    """The answer's comparison of the leader with the next: '4.6 points ahead of lr 0.01 (CI +3.6 to +5.6)' /
    'equivalent to lr 0.01 within ±0.5 points (CI −0.3 to +0.4)' / 'unresolved against lr 0.01 with 3 seeds
    (CI −3.0 to +5.0)' / '… one seed each, so untested against noise'.

    `interval=False` where the observer's findings give every interval anyway (capacity).
    """
    c = family.compare(leader, other, name)
    unit, digits = unit_of(name)
    if c.difference is None or not math.isfinite(c.difference):
        return f"ahead of {other_name}"
    gap = f"{_abs(c.difference, digits)} {unit}".rstrip()
    if c.verdict == NO_NOISE_ESTIMATE or c.low is None:
        return f"{gap} above {other_name}, one seed each, so untested against noise"
    ci = f" ({_interval(c, digits)})" if interval else ""
    if c.verdict == AHEAD:
        return f"{gap} ahead of {other_name}{ci}"
    if c.verdict == EQUIVALENT:
        return f"equivalent to {other_name} within {_margin(c, unit, digits)}{ci}"
    return f"unresolved against {other_name} with {seeds_n(c)}{ci}"


def _values(a: RunOutcome, b: RunOutcome, value: Callable[[RunResult], Any], unit: str, digits: int) -> str:
    """'88.0 ± 0.4 vs 83.3 ± 0.1 %': the unit said once, after the second."""
    fmt = (lambda v: w.fmt_float(v, digits))
    pct = " %" if unit == "points" else ""
    return f"{fmt_spread(seed_summary(a, value), fmt)} vs {fmt_spread(seed_summary(b, value), fmt, pct)}"


def _interval(c: Comparison, digits: int) -> str:
    return f"{CI} {signed(c.low, digits)} to {signed(c.high, digits)}"


INTERVAL_TEXT = re.compile(rf"{CI} [−+-]?[\d.]+ to [−+-]?[\d.]+")  # what _interval writes, to find it in a sentence


def signed(value: float, digits: int) -> str:
    """'+3.6', '−0.8' (a true minus sign)."""
    return f"{value:+.{digits}f}".replace("-", "−")


def _abs(value: float, digits: int) -> str:
    return f"{abs(value):.{digits}f}"
