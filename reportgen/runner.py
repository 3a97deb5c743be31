"""Stage 4: where plan, cache and engine meet. A job (one trajectory and its budgets) in,
one RunResult per budget out; executors decide where jobs run.
"""
from __future__ import annotations

import os
import queue
import signal
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from reportgen.cache import CorruptEntry, Entry, RunCache
from reportgen.plan import RunJob, SeedPlan, group_jobs, longest_first, plan_question
from reportgen.results import Budget, EpochMetrics, RunOutcome, RunResult, decide
from reportgen.sources import splits_for
from reportgen.spec import Spec


@dataclass(frozen=True)
class Event:
    """Progress from the runner; the CLI turns these into a display, tests count them."""

    kind: str  # "start" | "epoch" | "cached" | "corrupt" | "notice" | "done"
    key: str
    message: str = ""
    epoch: EpochMetrics | None = None
    target_epochs: int = 0  # the most epochs any budget of the job may need


OnEvent = Callable[[Event], None]


def execute_job(job: RunJob, cache_root: Path, data_dir: Path | None, on_event: OnEvent = lambda e: None) -> dict[Budget, RunResult]:
    """Serve every budget of the job from the cache, training (or resuming) only what is missing."""
    return execute_group([job], cache_root, data_dir, on_event)[job.key]


def execute_group(jobs: list[RunJob], cache_root: Path, data_dir: Path | None,
                  on_event: OnEvent = lambda e: None) -> dict[str, dict[Budget, RunResult]]:
    """Serve the jobs of one lockstep group (plan.group_jobs) from the cache, training the missing
    ones together; each job stays its own cache entry. Results by job key."""
    return {job.key: results for job, results in serve_group(jobs, cache_root, data_dir, on_event)}


def serve_group(jobs: list[RunJob], cache_root: Path, data_dir: Path | None,
                on_event: OnEvent = lambda e: None) -> Iterator[tuple[RunJob, dict[Budget, RunResult]]]:
    """execute_group, yielding each job as soon as it is served: cached ones first, then each trained
    one as it leaves the group (so a log can say so while the others still train)."""
    cache = RunCache(cache_root)
    with ExitStack() as locks:
        for job in sorted(jobs, key=lambda j: j.key):  # one order for every process: no deadlock
            locks.enter_context(cache.lock(job.key))
        pending = []
        for job in jobs:
            cache.remove_partial_writes(job.key)
            entry = _load_or_discard(cache, job, on_event)
            if entry is not None and _all_decided(entry, job.budgets):
                on_event(Event("cached", job.key, target_epochs=_target(job)))
                yield job, results_for(entry, job.budgets)
            else:
                pending.append((job, entry))
        for job, entry in _train_until_decided(cache, pending, data_dir, on_event):
            on_event(Event("done", job.key, target_epochs=_target(job)))
            yield job, results_for(entry, job.budgets)


def _target(job: RunJob) -> int:
    return max(b.max_epochs for b in job.budgets)


def _load_or_discard(cache: RunCache, job: RunJob, on_event: OnEvent) -> Entry | None:
    try:
        return cache.load(job.key)
    except CorruptEntry as err:
        on_event(Event("corrupt", job.key, message=f"{err}; discarding it and training again"))
        cache.discard(job.key)
        return None


def _all_decided(entry: Entry, budgets: Iterable[Budget]) -> bool:
    return all(decide(entry.epochs, b) is not None for b in budgets)


@dataclass
class _Training:
    """A job in training: its cache entry and the engine member that advances it."""

    job: RunJob
    entry: Entry
    member: Any  # lockstep.Member


