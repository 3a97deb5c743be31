"""Families of comparisons and their correction.

A family is every pairwise comparison one observer could state about one question (each observer says which,
from the same points it writes about), not only the ones it prints: the observers pick the best setting first and
test it against the rest, so testing only the printed pairs at 95 % each would let luck pick the winner. Every
interval of a family of m comparisons is taken at level 1 − α/m (Bonferroni): all of them cover their true
differences together with probability ≥ 1 − α, so every verdict read off them (ahead: excludes zero; equivalent:
inside ±margin) holds together, and the printed interval is exactly the one the verdict was read from.

A build that adds seeds until its answers resolve (`--resolve`, reportgen/resolve.py) looks at each comparison up to
`looks` times; every look's interval is then taken at 1 − α/(m · looks), so that the intervals of all looks hold
together (Bonferroni over the looks as well: an equal share of α spent at each).
"""
from __future__ import annotations

import itertools
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Mapping

from reportgen.analysis.aggregate import compare_points
from reportgen.analysis.metrics import METRICS
from reportgen.analysis.stats import ALPHA, Comparison
from reportgen.results import RunOutcome

# The spec's margins for the observer being run (question's, then the observer's own): observers are called as
# (outcomes, args), and a margin is the question's judgement, not an argument of the observer.
_MARGINS: ContextVar[Mapping[str, float]] = ContextVar("margins", default={})
# How many looks a sequential build (resolve.py) may take at each comparison: set once by the command that builds.
_LOOKS: ContextVar[int] = ContextVar("looks", default=1)
# The comparisons judged inside a `recording_claims` block: what an answer's sentences stated (resolve.py).
_CLAIMS: ContextVar[list["Claim"] | None] = ContextVar("claims", default=None)


@contextmanager
def margins_in_force(overrides: Mapping[str, float]) -> Iterator[None]:
    """Within the block, families take these margins (metric → margin) over the metric registry's defaults."""
    token = _MARGINS.set(dict(overrides))
    try:
        yield
    finally:
        _MARGINS.reset(token)


@contextmanager
def looks_in_force(looks: int) -> Iterator[None]:
    """Within the block, every family spends its error rate over `looks` looks (1: a build of fixed seeds)."""
    token = _LOOKS.set(max(1, int(looks)))
    try:
        yield
    finally:
        _LOOKS.reset(token)


@contextmanager
def recording_claims() -> Iterator[list["Claim"]]:
    """Collects every comparison judged within the block (the claims of the sentences written there)."""
    claims: list[Claim] = []
    token = _CLAIMS.set(claims)
    try:
        yield claims
    finally:
        _CLAIMS.reset(token)


@dataclass(frozen=True)
class Pair:
    a: RunOutcome
    b: RunOutcome
    metric: str  # a per-run metric of analysis/metrics.py


def all_pairs(points: Iterable[RunOutcome], metric: str) -> list[Pair]:
    """Every unordered pair of the points on one metric: what an observer ranking them could state."""
    return [Pair(a, b, metric) for a, b in itertools.combinations(list(points), 2)]


@dataclass
class Family:
    """The comparisons one observer could state for one question, judged together at level 1 − α/(size · looks)."""

    observer: str
    pairs: list[Pair]
    what: str = ""  # the family in words: 'every pair of learning rates per model'
    margins: dict[str, float | None] = field(default_factory=dict)  # the spec's overrides in force when built
    looks: int = 1  # the looks a sequential build may take (resolve.py), in force when built
    _judged: dict[tuple[int, int, str], Comparison] = field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, observer: str, pairs: list[Pair], what: str = "") -> "Family":
        return cls(observer, pairs, what, dict(_MARGINS.get()), _LOOKS.get())

    @property
    def size(self) -> int:
        return len(self.pairs)

    @property
    def level(self) -> float:
        return 1 - ALPHA / (max(1, self.size) * self.looks)

    def margin(self, metric: str) -> float | None:
        return self.margins.get(metric, METRICS.get(metric).margin)

    def compare(self, a: RunOutcome, b: RunOutcome, metric: str) -> Comparison:
        """a − b on `metric` at the family's level and margin (paired or Welch: analysis/pairing.py)."""
        key = (id(a), id(b), metric)
        if key not in self._judged:
            self._judged[key] = compare_points(a, b, value_of(metric), self.level, self.margin(metric))
        if (claims := _CLAIMS.get()) is not None:
            claims.append(Claim(self.observer, a, b, metric, self._judged[key]))
        return self._judged[key]

    def comparisons(self) -> list[tuple[Pair, Comparison]]:
        return [(p, self.compare(p.a, p.b, p.metric)) for p in self.pairs]

    def tests(self) -> list[str]:
        """The tests its comparisons with a noise estimate used, in order of first use."""
        return list(dict.fromkeys(c.test for _, c in self.comparisons() if c.low is not None))


@dataclass(frozen=True)
class Claim:
    """One comparison a sentence stated: a − b on `metric`, as its family judged it."""

    observer: str
    a: RunOutcome
    b: RunOutcome
    metric: str
    comparison: Comparison


def value_of(metric: str) -> Callable[[Any], Any]:
    """The per-run value of a metric; non-numbers (an epoch count's 'not reached') are left out by the comparison."""
    return METRICS.get(metric).value


def empty_family(observer: str) -> Family:
    return Family.of(observer, [])
