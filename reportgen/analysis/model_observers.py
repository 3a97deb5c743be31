"""Observers that compare models: capacity, parameter efficiency, activations, parameter claims."""
from __future__ import annotations

import math

from reportgen.analysis import noise
from reportgen.analysis import wording as w
from typing import Annotated

from pydantic import AfterValidator, Field

from reportgen.analysis.aggregate import count_seeds, seed_summary
from reportgen.analysis.families import Family, Pair, all_pairs
from reportgen.analysis.metrics import final_accuracy, seconds_per_epoch
from reportgen.analysis.stats import AHEAD, EQUIVALENT, UNRESOLVED
from reportgen.registry import Args, NoArgs
from reportgen.results import RunOutcome

SMALL_POINTS = 0.5  # accuracy differences below this are too small to rank with one seed per model


def by_preset(outcomes: list[RunOutcome]) -> dict[str, RunOutcome]:
    """One measured run per model preset (the first seen)."""
    found: dict[str, RunOutcome] = {}
    for o in w.distinct(outcomes):
        found.setdefault(str(o.planned.labels.get("model")), o)
    return found


def preset_names(spec: object) -> list[str]:
    """'a,b' or ['a', 'b'] → ['a', 'b']."""
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    return [str(item).strip() for item in items if str(item).strip()]


def _acc(o: RunOutcome) -> float:
    """Mean final accuracy over the point's seeds (NaN when none is finite)."""
    value = seed_summary(o, final_accuracy).mean
    return math.nan if value is None else value


def _missing(names: list[str], runs: dict[str, RunOutcome]) -> str | None:
    absent = [n for n in names if n not in runs]
    return f"Not measured: {w.join_words(absent)}." if absent else None


# ---------------------------------------------------------------- capacity

def _preset_lists(low: int, high: int, example: str) -> AfterValidator:
    """Each item a comma-separated list of between `low` and `high` model presets."""
    def check(items: list[str]) -> list[str]:
        for item in items:
            if not low <= len(preset_names(item)) <= high:
                raise ValueError(f"{item!r} must name {low if low == high else f'at least {low}'} model presets, as {example!r}")
        return items
    return AfterValidator(check)


class CapacityArgs(Args):
    groups: Annotated[list[str], _preset_lists(2, 99, "base,variant,...")] = Field(
        min_length=1, description="'base,variant,...' model presets; variants are compared with the base")

    def presets(self) -> list[str]:
        return [n for group in self.groups for n in preset_names(group)]


def capacity_family(outcomes: list[RunOutcome], args: CapacityArgs) -> Family:
    """Every pair of the models within each group (variants against the base and against each other)."""
    runs = by_preset(outcomes)
    pairs = [p for group in args.groups for p in all_pairs([runs[n] for n in preset_names(group) if n in runs], "final_accuracy")]
    return Family.of("capacity", pairs, "every pair of models within each group")


def capacity(outcomes: list[RunOutcome], args: CapacityArgs) -> list[str]:
    """Per group 'base,variant,…': accuracy and size of each variant against the baseline."""
    runs = by_preset(outcomes)
    family = capacity_family(outcomes, args)
    sentences = []
    for group in args.groups:
        names = preset_names(group)
        present = [n for n in names if n in runs]
        note = _missing(names, runs)
        if names and names[0] in runs and len(present) > 1:
            sentences += _capacity_group(runs[names[0]], [runs[n] for n in present[1:]], family)
        if note:
            sentences.append(note)
    return sentences


def _capacity_group(base: RunOutcome, variants: list[RunOutcome], family: Family) -> list[str]:
    """Each variant's gap to the base with its interval and relative size, then the verdict, as one finding.

    Accuracies and parameter counts are in the question's table; the finding gives the gaps and ratios.
    """
    shared = _shared_verdict(base, variants, family)  # then the verdict is said once for all
    parts = [f"{w.describe_run(v)} at {w.fmt_ratio(v.result.params / base.result.params)} the parameters: "
             f"{noise.gap_text(v, base, family, verdict=shared is None)}" for v in variants]
    sentences = [f"Against {w.describe_run(base)}: {'; '.join(parts)}. {_capacity_verdict(base, variants, family)}"]
    if len(variants) == 2:
        sentences.append(_variant_duel(*variants, family))
    return sentences


def _shared_verdict(base: RunOutcome, variants: list[RunOutcome], family: Family) -> str | None:
    """EQUIVALENT or UNRESOLVED when every variant against the base has that verdict (several seeds on every
    side); None otherwise."""
    if not all(count_seeds(o) > 1 for o in [base, *variants]):
        return None
    verdicts = {family.compare(v, base, "final_accuracy").verdict for v in variants}
    return verdicts.pop() if len(verdicts) == 1 and verdicts <= {EQUIVALENT, UNRESOLVED} else None


