"""Seed noise in the analysis: points over seeds, mean ± std cells, bands, and comparing sentences."""
from __future__ import annotations

import math

import pytest
from scipy import stats as scipy_stats

from reportgen.analysis import tables
from reportgen.analysis.aggregate import aggregate_points, mean_result
from reportgen.analysis.noise import signed
from reportgen.analysis.observations import observe
from reportgen.analysis.reproduction import check_references
from reportgen.analysis.stats import compare
from reportgen.spec import Reference
from reportgen.views import TableArgs

NAN = math.nan


def seeds(make_outcome, accs_per_seed: list[list[float]], **kw):
    """One outcome per seed of a grid point (same labels but the seed, distinct keys)."""
    return [make_outcome(accs=accs, seed=seed, **kw) for seed, accs in enumerate(accs_per_seed)]


def text(sentences: list[str]) -> str:
    return " ".join(sentences)


def test_a_point_averages_its_seeds_and_keeps_them(make_outcome):
    runs = seeds(make_outcome, [[80.0, 86.0], [82.0, 88.0], [84.0, 90.0]], lr=0.1)
    (point,) = aggregate_points(runs)
    assert point.n == 3 and [e.test_accuracy for e in point.result.epochs] == [82.0, 88.0]
    assert point.planned.labels["seed"] is None and len(point.seeds) == 3


def test_one_seed_is_the_run_itself(make_outcome):
    run = make_outcome(accs=[80.0, 86.0], lr=0.1, seed=0)
    (point,) = aggregate_points([run])
    assert point.result is run.result


def test_runs_that_stopped_at_different_epochs_average_what_each_reached(make_outcome):
    runs = seeds(make_outcome, [[80.0, 86.0], [82.0, 84.0, 86.0, 88.0]], lr=0.1)
    result = mean_result([r.result for r in runs])
    assert [e.test_accuracy for e in result.epochs] == [81.0, 85.0, 86.0, 88.0]


def test_a_diverged_seed_is_counted_while_the_others_average(make_outcome):
    good = [make_outcome(accs=[80.0, 85.0], lr=1.0, seed=s) for s in (0, 1)]
    bad = make_outcome(accs=[10.0, 10.0], train_losses=[NAN, NAN], test_losses=[NAN, NAN], lr=1.0, seed=2,
                       stop_reason="diverged")
    said = text(observe("divergence", aggregate_points(good + [bad]), {}))
    assert "In 1 of 3 seeds" in said
    frame = tables.run_table(TableArgs(kind="table", columns=["model", "outcome", "final_accuracy"]),
                             aggregate_points(good + [bad]))
    assert frame.iloc[0, 1] == "trained in 2 of 3, diverged in 1 of 3"
    cell = frame.iloc[0, 2]
    assert isinstance(cell, tables.Spread) and cell.n == 3 and cell.mean == pytest.approx((85 + 85 + 10) / 3)


def test_a_rate_with_one_diverged_seed_is_said_to_diverge_in_that_many_seeds_not_to_be_unstable(make_outcome):
    """The seeds' mean curve is NaN from the one diverged seed; lr_effect must count seeds, not read the mean."""
    good = [make_outcome(accs=[80.0, 85.0], lr=1.0, seed=s) for s in (0, 1)]
    bad = make_outcome(accs=[10.0, 10.0], train_losses=[NAN, NAN], test_losses=[NAN, NAN], lr=1.0, seed=2,
                       stop_reason="diverged")
    best = [make_outcome(accs=[86.0, 88.0], lr=0.1, seed=s) for s in (0, 1, 2)]
    said = text(observe("lr_effect", aggregate_points(good + [bad] + best), {}))
    assert "lr 1 diverged in 1 of 3 seeds at epoch 1" in said and "unstable" not in said


