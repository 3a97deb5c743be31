"""Model builders registered by name: `ARCHITECTURES[arch](**args)` gives an nn.Module for 28x28 inputs."""
from __future__ import annotations

import inspect
from typing import Callable

import torch
from torch import nn

from reportgen.errors import SpecError

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}


def _activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; known: {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


def mlp(hidden: list[int], batch_norm: bool = False, activation: str = "relu", classes: int = 10) -> nn.Module:
    """Flatten → [Linear → act (→ BatchNorm1d)] per hidden layer → Linear to classes."""
    return nn.Sequential(nn.Flatten(), *_dense_layers(28 * 28, hidden, classes, activation, batch_norm))


def _dense_layers(width: int, hidden: list[int], classes: int, activation: str, batch_norm: bool) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for size in hidden:
        layers += [nn.Linear(width, size), _activation(activation)]
        if batch_norm:
            layers.append(nn.BatchNorm1d(size))  # after the activation, as the reference placed it
        width = size
    return layers + [nn.Linear(width, classes)]


def small_cnn(classes: int = 10) -> nn.Module:
    """Q1.7's CNN: two conv-ReLU-pool blocks (32, 64 channels), then fc 128 → classes."""
    return _two_block_cnn(32, 64, 128, classes)


def _two_block_cnn(first: int, second: int, hidden: int, classes: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, first, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),       # (B, first, 14, 14)
        nn.Conv2d(first, second, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (B, second, 7, 7)
        nn.Flatten(), nn.Linear(second * 7 * 7, hidden), nn.ReLU(), nn.Linear(hidden, classes),
    )


def bn_cnn(classes: int = 10) -> nn.Module:
    """The reference's batch-normalised CNN: three conv blocks, then a BN MLP head."""
    layers: list[nn.Module] = []
    channels = 1
    for out in (32, 64, 128):  # 28 → 14 → 7 → 3
        layers += [nn.Conv2d(channels, out, 3, padding=1), nn.ReLU(), nn.BatchNorm2d(out), nn.MaxPool2d(2)]
        channels = out
    layers.append(nn.Flatten())
    return nn.Sequential(*layers, *_dense_layers(128 * 3 * 3, [512, 256, 128, 64], classes, "relu", batch_norm=True))


class LabModelA(nn.Module):
    """The lab's Model A: one conv (8 channels) → act → pool → fc 64 → act → fc 10."""

    def __init__(self, activation: str = "relu", classes: int = 10):
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3, padding=1)
        self.act = _activation(activation)
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(8 * 14 * 14, 64)
        self.fc2 = nn.Linear(64, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.act(self.conv(x)))  # (B, 8, 14, 14)
        return self.fc2(self.act(self.fc1(x.flatten(1))))


def lab_model_b(classes: int = 10) -> nn.Module:
    """The lab's Model B: two conv-ReLU-pool blocks (8, 16 channels) → fc 64 → fc 10."""
    return _two_block_cnn(8, 16, 64, classes)


def resnet18(classes: int = 10) -> nn.Module:
    """torchvision's ResNet18, random weights, first convolution taking one channel."""
    from torchvision.models import resnet18 as tv_resnet18

    model = tv_resnet18(weights=None, num_classes=classes)
    model.conv1 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
    return model


def alexnet(classes: int = 10) -> nn.Module:
    """torchvision's AlexNet, random weights, first convolution taking one channel."""
    from torchvision.models import alexnet as tv_alexnet

    model = tv_alexnet(weights=None, num_classes=classes)
    model.features[0] = nn.Conv2d(1, 64, kernel_size=11, stride=4, padding=2)
    return model


ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {
    "mlp": mlp,
    "small_cnn": small_cnn,
    "bn_cnn": bn_cnn,
    "lab_model_a": LabModelA,
    "lab_model_b": lab_model_b,
    "resnet18": resnet18,
    "alexnet": alexnet,
}


def build_model(arch: str, args: dict) -> nn.Module:
    check_model_args(arch, args, where="model")
    return ARCHITECTURES[arch](**args)


def check_model_args(arch: str, args: dict, where: str) -> None:
    """Refuse an unknown architecture or argument before any training starts."""
    if arch not in ARCHITECTURES:
        raise SpecError(f"{where}.arch: unknown architecture {arch!r}; known: {', '.join(ARCHITECTURES)}")
    accepted = inspect.signature(ARCHITECTURES[arch]).parameters
    for name, value in args.items():
        if name not in accepted:
            raise SpecError(f"{where}.args.{name}: {arch!r} takes no argument {name!r}; it takes: {', '.join(accepted)}")
        if name == "activation" and value not in ACTIVATIONS:
            raise SpecError(f"{where}.args.activation: unknown activation {value!r}; known: {', '.join(ACTIVATIONS)}")


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
