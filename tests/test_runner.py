"""The runner with the cache: cache hits train nothing, resumes and extensions equal fresh runs."""
from __future__ import annotations

import functools
import json
import tempfile
from pathlib import Path

import pytest

from reportgen import plan
from reportgen.cache import cache_key
from reportgen.plan import RunJob
from reportgen.results import Budget
from reportgen.runner import Event, cached_results, execute_job
from reportgen.spec import Spec, load_spec
from tests.conftest import TINY_SPEC


def make_job(epochs: int = 2, lr: float = 0.1, shuffle: bool = False, seed: int = 0, **stop_rules) -> RunJob:
    """The tiny spec's MLP (tests/conftest.py) as `plan.plan_jobs` plans it for the smoke profile on the CPU:
    256 training and 200 test images, batches of 64. `epochs` and `stop_rules` (until_accuracy,
    plateau_patience) are its budget, not part of its key. Planned at each call, so a patched
    plan.ENGINE_VERSION counts."""
    run = {"model": "mlp", "lr": lr, "shuffle": shuffle, "seeds": [seed], "epochs": epochs, **stop_rules}
    (job,) = plan.plan_jobs(_spec_with_run(json.dumps(run, sort_keys=True)), ["job"], "smoke", "cpu")
    assert job.budgets == (Budget(epochs, **stop_rules),)
    return job


@functools.lru_cache(maxsize=None)
def _spec_with_run(run: str) -> Spec:
    """TINY_SPEC plus a question `job` holding this one run (a JSON object, written as a TOML inline table)."""
    fields = ", ".join(f"{key} = {json.dumps(value)}" for key, value in json.loads(run).items())
    text = TINY_SPEC + f'\n[questions.job]\npart = "Part"\ntitle = "Job"\nprompt = "One run."\nprotocol = "p"\nruns = [{{ {fields} }}]\n'
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "experiments.toml"
        path.write_text(text)
        return load_spec(path)


class Recorder:
    def __init__(self, stop_after_epoch: int | None = None):
        self.events: list[Event] = []
        self.stop_after_epoch = stop_after_epoch

    def __call__(self, event: Event) -> None:
        self.events.append(event)
        if event.kind == "epoch" and event.epoch.epoch == self.stop_after_epoch:
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C right after this epoch was saved

    def trained_epochs(self) -> list[int]:
        return [e.epoch.epoch for e in self.events if e.kind == "epoch"]


def only(results):
    (result,) = results.values()
    return result


def metrics_of(result):
    return [(e.train_loss, e.test_loss, e.test_accuracy, e.step_losses) for e in result.epochs]


def test_second_execution_is_a_cache_hit_and_trains_nothing(tmp_path, data_dir):
    job = make_job()
    first, second = Recorder(), Recorder()
    a = only(execute_job(job, tmp_path, data_dir, first))
    b = only(execute_job(job, tmp_path, data_dir, second))
    assert first.trained_epochs() == [1, 2]
    assert second.trained_epochs() == []
    assert [e.kind for e in second.events] == ["cached"]
    assert metrics_of(a) == metrics_of(b)


def test_extending_two_to_four_epochs_trains_only_the_missing_ones(tmp_path, data_dir):
    short, long = make_job(epochs=2), make_job(epochs=4)
    assert short.key == long.key  # epochs are a budget, not part of the key
    execute_job(short, tmp_path / "a", data_dir)
    recorder = Recorder()
    extended = only(execute_job(long, tmp_path / "a", data_dir, recorder))
    fresh = only(execute_job(long, tmp_path / "b", data_dir))
    assert recorder.trained_epochs() == [3, 4]
    assert metrics_of(extended) == metrics_of(fresh)
    assert extended.probes == fresh.probes


def test_fewer_epochs_than_cached_are_served_from_the_prefix(tmp_path, data_dir):
    four = only(execute_job(make_job(epochs=4), tmp_path, data_dir))
    recorder = Recorder()
    two = only(execute_job(make_job(epochs=2), tmp_path, data_dir, recorder))
    assert recorder.trained_epochs() == []
    assert metrics_of(two) == metrics_of(four)[:2]


