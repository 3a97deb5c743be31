"""The build's progress: the plan's estimate as ETA, and one plain line per finished run outside a terminal."""
from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from reportgen.estimate import EXACT, UPPER_BOUND, JobEstimate, PlanEstimate
from reportgen.plan import RunJob
from reportgen.progress import TrainingProgress
from reportgen.results import Budget, EpochMetrics
from reportgen.runner import Event


def planned(key: str, epochs: int, seconds: float, marker: str = EXACT) -> JobEstimate:
    request = {"arch": "mlp", "lr": 0.1, "seed": int(key[-1])}
    return JobEstimate(RunJob(key, request, (Budget(epochs),)), "new", 0, epochs, marker, seconds, "cache")


def epoch(key: str, number: int, seconds: float) -> Event:
    return Event("epoch", key, epoch=EpochMetrics(number, 1.0, 1.0, 50.0, seconds))


@pytest.fixture
def log_progress():
    jobs = [planned("k0", 2, 10.0), planned("k1", 4, 20.0, UPPER_BOUND)]
    estimate = PlanEstimate(jobs, {"q": ["k0", "k1"]}, {"k0": "mlp", "k1": "mlp"})
    log = io.StringIO()
    return TrainingProgress(Console(file=log, width=80), [e.job for e in jobs], estimate), log


def test_the_eta_is_the_plan_estimate_with_the_current_run_at_its_own_speed(log_progress):
    progress, _ = log_progress
    assert progress.remaining_seconds() == (30.0, UPPER_BOUND)
    progress.on_event(Event("start", "k0", target_epochs=2))
    progress.on_event(epoch("k0", 1, 8.0))  # slower than planned (5 s an epoch): the rest of k0 takes 8 s
    assert progress.remaining_seconds() == (pytest.approx(28.0), UPPER_BOUND)


def test_outside_a_terminal_each_finished_run_is_one_line(log_progress):
    progress, log = log_progress
    with progress:
        progress.on_event(Event("start", "k0", target_epochs=2))
        progress.on_event(epoch("k0", 1, 4.0))
        progress.on_event(epoch("k0", 2, 6.0))
        progress.job_finished(RunJob("k0", {}, ()))
        progress.on_event(Event("cached", "k1"))  # trained meanwhile by another process
        progress.job_finished(RunJob("k1", {}, ()))
    first, second = log.getvalue().splitlines()
    assert first == "[1/2] mlp lr=0.1 seed=0: 2 epochs in 10.0 s; 1 run left, ≤ 20.0 s estimated"
    assert re.fullmatch(r"\[2/2\] mlp lr=0\.1 seed=1: 0 epochs in 0\.\d s; 0 runs left", second)
