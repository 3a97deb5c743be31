"""The Ray executor on one local Ray instance: same numbers as local, retries resume from the
cache, errors are reported once, Ctrl-C kills what runs, impossible requests are refused.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed: pip install -e '.[ray]' to run these tests")

from reportgen.executors import ray_executor  # noqa: E402
from reportgen.executors.ray_executor import ClusterError, RayExecutor, RunsFailed  # noqa: E402
from reportgen.cache import cache_key  # noqa: E402
from reportgen.plan import RunJob  # noqa: E402
from reportgen.runner import LocalExecutor, cached_results  # noqa: E402
from tests.test_runner import make_job, metrics_of, only  # noqa: E402

# Hooks below run inside Ray workers: ship them by value so workers need not import this file.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    import torch

    # As many CPUs as a local build's torch threads (2 here), so a default RayExecutor task fits.
    ray.init(num_cpus=max(2, torch.get_num_threads()), include_dashboard=False, _node_ip_address="127.0.0.1")
    yield
    ray.shutdown()


def variant(job: RunJob, **changes) -> RunJob:
    request = job.request | changes
    return RunJob(cache_key(request), request, job.budgets)


def run_all(executor, jobs, events=None) -> dict[str, object]:
    """Every yielded result by key (one budget per job here)."""
    sink = events.append if events is not None else (lambda e: None)
    return {job.key: only(results) for job, results in executor.run(jobs, sink)}


def state_without_timings(cache_root: Path, key: str) -> dict:
    state = json.loads((cache_root / "runs" / key[:2] / key / "state.json").read_text())
    for epoch in state["epochs"]:
        epoch.pop("seconds")
    state["machine"].pop("group_size")  # how the run was grouped: provenance, not a result
    return state


class CrashOnce:
    """Kill the worker process right after epoch `after` was saved, on the first attempt only."""

    def __init__(self, after: int, marker: Path):
        self.after, self.marker = after, marker

    def __call__(self, event) -> None:
        if event.kind == "epoch" and event.epoch.epoch == self.after and not self.marker.exists():
            self.marker.write_text(str(os.getpid()))
            os._exit(1)


class FailOn:
    """Raise an ordinary exception in one job's task, counting the attempts in a file."""

    def __init__(self, key: str, attempts: Path):
        self.key, self.attempts = key, attempts

    def __call__(self, event) -> None:
        if event.key == self.key and event.kind == "start":
            with self.attempts.open("a") as handle:
                handle.write(f"{os.getpid()}\n")
            raise RuntimeError("injected failure")


class SlowAndTraced:
    """Write the worker's pid when one job starts; slow every epoch of it down."""

    def __init__(self, key: str, pid_file: Path):
        self.key, self.pid_file = key, pid_file

    def __call__(self, event) -> None:
        if event.key != self.key:
            return
        if event.kind == "start":
            self.pid_file.write_text(str(os.getpid()))
        if event.kind == "epoch":
            time.sleep(0.5)


def test_ray_and_local_give_the_same_keys_and_bit_identical_metrics(tmp_path, data_dir):
    jobs = [make_job(epochs=2), make_job(epochs=2, shuffle=True, lr=0.01)]
    local_events, ray_events = [], []
    local = run_all(LocalExecutor(tmp_path / "local", data_dir), jobs, local_events)
    executor = RayExecutor(tmp_path / "ray", data_dir)
    remote = run_all(executor, jobs, ray_events)
    assert executor.submitted == 2
    assert sorted(remote) == sorted(local) == sorted(job.key for job in jobs)
    for key in local:
        assert metrics_of(remote[key]) == metrics_of(local[key])
        assert remote[key].probes == local[key].probes
        assert (remote[key].params, remote[key].stop_reason) == (local[key].params, local[key].stop_reason)
        assert state_without_timings(tmp_path / "ray", key) == state_without_timings(tmp_path / "local", key)
    # The driver passes on the workers' events: the same kinds, per run, as a local build.
    for key in local:
        assert [e.kind for e in ray_events if e.key == key] == [e.kind for e in local_events if e.key == key]


