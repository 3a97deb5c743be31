"""What a plan would train: per job new / extend / resume / cached, epochs to train and seconds, from cached epochs' speed
(same model and batch size on this device, scaled by samples) or a timed probe of a few steps.

A stop-rule budget (until_accuracy, plateau) trains an unknown number of epochs; its point estimate comes from the
best evidence there is, in order: cached runs of the same request with another seed ("~": the most they took), the
spec's reference epochs-to-target for that run point ("≈"), cached runs with another lr ("~"); else its epoch cap
("≤", an upper bound). The same-lr siblings and the reference come before other-lr siblings because the lr changes
the epoch count most (at lr 0.001 the tutorial MLP needs ~20x the epochs it needs at 0.1).

Seconds are per job (`solo_epoch_seconds`): a caller that trains several jobs together passes its own function."""
from __future__ import annotations

import dataclasses
import json
import math
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, NamedTuple

from reportgen.analysis.reproduction import matches
from reportgen.cache import CorruptEntry, Entry, RunCache
from reportgen.plan import RunJob, SeedPlan, group_jobs, longest_first, plan_jobs, plan_question
from reportgen.results import PROBE_STEPS, Budget, EpochMetrics, PlannedRun, decide
from reportgen.sources import splits_for

# Both data sets have the same splits; a request's None subset means the whole split.
SPLIT_SIZES = {"fashion-mnist": (60_000, 10_000), "mnist": (60_000, 10_000)}
# The probe times `PROBE_REPEATS` calls of several consecutive batches and keeps the fastest: one-batch calls made
# an MLP's epoch read 1.5-2.7x too slow (the per-call overhead of its hand-written training path), and the fastest
# call is the one least slowed by other processes. Batches per call fill about PROBE_SECONDS of timed work.
PROBE_REPEATS = 3
PROBE_SECONDS = 1.5  # timed training work per speed key: a plan stays a matter of seconds
PROBE_BATCHES = (2, 32)  # fewest and most batches per timed call
PROBE_TEST_BATCHES = 4  # evaluation chunks per timed call (evaluation is ~5 % of an epoch)
EXACT, UPPER_BOUND, FROM_SIBLINGS, FROM_REFERENCE = "", "≤", "~", "≈"
TARGET_METRIC = "epochs_to_target"  # the reference metric that says how many epochs a stop rule takes
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
    by_question: dict[str, QuestionNeeds] = field(default_factory=dict)  # see question_estimate

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

    @property
    def upper_bound_seconds(self) -> float:
        """The part of the total that counts stop rules' epoch caps (no evidence of when they stop)."""
        return sum(e.seconds for e in self.to_train if e.marker == UPPER_BOUND)

    def question_estimate(self, qid: str) -> tuple[int, float, str]:
        """(runs to train, seconds, marker) for the question's own budgets; a run shared by questions counts in each."""
        return self.by_question.get(qid, QuestionNeeds(0, 0.0, EXACT, 0.0))[:3]

    def question_upper_bound_seconds(self, qid: str) -> float:
        return self.by_question[qid].upper_bound_seconds if qid in self.by_question else 0.0


class QuestionNeeds(NamedTuple):
    """What one question's own budgets need trained."""

    runs: int
    seconds: float
    marker: str
    upper_bound_seconds: float  # the part of `seconds` that counts epoch caps


SpeedOf = Callable[[dict[str, Any]], Speed]
Probe = Callable[[dict[str, Any]], Speed]
# A job's seconds per epoch and where its speed came from, given the speeds; see solo_epoch_seconds.
EpochSeconds = Callable[[dict[str, Any], SpeedOf], tuple[float, str]]
# The epochs to target the spec's references give, per (cache key, budget).
ReferenceEpochs = dict[tuple[str, Budget], int]


# ---------------------------------------------------------------- speed

def speed_key(request: dict[str, Any]) -> str:
    """What fixes the cost of one sample: device, model, input size, batch size, optimizer."""
    fields = ("device", "arch", "model_args", "image_size", "batch_size", "optimizer")
    # A referenced network's code stamp and the data's channels change the cost too (absent: registered ones).
    extra = {"arch_source": request.get("arch_source"), "channels": request.get("data", {}).get("shape", [1])[0]}
    return json.dumps({k: request[k] for k in fields} | extra, sort_keys=True)


