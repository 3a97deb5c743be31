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


def train_group(requests, data, epochs, threads=None):
    """Train the requests as one group; per run, its epochs' (metrics, probes) and final state dict.
    On train.THREADS_PER_RUN threads (as builds train) unless told otherwise."""
    members = [Member(r, train.new_state(r)) for r in requests]
    group = Group(members)
    history = [[] for _ in requests]
    with train.run_threads(threads):
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


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("family", list(FAMILIES))
@pytest.mark.parametrize("shuffle", [False, True])
def test_a_run_is_the_same_bits_alone_in_two_and_in_twelve(family, shuffle, threads, data):
    """The engine's promise on whatever machine runs this: it checks which stacked operations hold
    here (stacked_ops.py) and takes the rest run by run, so the bits never depend on the group.
    Builds train on one thread; two threads exercise how a BLAS splits a batch over threads."""
    # 12 runs: 4 learning rates (1.0 included: its chaotic trajectory magnifies any last-bit change) x 3 seeds
    requests = [make_request(FAMILIES[family], lr, seed, shuffle)
                for lr, seed in itertools.product([1.0, 0.1, 0.01, 0.001], [0, 1, 2])]
    history, weights = train_group(requests, data, epochs=2, threads=threads)
    for k in (0, 4, 11):  # alone, and in a group of two (or three) with a different seed and rate
        alone = train_group([requests[k]], data, epochs=2, threads=threads)
        assert_identical((history[k], weights[k]), (alone[0][0], alone[1][0]))
    for mates in ([requests[5], requests[4]], [requests[5], requests[4], requests[9]]):  # an odd group: leftovers
        mate_history, mate_weights = train_group(mates, data, epochs=2, threads=threads)
        assert_identical((history[4], weights[4]), (mate_history[1], mate_weights[1]))


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


def relative_error(mine: torch.Tensor, reference: torch.Tensor) -> float:
    """Norm-wise: ||mine - reference|| / ||reference|| (one element's error says nothing about a tensor)."""
    mine, reference = torch.as_tensor(mine, dtype=torch.float64), torch.as_tensor(reference, dtype=torch.float64)
    return ((mine - reference).norm() / reference.norm()).item()


def rounding_bound(request, steps: int) -> float:
    """What float32 rounding alone can put between two correct implementations that add in different
    orders: a dot product of length n is off by at most n·u relative (Higham's gamma_n, u = 2^-24);
    each step goes through `depth` such products forward and back, and the errors of `steps` steps
    add up (to first order). Measured on a 2-core AMD EPYC (torch 2.14.1, MKL) under
    ATEN_CPU_CAPABILITY=default/avx2/avx512 and MKL_ENABLE_INSTRUCTIONS=AVX2: at most 9.4e-5 for the
    BN MLP's weights (its bound 1.9e-3) and 6.3e-7 for the others (1.4e-3). A wrong backward (a
    missing term) is off by 1e-2 or more."""
    widths = [784, *request["model_args"]["hidden"], 10]
    depth, longest = len(widths) - 1, max(widths)
    return steps * depth * longest * 2.0 ** -24


@pytest.mark.parametrize("family", list(FAMILIES))
def test_lockstep_matches_autograd(family, data):
    """The hand-written forward and backward compute what autograd computes, within float rounding."""
    request = make_request(FAMILIES[family], 0.1, 0, shuffle=True)
    (history, weights) = train_group([request], data, epochs=2)
    state = train.new_state(request)
    reference = [train.train_epoch(state, data, request) for _ in range(2)]
    bound = rounding_bound(request, steps=sum(len(m.step_losses) for m, _ in reference))
    mine_losses = [loss for m, _ in history[0] for loss in [*m.step_losses, m.test_loss]]
    their_losses = [loss for m, _ in reference for loss in [*m.step_losses, m.test_loss]]
    assert relative_error(mine_losses, their_losses) <= bound
    for name, value in state.model.state_dict().items():
        if value.is_floating_point():
            assert relative_error(weights[0][name], value) <= bound, name
        else:
            assert torch.equal(weights[0][name], value), name  # batches seen
    assert relative_error(history[0][0][1]["grad_norm"], reference[0][1]["grad_norm"]) <= bound


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