def test_the_cli_through_ray_writes_the_same_cache_as_local(tiny_spec, tmp_path, data_dir):
    from typer.testing import CliRunner

    from reportgen.cli import app

    def run_cli(out: Path, *executor: str):
        return CliRunner().invoke(app, ["run", "a", "b", "--spec", str(tiny_spec), "--profile", "smoke", "--device", "cpu",
                                        "--out", str(out), "--cache-dir", str(out / "cache"), "--data-dir", str(data_dir),
                                        "--no-report", *executor])

    local, remote = run_cli(tmp_path / "local"), run_cli(tmp_path / "ray", "--executor", "ray")
    assert local.exit_code == 0, local.output
    assert remote.exit_code == 0, remote.output
    assert "4 to train" in remote.output and "Question B" in remote.output
    keys = sorted(p.name for p in (tmp_path / "local" / "cache" / "runs").glob("??/*") if p.is_dir())
    assert sorted(p.name for p in (tmp_path / "ray" / "cache" / "runs").glob("??/*") if p.is_dir()) == keys
    for key in keys:
        assert state_without_timings(tmp_path / "ray" / "cache", key) == state_without_timings(tmp_path / "local" / "cache", key)


def test_a_second_ray_run_with_everything_cached_submits_nothing(tmp_path, data_dir):
    jobs = [make_job(epochs=2), make_job(epochs=2, lr=0.01)]
    first = run_all(RayExecutor(tmp_path, data_dir, cpus_per_run=1), jobs)
    again, events = RayExecutor(tmp_path, data_dir, cpus_per_run=1), []
    second = run_all(again, jobs, events)
    assert again.submitted == 0
    assert [e.kind for e in events] == ["cached", "cached"]
    assert {k: metrics_of(r) for k, r in second.items()} == {k: metrics_of(r) for k, r in first.items()}


def test_a_killed_worker_is_retried_and_resumes_from_the_last_checkpoint(tmp_path, data_dir):
    job, marker = make_job(epochs=4), tmp_path / "crashed-once"
    executor = RayExecutor(tmp_path / "ray", data_dir, on_worker_event=CrashOnce(after=2, marker=marker))
    events = []
    resumed = run_all(executor, [job], events)[job.key]
    fresh = only(execute_locally(job, tmp_path / "fresh", data_dir))
    assert marker.exists()  # the first attempt did die after epoch 2
    assert executor.submitted == 1  # Ray retried it; nothing was submitted again
    # Events come from the attempt that succeeded: it started at epoch 3 and trained 3 and 4 only.
    assert [e.message for e in events if e.kind == "start"] == ["from epoch 3"]
    assert [e.epoch.epoch for e in events if e.kind == "epoch"] == [3, 4]
    assert metrics_of(resumed) == metrics_of(fresh)
    assert resumed.probes == fresh.probes


def execute_locally(job, cache_root, data_dir):
    from reportgen.runner import execute_job

    return execute_job(job, cache_root, data_dir)


def test_two_concurrent_submissions_of_one_run_leave_one_complete_entry(tmp_path, data_dir):
    job, events = make_job(epochs=3), []
    executor = RayExecutor(tmp_path, data_dir, cpus_per_run=1)  # both tasks fit at once on 2 CPUs
    results = [only(r) for _job, r in executor.run([job, job], events.append)]
    assert executor.submitted == 2
    assert metrics_of(results[0]) == metrics_of(results[1])
    assert sorted(e.kind for e in events if e.kind in ("done", "cached")) == ["cached", "done"]  # one trained, one waited
    folders = [p for p in (tmp_path / "runs").glob("??/*") if p.is_dir()]
    assert [p.name for p in folders] == [job.key]
    assert sorted(p.name for p in folders[0].iterdir()) == ["ckpt-0003.pt", "request.json", "state.json"]
    assert len(json.loads((folders[0] / "state.json").read_text())["epochs"]) == 3


def test_an_application_error_is_reported_once_and_the_other_runs_finish(tmp_path, data_dir):
    # shuffle: the good run is not in the failing run's lockstep group (a group's task fails as one)
    good, failing = make_job(epochs=1, shuffle=True), make_job(epochs=1, lr=0.05)
    no_data = variant(make_job(epochs=1), dataset="no-such-data")
    attempts = tmp_path / "attempts"
    executor = RayExecutor(tmp_path / "cache", data_dir, cpus_per_run=1, max_retries=3,
                           on_worker_event=FailOn(failing.key, attempts))
    finished = []
    with pytest.raises(RunsFailed) as info:
        for job, _results in executor.run([no_data, failing, good], lambda e: None):
            finished.append(job.key)
    assert finished == [good.key]
    assert cached_results(tmp_path / "cache", good) is not None
    assert len(attempts.read_text().splitlines()) == 1  # not retried
    message = str(info.value)
    assert "2 of 3 runs failed" in message
    assert f"run {no_data.key[:12]}" in message and "unknown data set 'no-such-data'" in message
    assert f"run {failing.key[:12]}" in message and "RuntimeError: injected failure" in message
    assert "Traceback" not in message


