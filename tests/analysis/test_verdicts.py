"""The three verdicts, the families' correction and the pairing rule, on synthetic outcomes (no training)."""
from __future__ import annotations

import random

import pytest

from reportgen.analysis import pairing
from reportgen.analysis.aggregate import aggregate_points, compare_points
from reportgen.analysis.families import Family, all_pairs, margins_in_force
from reportgen.analysis.metrics import final_accuracy
from reportgen.analysis.observations import answer, family, observe
from reportgen.analysis.stats import (AHEAD, ALPHA, EQUIVALENT, PAIRED, UNRESOLVED, VERDICTS, WELCH, compare,
                                      prediction_interval, resolvable_difference)

REPETITIONS = 400


def copies(make_outcome, rng: random.Random, k: int, n: int, mean: float = 85.0, sd: float = 1.0):
    """k settings that are the same network under different names (different presets: no pairing), each
    over its own n seeds, every final accuracy drawn from one distribution: every true difference is zero."""
    return aggregate_points([make_outcome(model=f"copy{i}", accs=[rng.gauss(mean, sd)], seed=i * n + s)
                             for i in range(k) for s in range(n)])


def any_ahead(fam: Family) -> bool:
    return any(c.verdict == AHEAD for _, c in fam.comparisons())


# ---------------------------------------------------------------- the family-wise error rate

def test_copies_of_one_setting_give_no_ahead_verdict_in_95_percent_of_repetitions(make_outcome):
    rng = random.Random(2023)
    claimed = sum(any_ahead(Family.of("copies", all_pairs(copies(make_outcome, rng, 5, 3), "final_accuracy")))
                  for _ in range(REPETITIONS))
    assert claimed / REPETITIONS <= ALPHA


def test_without_the_correction_the_same_copies_do_claim_differences(make_outcome):
    """The check above can fail: testing each of the 10 pairs at 95 % on its own calls some gap real far more
    often than 5 % of the time."""
    rng = random.Random(2023)
    claimed = 0
    for _ in range(REPETITIONS):
        pairs = all_pairs(copies(make_outcome, rng, 5, 3), "final_accuracy")
        claimed += any(compare_points(p.a, p.b, final_accuracy).verdict == AHEAD for p in pairs)
    assert claimed / REPETITIONS > 2 * ALPHA


def test_the_compare_observer_judges_in_the_whole_family_not_only_the_printed_gaps(make_outcome):
    rng = random.Random(7)
    points = copies(make_outcome, rng, 8, 3)
    fam = family("compare", points, {"along": "model"})
    assert fam.size == 8 * 7 // 2 and fam.level == pytest.approx(1 - ALPHA / 28)
    said = " ".join(observe("compare", points, {"along": "model"}))
    assert said.count("CI") == 7  # the best against the other seven, each at the family's level
    for _, c in fam.comparisons():
        assert c.level == fam.level and c.test == WELCH


# ---------------------------------------------------------------- the three verdicts

def test_a_separated_pair_is_ahead():
    c = compare([88.0, 88.4, 88.2, 88.1], [85.0, 85.3, 84.9, 85.2], margin=0.5)
    assert c.verdict == AHEAD and c.low > 0


def test_a_tight_pair_around_the_same_mean_is_equivalent():
    c = compare([85.0, 85.1, 84.9, 85.05], [85.02, 84.95, 85.08, 84.97], margin=0.5)
    assert c.verdict == EQUIVALENT and -0.5 <= c.low < 0 < c.high <= 0.5


def test_a_wide_pair_is_unresolved():
    c = compare([80.0, 88.0, 84.0], [83.0, 86.5, 81.0], margin=0.5)
    assert c.verdict == UNRESOLVED and c.low < -0.5 and c.high > 0.5