def test_tables_show_mean_and_std_and_write_both_to_csv(make_outcome, tmp_path):
    points = aggregate_points(seeds(make_outcome, [[86.0], [87.0], [88.0]], lr=0.1, params=500))
    frame = tables.run_table(TableArgs(kind="table", columns=["model", "final_accuracy", "params"]), points)
    assert tables.format_value("final_accuracy", frame.iloc[0, 1]) == "87.00 ± 1.00"
    assert frame.iloc[0, 2] == 500  # equal in every seed: no spread
    assert any("mean ± standard deviation" in n for n in frame.attrs["notes"])
    tables.write_csv(frame, tmp_path / "t.csv")
    header, row = (tmp_path / "t.csv").read_text().splitlines()
    assert "Final test acc. (%) (mean),Final test acc. (%) (std)" in header and row.endswith("87.0,1.0,500")
    long = tables.per_seed_table(TableArgs(kind="table", columns=["model", "final_accuracy"]), points)
    assert list(long.iloc[:, 0]) == [0, 1, 2] and list(long.iloc[:, 2]) == [86.0, 87.0, 88.0]


def test_with_one_seed_tables_are_as_before(make_outcome):
    frame = tables.run_table(TableArgs(kind="table", columns=["model", "final_accuracy"]),
                             aggregate_points([make_outcome(accs=[86.0], lr=0.1, seed=0)]))
    assert frame.iloc[0, 1] == 86.0 and frame.attrs["notes"] == []


# ---------------------------------------------------------------- comparing sentences

def rates(make_outcome, per_rate: dict[float, list[float]]):
    return aggregate_points([make_outcome(accs=[a], lr=lr, seed=s) for lr, finals in per_rate.items()
                             for s, a in enumerate(finals)])


def test_overlapping_rates_are_unresolved(make_outcome):
    from reportgen.analysis.observations import answer

    said = text(answer("lr_effect", rates(make_outcome, {0.01: [86.5, 87.3, 86.9], 0.001: [87.4, 86.6, 87.3]}), {}))
    # two rates of one model over the same seeds: paired, in a family of one comparison (95 %)
    c = compare([87.4, 86.6, 87.3], [86.5, 87.3, 86.9], paired=True)
    assert (f"lr 0.001 for Tutorial MLP (87.1 ± 0.4 %, unresolved against lr 0.01 with 3 seeds "
            f"(CI {signed(c.low, 1)} to {signed(c.high, 1)}))") in said
    assert "ahead" not in said and "level" not in said
    # the findings add what the answer does not say: no restated comparison
    assert "lr 0.01" not in text(observe("lr_effect", rates(make_outcome, {0.01: [86.5, 87.3, 86.9],
                                                                             0.001: [87.4, 86.6, 87.3]}), {}))


def test_separated_rates_are_ahead_with_scipy_s_paired_interval(make_outcome):
    from reportgen.analysis.observations import answer

    a, b = [88.0, 88.4, 88.2], [85.0, 85.3, 84.9]
    said = text(answer("lr_effect", rates(make_outcome, {0.1: a, 0.01: b}), {}))
    c = compare(a, b, paired=True)
    expected = scipy_stats.ttest_1samp([x - y for x, y in zip(a, b)], 0.0).confidence_interval(0.95)
    assert c.verdict == "ahead" and c.test == "paired t" and c.low == pytest.approx(expected.low)
    assert f"{c.difference:.1f} points ahead of lr 0.01 (CI +{c.low:.1f} to +{c.high:.1f})" in said


def test_a_comparing_sentence_is_short_and_complete(make_outcome):
    """The leader first, the gap, both means ± std, the interval, in one short sentence."""
    from reportgen.analysis.families import Family, Pair
    from reportgen.analysis.noise import compare_sentence

    (a,), (b,) = rates(make_outcome, {0.1: [88.0, 88.4, 88.2]}), rates(make_outcome, {0.01: [85.0, 85.3, 84.9]})
    family = Family.of("test", [Pair(a, b, "final_accuracy")])
    c = compare([88.0, 88.4, 88.2], [85.0, 85.3, 84.9], paired=True)
    assert compare_sentence("lr 0.1", a, "lr 0.01", b, family) == (
        f"Lr 0.1 is {c.difference:.1f} points ahead of lr 0.01 (88.2 ± 0.2 vs 85.1 ± 0.2 %, CI +{c.low:.1f} to "
        f"+{c.high:.1f}).")
    assert compare_sentence("lr 0.01", b, "lr 0.1", a, family) == compare_sentence("lr 0.1", a, "lr 0.01", b, family)


