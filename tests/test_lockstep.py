"""Lockstep groups: a run's metrics, probes and weights are the same bits alone, in a group of 2 or
of 12, whatever its group-mates' seeds and learning rates; and they match autograd's numbers."""
from __future__ import annotations

import itertools

import pytest
import torch

from reportgen import train
from reportgen.data import load_split
from reportgen.lockstep import Group, Member
from reportgen.plan import ENGINE_VERSION, group_jobs, group_signature, RunJob
from reportgen.results import Budget

# 300 training images: four batches of 64 and a last one of 44; 130 test images in batches of 50 and 30.
SUBSETS = {"train_subset": 300, "test_subset": 130, "batch_size": 64, "test_batch_size": 50}
FAMILIES = {
    "mlp": {"hidden": [48, 24]},
    "bn_mlp": {"hidden": [48, 24, 16], "batch_norm": True},
    "tanh_mlp": {"hidden": [40], "activation": "tanh"},
}


def make_request(model_args, lr=0.1, seed=0, shuffle=False, **changes):
    request = {
        "dataset": "fashion-mnist", "image_size": 28, "arch": "mlp", "model_args": model_args, "optimizer": "sgd",
        "lr": lr, "loss": "cross_entropy", "shuffle": shuffle, "seed": seed, "device": "cpu",
        "engine_version": ENGINE_VERSION, **SUBSETS,
    }
    return request | changes


@pytest.fixture(scope="module")
def data(data_dir):
    splits = load_split("fashion-mnist", True, data_dir), load_split("fashion-mnist", False, data_dir)
    return train.prepare_tensors(make_request(FAMILIES["mlp"]), splits)


def train_group(requests, data, epochs):
    """Train the requests as one group; per run, its epochs' (metrics, probes) and final state dict."""
    members = [Member(r, train.new_state(r)) for r in requests]
    group = Group(members)
    history = [[] for _ in requests]
    with train.run_threads():  # as builds train
        for _ in range(epochs):
            for run, output in zip(history, group.train_epoch(data)):
                run.append(output)
    return history, [m.state.model.state_dict() for m in members]


def assert_identical(a, b):
    (history_a, weights_a), (history_b, weights_b) = a, b
    for (metrics_a, probes_a), (metrics_b, probes_b) in zip(history_a, history_b, strict=True):
        assert (metrics_a.train_loss, metrics_a.test_loss, metrics_a.test_accuracy, metrics_a.step_losses) == \
            (metrics_b.train_loss, metrics_b.test_loss, metrics_b.test_accuracy, metrics_b.step_losses)
        assert probes_a == probes_b
    assert weights_a.keys() == weights_b.keys()
    for name in weights_a:
        assert torch.equal(weights_a[name], weights_b[name]), name


@pytest.mark.parametrize("family", list(FAMILIES))
@pytest.mark.parametrize("shuffle", [False, True])
def test_a_run_is_the_same_bits_alone_in_two_and_in_twelve(family, shuffle, data):
    # 12 runs: 4 learning rates (1.0 included: its chaotic trajectory magnifies any last-bit change) x 3 seeds
    requests = [make_request(FAMILIES[family], lr, seed, shuffle)
                for lr, seed in itertools.product([1.0, 0.1, 0.01, 0.001], [0, 1, 2])]
    history, weights = train_group(requests, data, epochs=2)
    for k in (0, 4, 11):  # alone, and in a group of two with a different seed and rate
        alone = train_group([requests[k]], data, epochs=2)
        assert_identical((history[k], weights[k]), (alone[0][0], alone[1][0]))
    pair_history, pair_weights = train_group([requests[5], requests[4]], data, epochs=2)
    assert_identical((history[4], weights[4]), (pair_history[1], pair_weights[1]))


def test_runs_with_different_seeds_see_different_batches_when_shuffled(data):
    requests = [make_request(FAMILIES["mlp"], 0.1, seed, shuffle=True) for seed in (0, 1)]
    same_start = [make_request(FAMILIES["mlp"], 0.1, 0, shuffle=True) | {"seed": 0}] * 2
    (history, _), (twins, _) = train_group(requests, data, 1), train_group(same_start, data, 1)
    assert history[0][0][0].step_losses != history[1][0][0].step_losses
    assert twins[0][0][0].step_losses == twins[1][0][0].step_losses


def test_a_member_that_leaves_does_not_change_the_others(data):
    requests = [make_request(FAMILIES["bn_mlp"], lr, 0, shuffle=True) for lr in (0.1, 0.01, 0.001)]
    members = [Member(r, train.new_state(r)) for r in requests]
    group = Group(members)
    with train.run_threads():
        group.train_epoch(data)
        group.keep([0, 2])  # the 0.01 run is decided after one epoch
        second = group.train_epoch(data)
    alone = train_group([requests[2]], data, epochs=2)
    assert_identical(([second[1]], members[2].state.model.state_dict()), ([alone[0][0][1]], alone[1][0]))


@pytest.mark.parametrize("family", ["mlp", "bn_mlp"])
def test_lockstep_matches_autograd(family, data):
    """The hand-written forward and backward compute what autograd computes, within float rounding."""
    request = make_request(FAMILIES[family], 0.1, 0, shuffle=True)
    (history, weights) = train_group([request], data, epochs=2)
    state = train.new_state(request)
    reference = [train.train_epoch(state, data, request) for _ in range(2)]
    for (mine, _), (theirs, _) in zip(history[0], reference):
        assert mine.step_losses == pytest.approx(theirs.step_losses, rel=1e-4)
        assert mine.test_loss == pytest.approx(theirs.test_loss, rel=1e-4)
    for name, value in state.model.state_dict().items():
        assert torch.allclose(weights[0][name].float(), value.float(), rtol=1e-3, atol=1e-5), name
    assert history[0][0][1]["grad_norm"] == pytest.approx(reference[0][1]["grad_norm"], rel=1e-4)


