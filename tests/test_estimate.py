"""Plan estimates: speeds from cached siblings, scaling by subset size, states against a real cache, probes,
and a stop rule's epochs from siblings, from the spec's references or its cap."""
from __future__ import annotations

import math

import pytest

from reportgen import plan
from reportgen.cache import Entry, cache_key
from reportgen.estimate import (EXACT, FROM_REFERENCE, FROM_SIBLINGS, UPPER_BOUND, Speed, SpeedBook, estimate_job,
                                estimate_plan, format_seconds, measured_speeds, probe_speed, reference_epochs, speed_key)
from reportgen.plan import RunJob
from reportgen.results import Budget, EpochMetrics
from reportgen.runner import execute_job
from reportgen.spec import load_spec
from tests.conftest import TINY_SPEC


def request(lr=0.1, seed=0, hidden=(32,), train_subset=1000, test_subset=500, **changes):
    return {"dataset": "fashion-mnist", "train_subset": train_subset, "test_subset": test_subset, "image_size": 28,
            "arch": "mlp", "model_args": {"hidden": list(hidden)}, "optimizer": "sgd", "lr": lr,
            "loss": "cross_entropy", "batch_size": 64, "test_batch_size": 100, "shuffle": False, "seed": seed,
            "device": "cpu", "engine_version": plan.ENGINE_VERSION} | changes


def job(req, *budgets: Budget) -> RunJob:
    return RunJob(cache_key(req), req, budgets or (Budget(2),))


def entry(req, accuracies, seconds=1.5) -> Entry:
    """A cached trajectory with synthetic timings: one epoch per accuracy, each taking `seconds`."""
    epochs = [EpochMetrics(i + 1, 1.0, 1.0, acc, seconds) for i, acc in enumerate(accuracies)]
    return Entry(cache_key(req), req, 1000, epochs)


def no_probe(req):
    raise AssertionError(f"probed {req['arch']} although the cache measured it")


def book(*entries: Entry, probe=no_probe) -> SpeedBook:
    return SpeedBook(measured_speeds(entries, "cpu"), probe)


def test_a_stop_rule_budget_takes_its_epoch_count_and_speed_from_a_cached_sibling():
    sibling = entry(request(lr=0.01), [70.0, 80.0, 86.0, 87.0], seconds=2.0)  # reached 85 % at epoch 3
    target = job(request(lr=0.1), Budget(200, until_accuracy=85.0, plateau_patience=5))
    estimate = estimate_job(target, {sibling.key: sibling}, book(sibling))
    assert (estimate.state, estimate.epochs_to_train, estimate.marker) == ("new", 3, FROM_SIBLINGS)
    assert estimate.seconds == pytest.approx(6.0) and estimate.speed_source == "cache"


def test_a_sibling_with_the_same_lr_is_preferred_and_diverged_siblings_say_nothing():
    same_lr = entry(request(lr=0.1, seed=1), [80.0, 86.0])
    other_lr = entry(request(lr=0.01), [70.0, 75.0, 80.0, 86.0])
    diverged = entry(request(lr=0.1, seed=2), [float("nan")])
    diverged.epochs[0] = EpochMetrics(1, math.nan, math.nan, 10.0, 1.5)
    target = job(request(lr=0.1), Budget(50, until_accuracy=85.0))
    entries = {e.key: e for e in (same_lr, other_lr, diverged)}
    assert estimate_job(target, entries, book(*entries.values())).epochs_to_train == 2
    alone = {diverged.key: diverged}
    capped = estimate_job(target, alone, book(diverged))
    assert (capped.epochs_to_train, capped.marker) == (50, UPPER_BOUND)  # no informative sibling: the cap


# The tiny spec plus one stop-rule question with references of epochs to target for two of its three lrs.
STOP_RULE_SPEC = TINY_SPEC + """
[questions.until]
part = "Part"
title = "Epochs to 85 %"
prompt = "Train until 85 %."
protocol = "p"
runs = [{ model = "mlp", lr = [0.1, 0.01, 1.0], until_accuracy = 85.0, epochs = 50, plateau_patience = 5 }]
views = [{ kind = "table", columns = ["model", "lr", "epochs_to_target"] }]
references = [
  { select = { model = "mlp", lr = 0.1 }, metric = "epochs_to_target", value = 4, tolerance = 2 },
  { select = { model = "mlp", lr = 0.01 }, metric = "epochs_to_target", value = 17, tolerance = 4 },
  { select = { model = "mlp", lr = 1.0 }, metric = "epochs_to_target", value = "not reached" },
]
"""


@pytest.fixture
def stop_rule_spec(tmp_path):
    path = tmp_path / "stop_rules.toml"
    path.write_text(STOP_RULE_SPEC)
    return load_spec(path)


