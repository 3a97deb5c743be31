"""The architecture registry: model builders registered by name, each with its arguments as a typed model.

A builder's signature is the one declaration of its arguments; `args_model` derives the pydantic model.
A spec may also name a builder by reference (`nets.py:MyNet`, `package.module:callable`) or an installed
plug-in (entry-point group `reportgen.architectures`): `find_architecture` resolves all three the same way.
Two parameters come from the data, not the spec: `input_shape` (C, H, W) and, unless the spec sets it,
`classes`.
"""
from __future__ import annotations

import functools
import inspect
import math
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Callable, Literal

import torch
from pydantic import Field, create_model
from torch import nn

from reportgen.errors import SpecError
from reportgen.references import ARCHITECTURE_GROUP, is_reference, plugins, resolve
from reportgen.registry import Args, Registry, first_line, parse_args, unknown_name_message, VocabularyError

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}
Activation = Literal["relu", "sigmoid", "tanh"]
Width = Annotated[int, Field(gt=0, le=100_000)]
Shape = tuple[int, int, int]  # one input: (channels, height, width)
INPUT_SHAPE = "input_shape"  # a builder parameter reportgen fills from the data; never a spec argument
CLASSES = "classes"  # filled from the data's class count unless the spec's args set it


@dataclass(frozen=True)
class Architecture:
    name: str
    build: Callable[..., nn.Module]
    args: type[Args]
    help: str
    source: str = ""  # a reference's or plug-in's code stamp (references.Resolved.source); "" when registered
    location: str | None = None  # a file reference's absolute path


@dataclass(frozen=True)
class ModelInputs:
    """What the data tell a builder: one input's shape and the class count."""

    shape: Shape
    classes: int


DEFAULT_INPUTS = ModelInputs((1, 28, 28), 10)  # Fashion-MNIST and MNIST


ARCHITECTURES: Registry[Architecture] = Registry("architecture")


