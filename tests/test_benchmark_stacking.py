"""The stacking diagnostic (benchmarks/stacking.py) reports a verdict per MLP, thread count and group
size, whatever this machine's BLAS does."""
from __future__ import annotations

from benchmarks import stacking
from tests.conftest import REPO


def test_the_diagnostic_prints_one_verdict_per_preset_thread_count_and_group_size(capsys):
    stacking.main(["--spec", str(REPO / "experiments.toml"), "--presets", "mlp", "bn_mlp", "--threads", "1",
                   "--runs", "2", "3"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("torch ") and "CPU capability" in lines[0]
    rows = lines[1:]
    assert [row.split()[0] for row in rows] == ["mlp", "mlp", "bn_mlp", "bn_mlp"]
    assert all(" checks in " in row and ("stacked" in row or "FALLS BACK" in row) for row in rows)


def test_the_diagnostic_checks_both_data_orders_of_every_layer():
    widths = [784, 512, 512, 10]
    row = stacking.check_rows(widths, threads=1, runs=2)
    # per layer: training forward/weight gradient/update/sum at 64 and 32 rows, input gradients below the first,
    # evaluation forwards at 256 and 16 rows; the first layer's training products once more for shuffled batches;
    # the two 512-wide layers share their batch sums
    assert row["checks"] == 3 * 4 * 2 + 2 * 2 + 3 * 2 + 3 - 2
    assert row["seconds"] > 0
