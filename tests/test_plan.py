"""Planning: grids expand, keys ignore budgets and questions, profiles overlay, runs are shared."""
from pathlib import Path

import pytest

from reportgen.cache import cache_key
from reportgen.errors import SpecError
from reportgen.plan import check_question_ids, plan_jobs, plan_question
from reportgen.spec import load_spec

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def spec():
    return load_spec(REPO / "experiments.toml")


def test_a_fixed_request_keeps_its_known_key():
    # Changing this key orphans every cache entry: only an intended change of the key function may update it.
    request = {"dataset": "fashion-mnist", "train_subset": 256, "test_subset": 200, "image_size": 28, "arch": "mlp",
               "model_args": {"hidden": [32]}, "optimizer": "sgd", "lr": 0.1, "loss": "cross_entropy",
               "batch_size": 64, "test_batch_size": 100, "shuffle": False, "seed": 0, "device": "cpu",
               "engine_version": "4"}
    assert cache_key(request) == "2129ab6639ec67ffa4512f8255e64b8ba2fe1edd718441b7676342941b93062b"
    assert cache_key(dict(reversed(request.items()))) == cache_key(request)  # key order does not matter


def test_planned_runs_are_keyed_by_the_cache(spec):
    assert all(run.key == cache_key(run.request) for run in plan_question(spec, "q1.2", "cpu", "cpu"))


def test_grid_expands_to_the_cartesian_product(spec):
    runs = plan_question(spec, "q1.2", "cpu", "cpu", seeds=1)
    assert len(runs) == 8
    assert {(r.labels["model"], r.labels["lr"]) for r in runs} == {
        (m, lr) for m in ("mlp", "bn_mlp") for lr in (1.0, 0.1, 0.01, 0.001)}


def test_questions_that_agree_on_parameters_share_one_trajectory(spec):
    def key(qid, **select):
        return next(r.key for r in plan_question(spec, qid, "cpu", "cpu")
                    if all(r.labels[k] == v for k, v in select.items()))

    shared = {key("q1.2", model="mlp", lr=0.01), key("q1.3", model="mlp", lr=0.01),
              key("q1.5", model="mlp"), key("q1.6", model="mlp")}
    assert len(shared) == 1
    assert key("q1.7", model="mlp") != key("q1.2", model="mlp", lr=0.001)  # shuffled: another trajectory
    assert key("lab.lr", lr=0.001) == key("lab.t2", model="model_b")


def test_jobs_are_deduplicated_and_keep_every_budget(spec):
    jobs = plan_jobs(spec, ["q1.2", "q1.3", "q1.5", "q1.6"], "cpu", "cpu")
    keys = [job.key for job in jobs]
    assert len(keys) == len(set(keys))
    shared = next(j for j in jobs if j.request["lr"] == 0.01 and j.request["model_args"] == {"hidden": [512, 512]})
    assert {b.max_epochs for b in shared.budgets} == {10, 200, 20, 1}


def test_profile_overlays_change_runs_and_say_so(spec):
    cpu = plan_question(spec, "lab.t1", "cpu", "cpu")
    full = plan_question(spec, "lab.t1", "full", "cpu")
    assert all(r.request["train_subset"] == 3000 and r.budget.max_epochs == 3 for r in cpu)
    assert all(r.request["train_subset"] is None and r.budget.max_epochs == 10 for r in full)
    assert all("train_subset = 3000" in r.overlays[0] for r in cpu)
    smoke = plan_question(spec, "q1.3", "smoke", "cpu")
    assert all(r.budget.max_epochs == 2 and r.request["train_subset"] == 512 for r in smoke)
    assert {r.request["image_size"] for r in full} == {32, 64}


def test_device_is_part_of_the_key(spec):
    cpu = plan_question(spec, "q1.2", "cpu", "cpu")[0]
    cuda = plan_question(spec, "q1.2", "cpu", "cuda")[0]
    assert cpu.key != cuda.key


def test_unknown_question_suggests_the_closest(spec):
    with pytest.raises(SpecError, match=r"unknown question 'q1\.33'.*Did you mean 'q1\.3'"):
        check_question_ids(spec, ["q1.33"])


def test_each_run_point_trains_once_per_seed_of_the_profile(spec):
    runs = plan_question(spec, "q1.2", "cpu", "cpu")
    assert len(runs) == 24
    assert sorted(r.labels["seed"] for r in runs if r.labels["model"] == "mlp" and r.labels["lr"] == 0.1) == [0, 1, 2]
    assert len({r.key for r in runs}) == 24
    assert {r.labels["seed"] for r in plan_question(spec, "q1.2", "smoke", "cpu")} == {0, 1}
    assert {r.labels["seed"] for r in plan_question(spec, "q1.2", "full", "cpu")} == {0, 1, 2, 3, 4}


def test_seed_zero_keeps_the_key_a_single_seed_gives_it(spec):
    one = {r.key for r in plan_question(spec, "q1.2", "cpu", "cpu", seeds=1)}
    three = {r.key for r in plan_question(spec, "q1.2", "cpu", "cpu") if r.labels["seed"] == 0}
    assert one == three


def test_seeds_option_overrides_every_seed_count(spec):
    assert {r.labels["seed"] for r in plan_question(spec, "q1.2", "cpu", "cpu", seeds=4)} == {0, 1, 2, 3}


def _spec_with(tmp_path, extra_profile: str = "", grid: str = 'model = "m", lr = [0.1, 0.01]'):
    text = f"""
title = "t"
seeds = 2
[protocols.p]
dataset = "mnist"
[models.m]
arch = "mlp"
label = "M"
args = {{ hidden = [8] }}
[profiles.full]
description = "f"
[profiles.cpu]
description = "c"
{extra_profile}
[profiles.smoke]
description = "s"
[questions.a]
part = "P"
title = "A"
prompt = "?"
protocol = "p"
runs = [{{ {grid} }}]
"""
    path = tmp_path / "spec.toml"
    path.write_text(text)
    return load_spec(path)


def test_seeds_come_from_spec_profile_grid_and_overlay(tmp_path):
    assert len(plan_question(_spec_with(tmp_path), "a", "cpu", "cpu")) == 4  # spec: 2 seeds x 2 rates
    spec = _spec_with(tmp_path, "seeds = 3")
    assert len(plan_question(spec, "a", "cpu", "cpu")) == 6 and len(plan_question(spec, "a", "full", "cpu")) == 4
    listed = _spec_with(tmp_path, grid='model = "m", lr = [0.1, 0.01], seeds = [7, 9]')  # a list is not expanded
    assert sorted(r.labels["seed"] for r in plan_question(listed, "a", "cpu", "cpu")) == [7, 7, 9, 9]
    overlay = _spec_with(tmp_path, "[[profiles.cpu.overlays]]\nset = { seeds = 1 }\nreason = \"budget\"")
    runs = plan_question(overlay, "a", "cpu", "cpu")
    assert len(runs) == 2 and "seeds = 1 (budget)" in runs[0].overlays


def test_a_bad_seed_count_names_its_key(tmp_path):
    with pytest.raises(SpecError, match=r"runs\[0\]\.seeds"):
        _spec_with(tmp_path, grid='model = "m", seeds = 0')