def epoch_samples(request: dict[str, Any]) -> tuple[int, int]:
    """(training, test) samples one epoch of the request goes through."""
    sizes = request["data"]["sizes"] if "data" in request else None  # a referenced data set records its own
    full_train, full_test = sizes or SPLIT_SIZES.get(request["dataset"], SPLIT_SIZES["fashion-mnist"])
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
    """Measured speeds, else the probe's, probed once per speed key for the rest of the command (`probed`: the
    command's probes so far, shared by every estimate it makes)."""

    def __init__(self, measured: dict[str, Speed], probe: Probe, probed: dict[str, Speed] | None = None):
        self.measured = measured
        self.probe = probe
        self.probed = {} if probed is None else probed

    def __call__(self, request: dict[str, Any]) -> Speed:
        key = speed_key(request)
        if key in self.measured:
            return self.measured[key]
        if key not in self.probed:
            self.probed[key] = self.probe(request)
        return self.probed[key]


def solo_epoch_seconds(request: dict[str, Any], speed_of: SpeedOf) -> tuple[float, str]:
    """(seconds, speed source) of one epoch of the job trained on its own, as the runner trains jobs today."""
    speed = speed_of(request)
    return speed.epoch_seconds(request), speed.source


def wall_seconds(estimate: "PlanEstimate", workers: int) -> float:
    """The training's wall time on `workers` processes, as runner.LocalExecutor trains: the lockstep
    groups (plan.group_jobs), longest first, each to whichever worker is free first, a group taking the sum
    of its runs' seconds (grouping gained 1.0-1.3x here, so the sum errs on the long side)."""
    seconds = {e.job.key: e.seconds for e in estimate.to_train}
    free = [0.0] * max(1, workers)
    for group in longest_first(group_jobs([e.job for e in estimate.to_train], workers), seconds):
        first = free.index(min(free))
        free[first] += sum(seconds[job.key] for job in group)
    return max(free)


def probe_speed(request: dict[str, Any], data_dir: Path | None = None) -> Speed:
    """Build the model and time training steps and evaluation chunks on the real data, through the
    engine, on the threads a run trains with (train.THREADS_PER_RUN)."""
    from reportgen import train

    with train.run_threads():
        return _probe(request, data_dir)


def _probe(request: dict[str, Any], data_dir: Path | None) -> Speed:
    from reportgen import train
    from reportgen.lockstep import Member

    n_train, n_test = epoch_samples(request)
    batch, test_batch = request["batch_size"], request["test_batch_size"]
    most = request | {"train_subset": min(n_train, batch * PROBE_BATCHES[1]),
                      "test_subset": min(n_test, test_batch * PROBE_TEST_BATCHES)}
    splits = splits_for(request, data_dir)
    data = train.prepare_tensors(most, splits)
    state = train.new_state(most)
    trainer = train.trainer_for([Member(most, state)])  # the path a build trains this run by

    def train_batches(count: int) -> Callable[[], Any]:
        # Consecutive batches in one call, as an epoch runs them; `count` of them (fewer if the data has fewer).
        part = dataclasses.replace(data, train_x=data.train_x[:count * batch], train_y=data.train_y[:count * batch])
        return lambda: trainer.train_pass(part)

    def test_chunks() -> None:
        trainer.evaluate(data)

    # Warm-up, untimed: the first calls allocate and pick kernels (oneDNN builds a convolution's primitives once).
    warm = _fastest_seconds(train_batches(PROBE_BATCHES[0]), 1, request["device"])
    test_chunks()
    # Past the gradient-probe steps, as nearly all of a real epoch's steps are (probes cost ~20 %).
    state.steps_done = max(state.steps_done, PROBE_STEPS)
    count = _batches_per_call(warm / PROBE_BATCHES[0], math.ceil(len(data.train_y) / batch))
    train_seconds = _fastest_seconds(train_batches(count), PROBE_REPEATS, request["device"])
    test_seconds = _fastest_seconds(test_chunks, PROBE_REPEATS, request["device"])
    return Speed(train_seconds / min(len(data.train_y), count * batch), test_seconds / len(data.test_y), "probe")


def _batches_per_call(step_seconds: float, available: int) -> int:
    """Enough batches per timed call that PROBE_REPEATS calls take about PROBE_SECONDS, within PROBE_BATCHES."""
    fitting = int(PROBE_SECONDS / (PROBE_REPEATS * max(step_seconds, 1e-6)))
    return max(1, min(available, PROBE_BATCHES[1], max(PROBE_BATCHES[0], fitting)))


