"""Run points: the runs of one grid point over its seeds, as one outcome the tables, figures and
observers read (its curves are the seeds' per-epoch means) with every seed's own outcome kept beside it.

With one seed a point's result is that run's own result, so a one-seed report reads as it always did.
"""
from __future__ import annotations

import dataclasses
import math
from collections import Counter
from dataclasses import dataclass
from statistics import fmean, median
from typing import Any, Callable

from reportgen.analysis import pairing
from reportgen.analysis.metrics import epochs_to_target
from reportgen.analysis.stats import ALPHA, Comparison, Summary, compare, summarize
from reportgen.results import EpochMetrics, RunOutcome, RunResult


@dataclass(frozen=True)
class PointOutcome(RunOutcome):
    """A grid point: `result` holds the mean curves of the seeds that are in the cache."""

    seeds: tuple[RunOutcome, ...] = ()

    @property
    def measured(self) -> list[RunResult]:
        return [o.result for o in self.seeds if o.result is not None and o.result.epochs]

    @property
    def n(self) -> int:
        return len(self.measured)


def aggregate_points(outcomes: list[RunOutcome]) -> list[PointOutcome]:
    """One PointOutcome per grid point (runs equal in every label but the seed), in order of first appearance."""
    groups: dict[str, list[RunOutcome]] = {}
    for o in outcomes:
        if isinstance(o, PointOutcome):
            return list(outcomes)  # already aggregated
        groups.setdefault(_point_id(o), []).append(o)
    return [_point(members) for members in groups.values()]


def _point_id(o: RunOutcome) -> str:
    labels = {k: v for k, v in o.planned.labels.items() if k != "seed"}
    return repr((sorted(labels.items(), key=str), o.planned.budget))


def _point(members: list[RunOutcome]) -> PointOutcome:
    seeds = [o.planned.labels.get("seed") for o in members]
    labels = dict(members[0].planned.labels) | {"seed": seeds[0] if len(members) == 1 else None}
    planned = dataclasses.replace(members[0].planned, labels=labels)
    present = [o.result for o in members if o.result is not None]
    result = None
    if len(present) == 1 and len(members) == 1:
        result = present[0]
    elif present:
        result = mean_result(present)
    return PointOutcome(planned, result, tuple(members))


def mean_result(results: list[RunResult]) -> RunResult:
    """The seeds' mean trajectory: epoch k averages the seeds that reached epoch k."""
    longest = max(len(r.epochs) for r in results)
    epochs = []
    for k in range(longest):
        at = [r.epochs[k] for r in results if len(r.epochs) > k]
        epochs.append(EpochMetrics(k + 1, _mean([e.train_loss for e in at]), _mean([e.test_loss for e in at]),
                                   _mean([e.test_accuracy for e in at]), _mean([e.seconds for e in at])))
    probes = {name: [_mean(list(step)) for step in zip(*(r.probes.get(name, []) for r in results))]
              for name in results[0].probes}
    first = results[0]
    return RunResult(first.key, first.request, first.params, epochs, _common_stop(results), probes, first.budget,
                     _common_machine(results))


def _common_machine(results: list[RunResult]) -> dict[str, Any] | None:
    """What the seeds' machine records agree on (the processor, the lockstep group's size ...);
    a field they differ in is left out, and so is the record when one seed has none."""
    machines = [r.machine for r in results]
    if any(m is None for m in machines):
        return None
    return {k: v for k, v in machines[0].items() if all(m.get(k) == v for m in machines[1:])}


def _mean(values: list[float]) -> float:
    return fmean(values) if all(math.isfinite(v) for v in values) else math.nan


def _common_stop(results: list[RunResult]) -> str:
    """The stop reason most seeds share (ties: the first seed's)."""
    counts = Counter(r.stop_reason for r in results)
    return max(counts, key=lambda reason: (counts[reason], reason == results[0].stop_reason))


# ---------------------------------------------------------------- per-seed values

def seed_values(point: RunOutcome, value: Callable[[RunResult], Any]) -> list[Any]:
    """`value` of each measured seed of the point (a plain outcome counts as one seed)."""
    results = point.measured if isinstance(point, PointOutcome) else ([point.result] if point.result else [])
    return [value(r) for r in results]


def seed_summary(point: RunOutcome, value: Callable[[RunResult], Any]) -> Summary:
    return summarize([v for v in seed_values(point, value) if isinstance(v, (int, float)) and not isinstance(v, bool)])


def seed_numbers(point: RunOutcome, value: Callable[[RunResult], Any]) -> dict[Any, tuple[float, dict]]:
    """{seed: (value, request)} of the point's measured seeds whose value is a finite number."""
    members = point.seeds if isinstance(point, PointOutcome) else (point,)
    found = {}
    for o in members:
        if o.result is None or not o.result.epochs:
            continue
        v = value(o.result)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
            found[o.planned.labels.get("seed")] = (float(v), o.planned.request)
    return found


def compare_points(a: RunOutcome, b: RunOutcome, value: Callable[[RunResult], Any], level: float = 1 - ALPHA,
                   margin: float | None = None) -> Comparison:
    """a − b over seeds at `level`: paired t when the seeds pair (analysis/pairing.py), else Welch; and the verdict."""
    na, nb = seed_numbers(a, value), seed_numbers(b, value)
    is_paired = pairing.paired(((s, r) for s, (_, r) in na.items()), ((s, r) for s, (_, r) in nb.items()))
    order = sorted(na, key=repr) if is_paired else None
    va = [na[s][0] for s in order] if order else [v for v, _ in na.values()]
    vb = [nb[s][0] for s in order] if order else [v for v, _ in nb.values()]
    return compare(va, vb, level, margin, paired=is_paired)


def count_seeds(point: RunOutcome) -> int:
    return point.n if isinstance(point, PointOutcome) else int(point.result is not None)


def seeds_text(points: list[RunOutcome]) -> str:
    """How many seeds stand behind the measured points: '3', '2–3'; '' when none is measured or all have one."""
    counts = sorted({count_seeds(p) for p in points if p.result is not None})
    if not counts or counts[-1] < 2:
        return ""
    return str(counts[0]) if len(counts) == 1 else f"{counts[0]}–{counts[-1]}"


def failed_seeds(point: RunOutcome, failed: Callable[[RunResult], bool]) -> tuple[int, int]:
    """(seeds for which `failed` holds, measured seeds)."""
    flags = seed_values(point, failed)
    return sum(bool(f) for f in flags), len(flags)


def epochs_to_target_summary(point: RunOutcome) -> tuple[float | None, int, int, list[int]]:
    """(median epoch of the seeds that reached the target, reached, measured, their epochs)."""
    return target_epochs(seed_values(point, epochs_to_target))


def target_epochs(values: list[Any]) -> tuple[float | None, int, int, list[int]]:
    """Per-seed epochs to a target ('not reached' where missed) → (median of the reached, reached, seeds, epochs)."""
    reached = sorted(v for v in values if isinstance(v, int))
    return (median(reached) if reached else None), len(reached), len(values), reached
