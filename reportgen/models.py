"""The architecture registry: model builders registered by name, each with its arguments as a typed model.

`build_model(arch, args)` gives an nn.Module for 28x28 inputs (or the preset's image_size). A builder's
signature is the one declaration of its arguments; `register_architecture` derives the pydantic model.
"""
from __future__ import annotations

import inspect
import typing
from dataclasses import dataclass
from typing import Annotated, Any, Callable, Literal

import torch
from pydantic import Field, create_model
from torch import nn

from reportgen.registry import Args, Registry, first_line, parse_args, VocabularyError
from reportgen.errors import SpecError

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}
Activation = Literal["relu", "sigmoid", "tanh"]
Width = Annotated[int, Field(gt=0, le=100_000)]


@dataclass(frozen=True)
class Architecture:
    name: str
    build: Callable[..., nn.Module]
    args: type[Args]
    help: str


ARCHITECTURES: Registry[Architecture] = Registry("architecture")


def register_architecture(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator: register `builder` under `name`; its keyword arguments become the spec's `args`."""
    def register(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        ARCHITECTURES.add(Architecture(name, builder, args_model(name, builder), first_line(builder.__doc__)))
        return builder
    return register


def args_model(name: str, builder: Callable[..., Any]) -> type[Args]:
    """The builder's parameters (annotations and defaults) as a pydantic model refusing unknown keys."""
    target = builder.__init__ if isinstance(builder, type) else builder
    hints = typing.get_type_hints(target, include_extras=True)
    fields = {p.name: (hints.get(p.name, Any), ... if p.default is p.empty else p.default)
              for p in inspect.signature(target).parameters.values() if p.name != "self"}
    return create_model(f"{name}_args", __base__=Args, **fields)


def _activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; known: {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


@register_architecture("mlp")
def mlp(hidden: list[Width], batch_norm: bool = False, activation: Activation = "relu", classes: Width = 10) -> nn.Module:
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


@register_architecture("small_cnn")
def small_cnn(classes: Width = 10) -> nn.Module:
    """Q1.7's CNN: two conv-ReLU-pool blocks (32, 64 channels), then fc 128 → classes."""
    return _two_block_cnn(32, 64, 128, classes)


def _two_block_cnn(first: int, second: int, hidden: int, classes: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, first, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),       # (B, first, 14, 14)
        nn.Conv2d(first, second, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (B, second, 7, 7)
        nn.Flatten(), nn.Linear(second * 7 * 7, hidden), nn.ReLU(), nn.Linear(hidden, classes),
    )


@register_architecture("bn_cnn")
def bn_cnn(classes: Width = 10) -> nn.Module:
    """The reference's batch-normalised CNN: three conv blocks, then a BN MLP head."""
    layers: list[nn.Module] = []
    channels = 1
    for out in (32, 64, 128):  # 28 → 14 → 7 → 3
        layers += [nn.Conv2d(channels, out, 3, padding=1), nn.ReLU(), nn.BatchNorm2d(out), nn.MaxPool2d(2)]
        channels = out
    layers.append(nn.Flatten())
    return nn.Sequential(*layers, *_dense_layers(128 * 3 * 3, [512, 256, 128, 64], classes, "relu", batch_norm=True))


@register_architecture("lab_model_a")
class LabModelA(nn.Module):
    """The lab's Model A: one conv (8 channels) → act → pool → fc 64 → act → fc 10."""

    def __init__(self, activation: Activation = "relu", classes: Width = 10):
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3, padding=1)
        self.act = _activation(activation)
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(8 * 14 * 14, 64)
        self.fc2 = nn.Linear(64, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.act(self.conv(x)))  # (B, 8, 14, 14)
        return self.fc2(self.act(self.fc1(x.flatten(1))))


@register_architecture("lab_model_b")
def lab_model_b(classes: Width = 10) -> nn.Module:
    """The lab's Model B: two conv-ReLU-pool blocks (8, 16 channels) → fc 64 → fc 10."""
    return _two_block_cnn(8, 16, 64, classes)


@register_architecture("resnet18")
def resnet18(classes: Width = 10) -> nn.Module:
    """torchvision's ResNet18, random weights, first convolution taking one channel."""
    from torchvision.models import resnet18 as tv_resnet18

    model = tv_resnet18(weights=None, num_classes=classes)
    model.conv1 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
    return model


@register_architecture("alexnet")
def alexnet(classes: Width = 10) -> nn.Module:
    """torchvision's AlexNet, random weights, first convolution taking one channel."""
    from torchvision.models import alexnet as tv_alexnet

    model = tv_alexnet(weights=None, num_classes=classes)
    model.features[0] = nn.Conv2d(1, 64, kernel_size=11, stride=4, padding=2)
    return model


def build_model(arch: str, args: dict) -> nn.Module:
    check_model_args(arch, args, where="model")
    return ARCHITECTURES.get(arch).build(**args)


def check_model_args(arch: str, args: dict, where: str) -> None:
    """Refuse an unknown architecture or argument before any training starts."""
    entry = ARCHITECTURES.get(arch, where=f"{where}.arch")
    try:
        parse_args(entry.args, dict(args), "")
    except VocabularyError as err:
        takes = "" if "allowed:" in err.message else f"; {arch!r} takes: {', '.join(entry.args.model_fields) or 'no arguments'}"
        raise SpecError(f"{where}.args{err.subpath}: {err.message}{takes}") from None


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
