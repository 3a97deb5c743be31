"""results.json: written by every build and run, numbers equal to the cached runs', read back with clear errors."""
from __future__ import annotations

import json
import math
from html import escape as html_escape

import pytest
from typer.testing import CliRunner

from reportgen.cli import app
from reportgen.errors import ResultsFileError
from reportgen.results_file import SCHEMA, read_results, results_document, results_path, write_results
from reportgen.spec import load_spec
from tests.test_stats import seed_run

PROVENANCE = {"profile": "smoke", "device": "cpu", "spec_path": "experiments.toml", "spec_hash": "ab" * 32,
              "command": "reportgen build", "total_training_seconds": 1.5}


@pytest.fixture(scope="module")
def smoke_build(tmp_path_factory, data_dir):
    """A tiny smoke build with two seeds per run point: (spec path, out folder)."""
    from tests.conftest import TINY_SPEC

    root = tmp_path_factory.mktemp("smoke")
    spec = root / "experiments.toml"
    spec.write_text(TINY_SPEC)
    result = CliRunner().invoke(app, ["build", "--spec", str(spec), "--profile", "smoke", "--device", "cpu",
                                      "--seeds", "2", "--out", str(root / "out"), "--data-dir", str(data_dir),
                                      "--no-pdf"])
    assert result.exit_code == 0, result.output
    return spec, root / "out"


def test_a_build_writes_every_question_with_seeds_and_aggregates(smoke_build):
    _, out = smoke_build
    doc = read_results(out)  # the folder: its results.json
    assert doc["schema"] == SCHEMA == 1
    assert list(doc["questions"]) == ["a", "b"]
    prov = doc["provenance"]
    assert prov["profile"] == "smoke" and prov["device"] == "cpu" and len(prov["spec_sha256"]) == 64
    assert set(prov["versions"]) >= {"reportgen", "torch", "python"}
    groups = doc["questions"]["a"]["groups"]
    assert [(g["labels"]["model"], g["labels"]["lr"]) for g in groups] == [
        ("mlp", 0.1), ("mlp", 0.01), ("bn", 0.1), ("bn", 0.01)]
    for group in groups:
        assert [s["seed"] for s in group["seeds"]] == [0, 1]
        accuracy = group["aggregate"]["metrics"]["final_accuracy"]
        values = [s["metrics"]["final_accuracy"] for s in group["seeds"]]
        assert accuracy["n"] == 2 and accuracy["values"] == values
        assert accuracy["mean"] == pytest.approx(sum(values) / 2)
        assert group["aggregate"]["outcomes"]["n"] == 2
    assert doc["questions"]["a"]["checks"][0]["metric"] == "final_accuracy"


def test_its_numbers_are_those_of_the_cached_runs(smoke_build):
    from reportgen.runner import collect_outcomes

    spec_path, out = smoke_build
    spec = load_spec(spec_path)
    outcomes = collect_outcomes(spec, list(spec.questions), "smoke", "cpu", spec_path.parent / ".reportgen" / "cache", seeds=2)
    doc = read_results(out / "results.json")
    for qid, runs in outcomes.items():
        by_key = {s["key"]: s for g in doc["questions"][qid]["groups"] for s in g["seeds"]}
        assert set(by_key) == {o.planned.key for o in runs}
        for outcome in runs:
            seed, result = by_key[outcome.planned.key], outcome.result
            assert seed["metrics"]["final_accuracy"] == result.final.test_accuracy
            assert seed["metrics"]["epochs_trained"] == len(result.epochs)
            assert seed["epochs"]["test_accuracy"] == [e.test_accuracy for e in result.epochs]
            assert seed["epochs"]["train_loss"] == [e.train_loss for e in result.epochs]
            assert seed["epochs"]["test_loss"] == [e.test_loss for e in result.epochs]
            assert seed["machine"] == result.machine and seed["machine"]["torch_threads"] >= 1


