"""Answer functions for a question's asks: one sentence each, generic over the runs (or the data set) they get.

Each reads what its AskContext holds — the question's measured run points, its families of comparisons, the
arguments of the observer it is tied to, a data loader — and returns one sentence, or None when nothing it needs
was measured (the caller then says "Not measured: …"). Verdicts come from the families the observers define
(analysis/families.py) through analysis/noise.py's words; nothing here decides one.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

from reportgen.analysis import curve_observers, model_observers, noise
from reportgen.analysis import wording as w
from reportgen.analysis.aggregate import seed_summary
from reportgen.analysis.families import Family
from reportgen.analysis.lr_observers import target_epoch, target_text
from reportgen.analysis.metrics import metric
from reportgen.analysis.stats import AHEAD
from reportgen.registry import Args
from reportgen.results import RunOutcome

LoadSplit = Callable[[str, bool], Any]  # (data set, train?) → a data.Split


@dataclass
class AskContext:
    """What one ask's answer may read."""

    points: list[RunOutcome]  # the question's measured run points (seeds aggregated)
    families: dict[str, Family] = field(default_factory=dict)  # observer kind → its family, the spec's margins in force
    observer_args: dict[str, Args] = field(default_factory=dict)  # observer kind → the question's arguments for it
    margins: dict[str, dict[str, float]] = field(default_factory=dict)  # observer kind → the spec's margins for it
    profile: str = ""
    load_split: LoadSplit | None = None

    def runs(self) -> list[RunOutcome]:
        return w.distinct(self.points)


# ---------------------------------------------------------------- shared pieces

def _mean(point: RunOutcome, name: str = "final_accuracy") -> float:
    value = seed_summary(point, metric(name).value).mean
    return math.nan if value is None else value


def _lr(point: RunOutcome) -> str:
    return w.fmt_lr(point.planned.labels.get("lr"))


def _by_rate(runs: list[RunOutcome]) -> list[RunOutcome]:
    """Largest learning rate first, as the questions list them."""
    return sorted(runs, key=lambda o: o.planned.labels.get("lr") or 0, reverse=True)


def _fixed(points: list[RunOutcome]) -> list[RunOutcome]:
    """The points with a fixed budget, one per trajectory (split before deduplicating: Q1.2 and Q1.3 share one)."""
    return w.distinct([o for o in w.measured(points) if o.result.budget.until_accuracy is None])


def _targeted(points: list[RunOutcome]) -> list[RunOutcome]:
    """The points trained until a target accuracy, one per trajectory."""
    return w.distinct([o for o in w.measured(points) if o.result.budget.until_accuracy is not None])


def _value_text(name: str, value: float) -> str:
    """A metric's mean as prose: '87.3' (percent said once by the caller), '669,706', '1.84 s', '0.412'."""
    if not math.isfinite(value):
        return w.fmt_float(value, 1)
    if name == "params":
        return w.fmt_count(int(value))
    if name == "seconds_per_epoch":
        return f"{value:.1f} s" if value >= 1 else f"{value:.2f} s"
    _, digits = noise.unit_of(name)
    return f"{value:.{digits}f}"


# ---------------------------------------------------------------- a metric, listed per run

def _metric_words(name: str) -> str:
    """'Final test accuracy', 'Trainable parameters': the axis label without its unit."""
    label = metric(name).axis_label.split(" (")[0].replace("\n", " ")
    return label[:1].upper() + label[1:]


def metric_listing(name: str):
    """An answer listing metric `name` for every run point: by model, over the other field that varies."""
    def answer(ctx: AskContext, args: Args) -> str | None:
        runs = [o for o in ctx.runs() if math.isfinite(_mean(o, name))]
        if not runs:
            return None
        what = _metric_words(name)
        pct = " %" if metric(name).unit == "%" else ""
        by_model = w.group_by_model(_by_rate(runs))
        rates = {tuple(_lr(o) for o in group) for group in by_model.values()}
        if len(rates) == 1 and len(next(iter(rates))) > 1:  # the same rates for every model: name them once
            listing = "; ".join(f"{w.describe_run(g[0])} {', '.join(_value_text(name, _mean(o, name)) for o in g)}{pct}"
                                for g in by_model.values())
            return f"{what}, at lr {', '.join(next(iter(rates)))}: {listing}."
        named = w.name_runs(runs)
        listing = "; ".join(f"{named(o)} {_value_text(name, _mean(o, name))}{pct}" for o in runs)
        return f"{what}: {listing}."
    answer.__doc__ = f"Every run's {metric(name).help}, in one sentence."
    return answer


# ---------------------------------------------------------------- learning rates and targets (Q1.3, Q1.4)

