"""The observer registry: prose written from measured numbers, one function per kind, reused across questions.

Each observer takes a question's run outcomes and its validated arguments and returns sentences; runs
missing from the cache are ignored, and an empty list means there was nothing measured to talk about.
Adding an observer is one function, its arguments model and one `OBSERVERS.add(...)`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

from reportgen.analysis import answers, axis_observers, curve_observers, lr_observers, model_observers
from reportgen.analysis.families import Family, margins_in_force
from reportgen.registry import Args, NoArgs, Registry, first_line, parse_args
from reportgen.results import RunOutcome


Writer = Callable[[list[RunOutcome], Args], list[str]]
FamilyOf = Callable[[list[RunOutcome], Args], Family]


@dataclass(frozen=True)
class ObserverKind:
    name: str
    write: Writer  # the findings: claims with their numbers, most important first
    args: type[Args] = NoArgs
    help: str = ""
    answer: Writer | None = None  # at most one sentence answering the question; None: no part in the answer
    # Every comparison the observer could state about the question (analysis/families.py): its findings and answer
    # judge their comparisons in it. None: the observer compares nothing.
    family: FamilyOf | None = None


OBSERVERS: Registry[ObserverKind] = Registry("observer")


def add_observer(name: str, write: Writer, args: type[Args] = NoArgs, help: str = "",
                 answer: Writer | None = None, family: FamilyOf | None = None) -> ObserverKind:
    """Register an observer; its help defaults to the first line of the function's docstring."""
    return OBSERVERS.add(ObserverKind(name, write, args, help or first_line(write.__doc__), answer, family))


for _name, _write, _args, _answer, _family in (
        ("lr_effect", lr_observers.lr_effect, NoArgs, answers.lr_effect, lr_observers.lr_effect_family),
        ("lr_tradeoff", lr_observers.lr_tradeoff, NoArgs, answers.joined(lr_observers.lr_tradeoff), None),
        ("divergence", curve_observers.divergence, NoArgs, answers.divergence, None),
        ("overfitting", curve_observers.overfitting, curve_observers.OverfittingArgs, None, None),
        ("convergence", curve_observers.convergence, NoArgs, answers.convergence, curve_observers.convergence_family),
        ("gradient_trend", curve_observers.gradient_trend, curve_observers.GradientTrendArgs,
         answers.first_finding(curve_observers.gradient_trend), None),
        ("capacity", model_observers.capacity, model_observers.CapacityArgs, answers.capacity,
         model_observers.capacity_family),
        ("param_efficiency", model_observers.param_efficiency, model_observers.ParamEfficiencyArgs,
         answers.first_finding(model_observers.param_efficiency), model_observers.param_efficiency_family),
        ("activation_effect", model_observers.activation_effect, NoArgs, answers.best_model,
         model_observers.models_family),
        ("param_claim", model_observers.param_claim, model_observers.ParamClaimArgs,
         answers.first_finding(model_observers.param_claim), None),
        ("compare", axis_observers.compare_along, axis_observers.CompareArgs,
         answers.first_finding(axis_observers.compare_along), axis_observers.compare_family)):
    add_observer(_name, _write, _args, answer=_answer, family=_family)


def _prepared(kind: str, outcomes: list[RunOutcome], args: Args | dict | None) -> tuple[ObserverKind, Args] | None:
    """The observer and its validated arguments; None when no run was measured (nothing to talk about)."""
    entry = OBSERVERS.get(kind)
    if not isinstance(args, Args):
        args = parse_args(entry.args, args or {}, "args")
    if not any(o.result is not None for o in outcomes):
        return None
    return entry, args


def observe(kind: str, outcomes: list[RunOutcome], args: Args | dict | None = None,
            margins: Mapping[str, float] | None = None) -> list[str]:
    """The sentences observer `kind` writes about `outcomes`; [] when no run was measured.

    `args` is the observer's validated arguments model, or a plain dict validated here; `margins` the spec's
    margins by metric, over the metric registry's defaults.
    """
    prepared = _prepared(kind, outcomes, args)
    if prepared is None:
        return []
    entry, args = prepared
    with margins_in_force(margins or {}):
        return entry.write(outcomes, args)


def answer(kind: str, outcomes: list[RunOutcome], args: Args | dict | None = None,
           margins: Mapping[str, float] | None = None) -> list[str]:
    """Observer `kind`'s part of its question's answer; [] when it has none or nothing was measured."""
    prepared = _prepared(kind, outcomes, args)
    if prepared is None or prepared[0].answer is None:
        return []
    entry, args = prepared
    with margins_in_force(margins or {}):
        return entry.answer([o for o in outcomes if o.result is not None], args)


def family(kind: str, outcomes: list[RunOutcome], args: Args | dict | None = None,
           margins: Mapping[str, float] | None = None) -> Family | None:
    """Every comparison observer `kind` could state about `outcomes`; None when it compares nothing."""
    prepared = _prepared(kind, outcomes, args)
    if prepared is None or prepared[0].family is None:
        return None
    entry, args = prepared
    with margins_in_force(margins or {}):
        return entry.family([o for o in outcomes if o.result is not None], args)
