"""Observers: prose written from measured numbers, one function per kind, reused across questions.

Each observer takes a question's run outcomes and its `args` and returns sentences; runs missing
from the cache are ignored, and an empty list means there was nothing measured to talk about.
"""
from __future__ import annotations

from typing import Callable

from reportgen.analysis import curve_observers, lr_observers, model_observers
from reportgen.results import RunOutcome

Observer = Callable[[list[RunOutcome], dict], list[str]]

OBSERVERS: dict[str, Observer] = {
    "lr_effect": lr_observers.lr_effect,
    "divergence": curve_observers.divergence,
    "overfitting": curve_observers.overfitting,
    "convergence": curve_observers.convergence,
    "gradient_trend": curve_observers.gradient_trend,
    "capacity": model_observers.capacity,
    "param_efficiency": model_observers.param_efficiency,
    "activation_effect": model_observers.activation_effect,
    "param_claim": model_observers.param_claim,
}


def observe(kind: str, outcomes: list[RunOutcome], args: dict) -> list[str]:
    """The sentences observer `kind` writes about `outcomes`; [] when no run was measured."""
    if kind not in OBSERVERS:
        raise KeyError(f"unknown observer {kind!r}; known: {', '.join(OBSERVERS)}")
    if not any(o.result is not None for o in outcomes):
        return []
    return OBSERVERS[kind](outcomes, dict(args or {}))
