"""Observers that read each run's curves: divergence, overfitting, convergence speed, gradient trend."""
from __future__ import annotations

import math
from statistics import fmean

from pydantic import Field

from reportgen.analysis import noise
from reportgen.analysis import wording as w
from reportgen.analysis.aggregate import PointOutcome, failed_seeds, seed_values
from reportgen.analysis.lr_observers import failure_epoch, target_epoch, target_text
from reportgen.analysis.metrics import best_accuracy, epochs_to_target, final_accuracy, final_train_loss
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
        return [f"No run diverged or ended at chance level: the lowest final test accuracy is "
                f"{noise.acc_text(low)} ({name(low)})."]
    return [_failure_of_point(name(o), o) for o in failed]


def failed_or_at_chance(r: RunResult) -> bool:
    return r.diverged or w.at_chance(final_accuracy(r))


def _failure_of_point(name: str, point: RunOutcome) -> str:
    """The failure of the point's first failed seed, with how many of its seeds failed."""
    failed, n = failed_seeds(point, failed_or_at_chance)
    first = next(r for r in (point.measured if isinstance(point, PointOutcome) else [point.result]) if failed_or_at_chance(r))
    if n < 2:
        return _failure_sentence(name, first)
    return f"In {failed} of {n} seeds: " + _failure_sentence(name, first)[0].lower() + _failure_sentence(name, first)[1:]


def _failure_sentence(name: str, r: RunResult) -> str:
    final, best = w.fmt_acc(final_accuracy(r)), w.fmt_acc(best_accuracy(r))
    if r.stop_reason == "diverged":
        return (f"{name} diverged at epoch {failure_epoch(r)} ({STOP_REASONS['diverged']}); its final test "
                f"accuracy is {final} and its last training loss {w.fmt_loss(final_train_loss(r))}.")
    if r.stop_reason == "stuck at chance":
        return (f"{name} stayed at chance level and was stopped at epoch {len(r.epochs)}; "
                f"its final test accuracy is {final} (best {best}).")
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
    sentences = [_overfit_sentence(name(o), o.result, *rises[o.planned.key]) + _seeds_rising(o, margin) for o in rising]
    if not any(_train_fell(o.result, rises[o.planned.key][0]) for o in rising):
        top = max(usable, key=lambda o: rises[o.planned.key][2])
        sentences.insert(0, f"No run overfits: no final test loss sits more than {margin * 100:g} % above its minimum while "
                            f"the training loss falls (largest rise: {name(top)}, {_percent(rises[top.planned.key][2], 1)}).")
    return sentences + notes


def _seeds_rising(point: RunOutcome, margin: float) -> str:
    """' (mean curves; the test loss rose this much in 2 of 3 seeds)' when there are several seeds."""
    rises = [r for r in seed_values(point, lambda r: _finite_losses(r) and _test_loss_rise(r)[2] > margin)]
    if len(rises) < 2:
        return ""
    return f" (mean curves over {len(rises)} seeds; the rise exceeds {margin * 100:g} % in {sum(rises)} of them)"


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


def _overfit_sentence(name: str, r: RunResult, epoch: int, low: float, rise: float) -> str:
    last = r.epochs[-1]
    train_then, train_end = w.fmt_loss(r.epochs[epoch - 1].train_loss), w.fmt_loss(last.train_loss)
    said = (f"{name}: the test loss was lowest at epoch {epoch} ({w.fmt_loss(low)}) and rose to "
            f"{w.fmt_loss(last.test_loss)} by epoch {last.epoch} ({_percent(rise, 0)})")
    if _train_fell(r, epoch):
        return f"{said}, while the training loss kept falling ({train_then} → {train_end}): it overfits."
    return f"{said}, but the training loss rose too ({train_then} → {train_end}), a sign of instability, not overfitting."


# ---------------------------------------------------------------- convergence

def convergence(outcomes: list[RunOutcome], args: NoArgs) -> list[str]:
    """Epochs to the target where there is one; otherwise how soon each run neared its best."""
    runs = w.measured(outcomes)
    targeted = w.distinct([o for o in runs if o.result.budget.until_accuracy is not None])
    if targeted:
        return _target_speed(targeted)
    return _plateau_speed(w.distinct(runs))


