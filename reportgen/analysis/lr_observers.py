"""The lr_effect observer: per model, which learning rate worked best and what the others did."""
from __future__ import annotations

import math

from reportgen.analysis import noise
from reportgen.analysis import wording as w
from reportgen.analysis.aggregate import epochs_to_target_summary, seed_summary, seed_values
from reportgen.analysis.families import Family, all_pairs
from reportgen.analysis.metrics import best_accuracy, final_accuracy
from reportgen.registry import NoArgs
from reportgen.results import STOP_REASONS, RunOutcome, RunResult

DROP_POINTS = 1.0  # final accuracy this far below the run's best counts as a fall
DIP_POINTS = 3.0  # an epoch-to-epoch accuracy drop this large counts as unstable
STOP_VERBS = {"diverged": "diverged", "stuck at chance": "got stuck at chance"}
LOSS_RISE = 0.10  # a final training loss this fraction above its minimum counts as rising


def _acc(o: RunOutcome) -> float:
    """The final accuracy the point ranks by: the mean over its seeds (-inf when none is finite)."""
    value = seed_summary(o, final_accuracy).mean
    return -math.inf if value is None or math.isnan(value) else value


def _lr(o: RunOutcome) -> str:
    return f"lr {w.fmt_lr(o.planned.labels.get('lr'))}"


def _stop_note(r: RunResult) -> str:
    return f"{r.stop_reason}: {STOP_REASONS.get(r.stop_reason, r.stop_reason)}"


# ---------------------------------------------------------------- instability signs

def failure_epoch(r: RunResult) -> int:
    """The first epoch with a non-finite loss, else the last epoch trained."""
    bad = (e.epoch for e in r.epochs if not (math.isfinite(e.train_loss) and math.isfinite(e.test_loss)))
    return next(bad, len(r.epochs))


def instability(r: RunResult) -> list[str]:
    """Phrases naming measured signs of unstable training; empty when none shows."""
    signs = []
    bad = next((e.epoch for e in r.epochs if not math.isfinite(e.train_loss)), None)
    if bad is not None:
        signs.append(f"the training loss became {w.fmt_loss(r.epochs[bad - 1].train_loss)} at epoch {bad}")
    peak = max(r.epochs, key=lambda e: e.test_accuracy)
    final = r.epochs[-1]
    if peak.test_accuracy - final.test_accuracy > DROP_POINTS:
        signs.append(f"test accuracy fell from {w.fmt_acc(peak.test_accuracy)} (epoch {peak.epoch}) "
                     f"to {w.fmt_acc(final.test_accuracy)}")
    else:
        dips = [a.test_accuracy - b.test_accuracy for a, b in zip(r.epochs, r.epochs[1:])]
        if dips and max(dips) >= DIP_POINTS:
            signs.append(f"test accuracy dropped by up to {max(dips):.1f} points from one epoch to the next")
    finite = [e for e in r.epochs if math.isfinite(e.train_loss)]
    low = min(finite, key=lambda e: e.train_loss, default=None)
    if bad is None and low and final.train_loss > low.train_loss * (1 + LOSS_RISE) + 1e-3:
        signs.append(f"training loss rose from {w.fmt_loss(low.train_loss)} (epoch {low.epoch}) "
                     f"to {w.fmt_loss(final.train_loss)}")
    return signs


def _failure(o: RunOutcome) -> str | None:
    """How the run failed (diverged, at chance, unstable), with numbers; None when it trained."""
    r = o.result
    stops = seed_values(o, lambda run: run.stop_reason if run.diverged else "")
    failed = [stop for stop in stops if stop]
    if failed:  # the seeds' mean curve may be NaN from one diverged seed: say how many failed, not "unstable"
        seeds = f" in {len(failed)} of {len(stops)} seeds" if len(stops) > 1 else ""
        return (f"{_lr(o)} {' or '.join(STOP_VERBS[s] for s in sorted(set(failed)))}{seeds} at epoch "
                f"{failure_epoch(r)}, ending at {noise.acc_text(o)}")
    if w.at_chance(best_accuracy(r)):
        return f"{_lr(o)} never rose above chance level (best {w.fmt_acc(best_accuracy(r))})"
    signs = instability(r)
    return f"{_lr(o)} was unstable: {w.join_words(signs)}" if signs else None


