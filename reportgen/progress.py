"""Training progress: on a terminal, live bars (runs, epochs, loss, accuracy, the plan's ETA); elsewhere (a CI log),
one plain line per finished run with its wall time, the runs left and their estimated time."""
from __future__ import annotations

import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from reportgen.analysis.naming import log_name
from reportgen.estimate import PlanEstimate, combine_markers, format_seconds
from reportgen.runner import Event


class TrainingProgress:
    """Runs of the plan and epochs of the current run, fed by runner events; the ETA is the plan's estimate
    of the runs left, the current run's rest taken at the speed its epochs have shown so far."""

    def __init__(self, console: Console, jobs: list, estimate: PlanEstimate | None = None, workers: int = 1):
        self.console = console
        self.live = console.is_terminal  # a live display in a log prints nothing until it ends
        by_key = {e.job.key: e for e in estimate.jobs} if estimate else {}
        self.planned = {job.key: by_key.get(job.key) for job in jobs}
        models = estimate.models if estimate else {}
        self.labels = {job.key: log_name(job.request, models.get(job.key)) for job in jobs}
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), TextColumn("{task.fields[status]}"),
                                 console=console, transient=False)
        self.total = len(jobs)
        self.workers = workers  # runs trained side by side: the time left is shared among them
        self.finished: set[str] = set()
        self.notices: set[str] = set()
        self.started_at: dict[str, float] = {}
        self.run_seconds: dict[str, list[float]] = {}  # epoch seconds per run, trained in this build
        self.current: str | None = None
        self.runs_task = None
        self.epoch_task = None
        self.epochs_trained = 0
        self.seconds = 0.0

    def __enter__(self) -> "TrainingProgress":
        if self.live:
            self.progress.__enter__()
            self.runs_task = self.progress.add_task("runs", total=self.total, status=self._eta())
            self.epoch_task = self.progress.add_task("epochs", total=1, status="")
        return self

    def __exit__(self, *exc) -> None:
        if self.live:
            self.progress.__exit__(*exc)

    def on_event(self, event: Event) -> None:
        self.started_at.setdefault(event.key, time.perf_counter())
        self.current = event.key
        if event.kind == "corrupt":
            self.console.print(f"[yellow]warning:[/] {event.message}", highlight=False)
        elif event.kind == "notice" and event.message not in self.notices:
            self.notices.add(event.message)  # once per build, however many groups hit it
            self.console.print(f"note: {event.message}", highlight=False)
        elif event.kind == "start" and self.live:
            label = self.labels.get(event.key, event.key[:12])
            self.progress.reset(self.epoch_task, total=event.target_epochs, description=label, status=event.message)
        elif event.kind == "epoch" and event.epoch is not None:
            self._record_epoch(event)

    def _record_epoch(self, event: Event) -> None:
        e = event.epoch
        self.epochs_trained += 1
        self.seconds += e.seconds
        self.run_seconds.setdefault(event.key, []).append(e.seconds)
        if self.live:
            self.progress.update(self.epoch_task, completed=e.epoch,
                                 status=f"loss {e.train_loss:.4g}  acc {e.test_accuracy:.2f} %")
            self.progress.update(self.runs_task, status=self._eta())

    def job_finished(self, job=None) -> None:
        key = job.key if job is not None else self.current
        self.finished.add(key)
        self.current = None
        if self.live:
            self.progress.update(self.runs_task, advance=1, status=self._eta())
        else:
            self.console.print(self.finished_line(key), highlight=False, soft_wrap=True)

    def finished_line(self, key: str | None) -> str:
        """'[3/8] mlp lr=0.1 seed=0: 2 epochs in 4.2 s; 5 runs left, ≤ 1 min 10 s estimated'."""
        epochs = self.run_seconds.get(key, [])
        # Wall time since the run's first event; at least its epochs' seconds, for events that arrive
        # all at once when the run comes back (Ray).
        wall = max(time.perf_counter() - self.started_at.get(key, time.perf_counter()), sum(epochs))
        left = self.total - len(self.finished)
        return (f"[{len(self.finished)}/{self.total}] {self.labels.get(key, str(key)[:12])}: {_count(len(epochs), 'epoch')} "
                f"in {format_seconds(wall)}; {_count(left, 'run')} left" + (f", {self._eta()}" if left else ""))

    def remaining_seconds(self) -> tuple[float, str] | None:
        """(seconds, marker) the plan estimates for the runs not finished; None without a plan."""
        left = [k for k, e in self.planned.items() if k not in self.finished]
        if any(self.planned[k] is None for k in left):
            return None
        seconds = sum(self._seconds_left(k) for k in left) / min(self.workers, len(left))
        return seconds, combine_markers(self.planned[k].marker for k in left)

    def _seconds_left(self, key: str) -> float:
        planned, done = self.planned[key], self.run_seconds.get(key, [])
        if not done:
            return planned.seconds
        # A run under way: its remaining epochs at the speed it has shown (the machine may have drifted).
        return max(0, planned.epochs_to_train - len(done)) * sum(done) / len(done)

    def _eta(self) -> str:
        remaining = self.remaining_seconds()
        if remaining is None or len(self.finished) == self.total:
            return ""
        seconds, marker = remaining
        return f"{format_seconds(seconds, marker)} estimated"

    def summary(self) -> str:
        return f"Trained {self.epochs_trained} epochs ({self.seconds:.1f} s of training)."


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