@pytest.mark.parametrize("shuffle", [False, True])
def test_interrupted_run_resumes_and_equals_an_uninterrupted_one(tmp_path, data_dir, shuffle):
    job = make_job(epochs=4, shuffle=shuffle)
    with pytest.raises(KeyboardInterrupt):
        execute_job(job, tmp_path / "a", data_dir, Recorder(stop_after_epoch=2))
    recorder = Recorder()
    resumed = only(execute_job(job, tmp_path / "a", data_dir, recorder))
    fresh = only(execute_job(job, tmp_path / "b", data_dir))
    assert recorder.trained_epochs() == [3, 4]
    assert metrics_of(resumed) == metrics_of(fresh)


def test_truncated_checkpoint_is_reported_and_retrained(tmp_path, data_dir):
    job = make_job(epochs=2)
    original = only(execute_job(job, tmp_path, data_dir))
    (checkpoint,) = (tmp_path / "runs" / job.key[:2] / job.key).glob("ckpt-*.pt")
    checkpoint.write_bytes(checkpoint.read_bytes()[:100])
    assert cached_results(tmp_path, job) is None  # never trusted
    recorder = Recorder()
    again = only(execute_job(job, tmp_path, data_dir, recorder))
    assert any(e.kind == "corrupt" and "truncated" in e.message for e in recorder.events)
    assert recorder.trained_epochs() == [1, 2]
    assert metrics_of(again) == metrics_of(original)


def test_garbage_checkpoint_of_the_right_size_is_caught_before_resuming(tmp_path, data_dir):
    job = make_job(epochs=2)
    execute_job(job, tmp_path, data_dir)
    (checkpoint,) = (tmp_path / "runs" / job.key[:2] / job.key).glob("ckpt-*.pt")
    checkpoint.write_bytes(b"x" * checkpoint.stat().st_size)
    recorder = Recorder()
    execute_job(make_job(epochs=3), tmp_path, data_dir, recorder)
    assert any(e.kind == "corrupt" and "checksum" in e.message for e in recorder.events)
    assert recorder.trained_epochs() == [1, 2, 3]


def test_garbage_metrics_file_is_reported_and_retrained(tmp_path, data_dir):
    job = make_job(epochs=1)
    execute_job(job, tmp_path, data_dir)
    (tmp_path / "runs" / job.key[:2] / job.key / "state.json").write_text("{not json")
    recorder = Recorder()
    execute_job(job, tmp_path, data_dir, recorder)
    assert any(e.kind == "corrupt" and "unreadable metrics" in e.message for e in recorder.events)
    assert recorder.trained_epochs() == [1]


def test_divergence_is_an_outcome_not_a_crash(tmp_path, data_dir):
    result = only(execute_job(make_job(epochs=5, lr=1e4), tmp_path, data_dir))
    assert result.stop_reason in ("diverged", "stuck at chance")
    assert result.diverged
    assert len(result.epochs) < 5


def test_target_budget_stops_at_the_first_epoch_reaching_it(tmp_path, data_dir):
    result = only(execute_job(make_job(epochs=6, until_accuracy=40.0), tmp_path, data_dir))
    accuracies = [e.test_accuracy for e in result.epochs]
    assert accuracies[-1] >= 40.0 and all(a < 40.0 for a in accuracies[:-1])
    assert result.stop_reason == "target reached"


def test_different_seeds_give_different_trajectories(tmp_path, data_dir):
    a = only(execute_job(make_job(seed=0), tmp_path, data_dir))
    b = only(execute_job(make_job(seed=1), tmp_path, data_dir))
    assert metrics_of(a) != metrics_of(b)


