"""Stage 3: the training engine. Run requests in, per-epoch metrics out; no files, no printing.

Data stay as tensors on the device and batches are slices (or gathers of a seeded
permutation), so one epoch is a tight loop of forward, backward, step. Plain-SGD MLPs train in
lockstep.py (alone or grouped); every other family trains here by autograd, one run at a time.
`trainer_for` picks the path, so the runner has one way to train.
"""
from __future__ import annotations

import math
import platform
import time
from contextlib import contextmanager
from pathlib import Path
from dataclasses import dataclass
from typing import Any, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from reportgen.data import to_float_images
from reportgen.errors import SpecError
from reportgen.lockstep import Group, Member, epoch_order, epoch_seed
from reportgen.models import count_parameters, model_for_request
from reportgen.plan import lockstep_reason
from reportgen.results import PROBE_STEPS, EpochMetrics, probe_columns


@dataclass
class Tensors:
    """A request's data, resident on the device: images (N, 1, S, S) in [0, 1], labels (N,)."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    classes: int


@dataclass
class TrainState:
    model: nn.Module
    optimizer: torch.optim.Optimizer
    epochs_done: int
    steps_done: int


# Every CPU run trains on one thread, whatever the machine: torch's thread count changes a run's last
# bits, so this makes a run's numbers independent of the core count and of how many runs train side by
# side; a build uses the cores by training several runs at once (runner.LocalExecutor's workers), which
# measured 1.23x one after another on two threads for the small CNN (benchmarks/engine.py).
THREADS_PER_RUN = 1


@contextmanager
def run_threads(threads: int | None = None) -> Iterator[None]:
    """torch at `threads` (default THREADS_PER_RUN) threads for the duration, then as it was."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads or THREADS_PER_RUN)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def resolve_device(choice: str) -> str:
    """'auto' → 'cuda' when a GPU is usable, else 'cpu'."""
    if choice == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if choice == "cuda" and not torch.cuda.is_available():
        raise SpecError("--device cuda: no CUDA device is available here; use --device auto or cpu.")
    return choice


