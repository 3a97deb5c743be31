"""Executors decide where the plan's missing runs train: `runner.LocalExecutor` in this process
(the default), `ray_executor.RayExecutor` on a Ray cluster. Both write the same cache entries.
"""
from __future__ import annotations

from typing import Iterator, Protocol

from reportgen.plan import RunJob
from reportgen.results import Budget, RunResult
from reportgen.runner import OnEvent


class Executor(Protocol):
    """Takes jobs, yields `(job, results)` as each finishes; progress goes to `on_event`."""

    name: str

    def run(self, jobs: list[RunJob], on_event: OnEvent) -> Iterator[tuple[RunJob, dict[Budget, RunResult]]]:
        ...
