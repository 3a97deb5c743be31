"""One naming vocabulary: tables, legends, prose, the reproduction check and log lines say a run the same way."""
from __future__ import annotations

from reportgen.analysis import naming


def test_prose_names_fields_in_the_words_tables_and_legends_use(make_outcome):
    runs = [make_outcome(model="mlp", lr=0.1, optimizer="sgd"), make_outcome(model="mlp", lr=0.1, optimizer="adam"),
            make_outcome(model="bn_mlp", lr=0.01, shuffle=True, batch_size=128)]
    name = naming.name_runs(runs)  # only what differs within a model: here the optimizer, not the lr
    assert [name(o) for o in runs] == ["Tutorial MLP, SGD", "Tutorial MLP, Adam", "BN MLP, SGD"]
    assert naming.describe_run(runs[2], ["lr", "batch_size", "shuffle"]) == "BN MLP, lr 0.01, batch 128, shuffled"
    assert naming.describe_run(runs[2]) == naming.model_label(runs[2].planned) == "BN MLP"
    assert naming.field_text(runs[1].planned, "optimizer") == "Adam"


def test_a_log_line_names_a_job_by_its_model_lr_and_seed():
    request = {"arch": "mlp", "lr": 0.010, "seed": 2}
    assert naming.log_name(request) == "mlp lr=0.01 seed=2"
    assert naming.log_name(request | {"lr": 1.0}, "bn_mlp") == "bn_mlp lr=1 seed=2"
