"""Issue 17's check: how close `reportgen plan`'s cold-cache estimate comes to what a real cold build took.

    python -m benchmarks.estimate_accuracy --cache-dir /work/coldcache --profile cpu [--spec experiments.toml]

The cache must hold a complete build of the profile. The estimate is computed as on a cold cache (against
an empty temporary cache folder, so every speed is probed here, now), while the actual seconds are read from
the cache's per-epoch timings. Two tables: per speed key (architecture, input size, batch), the probe's
seconds per epoch against the cache's median; per question and in total, estimated against actual seconds.
A cache trained under load is uniformly slower than an idle probe, so read the spread of the ratios between
rows, not their level; the "÷ median" column divides each ratio by the median ratio to show that spread.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path
from typing import Any

from reportgen.cache import Entry
from reportgen.estimate import (UPPER_BOUND, PlanEstimate, Speed, estimate_plan, format_seconds, load_entries,
                                measured_speeds, probe_speed, speed_key)
from reportgen.plan import plan_jobs, plan_question
from reportgen.results import Budget, decide
from reportgen.spec import Spec, load_spec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir", type=Path, required=True, help="a cache holding a complete build")
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--spec", type=Path, default=Path("experiments.toml"))
    parser.add_argument("--data-dir", type=Path, default=None, help="default: REPORTGEN_DATA_DIR and the usual search")
    parser.add_argument("--seeds", type=int, default=None)
    args = parser.parse_args()

    spec = load_spec(args.spec)
    entries = load_entries(args.cache_dir)
    probed: dict[str, tuple[dict[str, Any], Speed]] = {}

    def recording_probe(request: dict[str, Any]) -> Speed:
        speed = probe_speed(request, data_dir=args.data_dir)
        probed[speed_key(request)] = (request, speed)
        return speed

    qids = list(spec.questions)
    with tempfile.TemporaryDirectory() as empty_cache:  # the cold cache: nothing measured, nothing cached
        estimate = estimate_plan(spec, qids, args.profile, "cpu", args.seeds, Path(empty_cache), recording_probe)
    print_speed_table(probed, entries)
    print()
    print_question_table(spec, qids, args.profile, args.seeds, estimate, entries)


# ---------------------------------------------------------------- speeds

def cached_epoch_seconds(entries: dict[str, Entry]) -> dict[str, list[tuple[dict[str, Any], float]]]:
    """Per speed key, (request, seconds) of every cached epoch."""
    found: dict[str, list[tuple[dict[str, Any], float]]] = {}
    for entry in entries.values():
        found.setdefault(speed_key(entry.request), []).extend((entry.request, e.seconds) for e in entry.epochs)
    return found


def print_speed_table(probed: dict[str, tuple[dict[str, Any], Speed]], entries: dict[str, Entry]) -> None:
    cached = cached_epoch_seconds(entries)
    rows = []
    for key, (request, speed) in probed.items():
        if key not in cached:
            continue
        # Compare like with like: the probe's prediction for the subset the cached epochs used.
        cached_request = cached[key][0][0]
        predicted = speed.epoch_seconds(cached_request)
        actual = statistics.median(seconds for _, seconds in cached[key])
        rows.append((architecture_name(request), predicted, actual, actual / predicted))
    middle = statistics.median(r[3] for r in rows) if rows else 1.0
    print(f"{'architecture':34} {'probe s/epoch':>13} {'cache s/epoch':>13} {'cache/probe':>11} {'÷ median':>9}")
    for name, predicted, actual, ratio in sorted(rows):
        print(f"{name:34} {predicted:13.2f} {actual:13.2f} {ratio:11.2f} {ratio / middle:9.2f}")


def architecture_name(request: dict[str, Any]) -> str:
    args = request["model_args"]
    text = request["arch"] + (" bn" if args.get("batch_norm") else "")
    if "hidden" in args:
        text += " " + "-".join(str(h) for h in args["hidden"])
    extra = {k: v for k, v in args.items() if k not in ("hidden", "batch_norm")}
    if extra:
        text += " " + ",".join(f"{k}={v}" for k, v in sorted(extra.items()))
    return f"{text} {request['image_size']}px {request['optimizer']}"


# ---------------------------------------------------------------- questions

Actual = tuple[float, float]  # (seconds the epochs took, epochs × their speed key's median epoch)


def actual_seconds(entry: Entry | None, budgets: list[Budget], typical: dict[str, Speed]) -> Actual | None:
    """The cached seconds of the epochs the budgets need, and the same epochs at the median epoch's speed
    (which leaves out epochs slowed by bursts of load); None when the cache lacks the run or epochs."""
    if entry is None:
        return None
    reaches = [decide(entry.epochs, budget) for budget in budgets]
    if any(reach is None for reach in reaches):
        return None
    epochs = max(reach[0] for reach in reaches)
    steady = epochs * typical[speed_key(entry.request)].epoch_seconds(entry.request)
    return sum(e.seconds for e in entry.epochs[:epochs]), steady


def summed(parts: list[Actual | None]) -> Actual | None:
    return None if None in parts else (sum(p[0] for p in parts), sum(p[1] for p in parts))


def question_actual(spec: Spec, qid: str, profile: str, seeds: int | None, entries: dict[str, Entry],
                    typical: dict[str, Speed]) -> Actual | None:
    """Seconds a cold build spent on the question's own budgets; a run shared by questions counts in each."""
    budgets: dict[str, list[Budget]] = {}
    for run in plan_question(spec, qid, profile, "cpu", seeds):
        budgets.setdefault(run.key, []).append(run.budget)
    return summed([actual_seconds(entries.get(key), b, typical) for key, b in budgets.items()])


def total_actual(spec: Spec, qids: list[str], profile: str, seeds: int | None, entries: dict[str, Entry],
                 typical: dict[str, Speed]) -> Actual | None:
    return summed([actual_seconds(entries.get(job.key), list(job.budgets), typical)
                   for job in plan_jobs(spec, qids, profile, "cpu", seeds)])


def print_question_table(spec: Spec, qids: list[str], profile: str, seeds: int | None, estimate: PlanEstimate,
                         entries: dict[str, Entry]) -> None:
    typical = measured_speeds(entries.values(), "cpu")
    print(f"{'question':10} {'estimated':>16} {'of it ≤':>14} {'actual':>14} {'est/actual':>10} "
          f"{'actual, median epochs':>22} {'est/that':>8}")
    for qid in qids:
        runs, seconds, marker = estimate.question_estimate(qid)
        if not estimate.questions[qid]:
            continue
        upper = estimate.question_upper_bound_seconds(qid)
        print_row(qid, seconds, marker, upper, question_actual(spec, qid, profile, seeds, entries, typical))
    print_row("total", estimate.total_seconds, estimate.total_marker, estimate.upper_bound_seconds,
              total_actual(spec, qids, profile, seeds, entries, typical))
    print("\nactual, median epochs: the same epochs at the median epoch's speed of their model in the cache,\n"
          "so bursts of load during the cached build do not count; est/that isolates the probe and epoch counts.")


def print_row(name: str, estimated: float, marker: str, upper: float, actual: Actual | None) -> None:
    upper_text = format_seconds(upper, UPPER_BOUND) if upper else ""
    if actual is None:
        print(f"{name:10} {format_seconds(estimated, marker):>16} {upper_text:>14} {'not cached':>14}")
        return
    took, steady = actual
    print(f"{name:10} {format_seconds(estimated, marker):>16} {upper_text:>14} {format_seconds(took):>14} "
          f"{estimated / took:10.2f} {format_seconds(steady):>22} {estimated / steady:8.2f}")


if __name__ == "__main__":
    main()