def target_epochs(ctx: AskContext, args: Args) -> str | None:
    """Every rate's epoch to the target (median and range over seeds) or why it stopped, and soonest against slowest.

    The gap between the soonest and the slowest is judged in the question's convergence family, when it has one."""
    runs = _targeted(ctx.points)
    if not runs:
        return None
    parts = [f"{w.describe_run(group[0])} {_rates_alike(group)}" for group in w.group_by_model(_by_rate(runs)).values()]
    said = f"First epoch at {w.fmt_acc(runs[0].result.budget.until_accuracy)}: {'; '.join(parts)}"
    return f"{said}{_soonest_against_slowest(ctx, runs)}."


def _rates_alike(group: list[RunOutcome]) -> str:
    """'lr 1 never (stuck at chance after 3 epochs), lr 0.1 and 0.01 epoch 4 (3–5)': rates with the same outcome
    said together."""
    said: dict[str, list[str]] = {}
    for o in group:
        said.setdefault(_epoch_or_stop(o), []).append(_lr(o))
    return ", ".join(f"lr {w.join_words(rates)} {text}" for text, rates in said.items())


def _epoch_or_stop(o: RunOutcome) -> str:
    if target_epoch(o) is not None:
        return target_text(o)
    return f"never ({o.result.stop_reason} after {w.plural(len(o.result.epochs), 'epoch')})"


def _soonest_against_slowest(ctx: AskContext, runs: list[RunOutcome]) -> str:
    """'; soonest against slowest: −12.0 epochs (CI …), ahead' in the convergence family, when two runs got there."""
    family = ctx.families.get("convergence")
    reached = sorted((o for o in runs if target_epoch(o) is not None), key=target_epoch)
    if family is None or len(reached) < 2 or target_epoch(reached[0]) == target_epoch(reached[-1]):
        return ""
    name = w.name_runs(runs)
    return (f"; {name(reached[0])} against {name(reached[-1])}: "
            f"{noise.gap_text(reached[0], reached[-1], family, 'epochs_to_target')}")


def rate_cost(ctx: AskContext, args: Args) -> str | None:
    """Per model: the epoch the best rate after the fixed budget reaches the target, and what the smallest rate needs.

    The two tables of a fixed budget and of a target, read together (Q1.4 reads Q1.2 and Q1.3)."""
    fixed, targeted = w.group_by_model(_fixed(ctx.points)), w.group_by_model(_targeted(ctx.points))
    parts = [p for m in fixed if m in targeted and (p := _cost(fixed[m], targeted[m]))]
    return f"{'; '.join(parts)}." if parts else None


def _cost(fixed: list[RunOutcome], targeted: list[RunOutcome]) -> str | None:
    best = max(fixed, key=_mean)
    mine = {o.planned.labels.get("lr"): o for o in targeted}.get(best.planned.labels.get("lr"))
    if mine is None or not math.isfinite(_mean(best)):
        return None
    target, reaches = w.fmt_acc(mine.result.budget.until_accuracy), target_epoch(mine) is not None
    said = (f"{w.describe_run(best)}'s best rate after {w.plural(best.result.budget.max_epochs, 'epoch')}, "
            f"lr {_lr(best)}, " + (f"reaches {target} at {target_text(mine)}" if reaches else f"never reaches {target}"))
    smallest = min(targeted, key=lambda o: o.planned.labels.get("lr") or 0)
    if smallest is mine:
        return said + ", and it is the smallest rate"
    if target_epoch(smallest) is None:
        return f"{said}, while lr {_lr(smallest)} never does" if reaches else f"{said}, nor does lr {_lr(smallest)}"
    ratio = f", {target_epoch(smallest) / target_epoch(mine):.0f}× as many epochs" if reaches else ""
    return f"{said}, lr {_lr(smallest)} at {target_text(smallest)}{ratio}"


def usable_rates(ctx: AskContext, args: Args) -> str | None:
    """Per model, the rates that reach the target (without one: that train), and which model tolerates more."""
    pool = _targeted(ctx.points) or _fixed(ctx.points)
    if not pool:
        return None
    by_model = w.group_by_model(_by_rate(pool))
    usable = {m: [o for o in g if _usable(o)] for m, g in by_model.items()}
    what = f"reach {w.fmt_acc(pool[0].result.budget.until_accuracy)}" if _targeted(ctx.points) else "train"
    parts = [f"{w.describe_run(g[0])} {_rates_text(usable[m], g)}" for m, g in by_model.items()]
    return f"Rates that {what}: {'; '.join(parts)}{_wider(by_model, usable)}."


def _usable(o: RunOutcome) -> bool:
    if o.result.budget.until_accuracy is not None:
        return target_epoch(o) is not None
    return not curve_observers.failed_or_at_chance(o.result)


