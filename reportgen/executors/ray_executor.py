"""The Ray executor: one Ray task per lockstep group (plan.group_jobs; a CNN is a group of one), on
any node of a cluster, the cache on shared storage.

A task trains through `runner.execute_group`, so it writes its runs' cache entries itself (the
same locks and atomic writes as the local executor) and returns only small data: the results by
key and the runner's events, which the driver passes on to `on_event` as each task finishes.
"""
from __future__ import annotations

import logging
import os
import re
import socket
from pathlib import Path
from typing import Any, Iterator

from reportgen.analysis.naming import log_name
from reportgen.errors import ReportgenError
from reportgen.plan import RunJob, group_jobs, longest_first
from reportgen.results import Budget, RunResult
from reportgen.runner import Event, OnEvent, cached_results, execute_group

try:
    import ray
except ImportError:  # raised where the CLI imports this module, so it prints as a user error
    raise ReportgenError("--executor ray needs Ray, which is not installed in this environment: "
                         "run `pip install -e '.[ray]'`, or use --executor local.") from None

Results = dict[Budget, RunResult]
CONNECT_TIMEOUT_S = 5.0  # how long a HOST:PORT may take to answer before it counts as unreachable


class ClusterError(ReportgenError):
    """The Ray cluster cannot be reached, or no node of it can serve a run of the plan."""