# ---------------------------------------------------------------- lr_effect

def _fixed_and_targeted(outcomes: list[RunOutcome]) -> tuple[list[RunOutcome], list[RunOutcome]]:
    """The points with a fixed budget and those with a target, one per trajectory."""
    runs = w.measured(outcomes)
    return (w.distinct([o for o in runs if o.result.budget.until_accuracy is None]),
            w.distinct([o for o in runs if o.result.budget.until_accuracy is not None]))


def lr_effect_family(outcomes: list[RunOutcome], args: NoArgs) -> Family:
    """Every pair of rates per model: final accuracy after a fixed budget, epochs to the target under one."""
    fixed, targeted = _fixed_and_targeted(outcomes)
    pairs = [p for runs in w.group_by_model(fixed).values() for p in all_pairs(runs, "final_accuracy")]
    pairs += [p for runs in w.group_by_model(targeted).values() for p in all_pairs(runs, "epochs_to_target")]
    return Family.of("lr_effect", pairs, "every pair of learning rates per model")


def lr_effect(outcomes: list[RunOutcome], args: NoArgs) -> list[str]:
    """Per model: what the rates larger and smaller than the best did, and how sensitive each model is to the rate."""
    fixed, targeted = _fixed_and_targeted(outcomes)
    family = lr_effect_family(outcomes, args)
    by_model = w.group_by_model(fixed)  # a run stopped at its target says nothing by its final accuracy
    sentences = [s for model_runs in by_model.values() for s in _lr_accuracy(model_runs)]
    if len(by_model) > 1:
        sentences += _lr_families(by_model)
    for model_runs in w.group_by_model(targeted).values():
        sentences += _lr_target(model_runs, family)
    return sentences


def _after(runs: list[RunOutcome]) -> str:
    """'after 10 epochs' when every run had that budget (runs that failed earlier are named apart)."""
    budgets = {o.result.budget.max_epochs for o in runs}
    epochs = budgets.pop() if len(budgets) == 1 else None
    if epochs and all(len(o.result.epochs) == epochs or o.result.diverged for o in runs):
        return f"after {w.plural(epochs, 'epoch')}"
    return "at the end of each run"


def _lr_accuracy(runs: list[RunOutcome]) -> list[str]:
    """The ranking of one model's rates by final accuracy, then what the other rates did."""
    name = w.describe_run(runs[0])
    runs = sorted(runs, key=lambda o: o.planned.labels.get("lr") or 0, reverse=True)
    listing = ", ".join(f"{_lr(o)} {noise.acc_text(o)}" for o in runs)
    if len({o.planned.labels.get("lr") for o in runs}) < 2:
        return [f"Only one learning rate was measured for {name} ({listing} {_after(runs)}), "
                "so the effect of the rate cannot be read here."]
    top = max(map(_acc, runs))
    best = w.ties(runs, _acc, top)
    if len(best) == len(runs):
        return [f"For {name}, the final test accuracy {_after(runs)} is the same at every rate ({listing})."]
    lrs = [o.planned.labels["lr"] for o in best]
    larger = [o for o in runs if o.planned.labels["lr"] > max(lrs)]
    smaller = [o for o in runs if o.planned.labels["lr"] < min(lrs)]
    runner_up = sorted(runs, key=_acc, reverse=True)[1] if len(best) == 1 else None
    notes = [f"For {name}, {note[:1].lower()}{note[1:]}"
             for note in [*_larger_notes(larger, top, runner_up), *_smaller_notes(smaller, top)]]
    # every other rate, the worst included; each note names its model, as a finding stands on its own
    # Every rate's accuracy is in the question's table, and the best rate against the next, with its interval, is
    # the answer (answers.lr_effect): the findings say what the other rates did.
    if len(best) > 1:
        return [f"{name}: lr {w.join_words(w.fmt_lr(x) for x in lrs)} tie for the best ({w.fmt_acc(top)}) {_after(runs)}.",
                *notes]
    return notes


