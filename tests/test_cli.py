"""The command line: help texts, listing, running, user errors without tracebacks."""
import re

import pytest
from typer.testing import CliRunner

from reportgen.cli import app

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args))


@pytest.mark.parametrize("command", [[], ["list"], ["run"], ["build"], ["status"], ["clean"], ["plan"], ["vocab"], ["diff"], ["summary"]])
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


def test_run_with_another_out_reuses_the_projects_cache(tiny_spec, tmp_path, data_dir):
    common = ["--spec", str(tiny_spec), "--profile", "smoke", "--data-dir", str(data_dir), "--no-report"]
    first = invoke("run", "a", *common, "--out", str(tmp_path / "build"))
    assert first.exit_code == 0, first.output
    assert "4 to train" in first.output
    elsewhere = invoke("run", "a", *common, "--out", str(tmp_path / "elsewhere"))
    assert elsewhere.exit_code == 0, elsewhere.output
    assert "4 cached, 0 to train" in elsewhere.output
    cache = tiny_spec.parent / ".reportgen" / "cache"
    assert f"Run cache: {cache}" in elsewhere.output.replace("\n", "")
    assert len([p for p in (cache / "runs").glob("??/*") if p.is_dir()]) == 4
    assert not (tmp_path / "build" / "cache").exists() and not (tmp_path / "elsewhere" / "cache").exists()


def test_cache_dir_option_and_environment_override_the_default(tiny_spec, tmp_path, monkeypatch):
    common = ["--spec", str(tiny_spec), "--profile", "smoke", "--device", "cpu"]
    by_option = invoke("status", *common, "--cache-dir", str(tmp_path / "mine"))
    assert f"Run cache: {tmp_path / 'mine'}" in by_option.output.replace("\n", ""), by_option.output
    monkeypatch.setenv("REPORTGEN_CACHE_DIR", str(tmp_path / "from-env"))
    by_env = invoke("status", *common)
    assert f"Run cache: {tmp_path / 'from-env'}" in by_env.output.replace("\n", ""), by_env.output