def test_with_one_seed_a_gap_is_said_to_have_no_noise_estimate(make_outcome):
    from reportgen.analysis.families import Family, Pair
    from reportgen.analysis.noise import compare_sentence
    from reportgen.analysis.observations import answer

    points = rates(make_outcome, {0.1: [87.2], 0.01: [87.0]})
    said = text(answer("lr_effect", points, {}))
    assert "0.2 points above lr 0.01, one seed each, so untested against noise" in said and "ahead" not in said
    family = Family.of("test", [Pair(points[0], points[1], "final_accuracy")])
    assert "single runs, no noise estimate" in compare_sentence("lr 0.1", points[0], "lr 0.01", points[1], family)


def test_capacity_and_activation_compare_with_their_intervals(make_outcome):
    runs = [make_outcome(model=m, accs=[a], seed=s, params=p) for m, p, accs in
            (("mlp", 100, [85.0, 85.2, 85.1]), ("mlp_wide", 300, [85.1, 85.0, 85.3]), ("mlp_deep", 200, [80.0, 80.2, 80.1]))
            for s, a in enumerate(accs)]
    said = text(observe("capacity", aggregate_points(runs), {"groups": ["mlp,mlp_wide,mlp_deep"]}))
    # three models, so a family of three pairs at 1 − 0.05/3; different architectures: Welch
    wide = compare([85.1, 85.0, 85.3], [85.0, 85.2, 85.1], level=1 - 0.05 / 3, margin=0.5)
    deep = compare([80.0, 80.2, 80.1], [85.0, 85.2, 85.1], level=1 - 0.05 / 3)
    assert wide.test == "Welch" and wide.verdict == "equivalent" and deep.verdict == "ahead"
    assert (f"Wider MLP at 3.00× the parameters: +0.0 points (CI {signed(wide.low, 1)} to {signed(wide.high, 1)}), "
            "equivalent within ±0.5 points") in said
    assert (f"Deeper MLP at 2.00× the parameters: −5.0 points (CI {signed(deep.low, 1)} to {signed(deep.high, 1)}), "
            "ahead") in said
    from reportgen.analysis.observations import answer
    said = text(answer("activation_effect", aggregate_points(runs), {}))
    assert (f"Wider MLP is the most accurate (85.1 ± 0.2 %, equivalent to Tutorial MLP within ±0.5 points "
            f"(CI {signed(wide.low, 1)} to {signed(wide.high, 1)}))") in said


def test_the_generic_comparison_observer_works_along_any_field(make_outcome):
    runs = [make_outcome(accs=[a], seed=s, optimizer=opt) for opt, accs in
            (("adam", [97.0, 97.2, 97.1]), ("sgd", [91.0, 91.5, 90.8])) for s, a in enumerate(accs)]
    said = text(observe("compare", aggregate_points(runs), {"along": "optimizer"}))
    assert "Final test accuracy by optimizer: Adam 97.1 ± 0.1 %, SGD 91.1 ± 0.4 %." in said
    assert "Adam is 6.0 points ahead of SGD" in said


def test_epochs_to_target_uses_the_median_and_counts_misses(make_outcome):
    runs = [make_outcome(accs=accs, lr=0.1, seed=s, until_accuracy=85.0, max_epochs=5)
            for s, accs in enumerate([[80.0, 86.0], [80, 82, 86.0], [80.0, 81, 82, 83, 84]])]
    said = text(observe("convergence", aggregate_points(runs), {}))
    assert "epoch 2.5 (2 of 3 seeds; 2–3)" in said  # the median of the seeds that reached it, and their range


