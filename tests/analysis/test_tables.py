"""Tables: one row per run, per run and epoch, per class; cell formatting and CSV."""
from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from reportgen.analysis import naming, tables
from reportgen.data import Split
from reportgen.views import EpochTableArgs as EpochTableView, TableArgs as TableView


FakeSplit = Split  # the real record, filled with synthetic images


def with_steps(outcome, steps_per_epoch: int):
    """The outcome with `steps_per_epoch` per-batch losses per epoch: epoch e, step s → e * 1000 + s (1-based)."""
    epochs = [dataclasses.replace(e, step_losses=[e.epoch * 1000.0 + s for s in range(1, steps_per_epoch + 1)])
              for e in outcome.result.epochs]
    return dataclasses.replace(outcome, result=dataclasses.replace(outcome.result, epochs=epochs))


def test_run_table_titles_values_and_missing_runs(make_outcome):
    view = TableView(kind="table", columns=["model", "lr", "final_accuracy", "params", "outcome"])
    outcomes = [make_outcome(model="mlp", lr=0.1, accs=[80.0, 87.25], params=669_706),
                make_outcome(model="bn_mlp", lr=0.1, missing=True)]

    frame = tables.run_table(view, outcomes)

    assert list(frame.columns) == ["Model", "Learning rate", "Final test acc. (%)", "Trainable parameters", "Outcome"]
    assert frame.attrs["keys"] == view.columns
    assert frame.iloc[0].tolist() == ["Tutorial MLP", 0.1, 87.25, 669_706, "trained"]
    assert frame.iloc[1].tolist() == ["BN MLP", 0.1, "not run", "not run", "not run"]


def test_epoch_table_takes_first_and_last_logged_batch(make_outcome):
    view = EpochTableView(kind="epoch_table", log_every=100)
    outcome = with_steps(make_outcome(model="model_a", lr=0.001, accs=[97.0, 98.0]), 938)

    frame = tables.epoch_table(view, [outcome])

    assert len(frame) == 2
    first = frame.iloc[0]
    assert first["Epoch"] == 1
    assert first["Loss, first logged batch"] == 1100.0  # batch 100
    assert first["Loss, last logged batch"] == 1900.0  # batch 900, the last multiple of 100 in 938
    assert first["Test acc. (%)"] == 97.0
    assert frame.iloc[1]["Loss, last logged batch"] == 2900.0
    assert any("batches 100 and 900 of 938" in note for note in frame.attrs["notes"])


def test_epoch_table_with_fewer_steps_than_log_every_uses_first_and_last_step(make_outcome):
    view = EpochTableView(kind="epoch_table", log_every=100)
    outcome = with_steps(make_outcome(model="model_b", accs=[50.0]), 8)

    frame = tables.epoch_table(view, [outcome])

    assert frame.iloc[0]["Loss, first logged batch"] == 1001.0
    assert frame.iloc[0]["Loss, last logged batch"] == 1008.0
    assert any("only 8 batches" in note and "fewer than the 100" in note for note in frame.attrs["notes"])


def test_epoch_table_names_varying_fields_and_marks_missing_runs(make_outcome):
    view = EpochTableView(kind="epoch_table", log_every=10)
    outcomes = [with_steps(make_outcome(model="model_b", lr=0.01, accs=[90.0]), 20),
                make_outcome(model="model_b", lr=0.1, missing=True)]

    frame = tables.epoch_table(view, outcomes)

    assert list(frame.columns[:3]) == ["Model", "Learning rate", "Epoch"]
    assert frame.iloc[1].tolist()[:3] == ["Model B", 0.1, "not run"]


@pytest.mark.parametrize("steps, log_every, expected", [
    (938, 100, (100, 900)), (100, 100, (100, 100)), (50, 100, (1, 50)), (0, 100, None), (1, 1, (1, 1)),
])
def test_logged_steps(steps, log_every, expected):
    assert tables.logged_steps(steps, log_every) == expected


def test_dataset_table_sizes_shape_and_class_counts():
    classes = ("T-shirt/top", "Trouser", "Bag")
    train = FakeSplit(torch.zeros(7, 28, 28, dtype=torch.uint8), torch.tensor([0, 0, 0, 1, 1, 2, 2]), classes, "/data/f")
    test = FakeSplit(torch.zeros(3, 28, 28, dtype=torch.uint8), torch.tensor([0, 1, 2]), classes, "/data/f")

    frame = tables.dataset_table(train, test)

    rows = {row[0]: (row[1], row[2]) for row in frame.itertuples(index=False)}
    assert rows["Images"] == (7, 3)
    assert rows["Shape of one image (C, H, W)"] == ("[1, 28, 28]", "[1, 28, 28]")
    assert rows["0: T-shirt/top"] == (3, 1)
    assert rows["2: Bag"] == (2, 1)
    assert any("/data/f" in note for note in frame.attrs["notes"])


@pytest.mark.parametrize("key, value, text", [
    ("final_accuracy", 87.4567, "87.46"),
    ("final_train_loss", 0.123456, "0.1235"),
    ("final_train_loss", 2.0, "2.000"),
    ("final_train_loss", 1234.5678, "1235"),
    ("final_train_loss", 3.2e7, "3.200e+07"),
    ("final_train_loss", float("nan"), "NaN"),
    ("final_test_loss", float("inf"), "∞"),
    ("params", 1_863_690, "1,863,690"),
    ("lr", 0.001, "0.001"),
    ("lr", 1.0, "1"),
    ("epochs_to_target", "not reached", "not reached"),
    ("epochs_to_target", None, "—"),
    ("shuffle", True, "yes"),
    ("seconds_per_epoch", 12.345, "12.3"),
])
def test_format_value(key, value, text):
    assert tables.format_value(key, value) == text


def test_write_csv_keeps_missing_and_non_finite_apart(tmp_path, make_outcome):
    view = TableView(kind="table", columns=["model", "final_train_loss", "epochs_to_target"])
    outcomes = [make_outcome(model="mlp", train_losses=[1.0, math.nan], accs=[10.0, 10.0])]
    path = tmp_path / "t.csv"

    tables.write_csv(tables.run_table(view, outcomes), path)

    lines = path.read_text().splitlines()
    assert lines[0] == "Model,Final train loss,Epoch reaching target"
    assert lines[1] == "Tutorial MLP,nan,"


def test_varying_fields_and_run_label(make_outcome):
    runs = [make_outcome(model="mlp", lr=0.1).planned, make_outcome(model="mlp", lr=1.0).planned]

    fields = naming.varying_fields(runs)

    assert fields == ["lr"]
    assert naming.run_name(runs[1], fields) == "lr 1"
    assert naming.run_name(runs[1], []) == "Tutorial MLP"