def test_an_older_cache_under_out_is_pointed_out(tiny_spec, tmp_path):
    (tmp_path / "out" / "cache" / "runs").mkdir(parents=True)
    result = invoke("status", "--spec", str(tiny_spec), "--profile", "smoke", "--device", "cpu", "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    assert "older reportgen" in result.output and "mv " in result.output


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
    outcomes = collect_outcomes(spec, list(spec.questions), "smoke", "cpu", tiny_spec.parent / ".reportgen" / "cache")
    per_question = training_seconds(outcomes)
    assert 0 < total_training_seconds(outcomes) < sum(per_question.values())  # q b reuses a run of q a


def fixed_probe(monkeypatch, calls: list):
    """A probe that times nothing: 1 ms per training sample, 0.5 ms per test sample."""
    from reportgen import estimate

    def probe(request, data_dir=None):
        calls.append(request["model_args"])
        return estimate.Speed(1e-3, 5e-4, "probe")

    monkeypatch.setattr(estimate, "probe_speed", probe)


def test_plan_lists_each_run_to_train_with_its_estimate_in_80_columns(tiny_spec, tmp_path, monkeypatch):
    calls = []
    fixed_probe(monkeypatch, calls)
    monkeypatch.setenv("COLUMNS", "80")  # what rich assumes for a stream that is not a terminal, made explicit
    result = invoke("plan", "--spec", str(tiny_spec), "--profile", "smoke", "--out", str(tmp_path / "out"), "--workers", "2")
    assert result.exit_code == 0, result.output
    assert max(len(line) for line in result.output.splitlines()) <= 80
    rows = [line.split() for line in result.output.splitlines() if " new " in line]
    assert len(rows) == 4  # mlp and bn at two rates; question b's run is a's mlp at lr 0.1
    # 256 training + 200 test samples an epoch: 0.356 s; a's 2 epochs, b's 3 for mlp at lr 0.1
    assert ["a", "b", "mlp", "0.1", "0", "new", "3", "1.1", "s"] in rows
    assert ["a", "bn", "0.01", "0", "new", "2", "0.7", "s"] in rows
    # two lockstep groups side by side: mlp at both rates (1.1 + 0.7 s), bn at both (0.7 + 0.7 s)
    assert "4 runs planned: 0 cached, 4 to train, 3.2 s of training; 1.8 s wall time with 2 runs side by side." \
        in " ".join(result.output.split())
    assert len(calls) == 2  # one probe per model, not per run


def test_plan_after_a_run_shows_cached_and_extended_runs(tiny_spec, tmp_path, data_dir, monkeypatch):
    common = ["--spec", str(tiny_spec), "--profile", "smoke", "--out", str(tmp_path / "out")]
    invoke("run", "a", *common, "--data-dir", str(data_dir), "--no-report")
    calls = []
    fixed_probe(monkeypatch, calls)
    result = invoke("plan", "b", *common)
    assert result.exit_code == 0, result.output
    assert "1 runs planned: 0 cached, 1 to train" in result.output
    assert re.search(r"^\s*b\s+mlp\s+0\.1\s+0\s+extend\s+1\s", result.output, re.M), result.output
    assert calls == []  # the cached epochs measured the model
    everything = invoke("plan", *common)
    assert "4 runs planned: 3 cached, 1 to train" in everything.output
    assert re.search(r"^\s*a\s+0\s+cached\s*$", everything.output, re.M), everything.output  # a's budgets are served


def test_plan_with_everything_cached_says_so(tiny_spec, tmp_path, data_dir):
    common = ["--spec", str(tiny_spec), "--profile", "smoke", "--out", str(tmp_path / "out")]
    invoke("run", "b", *common, "--data-dir", str(data_dir), "--no-report")
    result = invoke("plan", "b", *common)
    assert result.exit_code == 0 and "Nothing to train: all 1 runs are cached." in result.output
    assert f"Run cache: {tiny_spec.parent / '.reportgen' / 'cache'}" in result.output.replace("\n", "")


def test_a_build_in_a_log_prints_one_line_per_trained_run(tiny_spec, tmp_path, data_dir):
    result = invoke("build", "--spec", str(tiny_spec), "--profile", "smoke", "--out", str(tmp_path / "out"),
                    "--data-dir", str(data_dir), "--no-pdf")
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert re.search(r"4 runs planned, 0 cached, 4 to train \([\d.]+ s of training; [\d.]+ s wall time with "
                     r"(\d runs side by side|one run at a time)\)\.", said), result.output
    lines = re.findall(r"^\[(\d)/4\] (?:mlp|bn) lr=0\.0?1 seed=0: \d epochs? in [\d.]+ s; (\d) runs? left(.*)$",
                       result.output, re.M)
    assert [(done, left) for done, left, _ in lines] == [("1", "3"), ("2", "2"), ("3", "1"), ("4", "0")], result.output
    assert all(re.fullmatch(r", [\d.]+ s estimated", rest) for _, _, rest in lines[:3]) and lines[3][2] == ""
    html = (tmp_path / "out" / "report.html").read_text()
    for row in ("Training time (each run once)", "Training wall time of this build, estimated beforehand",
                "Training wall time of this build, actual"):
        assert re.search(rf"<th scope=\"row\">{re.escape(row)}</th><td class=\"wrap\">[\d.]+ s</td>", html), row
    assert re.search(r"<th scope=\"row\">Runs trained side by side</th><td class=\"wrap\">\d+</td>", html)


def _terminal_text(spec_text: str, qid: str, tmp_path, width: int = 80) -> str:
    """What `reportgen run` prints for a question, on a terminal `width` columns wide (synthetic results)."""
    from rich.console import Console

    from reportgen import cli
    from reportgen.plan import plan_question
    from reportgen.results import RunOutcome
    from reportgen.spec import load_spec
    from tests.test_report import fake_result

    path = tmp_path / "spec.toml"
    path.write_text(spec_text)
    spec = load_spec(path)
    outcomes = [RunOutcome(run, fake_result(run)) for run in plan_question(spec, qid, "cpu", "cpu")]
    session = cli.Session(path, spec, "cpu", "cpu", None, tmp_path, tmp_path)
    console = Console(width=width, record=True, file=open("/dev/null", "w"))
    original, cli.console = cli.console, console
    try:
        cli._print_results(session, qid, outcomes)
    finally:
        cli.console = original
    return console.export_text()


def test_run_prints_the_question_s_own_table_uncut_on_80_columns(tiny_spec, tmp_path):
    from tests.conftest import TINY_SPEC

    spec = TINY_SPEC.replace('columns = ["model", "lr", "final_accuracy"]',
                             'columns = ["model", "lr", "final_accuracy", "best_accuracy", "final_train_loss", '
                             '"final_test_loss", "epochs_trained", "stop_reason", "outcome"], caption = "Per rate."')
    text = _terminal_text(spec, "a", tmp_path)
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= 80
    flat = " ".join(text.split())
    for title in ("Learning rate", "Final test acc. (%)", "Why it stopped", "Per rate."):
        assert all(word in flat for word in title.split()), title
    assert "Tiny BN MLP" in flat


def test_rows_that_differ_only_in_a_hidden_field_are_told_apart(tmp_path):
    from tests.conftest import TINY_SPEC

    spec = TINY_SPEC.replace('runs = [{ model = ["mlp", "bn"], lr = [0.1, 0.01] }]',
                             'runs = [{ model = "mlp", lr = 0.1, optimizer = ["sgd", "adam"] }]')
    spec = spec.replace('columns = ["model", "lr", "final_accuracy"]', 'columns = ["model", "final_accuracy"]')
    spec = spec.replace("references = [{ select = { model = \"mlp\", lr = 0.1 }", "references = [{ select = { model = \"mlp\" }")
    text = _terminal_text(spec, "a", tmp_path)
    assert "Optimizer" in text and "sgd" in text and "adam" in text


def test_a_mean_and_its_spread_stay_on_one_line_on_80_columns():
    import os

    from rich.console import Console

    from reportgen import cli

    labels = [("Model", "model", ["Tutorial MLP 784-512-512-10"] * 2), ("Learning rate", "lr", ["0.1", "1"])]
    metrics = [cli._split_spread((f"Final test acc. {i} (%)", "final_accuracy", ["52.05 ± 3.72", "9.40"]))
               for i in range(5)]
    assert metrics[0][1][2] == ["±3.72", ""]  # the spread in its own column; a lone seed has none
    console = Console(width=80, record=True, file=open(os.devnull, "w"))
    for chunk in cli._pack_columns(labels, metrics, 80):
        console.print(cli._table_of(None, chunk, 2))
    lines = console.export_text().splitlines()
    assert max(map(len, lines)) <= 80
    rows = [line for line in lines if "52.05" in line]
    assert sum(line.count("52.05") for line in rows) == 5
    assert all(line.count("52.05") == line.count("±3.72") for line in rows)  # never a mean without its spread


def test_list_flags_asks_nothing_planned_can_answer(tiny_spec, tmp_path):
    text = tiny_spec.read_text().replace('runs = [{ model = "mlp", lr = 0.1, epochs = 3 }]',
                                         'runs = [{ model = "mlp", lr = 0.1, epochs = 3 }]\n'
                                         'asks = [{ ask = "the epoch of 85 %", by = "rate_epochs" }, '
                                         '{ ask = "the accuracy", by = "final_accuracy" }]')
    tiny_spec.write_text(text)
    listed = invoke("list", "--spec", str(tiny_spec), "--profile", "smoke")
    assert listed.exit_code == 0, listed.output
    flagged = " ".join(listed.output.split())
    assert "2 (1 not measured)" in flagged
    assert "b: 'the epoch of 85 %' (rate_epochs): no run has a target accuracy" in flagged
    assert "'the accuracy'" not in flagged


def test_run_prints_one_answer_sentence_per_ask_as_the_report_does(tiny_spec, tmp_path, data_dir):
    asks = ('asks = [{ ask = "the accuracy per rate", by = "final_accuracy" }, '
            '{ ask = "the shape of an image", by = "image_shape", args = { dataset = "fashion-mnist" } }, '
            '{ ask = "the epoch of 85 %", by = "rate_epochs" }]\nreferences = [')
    tiny_spec.write_text(tiny_spec.read_text().replace("references = [", asks, 1))
    result = invoke("run", "a", "--spec", str(tiny_spec), "--profile", "smoke", "--out", str(tmp_path / "out"),
                    "--data-dir", str(data_dir), "--no-report")
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert re.search(r"Answer\. Final test accuracy, at lr 0\.1, 0\.01: Tiny MLP [\d.]+, [\d.]+ %; Tiny BN MLP "
                     r"[\d.]+, [\d.]+ %\. One image is a 1 × 28 × 28 \(C × H × W\) float tensor, values 0 to 1\. "
                     r"Not measured: the epoch of 85 %\.", said), said


def test_plan_and_list_flag_an_ask_that_nothing_planned_can_answer(tiny_spec, tmp_path):
    """Question b trains one rate with no target: an ask for every rate's epoch to the target is flagged before
    anything trains, with the ask, its kind and the reason; a question that can answer its ask is not."""
    tiny_spec.write_text(tiny_spec.read_text()
                         .replace('observers = [{ kind = "lr_effect" }]',
                                  'observers = [{ kind = "lr_effect" }]\n'
                                  'asks = [{ ask = "the best rate", by = "lr_effect" }]')
                         .replace('runs = [{ model = "mlp", lr = 0.1, epochs = 3 }]',
                                  'runs = [{ model = "mlp", lr = 0.1, epochs = 3 }]\n'
                                  'observers = [{ kind = "convergence" }]\n'
                                  'asks = [{ ask = "the epoch each rate first reaches 85 %", by = "rate_epochs" }]'))
    flag = ("Not measured under profile 'smoke': b: 'the epoch each rate first reaches 85 %' (rate_epochs): "
            "no run has a target accuracy (until_accuracy)")
    listed = invoke("list", "--spec", str(tiny_spec), "--profile", "smoke")
    assert listed.exit_code == 0, listed.output
    assert flag in " ".join(listed.output.split()) and "1 (1 not measured)" in listed.output
    planned = invoke("plan", "--spec", str(tiny_spec), "--profile", "smoke", "--device", "cpu",
                     "--out", str(tmp_path / "out"))
    assert planned.exit_code == 0, planned.output
    said = " ".join(planned.output.split())
    assert flag in said and "a: 'the best rate'" not in said