def test_probes_cover_the_first_steps(tmp_path, data_dir):
    result = only(execute_job(make_job(epochs=2), tmp_path, data_dir))
    assert set(result.probes) == {"grad_mean", "grad_abs_mean", "grad_norm", "step_loss"}
    assert len(result.probes["grad_norm"]) == 8  # 256 images / 64 per batch × 2 epochs, under 100
    assert all(v >= 0 for v in result.probes["grad_norm"])
    assert result.probes["step_loss"] == pytest.approx(result.epochs[0].step_losses + result.epochs[1].step_losses, rel=1e-5)


def test_each_entry_records_the_machine_that_trained_it_outside_its_key(tmp_path, data_dir):
    import json

    from reportgen.train import machine_info

    job = make_job(epochs=1)
    result = only(execute_job(job, tmp_path, data_dir))
    assert result.machine == machine_info("cpu") | {"group_size": 1, "torch_threads": 1}  # train.THREADS_PER_RUN
    assert result.machine["processor"] and result.machine["gpu"] is None
    state = json.loads((tmp_path / "runs" / job.key[:2] / job.key / "state.json").read_text())
    assert state["machine"] == result.machine
    assert cache_key(state["request"]) == job.key == make_job(epochs=1).key


def test_an_entry_written_before_machines_were_recorded_reads_as_unknown(tmp_path, data_dir):
    import json

    job = make_job(epochs=1)
    execute_job(job, tmp_path, data_dir)
    state_path = tmp_path / "runs" / job.key[:2] / job.key / "state.json"
    state = json.loads(state_path.read_text())
    del state["machine"]
    state_path.write_text(json.dumps(state))
    result = cached_results(tmp_path, job)
    assert result is not None and only(result).machine is None


def test_processor_name_reads_cpuinfo_and_falls_back_to_the_platform(tmp_path):
    from reportgen.train import processor_name

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Gold 6338\n")
    assert processor_name(cpuinfo) == "Intel(R) Xeon(R) Gold 6338"
    assert processor_name(tmp_path / "absent")  # platform.processor() or the machine type, never empty


# ---------------------------------------------------------------- lockstep groups (plan.group_jobs)

def group_of_jobs(epochs: int = 3, **stop_rules) -> list[RunJob]:
    """Six tiny-MLP runs that differ only in seed and learning rate (shuffled: each seed its own batches)."""
    return [make_job(epochs=epochs, lr=lr, seed=seed, shuffle=True, **stop_rules)
            for lr in (1.0, 0.1, 0.01) for seed in (0, 1)]


def weights_of(cache_root: Path, key: str) -> dict:
    from reportgen.cache import RunCache

    cache = RunCache(cache_root)
    return cache.load_checkpoint(cache.load(key))["model"]


def assert_same_runs(root_a: Path, root_b: Path, jobs: list[RunJob], results_a: dict, results_b: dict) -> None:
    import torch

    for job in jobs:
        assert metrics_of(only(results_a[job.key])) == metrics_of(only(results_b[job.key]))
        assert only(results_a[job.key]).probes == only(results_b[job.key]).probes
        a, b = weights_of(root_a, job.key), weights_of(root_b, job.key)
        assert all(torch.equal(a[name], b[name]) for name in a)


def test_a_group_gives_every_run_the_bits_it_gets_alone(tmp_path, data_dir):
    from reportgen.runner import execute_group

    jobs = group_of_jobs()
    assert plan.group_jobs(jobs) == [jobs]
    recorder = Recorder()
    grouped = execute_group(jobs, tmp_path / "group", data_dir, recorder)
    alone = {job.key: execute_job(job, tmp_path / "alone", data_dir) for job in jobs}
    assert_same_runs(tmp_path / "group", tmp_path / "alone", jobs, grouped, alone)
    assert sum("in lockstep with 5 other runs" in e.message for e in recorder.events if e.kind == "start") == 6


