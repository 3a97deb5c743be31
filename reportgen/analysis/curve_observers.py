"""Observers that read each run's curves: divergence, overfitting, convergence speed, gradient trend."""
from __future__ import annotations

import math
from statistics import fmean

from pydantic import Field

from reportgen.analysis import noise
from reportgen.analysis import wording as w
from reportgen.analysis.aggregate import PointOutcome, failed_seeds, seed_values
from reportgen.analysis.families import Family, all_pairs
from reportgen.analysis.lr_observers import failure_epoch, target_epoch, target_text
from reportgen.analysis.metrics import best_accuracy, final_accuracy, final_train_loss
from reportgen.registry import Args, NoArgs
from reportgen.results import PROBE_STEPS, STOP_REASONS, RunOutcome, RunResult

OVERFIT_MARGIN = 0.05  # default: final test loss this fraction above its minimum counts as rising
NEAR_BEST_POINTS = 1.0  # a run has "converged" once within this many points of its best accuracy
EDGE_STEPS = 10  # gradient trends compare the mean of the first and of the last this many steps
FLAT_RATIO = 1.25  # last/first within [1/FLAT_RATIO, FLAT_RATIO] counts as flat


# ---------------------------------------------------------------- divergence

def divergence(outcomes: list[RunOutcome], args: NoArgs) -> list[str]:
    """Which runs diverged or sat at chance level, at which epoch, and their final accuracy."""
    runs = w.distinct(outcomes)
    name = w.name_runs(runs)
    failed = [o for o in runs if failed_seeds(o, failed_or_at_chance)[0]]
    if not failed:
        low = min(runs, key=lambda o: final_accuracy(o.result))
        return [f"No run diverged or ended at chance level (lowest: {name(low)}, {noise.acc_text(low)})."]
    return [_failure_of_point(name(o), o) for o in failed]


def failed_or_at_chance(r: RunResult) -> bool:
    return r.diverged or w.at_chance(final_accuracy(r))


def _failure_of_point(name: str, point: RunOutcome) -> str:
    """The failure of the point's first failed seed, with how many of its seeds failed."""
    failed, n = failed_seeds(point, failed_or_at_chance)
    first = next(r for r in (point.measured if isinstance(point, PointOutcome) else [point.result]) if failed_or_at_chance(r))
    if n < 2:
        return _failure_sentence(name, first)
    return f"In {failed} of {n} seeds: " + _failure_sentence(name, first)


def _failure_sentence(name: str, r: RunResult) -> str:
    final, best = w.fmt_acc(final_accuracy(r)), w.fmt_acc(best_accuracy(r))
    if r.stop_reason == "diverged":
        return (f"{name} diverged at epoch {failure_epoch(r)} ({STOP_REASONS['diverged']}); its final test "
                f"accuracy is {final} and its last training loss {w.fmt_loss(final_train_loss(r))}.")
    if r.stop_reason == "stuck at chance":
        return f"{name} stayed at chance level and was stopped at epoch {len(r.epochs)} (final {final}, best {best})."
    if w.at_chance(best_accuracy(r)):
        return f"{name} never rose above chance level in {w.plural(len(r.epochs), 'epoch')}: final test accuracy {final}."
    peak = max(r.epochs, key=lambda e: e.test_accuracy)
    return f"{name} fell to chance level: {best} at epoch {peak.epoch}, then {final} at epoch {len(r.epochs)}."


# ---------------------------------------------------------------- overfitting

class OverfittingArgs(Args):
    margin: float = Field(OVERFIT_MARGIN, gt=0, description="a final test loss this fraction above its minimum counts as rising")


