"""A question's prose: its answer (one sentence per ask; without asks, its observers' answers, at most three
sentences), its findings, and the note saying which test each of its families used; sentences are said once per
report and model labels shortened after their first mention.
"""
from __future__ import annotations

import re
from typing import Any

from reportgen.analysis.ask_answers import AskContext, LoadSplit
from reportgen.analysis.asks import NOT_MEASURED, ask_sentence, covered
from reportgen.analysis.families import Claim, recording_claims
from reportgen.analysis.noise import INTERVAL_TEXT, family_note
from reportgen.analysis.observations import answer, family, observe
from reportgen.results import RunOutcome

MAX_SENTENCES = 3


def question_answer(sentences_per_observer: list[list[str]]) -> list[str]:
    """At most MAX_SENTENCES sentences, in observer order, each said once."""
    reply: list[str] = []
    for sentences in sentences_per_observer:
        for sentence in sentences:
            if sentence not in reply and len(reply) < MAX_SENTENCES:
                reply.append(sentence)
    return reply


def question_prose(spec: Any, question: Any, present: list[RunOutcome], said: set[str] | None = None,
                   named: set[str] | None = None, load_split: LoadSplit | None = None,
                   profile: str = "") -> tuple[list[str], list[str]]:
    """(the answer; the findings, one claim each), none of them in `said` already.

    The answer is one sentence per ask of the question, in order (analysis/asks.py), or without asks its
    observers' answers, at most three sentences. `said` collects the findings of earlier sections, so that no
    sentence appears in two sections; `named` collects the model labels already given in full, so that a later
    section uses the short names; `load_split` reads a data set for the asks about one.
    """
    asks = getattr(question, "asks", [])
    if not asks and (not present or not question.observers):
        return [], []
    said = set() if said is None else said
    reply = _reply(question, present, load_split, profile)
    left_out = covered(asks)  # observers whose findings an ask's sentence says in full
    findings = [s for o in question.observers if o.kind not in left_out
                for s in observe(o.kind, present, o.args, margins(question, o))]
    findings = [s for s in dict.fromkeys(_unsaid(f, reply) for f in findings) if s and s not in said]
    said.update(findings)
    said.update(reply)  # a later section's finding that one of these answers said word for word is left out too
    # How many seeds stand behind the numbers is said once for the whole report (report.build_context).
    texts = shorten_labels([*reply, *findings], spec, named)
    return texts[:len(reply)], texts[len(reply):]


def answer_claims(question: Any, present: list[RunOutcome], load_split: LoadSplit | None = None,
                  profile: str = "") -> list[Claim]:
    """The comparisons the question's answer states, each once, in the order its sentences state them."""
    if not present or not (getattr(question, "asks", []) or question.observers):
        return []
    with recording_claims() as claims:
        _reply(question, present, load_split, profile)
    unique = {(id(c.a), id(c.b), c.metric): c for c in claims}
    return list(unique.values())


def _reply(question: Any, present: list[RunOutcome], load_split: LoadSplit | None, profile: str) -> list[str]:
    """The answer's sentences: one per ask, or without asks the observers' answers."""
    asks = getattr(question, "asks", [])
    if asks:
        context = ask_context(question, present, load_split, profile)
        return merge_notices(list(dict.fromkeys(ask_sentence(a, context) for a in asks)))
    return question_answer([answer(o.kind, present, o.args, margins(question, o)) for o in question.observers])


def merge_notices(sentences: list[str]) -> list[str]:
    """Consecutive 'Not measured: a.' 'Not measured: b.' as one 'Not measured: a; b.' (an untrained question)."""
    merged: list[str] = []
    for sentence in sentences:
        if merged and sentence.startswith(NOT_MEASURED) and merged[-1].startswith(NOT_MEASURED):
            merged[-1] = f"{merged[-1][:-1]}; {sentence[len(NOT_MEASURED):]}"
        else:
            merged.append(sentence)
    return merged


def _unsaid(finding: str, reply: list[str]) -> str:
    """The finding without what the answer says already: its sentences, whole or as a clause (an answer may join
    findings with ';' or lower a sentence's first letter), and its clauses that give a comparison the answer gave
    with the same interval; '' when the answer says all of it."""
    answer = " ".join(reply)
    kept = [part for part in re.split(r"(?<=\.)\s+(?=[A-Z])", finding) if part.rstrip(".").lower() not in answer.lower()]
    return " ".join(s for s in (_without_repeated_comparisons(part, answer) for part in kept) if s)


def _without_repeated_comparisons(sentence: str, answer: str) -> str:
    """The sentence without its ';'-clauses whose interval the answer printed (the same comparison, said twice)."""
    clauses = sentence.rstrip(".").split("; ")
    kept = [c for c in clauses if not any(ci in answer for ci in INTERVAL_TEXT.findall(c))]
    if len(kept) == len(clauses):
        return sentence
    text = "; ".join(kept)
    return f"{text[:1].upper()}{text[1:]}." if text else ""


def ask_context(question: Any, present: list[RunOutcome], load_split: LoadSplit | None = None,
                profile: str = "") -> AskContext:
    """What the question's asks read: its points, its observers' families, arguments and margins."""
    families = {o.kind: f for o in question.observers
                if present and (f := family(o.kind, present, o.args, margins(question, o))) is not None}
    return AskContext(present, families,
                      {o.kind: o.args for o in question.observers},
                      {o.kind: margins(question, o) for o in question.observers}, profile, load_split)


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


def margins(question: Any, observer: Any) -> dict[str, float]:
    """The spec's margins for one observer of a question: the question's, then the observer's own, each a number
    (for the observer's ranked metric: its `metric` argument, else final accuracy) or a table by metric."""
    primary = getattr(observer.args, "metric", "final_accuracy")
    found: dict[str, float] = {}
    for given in (getattr(question, "margin", None), getattr(observer, "margin", None)):
        if isinstance(given, (int, float)):
            found[primary] = float(given)
        elif given:
            found.update(given)
    return found


def question_families(question: Any, present: list[RunOutcome]) -> list[Any]:
    """Every family of comparisons the question's observers could state, with the spec's margins."""
    if not present:
        return []
    return [f for o in question.observers
            if (f := family(o.kind, present, o.args, margins(question, o))) is not None]


def question_tests_note(question: Any, present: list[RunOutcome]) -> str:
    """'Tests: lr_effect: 12 comparisons (…), paired t, 99.6 % intervals; accuracy gaps of …' ('' without any)."""
    return family_note(question_families(question, present))