def test_a_group_with_partly_cached_members_equals_fresh_runs(tmp_path, data_dir):
    from reportgen.runner import execute_group

    jobs = group_of_jobs()
    execute_job(make_job(epochs=1, lr=0.1, seed=1, shuffle=True), tmp_path / "mixed", data_dir)  # one epoch cached
    execute_job(jobs[0], tmp_path / "mixed", data_dir)  # all three cached
    recorder = Recorder()
    mixed = execute_group(jobs, tmp_path / "mixed", data_dir, recorder)
    fresh = execute_group(jobs, tmp_path / "fresh", data_dir)
    assert_same_runs(tmp_path / "mixed", tmp_path / "fresh", jobs, mixed, fresh)
    assert len(recorder.trained_epochs()) == 3 * 4 + 2  # four new runs, one resumed at epoch 2, one cached


@pytest.mark.parametrize("threads", [1, 2])
def test_an_interrupted_group_resumes_to_the_uninterrupted_numbers(threads, tmp_path, data_dir, monkeypatch):
    from reportgen import train
    from reportgen.runner import execute_group

    monkeypatch.setattr(train, "THREADS_PER_RUN", threads)  # builds train on one; two split products over threads

    jobs = group_of_jobs()
    with pytest.raises(KeyboardInterrupt):
        execute_group(jobs, tmp_path / "a", data_dir, Recorder(stop_after_epoch=2))  # in epoch 2 of the first run
    recorder = Recorder()
    resumed = execute_group(jobs, tmp_path / "a", data_dir, recorder)
    fresh = {job.key: execute_job(job, tmp_path / "b", data_dir) for job in jobs}
    assert_same_runs(tmp_path / "a", tmp_path / "b", jobs, resumed, fresh)
    assert recorder.trained_epochs().count(1) == 0 and recorder.trained_epochs().count(3) == 6  # epoch 1 kept


def test_runs_that_stop_early_leave_the_group_and_the_rest_go_on(tmp_path, data_dir):
    from reportgen.runner import execute_group

    jobs = group_of_jobs(epochs=4, until_accuracy=30.0)
    recorder = Recorder()
    grouped = execute_group(jobs, tmp_path / "group", data_dir, recorder)
    alone = {job.key: execute_job(job, tmp_path / "alone", data_dir) for job in jobs}
    assert_same_runs(tmp_path / "group", tmp_path / "alone", jobs, grouped, alone)
    lengths = sorted(len(only(r).epochs) for r in grouped.values())
    assert lengths[0] < lengths[-1] == 4  # some reached 30 % early, some went on to the cap
    done = [e.key for e in recorder.events if e.kind == "done"]
    assert done[0] == min(grouped, key=lambda k: len(only(grouped[k]).epochs))  # the first to stop is done first


def test_two_workers_give_the_bits_of_one_and_pass_on_every_event(tmp_path, data_dir):
    from reportgen.runner import LocalExecutor

    jobs = [make_job(epochs=2, lr=0.1, shuffle=shuffle, seed=seed) for shuffle in (False, True) for seed in (0, 1)]
    one, two = Recorder(), Recorder()
    alone = {job.key: results for job, results in LocalExecutor(tmp_path / "one", data_dir, workers=1).run(jobs, one)}
    side_by_side = {job.key: results for job, results in LocalExecutor(tmp_path / "two", data_dir, workers=2).run(jobs, two)}
    assert sorted(side_by_side) == sorted(alone) == sorted(job.key for job in jobs)
    assert_same_runs(tmp_path / "one", tmp_path / "two", jobs, alone, side_by_side)
    for job in jobs:  # the workers' events reach the caller, in each run's order
        assert [e.kind for e in two.events if e.key == job.key] == [e.kind for e in one.events if e.key == job.key]


def test_the_executor_trains_the_longest_estimated_group_first(tmp_path, data_dir):
    from reportgen.runner import LocalExecutor

    short, long = make_job(epochs=1, shuffle=False), make_job(epochs=1, shuffle=True)  # two groups of one
    recorder = Recorder()
    executor = LocalExecutor(tmp_path, data_dir, workers=1, seconds={short.key: 1.0, long.key: 60.0})
    assert [job.key for job, _ in executor.run([short, long], recorder)] == [long.key, short.key]
    assert plan.longest_first([[short], [long]], {}) == [[short], [long]]  # no estimate: the plan's order
