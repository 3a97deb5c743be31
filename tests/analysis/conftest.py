"""Synthetic run outcomes for the analysis tests: no training, no torch."""
from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from reportgen.results import Budget, EpochMetrics, PlannedRun, RunOutcome, RunResult

MODEL_LABELS = {  # a few presets of experiments.toml, so sentences read as in the report
    "mlp": "Tutorial MLP", "mlp_wide": "Wider MLP", "mlp_deep": "Deeper MLP",
    "bn_mlp": "BN MLP", "bn_mlp_wide": "Wider BN MLP", "bn_mlp_deep": "Deeper BN MLP",
    "cnn": "Small CNN", "bn_cnn": "BN CNN", "model_a": "Model A (ReLU)", "model_a_sigmoid": "Model A (Sigmoid)",
    "model_a_tanh": "Model A (Tanh)", "model_b": "Model B",
}


def build_outcome(model: str = "mlp", lr: float = 0.01, accs: list[float] | None = None,
                  train_losses: list[float] | None = None, test_losses: list[float] | None = None,
                  params: int = 100_000, until_accuracy: float | None = None, stop_reason: str = "completed",
                  probes: dict[str, list[float]] | None = None, *, seconds: float = 1.0,
                  max_epochs: int | None = None, question: str = "q", overlays: tuple[str, ...] = (),
                  missing: bool = False, model_label: str | None = None, **labels: Any) -> RunOutcome:
    """A RunOutcome whose curves are the given lists (one value per epoch).

    Losses default to a smooth fall; extra keyword arguments become run labels (optimizer=...);
    `missing=True` gives an outcome without a result, as for a run absent from the cache.
    """
    accs = list(accs if accs is not None else [80.0, 85.0, 87.0])
    n = len(accs)
    train_losses = list(train_losses if train_losses is not None else [1.0 / (i + 1) for i in range(n)])
    test_losses = list(test_losses if test_losses is not None else [1.1 / (i + 1) for i in range(n)])
    all_labels = {"model": model, "lr": lr, "optimizer": "sgd", "epochs": max_epochs or n,
                  "until_accuracy": until_accuracy, **labels,
                  "model_label": model_label or MODEL_LABELS.get(model, model), "arch": model}
    request = {"model": model, "arch": model, "lr": lr, **labels}  # the seed of the same arch starts alike (pairing)
    key = hashlib.sha256(json.dumps(request, sort_keys=True, default=str).encode()).hexdigest()
    budget = Budget(max_epochs or n, until_accuracy)
    planned = PlannedRun(question, key, request, budget, all_labels, tuple(overlays))
    if missing:
        return RunOutcome(planned, None)
    epochs = [EpochMetrics(i + 1, tr, te, acc, seconds) for i, (tr, te, acc) in
              enumerate(zip(train_losses, test_losses, accs))]
    result = RunResult(key, request, params, epochs, stop_reason, probes or {}, budget)
    return RunOutcome(planned, result)


@pytest.fixture
def make_outcome():
    """The factory `build_outcome`, as a fixture: `make_outcome(model="mlp", lr=0.1, accs=[...])`."""
    return build_outcome
