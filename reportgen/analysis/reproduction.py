"""The reproduction check: each reference number from the source documents against our measurement.

With several seeds the measurement is the seeds' mean (median epoch for epochs_to_target), and the
reference is also placed in the seeds' distribution: inside their range or not, and how many
standard deviations from their mean.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import fmean, median, stdev

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
    seeds: int = 1  # measured seeds behind `measured`
    seed_min: float | None = None  # the seeds' range, with 2 or more numeric seeds
    seed_max: float | None = None
    sigmas: float | None = None  # (reference − mean) / std of the seeds; None without a spread

    @property
    def in_seed_range(self) -> bool | None:
        """Whether the reference lies within the seeds' min–max; None when there is no range to speak of."""
        if self.seed_min is None or not w.is_number(self.reference):
            return None
        return self.seed_min - 1e-9 <= float(self.reference) <= self.seed_max + 1e-9


def check_references(question_id: str, references: list[Reference], outcomes: list[RunOutcome],
                     profile: str) -> list[Check]:
    """One Check per reference, in the order the question lists them."""
    return [_check(question_id, ref, outcomes, profile) for ref in references]


def _check(question_id: str, ref: Reference, outcomes: list[RunOutcome], profile: str) -> Check:
    matching = [o for o in outcomes if matches(ref.select, o.planned.labels)]
    label = _label(ref, matching[0] if matching else None)

    def make(measured, difference, verdict, reason, spread=(1, None, None, None)) -> Check:
        return Check(question_id, label, ref.metric, ref.value, measured, difference, ref.tolerance, verdict,
                     reason, ref.source, ref.unit, ref.note, *spread)

    if not matching:
        return make(None, None, "not measured", "no run of this question matches the selection")
    found = [(o, metric(ref.metric).value(o.result)) for o in matching if o.result is not None]
    found = [(o, value) for o, value in found if value is not None]
    if not found:
        missing = all(o.result is None for o in matching)
        return make(None, None, "not measured",
                    "the run is not in the cache" if missing else f"{ref.metric} is not defined for this run")
    outcome = found[0][0]
    measured, spread = _over_seeds([value for _, value in found], ref.value)
    difference, within = _compare(ref.value, measured, ref.tolerance)
    if within:
        return make(measured, difference, "within tolerance", "", spread)
    return make(measured, difference, "outside tolerance", _reason(ref, outcome, profile, spread[0]), spread)


def _over_seeds(values: list, reference: float | str) -> tuple[float | int | str, tuple]:
    """(the measurement, (seeds, min, max, sigmas)): a mean of numbers, a median epoch, or 'not reached'."""
    numbers = [float(v) for v in values if w.is_number(v) and math.isfinite(v)]
    n = len(values)
    if len(values) == 1:
        return values[0], (1, None, None, None)
    if len(numbers) < n / 2:  # most seeds never reached the target
        return NOT_REACHED, (n, None, None, None)
    all_ints = all(isinstance(v, int) for v in values if w.is_number(v))
    measured = median(numbers) if all_ints and len(numbers) < n else fmean(numbers)
    if all_ints and measured == int(measured):
        measured = int(measured)
    if len(numbers) < 2:
        return measured, (n, None, None, None)
    std = stdev(numbers)
    sigmas = (float(reference) - fmean(numbers)) / std if w.is_number(reference) and std > 0 else None
    return measured, (n, min(numbers), max(numbers), sigmas)


def matches(select: dict, labels: dict) -> bool:
    """Whether a reference's `select` names this run point (numbers compared with a float tolerance)."""
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


def _reason(ref: Reference, outcome: RunOutcome, profile: str, seeds: int = 1) -> str:
    result = outcome.result
    if profile == "smoke":
        return f"smoke profile: tiny subset and {w.plural(len(result.epochs), 'epoch')}, not comparable"
    if outcome.planned.overlays:
        return f"profile changed the protocol: {'; '.join(outcome.planned.overlays)}"
    if ref.metric == "params":
        return "architecture differs from the reference"
    reason = ("single-seed reference; seed and initialisation differ" if seeds == 1 else
              f"single-seed reference against the mean of our {seeds} seeds")
    if result.stop_reason not in CLEAN_STOPS:
        reason += f"; our run stopped: {result.stop_reason} ({STOP_REASONS.get(result.stop_reason, '?')})"
    return reason