def overfitting(outcomes: list[RunOutcome], args: OverfittingArgs) -> list[str]:
    """Runs whose test loss rose from its minimum while their training loss kept falling."""
    margin = args.margin
    runs = w.distinct(outcomes)
    name = w.name_runs(runs)
    usable = [o for o in runs if len(o.result.epochs) >= 2 and _finite_losses(o.result)]
    skipped = [name(o) for o in runs if o not in usable]
    notes = [f"Left out, with non-finite losses or a single epoch: {w.join_words(skipped)}."] if skipped else []
    if not usable:
        return notes
    rises = {o.planned.key: _test_loss_rise(o.result) for o in usable}
    rising = [o for o in usable if rises[o.planned.key][2] > margin]
    overfit = [o for o in rising if _train_fell(o.result, rises[o.planned.key][0])]
    sentences = [_overfit_sentence([(name(o), o.result, *rises[o.planned.key], _seeds_rising(o, margin)) for o in overfit])]
    sentences = [s for s in sentences if s] + [_unstable_sentence(name(o), o.result, *rises[o.planned.key][:2])
                                              for o in rising if o not in overfit]
    if not any(_train_fell(o.result, rises[o.planned.key][0]) for o in rising):
        top = max(usable, key=lambda o: rises[o.planned.key][2])
        sentences.insert(0, f"No run overfits: no final test loss sits more than {margin * 100:g} % above its minimum while "
                            f"the training loss falls (largest rise: {name(top)}, {_percent(rises[top.planned.key][2], 1)}).")
    return sentences + notes


def _seeds_rising(point: RunOutcome, margin: float) -> str:
    """'3 of 3 seeds' (in how many seeds the rise exceeds the margin) when there are several seeds."""
    rises = [r for r in seed_values(point, lambda r: _finite_losses(r) and _test_loss_rise(r)[2] > margin)]
    if len(rises) < 2:
        return ""
    return f"{sum(rises)} of {len(rises)} seeds"


def _percent(fraction: float, digits: int) -> str:
    return f"{fraction * 100:+.{digits}f} %"


def _finite_losses(r: RunResult) -> bool:
    return all(math.isfinite(e.train_loss) and math.isfinite(e.test_loss) for e in r.epochs)


def _test_loss_rise(r: RunResult) -> tuple[int, float, float]:
    """(epoch of the lowest test loss, that loss, relative rise of the final test loss above it)."""
    low = min(r.epochs, key=lambda e: e.test_loss)
    rise = (r.epochs[-1].test_loss - low.test_loss) / low.test_loss if low.test_loss > 0 else 0.0
    return low.epoch, low.test_loss, rise


def _train_fell(r: RunResult, epoch: int) -> bool:
    return r.epochs[-1].train_loss < r.epochs[epoch - 1].train_loss


def _overfit_sentence(runs: list[tuple[str, RunResult, int, float, float, str]]) -> str:
    """The runs that overfit, in one sentence: each test loss from its lowest to its last epoch, with training loss."""
    if not runs:
        return ""
    seeds = {seeds for *_, seeds in runs}
    every = f"; {seeds.pop()}{' each' if len(runs) > 1 else ''}" if len(seeds) == 1 and "" not in seeds else ""
    parts = [f"{name} {w.fmt_loss(low)} (epoch {epoch}) → {w.fmt_loss(r.epochs[-1].test_loss)} ({_percent(rise, 0)})"
             + (f", {seeds_}" if seeds_ and not every else "")
             for name, r, epoch, low, rise, seeds_ in runs]
    return f"Overfitting (test loss up from its minimum to the last epoch, training loss down{every}): {'; '.join(parts)}."


def _unstable_sentence(name: str, r: RunResult, epoch: int, low: float) -> str:
    last = r.epochs[-1]
    return (f"{name}: test loss {w.fmt_loss(low)} (epoch {epoch}) → {w.fmt_loss(last.test_loss)}, but training loss "
            f"rose too ({w.fmt_loss(r.epochs[epoch - 1].train_loss)} → {w.fmt_loss(last.train_loss)}): instability, "
            "not overfitting.")


# ---------------------------------------------------------------- convergence

def convergence_family(outcomes: list[RunOutcome], args: NoArgs) -> Family:
    """Every pair of runs on the epoch reaching the target, or without a target on the accuracy after epoch 1."""
    runs = w.measured(outcomes)
    targeted = w.distinct([o for o in runs if o.result.budget.until_accuracy is not None])
    if targeted:
        return Family.of("convergence", all_pairs(targeted, "epochs_to_target"), "every pair of runs, epochs to the target")
    return Family.of("convergence", all_pairs(_trained(w.distinct(runs)), "first_epoch_accuracy"),
                     "every pair of runs that trained, accuracy after epoch 1")