def _larger_notes(larger: list[RunOutcome], top: float, runner_up: RunOutcome | None = None) -> list[str]:
    """Each failed larger rate on its own; the ones that only ended lower in one sentence, except the runner-up,
    whose gap to the best is the answer's (answers.lr_effect)."""
    notes = [f"The larger {failure}." for failure in map(_failure, larger) if failure]
    stable = [o for o in larger if not _failure(o) and top - _acc(o) >= w.TIE_POINTS and o is not runner_up]
    if stable:
        notes.append(f"The larger {w.join_words(map(_lr, stable))} trained stably, "
                     f"{w.join_words(f'{top - _acc(o):.1f}' for o in stable)} points below the best.")
    return notes


def _smaller_notes(smaller: list[RunOutcome], top: float) -> list[str]:
    """The smaller rates: failures one by one; the others grouped by whether they were still rising ("slower")."""
    notes = [f"The smaller {failure}." for failure in map(_failure, smaller) if failure]
    lower = [o for o in smaller if not _failure(o) and top - _acc(o) >= w.TIE_POINTS]
    rising = [o for o in lower if _last_gain(o) >= w.TIE_POINTS]
    for group, said in ((rising, "still rising, so slower"), ([o for o in lower if o not in rising], "no longer rising")):
        if group:
            gaps = w.join_words(f"{_lr(o)} {top - _acc(o):.1f} points lower ({w.fmt_points(_last_gain(o))[:-7]})" for o in group)
            notes.append(f"Smaller rates end below the best, {said} (last-epoch gain): {gaps}.")
    return notes


def _last_gain(o: RunOutcome) -> float:
    """The test accuracy gained in the last epoch (0 with one epoch)."""
    e = o.result.epochs
    return e[-1].test_accuracy - e[-2].test_accuracy if len(e) > 1 else 0.0


def _lr_families(by_model: dict[str, list[RunOutcome]]) -> list[str]:
    """How the families differ: spread across rates, with each family at the largest rate they share.

    The best rate per model is not repeated here: it is the question's answer (answers.lr_effect).
    """
    names = {m: w.describe_run(runs[0]) for m, runs in by_model.items()}
    return _sensitivity(by_model, names, _largest_common_rate(by_model))  # each rate's accuracy is in the table


def _sensitivity(by_model: dict[str, list[RunOutcome]], names: dict[str, str], at_common: str) -> list[str]:
    spreads = {m: max(map(_acc, runs)) - min(map(_acc, runs)) for m, runs in by_model.items()}
    if not all(math.isfinite(s) for s in spreads.values()) or any(len(r) < 2 for r in by_model.values()):
        return [f"{at_common[:1].upper()}{at_common[1:]}."] if at_common else []
    listing = w.join_words(f"{spreads[m]:.1f} points for {names[m]}" for m in by_model)  # the range over the rates
    least = min(spreads, key=spreads.get)
    if sorted(spreads.values())[1] - spreads[least] < 1.0:
        verdict = "the models are about equally sensitive to the rate"
    else:
        verdict = f"{names[least]} is {'less' if len(spreads) == 2 else 'the least'} sensitive to the rate"
    return [f"Final accuracy spans {listing} across rates: {verdict}."]


def _largest_common_rate(by_model: dict[str, list[RunOutcome]]) -> str:
    """'at lr 1, the largest rate all ran: MLP 10.0 % (stuck at chance) and BN MLP 84.1 %'; '' when none is shared."""
    common = set.intersection(*({o.planned.labels.get("lr") for o in runs} for runs in by_model.values()))
    common.discard(None)
    if not common:
        return ""
    lr = max(common)
    at = [next(o for o in runs if o.planned.labels.get("lr") == lr) for runs in by_model.values()]
    listing = w.join_words(f"{w.fmt_acc(final_accuracy(o.result))}" + (f" ({o.result.stop_reason})" if o.result.diverged else "")
                           for o in at)
    return f"at lr {w.fmt_lr(lr)}, the largest shared rate: {listing}"