def _target_speed(runs: list[RunOutcome]) -> list[str]:
    name = w.name_runs(runs)
    target = w.fmt_acc(runs[0].result.budget.until_accuracy)
    reached = sorted((o for o in runs if target_epoch(o) is not None), key=target_epoch)
    missed = [o for o in runs if o not in reached]
    sentences = []
    if reached:
        listing = "; ".join(f"{name(o)} at {target_text(o)}" for o in reached)
        sentences.append(f"Runs reaching {target}: {listing}.")
        sentences += _extremes([(name(o), target_epoch(o)) for o in reached], "epoch")
        if len(reached) > 1 and target_epoch(reached[0]) != target_epoch(reached[-1]):
            sentences.append(noise.compare_sentence(f"The fastest, {name(reached[0])},", reached[0],
                                                    f"the slowest, {name(reached[-1])}", reached[-1], _reached_epoch,
                                                    f"epochs to {target}", "epochs"))
    if missed:
        listing = "; ".join(f"{name(o)} (best {noise.acc_text(o, best_accuracy)} in "
                            f"{w.plural(len(o.result.epochs), 'epoch')}, stopped: {o.result.stop_reason})" for o in missed)
        sentences.append(f"Never reached {target}: {listing}.")
    return sentences


def _reached_epoch(r: RunResult) -> int | None:
    value = epochs_to_target(r)
    return value if isinstance(value, int) else None


def _plateau_speed(runs: list[RunOutcome]) -> list[str]:
    name = w.name_runs(runs)
    ok = [o for o in runs if not o.result.diverged and not w.at_chance(best_accuracy(o.result))]
    sentences = [_near_best_sentence(name(o), o.result) for o in ok]
    sentences += _extremes([(name(o), _near_best_epoch(o.result)) for o in ok], "epoch")
    if len(ok) > 1:
        first, second = sorted(ok, key=lambda o: o.result.epochs[0].test_accuracy, reverse=True)[:2]
        sentences.append(f"Highest accuracy after the first epoch: {name(first)} "
                         f"({noise.acc_text(first, _first_epoch_accuracy)}).")
        sentences.append(noise.compare_sentence(name(first), first, name(second), second, _first_epoch_accuracy,
                                                "accuracy after the first epoch"))
    left_out = [name(o) for o in runs if o not in ok]
    if left_out:
        sentences.append(f"Left out because they diverged or stayed at chance level: {w.join_words(left_out)}.")
    return sentences


def _first_epoch_accuracy(r: RunResult) -> float:
    return r.epochs[0].test_accuracy


def _near_best_epoch(r: RunResult) -> int:
    best = best_accuracy(r)
    return next(e.epoch for e in r.epochs if e.test_accuracy >= best - NEAR_BEST_POINTS)


def _near_best_sentence(name: str, r: RunResult) -> str:
    return (f"{name}: {w.fmt_acc(r.epochs[0].test_accuracy)} after the first epoch, within {NEAR_BEST_POINTS:g} point "
            f"of its best ({w.fmt_acc(best_accuracy(r))}) from epoch {_near_best_epoch(r)} of {len(r.epochs)}.")


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
    return [_gradient_sentence(name(o), o.result.probes or {}, steps) for o in runs]


def _gradient_sentence(name: str, probes: dict[str, list[float]], steps: int) -> str:
    mean = [x for x in probes.get("grad_mean", [])[:steps] if math.isfinite(x)]
    if len(mean) < 2:
        return f"{name}: no gradient probes were recorded."
    parts = [f"over the first {len(mean)} steps the mean gradient {_signed_trend(mean)}"]
    for key, what in (("grad_abs_mean", "mean |gradient|"), ("grad_norm", "gradient norm"), ("step_loss", "loss")):
        values = [x for x in probes.get(key, [])[:steps] if math.isfinite(x)]
        if len(values) >= 2:
            parts.append(f"the {what} {_positive_trend(values)}")
    return f"{name}: " + "; ".join(parts) + "."


def _edges(values: list[float]) -> tuple[float, float, int]:
    k = max(1, min(EDGE_STEPS, len(values) // 2))
    return fmean(values[:k]), fmean(values[-k:]), k


def _signed_trend(values: list[float]) -> str:
    head, tail, k = _edges(values)
    flips = sum(1 for a, b in zip(values, values[1:]) if (a > 0) != (b > 0))
    said = f"goes from {w.fmt_sig(head)} to {w.fmt_sig(tail)} (mean of the first and last {k} steps)"
    if flips >= len(values) / 10:
        return f"{said} and changes sign {w.plural(flips, 'time')}: it fluctuates around zero rather than steadily shrinking"
    if abs(tail) < abs(head) / FLAT_RATIO:
        return f"{said}: its magnitude decreases"
    if abs(tail) > abs(head) * FLAT_RATIO:
        return f"{said}: its magnitude increases"
    return f"{said}: roughly flat"


def _positive_trend(values: list[float]) -> str:
    head, tail, _ = _edges(values)
    ratio = tail / head if head else math.inf
    direction = "decreases" if ratio < 1 / FLAT_RATIO else "increases" if ratio > FLAT_RATIO else "stays roughly flat"
    return f"{direction} from {w.fmt_sig(head)} to {w.fmt_sig(tail)} ({w.fmt_ratio(ratio)})"
