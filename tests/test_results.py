"""The stop rule and the chance level, which live with the result records so cache readers need no torch."""
from __future__ import annotations

import subprocess
import sys

from reportgen.results import Budget, EpochMetrics, at_chance, decide


def epochs(*accuracies: float, loss: float = 1.0) -> list[EpochMetrics]:
    return [EpochMetrics(i + 1, loss, loss, acc, 1.0) for i, acc in enumerate(accuracies)]


def test_describing_a_run_counts_anything_below_two_points_above_chance():
    assert at_chance(11.99) and at_chance(float("nan"))
    assert not at_chance(12.0) and not at_chance(None)
    assert at_chance(21.0, classes=5) and not at_chance(22.0, classes=5)


def test_the_stop_rule_calls_a_run_stuck_after_three_epochs_at_most_one_and_a_half_points_above_chance():
    assert decide(epochs(11.5, 10.0, 11.5, 50.0), Budget(10)) == (3, "stuck at chance")
    assert decide(epochs(11.5, 11.6, 11.5, 11.5), Budget(4)) == (4, "completed")  # 11.6 breaks the run of epochs
    assert decide(epochs(10.0, 10.0), Budget(10)) is None  # needs more epochs to decide


def test_the_stop_rule_reasons():
    assert decide(epochs(50.0, 60.0, 70.0), Budget(3)) == (3, "completed")
    assert decide(epochs(50.0, 60.0, 70.0), Budget(3, until_accuracy=55.0)) == (2, "target reached")
    assert decide(epochs(50.0, 60.0), Budget(2, until_accuracy=90.0)) == (2, "epoch cap")
    assert decide(epochs(50.0, 60.0, 59.0, 58.0), Budget(9, plateau_patience=2)) == (4, "plateau")
    assert decide(epochs(50.0, loss=float("nan")), Budget(3)) == (1, "diverged")


def test_cache_readers_import_without_torch():
    code = ("import sys, reportgen.results, reportgen.runner, reportgen.estimate; "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