def test_run_writes_one_results_file_per_question(tiny_spec, tmp_path, data_dir):
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["run", "b", "--spec", str(tiny_spec), "--profile", "smoke", "--device", "cpu",
                                      "--out", str(out), "--data-dir", str(data_dir)])
    assert result.exit_code == 0, result.output
    doc = read_results(out / "b.results.json")
    assert list(doc["questions"]) == ["b"] and not (out / "results.json").exists()
    assert doc["questions"]["b"]["groups"][0]["seeds"][0]["metrics"]["epochs_trained"] == 3


# ---------------------------------------------------------------- synthetic outcomes, no training

@pytest.fixture
def document(tiny_spec):
    """outcomes → the results document of question a of the tiny spec."""
    spec = load_spec(tiny_spec)
    return lambda outcomes: results_document(spec, "smoke", {"a": outcomes}, PROVENANCE)


def test_a_diverged_seed_is_written_as_valid_json_and_counted(document):
    nan = float("nan")
    doc = document([seed_run(0, [70.0, 80.0], losses=[0.9, 0.5]),
                    seed_run(1, [10.0, 10.0], losses=[2.3, nan], stop="diverged"),
                    seed_run(2, [], missing=True)])
    text = json.dumps(doc, allow_nan=False)  # strict JSON: no bare NaN
    (group,) = json.loads(text)["questions"]["a"]["groups"]
    assert group["seeds"][1]["metrics"]["final_train_loss"] == "NaN"
    assert math.isnan(float(group["seeds"][1]["epochs"]["train_loss"][1]))
    assert group["seeds"][2] == {"seed": 2, "key": "mlp-0.1-2", "request": {"arch": "mlp", "lr": 0.1, "seed": 2},
                                 "in_cache": False, "machine": None, "metrics": {}, "epochs": {}}
    loss = group["aggregate"]["metrics"]["final_train_loss"]
    assert (loss["n"], loss["non_finite"], loss["mean"]) == (1, 1, 0.5)
    assert group["aggregate"]["outcomes"]["counts"] == {"trained": 1, "diverged": 1}
    assert group["aggregate"]["outcomes"]["missing"] == 1
    assert group["aggregate"]["outcomes"]["text"] == "diverged in 1 of 2 seeds (1 not in the cache)"


def test_epochs_to_target_gets_its_own_aggregate(document):
    doc = document([seed_run(0, [60.0, 81.0], until=80.0), seed_run(1, [60.0, 70.0], until=80.0, stop="epoch cap")])
    aggregate = doc["questions"]["a"]["groups"][0]["aggregate"]
    assert "epochs_to_target" not in aggregate["metrics"]
    assert aggregate["epochs_to_target"]["reached"] == 1 and aggregate["epochs_to_target"]["not_reached"] == 1


def test_runs_are_grouped_by_everything_but_the_seed_in_order_of_first_appearance(document):
    runs = [seed_run(0, [80.0], lr=0.1), seed_run(0, [70.0], lr=0.01), seed_run(1, [81.0], lr=0.1),
            seed_run(1, [71.0], lr=0.01), seed_run(0, [60.0], lr=0.1, model="cnn")]
    groups = document(runs)["questions"]["a"]["groups"]
    assert [(g["labels"]["model"], g["labels"]["lr"]) for g in groups] == [("mlp", 0.1), ("mlp", 0.01), ("cnn", 0.1)]
    assert [[s["seed"] for s in g["seeds"]] for g in groups] == [[0, 1], [0, 1], [0]]
    assert all("seed" not in g["labels"] for g in groups)


def test_a_metric_over_seeds_leaves_missing_runs_out(document):
    doc = document([seed_run(0, [70.0, 80.0]), seed_run(1, [72.0, 84.0]), seed_run(2, [], missing=True)])
    metrics = doc["questions"]["a"]["groups"][0]["aggregate"]["metrics"]
    assert (metrics["final_accuracy"]["n"], metrics["final_accuracy"]["mean"]) == (2, 82.0)
    assert metrics["final_accuracy"]["values"] == [80.0, 84.0] and metrics["best_accuracy"]["max"] == 84.0