def test_a_gpu_run_on_a_cpu_only_cluster_is_refused_before_submission(tmp_path, data_dir):
    gpu_job = variant(make_job(epochs=1), device="cuda")
    executor = RayExecutor(tmp_path, data_dir, cpus_per_run=1)
    with pytest.raises(ClusterError) as info:
        list(executor.run([make_job(epochs=1), gpu_job], lambda e: None))
    assert executor.submitted == 0
    message = str(info.value)
    assert f"run {gpu_job.key[:12]}" in message and "needs 1 CPU, 1 GPU" in message
    assert "0 GPU" in message and "--device cpu" in message


def test_ctrl_c_cancels_running_tasks_and_kills_their_workers(tmp_path, data_dir):
    quick, slow = make_job(epochs=1), make_job(epochs=30, lr=0.05, shuffle=True)  # two groups, two tasks
    pid_file = tmp_path / "slow.pid"
    executor = RayExecutor(tmp_path / "cache", data_dir, cpus_per_run=1,
                           on_worker_event=SlowAndTraced(slow.key, pid_file))

    def press_ctrl_c(event) -> None:  # as if the user pressed Ctrl-C once the quick run is back
        if event.kind == "done":
            wait_for(pid_file.exists, "the slow run to start")
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        list(executor.run([quick, slow], press_ctrl_c))
    pid = int(pid_file.read_text())
    wait_for(lambda: not process_alive(pid), f"worker {pid} to exit")
    assert cached_results(tmp_path / "cache", slow) is None  # no complete entry for the cancelled run
    state = tmp_path / "cache" / "runs" / slow.key[:2] / slow.key / "state.json"
    assert not state.exists() or len(json.loads(state.read_text())["epochs"]) < 30


def test_an_address_nobody_answers_at_fails_fast_with_advice():
    with pytest.raises(ClusterError, match="nothing answers there.*ray start --head"):
        ray_executor._check_reachable("127.0.0.1:1")


def test_no_running_cluster_explains_how_to_start_one(monkeypatch, tmp_path):
    def no_cluster(**kwargs):
        raise ConnectionError("Could not find any running Ray instance.")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", no_cluster)
    with pytest.raises(ClusterError, match=r"auto: no running Ray cluster found.*ray start --head.*--ray-address local"):
        list(RayExecutor(tmp_path, None, cpus_per_run=1).run([make_job(epochs=1)], lambda e: None))


def wait_for(condition, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def process_alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited


def test_a_lockstep_group_is_one_task_and_equals_local_runs_one_by_one(tmp_path, data_dir):
    jobs = [make_job(epochs=2, lr=lr, seed=seed, shuffle=True) for lr in (0.1, 0.01) for seed in (0, 1)]
    whole_cluster = int(ray.cluster_resources()["CPU"])  # one task slot: the group is not cut to fill more
    executor = RayExecutor(tmp_path / "ray", data_dir, cpus_per_run=whole_cluster)
    remote = run_all(executor, jobs)
    assert executor.submitted == 1
    for job in jobs:
        alone = only(execute_locally(job, tmp_path / "alone", data_dir))
        assert metrics_of(remote[job.key]) == metrics_of(alone) and remote[job.key].probes == alone.probes
        assert state_without_timings(tmp_path / "ray", job.key) == state_without_timings(tmp_path / "alone", job.key)


def test_groups_are_cut_to_the_cluster_s_task_slots(tmp_path, data_dir):
    jobs = [make_job(epochs=1, seed=seed) for seed in range(4)]
    cpus = int(ray.cluster_resources()["CPU"])
    assert RayExecutor(tmp_path, data_dir, cpus_per_run=1)._task_slots(jobs) == cpus
    assert RayExecutor(tmp_path, data_dir, cpus_per_run=cpus)._task_slots(jobs) == 1


def test_the_longest_estimated_group_is_submitted_first(tmp_path, data_dir):
    short, long = make_job(epochs=1, shuffle=False), make_job(epochs=1, shuffle=True)  # two groups of one
    executor = RayExecutor(tmp_path, data_dir, seconds={short.key: 1.0, long.key: 60.0})
    submitted, submit = [], executor._submit
    executor._submit = lambda task, group: (submitted.append(group[0].key), submit(task, group))[1]
    assert sorted(run_all(executor, [short, long])) == sorted([short.key, long.key])
    assert submitted == [long.key, short.key]
