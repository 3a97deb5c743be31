"""Answers: each observer's one-sentence reply to its question, from the same measurements as its findings.

A question's answer is its observers' answers in the spec's order, at most three sentences; an
observer registered without an answer function contributes nothing. The verdict against seed noise
is part of the sentence, with its interval ("4.6 points above lr 0.01 (CI +3.6 to +5.6), beyond seed noise",
"level with … within seed noise (CI …)"), so the findings need not repeat the comparison.
"""
from __future__ import annotations

import math
from typing import Any

from reportgen.analysis import curve_observers, noise
from reportgen.analysis import wording as w
from reportgen.analysis.aggregate import compare_points, count_seeds, seed_summary
from reportgen.analysis.curve_observers import failed_or_at_chance
from reportgen.analysis.lr_observers import target_epoch, target_text
from reportgen.analysis.metrics import final_accuracy
from reportgen.analysis.noise import CI, acc_text
from reportgen.analysis.stats import BEYOND_NOISE, NO_NOISE_ESTIMATE
from reportgen.registry import Args
from reportgen.results import RunOutcome

MAX_SENTENCES = 3


def _mean(point: RunOutcome) -> float:
    value = seed_summary(point, final_accuracy).mean
    return -math.inf if value is None or math.isnan(value) else value


def edge(leader: RunOutcome, other: RunOutcome, other_name: str, value=final_accuracy, interval: bool = True) -> str:
    """'4.6 points above lr 0.01 (95 % CI +3.6 to +5.6), beyond seed noise' / 'level with lr 0.01 within seed
    noise (95 % CI −0.8 to +1.9)' / '… one seed each, so untested against noise'.

    The answer carries the comparison with its interval, so the findings do not repeat it; `interval=False`
    where the observer's findings give every interval anyway (capacity).
    """
    c = compare_points(leader, other, value)
    if c.difference is None or not math.isfinite(c.difference):
        return f"ahead of {other_name}"
    if c.verdict == NO_NOISE_ESTIMATE or c.low is None:
        return f"{abs(c.difference):.1f} points above {other_name}, one seed each, so untested against noise"
    interval = f"({CI} {noise.signed(c.low, 1)} to {noise.signed(c.high, 1)})" if interval else ""
    if c.verdict == BEYOND_NOISE:
        return f"{abs(c.difference):.1f} points above {other_name} {interval}".rstrip() + ", beyond seed noise"
    return f"level with {other_name} within seed noise {interval}".rstrip()


def _per_model(points: list[RunOutcome]) -> dict[str, list[RunOutcome]]:
    return w.group_by_model(w.distinct(points))


def lr_effect(points: list[RunOutcome], args: Args) -> list[str]:
    """The best rate per model after the fixed budget, and whether it beats the next one beyond noise."""
    fixed = [p for p in points if p.result.budget.until_accuracy is None]
    parts = []
    for runs in _per_model(fixed).values():
        ranked = sorted(runs, key=_mean, reverse=True)
        if len(ranked) < 2:
            continue
        best, second = ranked[:2]
        lr = f"lr {w.fmt_lr(best.planned.labels.get('lr'))}"
        parts.append(f"{lr} for {w.describe_run(best)} ({acc_text(best)}, "
                     f"{edge(best, second, 'lr ' + w.fmt_lr(second.planned.labels.get('lr')))})")
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
    from reportgen.analysis.model_observers import _by_preset, _names

    runs = _by_preset(points)
    parts = []
    for group in getattr(args, "groups", []):
        present = [runs[n] for n in _names(group) if n in runs]
        if len(present) < 2:
            continue
        base, best = present[0], max(present, key=_mean)
        if best is base:
            second = max(present[1:], key=_mean)
            parts.append(f"{w.describe_run(base)} keeps the lead ({acc_text(base)}, "
                         f"{edge(base, second, w.describe_run(second), interval=False)})")
        else:
            parts.append(f"{w.describe_run(best)} is the most accurate ({acc_text(best)}, "
                         f"{edge(best, base, w.describe_run(base), interval=False)})")
    return [f"{'; '.join(parts)}."] if parts else []


def best_model(points: list[RunOutcome], args: Args) -> list[str]:
    """The most accurate model (or activation) and whether it beats the next one beyond noise."""
    from reportgen.analysis.model_observers import _by_preset

    ranked = sorted(_by_preset(points).values(), key=_mean, reverse=True)
    if len(ranked) < 2:
        return []
    best, second = ranked[:2]
    return [f"{w.describe_run(best)} is the most accurate ({acc_text(best)}, {edge(best, second, w.describe_run(second))})."]


def first_finding(observer):
    """An answer that is the observer's own first finding (for observers whose first sentence is their claim)."""
    def answer(points: list[RunOutcome], args: Args) -> list[str]:
        return observer(points, args)[:1]
    answer.__doc__ = "The observer's first finding."
    return answer


def question_answer(sentences_per_observer: list[list[str]]) -> list[str]:
    """At most MAX_SENTENCES sentences, in observer order, each said once."""
    answer: list[str] = []
    for sentences in sentences_per_observer:
        for sentence in sentences:
            if sentence not in answer and len(answer) < MAX_SENTENCES:
                answer.append(sentence)
    return answer


def seeds_behind(points: list[RunOutcome]) -> int:
    return max((count_seeds(p) for p in points), default=0)


def question_prose(spec: Any, question: Any, present: list[RunOutcome], said: set[str] | None = None,
                   named: set[str] | None = None) -> tuple[list[str], list[str]]:
    """(the answer, at most three sentences; the findings, one claim each), none of them in `said` already.

    `said` collects the findings of earlier sections, so that no sentence appears in two sections; `named`
    collects the model labels already given in full, so that a later section uses the short names.
    """
    if not present or not question.observers:
        return [], []
    from reportgen.analysis.observations import answer, observe

    said = set() if said is None else said
    reply = question_answer([answer(o.kind, present, o.args) for o in question.observers])
    findings = [s for o in question.observers for s in observe(o.kind, present, o.args)]
    findings = [s for s in dict.fromkeys(findings) if s not in said and s not in reply]
    said.update(findings)
    # How many seeds stand behind the numbers is said once for the whole report (report.build_context).
    texts = shorten_labels([*reply, *findings], spec, named)
    return texts[:len(reply)], texts[len(reply):]


def shorten_labels(texts: list[str], spec: Any, seen: set[str] | None = None) -> list[str]:
    """A model's full label at its first mention in these texts (or earlier ones, in `seen`), its `short` name after."""
    names = sorted(((p.label, p.short) for p in spec.models.values() if p.short and p.short != p.label),
                   key=lambda pair: -len(pair[0]))  # longest first: no label is cut inside a longer one
    seen = set() if seen is None else seen
    shortened = []
    for text in texts:
        for label, short in names:
            first = text.find(label) if label not in seen else -1
            if label in text:
                seen.add(label)
            cut = first + len(label) if first >= 0 else 0
            text = text[:cut] + text[cut:].replace(label, short)
        shortened.append(text)
    return shortened
