"""The pairing rule against the engine: seed s of two runs that analysis/pairing.py pairs starts from the same
weights and sees the same batches; runs it does not pair do not."""
from __future__ import annotations

import torch

from reportgen.analysis import pairing
from reportgen.lockstep import epoch_order
from reportgen.plan import plan_question
from reportgen.spec import load_spec
from reportgen.train import new_state

RATES_SPEC = """
title = "pairing"
[protocols.p]
dataset = "fashion-mnist"
optimizer = "sgd"
lr = 0.1
batch_size = 64
test_batch_size = 500
shuffle = true
epochs = 1
[models.mlp]
arch = "mlp"
label = "MLP"
args = { hidden = [32] }
[models.wide]
arch = "mlp"
label = "Wide MLP"
args = { hidden = [64] }
[questions.a]
part = "P"
title = "Rates"
prompt = "Two rates, two batch sizes, two widths."
protocol = "p"
runs = [{ model = ["mlp", "wide"], lr = [0.1, 0.01], batch_size = [64, 128], seeds = 2 }]
"""


def weights(request: dict) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in new_state(request).model.state_dict().items()}


def same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_seed_s_of_two_paired_runs_starts_from_identical_weights_and_batch_order(tmp_path):
    spec_path = tmp_path / "experiments.toml"
    spec_path.write_text(RATES_SPEC)
    runs = plan_question(load_spec(spec_path), "a", "cpu", "cpu")
    by = {(r.labels["model"], r.labels["lr"], r.labels["batch_size"], r.labels["seed"]): r.request for r in runs}
    for seed in (0, 1):
        base = by[("mlp", 0.1, 64, seed)]
        for other in (by[("mlp", 0.01, 64, seed)], by[("mlp", 0.1, 128, seed)], by[("mlp", 0.01, 128, seed)]):
            assert pairing.same_start(base, other)
            assert same_weights(weights(base), weights(other))
            assert torch.equal(epoch_order(base, 1, 1000), epoch_order(other, 1, 1000))
        wide = by[("wide", 0.1, 64, seed)]
        assert not pairing.same_start(base, wide)  # another architecture: its own initial weights
    assert not same_weights(weights(by[("mlp", 0.1, 64, 0)]), weights(by[("mlp", 0.1, 64, 1)]))
    assert not torch.equal(epoch_order(by[("mlp", 0.1, 64, 0)], 1, 1000), epoch_order(by[("mlp", 0.1, 64, 1)], 1, 1000))