def _rates_text(good: list[RunOutcome], every: list[RunOutcome]) -> str:
    if len(good) == len(every):
        return f"all {len(every)} (lr {_lr(every[0])} to {_lr(every[-1])})" if len(every) > 1 else f"lr {_lr(every[0])}"
    if not good:
        return "none"
    bad = [o for o in every if o not in good]
    return f"lr {', '.join(_lr(o) for o in good)}, not {', '.join(_lr(o) for o in bad)}"


def _wider(by_model: dict[str, list[RunOutcome]], usable: dict[str, list[RunOutcome]]) -> str:
    """', so BN MLP tolerates a wider range of rates' when one model's usable rates strictly contain the others'."""
    rates = {m: {o.planned.labels.get("lr") for o in good} for m, good in usable.items()}
    for m, mine in rates.items():
        others = [r for n, r in rates.items() if n != m]
        if others and all(r < mine for r in others):
            return f", so {w.describe_run(by_model[m][0])} tolerates a wider range of rates"
    return ""


# ---------------------------------------------------------------- loss curves (lab.t1)

def loss_course(ctx: AskContext, args: Args) -> str | None:
    """Per run, the mean training loss of its first and last epoch (the seeds' mean curve)."""
    runs = [o for o in ctx.runs() if o.result.epochs]
    if not runs:
        return None
    name, same = w.name_runs(runs), len({len(o.result.epochs) for o in runs}) == 1
    span = f"from epoch 1 to {len(runs[0].result.epochs)}" if same else "from the first to the last epoch"
    parts = [f"{name(o)} {w.fmt_loss(o.result.epochs[0].train_loss)} → {w.fmt_loss(o.result.epochs[-1].train_loss)}"
             + ("" if same else f" ({w.plural(len(o.result.epochs), 'epoch')})") for o in runs]
    return f"Mean training loss {span}: {'; '.join(parts)}."


# ---------------------------------------------------------------- gradients (Q1.6)

def gradient_sign(ctx: AskContext, args: Args) -> str | None:
    """Per run: the band around zero the mean gradient stays in, its sign changes, and the trend of its norm."""
    steps = getattr(ctx.observer_args.get("gradient_trend"), "steps", None)
    parts = [p for o in ctx.runs() if (p := _gradient_part(o, steps))]
    probed = max((len((o.result.probes or {}).get("grad_mean", [])[:steps]) for o in ctx.runs()), default=0)
    return f"Over the first {probed} steps, {'; '.join(parts)}." if parts else None  # as many as were probed


def _gradient_part(o: RunOutcome, steps: int | None) -> str | None:
    probes = o.result.probes or {}
    mean = [x for x in probes.get("grad_mean", [])[:steps] if math.isfinite(x)]
    if len(mean) < 2:
        return None
    flips = sum(1 for a, b in zip(mean, mean[1:]) if (a > 0) != (b > 0))
    said = (f"{w.describe_run(o)}'s mean gradient stays within ±{_bound(max(map(abs, mean)))} of zero "
            f"({w.plural(flips, 'sign change')})")
    norm = [x for x in probes.get("grad_norm", [])[:steps] if math.isfinite(x)]
    if len(norm) >= 2:
        head, tail, _ = curve_observers._edges(norm)  # first and last steps averaged, as the findings do
        said += f" while its norm {'falls' if tail < head else 'rises'} from {w.fmt_sig(head)} to {w.fmt_sig(tail)}"
    return said


def _bound(largest: float) -> str:
    """A round bound at or above `largest`, one significant digit: 1.1e-4 → '2e-4', 1e-4 → '1e-4'."""
    if not largest > 0:
        return "0"
    exponent = math.floor(math.log10(largest))
    digit = math.ceil(round(largest / 10 ** exponent, 9))  # round: 1e-4 / 1e-4 may come out as 1.0000000002
    if digit == 10:
        digit, exponent = 1, exponent + 1
    return f"{digit}e{exponent}"


# ---------------------------------------------------------------- models compared (Q1.5, Q1.7, lab)

def pair_gaps(ctx: AskContext, args: Args) -> str | None:
    """Each compared pair (param_efficiency's `pairs`): both accuracies, the leader's gap and the family's verdict."""
    family = ctx.families.get("param_efficiency")
    if family is None:
        return None
    parts = []
    for high, low in _pairs(ctx):
        if _mean(low) > _mean(high):
            high, low = low, high
        parts.append(f"{w.describe_run(high)} ({noise.acc_text(high)}) is "
                     f"{noise.edge(high, low, f'{w.describe_run(low)} ({noise.acc_text(low)})', family)}")
    return f"{'; '.join(parts)}." if parts else None