def _fastest_seconds(action: Callable[[], Any], repeats: int, device: str) -> float:
    """The shortest wall time of `repeats` calls: other processes only ever slow a call down."""
    import torch

    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        if device == "cuda":
            torch.cuda.synchronize()  # kernels run asynchronously; count them, not their launch
        times.append(time.perf_counter() - start)
    return min(times)


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


def epochs_reached(cached: list[EpochMetrics], budgets: Iterable[Budget], siblings: list[Entry],
                   lr: float | None = None, references: dict[Budget, int] | None = None) -> tuple[int, str]:
    """How many epochs the trajectory will have once every budget is decided, and how that count was found;
    `references` gives the spec's epochs to target per budget of this run."""
    references = references or {}
    reaches = [_budget_reach(cached, b, siblings, lr, references.get(b)) for b in budgets]
    # The longest budget decides; at equal length an exact count beats an estimate.
    return max(reaches, key=lambda r: (r[0], r[1] == EXACT), default=(len(cached), EXACT))


def _budget_reach(cached: list[EpochMetrics], budget: Budget, siblings: list[Entry], lr: float | None,
                  reference: int | None) -> tuple[int, str]:
    decided = decide(cached, budget)
    if decided is not None:
        return decided[0], EXACT
    if budget.until_accuracy is None and budget.plateau_patience is None:
        return budget.max_epochs, EXACT
    same_lr, other_lr = sibling_epochs_by_lr(siblings, budget, lr)
    for epochs, marker in ((same_lr, FROM_SIBLINGS), (reference, FROM_REFERENCE), (other_lr, FROM_SIBLINGS)):
        if epochs is not None:
            # At least one more epoch than cached: the cached ones did not decide the budget.
            return min(budget.max_epochs, max(epochs, len(cached) + 1)), marker
    return budget.max_epochs, UPPER_BOUND


def sibling_epochs_by_lr(siblings: list[Entry], budget: Budget, lr: float | None) -> tuple[int | None, int | None]:
    """(the most epochs siblings with the same lr took to be decided by the budget, the same for other lrs)."""
    counts: dict[bool, list[int]] = {True: [], False: []}
    for sibling in siblings:
        decided = decide(sibling.epochs, budget)
        if decided is not None and decided[1] not in _UNINFORMATIVE_STOPS:
            counts[sibling.request.get("lr") == lr].append(decided[0])
    return max(counts[True], default=None), max(counts[False], default=None)


def model_identity(request: dict[str, Any]) -> str:
    """The request without lr and seed: runs that share it are siblings."""
    return json.dumps({k: v for k, v in request.items() if k not in ("lr", "seed")}, sort_keys=True)


def reference_epochs(spec: Any, profile: str, device: str, seeds: int | SeedPlan | None) -> ReferenceEpochs:
    """Per (cache key, stop-rule budget), the epochs to target a reference of the budget's question gives
    for that run point (matched by its `select`, as the reproduction check matches it). A reference of
    "not reached" gives none: the run then stops at a plateau, at chance or at the cap, which it does not say."""
    found: ReferenceEpochs = {}
    for qid, question in spec.questions.items():
        targets = [r for r in question.references if r.metric == TARGET_METRIC and not isinstance(r.value, str)]
        if not targets:
            continue
        for run in plan_question(spec, qid, profile, device, seeds):
            if run.budget.until_accuracy is None:
                continue
            for ref in targets:
                if matches(ref.select, run.labels):
                    found.setdefault((run.key, run.budget), round(ref.value))
    return found


# ---------------------------------------------------------------- jobs and plans

def estimate_job(job: RunJob, entries: dict[str, Entry], speed_of: SpeedOf,
                 spec_budgets: Iterable[Budget] | None = None, references: ReferenceEpochs | None = None,
                 epoch_seconds: EpochSeconds = solo_epoch_seconds) -> JobEstimate:
    """One job against the cache: its state, the epochs it would train and their seconds."""
    cached = entries[job.key].epochs if job.key in entries else []
    state = classify(cached, job.budgets, spec_budgets if spec_budgets is not None else job.budgets)
    if state == "cached":
        return JobEstimate(job, state, len(cached), 0, EXACT, 0.0)
    needed = _training_needed(job.key, job.request, cached, job.budgets, entries, speed_of, references or {},
                              epoch_seconds)
    return JobEstimate(job, state, len(cached), *needed)