def test_on_a_cold_cache_a_stop_rule_takes_the_references_epochs_and_the_cap_only_without_one(stop_rule_spec, tmp_path):
    one_second = lambda req: Speed(1 / 70_000, 1 / 70_000, "probe")  # noqa: E731 - 1 s per full epoch
    estimate = estimate_plan(stop_rule_spec, ["until"], "cpu", "cpu", None, tmp_path / "empty", one_second)
    by_lr = {e.job.request["lr"]: e for e in estimate.jobs}
    assert (by_lr[0.1].epochs_to_train, by_lr[0.1].marker) == (4, FROM_REFERENCE)
    assert (by_lr[0.01].epochs_to_train, by_lr[0.01].marker) == (17, FROM_REFERENCE)
    # "not reached" says nothing about when the plateau or chance rule stops it: the cap, an upper bound.
    assert (by_lr[1.0].epochs_to_train, by_lr[1.0].marker) == (50, UPPER_BOUND)
    assert estimate.total_seconds == pytest.approx(4 + 17 + 50)
    assert estimate.upper_bound_seconds == pytest.approx(50) and estimate.total_marker == FROM_REFERENCE
    assert estimate.question_estimate("until") == (3, pytest.approx(71), FROM_REFERENCE)
    assert estimate.question_upper_bound_seconds("until") == pytest.approx(50)


def test_references_are_read_per_run_point_and_only_for_stop_rule_budgets(stop_rule_spec):
    found = reference_epochs(stop_rule_spec, "cpu", "cpu", None)
    assert sorted(found.values()) == [4, 17]
    assert {budget.until_accuracy for _, budget in found} == {85.0}


def test_same_lr_siblings_beat_the_reference_which_beats_siblings_of_another_lr():
    budget = Budget(200, until_accuracy=85.0, plateau_patience=5)
    target = job(request(lr=0.01), budget)
    references = {(target.key, budget): 17}
    other_lr = entry(request(lr=0.1), [80.0, 86.0])  # reached at epoch 2: says little about lr 0.01
    same_lr = entry(request(lr=0.01, seed=1), [70.0, 75.0, 80.0, 84.0, 86.0])  # reached at epoch 5
    only_other = estimate_job(target, {other_lr.key: other_lr}, book(other_lr), references=references)
    assert (only_other.epochs_to_train, only_other.marker) == (17, FROM_REFERENCE)
    entries = {e.key: e for e in (other_lr, same_lr)}
    with_seed = estimate_job(target, entries, book(*entries.values()), references=references)
    assert (with_seed.epochs_to_train, with_seed.marker) == (5, FROM_SIBLINGS)
    no_reference = estimate_job(target, {other_lr.key: other_lr}, book(other_lr))
    assert (no_reference.epochs_to_train, no_reference.marker) == (2, FROM_SIBLINGS)


def test_a_reference_below_the_cached_epochs_still_trains_one_more():
    budget = Budget(30, until_accuracy=85.0)
    cached = entry(request(), [70.0, 75.0, 80.0])  # three epochs, target not reached
    target = job(request(), budget)
    estimate = estimate_job(target, {cached.key: cached}, book(cached), references={(target.key, budget): 2})
    assert (estimate.state, estimate.epochs_to_train, estimate.marker) == ("resume", 1, FROM_REFERENCE)


def test_the_total_line_says_how_much_of_it_is_upper_bounds(stop_rule_spec, tmp_path):
    from reportgen.cli import _plan_summary

    one_second = lambda req: Speed(1 / 70_000, 1 / 70_000, "probe")  # noqa: E731
    summary = _plan_summary(estimate_plan(stop_rule_spec, ["until"], "cpu", "cpu", None, tmp_path, one_second), 1)
    assert ("3 runs planned: 0 cached, 3 to train, ≈ 1 min 11 s of training, ≤ 50.0 s of it upper bounds; "
            "≈ 1 min 11 s wall time with one run at a time.") in " ".join(summary.split())
    assert "≈ estimate: the epochs to target the spec's references give" in summary
    assert "≤ upper bound: the epoch cap" in summary


def test_speed_is_scaled_by_training_plus_test_samples():
    measured = entry(request(train_subset=1000, test_subset=500), [50.0], seconds=1.5)  # 1 ms per sample
    bigger = job(request(lr=0.5, train_subset=2000, test_subset=1000), Budget(4))
    full = job(request(lr=0.5, train_subset=None, test_subset=None), Budget(1))
    speeds = book(measured)
    assert estimate_job(bigger, {measured.key: measured}, speeds).seconds == pytest.approx(4 * 3.0)
    assert estimate_job(full, {}, speeds).seconds == pytest.approx(70.0)  # 60k + 10k samples
    assert (estimate_job(bigger, {}, speeds).marker, estimate_job(full, {}, speeds).marker) == (EXACT, EXACT)


def test_the_median_epoch_is_the_speed_so_one_slow_epoch_does_not_move_it():
    measured = entry(request(), [50.0, 60.0, 70.0], seconds=1.5)
    measured.epochs[1] = EpochMetrics(2, 1.0, 1.0, 60.0, 30.0)
    assert measured_speeds([measured], "cpu")[speed_key(request())].train == pytest.approx(1e-3)
    assert measured_speeds([measured], "cuda") == {}  # another device's epochs are not this one's speed