def machine_info(device: str) -> dict[str, Any]:
    """What trains here, recorded with each cache entry: CPU model and torch's threads change a CPU
    run's last bits, the GPU a CUDA run's."""
    return {"processor": processor_name(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "gpu": torch.cuda.get_device_name() if device == "cuda" else None}


def processor_name(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU model from /proc/cpuinfo (Linux), else what the platform says."""
    try:
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name") and ":" in line:
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def prepare_tensors(request: dict[str, Any], splits: tuple[Any, Any]) -> Tensors:
    """Subset, scale to [0, 1] (ToTensor's scaling), resize if asked, move to the device."""
    train, test = splits
    device = torch.device(request["device"])
    train_x, train_y = _take(train, request["train_subset"])
    test_x, test_y = _take(test, request["test_subset"])
    size = request["image_size"]
    return Tensors(to_float_images(train_x, size, device), train_y.to(device),
                   to_float_images(test_x, size, device), test_y.to(device), len(train.classes))


def _take(split: Any, subset: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    n = len(split.labels) if subset is None else min(subset, len(split.labels))
    return split.images[:n], split.labels[:n]  # the first n, in data-set order


def new_state(request: dict[str, Any]) -> TrainState:
    """A freshly initialised model and optimizer; the seed fixes the initial weights."""
    _configure_determinism(request["device"])
    torch.manual_seed(request["seed"])
    # NHWC: oneDNN's CPU convolutions and max-pooling run faster in it (benchmarks/engine.py: CNN 1.3x).
    layout = torch.channels_last if request["device"] == "cpu" else torch.contiguous_format
    model = model_for_request(request).to(request["device"], memory_format=layout)
    return TrainState(model, make_optimizer(request, model), 0, 0)


def make_optimizer(request: dict[str, Any], model: nn.Module) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if request["optimizer"] == "adam":
        return torch.optim.Adam(params, lr=request["lr"])
    return torch.optim.SGD(params, lr=request["lr"])


def _configure_determinism(device: str) -> None:
    if device == "cuda":
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False


def train_epoch(state: TrainState, data: Tensors, request: dict[str, Any]) -> tuple[EpochMetrics, dict[str, list[float]]]:
    """One epoch of training and one evaluation; returns the metrics and any gradient probes."""
    start = time.perf_counter()
    epoch = state.epochs_done + 1
    torch.manual_seed(epoch_seed(request["seed"], epoch))  # any randomness in the model (dropout) as well
    order = epoch_order(request, epoch, len(data.train_y))
    order = order.to(data.train_x.device) if order is not None else None
    step_losses, probes = train_steps(state, data, request, order)
    test_loss, test_accuracy = evaluate(state.model, data.test_x, data.test_y, request["test_batch_size"])
    state.epochs_done = epoch
    train_loss = step_losses.double().mean().item()
    # Per-step losses are for plots and logged-batch tables: 6 significant digits keep the cache small.
    losses = [float(f"{v:.6g}") for v in step_losses.tolist()]
    metrics = EpochMetrics(epoch, train_loss, test_loss, test_accuracy, time.perf_counter() - start, losses)
    return metrics, probes


def train_steps(state: TrainState, data: Tensors, request: dict[str, Any], order: torch.Tensor | None):
    """One pass over the training data by autograd: (per-step losses, gradient probes)."""
    return _train_steps(state, data, request["batch_size"], order)


class LoneRun:
    """One run of a family lockstep.py does not train (CNNs, Adam), by autograd: a group of one
    with Group's interface, so the runner has one way to train."""

    def __init__(self, member: Member):
        self.members = [member]

    @property
    def size(self) -> int:
        return len(self.members)

    def train_epoch(self, data: Tensors) -> list[tuple[EpochMetrics, dict[str, list[float]]]]:
        return [train_epoch(member.state, data, member.request) for member in self.members]

    def train_pass(self, data: Tensors) -> Any:
        """One pass over the training data in data-set order, no evaluation (what a timing probe times)."""
        (member,) = self.members
        return train_steps(member.state, data, member.request, None)

    def evaluate(self, data: Tensors) -> list[tuple[float, float]]:
        (member,) = self.members
        return [evaluate(member.state.model, data.test_x, data.test_y, member.request["test_batch_size"])]

    def keep(self, indices: list[int]) -> None:
        self.members = [self.members[i] for i in indices]

    @property
    def fallbacks(self) -> list[str]:
        return []  # nothing stacked, nothing to fall back from


def trainer_for(members: list[Member]) -> Group | LoneRun:
    """Lockstep for plain-SGD MLPs, alone or grouped (the only path that trains them, so grouping
    never changes a number); autograd for one run of any other family."""
    if len(members) == 1 and lockstep_reason(members[0].request) is not None:
        return LoneRun(members[0])
    return Group(members)


def _train_steps(state: TrainState, data: Tensors, batch_size: int, order: torch.Tensor | None):
    model, optimizer = state.model, state.optimizer
    model.train()
    n = len(data.train_y)
    steps = math.ceil(n / batch_size)
    losses = torch.empty(steps, device=data.train_x.device)
    probe_rows: list[torch.Tensor] = []
    for i in range(steps):
        idx = slice(i * batch_size, (i + 1) * batch_size) if order is None else order[i * batch_size:(i + 1) * batch_size]
        x, y = data.train_x[idx], data.train_y[idx]
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if state.steps_done < PROBE_STEPS:
            probe_rows.append(_gradient_probe(model, loss))
        optimizer.step()
        losses[i] = loss.detach()
        state.steps_done += 1
    return losses, probe_columns([row.tolist() for row in probe_rows])


def _gradient_probe(model: nn.Module, loss: torch.Tensor) -> torch.Tensor:
    """(mean, mean |g|, global L2 norm) over every trainable parameter's gradient, and the loss."""
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    count = sum(g.numel() for g in grads)
    total = torch.stack([g.sum() for g in grads]).sum()
    total_abs = torch.stack([g.abs().sum() for g in grads]).sum()
    norm = torch.stack([g.pow(2).sum() for g in grads]).sum().sqrt()
    return torch.stack([total / count, total_abs / count, norm, loss.detach()])


@torch.inference_mode()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> tuple[float, float]:
    """Mean cross-entropy per test image and accuracy in percent."""
    model.eval()
    total_loss = torch.zeros((), device=x.device, dtype=torch.float64)
    correct = torch.zeros((), device=x.device, dtype=torch.int64)
    for start in range(0, len(y), batch_size):
        logits = model(x[start:start + batch_size])
        target = y[start:start + batch_size]
        total_loss += F.cross_entropy(logits, target, reduction="sum").double()
        correct += (logits.argmax(1) == target).sum()
    return total_loss.item() / len(y), 100.0 * correct.item() / len(y)


def parameter_count(state: TrainState) -> int:
    return count_parameters(state.model)
