"""Stage 3, stacked: the runs of a learning-rate sweep trained together in lockstep.

Runs that share architecture, data order and seed start from identical weights and differ only
in their learning rate, so one step of all K runs is one batched matmul per layer (weights
stacked along a leading K axis) instead of K small ones. Supported: `mlp` without batch norm
(any hidden sizes and activation), plain SGD. The numbers equal those of `reportgen.train` run
by run within float rounding (tests/test_sweep.py).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from reportgen.results import PROBE_STEPS, EpochMetrics, probe_columns
from reportgen.train import Tensors, TrainState, new_state
from reportgen import train_mlp
from reportgen.train_mlp import ACTIVATION, ACTIVATION_BACKWARD

@dataclass
class SweepState:
    """K runs of one MLP: layer l's weights (K, in, out) and biases (K, 1, out); lrs (K, 1, 1)."""

    weights: list[torch.Tensor]
    biases: list[torch.Tensor]
    lrs: torch.Tensor
    activation: str
    epochs_done: int = 0
    steps_done: int = 0

    @property
    def runs(self) -> int:
        return len(self.lrs)


def unsupported_reason(request: dict[str, Any]) -> str | None:
    """Why this request cannot be stacked (None when it can): what train_mlp.py cannot train by
    hand, and batch norm, whose running statistics per run are not stacked."""
    if request["model_args"].get("batch_norm"):
        return "batch norm (running statistics per run are not stacked)"
    return train_mlp.unsupported_reason(request)


def new_sweep_state(request: dict[str, Any], lrs: list[float]) -> SweepState:
    """K copies of the model `train.new_state(request)` initialises: identical starting weights."""
    reason = unsupported_reason(request)
    if reason is not None:
        raise ValueError(f"cannot stack a sweep over {reason}")
    model = new_state(request).model
    return stack_models([model] * len(lrs), lrs, request["model_args"].get("activation", "relu"))


def stack_models(models: list[nn.Module], lrs: list[float], activation: str = "relu") -> SweepState:
    """Stack the Linear layers of K same-shaped MLPs (e.g. resumed from checkpoints)."""
    if any(not lr > 0 for lr in lrs):  # probes divide the lr-scaled gradients by the lr
        raise ValueError(f"learning rates must be positive to be stacked, got {lrs!r}")
    if activation not in ACTIVATION:
        raise ValueError(f"unknown activation {activation!r}; known: {', '.join(ACTIVATION)}")
    layers = [_linears(model) for model in models]
    weights = [torch.stack([run[i].weight.detach().T for run in layers]).contiguous() for i in range(len(layers[0]))]
    biases = [torch.stack([run[i].bias.detach() for run in layers]).unsqueeze(1).contiguous() for i in range(len(layers[0]))]
    device = weights[0].device
    lrs_t = torch.tensor(lrs, dtype=torch.float32, device=device).view(-1, 1, 1)
    return SweepState(weights, biases, lrs_t, activation)


def write_back(state: SweepState, run: int, train_state: TrainState) -> TrainState:
    """Copy run `run`'s weights into an engine TrainState (for checkpoints in the run cache)."""
    with torch.no_grad():
        for layer, weight, bias in zip(_linears(train_state.model), state.weights, state.biases):
            layer.weight.copy_(weight[run].T)
            layer.bias.copy_(bias[run, 0])
    train_state.epochs_done, train_state.steps_done = state.epochs_done, state.steps_done
    return train_state


def _linears(model: nn.Module) -> list[nn.Linear]:
    return [m for m in model.modules() if isinstance(m, nn.Linear)]


def forward(state: SweepState, x: torch.Tensor) -> torch.Tensor:
    """Logits of every run: x (B, 1, S, S) or (B, D) → (K, B, classes)."""
    return _activations(state, x)[-1]


def _activations(state: SweepState, x: torch.Tensor) -> list[torch.Tensor]:
    """Every layer's input, then the logits: [(K, B, D), (K, B, h1), ..., (K, B, classes)]."""
    outputs = [x.flatten(1).expand(state.runs, -1, -1)]  # the same batch for every run
    act = ACTIVATION[state.activation]
    last = len(state.weights) - 1
    for i, (weight, bias) in enumerate(zip(state.weights, state.biases)):
        h = torch.baddbmm(bias, outputs[-1], weight)  # (K, B, out)
        outputs.append(act(h) if i < last else h)
    return outputs


def _losses(logits: torch.Tensor, y: torch.Tensor, reduction: str) -> torch.Tensor:
    """Cross-entropy per run: mean or sum over the batch → (K,)."""
    per_image = F.cross_entropy(logits.transpose(1, 2), y.expand(logits.shape[0], -1), reduction="none")  # (K, B)
    return per_image.mean(1) if reduction == "mean" else per_image.sum(1)


def train_sweep_epoch(state: SweepState, data: Tensors, request: dict[str, Any]) -> list[tuple[EpochMetrics, dict[str, list[float]]]]:
    """One epoch of every run and one evaluation; per run, what `train.train_epoch` returns."""
    start = time.perf_counter()
    epoch = state.epochs_done + 1
    generator = torch.Generator().manual_seed(request["seed"] * 100_003 + epoch)  # train.py's data order
    order = torch.randperm(len(data.train_y), generator=generator).to(data.train_x.device) if request["shuffle"] else None
    step_losses, probes = train_steps(state, data, request["batch_size"], order)  # (steps, K)
    evaluations = evaluate_sweep(state, data.test_x, data.test_y, request["test_batch_size"])
    state.epochs_done = epoch
    seconds = (time.perf_counter() - start) / state.runs  # each run's share of the shared wall time
    results = []
    for k, (test_loss, test_accuracy) in enumerate(evaluations):
        column = step_losses[:, k]
        losses = [float(f"{v:.6g}") for v in column.tolist()]
        metrics = EpochMetrics(epoch, column.double().mean().item(), test_loss, test_accuracy, seconds, losses)
        results.append((metrics, probe_columns([row[k].tolist() for row in probes])))
    return results


