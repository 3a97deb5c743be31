"""Stage 3, by hand: SGD epochs of an MLP (batch-normalised or not) without autograd.

For layers this small, autograd's bookkeeping (recording the graph, allocating every gradient,
then a second pass in the optimizer) costs about as much as the matmuls themselves
(benchmarks/engine.py). Each step here calls the kernels autograd would call (addmm,
threshold_backward, native_batch_norm and its backward), scales the output gradient by the
learning rate once, and updates every weight in place with one matmul: W -= a^T (lr g).
The numbers equal the autograd loop's within float rounding (tests/test_train_mlp.py).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

from reportgen.results import PROBE_STEPS, probe_columns

aten = torch.ops.aten
# Activations applied in place to a fresh layer output, and their backward kernels (autograd's own),
# which take the gradient and the activation's output; sweep.py uses the same two tables.
ACTIVATION: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": torch.relu_, "sigmoid": torch.sigmoid_, "tanh": torch.tanh_}
ACTIVATION_BACKWARD: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "relu": lambda g, out: aten.threshold_backward(g, out, 0.0),
    "sigmoid": aten.sigmoid_backward, "tanh": aten.tanh_backward}


@dataclass
class Layer:
    """One Linear (weight kept as a contiguous (in, out) copy: the layout the matmuls run fastest in)
    and the BatchNorm1d that follows its activation, if any."""

    linear: nn.Linear
    weight: torch.Tensor
    norm: nn.BatchNorm1d | None

    @property
    def bias(self) -> torch.Tensor:
        return self.linear.bias


@dataclass
class Hidden:
    """What a hidden layer's backward needs from its forward."""

    activation: torch.Tensor  # the activation's output (the batch norm's input)
    mean: torch.Tensor | None = None  # the batch norm's batch statistics
    invstd: torch.Tensor | None = None


def unsupported_reason(request: dict[str, Any]) -> str | None:
    """Why this request needs the autograd loop (None when this path can train it)."""
    if request["arch"] != "mlp":
        return f"arch {request['arch']!r} (only 'mlp' is trained by hand)"
    if request["optimizer"] != "sgd":
        return f"optimizer {request['optimizer']!r} (only plain SGD is trained by hand)"
    if not request["lr"] > 0:  # the probes divide the lr-scaled gradients by the lr
        return f"learning rate {request['lr']!r}"
    return None


def layers_of(model: nn.Module) -> list[Layer]:
    """models.mlp's Linear layers in order, each with the BatchNorm1d after its activation."""
    layers: list[Layer] = []
    for module in model.modules():
        if isinstance(module, nn.Linear):
            layers.append(Layer(module, module.weight.detach().T.contiguous(), None))
        elif isinstance(module, nn.BatchNorm1d):
            layers[-1].norm = module
    return layers


def write_back(layers: list[Layer]) -> None:
    """Copy the working weights into the model (biases and batch norms were updated in place)."""
    for layer in layers:
        layer.linear.weight.detach().copy_(layer.weight.T)


@torch.no_grad()
def train_steps(state: Any, data: Any, request: dict[str, Any], order: torch.Tensor | None):
    """One pass over the training data: (per-step losses, gradient probes), as train._train_steps returns."""
    state.model.train()
    layers = layers_of(state.model)
    activation = request["model_args"].get("activation", "relu")
    batch_size, lr = request["batch_size"], request["lr"]
    steps = math.ceil(len(data.train_y) / batch_size)
    probe_rows: list[torch.Tensor] = []
    work = Workspace.for_epoch(steps, batch_size, data.train_x)
    for i in range(steps):
        idx = slice(i * batch_size, (i + 1) * batch_size) if order is None else order[i * batch_size:(i + 1) * batch_size]
        probe = state.steps_done < PROBE_STEPS
        row = sgd_step(layers, activation, data.train_x[idx], data.train_y[idx], lr, probe, work, i)
        if probe:
            probe_rows.append(row)
        state.steps_done += 1
    write_back(layers)
    return work.losses(len(data.train_y)), probe_columns([row.tolist() for row in probe_rows])


