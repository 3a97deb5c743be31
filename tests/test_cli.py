"""The command line: help texts, listing, running, user errors without tracebacks."""
import re

import pytest
from typer.testing import CliRunner

from reportgen.cli import app

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args))


@pytest.mark.parametrize("command", [[], ["list"], ["run"], ["build"], ["status"], ["clean"]])
def test_every_command_explains_itself(command):
    result = invoke(*command, "--help")
    assert result.exit_code == 0
    assert "Usage" in result.output and len(result.output) > 200


def test_list_shows_every_question_with_title_and_run_count():
    result = invoke("list", "--profile", "cpu")
    assert result.exit_code == 0, result.output
    for qid in ["q1.1", "q1.2", "q1.3", "q1.4", "q1.5", "q1.6", "q1.7", "lab.t1", "lab.t2", "lab.act", "lab.lr"]:
        assert re.search(rf"^.*{re.escape(qid)}\b", result.output, re.M), qid
    assert "Learning rate" in result.output


@pytest.mark.parametrize("edit, expected", [
    (('title = "tiny"', 'title = "tiny'), "TOML syntax error"),
    (("lr = [0.1, 0.01] }", "lrr = [0.1, 0.01] }"), 'questions."a".runs[0].lrr'),
    (("batch_size = 64", 'batch_size = "big"'), 'protocols."p".batch_size'),
    (('model = ["mlp", "bn"]', 'model = ["mlp", "resnet"]'), "unknown model 'resnet'"),
    (('arch = "mlp"', 'arch = "transformer"'), "unknown architecture 'transformer'"),
    (('kind = "lr_effect"', 'kind = "vibes"'), "unknown observer 'vibes'"),
])
def test_spec_errors_exit_2_with_the_location_and_no_traceback(tiny_spec, tmp_path, edit, expected):
    tiny_spec.write_text(tiny_spec.read_text().replace(*edit, 1))
    result = invoke("run", "a", "--spec", str(tiny_spec), "--out", str(tmp_path / "out"))
    assert result.exit_code == 2, result.output
    assert expected in result.output.replace("\n", "")
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_unknown_question_id_suggests_one(tiny_spec, tmp_path):
    result = invoke("run", "aa", "--spec", str(tiny_spec), "--out", str(tmp_path / "out"), "--profile", "smoke")
    assert result.exit_code == 2
    assert "Did you mean 'a'" in result.output


def test_run_trains_then_a_second_run_trains_nothing(tiny_spec, tmp_path, data_dir):
    args = ["run", "a", "--spec", str(tiny_spec), "--profile", "smoke", "--out", str(tmp_path / "out"),
            "--data-dir", str(data_dir), "--no-report"]
    first = invoke(*args)
    assert first.exit_code == 0, first.output
    assert "4 to train" in first.output and "Question A" in first.output
    second = invoke(*args)
    assert second.exit_code == 0, second.output
    assert "4 cached, 0 to train" in second.output


def test_status_and_clean(tiny_spec, tmp_path, data_dir):
    common = ["--spec", str(tiny_spec), "--profile", "smoke", "--out", str(tmp_path / "out")]
    invoke("run", "b", *common, "--data-dir", str(data_dir), "--no-report")
    status = invoke("status", *common)
    assert status.exit_code == 0, status.output
    assert status.output.count("cached") >= 1 and "missing" in status.output
    cleaned = invoke("clean", *common)
    assert cleaned.exit_code == 0 and "Removed 1 cached runs" in cleaned.output


def test_a_diverged_run_is_an_outcome_in_the_report(tiny_spec, tmp_path, data_dir):
    tiny_spec.write_text(tiny_spec.read_text().replace("lr = [0.1, 0.01] }", "lr = [10000.0, 0.1] }"))
    out = tmp_path / "out"
    result = invoke("build", "--spec", str(tiny_spec), "--profile", "smoke", "--out", str(out),
                    "--data-dir", str(data_dir), "--no-pdf")
    assert result.exit_code == 0, result.output
    html = (out / "report.html").read_text()
    assert "diverged" in html or "stuck at chance" in html
    assert 'id="a"' in html or "Question A" in html  # the rest of the question still renders


def test_build_reports_training_time_counting_shared_runs_once(tiny_spec, tmp_path, data_dir):
    out = tmp_path / "out"
    result = invoke("build", "--spec", str(tiny_spec), "--profile", "smoke", "--out", str(out),
                    "--data-dir", str(data_dir), "--no-pdf")
    assert result.exit_code == 0, result.output
    from reportgen.runner import collect_outcomes, total_training_seconds, training_seconds
    from reportgen.spec import load_spec

    spec = load_spec(tiny_spec)
    outcomes = collect_outcomes(spec, list(spec.questions), "smoke", "cpu", out / "cache")
    per_question = training_seconds(outcomes)
    assert 0 < total_training_seconds(outcomes) < sum(per_question.values())  # q b reuses a run of q a
