"""Stage 3, grouped: K plain-SGD MLP runs trained in lockstep, the one path that trains MLPs.

Runs that share architecture, data, batch size and data-order rule but differ in seed and
learning rate take their steps together: every layer's product is one batched matmul over the
K runs instead of K small ones. A lone run is a group of one, so a run's numbers never depend on
the group it trained in. That needs care, because a kernel's rounding can depend on where an
element sits in the tensor: vectorised and scalar code paths, and rows handled in chunks, round
differently. So only four kinds of operation act on the whole stack here: batched products of
whole matrices and sums over the batch dimension, each only where this process has checked that
every run's slice equals its lone result for the shapes, thread count and device at hand
(stacked_ops.py; where the check fails, that kind runs run by run), elementwise operations that
round exactly once (add, multiply, divide, max, sqrt; never a fused multiply-add such as addcmul or
add's alpha), and gathers. Everything else (softmax, sums over a whole gradient, transcendental
activations, a batched vector-matrix product) runs on each run's slice, whose layout is the same in
any group. tests/test_lockstep.py proves the result bit for bit; benchmarks/engine.py measures the speed.

Autograd is not used: for layers this small its bookkeeping costs about as much as the
products, and scaling the output gradient by each run's learning rate first turns every update
into one in-place batched product, W_k -= a_k^T (lr_k g_k).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

from reportgen.plan import PER_RUN_FIELDS, group_signature, lockstep_reason
from reportgen.results import PROBE_STEPS, EpochMetrics, probe_columns
from reportgen.stacked_ops import Stacking, mlp_uses, plan_stacking

aten = torch.ops.aten
# Activations applied in place to a fresh layer output, and their backward kernels (autograd's own),
# which take the gradient and the activation's output.
ACTIVATION: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": torch.relu_, "sigmoid": torch.sigmoid_, "tanh": torch.tanh_}
ACTIVATION_BACKWARD: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "relu": lambda g, out: aten.threshold_backward(g, out, 0.0),
    "sigmoid": aten.sigmoid_backward, "tanh": aten.tanh_backward}
EXACT_ACTIVATIONS = {"relu"}  # a max and a comparison: any code path gives the same bits, so it acts on the stack


@dataclass
class Norm:
    """The BatchNorm1d after one hidden layer's activation, for K runs: every tensor (K, 1, h)."""

    weight: torch.Tensor
    bias: torch.Tensor
    running_mean: torch.Tensor
    running_var: torch.Tensor
    tracked: torch.Tensor  # (K,) batches seen, as num_batches_tracked
    momentum: float
    eps: float


@dataclass
class Layer:
    """One Linear for K runs, weights (K, in, out) (the layout the products run fastest in), biases
    (K, 1, out), and the batch norm that follows its activation, if any."""

    weight: torch.Tensor
    bias: torch.Tensor
    norm: Norm | None


@dataclass
class Saved:
    """What a hidden layer's backward needs from its forward."""

    activation: torch.Tensor  # the activation's output (the batch norm's input)
    normalised: torch.Tensor | None = None  # the batch norm's (x - mean) / std
    invstd: torch.Tensor | None = None


@dataclass
class Member:
    """One run of the group: its request and the engine state (model, epochs, steps) it writes back to."""

    request: dict[str, Any]
    state: Any  # train.TrainState