class RunsFailed(ReportgenError):
    """Some runs failed on the cluster; the others finished and are cached."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


class RayExecutor:
    """Trains each lockstep group of missing jobs as one Ray task and yields results as tasks finish."""

    name = "ray"

    def __init__(self, cache_root: Path, data_dir: Path | None, address: str = "auto", max_retries: int = 3,
                 cpus_per_run: int | None = None, on_worker_event: OnEvent | None = None,
                 seconds: dict[str, float] | None = None):
        # Absolute paths: a worker on another node does not share this process's working directory.
        self.cache_root = Path(cache_root).resolve()
        self.data_dir = Path(data_dir).resolve() if data_dir is not None else None
        self.address = address  # "auto", HOST:PORT, or "local" to start a private instance here
        self.max_retries = max_retries  # retries after a worker or node dies; errors in a run are never retried
        # Ray CPUs a task reserves; it trains on train.THREADS_PER_RUN threads whatever it reserves,
        # so its numbers equal a local build's.
        self.cpus_per_run = cpus_per_run or _threads_per_run()
        self.on_worker_event = on_worker_event  # called inside the worker with each runner event; must pickle
        self.submitted = 0  # tasks submitted over this executor's life
        self.seconds = seconds or {}  # estimated seconds by job key (estimate.py): the longest groups are submitted first

    def run(self, jobs: list[RunJob], on_event: OnEvent) -> Iterator[tuple[RunJob, Results]]:
        """Cached jobs first (no task, no cluster), then the others as their tasks finish."""
        missing = []
        for job in jobs:
            results = cached_results(self.cache_root, job)
            if results is None:
                missing.append(job)
                continue
            on_event(Event("cached", job.key, target_epochs=_target_epochs(job)))
            yield job, results
        if missing:
            yield from self._run_on_cluster(missing, on_event)

    def _run_on_cluster(self, jobs: list[RunJob], on_event: OnEvent) -> Iterator[tuple[RunJob, Results]]:
        started = _connect(self.address)
        running: dict[Any, list[RunJob]] = {}  # ObjectRef → a group's jobs, until its result arrives
        try:
            _refuse_unservable(jobs, {job.key: self._resources(job) for job in jobs})
            task = ray.remote(_train_in_worker)
            for group in longest_first(group_jobs(jobs, self._task_slots(jobs)), self.seconds):
                running[self._submit(task, group)] = group
            yield from self._gather(running, on_event)
        except BaseException:  # Ctrl-C, a failing consumer or an abandoned generator: stop what still runs
            for ref in running:
                ray.cancel(ref, force=True)  # kills the worker; its finished epochs stay cached
            raise
        finally:
            if started:
                ray.shutdown()

    def _task_slots(self, jobs: list[RunJob]) -> int:
        """How many of these jobs' tasks the cluster can run at once (what group sizes are cut to fit)."""
        resource, each = ("GPU", 1) if jobs[0].request["device"] == "cuda" else ("CPU", self.cpus_per_run)
        return max(1, int(ray.cluster_resources().get(resource, 1) // each))

    def _resources(self, job: RunJob) -> dict[str, float]:
        if job.request["device"] == "cuda":
            return {"CPU": 1, "GPU": 1}  # the arithmetic runs on the GPU; one CPU feeds it
        return {"CPU": self.cpus_per_run}

    def _submit(self, task: Any, group: list[RunJob]) -> Any:
        first = group[0]
        resources = self._resources(first)
        size = f" and {len(group) - 1} more" if len(group) > 1 else ""
        options = task.options(num_cpus=resources["CPU"], num_gpus=resources.get("GPU", 0),
                               max_retries=self.max_retries, retry_exceptions=False,
                               name=f"reportgen {first.request['arch']} {first.key[:12]}{size}")
        ref = options.remote(group, self.cache_root, self.data_dir, self.on_worker_event)
        self.submitted += 1
        return ref

    def _gather(self, running: dict[Any, list[RunJob]], on_event: OnEvent) -> Iterator[tuple[RunJob, Results]]:
        failures: list[tuple[RunJob, Exception]] = []
        total = sum(len(group) for group in running.values())
        while running:
            (ref,), _ = ray.wait(list(running), num_returns=1)
            group = running.pop(ref)
            try:
                results, events = ray.get(ref)
            except ray.exceptions.RayError as err:
                failures += [(job, err) for job in group]
                continue
            for event in events:
                on_event(event)
            for job in group:
                yield job, results[job.key]
        if failures:
            raise _summary(failures, total, self.max_retries)


def _train_in_worker(group: list[RunJob], cache_root: Path, data_dir: Path | None,
                     hook: OnEvent | None) -> tuple[dict[str, Results], list[Event]]:
    """The Ray task: train (or resume) one lockstep group into the shared cache (on train.THREADS_PER_RUN
    threads, as the runner sets); return only small data."""
    events: list[Event] = []

    def record(event: Event) -> None:
        events.append(event)
        if hook is not None:
            hook(event)

    results = execute_group(group, cache_root, data_dir, record)
    return results, events


def _threads_per_run() -> int:
    from reportgen.train import THREADS_PER_RUN

    return THREADS_PER_RUN


def _connect(address: str) -> bool:
    """Connect this process to Ray; True when this call did it (and so must shut it down)."""
    if ray.is_initialized():
        return False  # the caller (a notebook, a test) already connected
    if address == "local":
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, _node_ip_address="127.0.0.1",
                 logging_level=logging.WARNING)
        return True
    _check_reachable(address)
    try:
        ray.init(address=address, logging_level=logging.WARNING)
    except ConnectionError as err:
        raise ClusterError(_connection_advice(address, err)) from None
    return True


def _connection_advice(address: str, err: Exception) -> str:
    if address == "auto":
        return (f"--ray-address auto: no running Ray cluster found ({err}). Start one with `ray start --head` "
                "(and `ray start --address=HEAD:6379` on every other machine), or use `--ray-address local` "
                "to start a private one on this machine for this build.")
    # Something answers at HOST:PORT (checked above), so the usual cause is a missing token.
    return (f"--ray-address {address!r}: cannot join the Ray cluster there ({err}). If the head uses token "
            "authentication (Ray 2.59+ turns it on for `ray start --head`), run reportgen with RAY_AUTH_MODE=token "
            "and the head's token in ~/.ray/auth_token or RAY_AUTH_TOKEN (`ray get-auth-token` on the head prints it).")


def _check_reachable(address: str) -> None:
    """Fail fast on a HOST:PORT nobody answers at (ray.init would retry for minutes)."""
    match = re.fullmatch(r"([\w.\-]+):(\d+)", address)
    if match is None:
        return
    try:
        socket.create_connection((match[1], int(match[2])), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as err:
        raise ClusterError(f"--ray-address {address!r}: nothing answers there ({err.strerror or err}). Is the head "
                           "node up? `ray start --head` prints the address to use; or use --ray-address local.") from None


def _refuse_unservable(jobs: list[RunJob], needs: dict[str, dict[str, float]]) -> None:
    """Refuse the whole build before submitting anything when some run fits on no node."""
    nodes = [node["Resources"] for node in ray.nodes() if node["Alive"]]
    refused = [job for job in jobs if not any(_fits(needs[job.key], node) for node in nodes)]
    if not refused:
        return
    offers = "; ".join(_amounts(node) for node in nodes) or "no live node"
    lines = [f"{_describe(job)} needs {_amounts(needs[job.key])}" for job in refused[:5]]
    more = f" (and {len(refused) - 5} more)" if len(refused) > 5 else ""
    hints = []
    if any("GPU" in needs[job.key] for job in refused):
        hints.append("for CUDA runs add a GPU machine (`ray start --address=HEAD:6379 --num-gpus=1`) or build with --device cpu")
    if any("GPU" not in needs[job.key] for job in refused):
        hints.append("a CPU run asks for the CPUs RayExecutor's cpus_per_run sets (default 1); lower it to at most "
                     "the largest node's CPUs")
    raise ClusterError(f"{len(refused)} of {len(jobs)} runs fit on no node of the Ray cluster, so nothing was submitted: "
                       f"{'; '.join(lines)}{more}. The nodes offer: {offers}. To fix: {'; '.join(hints)}.")


def _fits(need: dict[str, float], node: dict[str, float]) -> bool:
    return all(node.get(name, 0) >= amount for name, amount in need.items())


def _amounts(resources: dict[str, float]) -> str:
    return ", ".join(f"{resources.get(name, 0):g} {name}" for name in ("CPU", "GPU"))


def _summary(failures: list[tuple[RunJob, Exception]], total: int, max_retries: int) -> RunsFailed:
    lines = [f"  - {_describe(job)}: {_reason(err, max_retries)}" for job, err in failures]
    causes = {getattr(getattr(err, "cause", None), "exit_code", 1) for _job, err in failures}
    return RunsFailed(f"{len(failures)} of {total} runs failed on the Ray cluster; the others finished and are "
                      "cached. Fix the cause and run the same command again (finished runs are not trained again):\n"
                      + "\n".join(lines), exit_code=causes.pop() if len(causes) == 1 else 1)


def _reason(err: Exception, max_retries: int) -> str:
    if isinstance(err, ray.exceptions.RayTaskError):  # the run itself raised: reported once, never retried
        cause = err.cause
        return str(cause) if isinstance(cause, ReportgenError) else f"{type(cause).__name__}: {cause}"
    if isinstance(err, (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError)):
        return (f"its worker died on each of {max_retries + 1} attempts ({type(err).__name__}); "
                "the epochs it finished are cached and the next build resumes from them")
    return f"{type(err).__name__}: {err}"


def _describe(job: RunJob) -> str:
    request = job.request
    return f"run {job.key[:12]} ({log_name(request)}, {request['dataset']}, {request['device']})"


def _target_epochs(job: RunJob) -> int:
    return max(budget.max_epochs for budget in job.budgets)