def _training_needed(key: str, request: dict[str, Any], cached: list[EpochMetrics], budgets: Iterable[Budget],
                     entries: dict[str, Entry], speed_of: SpeedOf, references: ReferenceEpochs,
                     epoch_seconds: EpochSeconds) -> tuple[int, str, float, str]:
    """(epochs to train, marker, seconds, speed source) to decide the budgets along this trajectory."""
    identity = model_identity(request)
    siblings = [e for e in entries.values() if model_identity(e.request) == identity and e.request != request]
    budgets = list(budgets)
    own_references = {b: references[key, b] for b in budgets if (key, b) in references}
    reach, marker = epochs_reached(cached, budgets, siblings, request["lr"], own_references)
    to_train = max(0, reach - len(cached))
    if not to_train:
        return 0, marker, 0.0, ""  # no speed needed, so no probe either
    seconds, source = epoch_seconds(request, speed_of)
    return to_train, marker, to_train * seconds, source


def question_needs(runs: Iterable[PlannedRun], entries: dict[str, Entry], speed_of: SpeedOf,
                   references: ReferenceEpochs | None = None,
                   epoch_seconds: EpochSeconds = solo_epoch_seconds) -> QuestionNeeds:
    """What one question's own budgets need: a run it shares with a question that needs it longer counts
    only the epochs this one needs."""
    budgets: dict[str, list[Budget]] = {}
    requests = {}
    for run in runs:
        budgets.setdefault(run.key, []).append(run.budget)
        requests[run.key] = run.request
    needs = [_training_needed(k, requests[k], entries[k].epochs if k in entries else [], b, entries, speed_of,
                              references or {}, epoch_seconds) for k, b in budgets.items()]
    needs = [n for n in needs if n[0]]
    upper = sum(n[2] for n in needs if n[1] == UPPER_BOUND)
    return QuestionNeeds(len(needs), sum(n[2] for n in needs), combine_markers(n[1] for n in needs), upper)


def estimate_jobs(jobs: Iterable[RunJob], entries: dict[str, Entry], speed_of: SpeedOf,
                  spec_budgets: dict[str, tuple[Budget, ...]] | None = None, references: ReferenceEpochs | None = None,
                  epoch_seconds: EpochSeconds = solo_epoch_seconds) -> list[JobEstimate]:
    spec_budgets = spec_budgets or {}
    return [estimate_job(job, entries, speed_of, spec_budgets.get(job.key), references, epoch_seconds) for job in jobs]


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


def estimate_plan(spec: Any, qids: list[str], profile: str, device: str, seeds: int | SeedPlan | None, cache_root: Path,
                  probe: Probe, epoch_seconds: EpochSeconds = solo_epoch_seconds,
                  probed: dict[str, Speed] | None = None) -> PlanEstimate:
    """The questions' jobs estimated against the cache; speeds the cache lacks come from `probe` (once per speed
    key and `probed` memo, which a command that estimates several times passes to every estimate)."""
    entries = load_entries(cache_root)
    speeds = SpeedBook(measured_speeds(entries.values(), device), probe, probed)
    everything = plan_jobs(spec, list(spec.questions), profile, device, seeds)
    spec_budgets = {job.key: job.budgets for job in everything}
    references = reference_epochs(spec, profile, device, seeds)
    runs = {qid: plan_question(spec, qid, profile, device, seeds) for qid in qids}
    questions = {qid: [run.key for run in planned] for qid, planned in runs.items()}
    models = {run.key: run.labels["model"] for planned in runs.values() for run in planned}
    jobs = estimate_jobs(plan_jobs(spec, qids, profile, device, seeds), entries, speeds, spec_budgets, references,
                         epoch_seconds)
    by_question = {qid: question_needs(planned, entries, speeds, references, epoch_seconds)
                   for qid, planned in runs.items()}
    return PlanEstimate(jobs, questions, models, by_question)


# ---------------------------------------------------------------- wording

def combine_markers(markers: Iterable[str]) -> str:
    """A sum holding any point estimate is an estimate ("~" when any part came from siblings, else "≈");
    else one holding a cap is an upper bound. A caller says apart how much of a sum counts caps."""
    found = set(markers)
    for marker in (FROM_SIBLINGS, FROM_REFERENCE, UPPER_BOUND):
        if marker in found:
            return marker
    return EXACT


def format_seconds(seconds: float, marker: str = EXACT) -> str:
    """'12.3 s', '4 min 05 s' or '1 h 02 min', after the marker ('≤ 4 min 05 s')."""
    if seconds < 60:
        text = f"{seconds:.1f} s"
    else:
        minutes, secs = divmod(round(seconds), 60)
        hours, minutes = divmod(minutes, 60)
        text = f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"
    return f"{marker} {text}" if marker else text