def _train_until_decided(cache: RunCache, pending: list[tuple[RunJob, Entry | None]], data_dir: Path | None,
                         on_event: OnEvent) -> Iterator[tuple[RunJob, Entry]]:
    """Train the jobs in lockstep, one epoch of each at a time, saving every epoch; each job leaves
    the group (and is yielded) as soon as all its budgets are decided, and the rest go on."""
    if not pending:
        return
    from reportgen import train
    from reportgen.lockstep import Member

    with train.run_threads():  # see train.THREADS_PER_RUN
        machine = train.machine_info(pending[0][0].request["device"]) | {"group_size": len(pending)}
        active = []
        for job, entry in pending:
            state, entry = _resume_or_start(cache, job, entry, on_event)
            entry.machine = machine  # not in the key: it is saved, not hashed
            active.append(_Training(job, entry, Member(job.request, state)))
            on_event(Event("start", job.key, message=f"from epoch {state.epochs_done + 1}" + _group_note(len(pending)),
                           target_epochs=_target(job)))
        data = train.prepare_tensors(pending[0][0].request, splits_for(pending[0][0].request, data_dir))
        trainer = train.trainer_for([t.member for t in active])
        noticed: set[str] = set()
        while active:
            staying = []
            outputs = trainer.train_epoch(data)
            _notify(trainer.fallbacks, noticed, active[0].job.key, on_event)
            for position, (run, (metrics, probes)) in enumerate(zip(active, outputs)):
                run.entry.epochs.append(metrics)
                for name, values in probes.items():
                    run.entry.probes.setdefault(name, []).extend(values)
                cache.save_epoch(run.entry, _checkpoint(run.member.state))
                on_event(Event("epoch", run.job.key, epoch=metrics, target_epochs=_target(run.job)))
                if _all_decided(run.entry, run.job.budgets):
                    yield run.job, run.entry
                else:
                    staying.append(position)
            if len(staying) < len(active):
                active = [active[p] for p in staying]
                if active:
                    trainer.keep(staying)


def _notify(notes: list[str], noticed: set[str], key: str, on_event: OnEvent) -> None:
    """Pass on what the engine reports about itself (stacked_ops fallbacks), each note once."""
    for note in notes:
        if note not in noticed:
            noticed.add(note)
            on_event(Event("notice", key, message=note))


def _group_note(size: int) -> str:
    return f", in lockstep with {size - 1} other run{'s' if size > 2 else ''}" if size > 1 else ""


def _resume_or_start(cache: RunCache, job: RunJob, entry: Entry | None, on_event: OnEvent):
    from reportgen import train

    state = train.new_state(job.request)
    if entry is None or not entry.epochs:
        return state, Entry(job.key, job.request, train.parameter_count(state))
    try:
        saved = cache.load_checkpoint(entry)
    except CorruptEntry as err:
        on_event(Event("corrupt", job.key, message=f"{err}; discarding it and training again"))
        cache.discard(job.key)
        return state, Entry(job.key, job.request, train.parameter_count(state))
    state.model.load_state_dict(saved["model"])
    state.optimizer.load_state_dict(saved["optimizer"])
    state.epochs_done, state.steps_done = saved["epochs_done"], saved["steps_done"]
    return state, entry


def _checkpoint(state: Any) -> dict[str, Any]:
    return {"model": state.model.state_dict(), "optimizer": state.optimizer.state_dict(),
            "epochs_done": state.epochs_done, "steps_done": state.steps_done}


def results_for(entry: Entry, budgets: Iterable[Budget]) -> dict[Budget, RunResult]:
    results = {}
    for budget in budgets:
        stop, reason = decide(entry.epochs, budget) or (len(entry.epochs), "incomplete")
        results[budget] = RunResult(entry.key, entry.request, entry.params, entry.epochs[:stop], reason,
                                    entry.probes, budget, entry.machine)
    return results


class LocalExecutor:
    """Trains on this machine, one lockstep group (plan.group_jobs) at a time in each of `workers`
    processes, the longest estimated groups first; with one worker, in this process. The default executor."""

    name = "local"

    def __init__(self, cache_root: Path, data_dir: Path | None, workers: int = 1, seconds: dict[str, float] | None = None):
        self.cache_root, self.data_dir, self.workers = cache_root, data_dir, max(1, workers)
        self.seconds = seconds or {}  # estimated seconds by job key (estimate.py): the longest groups go first

    def run(self, jobs: list[RunJob], on_event: OnEvent) -> Iterator[tuple[RunJob, dict[Budget, RunResult]]]:
        groups = longest_first(group_jobs(jobs, self.workers), self.seconds)
        if self.workers == 1 or len(groups) == 1:
            for group in groups:
                yield from serve_group(group, self.cache_root, self.data_dir, on_event)
            return
        yield from _serve_in_processes(groups, self.cache_root, self.data_dir, min(self.workers, len(groups)), on_event)


def default_workers(device: str) -> int:
    """One worker per CPU core for CPU runs (each trains on one thread: train.THREADS_PER_RUN); one for
    CUDA, where runs side by side would only queue for the same GPU."""
    return 1 if device == "cuda" else (os.cpu_count() or 1)