def _variant_duel(a: RunOutcome, b: RunOutcome, family: Family) -> str:
    """The two variants against each other (e.g. wider against deeper), with the family's verdict over seeds."""
    high, low = (a, b) if _acc(a) >= _acc(b) else (b, a)
    gap, ratio = _acc(high) - _acc(low), high.result.params / low.result.params
    noisy = count_seeds(high) > 1 and count_seeds(low) > 1
    if gap < w.TIE_POINTS and not noisy:
        return f"{w.describe_run(a)} and {w.describe_run(b)} end level ({w.fmt_ratio(a.result.params / b.result.params)} the parameters apart)."
    said = (f"{w.describe_run(high)} ends {gap:.1f} points above {w.describe_run(low)} "
            f"with {w.fmt_ratio(ratio)} its parameters")
    if noisy:
        return f"{said}: {noise.verdict_words(family.compare(high, low, 'final_accuracy'))}."
    return f"{said} (single runs)."


def _capacity_verdict(base: RunOutcome, variants: list[RunOutcome], family: Family) -> str:
    group = [base, *variants]
    accs = [_acc(o) for o in group]
    ratios = [o.result.params / base.result.params for o in variants]
    size = f"{w.fmt_ratio(min(ratios))} to {w.fmt_ratio(max(ratios))} the parameters"
    noisy = all(count_seeds(o) > 1 for o in group)
    shared = _shared_verdict(base, variants, family)
    if shared == EQUIVALENT:
        margin = family.margin("final_accuracy")
        return f"All equivalent to the baseline within ±{margin:g} points: {size} bought no accuracy."
    if shared == UNRESOLVED:
        return f"No gap to the baseline is resolved with these seeds: whether {size} buy accuracy is open."
    if not noisy and max(accs) - min(accs) < SMALL_POINTS:
        return (f"All lie within {max(accs) - min(accs):.1f} points while the variants have {size}: no clear gain "
                f"(gaps under {SMALL_POINTS:g} points cannot be ranked with one run per model).")
    best = max(group, key=_acc)
    largest = max(group, key=lambda o: o.result.params)
    if best is base:
        return f"No variant beats the baseline ({size})."
    if family.compare(best, base, "final_accuracy").verdict not in (AHEAD, EQUIVALENT) and noisy:
        return f"The most accurate by mean is {w.describe_run(best)}, but not resolved against the baseline ({size})."
    verdict = (f"The most accurate is {w.describe_run(best)} ({w.fmt_points(_acc(best) - _acc(base))} over the "
               f"baseline with {w.fmt_ratio(best.result.params / base.result.params)} its parameters)")
    if largest is best:
        return verdict + "; it is also the largest."
    return verdict + f", not the largest model, {w.describe_run(largest)} ({w.fmt_acc(_acc(largest))})."


# ---------------------------------------------------------------- param_efficiency

class ParamEfficiencyArgs(Args):
    pairs: Annotated[list[str], _preset_lists(2, 2, "a,b")] = Field(
        min_length=1, description="'a,b' pairs of model presets to compare")

    def presets(self) -> list[str]:
        return [n for pair in self.pairs for n in preset_names(pair)]


def param_efficiency_family(outcomes: list[RunOutcome], args: ParamEfficiencyArgs) -> Family:
    """One comparison per pair the spec names."""
    runs = by_preset(outcomes)
    pairs = [Pair(runs[a], runs[b], "final_accuracy") for a, b in map(preset_names, args.pairs) if a in runs and b in runs]
    return Family.of("param_efficiency", pairs, "the pairs the question names")


def param_efficiency(outcomes: list[RunOutcome], args: ParamEfficiencyArgs) -> list[str]:
    """Per pair 'a,b': the accuracy gap with its interval, the more parameter-efficient one, the time per epoch."""
    runs = by_preset(outcomes)
    family = param_efficiency_family(outcomes, args)
    sentences = []
    for pair in args.pairs:
        names = preset_names(pair)
        if len(names) == 2 and all(n in runs for n in names):
            sentences += _efficiency_pair(runs[names[0]], runs[names[1]], family)
        elif (note := _missing(names, runs)):
            sentences.append(note)
    return sentences


def _per_million(o: RunOutcome) -> float:
    return _acc(o) / (o.result.params / 1e6) if o.result.params else math.inf


def _efficiency_pair(a: RunOutcome, b: RunOutcome, family: Family) -> list[str]:
    """One sentence: the tested gap (leader first), which is more parameter-efficient, which is slower.

    Each model's accuracy, parameters and seconds per epoch are in the question's table, so they are not listed.
    """
    high, low = (a, b) if _acc(a) >= _acc(b) else (b, a)
    lead = noise.compare_sentence(w.describe_run(high), high, w.describe_run(low), low, family)[:-1]
    failed = [w.describe_run(o) for o in (a, b) if o.result.diverged or w.at_chance(_acc(o))]
    if failed:
        return [f"{lead}; {w.join_words(failed)} failed to train, so accuracy per parameter says nothing here."]
    lean, other = (a, b) if _per_million(a) >= _per_million(b) else (b, a)
    gap, ratio = _acc(lean) - _acc(other), lean.result.params / other.result.params
    if gap > -w.TIE_POINTS and ratio <= 1:
        why = f"with {w.fmt_ratio(ratio)} the parameters"
    else:
        why = f"{_per_million(lean):.1f} against {_per_million(other):.1f} accuracy points per million parameters"
    efficient = f"{lead}; {w.describe_run(lean)} is the more parameter-efficient ({why})"
    sa, sb = seconds_per_epoch(a.result), seconds_per_epoch(b.result)
    if not (sa and sb) or _group_size(a) != _group_size(b):
        return [efficient + "."]
    slow, fast = (a, b) if sa >= sb else (b, a)
    slow_name = "it" if slow is lean else w.describe_run(slow)
    return [(f"{efficient}; {slow_name} takes {w.fmt_ratio(max(sa, sb) / min(sa, sb))} the time per epoch "
             f"of {w.describe_run(fast)}.")]


