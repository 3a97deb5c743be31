"""The ask registry: what a question's answer must cover, each ask tied to what answers it.

A question lists its asks in the prompt's order (`asks = [{ ask = "...", by = "..." }]`); `by` names an ask kind:
one registered here (an answer function over the runs or the data set), an observer with an answer function (its
part of the answer), or a numeric per-run metric (listed for every run). Each ask gives one sentence, or "Not
measured: …" when nothing it needs was measured; `needs` lets `reportgen list` say so before training.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Callable

from pydantic import AfterValidator, Field

from reportgen.analysis import ask_answers as a
from reportgen.analysis import data_answers, structure_answers
from reportgen.analysis.ask_answers import AskContext
from reportgen.analysis.metrics import METRICS, names_of_kind
from reportgen.analysis.observations import OBSERVERS, answer, observe
from reportgen.datasets import DATASETS
from reportgen.registry import Args, NoArgs, Registry, first_line, unknown_name_message
from reportgen.results import PlannedRun

Answer = Callable[[AskContext, Args], "str | None"]
NOT_MEASURED = "Not measured: "  # the notice an ask gives when nothing it needs was measured
NEEDS = ("runs", "target", "rates", "models", "data")  # what a plan must hold for the ask to be answerable


@dataclass(frozen=True)
class AskKind:
    name: str
    answer: Answer
    args: type[Args] = NoArgs
    help: str = ""
    observer: str | None = None  # the observer whose family and arguments it reads: the question must list it
    needs: tuple[str, ...] = ("runs",)
    # Observers whose findings this sentence says in full: the question's findings leave theirs out, so the
    # section does not say a thing twice (findings keep what the answer does not say).
    covers: tuple[str, ...] = ()


ASKS: Registry[AskKind] = Registry("ask kind")


def add_ask(name: str, fn: Answer, args: type[Args] = NoArgs, observer: str | None = None,
            needs: tuple[str, ...] = ("runs",), covers: tuple[str, ...] = (), help: str = "") -> AskKind:
    """Register an ask kind; its help defaults to the first line of the function's docstring."""
    if set(needs) - set(NEEDS):
        raise ValueError(f"ask kind {name!r}: unknown needs {sorted(set(needs) - set(NEEDS))}; known: {', '.join(NEEDS)}")
    help = help or first_line(fn.__doc__)
    help += f" Reads observer `{observer}`." if observer else ""
    return ASKS.add(AskKind(name, fn, args, help, observer, needs, covers))


def _known_dataset(name: str) -> str:
    if name not in DATASETS:
        raise ValueError(unknown_name_message("data set", name, DATASETS.names()))
    return name


class DatasetArgs(Args):
    dataset: Annotated[str, AfterValidator(_known_dataset)] = Field(description="the data set to read")


class ClassesArgs(DatasetArgs):
    classes: list[int] | None = Field(None, description="class indices the figure shows (default: all)")


class RankingArgs(Args):
    metric: str = Field("final_accuracy", description="a numeric per-run metric to rank the models by")
    observer: str = Field(description="the question's observer whose family judges each step of the ranking")


add_ask("rate_epochs", a.target_epochs, needs=("target",), covers=("convergence",))
add_ask("rate_cost", a.rate_cost, needs=("target", "rates"))
add_ask("usable_rates", a.usable_rates, needs=("rates",))
add_ask("gradient_sign", a.gradient_sign, observer="gradient_trend")
add_ask("pair_gaps", a.pair_gaps, observer="param_efficiency", needs=("models",))
add_ask("pair_sizes", a.pair_sizes, observer="param_efficiency", needs=("models",))
add_ask("structure_verdict", a.structure_verdict, observer="capacity", needs=("models",))
add_ask("ranking", a.ranking, RankingArgs, needs=("models",))
add_ask("budget", a.budget)
add_ask("loss_course", a.loss_course)
add_ask("depth_and_field", structure_answers.depth_and_field, needs=("models",))
add_ask("image_shape", data_answers.image_shape, DatasetArgs, needs=("data",))
add_ask("class_counts", data_answers.class_counts, DatasetArgs, needs=("data",))
add_ask("image_classes", data_answers.image_classes, ClassesArgs, needs=("data",))


def ask_names() -> list[str]:
    """Every name `by` may take: the ask kinds, the observers with an answer, the numeric per-run metrics."""
    observers = [o.name for o in OBSERVERS.entries() if o.answer is not None]
    return [*ASKS.names(), *observers, *names_of_kind("run", numeric=True)]


def ask_kind(name: str) -> AskKind:
    """The ask kind `name`: registered here, or made from an observer's answer or a metric (SpecError if none)."""
    if name in ASKS:
        return ASKS.get(name)
    if name in OBSERVERS and OBSERVERS.get(name).answer is not None:
        return AskKind(name, _observer_answer(name), NoArgs, OBSERVERS.get(name).help, observer=name)
    if name in names_of_kind("run", numeric=True):
        return AskKind(name, a.metric_listing(name), NoArgs, METRICS.get(name).help)
    return ASKS.get(name)  # raises, naming the allowed kinds and the closest one


def _observer_answer(kind: str) -> Answer:
    """The observer's answer; where it has none for these runs (nothing failed, say), its first finding."""
    def reply(ctx: AskContext, args: Args) -> str | None:
        given, margins = ctx.observer_args.get(kind), ctx.margins.get(kind)
        said = answer(kind, ctx.points, given, margins) or observe(kind, ctx.points, given, margins)[:1]
        return " ".join(said) or None
    return reply


def covered(asks: list[Any]) -> set[str]:
    """The observers whose findings the asks say in full: each kind's own, and those an ask's `covers` names."""
    return {kind for ask in asks for kind in (*ask_kind(ask.by).covers, *getattr(ask, "covers", ()))}


def ask_sentence(ask: Any, ctx: AskContext) -> str:
    """One ask's sentence, or the notice that nothing it needs was measured."""
    kind = ask_kind(ask.by)
    measured = bool(ctx.points) or "data" in kind.needs  # a data ask reads the data set, not runs
    said = kind.answer(ctx, ask.args) if measured else None
    return said or f"{NOT_MEASURED}{ask.ask}."


def unanswerable(ask: Any, planned: list[PlannedRun]) -> str | None:
    """Why a plan cannot answer this ask (before training), or None: no runs, no target, one rate, one model."""
    needs = ask_kind(ask.by).needs
    if "data" in needs:
        return None
    if not planned:
        return "the question trains no runs"
    if "target" in needs and not any(p.budget.until_accuracy is not None for p in planned):
        return "no run has a target accuracy (until_accuracy)"
    if "rates" in needs and len({p.labels.get("lr") for p in planned}) < 2:
        return "only one learning rate is trained"
    if "models" in needs and len({p.labels.get("model") for p in planned}) < 2:
        return "only one model is trained"
    return None