def _serve_in_processes(groups: list[list[RunJob]], cache_root: Path, data_dir: Path | None, workers: int,
                        on_event: OnEvent) -> Iterator[tuple[RunJob, dict[Budget, RunResult]]]:
    """The groups in a pool of worker processes, in order. Workers send their events and each run's
    results through one queue as they happen, so a run is reported when it leaves its group, not when
    the group ends. On Ctrl-C (or any error) the workers are stopped at once: every finished epoch is
    already in the cache, and a half-written file is cleaned up on the next run."""
    import multiprocessing

    jobs = {job.key: job for group in groups for job in group}
    context = multiprocessing.get_context("spawn")  # forking a process that runs OpenMP threads can hang
    with context.Manager() as manager:
        messages = manager.Queue()
        pool = context.Pool(workers, initializer=_ignore_ctrl_c)
        tasks: list[Any] = []
        try:
            tasks = [pool.apply_async(_serve_group_in_worker, (group, cache_root, data_dir, messages)) for group in groups]
            while tasks:
                yield from _hand_on(messages, jobs, on_event, wait=0.2)
                for task in [t for t in tasks if t.ready()]:
                    tasks.remove(task)
                    task.get()  # a worker's error is raised here
            yield from _hand_on(messages, jobs, on_event)  # what the last tasks sent before they ended
            pool.close()
        except BaseException:
            pool.terminate()
            raise
        finally:
            pool.join()
            # Drop the pool now, not at exit: an exception's traceback keeps this frame, and a pool that
            # outlives the interpreter's shutdown leaves its semaphores for the resource tracker to report.
            del pool, tasks


@dataclass(frozen=True)
class _Served:
    """A worker's message: this run's results (it is cached and has left its group)."""

    key: str
    results: dict[Budget, RunResult]


def _serve_group_in_worker(group: list[RunJob], cache_root: Path, data_dir: Path | None, messages: Any) -> None:
    for job, results in serve_group(group, cache_root, data_dir, messages.put):
        messages.put(_Served(job.key, results))


def _ignore_ctrl_c() -> None:
    # Ctrl-C reaches every process of the terminal's group; the parent decides, and stops the workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _hand_on(messages: Any, jobs: dict[str, RunJob], on_event: OnEvent,
             wait: float = 0.0) -> Iterator[tuple[RunJob, dict[Budget, RunResult]]]:
    """Every queued message: events to on_event, results yielded; waits up to `wait` s for the first."""
    try:
        message = messages.get(timeout=wait) if wait else messages.get_nowait()
        while True:
            if isinstance(message, _Served):
                yield jobs[message.key], message.results
            else:
                on_event(message)
            message = messages.get_nowait()
    except queue.Empty:
        pass


def cached_results(cache_root: Path, job: RunJob) -> dict[Budget, RunResult] | None:
    """The job's results when the cache already decides every budget, else None (nothing is trained)."""
    entry = _trusted_entry(RunCache(cache_root), job.key)
    if entry is None or not _all_decided(entry, job.budgets):
        return None
    return results_for(entry, job.budgets)


def collect_outcomes(spec: Spec, qids: list[str], profile: str, device: str, cache_root: Path,
                     seeds: int | SeedPlan | None = None) -> dict[str, list[RunOutcome]]:
    """Every question's planned runs paired with their cached result (None where missing)."""
    entries: dict[str, Entry | None] = {}
    cache = RunCache(cache_root)
    outcomes: dict[str, list[RunOutcome]] = {}
    for qid in qids:
        outcomes[qid] = []
        for run in plan_question(spec, qid, profile, device, seeds):
            if run.key not in entries:
                entries[run.key] = _trusted_entry(cache, run.key)
            entry = entries[run.key]
            result = None
            if entry is not None and _all_decided(entry, [run.budget]):
                result = results_for(entry, [run.budget])[run.budget]
            outcomes[qid].append(RunOutcome(run, result))
    return outcomes


def _trusted_entry(cache: RunCache, key: str) -> Entry | None:
    """The entry when present and sound; a damaged one reads as missing (execute_job reports it)."""
    try:
        return cache.load(key)
    except CorruptEntry:
        return None


def training_seconds(outcomes: dict[str, list[RunOutcome]]) -> dict[str, float]:
    """Per question, the wall time of the epochs its runs use (a run shared by questions counts in each)."""
    return {qid: sum(e.seconds for o in runs if o.result for e in o.result.epochs) for qid, runs in outcomes.items()}


def total_training_seconds(outcomes: dict[str, list[RunOutcome]]) -> float:
    """The wall time of every epoch used by any question, each trajectory counted once."""
    longest: dict[str, float] = {}
    for runs in outcomes.values():
        for o in runs:
            if o.result:
                longest[o.planned.key] = max(longest.get(o.planned.key, 0.0), sum(e.seconds for e in o.result.epochs))
    return sum(longest.values())