def register_architecture(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator: register `builder` under `name`; its keyword arguments become the spec's `args`."""
    def register(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        ARCHITECTURES.add(Architecture(name, builder, args_model(name, builder), first_line(builder.__doc__)))
        return builder
    return register


def args_model(name: str, builder: Callable[..., Any]) -> type[Args]:
    """The builder's parameters (annotations and defaults) as a pydantic model refusing unknown keys;
    `input_shape` is left out and `classes` made optional, since the data give them."""
    target = builder.__init__ if isinstance(builder, type) else builder
    try:
        hints = typing.get_type_hints(target, include_extras=True)
    except Exception:  # noqa: BLE001 - a user's annotation that does not evaluate: accept any value
        hints = {}
    fields = {}
    for p in inspect.signature(target).parameters.values():
        if p.name in ("self", INPUT_SHAPE) or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        annotation = hints.get(p.name, Any)
        if p.name == CLASSES:  # the data's class count unless the spec sets it
            fields[p.name] = (typing.Optional[annotation], Field(None, description="None: the data set's class count"))
            continue
        fields[p.name] = (annotation, ... if p.default is p.empty else p.default)
    return create_model(f"{name}_args".replace(":", "_").replace("/", "_").replace(".", "_"), __base__=Args, **fields)


def _activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; known: {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


@register_architecture("mlp")
def mlp(hidden: list[Width], batch_norm: bool = False, activation: Activation = "relu", classes: Width = 10,
        input_shape: Shape = DEFAULT_INPUTS.shape) -> nn.Module:
    """Flatten → [Linear → act (→ BatchNorm1d)] per hidden layer → Linear to classes."""
    return nn.Sequential(nn.Flatten(), *_dense_layers(math.prod(input_shape), hidden, classes, activation, batch_norm))


def _dense_layers(width: int, hidden: list[int], classes: int, activation: str, batch_norm: bool) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for size in hidden:
        layers += [nn.Linear(width, size), _activation(activation)]
        if batch_norm:
            layers.append(nn.BatchNorm1d(size))  # after the activation, as the reference placed it
        width = size
    return layers + [nn.Linear(width, classes)]


@register_architecture("small_cnn")
def small_cnn(classes: Width = 10, input_shape: Shape = DEFAULT_INPUTS.shape) -> nn.Module:
    """Q1.7's CNN: two conv-ReLU-pool blocks (32, 64 channels), then fc 128 → classes."""
    return _two_block_cnn(32, 64, 128, classes, input_shape)


def _two_block_cnn(first: int, second: int, hidden: int, classes: int, input_shape: Shape = DEFAULT_INPUTS.shape) -> nn.Module:
    channels, height, width = input_shape
    return nn.Sequential(
        nn.Conv2d(channels, first, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (B, first, H/2, W/2)
        nn.Conv2d(first, second, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),    # (B, second, H/4, W/4)
        nn.Flatten(), nn.Linear(second * (height // 4) * (width // 4), hidden), nn.ReLU(), nn.Linear(hidden, classes),
    )


@register_architecture("bn_cnn")
def bn_cnn(classes: Width = 10, input_shape: Shape = DEFAULT_INPUTS.shape) -> nn.Module:
    """The reference's batch-normalised CNN: three conv blocks, then a BN MLP head."""
    layers: list[nn.Module] = []
    channels, height, width = input_shape
    for out in (32, 64, 128):  # 28 → 14 → 7 → 3
        layers += [nn.Conv2d(channels, out, 3, padding=1), nn.ReLU(), nn.BatchNorm2d(out), nn.MaxPool2d(2)]
        channels, height, width = out, height // 2, width // 2
    layers.append(nn.Flatten())
    return nn.Sequential(*layers, *_dense_layers(128 * height * width, [512, 256, 128, 64], classes, "relu", batch_norm=True))


@register_architecture("lab_model_a")
class LabModelA(nn.Module):
    """The lab's Model A: one conv (8 channels) → act → pool → fc 64 → act → fc 10."""

    def __init__(self, activation: Activation = "relu", classes: Width = 10, input_shape: Shape = DEFAULT_INPUTS.shape):
        super().__init__()
        channels, height, width = input_shape
        self.conv = nn.Conv2d(channels, 8, 3, padding=1)
        self.act = _activation(activation)
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(8 * (height // 2) * (width // 2), 64)
        self.fc2 = nn.Linear(64, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.act(self.conv(x)))  # (B, 8, H/2, W/2)
        return self.fc2(self.act(self.fc1(x.flatten(1))))


@register_architecture("lab_model_b")
def lab_model_b(classes: Width = 10, input_shape: Shape = DEFAULT_INPUTS.shape) -> nn.Module:
    """The lab's Model B: two conv-ReLU-pool blocks (8, 16 channels) → fc 64 → fc 10."""
    return _two_block_cnn(8, 16, 64, classes, input_shape)


@register_architecture("resnet18")
def resnet18(classes: Width = 10, input_shape: Shape = DEFAULT_INPUTS.shape) -> nn.Module:
    """torchvision's ResNet18, random weights, first convolution taking the data's channels."""
    from torchvision.models import resnet18 as tv_resnet18

    model = tv_resnet18(weights=None, num_classes=classes)
    model.conv1 = nn.Conv2d(input_shape[0], 64, kernel_size=7, stride=2, padding=3, bias=False)
    return model


@register_architecture("alexnet")
def alexnet(classes: Width = 10, input_shape: Shape = DEFAULT_INPUTS.shape) -> nn.Module:
    """torchvision's AlexNet, random weights, first convolution taking the data's channels."""
    from torchvision.models import alexnet as tv_alexnet

    model = tv_alexnet(weights=None, num_classes=classes)
    model.features[0] = nn.Conv2d(input_shape[0], 64, kernel_size=11, stride=4, padding=2)
    return model


# ---------------------------------------------------------------- finding and building

def find_architecture(arch: str, base_dir: Path | None = None, where: str = "arch") -> Architecture:
    """A registered name, an installed plug-in's name, or a reference ('nets.py:MyNet' relative to
    `base_dir`, 'package.module:callable'); a SpecError naming `where` otherwise."""
    if is_reference(arch):
        found = resolve(arch, base_dir or Path.cwd(), where)
        return _entry_of(arch, found.target, found.source, found.path)
    if arch in ARCHITECTURES:
        return ARCHITECTURES[arch]
    installed = plugins(ARCHITECTURE_GROUP)
    if arch in installed:
        return _entry_of(arch, _load_plugin(installed[arch].load, arch, where), installed[arch].source, None)
    raise SpecError(unknown_name_message("architecture", arch, ARCHITECTURES.names() + sorted(installed), where)
                    + " Or refer to your own: 'nets.py:MyNet' (a file beside the spec) or 'package.module:callable'.")


def plugin_architectures() -> list[Architecture]:
    """Every installed plug-in architecture (for `reportgen vocab`); one that fails to load is left out."""
    found = []
    for name, plugin in sorted(plugins(ARCHITECTURE_GROUP).items()):
        try:
            entry = _entry_of(name, _load_plugin(plugin.load, name, name), plugin.source, None)
        except SpecError:
            continue
        found.append(Architecture(name, entry.build, entry.args, f"(plug-in {plugin.value}, {plugin.source}) {entry.help}",
                                  entry.source))
    return found


def _load_plugin(load: Callable[[], Any], name: str, where: str) -> Callable[..., Any]:
    try:
        return load()
    except Exception as err:  # noqa: BLE001 - a plug-in may raise anything on import
        raise SpecError(f"{where}: the installed plug-in architecture {name!r} does not import "
                        f"({type(err).__name__}: {err}); reinstall or fix its package") from None


@functools.lru_cache(maxsize=None)
def _entry_of(name: str, target: Callable[..., Any], source: str, location: str | None) -> Architecture:
    return Architecture(name, target, args_model(name, target), first_line(target.__doc__), source, location)


def build_model(arch: str, args: dict, inputs: ModelInputs = DEFAULT_INPUTS, base_dir: Path | None = None) -> nn.Module:
    check_model_args(arch, args, where="model", base_dir=base_dir)
    return instantiate(find_architecture(arch, base_dir), args, inputs)


def instantiate(entry: Architecture, args: dict, inputs: ModelInputs, where: str = "model") -> nn.Module:
    """The builder called with the spec's args, plus the data's input shape and class count where it takes them."""
    kwargs = dict(args)
    params = inspect.signature(entry.build).parameters
    if CLASSES in params and kwargs.get(CLASSES) is None:
        kwargs[CLASSES] = inputs.classes
    if INPUT_SHAPE in params:
        kwargs[INPUT_SHAPE] = inputs.shape
    model = entry.build(**kwargs)
    if not isinstance(model, nn.Module):
        raise SpecError(f"{where}.arch: {entry.name!r} returned {type(model).__name__}, not a torch.nn.Module; "
                        "refer to a class deriving from nn.Module or a function returning one")
    return model


def check_model_args(arch: str, args: dict, where: str, base_dir: Path | None = None) -> None:
    """Refuse an unknown architecture or argument before any training starts."""
    entry = find_architecture(arch, base_dir, where=f"{where}.arch")
    try:
        parse_args(entry.args, dict(args), "")
    except VocabularyError as err:
        takes = "" if "allowed:" in err.message else f"; {arch!r} takes: {', '.join(entry.args.model_fields) or 'no arguments'}"
        raise SpecError(f"{where}.args{err.subpath}: {err.message}{takes}") from None


def check_model_fits(arch: str, args: dict, inputs: ModelInputs, where: str, base_dir: Path | None = None) -> None:
    """Build the model on the meta device (no memory, no time) and pass it a batch of the data's shape:
    a model that cannot take the inputs, or whose outputs are not one logit per class, is a SpecError."""
    entry = find_architecture(arch, base_dir, where=f"{where}.arch")
    with torch.device("meta"):
        model = instantiate(entry, args, inputs, where)
        try:
            logits = model(torch.empty(2, *inputs.shape))  # (B, classes) expected
        except Exception as err:  # noqa: BLE001 - a shape mismatch surfaces as whatever the layer raises
            raise SpecError(f"{where}.arch: {arch!r} cannot take the data's inputs of shape {inputs.shape} (C, H, W) "
                            f"({type(err).__name__}: {' '.join(str(err).split())[:200]}). Give the callable an "
                            f"`{INPUT_SHAPE}` parameter (reportgen passes (C, H, W)), or set `image_size`.") from None
    if tuple(getattr(logits, "shape", ())) != (2, inputs.classes):
        got = tuple(getattr(logits, "shape", ()))[1:]
        raise SpecError(f"{where}.arch: {arch!r} gives outputs of shape {got} per input, but the data set has "
                        f"{inputs.classes} classes; give the callable a `{CLASSES}` parameter (reportgen passes the "
                        f"class count) or make its last layer output {inputs.classes} logits.")


# ---------------------------------------------------------------- from a run request

def request_inputs(request: dict[str, Any]) -> ModelInputs:
    """The input shape and class count of a request's data (its `data` entry, else Fashion-MNIST's)."""
    data = request.get("data")
    channels, classes = (data["shape"][0], data["classes"]) if data else (DEFAULT_INPUTS.shape[0], DEFAULT_INPUTS.classes)
    size = request["image_size"]
    return ModelInputs((channels, size, size), classes)


def model_for_request(request: dict[str, Any]) -> nn.Module:
    """The request's model, in any process: a file reference is imported from the path it recorded, and
    refused if that file no longer has the content the request's key was made from."""
    arch = request["arch"]
    if not is_reference(arch):
        return instantiate(find_architecture(arch), request["model_args"], request_inputs(request))
    location = request.get("locations", {}).get("arch")
    entry = find_architecture(f"{location}:{arch.rpartition(':')[2]}" if location else arch, Path("/"))
    if entry.source != request.get("arch_source"):
        raise SpecError(f"{location or arch} changed since this run was planned (its code is now {entry.source}, "
                        f"the run was planned with {request.get('arch_source')}); run the command again to plan it anew.")
    return instantiate(entry, request["model_args"], request_inputs(request))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
