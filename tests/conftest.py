"""Shared fixtures: where the real data live, and a tiny spec that trains in seconds."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Shuffled batches over 512 training images, 2 epochs: what the statistics tests train, seeds apart, in seconds.
SHUFFLED_PROTOCOL = """
[protocols.p]
dataset = "fashion-mnist"
optimizer = "sgd"
lr = 0.1
batch_size = 64
test_batch_size = 500
shuffle = true
epochs = 2
train_subset = 512
test_subset = 500
"""

TINY_SPEC = """
title = "tiny"
seed = 0

[protocols.p]
dataset = "fashion-mnist"
optimizer = "sgd"
lr = 0.1
batch_size = 64
test_batch_size = 500
shuffle = false
epochs = 2

[models.mlp]
arch = "mlp"
label = "Tiny MLP"
args = { hidden = [32] }

[models.bn]
arch = "mlp"
label = "Tiny BN MLP"
args = { hidden = [32, 16], batch_norm = true }

[profiles.full]
description = "all data"
[profiles.cpu]
description = "all data"
[profiles.smoke]
description = "tiny"
[[profiles.smoke.overlays]]
set = { train_subset = 256, test_subset = 200 }

[questions.a]
part = "Part"
title = "Question A"
prompt = "Train the tiny MLP."
protocol = "p"
runs = [{ model = ["mlp", "bn"], lr = [0.1, 0.01] }]
views = [{ kind = "table", columns = ["model", "lr", "final_accuracy"] }]
observers = [{ kind = "lr_effect" }]
references = [{ select = { model = "mlp", lr = 0.1 }, metric = "final_accuracy", value = 50.0, tolerance = 50 }]

[questions.b]
part = "Part"
title = "Question B"
prompt = "The same runs, longer."
protocol = "p"
runs = [{ model = "mlp", lr = 0.1, epochs = 3 }]
"""


def find_data_dir() -> Path | None:
    env = os.environ.get("REPORTGEN_DATA_DIR")
    if env and Path(env).is_dir():
        return Path(env)
    beside = REPO.parent / "shared" / "datasets"
    return beside if (beside / "fashion-mnist").is_dir() else None


@pytest.fixture(scope="session")
def data_dir() -> Path:
    found = find_data_dir()
    if found is None:
        pytest.skip("no offline data sets: set REPORTGEN_DATA_DIR or place shared/datasets beside the repo")
    return found


@pytest.fixture
def tiny_spec(tmp_path: Path) -> Path:
    path = tmp_path / "experiments.toml"
    path.write_text(TINY_SPEC)
    return path