def test_a_larger_margin_turns_unresolved_into_equivalent_through_the_spec_override(make_outcome):
    rng = random.Random(3)
    points = copies(make_outcome, rng, 2, 4, sd=0.3)
    c = Family.of("t", all_pairs(points, "final_accuracy")).compare(points[0], points[1], "final_accuracy")
    with margins_in_force({"final_accuracy": 5.0}):
        wide = Family.of("t", all_pairs(points, "final_accuracy")).compare(points[0], points[1], "final_accuracy")
    assert (c.margin, wide.margin) == (0.5, 5.0) and wide.verdict == EQUIVALENT
    assert (c.low, c.high) == (wide.low, wide.high)  # the margin judges the interval, it does not change it


def test_a_bigger_family_widens_every_interval(make_outcome):
    points = copies(make_outcome, random.Random(5), 4, 3)
    one = Family.of("t", all_pairs(points[:2], "final_accuracy")).compare(points[0], points[1], "final_accuracy")
    six = Family.of("t", all_pairs(points, "final_accuracy")).compare(points[0], points[1], "final_accuracy")
    assert six.low < one.low < one.high < six.high and six.level == pytest.approx(1 - ALPHA / 6)


# ---------------------------------------------------------------- pairing

def correlated_rates(make_outcome, rng: random.Random, n: int = 4):
    """Two rates of one model over the same seeds: each seed's luck (its initial weights, its batch order) moves
    both runs alike, the rate adds 1 point."""
    luck = [rng.gauss(0, 2.0) for _ in range(n)]
    return aggregate_points([make_outcome(model="mlp", lr=lr, accs=[85.0 + gain + luck[s] + rng.gauss(0, 0.1)], seed=s)
                             for lr, gain in ((0.1, 1.0), (0.01, 0.0)) for s in range(n)])


def test_pairing_gives_a_narrower_interval_than_welch_on_correlated_data(make_outcome):
    fast, slow = correlated_rates(make_outcome, random.Random(11))
    paired = compare_points(fast, slow, final_accuracy, margin=0.5)
    a = [r.final.test_accuracy for r in fast.measured]
    b = [r.final.test_accuracy for r in slow.measured]
    welch = compare(a, b, margin=0.5)
    assert (paired.test, welch.test) == (PAIRED, WELCH)
    assert paired.high - paired.low < (welch.high - welch.low) / 3
    assert paired.difference == pytest.approx(welch.difference)
    assert paired.verdict == AHEAD and welch.verdict == UNRESOLVED and {paired.verdict, welch.verdict} <= set(VERDICTS)


def test_the_pairing_rule_reads_the_run_fields():
    base = {"arch": "mlp", "model_args": {"hidden": [32]}, "dataset": "fashion-mnist", "train_subset": None,
            "test_subset": None, "image_size": 28, "shuffle": True, "device": "cpu", "lr": 0.1, "batch_size": 64}
    seeds = lambda request, ss=(0, 1, 2): [(s, request) for s in ss]  # noqa: E731
    assert pairing.paired(seeds(base), seeds(base | {"lr": 0.01, "batch_size": 128, "optimizer": "adam"}))
    for field, other in (("arch", "small_cnn"), ("model_args", {"hidden": [64]}), ("dataset", "mnist"),
                         ("train_subset", 256), ("shuffle", False), ("device", "cuda")):
        assert not pairing.paired(seeds(base), seeds(base | {field: other})), field
    assert not pairing.paired(seeds(base), seeds(base, (3, 4, 5)))  # other seeds: independent samples
    assert not pairing.paired(seeds(base, (0,)), seeds(base, (0,)))  # one seed: nothing to pair


def test_a_diverged_seed_on_one_side_falls_back_to_welch(make_outcome):
    runs = [make_outcome(lr=lr, accs=[acc], seed=s) for lr, accs in ((0.1, [86.0, 86.5, float("nan")]),
                                                                     (0.01, [85.0, 85.2, 85.1]))
            for s, acc in enumerate(accs)]
    fast, slow = aggregate_points(runs)
    assert compare_points(fast, slow, final_accuracy).test == WELCH


