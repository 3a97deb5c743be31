"""Seeds until the answers resolve: the sequential design behind `reportgen build --resolve`.

Look 1 judges every comparison an answer states (analysis/prose.answer_claims) with the planned seeds. Each claim
still unresolved adds `seeds_per_stage` seeds to both settings it compares (never past `max_seeds`); the claims are
judged again on the larger sample, and so on, until every claim is ahead or equivalent, or no setting of an open
claim may grow. The design fixes its looks in advance, K = 1 + ⌈(max_seeds − planned seeds) / seeds_per_stage⌉,
and every look's intervals are taken at 1 − α/(m · K) (analysis/families.looks_in_force): the intervals of all
looks then hold together at 1 − α (Bonferroni over comparisons and looks, an equal share of α spent at each look),
so stopping at whichever look resolves a claim does not inflate the error rate. What is added depends only on the
measured numbers, so the same spec, seeds and device add the same seeds and give the same report.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from reportgen.analysis.aggregate import aggregate_points
from reportgen.analysis.families import Claim
from reportgen.analysis.naming import name_runs
from reportgen.analysis.noise import seeds_n
from reportgen.analysis.observations import OBSERVERS
from reportgen.analysis.prose import answer_claims
from reportgen.analysis.stats import NO_NOISE_ESTIMATE, UNRESOLVED
from reportgen.analysis.wording import plural
from reportgen.errors import SpecError
from reportgen.plan import SeedPlan, setting_key
from reportgen.results import PlannedRun, RunOutcome

Outcomes = dict[str, list[RunOutcome]]  # question id → its planned runs with results (runner.collect_outcomes)


@dataclass(frozen=True)
class Design:
    """How far `--resolve` may go: seeds per setting up to `cap`, `step` at a time, from `planned` (the fewest
    seeds any setting of the build was planned with)."""

    planned: int
    cap: int
    step: int

    @property
    def looks(self) -> int:
        return 1 + max(0, math.ceil((self.cap - self.planned) / self.step))

    def describe(self) -> str:
        return f"up to {self.cap} seeds per setting, {self.step} per stage: at most {self.looks} looks"


@dataclass(frozen=True)
class OpenClaim:
    """An answer's comparison that its seeds do not decide yet, and the settings it would add seeds to."""

    question: str
    text: str  # 'q1.5 capacity: MLP (wide) vs MLP, final accuracy, unresolved with 3 seeds'
    settings: frozenset[str]  # setting keys (plan.setting_key) of both sides


@dataclass
class Look:
    look: int
    seeds: dict[str, int]  # setting key → seeds it had at this look
    open: list[OpenClaim]


@dataclass
class Resolution:
    """Where the sequential build stopped: the seed plan it ended with, each look, and why each seed was added."""

    design: Design
    plan: SeedPlan
    looks: list[Look] = field(default_factory=list)
    reasons: dict[str, list[str]] = field(default_factory=dict)  # setting key → the open claims that grew it
    names: dict[str, str] = field(default_factory=dict)  # setting key → 'q1.5: MLP (wide)'

    @property
    def stopped_because(self) -> str:
        last = self.looks[-1]
        if not last.open:
            return "every answer claim is resolved"
        return f"{plural(len(last.open), 'answer claim')} still unresolved with every setting they compare at the cap"

    def to_dict(self) -> dict[str, Any]:
        """For results.json and the report: the design, each look, and every setting that got seeds."""
        return {
            "cap": self.design.cap, "seeds_per_stage": self.design.step, "planned": self.design.planned,
            "looks_allowed": self.design.looks, "stopped_because": self.stopped_because,
            "looks": [{"look": l.look, "open_claims": [c.text for c in l.open],
                       "seeds_total": sum(l.seeds.values())} for l in self.looks],
            "added": [{"setting": self.names.get(key, key[:12]), "key": key, "seeds_added": n,
                       "seeds": self.looks[-1].seeds.get(key), "because": self.reasons.get(key, [])}
                      for key, n in sorted(self.plan.added.items(), key=lambda kv: self.names.get(kv[0], kv[0])) if n],
        }


def design_for(spec: Any, profile: str, planned: int, cap: int | None = None, step: int | None = None) -> Design:
    """The profile's design (max_seeds, seeds_per_stage), the CLI's overrides first; a clear error without a cap."""
    settings = spec.profiles[profile]
    cap = cap or settings.max_seeds
    if cap is None:
        raise SpecError(f"--resolve needs a cap on seeds: set `max_seeds` under [profiles.{profile}] in the spec, "
                        "or pass --max-seeds N")
    if cap <= planned:
        raise SpecError(f"--resolve: the cap of {cap} seeds is not above the {planned} seeds the profile "
                        f"{profile!r} plans already; raise max_seeds (or --max-seeds)")
    return Design(planned, cap, step or settings.seeds_per_stage)


