"""The stacked learning-rate sweep gives the numbers of training each rate alone with train.py."""
from __future__ import annotations

import pytest
import torch

from reportgen import sweep, train
from reportgen.data import load_split
from reportgen.plan import ENGINE_VERSION

LRS = [0.1, 0.01, 0.001]  # Q1.2's rates without 1.0, whose chaotic trajectory amplifies any rounding
# Float rounding differs between one batched matmul and K single ones, and SGD at lr 0.1 amplifies it:
# train.py alone, on 1 thread versus 2, already differs by 1.2e-4 (relative) in epoch 2 of this subset.
RTOL = 5e-4


def make_request(data_dir, hidden=(512, 512), activation="relu", shuffle=False, **changes):
    request = {
        "dataset": "fashion-mnist", "train_subset": 640, "test_subset": 500, "image_size": 28,
        "arch": "mlp", "model_args": {"hidden": list(hidden), "activation": activation}, "optimizer": "sgd",
        "lr": LRS[0], "loss": "cross_entropy", "batch_size": 64, "test_batch_size": 200, "shuffle": shuffle,
        "seed": 0, "device": "cpu", "engine_version": ENGINE_VERSION,
    }
    return request | changes


def load_data(request, data_dir):
    splits = load_split("fashion-mnist", True, data_dir), load_split("fashion-mnist", False, data_dir)
    return train.prepare_tensors(request, splits)


def train_alone(request, lr, data, epochs):
    state = train.new_state(request | {"lr": lr})
    return [train.train_epoch(state, data, request | {"lr": lr}) for _ in range(epochs)]


def assert_same_epoch(stacked, alone, test_images):
    assert stacked.epoch == alone.epoch
    assert stacked.step_losses == pytest.approx(alone.step_losses, rel=RTOL)
    assert stacked.train_loss == pytest.approx(alone.train_loss, rel=RTOL)
    assert stacked.test_loss == pytest.approx(alone.test_loss, rel=RTOL)
    assert abs(stacked.test_accuracy - alone.test_accuracy) <= 100.0 / test_images  # at most one near-tie flips


@pytest.mark.parametrize("shuffle", [False, True])
def test_sweep_equals_one_run_per_lr(data_dir, shuffle):
    request = make_request(data_dir, shuffle=shuffle)
    data = load_data(request, data_dir)
    history = sweep.train_sweep_epochs(request, LRS, data, epochs=2)
    assert len(history) == len(LRS)
    for lr, stacked_run in zip(LRS, history):
        alone_run = [metrics for metrics, _ in train_alone(request, lr, data, epochs=2)]
        for stacked, alone in zip(stacked_run, alone_run, strict=True):
            assert_same_epoch(stacked, alone, request["test_subset"])


@pytest.mark.parametrize("activation", ["sigmoid", "tanh"])
def test_other_activations_and_depths(data_dir, activation):
    request = make_request(data_dir, hidden=(64, 32, 16), activation=activation)
    data = load_data(request, data_dir)
    history = sweep.train_sweep_epochs(request, LRS, data, epochs=2)
    for lr, stacked_run in zip(LRS, history):
        for stacked, (alone, _) in zip(stacked_run, train_alone(request, lr, data, epochs=2), strict=True):
            assert_same_epoch(stacked, alone, request["test_subset"])


def test_gradient_probes_match_train_py(data_dir):
    request = make_request(data_dir)
    data = load_data(request, data_dir)
    state = sweep.new_sweep_state(request, LRS)
    stacked = sweep.train_sweep_epoch(state, data, request)
    for lr, (_, probes) in zip(LRS, stacked):
        _, alone = train_alone(request, lr, data, epochs=1)[0]
        assert probes.keys() == alone.keys()
        for name in ("grad_abs_mean", "grad_norm", "step_loss"):
            assert probes[name] == pytest.approx(alone[name], rel=RTOL)
        scale = max(alone["grad_abs_mean"])  # the mean of cancelling terms: judged on the scale of mean |g|
        assert probes["grad_mean"] == pytest.approx(alone["grad_mean"], abs=1e-3 * scale)


def test_write_back_gives_an_engine_state_with_the_same_numbers(data_dir):
    request = make_request(data_dir)
    data = load_data(request, data_dir)
    state = sweep.new_sweep_state(request, LRS)
    sweep.train_sweep_epoch(state, data, request)
    stacked = sweep.evaluate_sweep(state, data.test_x, data.test_y, 200)
    for run, lr in enumerate(LRS):
        engine_state = sweep.write_back(state, run, train.new_state(request | {"lr": lr}))
        assert (engine_state.epochs_done, engine_state.steps_done) == (1, 10)
        loss, accuracy = train.evaluate(engine_state.model, data.test_x, data.test_y, 200)
        assert loss == pytest.approx(stacked[run][0], rel=RTOL)
        assert accuracy == pytest.approx(stacked[run][1], abs=0.2)


@pytest.mark.parametrize("changes", [
    {"model_args": {"hidden": [32], "batch_norm": True}},
    {"optimizer": "adam"},
    {"arch": "small_cnn", "model_args": {}},
])
def test_unsupported_requests_are_refused_with_the_reason(changes):
    request = make_request(None) | changes
    assert sweep.unsupported_reason(request) is not None
    with pytest.raises(ValueError, match="cannot stack"):
        sweep.new_sweep_state(request, LRS)


def test_learning_rates_must_be_positive():
    with pytest.raises(ValueError, match="positive"):
        sweep.new_sweep_state(make_request(None), [0.1, 0.0])


def test_initial_weights_are_the_engines():
    request = make_request(None, hidden=(16,))
    state = sweep.new_sweep_state(request, LRS)
    model = train.new_state(request).model
    for k in range(len(LRS)):
        assert torch.equal(state.weights[0][k], model[1].weight.T)
        assert torch.equal(state.biases[1][k, 0], model[3].bias)
