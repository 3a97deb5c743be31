"""Answers: each observer's one-sentence reply to its question, from the same measurements and the same family
of comparisons as its findings.

The verdict is part of the sentence, with its interval ("4.6 points ahead of lr 0.01 (CI +3.6 to +5.6)",
"equivalent to lr 0.01 within ±0.5 points (CI …)", "unresolved against lr 0.01 with 3 seeds (CI …)"), so the
findings need not repeat the comparison. An observer registered without an answer function contributes nothing;
analysis/prose.py puts a question's answers and findings together.
"""
from __future__ import annotations

import math

from reportgen.analysis import curve_observers, lr_observers, model_observers
from reportgen.analysis import wording as w
from reportgen.analysis.aggregate import seed_summary
from reportgen.analysis.curve_observers import failed_or_at_chance
from reportgen.analysis.lr_observers import target_epoch, target_text
from reportgen.analysis.metrics import final_accuracy
from reportgen.analysis.model_observers import by_preset, preset_names
from reportgen.analysis.noise import acc_text, edge
from reportgen.registry import Args
from reportgen.results import RunOutcome


def _mean(point: RunOutcome) -> float:
    value = seed_summary(point, final_accuracy).mean
    return -math.inf if value is None or math.isnan(value) else value


def _per_model(points: list[RunOutcome]) -> dict[str, list[RunOutcome]]:
    return w.group_by_model(w.distinct(points))


def lr_effect(points: list[RunOutcome], args: Args) -> list[str]:
    """The best rate per model after the fixed budget, and its verdict against the next one."""
    family = lr_observers.lr_effect_family(points, args)
    fixed = [p for p in points if p.result.budget.until_accuracy is None]
    parts = []
    for runs in _per_model(fixed).values():
        ranked = sorted(runs, key=_mean, reverse=True)
        if len(ranked) < 2:
            continue
        best, second = ranked[:2]
        lr = f"lr {w.fmt_lr(best.planned.labels.get('lr'))}"
        parts.append(f"{lr} for {w.describe_run(best)} ({acc_text(best)}, "
                     f"{edge(best, second, 'lr ' + w.fmt_lr(second.planned.labels.get('lr')), family)})")
    if not parts:
        return []
    epochs = {p.result.budget.max_epochs for p in fixed}
    after = f"after {w.plural(epochs.pop(), 'epoch')}" if len(epochs) == 1 else "at the end of training"
    return [f"Best learning rate {after}: {w.join_words(parts)}."]


def convergence(points: list[RunOutcome], args: Args) -> list[str]:
    """Per model, the rate that reaches the target soonest, and which never reach it."""
    targeted = [p for p in points if p.result.budget.until_accuracy is not None]
    if not targeted:
        return []
    target = w.fmt_acc(targeted[0].result.budget.until_accuracy)
    parts, never = [], []
    for runs in _per_model(targeted).values():
        reached = sorted((p for p in runs if target_epoch(p) is not None), key=target_epoch)
        never += [w.describe_run(p, ["lr"]) for p in runs if target_epoch(p) is None]
        if reached:
            parts.append(f"{w.describe_run(reached[0])} at lr {w.fmt_lr(reached[0].planned.labels.get('lr'))}, "
                         f"{target_text(reached[0])}")
    said = f"{target} is reached soonest by {w.join_words(parts)}" if parts else f"No run reaches {target}"
    return [said + (f"; never by {w.join_words(never)}." if never else ".")]


def divergence(points: list[RunOutcome], args: Args) -> list[str]:
    """Which settings failed (diverged or stayed at chance), if any."""
    failed = [p for p in w.distinct(points) if p.result.diverged or failed_or_at_chance(p.result)]
    if not failed:
        return []
    described = curve_observers.divergence(points, args)
    if len(failed) == 1 and len(described) == 1:
        return described  # one failure: its finding, with epoch and accuracy, is the answer (and not said twice)
    return [f"Training fails (diverges or stays at chance) for {w.join_words(w.describe_run(p, ['lr']) for p in failed)}."]


def capacity(points: list[RunOutcome], args: Args) -> list[str]:
    """Per group, the most accurate structure against its baseline."""
    family = model_observers.capacity_family(points, args)
    runs = by_preset(points)
    parts = []
    for group in getattr(args, "groups", []):
        present = [runs[n] for n in preset_names(group) if n in runs]
        if len(present) < 2:
            continue
        base, best = present[0], max(present, key=_mean)
        if best is base:
            second = max(present[1:], key=_mean)
            parts.append(f"{w.describe_run(base)} keeps the lead ({acc_text(base)}, "
                         f"{edge(base, second, w.describe_run(second), family, interval=False)})")
        else:
            parts.append(f"{w.describe_run(best)} is the most accurate ({acc_text(best)}, "
                         f"{edge(best, base, w.describe_run(base), family, interval=False)})")
    return [f"{'; '.join(parts)}."] if parts else []


def best_model(points: list[RunOutcome], args: Args) -> list[str]:
    """The most accurate model (or activation) and its verdict against the next one."""
    family = model_observers.models_family(points, args)
    ranked = sorted(by_preset(points).values(), key=_mean, reverse=True)
    if len(ranked) < 2:
        return []
    best, second = ranked[:2]
    return [f"{w.describe_run(best)} is the most accurate ({acc_text(best)}, "
            f"{edge(best, second, w.describe_run(second), family)})."]


def first_finding(observer):
    """An answer that is the observer's own first finding (for observers whose first sentence is their claim)."""
    def answer(points: list[RunOutcome], args: Args) -> list[str]:
        return observer(points, args)[:1]
    answer.__doc__ = "The observer's first finding."
    return answer


def joined(observer):
    """An answer that is all of the observer's findings as one sentence (for observers that write one per model)."""
    def answer(points: list[RunOutcome], args: Args) -> list[str]:
        said = [s.rstrip(".") for s in observer(points, args)]
        # 'For MLP, …; for BN MLP, …': a leading 'For' continues the sentence; a name keeps its capital
        said = said[:1] + [f"for {s[4:]}" if s.startswith("For ") else s for s in said[1:]]
        return [f"{'; '.join(said)}."] if said else []
    answer.__doc__ = "The observer's findings, in one sentence."
    return answer
