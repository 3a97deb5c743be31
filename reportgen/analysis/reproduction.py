"""The reproduction check: each reference number from the source documents against our measurement.

A reference is one run from another machine, so the question is whether it could have been one more of our seeds:
with two or more seeds (and some spread among them) the verdict is whether it lies inside the 95 % prediction
interval for one new run, mean ± t(0.975, n − 1) · s · √(1 + 1/n). With one seed, or seeds that all measured the
same, there is no spread to predict from and the verdict is the tolerance's (the check says so). The difference
from our mean, the tolerance, the seeds' range and how many standard deviations away are kept beside it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import fmean, median, stdev

from reportgen.analysis import naming
from reportgen.analysis import wording as w
from reportgen.analysis.metrics import metric
from reportgen.analysis.stats import prediction_interval
from reportgen.results import STOP_REASONS, RunOutcome
from reportgen.spec import Reference

INSIDE, OUTSIDE = "inside prediction interval", "outside prediction interval"
WITHIN, BEYOND = "within tolerance", "outside tolerance"
NOT_MEASURED = "not measured"
VERDICTS = (INSIDE, OUTSIDE, WITHIN, BEYOND, NOT_MEASURED)
BY_INTERVAL, BY_TOLERANCE = "prediction interval", "tolerance"
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
    prediction: tuple[float, float] | None = None  # the 95 % prediction interval for one new run; None: tolerance only
    judged_by: str = BY_TOLERANCE  # BY_INTERVAL or BY_TOLERANCE

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

    def make(measured, difference, verdict, reason, spread=(1, None, None, None), prediction=None) -> Check:
        return Check(question_id, label, ref.metric, ref.value, measured, difference, ref.tolerance, verdict,
                     reason, ref.source, ref.unit, ref.note, *spread, prediction,
                     BY_INTERVAL if prediction else BY_TOLERANCE)

    if not matching:
        return make(None, None, NOT_MEASURED, "no run of this question matches the selection")
    found = [(o, metric(ref.metric).value(o.result)) for o in matching if o.result is not None]
    found = [(o, value) for o, value in found if value is not None]
    if not found:
        missing = all(o.result is None for o in matching)
        return make(None, None, NOT_MEASURED,
                    "the run is not in the cache" if missing else f"{ref.metric} is not defined for this run")
    outcome, values = found[0][0], [value for _, value in found]
    measured, spread = _over_seeds(values, ref.value)
    difference, within = _compare(ref.value, measured, ref.tolerance)
    prediction = _prediction(values, ref.value)
    if prediction is not None:
        inside = prediction[0] - 1e-9 <= float(ref.value) <= prediction[1] + 1e-9
        reason = "" if inside else _reason(ref, outcome, profile, spread[0])
        return make(measured, difference, INSIDE if inside else OUTSIDE, reason, spread, prediction)
    if within:
        return make(measured, difference, WITHIN, _tolerance_only(values), spread)
    reason = "; ".join(filter(None, [_reason(ref, outcome, profile, spread[0]), _tolerance_only(values)]))
    return make(measured, difference, BEYOND, reason, spread)


def _prediction(values: list, reference: float | str) -> tuple[float, float] | None:
    """The 95 % prediction interval of one new run from every seed's number; None when the seeds give no spread
    to predict from (one seed, equal values, a seed that did not reach the target) or the reference is a word."""
    if not w.is_number(reference) or not all(w.is_finite(v) for v in values):
        return None
    return prediction_interval([float(v) for v in values])


def _tolerance_only(values: list) -> str:
    """Why a check with several seeds fell back to the tolerance ('' with one seed: the report says so once)."""
    if len(values) < 2:
        return ""
    if all(w.is_finite(v) for v in values):
        return "judged by tolerance: the seeds show no spread"
    return "judged by tolerance: not every seed has a number"


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
