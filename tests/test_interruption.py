"""Killing `reportgen run` (SIGINT, SIGKILL) mid-training loses at most the current epoch; the
next command resumes and ends with the numbers of an uninterrupted run. Two processes on one
cache train each run once."""
from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

SPEC = """
title = "interruptible"
[protocols.p]
dataset = "fashion-mnist"
optimizer = "sgd"
lr = 0.05
batch_size = 32
test_batch_size = 1000
shuffle = true
epochs = 6
[models.mlp]
arch = "mlp"
label = "MLP"
args = { hidden = [256, 256] }
[profiles.full]
description = "d"
[profiles.cpu]
description = "d"
[profiles.smoke]
description = "d"
[[profiles.smoke.overlays]]
set = { train_subset = 20000, test_subset = 1000 }  # epochs long enough to be killed inside one
[questions.q]
part = "P"
title = "Q"
prompt = "Q"
protocol = "p"
runs = [{ model = "mlp" }]
"""


def default_sigint() -> None:
    """In the child: Ctrl-C's default action, even when the suite runs in the background (where the shell
    makes children ignore SIGINT, and Python then never turns it into KeyboardInterrupt)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def command(spec: Path, cache: Path, data_dir: Path) -> list[str]:
    return [sys.executable, "-m", "reportgen", "run", "q", "--spec", str(spec), "--profile", "smoke",
            "--device", "cpu", "--cache-dir", str(cache), "--out", str(cache.parent / "out"),
            "--data-dir", str(data_dir), "--no-report"]


def state_files(cache: Path) -> list[Path]:
    return list(cache.glob("runs/*/*/state.json"))


def epochs_saved(cache: Path) -> int:
    try:
        return max((len(json.loads(p.read_text())["epochs"]) for p in state_files(cache)), default=0)
    except (ValueError, OSError):
        return 0


def final_metrics(cache: Path) -> list[tuple]:
    (path,) = state_files(cache)
    return [(e["train_loss"], e["test_loss"], e["test_accuracy"], e["step_losses"]) for e in json.loads(path.read_text())["epochs"]]


KILL_SEED = 1729  # the epochs after which the tests interrupt a run are drawn from this seed: the same every time


def kill_epoch(sig: signal.Signals) -> int:
    """The saved epoch (2 to 4 of 6) after which the test interrupts the run: seeded, so the same every run.
    At least two epochs follow it, so a signal that lands an epoch late (a fast machine) still interrupts."""
    return random.Random(KILL_SEED + int(sig)).randint(2, 4)


def wait_inside_epoch_after(cache: Path, k: int, process: subprocess.Popen, timeout: float = 900) -> None:
    """Until the cache holds exactly k epochs and the previous epoch's checkpoint is gone: the run has finished
    saving epoch k and is training epoch k + 1, the same point on a fast or a slow machine."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        saved = epochs_saved(cache)
        assert saved <= k, f"epoch {saved} was saved before the test saw epoch {k}"
        if saved == k and _only_latest_checkpoint(cache):
            return
        time.sleep(0.02)
    raise AssertionError(f"the run never reached epoch {k} (exit code {process.poll()})")


def _only_latest_checkpoint(cache: Path) -> bool:
    try:
        (path,) = state_files(cache)
        state = json.loads(path.read_text())
    except (ValueError, OSError):
        return False  # no entry yet, or state.json caught between writes
    allowed = {state["checkpoint"], f"ckpt-{len(state['epochs']) + 1:04d}.pt"}  # the next epoch's may be written
    return {p.name for p in path.parent.glob("ckpt-*.pt")} <= allowed


