"""What a plan would train: per job new / extend / resume / cached, epochs to train and seconds, from cached epochs' speed
(same model and batch size on this device, scaled by samples) or a timed probe of a few steps. A stop-rule budget counts
its cap ("≤", an upper bound) unless cached siblings (same model, other lr or seed) were decided by it ("~": their most)."""
from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from reportgen.cache import CorruptEntry, Entry, RunCache
from reportgen.plan import RunJob, plan_jobs, plan_question
from reportgen.results import PROBE_STEPS, Budget, EpochMetrics, PlannedRun, decide

# Both data sets have the same splits; a request's None subset means the whole split.
SPLIT_SIZES = {"fashion-mnist": (60_000, 10_000), "mnist": (60_000, 10_000)}
PROBE_TIMED_STEPS = 3  # training steps the probe times, one batch each (after one untimed warm-up step)
EXACT, UPPER_BOUND, FROM_SIBLINGS = "", "≤", "~"
# A sibling that diverged or got stuck says nothing about how long a healthy run takes.
_UNINFORMATIVE_STOPS = ("diverged", "stuck at chance")


@dataclass(frozen=True)
class Speed:
    """Seconds per training sample and per test sample; `source` is "cache" or "probe"."""

    train: float
    test: float
    source: str

    def epoch_seconds(self, request: dict[str, Any]) -> float:
        n_train, n_test = epoch_samples(request)
        return self.train * n_train + self.test * n_test


@dataclass(frozen=True)
class JobEstimate:
    """One job's state against the cache, the epochs it would train and their estimated seconds."""

    job: RunJob
    state: str  # "new", "extend", "resume" or "cached" (see classify)
    epochs_cached: int
    epochs_to_train: int
    marker: str  # EXACT, UPPER_BOUND or FROM_SIBLINGS: how the epoch count was found
    seconds: float
    speed_source: str = ""  # "cache" or "probe"; "" when nothing trains


@dataclass(frozen=True)
class PlanEstimate:
    """Every job's estimate, which questions use which job, and the spec's model name per job."""

    jobs: list[JobEstimate]
    questions: dict[str, list[str]]  # question id → keys of the jobs it uses
    models: dict[str, str] = field(default_factory=dict)  # key → the spec's model name
    by_question: dict[str, tuple[int, float, str]] = field(default_factory=dict)  # see question_estimate

    def users(self, key: str) -> list[str]:
        """The questions that use the job, in plan order."""
        return [qid for qid, keys in self.questions.items() if key in keys]

    @property
    def to_train(self) -> list[JobEstimate]:
        return [e for e in self.jobs if e.state != "cached"]

    @property
    def cached_count(self) -> int:
        return len(self.jobs) - len(self.to_train)

    @property
    def total_seconds(self) -> float:
        return sum(e.seconds for e in self.to_train)

    @property
    def total_marker(self) -> str:
        return combine_markers(e.marker for e in self.to_train)

    def question_estimate(self, qid: str) -> tuple[int, float, str]:
        """(runs to train, seconds, marker) for the question's own budgets; a run shared by questions counts in each."""
        return self.by_question.get(qid, (0, 0.0, EXACT))


SpeedOf = Callable[[dict[str, Any]], Speed]
Probe = Callable[[dict[str, Any]], Speed]


# ---------------------------------------------------------------- speed

def speed_key(request: dict[str, Any]) -> str:
    """What fixes the cost of one sample: device, model, input size, batch size, optimizer."""
    fields = ("device", "arch", "model_args", "image_size", "batch_size", "optimizer")
    return json.dumps({k: request[k] for k in fields}, sort_keys=True)


def epoch_samples(request: dict[str, Any]) -> tuple[int, int]:
    """(training, test) samples one epoch of the request goes through."""
    full_train, full_test = SPLIT_SIZES.get(request["dataset"], SPLIT_SIZES["fashion-mnist"])
    train, test = request.get("train_subset"), request.get("test_subset")
    return min(train or full_train, full_train), min(test or full_test, full_test)


def measured_speeds(entries: Iterable[Entry], device: str) -> dict[str, Speed]:
    """Per speed key, the median seconds per (training + test) sample over every cached epoch on `device`."""
    rates: dict[str, list[float]] = {}
    for entry in entries:
        if entry.request.get("device") != device:
            continue
        samples = sum(epoch_samples(entry.request))
        rates.setdefault(speed_key(entry.request), []).extend(e.seconds / samples for e in entry.epochs)
    # The median, because one epoch slowed by another process should not move the estimate.
    return {key: Speed(statistics.median(r), statistics.median(r), "cache") for key, r in rates.items() if r}


