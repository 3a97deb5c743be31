"""End to end on tiny real runs: identical settings under different names end with no *ahead* claim, rates over the
same seeds are compared paired, and results.json carries every comparison of every family."""
from __future__ import annotations

import pytest
from typer.testing import CliRunner

from reportgen.analysis.stats import AHEAD, ALPHA, PAIRED, VERDICTS, WELCH
from reportgen.cli import app
from reportgen.results_file import read_results
from tests.conftest import SHUFFLED_PROTOCOL

COPIES = ("c1", "c2", "c3", "c4")
SPEC = """
title = "verdicts"
""" + SHUFFLED_PROTOCOL + "".join(f"""
[models.{name}]
arch = "mlp"
label = "Copy {name[1]}"
args = {{ hidden = [32] }}
""" for name in COPIES) + """

[questions.copies]
part = "P"
title = "Four names, one network"
prompt = "Which copy is most accurate?"
protocol = "p"
runs = [""" + ", ".join(f'{{ model = "{name}", seeds = [{3 * i}, {3 * i + 1}, {3 * i + 2}] }}'
                         for i, name in enumerate(COPIES)) + """]
observers = [{ kind = "activation_effect" }, { kind = "compare", args = { along = "model" } }]

[questions.rates]
part = "P"
title = "Two rates"
prompt = "Which rate?"
protocol = "p"
margin = 1.0
runs = [{ model = "c1", lr = [0.1, 0.01], seeds = 3 }]
observers = [{ kind = "lr_effect" }]
references = [{ select = { lr = 0.1 }, metric = "final_accuracy", value = 70.0 }]
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory, data_dir):
    root = tmp_path_factory.mktemp("verdicts")
    spec = root / "experiments.toml"
    spec.write_text(SPEC)
    result = CliRunner().invoke(app, ["build", "--spec", str(spec), "--profile", "smoke", "--device", "cpu",
                                      "--out", str(root / "out"), "--cache-dir", str(root / "cache"),
                                      "--data-dir", str(data_dir), "--no-pdf"])
    assert result.exit_code == 0, result.output
    return read_results(root / "out"), (root / "out" / "report.html").read_text(encoding="utf-8")


def test_identical_settings_end_with_no_ahead_claim(built):
    doc, html = built
    comparisons = doc["questions"]["copies"]["comparisons"]
    compare = [c for c in comparisons if c["observer"] == "compare"]
    assert len(compare) == 6 and all(c["family_size"] == 6 for c in compare)
    assert all(c["level"] == pytest.approx(1 - ALPHA / 6) and c["test"] == WELCH for c in compare)
    assert all(not set(c["seeds_a"]) & set(c["seeds_b"]) for c in compare)  # each copy over its own seeds
    assert all(c["verdict"] in VERDICTS and c["verdict"] != AHEAD for c in comparisons)
    section = html[html.index('data-question="copies"'):html.index('data-question="rates"')]
    assert " ahead of " not in section and "level with" not in section


def test_rates_over_the_same_seeds_are_paired_with_the_question_s_margin(built):
    doc, html = built
    (c,) = doc["questions"]["rates"]["comparisons"]
    assert c["test"] == PAIRED and c["seeds_a"] == c["seeds_b"] == [0, 1, 2]
    assert c["margin"] == 1.0 and c["family_size"] == 1 and c["level"] == pytest.approx(1 - ALPHA)
    assert c["low"] <= c["difference"] <= c["high"] and c["verdict"] in VERDICTS
    assert "paired t" in html and "resolvable at 80 % power" in html


def test_the_reference_is_judged_by_the_prediction_interval(built):
    doc, html = built
    assert "against the 95 % prediction interval of one new run of ours" in html  # the front page counts
    (check,) = doc["questions"]["rates"]["checks"]
    assert check["judged_by"] == "prediction interval" and len(check["prediction"]) == 2
    low, high = check["prediction"]
    assert check["verdict"] == ("inside prediction interval" if low <= 70.0 <= high else "outside prediction interval")