def convergence(outcomes: list[RunOutcome], args: NoArgs) -> list[str]:
    """Epochs to the target where there is one; otherwise how soon each run neared its best."""
    runs = w.measured(outcomes)
    targeted = w.distinct([o for o in runs if o.result.budget.until_accuracy is not None])
    family = convergence_family(outcomes, args)
    if targeted:
        return _target_speed(targeted, family)
    return _plateau_speed(w.distinct(runs), family)


def _trained(runs: list[RunOutcome]) -> list[RunOutcome]:
    """The runs that neither diverged nor stayed at chance."""
    return [o for o in runs if not o.result.diverged and not w.at_chance(best_accuracy(o.result))]


def _target_speed(runs: list[RunOutcome], family: Family) -> list[str]:
    """Fastest and slowest to the target with the tested gap, and the runs that never got there.

    Each run's epoch is in the question's table (epochs_to_target), so it is not listed here again.
    """
    name = w.name_runs(runs)
    target = w.fmt_acc(runs[0].result.budget.until_accuracy)
    reached = sorted((o for o in runs if target_epoch(o) is not None), key=target_epoch)
    missed = [o for o in runs if o not in reached]
    sentences = []
    if len(reached) == 1:
        sentences.append(f"Only {name(reached[0])} reached {target}, at {target_text(reached[0])}.")
    elif reached:
        sentences.append(_extremes_to_target(name, reached, target, family))
    if missed:
        listing = "; ".join(f"{name(o)} (best {noise.acc_text(o, best_accuracy)}, stopped after "
                            f"{w.plural(len(o.result.epochs), 'epoch')}: {o.result.stop_reason})" for o in missed)
        sentences.append(f"Never reached {target}: {listing}.")
    return sentences


def _extremes_to_target(name, reached: list[RunOutcome], target: str, family: Family) -> str:
    """'Fastest to 85.0 %: A (epoch 1); slowest: B (epoch 118); the gap is +117.0 epochs (CI …), ahead.'"""
    said = _extremes([(name(o), target_epoch(o)) for o in reached], "epoch")[0]
    if target_epoch(reached[0]) == target_epoch(reached[-1]):
        return said.replace("got there", f"reached {target}")
    gap = noise.gap_text(reached[-1], reached[0], family, "epochs_to_target")
    return f"{said[:-1].replace('Fastest:', f'Fastest to {target}:')}; the gap is {gap}."


def _plateau_speed(runs: list[RunOutcome], family: Family) -> list[str]:
    """How soon each run came near its best, fastest first, and who led after the first epoch (the tested gap)."""
    name = w.name_runs(runs)
    ok = sorted(_trained(runs), key=lambda o: _near_best_epoch(o.result))
    sentences = [_near_best_listing(name, ok, family)] if ok else []
    left_out = [name(o) for o in runs if o not in ok]
    if left_out:
        sentences.append(f"Left out because they diverged or stayed at chance level: {w.join_words(left_out)}.")
    return sentences


def _near_best_listing(name, ok: list[RunOutcome], family: Family) -> str:
    """'First epoch within 1 point of its best, of 20 (in brackets: accuracy after epoch 1): A 8 (82.4 %), B 10 (80.5 %);
    after epoch 1 A leads B by +1.9 points (CI +0.6 to +3.1), ahead.'"""
    lengths = {len(o.result.epochs) for o in ok}
    of = f", of {lengths.pop()}" if len(lengths) == 1 else ""
    listing = ", ".join(f"{name(o)} {_near_best_epoch(o.result)}"
                        + ("" if of else f" of {len(o.result.epochs)}")
                        + f" ({w.fmt_acc(o.result.epochs[0].test_accuracy)})" for o in ok)
    said = (f"First epoch within {NEAR_BEST_POINTS:g} point of its best{of} (in brackets: accuracy after epoch 1): "
            f"{listing}")
    if len(ok) < 2:
        return said + "."
    first, second = sorted(ok, key=lambda o: _first_epoch_accuracy(o.result), reverse=True)[:2]
    gap = noise.gap_text(first, second, family, "first_epoch_accuracy")
    return f"{said}; after epoch 1 {name(first)} leads {name(second)} by {gap}."