@torch.no_grad()
def train_steps(state: SweepState, data: Tensors, batch_size: int, order: torch.Tensor | None = None):
    """One pass over the training data; every run's loss per step (steps, K) and gradient probes."""
    steps = math.ceil(len(data.train_y) / batch_size)
    losses = torch.empty(steps, state.runs, device=data.train_x.device)
    probe_rows: list[torch.Tensor] = []
    for i in range(steps):
        idx = slice(i * batch_size, (i + 1) * batch_size) if order is None else order[i * batch_size:(i + 1) * batch_size]
        probe = state.steps_done < PROBE_STEPS
        losses[i], stats = _sgd_step(state, data.train_x[idx], data.train_y[idx], probe)
        if probe:
            probe_rows.append(stats)
        state.steps_done += 1
    return losses, probe_rows


def _sgd_step(state: SweepState, x: torch.Tensor, y: torch.Tensor, probe: bool):
    """Forward, backward by hand and the SGD update of every run; (K,) losses and (K, 4) probes.

    Autograd would materialise each run's gradient and then update in a second pass; here the
    output gradient is scaled by each run's lr first, so every weight update is one in-place
    batched matmul: W_k -= a_k^T (lr_k g_k).
    """
    outputs = _activations(state, x)
    log_probs = torch.log_softmax(outputs[-1], dim=-1)  # (K, B, C)
    target = y.view(1, -1, 1).expand(state.runs, -1, 1)  # (K, B, 1)
    run_losses = -log_probs.gather(2, target).squeeze(2).mean(1)  # (K,)
    grad = log_probs.exp_().scatter_add_(2, target, log_probs.new_full(target.shape, -1.0))  # softmax - one-hot
    grad.mul_(state.lrs / len(y))  # lr·dL/dlogits
    sums = torch.zeros(3, state.runs, device=x.device) if probe else None  # Σg, Σ|g|, Σg² per run
    for i in reversed(range(len(state.weights))):
        weight, bias, inputs = state.weights[i], state.biases[i], outputs[i]
        grad_in = _input_grad(state, grad, weight, inputs) if i > 0 else None  # before W changes
        if probe:
            _accumulate_probe(sums, torch.bmm(inputs.transpose(1, 2), grad), grad.sum(1))
        weight.baddbmm_(inputs.transpose(1, 2), grad, alpha=-1)  # (K, in, B) @ (K, B, out)
        bias.sub_(grad.sum(1, keepdim=True))
        grad = grad_in
    return run_losses, _probe_row(state, sums, run_losses) if probe else None


def _input_grad(state: SweepState, grad: torch.Tensor, weight: torch.Tensor, activation: torch.Tensor) -> torch.Tensor:
    """Gradient at the previous layer's pre-activation, from its activation output a."""
    grad = torch.bmm(grad, weight.transpose(1, 2))  # (K, B, in)
    return ACTIVATION_BACKWARD[state.activation](grad, activation)


def _accumulate_probe(sums: torch.Tensor, weight_grad: torch.Tensor, bias_grad: torch.Tensor) -> None:
    for g in (weight_grad.flatten(1), bias_grad.flatten(1)):  # (K, n), still scaled by lr
        sums += torch.stack([g.sum(1), g.abs().sum(1), g.pow(2).sum(1)])


def _probe_row(state: SweepState, sums: torch.Tensor, run_losses: torch.Tensor) -> torch.Tensor:
    """Per run (mean, mean |g|, global L2 norm, loss) of the unscaled gradient, as train.py's probe → (K, 4)."""
    count = sum(w[0].numel() + b[0].numel() for w, b in zip(state.weights, state.biases))
    lrs = state.lrs.view(-1)
    total, total_abs, squares = sums
    return torch.stack([total / lrs / count, total_abs / lrs / count, squares.sqrt() / lrs, run_losses], dim=1)


@torch.inference_mode()
def evaluate_sweep(state: SweepState, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> list[tuple[float, float]]:
    """Per run: mean cross-entropy per test image and accuracy in percent."""
    total_loss = torch.zeros(state.runs, device=x.device, dtype=torch.float64)
    correct = torch.zeros(state.runs, device=x.device, dtype=torch.int64)
    for start in range(0, len(y), batch_size):
        logits = forward(state, x[start:start + batch_size])
        target = y[start:start + batch_size]
        total_loss += _losses(logits, target, "sum").double()
        correct += (logits.argmax(2) == target).sum(1)
    return [(loss / len(y), 100.0 * hits / len(y)) for loss, hits in zip(total_loss.tolist(), correct.tolist())]


def train_sweep_epochs(request: dict[str, Any], lrs: list[float], data: Tensors, epochs: int) -> list[list[EpochMetrics]]:
    """Train one run per lr (request's other settings shared) for `epochs`; metrics per run."""
    state = new_sweep_state(request, lrs)
    history: list[list[EpochMetrics]] = [[] for _ in lrs]
    for _ in range(epochs):
        for run, (metrics, _) in zip(history, train_sweep_epoch(state, data, request)):
            run.append(metrics)
    return history