def test_the_probe_runs_once_per_unmeasured_model_and_never_for_a_measured_one():
    calls = []

    def probe(req):
        calls.append(req["model_args"]["hidden"])
        return Speed(2e-3, 1e-3, "probe")

    measured = entry(request(hidden=(32,)), [50.0])
    speeds = book(measured, probe=probe)
    jobs = [job(request(hidden=(32,), lr=lr)) for lr in (0.1, 0.01)]
    jobs += [job(request(hidden=(64,), lr=lr, seed=s)) for lr in (0.1, 0.01) for s in (0, 1)]
    estimates = [estimate_job(j, {}, speeds) for j in jobs]
    assert calls == [[64]]
    assert [e.speed_source for e in estimates] == ["cache"] * 2 + ["probe"] * 4
    assert estimates[-1].seconds == pytest.approx(2 * (2e-3 * 1000 + 1e-3 * 500))


def test_states_of_a_partly_cached_spec(tiny_spec, tmp_path, data_dir):
    """a: mlp and bn at lr 0.1 and 0.01 for 2 epochs; b: mlp lr 0.1 for 3 epochs."""
    spec = load_spec(tiny_spec)
    cache = tmp_path / "cache"
    jobs = {(j.request["model_args"].get("batch_norm", False), j.request["lr"]): j
            for j in plan.plan_jobs(spec, ["a", "b"], "smoke", "cpu")}
    mlp_fast, bn_fast, mlp_slow = jobs[False, 0.1], jobs[True, 0.1], jobs[False, 0.01]
    execute_job(RunJob(mlp_fast.key, mlp_fast.request, (Budget(2),)), cache, data_dir)  # serves a, not b
    execute_job(bn_fast, cache, data_dir)
    execute_job(RunJob(mlp_slow.key, mlp_slow.request, (Budget(1),)), cache, data_dir)  # as if interrupted
    probed = []
    estimate = estimate_plan(spec, ["a", "b"], "smoke", "cpu", None, cache, lambda r: probed.append(r) or Speed(1, 1, "probe"))
    by_key = {e.job.key: e for e in estimate.jobs}
    assert (by_key[bn_fast.key].state, by_key[bn_fast.key].epochs_to_train) == ("cached", 0)
    assert (by_key[mlp_fast.key].state, by_key[mlp_fast.key].epochs_to_train) == ("extend", 1)
    assert (by_key[mlp_slow.key].state, by_key[mlp_slow.key].epochs_to_train) == ("resume", 1)
    assert (by_key[jobs[True, 0.01].key].state, by_key[jobs[True, 0.01].key].epochs_to_train) == ("new", 2)
    assert probed == []  # both models were measured by the runs just trained
    assert estimate.cached_count == 1 and len(estimate.to_train) == 3
    # Per question, only the epochs its own budgets need: a's mlp at lr 0.1 is served, b's needs one more.
    assert estimate.question_estimate("a")[0] == 2
    assert estimate.question_estimate("b") == (1, pytest.approx(by_key[mlp_fast.key].seconds), EXACT)
    assert estimate.total_seconds == pytest.approx(sum(e.seconds for e in estimate.to_train)) and estimate.total_seconds > 0


def test_the_real_probe_times_a_few_steps(data_dir):
    speed = probe_speed(request(), data_dir)
    assert speed.source == "probe" and 0 < speed.train < 1 and 0 < speed.test < 1


@pytest.mark.parametrize("seconds, marker, text", [
    (12.34, EXACT, "12.3 s"), (245, UPPER_BOUND, "≤ 4 min 05 s"), (3720, FROM_SIBLINGS, "~ 1 h 02 min")])
def test_format_seconds(seconds, marker, text):
    assert format_seconds(seconds, marker) == text


def test_wall_time_hands_each_lockstep_group_to_the_first_free_worker():
    from reportgen.estimate import JobEstimate, PlanEstimate, wall_seconds

    def estimated(key: str, seconds: float, **changes) -> JobEstimate:
        return JobEstimate(RunJob(key, request(**changes), (Budget(1),)), "new", 0, 1, EXACT, seconds, "probe")

    jobs = [estimated("a", 10.0, seed=0), estimated("b", 10.0, seed=1),  # one group: 20 s
            estimated("c", 5.0, shuffle=True), estimated("d", 7.0, arch="small_cnn"), estimated("e", 6.0, arch="small_cnn", seed=1)]
    plan = PlanEstimate(jobs, {"q": [j.job.key for j in jobs]})
    assert wall_seconds(plan, 1) == pytest.approx(38.0)
    assert wall_seconds(plan, 2) == pytest.approx(20.0)  # the group on one worker; 5 + 7 + 6 on the other
    assert wall_seconds(plan, 8) == pytest.approx(10.0)  # 5 jobs for 8 workers: the group is split, one run each
