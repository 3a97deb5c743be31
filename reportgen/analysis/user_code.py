"""The spec's own metrics and observers, by reference ('metrics.py:fn' relative to the spec, or
'package.module:fn'). Each is registered in METRICS or OBSERVERS, so tables, reference checks and prose
use it like a built-in one. Its arguments model is the annotation of the function's second parameter (a
pydantic model, best a subclass of reportgen.registry.Args); a function of one parameter takes none.
"""
from __future__ import annotations

import inspect
import typing
from pathlib import Path
from typing import Any, Callable

from pydantic import BaseModel, Field

from reportgen.analysis.metrics import METRICS, Metric
from reportgen.analysis.observations import OBSERVERS, ObserverKind
from reportgen.errors import ReportgenError, SpecError
from reportgen.references import resolve
from reportgen.registry import Args, NoArgs, VocabularyError, first_line, parse_args

_OURS: set[str] = set()  # names registered from specs: a later spec may redefine them, not the built-in ones


class MetricReference(Args):
    """A `[metrics.NAME]` table: a per-run number computed by the spec's own function."""

    value: str = Field(description="'metrics.py:fn' or 'package.module:fn'; fn(result: RunResult[, args]) returns a number")
    title: str = Field("", description="table column header (default: the name)")
    unit: str = Field("", description="'%' for an accuracy: reference checks print it")
    help: str = Field("", description="one line for the reader (default: the function's docstring)")
    args: dict[str, Any] = Field({}, description="the function's arguments, checked against its arguments model")


def register_metric(name: str, table: MetricReference, base_dir: Path) -> None:
    """Put the spec's metric NAME in METRICS: a table column, a bar, a checkable reference metric."""
    if name in METRICS and name not in _OURS:
        raise VocabularyError(f".{name}", f"{name!r} is a built-in metric; give yours another name")
    function = resolve(table.value, base_dir, f"metrics.{name}.value").target
    value = _bound(function, parse_args(arguments_model(function), table.args, f".{name}.args"))
    METRICS[name] = Metric(name, "run", table.title or name, table.help or first_line(function.__doc__),
                           value=_guarded(name, value), unit=table.unit, checkable=True)
    _OURS.add(name)


def register_observer(reference: str, base_dir: Path, where: str) -> str:
    """Put the spec's observer in OBSERVERS under the reference as written; its name for `kind`."""
    function = resolve(reference, base_dir, where).target
    OBSERVERS[reference] = ObserverKind(reference, _findings(reference, function), arguments_model(function),
                                        first_line(function.__doc__))
    _OURS.add(reference)
    return reference


def arguments_model(function: Callable[..., Any]) -> type[BaseModel]:
    """The annotation of the function's second parameter when it is a pydantic model; else NoArgs."""
    params = list(inspect.signature(function).parameters.values())
    if len(params) < 2:
        return NoArgs
    try:
        annotation = typing.get_type_hints(function).get(params[1].name)
    except Exception:  # noqa: BLE001 - an annotation that does not evaluate: no model
        annotation = None
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else NoArgs


def _bound(function: Callable[..., Any], args: BaseModel) -> Callable[[Any], Any]:
    takes_args = len(inspect.signature(function).parameters) >= 2
    return (lambda result: function(result, args)) if takes_args else function


def _guarded(name: str, value: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def compute(result: Any) -> Any:
        try:
            return value(result)
        except Exception as err:  # noqa: BLE001 - the user's function: say which one failed, not a traceback
            raise ReportgenError(f"metrics.{name}: the function raised {type(err).__name__}: {err}; fix it") from None
    return compute


def _findings(reference: str, function: Callable[..., Any]) -> Callable[[list, BaseModel], list[str]]:
    def write(outcomes: list, args: BaseModel) -> list[str]:
        found = _bound(function, args)([o for o in outcomes if o.result is not None])  # the measured runs
        if not isinstance(found, list) or not all(isinstance(s, str) for s in found):
            raise SpecError(f"observer {reference!r} returned {type(found).__name__}; an observer returns a list of sentences")
        return found
    return write
