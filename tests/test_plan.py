"""Planning: grids expand, keys ignore budgets and questions, profiles overlay, runs are shared."""
from pathlib import Path

import pytest

from reportgen.errors import SpecError
from reportgen.plan import check_question_ids, plan_jobs, plan_question
from reportgen.spec import load_spec

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def spec():
    return load_spec(REPO / "experiments.toml")


def test_grid_expands_to_the_cartesian_product(spec):
    runs = plan_question(spec, "q1.2", "cpu", "cpu")
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
