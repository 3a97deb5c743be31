"""MLPs trained by hand (train_mlp.py) give the autograd loop's numbers, running statistics and probes."""
from __future__ import annotations

import pytest
import torch

from reportgen import train, train_mlp
from reportgen.data import load_split
from reportgen.plan import ENGINE_VERSION

STEPS = 10  # 640 real images: early steps, before SGD's own chaos amplifies float rounding


def make_request(model_args, lr=0.1, optimizer="sgd", shuffle=True):
    return {
        "dataset": "fashion-mnist", "train_subset": STEPS * 64, "test_subset": 500, "image_size": 28,
        "arch": "mlp", "model_args": model_args, "optimizer": optimizer, "lr": lr, "loss": "cross_entropy",
        "batch_size": 64, "test_batch_size": 250, "shuffle": shuffle, "seed": 0, "device": "cpu",
        "engine_version": ENGINE_VERSION,
    }


@pytest.fixture(scope="module")
def splits(data_dir):
    return load_split("fashion-mnist", True, data_dir), load_split("fashion-mnist", False, data_dir)


def by_autograd(request, data):
    state = train.new_state(request)
    generator = torch.Generator().manual_seed(123)
    order = torch.randperm(len(data.train_y), generator=generator)
    losses, probes = train._train_steps(state, data, request["batch_size"], order)
    return state, losses, probes, order


@pytest.mark.parametrize("model_args, lr", [
    ({"hidden": [512, 256, 128, 64], "batch_norm": True}, 0.01),  # Q1.2's BN MLP
    ({"hidden": [64, 32], "batch_norm": True, "activation": "tanh"}, 0.1),
    ({"hidden": [512, 512]}, 0.1),  # the tutorial MLP
    ({"hidden": [64, 32, 16], "activation": "sigmoid"}, 1.0),
])
def test_by_hand_equals_autograd(splits, model_args, lr):
    request = make_request(model_args, lr)
    data = train.prepare_tensors(request, splits)
    expected, expected_losses, expected_probes, order = by_autograd(request, data)
    state = train.new_state(request)
    losses, probes = train_mlp.train_steps(state, data, request, order)

    assert losses.tolist() == pytest.approx(expected_losses.tolist(), rel=1e-5)
    got, want = state.model.state_dict(), expected.model.state_dict()
    assert got.keys() == want.keys()
    for name in want:  # weights, biases, BN weights and running statistics, num_batches_tracked
        assert torch.allclose(got[name].double(), want[name].double(), rtol=1e-4, atol=1e-6), name
    assert probes.keys() == expected_probes.keys() == {"grad_mean", "grad_abs_mean", "grad_norm", "step_loss"}
    for name in ("grad_abs_mean", "grad_norm", "step_loss"):  # grad_mean sums to ~0: compared absolutely below
        assert probes[name] == pytest.approx(expected_probes[name], rel=1e-4), name
    assert probes["grad_mean"] == pytest.approx(expected_probes["grad_mean"], abs=1e-7)


def test_engine_uses_the_hand_path_for_sgd_mlps_only():
    assert train_mlp.unsupported_reason(make_request({"hidden": [32], "batch_norm": True})) is None
    assert "adam" in train_mlp.unsupported_reason(make_request({"hidden": [32]}, optimizer="adam"))
    cnn = make_request({}) | {"arch": "small_cnn"}
    assert "small_cnn" in train_mlp.unsupported_reason(cnn)


def test_model_is_updated_in_place_and_evaluates(splits):
    """After an epoch by hand the nn.Module holds the trained weights: evaluation and checkpoints see them."""
    request = make_request({"hidden": [64], "batch_norm": True}, shuffle=False)
    data = train.prepare_tensors(request, splits)
    state = train.new_state(request)
    before = {k: v.clone() for k, v in state.model.state_dict().items()}
    metrics, _ = train.train_epoch(state, data, request)
    after = state.model.state_dict()
    assert all(not torch.equal(before[k], after[k]) for k in after if k != "3.num_batches_tracked")
    assert after["3.num_batches_tracked"].item() == STEPS
    assert metrics.test_accuracy > 30.0  # one epoch of 640 images at lr 0.1 learns something
    assert metrics.test_accuracy == train.evaluate(state.model, data.test_x, data.test_y, 250)[1]


def test_a_short_last_batch_is_averaged_over_its_own_images(splits):
    request = make_request({"hidden": [64]}) | {"train_subset": 600}  # 9 batches of 64, then 24
    data = train.prepare_tensors(request, splits)
    _, expected, _, order = by_autograd(request, data)
    losses, _ = train_mlp.train_steps(train.new_state(request), data, request, order)
    assert len(losses) == 10
    assert losses.tolist() == pytest.approx(expected.tolist(), rel=1e-5)