def test_the_reproduction_check_places_the_reference_among_the_seeds(make_outcome):
    runs = seeds(make_outcome, [[86.0], [87.0], [88.0]], lr=0.1)
    ref = Reference(select={"lr": 0.1}, metric="final_accuracy", value=88.5, tolerance=2.0)
    (check,) = check_references("q", [ref], runs, "cpu")
    assert check.measured == 87.0 and check.seeds == 3 and check.verdict == "inside prediction interval"
    assert check.in_seed_range is False and check.sigmas == pytest.approx(1.5)
    half = scipy_stats.t.ppf(0.975, 2) * 1.0 * math.sqrt(1 + 1 / 3)
    assert check.prediction == pytest.approx((87.0 - half, 87.0 + half))


# ---------------------------------------------------------------- answers

def test_the_answer_changes_when_the_numbers_change(make_outcome):
    from reportgen.analysis.observations import answer

    before = answer("lr_effect", rates(make_outcome, {0.1: [88.0, 88.4, 88.2], 0.01: [85.0, 85.3, 84.9]}), {})
    after = answer("lr_effect", rates(make_outcome, {0.1: [85.0, 85.4, 85.2], 0.01: [86.0, 85.3, 86.9]}), {})
    assert before == ["Best learning rate after 1 epoch: lr 0.1 for Tutorial MLP (88.2 ± 0.2 %, "
                      "3.1 points ahead of lr 0.01 (CI +2.8 to +3.5))."]
    assert after == ["Best learning rate after 1 epoch: lr 0.01 for Tutorial MLP (86.1 ± 0.8 %, "
                     "unresolved against lr 0.1 with 3 seeds (CI −1.4 to +3.1))."]


def test_labels_are_shortened_after_their_first_mention():
    from types import SimpleNamespace

    from reportgen.analysis.prose import shorten_labels

    spec = SimpleNamespace(models={"m": SimpleNamespace(label="Tutorial MLP 784-512-512-10", short="MLP")})
    texts = shorten_labels(["Tutorial MLP 784-512-512-10 wins.", "Tutorial MLP 784-512-512-10 again."], spec)
    assert texts == ["Tutorial MLP 784-512-512-10 wins.", "MLP again."]
    named: set[str] = set()  # shared by the sections of one report: the full label once in the whole report
    assert shorten_labels(["Tutorial MLP 784-512-512-10 wins."], spec, named) == ["Tutorial MLP 784-512-512-10 wins."]
    assert shorten_labels(["Tutorial MLP 784-512-512-10 again."], spec, named) == ["MLP again."]


def test_the_seeds_note_is_one_sentence_for_the_whole_report(make_outcome):
    from reportgen.analysis.noise import ONE_SEED, seeds_note

    three = rates(make_outcome, {0.1: [88.0, 88.4, 88.2]})
    assert seeds_note(three).startswith("Numbers are means ± standard deviation over 3 seeds per setting")
    note = seeds_note(three)
    assert "paired t-test on the per-seed differences" in note and "Welch's t-test otherwise" in note
    assert "Ahead:" in note and "Equivalent:" in note and "Unresolved:" in note and "Bonferroni-corrected" in note
    assert "100 − 5/m %" in note  # the level of a family of m comparisons
    assert seeds_note(rates(make_outcome, {0.1: [88.0]})) == ONE_SEED


def test_epochs_to_target_cells_give_the_median_and_range(make_outcome):
    runs = [make_outcome(accs=accs, lr=0.1, seed=s, until_accuracy=85.0, max_epochs=9)
            for s, accs in enumerate([[80.0, 86.0], [80.0, 81.0, 86.0], [80.0, 86.0]])]
    frame = tables.run_table(TableArgs(kind="table", columns=["model", "epochs_to_target"]), aggregate_points(runs))
    assert frame.iloc[0, 1] == "2 (median; 2–3)"
