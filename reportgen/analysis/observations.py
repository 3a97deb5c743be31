"""The observer registry: prose written from measured numbers, one function per kind, reused across questions.

Each observer takes a question's run outcomes and its validated arguments and returns sentences; runs
missing from the cache are ignored, and an empty list means there was nothing measured to talk about.
Adding an observer is one function, its arguments model and one `OBSERVERS.add(...)`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from reportgen.analysis import axis_observers, curve_observers, lr_observers, model_observers
from reportgen.registry import Args, NoArgs, Registry, first_line, parse_args
from reportgen.results import RunOutcome


@dataclass(frozen=True)
class ObserverKind:
    name: str
    write: Callable[[list[RunOutcome], Args], list[str]]
    args: type[Args] = NoArgs
    help: str = ""


OBSERVERS: Registry[ObserverKind] = Registry("observer")


def add_observer(name: str, write: Callable[[list[RunOutcome], Args], list[str]], args: type[Args] = NoArgs,
                 help: str = "") -> ObserverKind:
    """Register an observer; its help defaults to the first line of the function's docstring."""
    return OBSERVERS.add(ObserverKind(name, write, args, help or first_line(write.__doc__)))


for _name, _write, _args in (
        ("lr_effect", lr_observers.lr_effect, NoArgs),
        ("divergence", curve_observers.divergence, NoArgs),
        ("overfitting", curve_observers.overfitting, curve_observers.OverfittingArgs),
        ("convergence", curve_observers.convergence, NoArgs),
        ("gradient_trend", curve_observers.gradient_trend, curve_observers.GradientTrendArgs),
        ("capacity", model_observers.capacity, model_observers.CapacityArgs),
        ("param_efficiency", model_observers.param_efficiency, model_observers.ParamEfficiencyArgs),
        ("activation_effect", model_observers.activation_effect, NoArgs),
        ("param_claim", model_observers.param_claim, model_observers.ParamClaimArgs),
        ("compare", axis_observers.compare_along, axis_observers.CompareArgs)):
    add_observer(_name, _write, _args)


def observe(kind: str, outcomes: list[RunOutcome], args: Args | dict | None = None) -> list[str]:
    """The sentences observer `kind` writes about `outcomes`; [] when no run was measured.

    `args` is the observer's validated arguments model, or a plain dict validated here.
    """
    entry = OBSERVERS.get(kind)
    if not isinstance(args, Args):
        args = parse_args(entry.args, args or {}, "args")
    if not any(o.result is not None for o in outcomes):
        return []
    return entry.write(outcomes, args)