# ---------------------------------------------------------------- resolution and prediction

def test_the_resolvable_difference_is_what_the_design_detects_at_80_percent_power():
    from scipy import stats as scipy_stats

    c = compare([85.0, 86.0, 84.0, 85.5], [84.0, 85.0, 83.5, 84.5])
    mde = resolvable_difference(c)
    # simulate: a true difference of the resolvable size, with these spreads, is found about 80 % of the time
    rng = random.Random(1)
    sd_a, sd_b = scipy_stats.tstd([85.0, 86.0, 84.0, 85.5]), scipy_stats.tstd([84.0, 85.0, 83.5, 84.5])
    found = sum(compare([rng.gauss(mde, sd_a) for _ in range(4)], [rng.gauss(0, sd_b) for _ in range(4)]).verdict == AHEAD
                for _ in range(2000))
    assert 0.70 <= found / 2000 <= 0.90
    assert resolvable_difference(compare([1.0, 1.0], [1.0, 1.0])) is None  # no spread: nothing to size


def test_the_prediction_interval_of_one_new_run():
    low, high = prediction_interval([10.0, 10.0, 19.9])
    assert low < 10.0 < 19.9 < high  # the reference 10 % of Q1.3's diverging MLP is one of our seeds' outcomes
    assert prediction_interval([85.0]) is None and prediction_interval([85.0, 85.0]) is None


def test_an_answer_says_equivalent_unresolved_or_ahead_never_level(make_outcome):
    points = copies(make_outcome, random.Random(9), 3, 3)
    said = " ".join(answer("activation_effect", points, {}))
    assert "level" not in said and "seed noise" not in said
    assert any(word in said for word in ("ahead of", "equivalent to", "unresolved against"))


def test_every_comparison_an_observer_states_is_in_its_family(make_outcome, monkeypatch):
    """The family is what the observer could state: a sentence never judges a pair the correction did not count."""
    stated = []
    judge = Family.compare

    def checked(self, a, b, metric):
        members = {(id(p.a), id(p.b), p.metric) for p in self.pairs} | {(id(p.b), id(p.a), p.metric) for p in self.pairs}
        stated.append((self.observer, (id(a), id(b), metric) in members))
        return judge(self, a, b, metric)

    monkeypatch.setattr(Family, "compare", checked)
    rng = random.Random(4)
    models = aggregate_points([make_outcome(model=m, accs=[80 + rng.random(), rng.gauss(mu, 0.5)], seed=s, params=p)
                               for m, mu, p in (("mlp", 85, 100), ("mlp_wide", 85.6, 300), ("mlp_deep", 84, 200))
                               for s in range(3)])
    rates = aggregate_points([make_outcome(lr=lr, accs=[rng.gauss(mu, 0.5)], seed=s) for lr, mu in
                              ((0.1, 88), (0.01, 87), (0.001, 80)) for s in range(3)]
                             + [make_outcome(lr=lr, accs=[80, 84, 86 + rng.random(), 88][:n], seed=s, until_accuracy=85.0,
                                             max_epochs=10) for lr, n in ((0.1, 3), (0.01, 4)) for s in range(3)])
    for kind, points, args in (("capacity", models, {"groups": ["mlp,mlp_wide,mlp_deep"]}),
                               ("param_efficiency", models, {"pairs": ["mlp,mlp_deep"]}),
                               ("activation_effect", models, {}), ("convergence", models, {}),
                               ("compare", models, {"along": "model"}), ("lr_effect", rates, {}),
                               ("convergence", rates, {})):
        observe(kind, points, args)
        answer(kind, points, args)
    assert {kind for kind, _ in stated} >= {"capacity", "param_efficiency", "activation_effect", "convergence",
                                            "compare", "lr_effect"}
    assert all(inside for _, inside in stated), [kind for kind, inside in stated if not inside]