def _first_epoch_accuracy(r: RunResult) -> float:
    return r.epochs[0].test_accuracy


def _near_best_epoch(r: RunResult) -> int:
    best = best_accuracy(r)
    return next(e.epoch for e in r.epochs if e.test_accuracy >= best - NEAR_BEST_POINTS)


def _extremes(pairs: list[tuple[str, int]], unit: str) -> list[str]:
    """'Fastest: …; slowest: …' over (name, epoch) pairs, naming every run tied at an end."""
    if len(pairs) < 2:
        return []
    low, high = min(p[1] for p in pairs), max(p[1] for p in pairs)
    if low == high:
        return [f"All of them got there at the same {unit}, {low:g}."]
    fast = w.join_words(n for n, v in pairs if v == low)
    slow = w.join_words(n for n, v in pairs if v == high)
    return [f"Fastest: {fast} ({unit} {low:g}); slowest: {slow} ({unit} {high:g})."]


# ---------------------------------------------------------------- gradient_trend

class GradientTrendArgs(Args):
    steps: int = Field(PROBE_STEPS, gt=0, le=PROBE_STEPS, description="first training steps to describe")


def gradient_trend(outcomes: list[RunOutcome], args: GradientTrendArgs) -> list[str]:
    """For each run, how the probed gradient statistics change over the first `steps` steps."""
    steps = args.steps
    runs = w.distinct(outcomes)
    name = w.name_runs(runs)
    # How the edges are averaged is said in the first sentence only: the others read the same way.
    return [_gradient_sentence(name(o), o.result.probes or {}, steps, method=i == 0) for i, o in enumerate(runs)]


def _gradient_sentence(name: str, probes: dict[str, list[float]], steps: int, method: bool = True) -> str:
    mean = [x for x in probes.get("grad_mean", [])[:steps] if math.isfinite(x)]
    if len(mean) < 2:
        return f"{name}: no gradient probes were recorded."
    k = _edges(mean)[2]
    how = f" (first vs last {k})" if method else ""
    parts = [f"over {len(mean)} steps{how} the mean gradient {_signed_trend(mean)}"]
    for key, what in (("grad_abs_mean", "mean |gradient|"), ("grad_norm", "gradient norm"), ("step_loss", "loss")):
        values = [x for x in probes.get(key, [])[:steps] if math.isfinite(x)]
        if len(values) >= 2:
            parts.append(f"{what} {_positive_trend(values)}")
    return f"{name}: " + "; ".join(parts) + "."


def _edges(values: list[float]) -> tuple[float, float, int]:
    k = max(1, min(EDGE_STEPS, len(values) // 2))
    return fmean(values[:k]), fmean(values[-k:]), k


def _signed_trend(values: list[float]) -> str:
    head, tail, _ = _edges(values)
    flips = sum(1 for a, b in zip(values, values[1:]) if (a > 0) != (b > 0))
    said = f"{w.fmt_sig(head)} → {w.fmt_sig(tail)}"
    if flips >= len(values) / 10:
        return f"fluctuates around zero ({said}, {w.plural(flips, 'sign change')}), not steadily shrinking"
    if abs(tail) < abs(head) / FLAT_RATIO:
        return f"magnitude decreases ({said})"
    if abs(tail) > abs(head) * FLAT_RATIO:
        return f"magnitude increases ({said})"
    return f"roughly flat ({said})"


def _positive_trend(values: list[float]) -> str:
    head, tail, _ = _edges(values)
    ratio = tail / head if head else math.inf
    direction = "decreases" if ratio < 1 / FLAT_RATIO else "increases" if ratio > FLAT_RATIO else "flat"
    return f"{direction} ({w.fmt_sig(head)} → {w.fmt_sig(tail)})"