def pair_sizes(ctx: AskContext, args: Args) -> str | None:
    """Each pair's trainable parameters, the second against the first, as a ratio with both counts."""
    parts = [f"{w.describe_run(b)} has {w.fmt_ratio(b.result.params / a.result.params)} the parameters of "
             f"{w.describe_run(a)} ({w.fmt_count(b.result.params)} vs {w.fmt_count(a.result.params)})"
             for a, b in _pairs(ctx) if a.result.params]
    return f"{'; '.join(parts)}." if parts else None


def _pairs(ctx: AskContext) -> list[tuple[RunOutcome, RunOutcome]]:
    runs = model_observers.by_preset(ctx.points)
    given = getattr(ctx.observer_args.get("param_efficiency"), "pairs", [])
    names = [model_observers.preset_names(p) for p in given]
    return [(runs[a], runs[b]) for a, b in names if a in runs and b in runs]


def structure_verdict(ctx: AskContext, args: Args) -> str | None:
    """Per capacity group: whether the variants' extra parameters bought accuracy, with the family's verdict."""
    family, runs = ctx.families.get("capacity"), model_observers.by_preset(ctx.points)
    if family is None:
        return None
    parts = []
    for group in getattr(ctx.observer_args.get("capacity"), "groups", []):
        names = model_observers.preset_names(group)
        present = [runs[n] for n in names if n in runs]
        if names[0] not in runs or len(present) < 2:  # no baseline, or nothing to hold against it
            continue
        verdict = model_observers._capacity_verdict(present[0], present[1:], family)  # the capacity finding's words
        parts.append(f"against {w.describe_run(present[0])}, {verdict[:1].lower()}{verdict[1:].rstrip('.')}")
    return f"{'; '.join(parts)[:1].upper()}{'; '.join(parts)[1:]}." if parts else None


def ranking(ctx: AskContext, args: Args) -> str | None:
    """Every model ranked on `metric`, each against the one above it with the verdict of `observer`'s family."""
    name = getattr(args, "metric", "final_accuracy")
    family = ctx.families.get(getattr(args, "observer", ""))
    if family is not None and not any(p.metric == name for p in family.pairs):
        family = None  # its level was set for other comparisons: rank by the numbers alone
    ranked = sorted((o for o in model_observers.by_preset(ctx.points).values() if math.isfinite(_mean(o, name))),
                    key=lambda o: _mean(o, name), reverse=metric(name).better != "lower")
    if len(ranked) < 2:
        return None
    pct = " %" if metric(name).unit == "%" else ""
    parts = [f"{w.describe_run(ranked[0])} {_value_text(name, _mean(ranked[0], name))}{pct}"]
    for above, o in zip(ranked, ranked[1:]):
        judged = f", {_below(above, o, family, name)}" if family is not None else ""
        parts.append(f"{w.describe_run(o)} {_value_text(name, _mean(o, name))}{pct}{judged}")
    return f"By {_metric_words(name).lower()}: {'; '.join(parts)}."


def _below(above: RunOutcome, o: RunOutcome, family: Family, name: str) -> str:
    """'2.1 points behind (CI …)', 'equivalent within ±0.5 points', 'unresolved with 3 seeds' against the one above."""
    c = family.compare(above, o, name)
    unit, digits = noise.unit_of(name)
    if c.low is None:
        return "single runs"
    if c.verdict == AHEAD:
        return f"{abs(c.difference):.{digits}f} {unit} behind (CI {noise.signed(c.low, digits)} to {noise.signed(c.high, digits)})"
    return noise.verdict_words(c, unit, digits)


# ---------------------------------------------------------------- the budget a profile set (lab.t1)

def budget(ctx: AskContext, args: Args) -> str | None:
    """The training budget behind the numbers: the profile overlay's subsets and epochs, or the full protocol."""
    runs = ctx.runs()
    if not runs:
        return None
    request, epochs = runs[0].result.request, max(o.result.budget.max_epochs for o in runs)
    changed = sorted({note for o in runs for note in o.planned.overlays})
    images = _images(request)
    if not changed:
        return f"Budget: the full protocol, {images}, {w.plural(epochs, 'epoch')}."
    profile = f"the {ctx.profile} profile's" if ctx.profile else "a profile's"
    return f"Budget: {profile} {images}, {w.plural(epochs, 'epoch')}, not the full protocol."


def _images(request: dict[str, Any]) -> str:
    train, test = request.get("train_subset"), request.get("test_subset")
    said = f"first {w.fmt_count(train)} training" if train else "all training"
    return said + (f" and {w.fmt_count(test)} test images" if test else " and all test images")