def assert_only_complete_entries(cache: Path) -> None:
    for path in state_files(cache):
        state = json.loads(path.read_text())
        checkpoint = path.parent / state["checkpoint"]
        assert checkpoint.stat().st_size == state["checkpoint_size"]
        assert sorted(p.name for p in path.parent.glob("ckpt-*.pt")) in ([checkpoint.name], sorted([checkpoint.name, f"ckpt-{len(state['epochs']) + 1:04d}.pt"]))


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    path = tmp_path / "spec.toml"
    path.write_text(SPEC)
    return path


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, data_dir) -> list[tuple]:
    root = tmp_path_factory.mktemp("fresh")
    (root / "spec.toml").write_text(SPEC)
    subprocess.run(command(root / "spec.toml", root / "cache", data_dir), check=True, capture_output=True)
    return final_metrics(root / "cache")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_killed_run_resumes_to_the_uninterrupted_numbers(spec, tmp_path, data_dir, uninterrupted, sig):
    cache = tmp_path / "cache"
    killed_at = kill_epoch(sig)
    process = subprocess.Popen(command(spec, cache, data_dir), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               preexec_fn=default_sigint)
    try:
        wait_inside_epoch_after(cache, killed_at, process)
    finally:
        process.send_signal(sig)  # inside epoch killed_at + 1 (or, on a failed wait, to leave no process behind)
    output = process.communicate(timeout=300)[0].decode()
    if sig == signal.SIGINT:
        assert process.returncode == 130 and "Interrupted" in output and "Traceback" not in output
    saved = epochs_saved(cache)
    assert killed_at <= saved < 6, f"killed after epoch {killed_at} (seed {KILL_SEED}), found {saved} saved"
    assert_only_complete_entries(cache)

    resumed = subprocess.run(command(spec, cache, data_dir), capture_output=True, text=True, check=True)
    assert f"Trained {6 - saved} epoch" in resumed.stdout
    assert final_metrics(cache) == uninterrupted
    assert_only_complete_entries(cache)


def test_two_processes_on_one_cache_train_the_run_once(spec, tmp_path, data_dir, uninterrupted):
    cache = tmp_path / "cache"
    processes = [subprocess.Popen(command(spec, cache, data_dir), stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=900)[0] for p in processes]  # generous: a loaded CI machine trains slowly
    assert [p.returncode for p in processes] == [0, 0]
    trained = sorted(int(line.split()[1]) for out in outputs for line in out.splitlines() if line.startswith("Trained"))
    assert trained in ([0, 6], [6])  # one trained everything; the other waited, then found it cached
    assert final_metrics(cache) == uninterrupted
    assert len([p for p in cache.glob("runs/*/*") if p.is_dir()]) == 1
    assert_only_complete_entries(cache)


def metrics_by_run(cache: Path) -> dict[str, list[tuple]]:
    return {path.parent.name: [(e["train_loss"], e["test_loss"], e["test_accuracy"], e["step_losses"])
                               for e in json.loads(path.read_text())["epochs"]] for path in state_files(cache)}


def test_ctrl_c_stops_runs_trained_side_by_side_and_they_resume_to_the_uninterrupted_numbers(tmp_path, data_dir):
    """Two runs in two worker processes (two lockstep groups: shuffled and not): Ctrl-C stops both,
    keeps their finished epochs, and a second build ends with the numbers of an uninterrupted one."""
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC.replace('runs = [{ model = "mlp" }]', 'runs = [{ model = "mlp", shuffle = [true, false] }]'))
    side_by_side = ["--workers", "2"]
    subprocess.run(command(spec, tmp_path / "fresh", data_dir) + side_by_side, check=True, capture_output=True)
    cache = tmp_path / "cache"
    process = subprocess.Popen(command(spec, cache, data_dir) + side_by_side, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, preexec_fn=default_sigint)
    try:
        deadline = time.monotonic() + 900
        while process.poll() is None and time.monotonic() < deadline:
            saved = [len(epochs) for epochs in _saved_epochs(cache)]
            if len(saved) == 2 and min(saved) >= 2:
                break
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGINT)
    output = process.communicate(timeout=300)[0].decode()
    assert process.returncode == 130 and "Interrupted" in output and "Traceback" not in output
    assert_only_complete_entries(cache)
    assert all(2 <= len(epochs) < 6 for epochs in _saved_epochs(cache))
    subprocess.run(command(spec, cache, data_dir) + side_by_side, check=True, capture_output=True)
    assert metrics_by_run(cache) == metrics_by_run(tmp_path / "fresh")


def _saved_epochs(cache: Path) -> list[list]:
    try:
        return [json.loads(p.read_text())["epochs"] for p in state_files(cache)]
    except (ValueError, OSError):
        return []  # a state.json caught between writes
