"""Malformed and hostile specs: each exits with code 2, names the key, prints no traceback and
writes nothing."""
from __future__ import annotations

import pytest
from typer.testing import CliRunner

from reportgen.cli import app
from tests.conftest import TINY_SPEC

GRID = 'runs = [{ model = ["mlp", "bn"], lr = [0.1, 0.01] }]'

FAULTS = {
    "syntax error": (('title = "tiny"', 'title = "tiny'), "TOML syntax error"),
    "duplicate question id": (("[questions.b]", "[questions.a]"), "TOML syntax error"),
    "wrong type": (("batch_size = 64", 'batch_size = "big"'), 'protocols."p".batch_size'),
    "zero epochs": (("epochs = 2", "epochs = 0"), 'protocols."p".epochs'),
    "negative epochs in a grid": (("epochs = 3 }", "epochs = -3 }"), 'questions."b".runs[0].epochs'),
    "zero batch size": (("batch_size = 64", "batch_size = 0"), 'protocols."p".batch_size'),
    "negative batch size in a grid": ((GRID, 'runs = [{ model = "mlp", batch_size = -1 }]'), 'questions."a".runs[0].batch_size'),
    "zero lr": (("lr = 0.1\n", "lr = 0.0\n"), 'protocols."p".lr'),
    "negative lr in a grid": ((GRID, 'runs = [{ model = "mlp", lr = [0.1, -0.01] }]'), 'questions."a".runs[0].lr'),
    "nan lr": ((GRID, 'runs = [{ model = "mlp", lr = nan }]'), 'questions."a".runs[0].lr'),
    "infinite lr": (("lr = 0.1\n", "lr = inf\n"), 'protocols."p".lr'),
    "unknown run field": ((GRID, 'runs = [{ model = "mlp", lrr = 0.1 }]'), 'questions."a".runs[0].lrr'),
    "unknown key": (('title = "Question A"', 'title = "Question A"\ncolour = 1'), 'questions."a".colour'),
    "missing key": (('prompt = "Train the tiny MLP."', ""), 'questions."a".prompt'),
    "unknown model": ((GRID, 'runs = [{ model = "resnet" }]'), "unknown model 'resnet'"),
    "unknown architecture": (('arch = "mlp"', 'arch = "transformer"'), "unknown architecture 'transformer'"),
    "bad model argument": (("args = { hidden = [32] }", 'args = { hidden = "wide" }'), 'models."mlp".args.hidden'),
    "unknown model argument": (("args = { hidden = [32] }", "args = { hidden = [32], dropout = 0.5 }"), 'models."mlp".args.dropout: unknown argument; allowed: hidden'),
    "unknown activation": (("args = { hidden = [32] }", 'args = { hidden = [32], activation = "swish" }'), "activation: Input should be 'relu', 'sigmoid' or 'tanh' (got 'swish')"),
    "unknown optimizer": (('optimizer = "sgd"', 'optimizer = "lion"'), 'protocols."p".optimizer'),
    "unknown dataset": (('dataset = "fashion-mnist"', 'dataset = "cifar10"'), 'protocols."p".dataset'),
    "empty grid list": ((GRID, 'runs = [{ model = "mlp", lr = [] }]'), "empty list"),
    "duplicate grid values": ((GRID, 'runs = [{ model = "mlp", lr = [0.1, 0.1] }]'), "duplicate values"),
    "enormous grid": ((GRID, "runs = [{ model = \"mlp\", lr = [%s] }]" % ", ".join(str(0.001 * (i + 1)) for i in range(300))), "above the limit"),
    "include cycle": (('prompt = "The same runs, longer."', 'prompt = "x"\ninclude_runs_of = ["b"]'), "cycle"),
    "unknown include": (('prompt = "The same runs, longer."', 'prompt = "x"\ninclude_runs_of = ["zz"]'), "unknown question 'zz'"),
    "unknown view kind": (('kind = "table"', 'kind = "pie"'), 'questions."a".views[0]'),
    "unknown table column": (('columns = ["model", "lr", "final_accuracy"]', 'columns = ["model", "vibes"]'), "unknown column 'vibes'"),
    "unknown observer": (('kind = "lr_effect"', 'kind = "vibes"'), "unknown observer 'vibes'"),
    "unknown select field": (("select = { model", "select = { colour = 1, model"), "select.colour"),
    "path escape in a question id": (("[questions.b]", '[questions."../../escape"]'), "invalid question id"),
    "absolute path as question id": (("[questions.b]", '[questions."/etc/passwd"]'), "invalid question id"),
    "unknown dataset in a grid": ((GRID, 'runs = [{ model = "mlp", dataset = "shapes" }]'), 'questions."a".runs[0].dataset: unknown data set'),
    "unknown data-set kind": (("[questions.a]", '[datasets.shapes]\nkind = "csv"\npath = "x.csv"\n\n[questions.a]'), "datasets.shapes.kind: unknown data-set kind 'csv'"),
    "data-set argument missing": (("[questions.a]", '[datasets.shapes]\nkind = "npz"\n\n[questions.a]'), "datasets.shapes.path"),
    "data set shadowing a registered one": (("[questions.a]", '[datasets.mnist]\nkind = "npz"\npath = "m.npz"\n\n[questions.a]'), "is a registered data set"),
    "reference to a missing file": (('arch = "mlp"', 'arch = "nets.py:Net"'), "no file"),
    "reference that does not import": (('arch = "mlp"', 'arch = "no_such_package.nets:Net"'), "cannot import 'no_such_package.nets'"),
}


@pytest.mark.parametrize("name", list(FAULTS))
def test_malformed_spec_exits_2_naming_the_key(name, tmp_path):
    (old, new), expected = FAULTS[name]
    assert old in TINY_SPEC, f"fault {name!r} no longer edits the spec"
    spec = tmp_path / "spec.toml"
    spec.write_text(TINY_SPEC.replace(old, new, 1))
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["build", "--spec", str(spec), "--profile", "smoke", "--out", str(out)])
    message = result.output.replace("\n", "")
    # A user error ends in typer.Exit (a SystemExit) with one paragraph; anything else escaped with a traceback.
    assert "Traceback" not in message and isinstance(result.exception, SystemExit), (result.exception, message)
    assert result.exit_code == 2, message
    assert expected in message
    assert not out.exists()


def test_non_utf8_spec(tmp_path):
    spec = tmp_path / "spec.toml"
    spec.write_bytes(TINY_SPEC.encode().replace(b"Question A", b"Question \xff"))
    result = CliRunner().invoke(app, ["list", "--spec", str(spec)])
    assert result.exit_code == 2 and "not UTF-8" in result.output


def test_unknown_profile_on_the_command_line(tiny_spec, tmp_path):
    result = CliRunner().invoke(app, ["build", "--spec", str(tiny_spec), "--profile", "huge", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "--profile 'huge': unknown profile" in result.output
    assert not (tmp_path / "o").exists()


def test_at_least_twenty_faults_are_covered():
    assert len(FAULTS) >= 20