def sgd_step(layers: list[Layer], activation: str, x: torch.Tensor, y: torch.Tensor, lr: float, probe: bool,
             work: "Workspace", step: int) -> torch.Tensor | None:
    """Forward, backward and update of every layer; the probe row (or None). The step's loss is
    left in `work` (its true-class log-probabilities), to be averaged once per epoch."""
    n = len(y)
    ones, picked = work.ones[:n], work.picked[step, :n].view(n, 1)
    inputs, hidden, logits = _forward(layers, activation, x.flatten(1))
    log_probs = torch.log_softmax(logits, dim=1)
    target = y.view(-1, 1)
    torch.gather(log_probs, 1, target, out=picked)
    grad = log_probs.exp_().scatter_add_(1, target, work.minus_ones[:n])  # softmax - one-hot
    grad.mul_(lr / len(y))  # lr · dL/dlogits: every gradient below comes out scaled by lr
    sums = torch.zeros(3, device=x.device) if probe else None  # Σg, Σ|g|, Σg² (scaled by lr)
    for i in reversed(range(len(layers))):
        layer, layer_input = layers[i], inputs[i]
        grad_in = torch.mm(grad, layer.weight.T) if i > 0 else None  # before W changes
        if probe:
            _accumulate(sums, torch.mm(layer_input.T, grad), grad.sum(0))
        layer.weight.addmm_(layer_input.T, grad, alpha=-1)
        layer.bias.addmv_(grad.T, ones, alpha=-1)  # one BLAS call instead of a sum and a subtraction
        if i > 0:
            grad = _hidden_backward(layers[i - 1], hidden[i - 1], activation, grad_in, sums)
    return _probe_row(layers, sums, lr, -picked.mean()) if probe else None


@dataclass
class Workspace:
    """One epoch's buffers, so that a step allocates no constants and reduces no loss of its own."""

    ones: torch.Tensor  # (batch,): bias gradients as matrix-vector products g^T 1
    minus_ones: torch.Tensor  # (batch, 1): the one-hot subtracted from the softmax
    picked: torch.Tensor  # (steps, batch): each step's log-probabilities of the true classes

    @classmethod
    def for_epoch(cls, steps: int, batch_size: int, like: torch.Tensor) -> "Workspace":
        return cls(like.new_ones(batch_size), like.new_full((batch_size, 1), -1.0), like.new_zeros(steps, batch_size))

    def losses(self, samples: int) -> torch.Tensor:
        """Each step's mean cross-entropy; the last step may hold fewer than a full batch."""
        steps, batch_size = self.picked.shape
        counts = self.picked.new_full((steps,), float(batch_size))
        counts[-1] = samples - (steps - 1) * batch_size
        return -self.picked.sum(1) / counts


def _forward(layers: list[Layer], activation: str, a: torch.Tensor) -> tuple[list[torch.Tensor], list[Hidden], torch.Tensor]:
    """Each Linear's input, each hidden layer's saved tensors, and the logits; batch norms update
    their running statistics as nn.BatchNorm1d does in training mode."""
    inputs: list[torch.Tensor] = []
    hidden: list[Hidden] = []
    for layer in layers[:-1]:
        inputs.append(a)
        out = ACTIVATION[activation](torch.addmm(layer.bias, a, layer.weight))
        saved, norm = Hidden(out), layer.norm
        if norm is not None:
            a, saved.mean, saved.invstd = aten.native_batch_norm(
                out, norm.weight, norm.bias, norm.running_mean, norm.running_var, True, norm.momentum, norm.eps)
            norm.num_batches_tracked.add_(1)
        else:
            a = out
        hidden.append(saved)
    inputs.append(a)
    last = layers[-1]
    return inputs, hidden, torch.addmm(last.bias, a, last.weight)


def _hidden_backward(layer: Layer, saved: Hidden, activation: str, grad: torch.Tensor, sums: torch.Tensor | None) -> torch.Tensor:
    """From the gradient at a hidden layer's output to the gradient at its Linear's output;
    updates the batch norm's weight and bias on the way."""
    norm = layer.norm
    if norm is not None:
        grad, grad_weight, grad_bias = aten.native_batch_norm_backward(
            grad, saved.activation, norm.weight, norm.running_mean, norm.running_var, saved.mean, saved.invstd,
            True, norm.eps, [True, True, True])
        if sums is not None:
            _accumulate(sums, grad_weight, grad_bias)
        norm.weight.sub_(grad_weight)
        norm.bias.sub_(grad_bias)
    return ACTIVATION_BACKWARD[activation](grad, saved.activation)


def _accumulate(sums: torch.Tensor, *grads: torch.Tensor) -> None:
    for g in grads:
        sums += torch.stack([g.sum(), g.abs().sum(), g.pow(2).sum()])


def _probe_row(layers: list[Layer], sums: torch.Tensor, lr: float, loss: torch.Tensor) -> torch.Tensor:
    """(mean, mean |g|, global L2 norm) of the unscaled gradient over every parameter, and the loss."""
    count = sum(p.numel() for layer in layers for p in _parameters(layer))
    total, total_abs, squares = sums
    return torch.stack([total / lr / count, total_abs / lr / count, squares.sqrt() / lr, loss])


def _parameters(layer: Layer) -> list[torch.Tensor]:
    norm = [] if layer.norm is None else [layer.norm.weight, layer.norm.bias]
    return [layer.weight, layer.bias, *norm]