def seeds_per_setting(outcomes: Outcomes) -> dict[str, int]:
    """Setting key → how many distinct seeds the build plans for it (the most any question plans)."""
    return _seeds_of(o.planned for runs in outcomes.values() for o in runs)


def _seeds_of(planned: Iterable[PlannedRun]) -> dict[str, int]:
    seeds: dict[str, set] = {}
    for run in planned:
        seeds.setdefault(setting_key(run.request), set()).add(run.request["seed"])
    return {key: len(found) for key, found in seeds.items()}


def open_claims(spec: Any, outcomes: Outcomes, load_split: Callable | None = None, profile: str = "") -> list[OpenClaim]:
    """Every answer claim of every question that its seeds leave open: unresolved, or without a noise estimate
    where both sides measured something (one seed, or a target some seeds never reached)."""
    found = []
    for qid, runs in outcomes.items():
        present = [p for p in aggregate_points(runs) if p.result is not None]
        claims = answer_claims(spec.questions[qid], present, load_split, profile)
        name = name_runs(present)
        found += [_open_claim(qid, c, name) for c in claims if _is_open(c)]
    return found


def _is_open(claim: Claim) -> bool:
    c = claim.comparison
    if c.verdict == UNRESOLVED:
        return True
    return c.verdict == NO_NOISE_ESTIMATE and c.n_a >= 1 and c.n_b >= 1


def _open_claim(qid: str, claim: Claim, name: Callable[[RunOutcome], str]) -> OpenClaim:
    text = (f"{qid} {claim.observer}: {name(claim.a)} vs {name(claim.b)}, {claim.metric.replace('_', ' ')}, "
            f"{claim.comparison.verdict} with {seeds_n(claim.comparison)}")
    settings = frozenset(setting_key(o.planned.request) for point in (claim.a, claim.b)
                         for o in getattr(point, "seeds", (point,)))
    return OpenClaim(qid, text, settings)


def resolve(design: Design, start: SeedPlan, measure: Callable[[SeedPlan], Outcomes],
            judge: Callable[[Outcomes], list[OpenClaim]]) -> tuple[Resolution, Outcomes]:
    """Look, grow the open claims' settings by one stage, look again: until nothing is open or nothing may grow.

    `measure(plan)` trains what the plan lacks and returns every question's outcomes under it; `judge` lists the
    open claims (open_claims, inside looks_in_force(design.looks)). Returns where it stopped and the last outcomes.
    """
    resolution, plan = Resolution(design, start), start
    for look in range(1, design.looks + 1):
        outcomes = measure(plan)
        seeds, still_open = seeds_per_setting(outcomes), judge(outcomes)
        resolution.looks.append(Look(look, seeds, still_open))
        grow = sorted({s for c in still_open for s in c.settings if seeds.get(s, 0) < design.cap})
        if not grow or look == design.looks:
            break
        for claim in still_open:
            for s in claim.settings & set(grow):
                reasons = resolution.reasons.setdefault(s, [])
                reasons += [claim.text] if claim.text not in reasons else []
        plan = plan.adding(grow, design.step, design.cap, seeds)
    resolution.plan = plan
    resolution.names = setting_names(outcomes)
    return resolution, outcomes


def setting_names(outcomes: Outcomes) -> dict[str, str]:
    """Setting key → 'q1.5: MLP (wide), lr 0.1', named as the first question that plans it names it."""
    names: dict[str, str] = {}
    for qid, runs in outcomes.items():
        name = name_runs(runs)
        for o in runs:
            names.setdefault(setting_key(o.planned.request), f"{qid}: {name(o)}")
    return names


def worst_case_plan(spec: Any, outcomes: Outcomes, design: Design, start: SeedPlan) -> SeedPlan:
    """Every setting of every question whose observers compare anything, at the cap: what `--resolve` can cost
    at most (`reportgen plan --resolve`)."""
    seeds = seeds_per_setting(outcomes)
    compared = {key for qid, runs in outcomes.items()
                if any(OBSERVERS.get(o.kind).family is not None for o in spec.questions[qid].observers)
                for key in (setting_key(r.planned.request) for r in runs)}
    return SeedPlan(start.count, {key: design.cap - seeds[key] for key in sorted(compared) if seeds[key] < design.cap})


def planned_seeds(planned: Iterable[PlannedRun]) -> int:
    """The fewest seeds any setting of the planned runs has (the design's first look), read from the plan alone."""
    return min(_seeds_of(planned).values(), default=1)
