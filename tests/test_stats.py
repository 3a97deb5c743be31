"""Seed statistics on synthetic numbers with a known spread: summaries and Welch's comparison
(grouping over seeds is tested through results.json, tests/test_results_file.py)."""
from __future__ import annotations

import math

import pytest
from scipy import stats as scipy_stats

from reportgen.analysis.stats import AHEAD, EQUIVALENT, NO_NOISE_ESTIMATE, UNRESOLVED, compare, summarize
from reportgen.results import Budget, EpochMetrics, PlannedRun, RunOutcome, RunResult


def seed_run(seed: int, accs: list[float], lr: float = 0.1, model: str = "mlp", losses: list[float] | None = None,
             stop: str = "completed", until: float | None = None, missing: bool = False) -> RunOutcome:
    """One seed of a run point: labels equal to its siblings' except `seed`."""
    losses = losses or [1.0 / (i + 1) for i in range(len(accs))]
    budget = Budget(5, until)
    labels = {"model": model, "lr": lr, "seed": seed, "epochs": 5, "until_accuracy": until, "model_label": model.upper()}
    request = {"arch": model, "lr": lr, "seed": seed}
    key = f"{model}-{lr}-{seed}"
    planned = PlannedRun("q", key, request, budget, labels)
    if missing:
        return RunOutcome(planned, None)
    epochs = [EpochMetrics(i + 1, loss, loss * 1.1, acc, 1.0) for i, (acc, loss) in enumerate(zip(accs, losses))]
    return RunOutcome(planned, RunResult(key, request, 1000, epochs, stop, {}, budget))


# ---------------------------------------------------------------- summarize

def test_summary_of_known_numbers():
    s = summarize([1.0, 2.0, 3.0, None, 6.0])
    assert (s.n, s.mean, s.min, s.max, s.non_finite) == (4, 3.0, 1.0, 6.0, 0)
    assert s.std == pytest.approx(math.sqrt(14 / 3))  # ddof=1: squared deviations 4+1+0+9 over 3


def test_one_value_has_no_spread_and_none_has_no_mean():
    one, none = summarize([85.0]), summarize([None])
    assert (one.n, one.mean, one.std) == (1, 85.0, None)
    assert (none.n, none.mean, none.std, none.min) == (0, None, None, None)


def test_non_finite_values_are_counted_not_averaged():
    s = summarize([0.5, float("nan"), 0.7, float("inf")])
    assert (s.n, s.non_finite, s.values) == (2, 2, (0.5, 0.7))
    assert s.mean == pytest.approx(0.6)


# ---------------------------------------------------------------- compare

A = [85.1, 85.9, 84.7, 85.5]
B = [83.9, 83.5, 84.3]


def test_interval_and_p_value_are_scipys_welch():
    c = compare(A, B)
    expected = scipy_stats.ttest_ind(A, B, equal_var=False)
    interval = expected.confidence_interval(0.95)
    assert c.difference == pytest.approx(sum(A) / 4 - sum(B) / 3)
    assert (c.low, c.high) == (pytest.approx(interval.low), pytest.approx(interval.high))
    assert c.p_value == pytest.approx(expected.pvalue)
    assert (c.low, c.high, c.p_value) == pytest.approx((0.50732, 2.29268, 0.010077), abs=1e-5)  # scipy 1.17
    assert (c.n_a, c.n_b, c.level) == (4, 3, 0.95)
    assert c.low > 0 and c.verdict == AHEAD


def test_a_wider_level_gives_a_wider_interval():
    narrow, wide = compare(A, B, 0.90), compare(A, B, 0.99)
    assert wide.low < narrow.low < narrow.high < wide.high


def test_overlapping_groups_are_unresolved():
    c = compare([85.0, 86.0, 84.0], [85.5, 84.5, 86.5])
    assert c.low < 0 < c.high
    assert c.verdict == UNRESOLVED


def test_separated_groups_are_ahead_in_either_direction():
    assert compare([70.0, 70.5, 69.5], [80.0, 80.4, 79.8]).verdict == AHEAD
    assert compare([80.0, 80.4, 79.8], [70.0, 70.5, 69.5]).verdict == AHEAD


@pytest.mark.parametrize("a, b", [([85.0], [80.0, 81.0]), ([85.0, 86.0], [80.0]), ([85.0], [85.0])])
def test_one_value_on_a_side_gives_no_noise_estimate(a, b):
    c = compare(a, b)
    assert c.verdict == NO_NOISE_ESTIMATE
    assert (c.low, c.high, c.p_value) == (None, None, None)
    assert c.difference == pytest.approx(sum(a) / len(a) - sum(b) / len(b))


def test_nan_values_are_left_out_of_the_comparison():
    c = compare([85.0, float("nan")], [80.0, 81.0])
    assert c.verdict == NO_NOISE_ESTIMATE and c.n_a == 1


def test_equal_constants_are_equivalent():
    c = compare([85.3, 85.3, 85.3], [85.3, 85.3])
    assert (c.difference, c.low, c.high, c.p_value, c.verdict) == (0.0, 0.0, 0.0, 1.0, EQUIVALENT)


def test_different_constants_are_ahead_with_a_zero_width_interval():
    c = compare([86.0, 86.0], [85.0, 85.0, 85.0])
    assert (c.difference, c.low, c.high, c.p_value, c.verdict) == (1.0, 1.0, 1.0, 0.0, AHEAD)


def test_one_constant_side_still_uses_welch():
    c = compare([85.0, 85.0, 85.0], [84.0, 86.0, 85.5])
    assert c.low < 0 < c.high and c.verdict == UNRESOLVED
