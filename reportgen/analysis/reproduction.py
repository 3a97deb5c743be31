"""The reproduction check: each reference number from the source documents against our measurement."""
from __future__ import annotations

import math
from dataclasses import dataclass

from reportgen.analysis import naming
from reportgen.analysis import wording as w
from reportgen.analysis.metrics import metric
from reportgen.results import STOP_REASONS, RunOutcome
from reportgen.spec import Reference

VERDICTS = ("within tolerance", "outside tolerance", "not measured")
NOT_REACHED = "not reached"
CLEAN_STOPS = ("completed", "target reached")  # stop reasons that need no mention in a reason


@dataclass(frozen=True)
class Check:
    question: str
    label: str  # the run in words: model label, plus the other selected fields
    metric: str  # a checkable name in metrics.METRICS
    reference: float | str  # the source's number, or "not reached"
    measured: float | int | str | None  # None when the run is missing or the metric undefined for it
    difference: float | None  # measured − reference, when both are numbers
    tolerance: float
    verdict: str  # one of VERDICTS
    reason: str  # why it differs (outside tolerance) or why it was not measured; "" otherwise
    source: str
    unit: str
    note: str = ""  # the spec author's note on this reference


def check_references(question_id: str, references: list[Reference], outcomes: list[RunOutcome],
                     profile: str) -> list[Check]:
    """One Check per reference, in the order the question lists them."""
    return [_check(question_id, ref, outcomes, profile) for ref in references]


def _check(question_id: str, ref: Reference, outcomes: list[RunOutcome], profile: str) -> Check:
    matching = [o for o in outcomes if _matches(ref.select, o.planned.labels)]
    label = _label(ref, matching[0] if matching else None)

    def make(measured, difference, verdict, reason) -> Check:
        return Check(question_id, label, ref.metric, ref.value, measured, difference, ref.tolerance, verdict,
                     reason, ref.source, ref.unit, ref.note)

    if not matching:
        return make(None, None, "not measured", "no run of this question matches the selection")
    found = [(o, metric(ref.metric).value(o.result)) for o in matching if o.result is not None]
    found = [(o, value) for o, value in found if value is not None]
    if not found:
        missing = all(o.result is None for o in matching)
        return make(None, None, "not measured",
                    "the run is not in the cache" if missing else f"{ref.metric} is not defined for this run")
    outcome, measured = found[0]
    difference, within = _compare(ref.value, measured, ref.tolerance)
    if within:
        return make(measured, difference, "within tolerance", "")
    return make(measured, difference, "outside tolerance", _reason(ref, outcome, profile))


def _matches(select: dict, labels: dict) -> bool:
    return all(_same(labels.get(key), value) for key, value in select.items())


def _same(a: object, b: object) -> bool:
    if w.is_number(a) and w.is_number(b):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
    return a == b


def _label(ref: Reference, outcome: RunOutcome | None) -> str:
    others = [key for key in ref.select if key != "model"]
    if outcome is not None:
        return naming.describe_run(outcome, others)
    return ", ".join(f"{key} = {w.fmt_value(value)}" for key, value in ref.select.items())


def _compare(reference: float | str, measured: float | int | str, tolerance: float) -> tuple[float | None, bool]:
    """(measured − reference or None, whether it is within tolerance); 'not reached' only matches itself."""
    if isinstance(reference, str) or isinstance(measured, str):
        return None, reference == measured == NOT_REACHED
    difference = float(measured) - float(reference)
    return difference, abs(difference) <= tolerance + 1e-9  # 1e-9: 87.3 − 85.3 is not exactly 2.0 in floats


def _reason(ref: Reference, outcome: RunOutcome, profile: str) -> str:
    result = outcome.result
    if profile == "smoke":
        return f"smoke profile: tiny subset and {w.plural(len(result.epochs), 'epoch')}, not comparable"
    if outcome.planned.overlays:
        return f"profile changed the protocol: {'; '.join(outcome.planned.overlays)}"
    if ref.metric == "params":
        return "architecture differs from the reference"
    reason = "single-seed reference; seed and initialisation differ"
    if result.stop_reason not in CLEAN_STOPS:
        reason += f"; our run stopped: {result.stop_reason} ({STOP_REASONS.get(result.stop_reason, '?')})"
    return reason