def test_epochs_to_target_median_range_and_seeds_that_missed_it(document):
    doc = document([seed_run(0, [60.0, 70.0, 80.0], until=80.0), seed_run(1, [62.0, 81.0], until=80.0),
                    seed_run(2, [64.0, 72.0, 76.0, 78.0, 79.0], until=80.0, stop="epoch cap"),
                    seed_run(3, [80.5], until=80.0)])
    target = doc["questions"]["a"]["groups"][0]["aggregate"]["epochs_to_target"]
    assert target == {"n": 4, "reached": 3, "not_reached": 1, "median": 2, "min": 1, "max": 3,
                      "text": "median epoch 2 (range 1–3); not reached in 1 of 4 seeds"}
    no_target = document([seed_run(0, [60.0])])["questions"]["a"]["groups"][0]["aggregate"]
    assert no_target["epochs_to_target"] is None


def test_all_seeds_trained_reads_so(document):
    outcomes = document([seed_run(0, [70.0]), seed_run(1, [71.0])])["questions"]["a"]["groups"][0]["aggregate"]["outcomes"]
    assert outcomes["text"] == "trained in all 2 seeds"


def test_results_paths_for_a_build_and_a_question(tmp_path):
    assert results_path(tmp_path, "report") == tmp_path / "results.json"
    assert results_path(tmp_path, "q1.3") == tmp_path / "q1.3.results.json"


def test_write_leaves_no_temp_file_and_reads_back(tmp_path, document):
    doc = document([seed_run(0, [70.0])])
    path = write_results(doc, tmp_path / "sub" / "results.json")
    assert [p.name for p in path.parent.iterdir()] == ["results.json"]
    assert read_results(path) == doc


@pytest.mark.parametrize("content, words", [
    (None, "no such file"), ("{not json", "not valid JSON"), ('{"schema": 99}', "schema 99"),
    ("[1, 2]", "not a reportgen results file"),
    ('{"schema": 1, "provenance": {}, "questions": {"a": {"groups": [{"labels": {}}]}}}', "questions.a.groups[0].seeds"),
])
def test_unreadable_files_are_errors_naming_the_file(tmp_path, content, words):
    path = tmp_path / "results.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ResultsFileError, match="results.json") as raised:
        read_results(path)
    assert words in str(raised.value) and str(path) in str(raised.value)
    assert raised.value.exit_code == 2


def test_the_file_answers_a_data_question_as_the_report_does(tmp_path, data_dir):
    """An answer read from the data set (its shape, its class counts) is the same sentence in results.json as in
    the HTML: both are written with the same data loader and profile."""
    spec = tmp_path / "experiments.toml"
    spec.write_text('''
title = "data"
[models.m]
arch = "mlp"
label = "M"
args = { hidden = [8] }

[questions.d]
part = "P"
title = "The images"
prompt = "State the shape of one image and the images per class."
views = [{ kind = "dataset_table", dataset = "fashion-mnist" }]
asks = [
  { ask = "the shape of one image", by = "image_shape", args = { dataset = "fashion-mnist" } },
  { ask = "the images per class", by = "class_counts", args = { dataset = "fashion-mnist" } },
]
''')
    result = CliRunner().invoke(app, ["build", "--spec", str(spec), "--profile", "cpu", "--device", "cpu", "--no-pdf",
                                      "--out", str(tmp_path / "out"), "--data-dir", str(data_dir)])
    assert result.exit_code == 0, result.output
    answer = read_results(tmp_path / "out")["questions"]["d"]["answer"]
    html = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert any("1 × 28 × 28" in sentence for sentence in answer) and not any("Not measured" in s for s in answer)
    assert all(html_escape(sentence) in html for sentence in answer)