class Group:
    """K runs of one MLP shape, stacked; members can leave (a run decided) and the rest go on."""

    def __init__(self, members: list[Member]):
        reasons = {lockstep_reason(m.request) for m in members} - {None}
        if reasons:
            raise ValueError(f"cannot train in lockstep: {', '.join(sorted(reasons))}")
        if len({group_signature(m.request) for m in members}) != 1:
            raise ValueError("a group's runs must differ only in " + " and ".join(PER_RUN_FIELDS))
        self.members = members
        self.activation = members[0].request["model_args"].get("activation", "relu")
        self.layers = _stack_layers([m.state.model for m in members])
        device = self.layers[0].weight.device
        self.lrs = torch.tensor([m.request["lr"] for m in members], dtype=torch.float32, device=device).view(-1, 1, 1)
        self.stacking: Stacking | None = None  # decided at the first pass over data (stacked_ops.plan_stacking)

    @property
    def size(self) -> int:
        return len(self.members)

    def train_epoch(self, data: Any) -> list[tuple[EpochMetrics, dict[str, list[float]]]]:
        """One epoch of every member and one evaluation; per member, what train.train_epoch returns."""
        start = time.perf_counter()
        picked, probes = self.train_pass(data)
        evaluations = self.evaluate(data)
        self.write_back()
        seconds = (time.perf_counter() - start) / self.size  # each run's share of the group's wall time
        results = []
        for k, member in enumerate(self.members):
            member.state.epochs_done += 1
            step_losses = _step_losses(picked[:, k].contiguous(), len(data.train_y))
            losses = [float(f"{v:.6g}") for v in step_losses.tolist()]
            test_loss, test_accuracy = evaluations[k]
            metrics = EpochMetrics(member.state.epochs_done, step_losses.double().mean().item(), test_loss,
                                   test_accuracy, seconds, losses)
            results.append((metrics, probe_columns(probes[k])))
        return results

    def train_pass(self, data: Any) -> tuple[torch.Tensor, list[list[list[float]]]]:
        """One pass of every member over the training data, no evaluation (what a timing probe times)."""
        orders = [_data_order(m, len(data.train_y)) for m in self.members]
        return self._train_steps(data, self.members[0].request["batch_size"], orders)

    def evaluate(self, data: Any) -> list[tuple[float, float]]:
        """Per member: mean cross-entropy per test image and accuracy in percent."""
        self._check_stacking(data)
        return self._evaluate(data.test_x, data.test_y, self.members[0].request["test_batch_size"])

    @property
    def fallbacks(self) -> list[str]:
        """What this group could not stack on this machine, and why (stacked_ops.plan_stacking)."""
        return self.stacking.fallbacks if self.stacking is not None else []

    def _check_stacking(self, data: Any) -> None:
        """Decide, once per run count, which operations may act on the whole stack for this data's
        batch shapes (the check is cached per process, so a group pays for it once)."""
        if self.stacking is not None:
            return
        request = self.members[0].request
        widths = [self.layers[0].weight.shape[1]] + [layer.weight.shape[2] for layer in self.layers]
        uses = mlp_uses(widths, _batch_rows(len(data.train_y), request["batch_size"]),
                        _batch_rows(len(data.test_y), request["test_batch_size"]), shuffled=request["shuffle"])
        self.stacking = plan_stacking(self.size, uses, device=self.lrs.device.type)

    def keep(self, indices: list[int]) -> None:
        """Continue with these members only (the others are decided)."""
        self.members = [self.members[i] for i in indices]
        self.stacking = None  # another run count: checked again
        index = torch.tensor(indices, device=self.lrs.device)
        self.lrs = self.lrs[index]
        for layer in self.layers:
            layer.weight, layer.bias = layer.weight[index].contiguous(), layer.bias[index].contiguous()
            if layer.norm is not None:
                norm = layer.norm
                for name in ("weight", "bias", "running_mean", "running_var", "tracked"):
                    setattr(norm, name, getattr(norm, name)[index].contiguous())

    @torch.no_grad()
    def write_back(self) -> None:
        """Copy every member's weights and batch-norm buffers into its own model (for its checkpoint)."""
        for k, member in enumerate(self.members):
            for layer, (linear, norm) in zip(self.layers, _modules(member.state.model)):
                linear.weight.copy_(layer.weight[k].T)
                linear.bias.copy_(layer.bias[k, 0])
                if norm is not None:
                    stacked = layer.norm
                    norm.weight.copy_(stacked.weight[k, 0])
                    norm.bias.copy_(stacked.bias[k, 0])
                    norm.running_mean.copy_(stacked.running_mean[k, 0])
                    norm.running_var.copy_(stacked.running_var[k, 0])
                    norm.num_batches_tracked.copy_(stacked.tracked[k])

    @torch.no_grad()
    def _train_steps(self, data: Any, batch_size: int, orders: list[torch.Tensor | None]):
        """One pass over the training data: each step's true-class log-probabilities (steps, K, batch)
        and, per member, the gradient probe rows of its first PROBE_STEPS steps."""
        self._check_stacking(data)
        n, k = len(data.train_y), self.size
        steps = math.ceil(n / batch_size)
        flat_x = data.train_x.flatten(1)
        picked = flat_x.new_zeros(steps, k, batch_size)
        probes: list[list[list[float]]] = [[] for _ in range(k)]
        for i in range(steps):
            x, y = _batch(flat_x, data.train_y, orders, slice(i * batch_size, (i + 1) * batch_size))
            probing = [m.state.steps_done < PROBE_STEPS for m in self.members]
            rows = self._sgd_step(x, y, picked[i, :, :y.shape[1]], any(probing))
            for j, member in enumerate(self.members):
                if probing[j]:
                    probes[j].append(rows[j])
                member.state.steps_done += 1
        return picked, probes

    def _sgd_step(self, x: torch.Tensor, y: torch.Tensor, picked: torch.Tensor, probe: bool) -> list[list[float]]:
        """Forward, backward and update of every layer of every member; the members' probe rows
        when asked. Each member's true-class log-probabilities are left in `picked` (K, b)."""
        ops = self.stacking
        inputs, saved, logits = _forward(self.layers, self.activation, x, ops, training=True)
        log_probs = _each_run(lambda t: torch.log_softmax(t, dim=1), logits)  # row-chunked kernels: see the module's doc
        target = y.unsqueeze(2)  # (K, b, 1)
        picked.copy_(log_probs.gather(2, target).squeeze(2))
        grad = _each_run(lambda t: torch.softmax(t, dim=1), logits).scatter_add_(2, target, log_probs.new_full(target.shape, -1.0))
        grad.mul_(self.lrs / y.shape[1])  # lr · dL/dlogits: every gradient below comes out scaled by lr
        grads: list[torch.Tensor] = []  # with probes: every parameter's lr-scaled gradient (K, ...)
        for i in reversed(range(len(self.layers))):
            layer, layer_input = self.layers[i], inputs[i]
            grad_in = ops.bmm(grad, layer.weight.transpose(1, 2)) if i > 0 else None  # before W changes
            grad_bias = ops.batch_sum(grad)
            if probe:
                grads += [ops.bmm(layer_input.transpose(1, 2), grad), grad_bias]
            ops.subtract_bmm_(layer.weight, layer_input.transpose(1, 2), grad)
            layer.bias.sub_(grad_bias)
            if i > 0:
                grad = _hidden_backward(self.layers[i - 1], saved[i - 1], self.activation, grad_in, ops, grads if probe else None)
        if not probe:
            return []
        return [_probe_row(grads, k, float(self.lrs[k]), -picked[k].sum() / y.shape[1]) for k in range(self.size)]

    @torch.inference_mode()
    def _evaluate(self, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> list[tuple[float, float]]:
        """Per member: mean cross-entropy per test image and accuracy in percent."""
        total_loss = [torch.zeros((), dtype=torch.float64, device=x.device) for _ in self.members]
        correct = [torch.zeros((), dtype=torch.int64, device=x.device) for _ in self.members]
        flat, ops = x.flatten(1), self.stacking
        for start in range(0, len(y), batch_size):
            batch = flat[start:start + batch_size].expand(self.size, -1, -1)
            target = y[start:start + batch_size]
            _, _, logits = _forward(self.layers, self.activation, batch, ops, training=False)
            for k in range(self.size):  # reduced run by run: see the module's doc
                total_loss[k] += torch.nn.functional.cross_entropy(logits[k], target, reduction="sum").double()
                correct[k] += (logits[k].argmax(1) == target).sum()
        return [(loss.item() / len(y), 100.0 * hits.item() / len(y)) for loss, hits in zip(total_loss, correct)]


def _batch_rows(samples: int, batch_size: int) -> set[int]:
    """The row counts of an epoch's batches: full ones and the last, shorter one."""
    return {min(batch_size, samples)} | ({samples % batch_size} if samples % batch_size else set())


def _data_order(member: Member, samples: int) -> torch.Tensor | None:
    """The member's batch order for its next epoch (see epoch_order)."""
    return epoch_order(member.request, member.state.epochs_done + 1, samples)


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of one epoch's randomness: epoch e of a run depends only on its weights and (seed, e),
    so a resumed run needs no saved RNG state and equals an uninterrupted one."""
    return seed * 100_003 + epoch


def epoch_order(request: dict[str, Any], epoch: int, samples: int) -> torch.Tensor | None:
    """The batch order of an epoch, on the CPU: data-set order (None), or a permutation seeded by
    epoch_seed. Every training path takes it from here, so all paths see the same batches."""
    if not request["shuffle"]:
        return None
    generator = torch.Generator().manual_seed(epoch_seed(request["seed"], epoch))
    return torch.randperm(samples, generator=generator)


def _batch(flat_x: torch.Tensor, labels: torch.Tensor, orders: list[torch.Tensor | None], rows: slice):
    """Every member's batch: images (K, b, D) and labels (K, b)."""
    k = len(orders)
    if orders[0] is None:  # data-set order: one batch, seen by every member
        return flat_x[rows].expand(k, -1, -1), labels[rows].expand(k, -1)
    index = torch.stack([order[rows] for order in orders]).to(flat_x.device)
    return flat_x[index], labels[index]


def _forward(layers: list[Layer], activation: str, a: torch.Tensor, ops: Stacking, training: bool) -> tuple[list[torch.Tensor], list[Saved], torch.Tensor]:
    """Each Linear's input, each hidden layer's saved tensors, and the logits (K, b, classes)."""
    inputs: list[torch.Tensor] = []
    saved: list[Saved] = []
    for layer in layers[:-1]:
        inputs.append(a)
        out = _activate(activation, ops.bmm(a, layer.weight, layer.bias))
        if layer.norm is None:
            a, kept = out, Saved(out)
        elif training:
            a, kept = _batch_norm_train(layer.norm, out, ops)
        else:
            a, kept = _batch_norm_eval(layer.norm, out), Saved(out)
        saved.append(kept)
    inputs.append(a)
    last = layers[-1]
    return inputs, saved, ops.bmm(a, last.weight, last.bias)


def _batch_norm_train(norm: Norm, x: torch.Tensor, ops: Stacking) -> tuple[torch.Tensor, Saved]:
    """Normalise with each run's batch statistics and update its running ones as nn.BatchNorm1d does
    (running variance unbiased)."""
    n = x.shape[1]
    mean = ops.batch_sum(x).div_(n)  # (K, 1, h)
    centered = x - mean
    variance = ops.batch_sum(centered * centered).div_(n)
    invstd = (variance + norm.eps).rsqrt_()
    normalised = centered.mul_(invstd)
    norm.running_mean.mul_(1 - norm.momentum).add_(mean.mul_(norm.momentum))
    norm.running_var.mul_(1 - norm.momentum).add_(variance.mul_(n / (n - 1)).mul_(norm.momentum))
    norm.tracked.add_(1)
    return (normalised * norm.weight).add_(norm.bias), Saved(x, normalised, invstd)


def _batch_norm_eval(norm: Norm, x: torch.Tensor) -> torch.Tensor:
    invstd = (norm.running_var + norm.eps).rsqrt()
    return (x - norm.running_mean).mul_(invstd).mul_(norm.weight).add_(norm.bias)


def _hidden_backward(layer: Layer, saved: Saved, activation: str, grad: torch.Tensor, ops: Stacking,
                     grads: list[torch.Tensor] | None) -> torch.Tensor:
    """From the gradient at a hidden layer's output to the gradient at its Linear's output;
    updates the batch norm's weight and bias on the way."""
    norm = layer.norm
    if norm is not None:
        n = grad.shape[1]
        grad_bias = ops.batch_sum(grad)  # (K, 1, h)
        grad_weight = ops.batch_sum(grad * saved.normalised)
        # d/dx of the normalisation, with the weight before this step's update
        grad = (grad * n - grad_bias - saved.normalised * grad_weight).mul_(norm.weight * saved.invstd / n)
        if grads is not None:
            grads += [grad_weight, grad_bias]
        norm.weight.sub_(grad_weight)
        norm.bias.sub_(grad_bias)
    if activation in EXACT_ACTIVATIONS:
        return ACTIVATION_BACKWARD[activation](grad, saved.activation)
    return torch.stack([ACTIVATION_BACKWARD[activation](g, out) for g, out in zip(grad, saved.activation)])


def _activate(activation: str, x: torch.Tensor) -> torch.Tensor:
    """The activation, in place; run by run unless its result is exact (see the module's doc)."""
    if activation in EXACT_ACTIVATIONS:
        return ACTIVATION[activation](x)
    for run in x:
        ACTIVATION[activation](run)
    return x


def _each_run(fn: Callable[[torch.Tensor], torch.Tensor], stacked: torch.Tensor) -> torch.Tensor:
    """fn applied to each run's slice on its own, stacked again."""
    return torch.stack([fn(run) for run in stacked])


def _probe_row(grads: list[torch.Tensor], k: int, lr: float, loss: torch.Tensor) -> list[float]:
    """Member k's (mean, mean |g|, global L2 norm) of the unscaled gradient over every parameter, and its loss."""
    mine = [g[k] for g in grads]
    count = sum(g.numel() for g in mine)
    total = torch.stack([g.sum() for g in mine]).sum()
    total_abs = torch.stack([g.abs().sum() for g in mine]).sum()
    squares = torch.stack([g.pow(2).sum() for g in mine]).sum()
    return torch.stack([total / lr / count, total_abs / lr / count, squares.sqrt() / lr, loss]).tolist()


def _step_losses(picked: torch.Tensor, samples: int) -> torch.Tensor:
    """Each step's mean cross-entropy from one member's (steps, batch) log-probabilities; the last
    step may hold fewer than a full batch (its unused slots stay zero)."""
    steps, batch_size = picked.shape
    counts = picked.new_full((steps,), float(batch_size))
    counts[-1] = samples - (steps - 1) * batch_size
    return -picked.sum(1) / counts


def _modules(model: nn.Module) -> list[tuple[nn.Linear, nn.BatchNorm1d | None]]:
    """models.mlp's Linear layers in order, each with the BatchNorm1d after its activation."""
    pairs: list[list[Any]] = []
    for module in model.modules():
        if isinstance(module, nn.Linear):
            pairs.append([module, None])
        elif isinstance(module, nn.BatchNorm1d):
            pairs[-1][1] = module
    return [(linear, norm) for linear, norm in pairs]


def _stack_layers(models: list[nn.Module]) -> list[Layer]:
    """The K models' layers as stacked tensors (copies: the models are written back after each epoch)."""
    per_model = [_modules(model) for model in models]
    layers = []
    for depth in range(len(per_model[0])):
        linears = [pairs[depth][0] for pairs in per_model]
        norms = [pairs[depth][1] for pairs in per_model]
        weight = torch.stack([m.weight.detach().T for m in linears]).contiguous()
        bias = torch.stack([m.bias.detach() for m in linears]).unsqueeze(1).contiguous()
        layers.append(Layer(weight, bias, _stack_norms(norms) if norms[0] is not None else None))
    return layers


def _stack_norms(norms: list[nn.BatchNorm1d]) -> Norm:
    def stacked(name: str) -> torch.Tensor:
        return torch.stack([getattr(m, name).detach() for m in norms]).unsqueeze(1).contiguous()

    tracked = torch.stack([m.num_batches_tracked.detach() for m in norms]).clone()
    first = norms[0]
    return Norm(stacked("weight"), stacked("bias"), stacked("running_mean"), stacked("running_var"), tracked,
                first.momentum, first.eps)
