"""A live progress display for training: runs done of total, the current epoch, loss, accuracy, ETA."""
from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from reportgen.runner import Event


class TrainingProgress:
    """Two bars: runs of the plan, and epochs of the current run; fed by runner events."""

    def __init__(self, console: Console, jobs: list):
        self.console = console
        self.labels = {job.key: f"{job.request['arch']} lr={job.request['lr']:g}" for job in jobs}
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[status]}"),
                                 console=console, transient=False)
        self.total = len(jobs)
        self.runs_task = None
        self.epoch_task = None
        self.epochs_trained = 0
        self.seconds = 0.0

    def __enter__(self) -> "TrainingProgress":
        self.progress.__enter__()
        self.runs_task = self.progress.add_task("runs", total=self.total, status="")
        self.epoch_task = self.progress.add_task("epochs", total=1, status="")
        return self

    def __exit__(self, *exc) -> None:
        self.progress.__exit__(*exc)

    def on_event(self, event: Event) -> None:
        label = self.labels.get(event.key, event.key[:12])
        if event.kind == "corrupt":
            self.console.print(f"[yellow]warning:[/] {event.message}", highlight=False)
        elif event.kind == "start":
            self.progress.reset(self.epoch_task, total=event.target_epochs, description=label,
                                status=event.message)
        elif event.kind == "epoch" and event.epoch is not None:
            e = event.epoch
            self.epochs_trained += 1
            self.seconds += e.seconds
            self.progress.update(self.epoch_task, completed=e.epoch,
                                 status=f"loss {e.train_loss:.4g}  acc {e.test_accuracy:.2f} %")

    def job_finished(self) -> None:
        self.progress.advance(self.runs_task)

    def summary(self) -> str:
        return f"Trained {self.epochs_trained} epochs ({self.seconds:.1f} s of training)."
