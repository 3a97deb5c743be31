"""Number formatting and run selection shared by the observers and the reproduction check; run names come from
naming.py (describe_run and name_runs are re-exported here for the observers' `w.` calls)."""
from __future__ import annotations

import math
from typing import Callable, Iterable

from reportgen import results
from reportgen.analysis import naming
from reportgen.results import RunOutcome

# Defined once elsewhere, named here too for the observers' `w.` calls: run names in naming.py, chance in results.py.
describe_run, name_runs = naming.describe_run, naming.name_runs
at_chance = results.at_chance


def is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_finite(value: object) -> bool:
    return is_number(value) and math.isfinite(value)


def fmt_float(value: float | None, digits: int) -> str:
    """`value` with `digits` decimals; NaN and infinities spelled out, None as 'n/a'."""
    if value is None:
        return "n/a"
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "infinity" if value > 0 else "-infinity"
    return f"{value:.{digits}f}"


def fmt_acc(value: float | None) -> str:
    """An accuracy in percent: '87.3 %'."""
    text = fmt_float(value, 1)
    return f"{text} %" if is_finite(value) else text


def fmt_points(value: float) -> str:
    """A signed difference of accuracies: '+0.4 points'."""
    return f"{value:+.1f} points" if math.isfinite(value) else fmt_float(value, 1)


def fmt_loss(value: float | None) -> str:
    return fmt_float(value, 3)


def fmt_sig(value: float | None) -> str:
    """Three significant figures, for gradients that span many decades."""
    if value is None or not math.isfinite(value):
        return fmt_float(value, 0)
    return f"{value:.3g}"


def fmt_lr(value: float | None) -> str:
    """A learning rate without trailing zeros: 1.0 → '1', 0.0010 → '0.001'."""
    if not is_finite(value):
        return fmt_float(value, 0)
    return naming.lr_text(value)


def fmt_count(value: int) -> str:
    return f"{value:,}"


def fmt_ratio(value: float) -> str:
    return f"{value:.2f}×" if math.isfinite(value) else fmt_float(value, 2)


def fmt_value(value: object) -> str:
    """A run label's value as prose: learning rates without trailing zeros."""
    return fmt_lr(value) if isinstance(value, float) else str(value)


def join_words(items: Iterable[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} and {items[-1]}"


def plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


# ---------------------------------------------------------------- run selection

TIE_POINTS = 0.05  # accuracy gaps below this print as 0.0 points: no difference worth a word


def measured(outcomes: list[RunOutcome]) -> list[RunOutcome]:
    """The outcomes with at least one trained epoch (runs missing from the cache are left out)."""
    return [o for o in outcomes if o.result is not None and o.result.epochs]


def distinct(outcomes: list[RunOutcome]) -> list[RunOutcome]:
    """One outcome per trajectory (cache key): the one that saw the most epochs."""
    by_key: dict[str, RunOutcome] = {}
    for o in measured(outcomes):
        kept = by_key.get(o.planned.key)
        if kept is None or len(o.result.epochs) > len(kept.result.epochs):
            by_key[o.planned.key] = o
    return list(by_key.values())


def group_by_model(outcomes: list[RunOutcome]) -> dict[str, list[RunOutcome]]:
    groups: dict[str, list[RunOutcome]] = {}
    for o in outcomes:
        groups.setdefault(str(o.planned.labels.get("model")), []).append(o)
    return groups


def ties(items: list, value: Callable[[object], float], best: float) -> list:
    """The items whose value prints (one decimal) the same as `best`: a tie the reader can see."""
    return [item for item in items if fmt_float(value(item), 1) == fmt_float(best, 1)]