class SpeedBook:
    """Measured speeds, else the probe's, probed once per speed key for the rest of the command."""

    def __init__(self, measured: dict[str, Speed], probe: Probe):
        self.known = dict(measured)
        self.probe = probe

    def __call__(self, request: dict[str, Any]) -> Speed:
        key = speed_key(request)
        if key not in self.known:
            self.known[key] = self.probe(request)
        return self.known[key]


def probe_speed(request: dict[str, Any], data_dir: Path | None = None, steps: int = PROBE_TIMED_STEPS) -> Speed:
    """Build the model and time a few training steps and test chunks on the real data, through the engine."""
    from reportgen import train
    from reportgen.data import load_split

    n_train, n_test = epoch_samples(request)
    probe = request | {"train_subset": min(n_train, request["batch_size"]),
                       "test_subset": min(n_test, request["test_batch_size"])}  # one batch of each
    splits = load_split(request["dataset"], True, data_dir), load_split(request["dataset"], False, data_dir)
    data = train.prepare_tensors(probe, splits)
    state = train.new_state(probe)

    def train_batch() -> None:
        train.train_steps(state, data, probe, None)

    def test_chunk() -> None:
        train.evaluate(state.model, data.test_x, data.test_y, probe["test_batch_size"])

    train_batch(), test_chunk()  # warm-up, untimed: the first calls allocate and pick kernels
    # Past the gradient-probe steps, as nearly all of a real epoch's steps are (probes cost ~20 %).
    state.steps_done = max(state.steps_done, PROBE_STEPS)
    train_seconds = _median_seconds(train_batch, steps, request["device"])
    test_seconds = _median_seconds(test_chunk, 2, request["device"])
    return Speed(train_seconds / len(data.train_y), test_seconds / len(data.test_y), "probe")


def _median_seconds(action: Callable[[], Any], repeats: int, device: str) -> float:
    """The median wall time of `repeats` calls: one call slowed by another process does not count."""
    import torch

    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        if device == "cuda":
            torch.cuda.synchronize()  # kernels run asynchronously; count them, not their launch
        times.append(time.perf_counter() - start)
    return statistics.median(times)


# ---------------------------------------------------------------- epochs and state

def classify(cached: list[EpochMetrics], budgets: Iterable[Budget], spec_budgets: Iterable[Budget]) -> str:
    """new: nothing cached; cached: every budget decided; extend: the cached epochs decide some budget the spec
    asks of this trajectory (`spec_budgets`), another needs more; resume: they decide none of them: an interrupted
    run, or one trained to a budget since removed (the cache records no target, so the two read the same)."""
    if not cached:
        return "new"
    if all(decide(cached, b) is not None for b in budgets):
        return "cached"
    return "extend" if any(decide(cached, b) is not None for b in spec_budgets) else "resume"


def epochs_reached(cached: list[EpochMetrics], budgets: Iterable[Budget],
                   siblings: list[Entry], lr: float | None = None) -> tuple[int, str]:
    """How many epochs the trajectory will have once every budget is decided, and how that count was found."""
    reaches = [_budget_reach(cached, b, siblings, lr) for b in budgets]
    # The longest budget decides; at equal length an exact count beats an estimate.
    return max(reaches, key=lambda r: (r[0], r[1] == EXACT), default=(len(cached), EXACT))


def _budget_reach(cached: list[EpochMetrics], budget: Budget, siblings: list[Entry], lr: float | None) -> tuple[int, str]:
    decided = decide(cached, budget)
    if decided is not None:
        return decided[0], EXACT
    if budget.until_accuracy is None and budget.plateau_patience is None:
        return budget.max_epochs, EXACT
    seen = sibling_epochs(siblings, budget, lr)
    if seen is None:
        return budget.max_epochs, UPPER_BOUND
    return min(budget.max_epochs, max(seen, len(cached) + 1)), FROM_SIBLINGS


def sibling_epochs(siblings: list[Entry], budget: Budget, lr: float | None = None) -> int | None:
    """The most epochs any sibling took to be decided by the budget; siblings with the same lr (other seeds)
    are preferred, as lr changes the epoch count most. None when no sibling's epochs decide it."""
    counts: dict[bool, list[int]] = {True: [], False: []}
    for sibling in siblings:
        decided = decide(sibling.epochs, budget)
        if decided is not None and decided[1] not in _UNINFORMATIVE_STOPS:
            counts[sibling.request.get("lr") == lr].append(decided[0])
    best = counts[True] or counts[False]
    return max(best) if best else None


def model_identity(request: dict[str, Any]) -> str:
    """The request without lr and seed: runs that share it are siblings."""
    return json.dumps({k: v for k, v in request.items() if k not in ("lr", "seed")}, sort_keys=True)


# ---------------------------------------------------------------- jobs and plans

