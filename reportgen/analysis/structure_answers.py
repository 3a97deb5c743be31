"""Answer functions for asks about the networks' structure: depth and receptive field, counted from the model each
run built (on the meta device: no memory, no weights), not from its label."""
from __future__ import annotations

from typing import Any

from reportgen.analysis import model_observers
from reportgen.analysis import wording as w
from reportgen.analysis.ask_answers import AskContext
from reportgen.registry import Args


def depth_and_field(ctx: AskContext, args: Args) -> str | None:
    """Per model: its convolutional and linear layers, and the input pixels one unit of its last conv stage sees."""
    parts = [_structure(o) for o in model_observers.by_preset(ctx.points).values()]
    return f"{'; '.join(parts)}." if parts else None


def _structure(point: Any) -> str:
    convs, linears, field = layer_counts(point.result.request["arch"], point.result.request.get("model_args", {}))
    said = f"{w.describe_run(point)}: {w.plural(convs, 'convolution')} and {w.plural(linears, 'linear layer')}"
    return said + (f", receptive field {field} × {field} pixels" if convs else "")  # of one last-stage unit


def layer_counts(arch: str, model_args: dict) -> tuple[int, int, int]:
    """(convolutions, linear layers, receptive field in pixels) of the architecture built with these arguments.

    The receptive field grows through the convolutions and poolings in the order the model defines them: exact for
    a chain of layers (the CNNs here), an approximation for a network with branches such as ResNet's shortcuts.
    """
    import torch
    from torch import nn

    from reportgen.models import build_model

    with torch.device("meta"):
        model = build_model(arch, dict(model_args))
    convs = linears = 0
    field, jump = 1, 1
    for module in model.modules():
        if isinstance(module, nn.Linear):
            linears += 1
        if isinstance(module, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
            convs += isinstance(module, nn.Conv2d)
            kernel, stride = _first(module.kernel_size), _first(module.stride)
            field, jump = field + (kernel - 1) * jump, jump * stride
    return convs, linears, field


def _first(value: Any) -> int:
    return int(value[0] if isinstance(value, tuple) else value)