def _group_size(o: RunOutcome) -> int:
    """The lockstep group the run trained in. A grouped run's seconds are its share of the group's wall
    time, so the times of runs from groups of different sizes are not compared."""
    return (o.result.machine or {}).get("group_size", 1)


# ---------------------------------------------------------------- activation_effect

def models_family(outcomes: list[RunOutcome], args: NoArgs) -> Family:
    """Every pair of the question's models (activations) on final accuracy."""
    return Family.of("activation_effect", all_pairs(by_preset(outcomes).values(), "final_accuracy"),
                     "every pair of models")


def activation_effect(outcomes: list[RunOutcome], args: NoArgs) -> list[str]:
    """The worst activation at the end, and the best and worst after the first epoch.

    The best at the end against the next, with its interval, is the question's answer (answers.best_model).
    """
    runs = sorted(by_preset(outcomes).values(), key=_acc, reverse=True)
    if len(runs) < 2:
        return ["Only one activation was measured: " + "; ".join(f"{w.describe_run(o)} {noise.acc_text(o)}" for o in runs) + "."]
    first = sorted(runs, key=_first_epoch, reverse=True)
    same = [o.planned.key for o in first] == [o.planned.key for o in runs]
    worst = w.ties(runs, _acc, _acc(runs[-1]))
    if len(worst) == len(runs):
        return [_best_worst(runs, _acc, "at the end")]
    gap = _first_epoch(first[0]) - _first_epoch(first[-1])
    return [(f"Lowest at the end: {w.join_words(w.describe_run(o) for o in worst)} at {noise.acc_text(runs[-1])}, "
             f"{_acc(runs[0]) - _acc(runs[-1]):.1f} points below the best; after the first epoch {w.describe_run(first[0])} "
             f"led and {w.describe_run(first[-1])} trailed by {gap:.1f} points, {'the same' if same else 'a different'} order.")]


def _first_epoch(o: RunOutcome) -> float:
    return o.result.epochs[0].test_accuracy


def _best_worst(ranked: list[RunOutcome], value, when: str) -> str:
    """'Highest at the end: A (98.3 %); lowest: C (97.0 %), 1.3 points lower.'"""
    top, bottom = value(ranked[0]), value(ranked[-1])
    if top - bottom < w.TIE_POINTS:
        return f"All are level {when}, at {w.fmt_acc(top)}."
    best = w.join_words(w.describe_run(o) for o in w.ties(ranked, value, top))
    worst = w.join_words(w.describe_run(o) for o in w.ties(ranked, value, bottom))
    return f"Highest {when}: {best} ({w.fmt_acc(top)}); lowest: {worst} ({w.fmt_acc(bottom)}), {top - bottom:.1f} points lower."


# ---------------------------------------------------------------- param_claim

class ParamClaimArgs(Args):
    larger: str = Field(description="the model preset the source says has more parameters")
    smaller: str = Field(description="the model preset it says has fewer")
    claim_source: str = Field("the source", description="who made the claim, as the sentence names it")

    def presets(self) -> list[str]:
        return [self.larger, self.smaller]


def param_claim(outcomes: list[RunOutcome], args: ParamClaimArgs) -> list[str]:
    """Checks a source's claim that preset `larger` has more trainable parameters than `smaller`."""
    larger, smaller, source = args.larger, args.smaller, args.claim_source
    found = {str(o.planned.labels.get("model")): o for o in outcomes if o.result is not None}
    absent = [n for n in (larger, smaller) if n not in found]
    if absent:
        return [f"The claim of {source} about {larger} and {smaller} cannot be checked: "
                f"{w.join_words(absent)} not measured."]
    big, small = found[larger], found[smaller]
    pb, ps = big.result.params, small.result.params
    big_name, small_name = w.describe_run(big), w.describe_run(small)
    claim = f"{source[:1].upper()}{source[1:]} says {big_name} has more trainable parameters than {small_name}"
    counts = f"{w.fmt_count(pb)} against {w.fmt_count(ps)}, {w.fmt_ratio(pb / ps) if ps else 'n/a'} as many"
    if pb > ps:
        return [f"{claim}; the measurement confirms it: {counts}."]
    return [f"{claim}; the measurement contradicts it: {counts}."]