def estimate_job(job: RunJob, entries: dict[str, Entry], speed_of: SpeedOf,
                 spec_budgets: Iterable[Budget] | None = None) -> JobEstimate:
    """One job against the cache: its state, the epochs it would train and their seconds."""
    cached = entries[job.key].epochs if job.key in entries else []
    state = classify(cached, job.budgets, spec_budgets if spec_budgets is not None else job.budgets)
    if state == "cached":
        return JobEstimate(job, state, len(cached), 0, EXACT, 0.0)
    return JobEstimate(job, state, len(cached), *_training_needed(job.request, cached, job.budgets, entries, speed_of))


def _training_needed(request: dict[str, Any], cached: list[EpochMetrics], budgets: Iterable[Budget],
                     entries: dict[str, Entry], speed_of: SpeedOf) -> tuple[int, str, float, str]:
    """(epochs to train, marker, seconds, speed source) to decide the budgets along this trajectory."""
    identity = model_identity(request)
    siblings = [e for e in entries.values() if model_identity(e.request) == identity and e.request != request]
    reach, marker = epochs_reached(cached, budgets, siblings, request["lr"])
    to_train = max(0, reach - len(cached))
    if not to_train:
        return 0, marker, 0.0, ""  # no speed needed, so no probe either
    speed = speed_of(request)
    return to_train, marker, to_train * speed.epoch_seconds(request), speed.source


def question_needs(runs: Iterable[PlannedRun], entries: dict[str, Entry], speed_of: SpeedOf) -> tuple[int, float, str]:
    """(runs to train, seconds, marker) for one question's own budgets: a run it shares with a question
    that needs it longer counts only the epochs this one needs."""
    budgets: dict[str, list[Budget]] = {}
    requests = {}
    for run in runs:
        budgets.setdefault(run.key, []).append(run.budget)
        requests[run.key] = run.request
    needs = [_training_needed(requests[k], entries[k].epochs if k in entries else [], b, entries, speed_of)
             for k, b in budgets.items()]
    needs = [n for n in needs if n[0]]
    return len(needs), sum(n[2] for n in needs), combine_markers(n[1] for n in needs)


def estimate_jobs(jobs: Iterable[RunJob], entries: dict[str, Entry], speed_of: SpeedOf,
                  spec_budgets: dict[str, tuple[Budget, ...]] | None = None) -> list[JobEstimate]:
    spec_budgets = spec_budgets or {}
    return [estimate_job(job, entries, speed_of, spec_budgets.get(job.key)) for job in jobs]


def load_entries(cache_root: Path) -> dict[str, Entry]:
    """Every trusted entry of the cache; a damaged one reads as missing, as it does for the runner."""
    cache, entries = RunCache(cache_root), {}
    for key in cache.keys():
        try:
            entry = cache.load(key)
        except CorruptEntry:
            continue
        if entry is not None:
            entries[key] = entry
    return entries


def estimate_plan(spec: Any, qids: list[str], profile: str, device: str, seeds: int | None, cache_root: Path,
                  probe: Probe) -> PlanEstimate:
    """The questions' jobs estimated against the cache; speeds the cache lacks come from `probe`."""
    entries = load_entries(cache_root)
    speeds = SpeedBook(measured_speeds(entries.values(), device), probe)
    everything = plan_jobs(spec, list(spec.questions), profile, device, seeds)
    spec_budgets = {job.key: job.budgets for job in everything}
    runs = {qid: plan_question(spec, qid, profile, device, seeds) for qid in qids}
    questions = {qid: [run.key for run in planned] for qid, planned in runs.items()}
    models = {run.key: run.labels["model"] for planned in runs.values() for run in planned}
    jobs = estimate_jobs(plan_jobs(spec, qids, profile, device, seeds), entries, speeds, spec_budgets)
    by_question = {qid: question_needs(planned, entries, speeds) for qid, planned in runs.items()}
    return PlanEstimate(jobs, questions, models, by_question)


# ---------------------------------------------------------------- wording

def combine_markers(markers: Iterable[str]) -> str:
    """A sum holding any sibling-based count is an estimate; else one holding a cap is an upper bound."""
    found = set(markers)
    return FROM_SIBLINGS if FROM_SIBLINGS in found else UPPER_BOUND if UPPER_BOUND in found else EXACT


def format_seconds(seconds: float, marker: str = EXACT) -> str:
    """'12.3 s', '4 min 05 s' or '1 h 02 min', after the marker ('≤ 4 min 05 s')."""
    if seconds < 60:
        text = f"{seconds:.1f} s"
    else:
        minutes, secs = divmod(round(seconds), 60)
        hours, minutes = divmod(minutes, 60)
        text = f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"
    return f"{marker} {text}" if marker else text