def test_only_runs_that_differ_in_seed_and_lr_share_a_group():
    base = make_request(FAMILIES["mlp"])
    assert group_signature(base) == group_signature(base | {"seed": 3, "lr": 0.5})
    assert group_signature(base) != group_signature(base | {"shuffle": True})
    assert group_signature(base | {"arch": "small_cnn"}) is None
    assert group_signature(base | {"optimizer": "adam"}) is None
    jobs = [RunJob(f"k{i}", r, (Budget(1),)) for i, r in enumerate(
        [base, base | {"arch": "small_cnn"}, base | {"seed": 1}, base | {"shuffle": True}, base | {"lr": 0.2}])]
    assert [[j.key for j in g] for g in group_jobs(jobs)] == [["k0", "k2", "k4"], ["k1"], ["k3"]]
    seeds = [RunJob(f"s{seed}", base | {"seed": seed}, (Budget(1),)) for seed in range(5)]
    assert [len(g) for g in group_jobs(seeds, max_size=2)] == [2, 2, 1]
    assert [len(g) for g in group_jobs([jobs[0]] * 3)] == [1, 1, 1]  # a run never trains beside itself


def test_groups_are_cut_so_that_every_worker_has_one():
    base = make_request(FAMILIES["mlp"])
    seeds = [RunJob(f"s{seed}", base | {"seed": seed}, (Budget(1),)) for seed in range(12)]
    assert [len(g) for g in group_jobs(seeds, workers=1)] == [12]
    assert [len(g) for g in group_jobs(seeds, workers=2)] == [6, 6]
    assert [len(g) for g in group_jobs(seeds, workers=5)] == [2] * 6  # the largest size giving >= 5 groups
    assert [len(g) for g in group_jobs(seeds[:3], workers=16)] == [1, 1, 1]
    cnn = RunJob("c", base | {"arch": "small_cnn"}, (Budget(1),))
    assert [len(g) for g in group_jobs([cnn, *seeds], workers=2)] == [1, 12]  # the CNN keeps the other worker busy
    assert [[j.key for j in g] for g in group_jobs(seeds[:5], workers=2)] == [["s0", "s1", "s2"], ["s3", "s4"]]


def test_a_group_refuses_runs_that_differ_in_more_than_seed_and_lr():
    base = make_request(FAMILIES["mlp"])
    with pytest.raises(ValueError, match="differ only in seed and lr"):
        Group([Member(r, train.new_state(r)) for r in (base, base | {"shuffle": True})])
    with pytest.raises(ValueError, match="adam"):
        Group([Member(r, train.new_state(r)) for r in (base | {"optimizer": "adam"},)])


def spec_mlp_shapes() -> set[tuple[int, int, int]]:
    """(rows, in, out) of every product the spec's MLPs take: training batches of 64 and the last
    one of 60,000 images (32), test batches of 256 and the last of 10,000 (16)."""
    from reportgen.spec import load_spec
    from tests.conftest import REPO

    spec = load_spec(REPO / "experiments.toml")
    shapes = set()
    for preset in spec.models.values():
        if preset.arch == "mlp":
            widths = [784, *preset.args["hidden"], 10]
            shapes |= {(rows, a, b) for a, b in zip(widths, widths[1:]) for rows in (64, 32, 256, 16)}
    return shapes


@pytest.mark.parametrize("threads", [1, 2])
def test_each_slice_of_a_batched_product_equals_the_lone_product_for_every_spec_shape(threads):
    """The one fact about the BLAS (and the batch sum) the lockstep engine relies on, checked on the machine that runs it
    (builds train on one thread, train.THREADS_PER_RUN; two, for a build that changes it)."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        _check_every_spec_shape()
    finally:
        torch.set_num_threads(before)


def _check_every_spec_shape() -> None:
    generator = torch.Generator().manual_seed(0)
    for rows, n_in, n_out in sorted(spec_mlp_shapes()):
        a, w, g = (torch.randn(12, *shape, generator=generator) for shape in ((rows, n_in), (n_in, n_out), (rows, n_out)))
        products = {
            "forward": lambda k: torch.bmm(a[k], w[k]),
            "input gradient": lambda k: torch.bmm(g[k], w[k].transpose(1, 2)),
            "weight update": lambda k: w[k].clone().baddbmm_(a[k].transpose(1, 2), g[k], alpha=-1),
        }
        products["batch sum"] = lambda k: g[k].sum(1, keepdim=True)  # lockstep._batch_sum: not a product, the same promise
        for name, product in products.items():
            for size in (3, 12):
                stacked = product(slice(0, size))
                for k in (0, size - 1):
                    assert torch.equal(stacked[k], product(slice(k, k + 1))[0]), (name, rows, n_in, n_out, size, k)


def test_products_are_batched_in_multiples_of_the_thread_count_and_leftovers_alone():
    from reportgen.lockstep import product_chunks

    assert product_chunks(1, threads=2) == [slice(0, 1)]
    assert product_chunks(3, threads=2) == [slice(0, 2), slice(2, 3)]
    assert product_chunks(12, threads=2) == [slice(0, 12)]
    assert product_chunks(5, threads=4) == [slice(0, 4), slice(4, 5)]
    assert product_chunks(2, threads=4) == [slice(0, 1), slice(1, 2)]
    assert product_chunks(3, threads=2, device="cuda") == [slice(0, 1), slice(1, 2), slice(2, 3)]  # untested there: one by one