def target_epoch(o: RunOutcome) -> float | None:
    """The epoch a point reached its target: the seeds' median, None when no seed reached it."""
    return epochs_to_target_summary(o)[0]


def target_text(o: RunOutcome) -> str:
    """'epoch 5', 'epoch 5 (4–6)', 'epoch 5 (2 of 3 seeds; 4–6)': the seeds' median and range (seeds_note says so)."""
    middle, reached, n, epochs = epochs_to_target_summary(o)
    said = f"epoch {w.fmt_value(middle) if middle != int(middle) else int(middle)}"
    if n > 1:
        spread = f"{epochs[0]}–{epochs[-1]}" if epochs[0] != epochs[-1] else f"all {epochs[0]}"
        said += f" ({spread})" if reached == n else f" ({reached} of {n} seeds; {spread})"
    return said


def _missed_text(o: RunOutcome) -> str:
    _, reached, n, _ = epochs_to_target_summary(o)
    seeds = f" in {n - reached} of {n} seeds" if n > 1 else ""
    return f"{_lr(o)} never{seeds} (best {noise.acc_text(o, best_accuracy)}; {_stop_note(o.result)})"


def _lr_target(runs: list[RunOutcome], family: Family) -> list[str]:
    name, target = w.describe_run(runs[0]), runs[0].result.budget.until_accuracy
    reached = sorted((o for o in runs if target_epoch(o) is not None), key=target_epoch)
    missed = [o for o in runs if o not in reached]
    parts = [f"{_lr(o)} at {target_text(o)}" for o in reached] + [_missed_text(o) for o in missed]
    if len(runs) == 1:
        when = f"came at {target_text(runs[0])}" if reached else f"was never reached ({_missed_text(runs[0])})"
        return [f"For {name} at {_lr(runs[0])} the {w.fmt_acc(target)} target {when}."]
    if not reached:
        return [f"For {name} no learning rate reached {w.fmt_acc(target)}: {'; '.join(parts)}."]
    first = [o for o in reached if target_epoch(o) == target_epoch(reached[0])]
    best = f"soonest at {w.join_words(_lr(o) for o in first)} ({target_text(first[0])})"
    sentences = [f"For {name} the {w.fmt_acc(target)} target came {best}; by rate: {'; '.join(parts)}."]
    if len(reached) > 1:
        sentences.append(noise.compare_sentence(_lr(reached[0]), reached[0], _lr(reached[1]), reached[1], family,
                                                "epochs_to_target", "epochs to the target"))
    return sentences


# ---------------------------------------------------------------- lr_tradeoff (Q1.4: the two tables together)

def lr_tradeoff(outcomes: list[RunOutcome], args: NoArgs) -> list[str]:
    """Per model: is the rate that is best after the fixed budget also the one that reaches the target first?"""
    runs = w.measured(outcomes)
    fixed = w.group_by_model(w.distinct([o for o in runs if o.result.budget.until_accuracy is None]))
    targeted = w.group_by_model(w.distinct([o for o in runs if o.result.budget.until_accuracy is not None]))
    sentences = [_tradeoff(fixed[m], targeted[m]) for m in fixed if m in targeted]
    return [s for s in sentences if s]


def _tradeoff(fixed: list[RunOutcome], targeted: list[RunOutcome]) -> str | None:
    best = max(fixed, key=_acc)
    reached = sorted((o for o in targeted if target_epoch(o) is not None), key=target_epoch)
    name, target = w.describe_run(best), w.fmt_acc(targeted[0].result.budget.until_accuracy)
    after = f"after {w.plural(best.result.budget.max_epochs, 'epoch')}"
    if not reached:
        return f"For {name}, {_lr(best)} is best {after} ({noise.acc_text(best)}), yet no rate reaches {target}."
    first = reached[0]
    # The accuracy and the epoch behind each claim are the answers of the two questions this one joins.
    if first.planned.labels.get("lr") == best.planned.labels.get("lr"):
        return f"For {name}, {_lr(best)} wins both tables (best {after}, first to {target})."
    return (f"For {name} the tables disagree: {_lr(best)} is best {after}, but {_lr(first)} reaches {target} first; "
            "a faster start is not a better end point.")
