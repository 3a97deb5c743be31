"""Networks by reference ('nets.py:Net', 'package.module:callable', plug-in entry points) and a small spec:
arguments checked against the callable's signature at load, shape and class errors found by `plan`, the
file's digest in the key (an edit retrains only that network's runs), and a one-question spec without
profiles that builds end to end on a generated data set."""
from __future__ import annotations

import importlib.metadata
import json
import re
import shutil
from pathlib import Path

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from reportgen.cli import app
from reportgen.errors import SpecError
from reportgen.models import find_architecture, plugin_architectures
from reportgen.plan import plan_question
from reportgen.spec import load_spec
from reportgen.vocab import vocabulary_markdown
from tests.test_sources import write_npz

NETS = '''
from torch import nn


class Net(nn.Module):
    """A tiny net for tests."""

    def __init__(self, classes: int, input_shape: tuple, width: int = 4):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(input_shape[0] * input_shape[1] * input_shape[2], width),
                                  nn.ReLU(), nn.Linear(width, classes))

    def forward(self, x):
        return self.body(x)


def three_outputs(width: int):
    return nn.Sequential(nn.Flatten(), nn.LazyLinear(3))


def not_a_module():
    return "a string"
'''

SPEC = '''
title = "bring your own"

[datasets.toy]
kind = "npz"
path = "data/toy.npz"

[protocols.p]
dataset = "toy"
lr = 0.05
batch_size = 12
epochs = 1
seeds = 2

[models.cnn]
arch = "small_cnn"
label = "Small CNN"

[models.net]
arch = "nets.py:Net"
label = "My net"
args = { width = 4 }

[questions.q]
part = "Part"
title = "Mine against the small CNN"
prompt = "Compare."
protocol = "p"
runs = [{ model = ["cnn", "net"] }]
'''


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A spec beside its nets.py and a generated 3-class 3 × 8 × 8 npz data set (36 + 12 images)."""
    (tmp_path / "nets.py").write_text(NETS)
    (tmp_path / "experiments.toml").write_text(SPEC)
    write_npz(tmp_path / "data" / "toy.npz", classes=3, size=8, channels=3)
    return tmp_path


def keys_by_model(spec_path: Path, profile: str = "cpu", seeds: int | None = None) -> dict[str, set[str]]:
    spec = load_spec(spec_path)
    keys: dict[str, set[str]] = {}
    for run in plan_question(spec, "q", profile, "cpu", seeds):
        keys.setdefault(run.labels["model"], set()).add(run.key)
    return keys


def test_a_spec_without_profiles_has_all_three_and_protocol_seeds_win(project):
    spec = load_spec(project / "experiments.toml")
    assert set(spec.profiles) == {"full", "cpu", "smoke"} and not any(p.overlays for p in spec.profiles.values())
    for profile in spec.profiles:
        assert {len(keys) for keys in keys_by_model(project / "experiments.toml", profile).values()} == {2}
    assert {len(keys) for keys in keys_by_model(project / "experiments.toml", seeds=1).values()} == {1}


def test_protocol_seeds_win_over_the_profiles_count(project):
    text = SPEC + '\n[profiles.cpu]\ndescription = "three seeds"\nseeds = 3\n'
    (project / "experiments.toml").write_text(text)
    assert {len(keys) for keys in keys_by_model(project / "experiments.toml").values()} == {2}
    (project / "experiments.toml").write_text(text.replace("seeds = 2\n", ""))
    assert {len(keys) for keys in keys_by_model(project / "experiments.toml").values()} == {3}


def test_input_shape_and_classes_flow_into_the_models(project):
    spec = load_spec(project / "experiments.toml")
    (run, *_) = [r for r in plan_question(spec, "q", "cpu", "cpu") if r.labels["model"] == "cnn"]
    from reportgen.models import model_for_request

    assert run.request["image_size"] == 8 and run.request["data"]["shape"] == [3, 8, 8]
    logits = model_for_request(run.request)(torch.zeros(2, 3, 8, 8))
    assert logits.shape == (2, 3)  # small_cnn on 3 channels, 3 classes


def test_small_cnn_takes_colour_32_pixel_images():
    from reportgen.models import ModelInputs, build_model

    model = build_model("small_cnn", {}, ModelInputs((3, 32, 32), 4))
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 4)


@pytest.mark.parametrize("args, expected", [
    ("{ width = 4, depth = 2 }", 'models."net".args.depth: unknown argument; allowed: classes, width'),
    ("{ width = \"wide\" }", 'models."net".args.width: Input should be a valid integer'),
])
def test_reference_args_are_checked_against_the_signature(project, args, expected):
    (project / "experiments.toml").write_text(SPEC.replace("args = { width = 4 }", f"args = {args}"))
    with pytest.raises(SpecError, match=expected.replace("(", r"\(").replace(".", r"\.")):
        load_spec(project / "experiments.toml")


def test_missing_required_argument_and_bad_references_are_spec_errors_at_load(project):
    spec = project / "experiments.toml"
    cases = {
        'arch = "nets.py:three_outputs"\nlabel = "x"\nargs = {}': 'models."net".args.width: Field required',
        'arch = "nets.py:not_a_module"\nlabel = "x"\nargs = {}': "returned str, not a torch.nn.Module",
        'arch = "nets.py:Missing"\nlabel = "x"\nargs = {}': "defines no callable 'Missing'; it defines: Net, not_a_module, three_outputs",
    }
    for replacement, expected in cases.items():
        spec.write_text(SPEC.replace('arch = "nets.py:Net"\nlabel = "My net"\nargs = { width = 4 }', replacement))
        with pytest.raises(SpecError, match=expected.replace("(", r"\(").replace(".", r"\.")):
            load_spec(spec)
    (project / "nets.py").write_text("import no_such_module\n")
    spec.write_text(SPEC)
    with pytest.raises(SpecError, match="nets.py: importing it failed .ModuleNotFoundError"):
        load_spec(spec)


def test_plan_refuses_a_model_whose_outputs_are_not_the_class_count(project):
    spec = project / "experiments.toml"
    spec.write_text(SPEC.replace('arch = "nets.py:Net"\nlabel = "My net"\nargs = { width = 4 }',
                                 'arch = "nets.py:three_outputs"\nlabel = "x"\nargs = { width = 1 }')
                    .replace("path = \"data/toy.npz\"", "path = \"data/four.npz\""))
    write_npz(project / "data" / "four.npz", classes=4)
    result = CliRunner().invoke(app, ["plan", "--spec", str(spec), "--out", str(project / "out")])
    assert result.exit_code == 2, result.output
    said = " ".join(result.output.split())
    assert 'models."net".arch: \'nets.py:three_outputs\' gives outputs of shape (3,) per input, but the data set has 4 classes' in said
    assert "data set 'toy': 3 × 8 × 8 inputs, 4 classes" in said


def test_plan_refuses_a_model_that_cannot_take_the_inputs(project):
    spec = project / "experiments.toml"
    spec.write_text(SPEC.replace('arch = "small_cnn"', 'arch = "mlp"\nargs = { hidden = [8] }\nimage_size = 6')
                    .replace('runs = [{ model = ["cnn", "net"] }]', 'runs = [{ model = ["cnn"] }]'))
    result = CliRunner().invoke(app, ["plan", "--spec", str(spec), "--out", str(project / "out")])
    assert result.exit_code == 0, result.output  # mlp takes its input size from the data: 3 × 6 × 6
    (project / "nets.py").write_text(NETS.replace("input_shape[0] * input_shape[1] * input_shape[2]", "7"))
    spec.write_text(SPEC)
    result = CliRunner().invoke(app, ["plan", "--spec", str(spec), "--out", str(project / "out")])
    assert result.exit_code == 2 and "cannot take the data's inputs of shape (3, 8, 8)" in " ".join(result.output.split())


def test_editing_the_network_changes_only_its_runs_keys(project):
    before = keys_by_model(project / "experiments.toml")
    (project / "nets.py").write_text(NETS.replace("nn.ReLU()", "nn.Tanh()"))
    after = keys_by_model(project / "experiments.toml")
    assert after["cnn"] == before["cnn"] and not after["net"] & before["net"]


def test_a_moved_project_keeps_its_keys(project, tmp_path_factory):
    moved = tmp_path_factory.mktemp("elsewhere") / "project"
    shutil.copytree(project, moved)
    assert keys_by_model(moved / "experiments.toml") == keys_by_model(project / "experiments.toml")


def test_build_trains_the_spec_and_an_edit_retrains_only_that_network(project):
    spec, out = project / "experiments.toml", project / "out"
    result = CliRunner().invoke(app, ["build", "--spec", str(spec), "--out", str(out), "--no-pdf", "--workers", "1"])
    assert result.exit_code == 0, result.output
    document = json.loads((out / "results.json").read_text())
    assert document["provenance"]["datasets"]["toy"]["shape"] == [3, 8, 8]
    recorded = json.loads((project / ".reportgen" / "cache" / "datasets.json").read_text())  # the project's cache
    assert recorded["toy"]["sha256"] == document["provenance"]["datasets"]["toy"]["sha256"]
    (project / "nets.py").write_text(NETS.replace("nn.ReLU()", "nn.Tanh()"))
    result = CliRunner().invoke(app, ["plan", "--spec", str(spec), "--out", str(out)])
    said = " ".join(result.output.split())
    assert result.exit_code == 0 and "4 runs planned: 2 cached, 2 to train" in said, said
    assert "cnn" not in said.split("Per question")[0].split("Runs to train")[1]


def test_a_changed_data_file_is_reported_by_plan(project):
    spec, out = project / "experiments.toml", project / "out"
    assert CliRunner().invoke(app, ["build", "--spec", str(spec), "--out", str(out), "--no-pdf", "--workers", "1"]).exit_code == 0
    write_npz(project / "data" / "toy.npz", seed=5)
    said = " ".join(CliRunner().invoke(app, ["plan", "--spec", str(spec), "--out", str(out)]).output.split())
    assert "Data set 'toy'" in said and "changed since the cache recorded it" in said
    assert "4 runs planned: 0 cached, 4 to train" in said


class PlugNet(nn.Module):
    """A plug-in network (installed packages register theirs under reportgen.architectures)."""

    def __init__(self, classes: int = 10, input_shape: tuple = (1, 28, 28)):
        super().__init__()
        self.fc = nn.Linear(input_shape[0] * input_shape[1] * input_shape[2], classes)

    def forward(self, x):
        return self.fc(x.flatten(1))


@pytest.fixture
def plugin(monkeypatch):
    point = importlib.metadata.EntryPoint(name="plugnet", value="tests.test_references:PlugNet",
                                          group="reportgen.architectures")
    real = importlib.metadata.entry_points

    def entry_points(**selection):
        return importlib.metadata.EntryPoints([point]) if selection.get("group") == point.group else real(**selection)

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    return point


def test_an_installed_plugin_is_found_listed_and_keyed(plugin, project):
    entry = find_architecture("plugnet")
    assert entry.build is PlugNet and entry.source == "tests.test_references:PlugNet"  # no distribution: its value
    assert [a.name for a in plugin_architectures()] == ["plugnet"]
    assert "`plugnet` — (plug-in tests.test_references:PlugNet" in vocabulary_markdown()
    (project / "experiments.toml").write_text(SPEC.replace('arch = "nets.py:Net"', 'arch = "plugnet"')
                                              .replace("args = { width = 4 }", ""))
    spec = load_spec(project / "experiments.toml")
    runs = [r for r in plan_question(spec, "q", "cpu", "cpu") if r.labels["model"] == "net"]
    assert {r.request["arch_source"] for r in runs} == {"tests.test_references:PlugNet"}


USER_CODE = '''
from reportgen.registry import Args


def epochs_kept(result):
    """Epochs the run trained."""
    return len(result.epochs)


class LastArgs(Args):
    scale: float = 1.0


def last_accuracy(result, args: LastArgs):
    return result.epochs[-1].test_accuracy * args.scale


class NamesArgs(Args):
    prefix: str


def name_runs(outcomes, args: NamesArgs):
    """Says how many run points were measured."""
    return [f"{args.prefix} {len(outcomes)} run points."]
'''


@pytest.fixture
def own_analysis(project, monkeypatch):
    """The project with its own metrics and observer; the registries restored afterwards."""
    from reportgen.analysis.metrics import METRICS
    from reportgen.analysis.observations import OBSERVERS

    monkeypatch.setattr(METRICS, "_entries", dict(METRICS._entries))
    monkeypatch.setattr(OBSERVERS, "_entries", dict(OBSERVERS._entries))
    (project / "analysis.py").write_text(USER_CODE)
    text = SPEC.replace("[questions.q]", '''[metrics.epochs_kept]
value = "analysis.py:epochs_kept"
title = "Epochs kept"

[metrics.scaled]
value = "analysis.py:last_accuracy"
args = { scale = 0.5 }
unit = "%"

[questions.q]''') + '''views = [{ kind = "table", columns = ["model", "epochs_kept", "scaled", "final_accuracy"] }]
observers = [{ kind = "analysis.py:name_runs", args = { prefix = "We measured" } }]
references = [{ select = { model = "cnn" }, metric = "scaled", value = 20.0, tolerance = 30 }]
'''
    (project / "experiments.toml").write_text(text)
    return project


def test_own_metrics_and_observer_by_reference(own_analysis):
    spec, out = own_analysis / "experiments.toml", own_analysis / "out"
    built = CliRunner().invoke(app, ["build", "--spec", str(spec), "--out", str(out), "--no-pdf", "--workers", "1"])
    assert built.exit_code == 0, built.output
    result = CliRunner().invoke(app, ["run", "q", "--spec", str(spec), "--out", str(out), "--no-report"])
    said = " ".join(result.output.split())
    assert result.exit_code == 0, said
    assert "Epochs" in said and "kept" in said and "We measured 2 run points." in said  # one per model, over its seeds
    assert "We measured 2 run points." in (out / "report.html").read_text()
    document = json.loads((out / "results.json").read_text())
    seeds = [s for g in document["questions"]["q"]["groups"] for s in g["seeds"]]
    assert {s["metrics"]["epochs_kept"] for s in seeds} == {1}
    for s in seeds:
        assert s["metrics"]["scaled"] == pytest.approx(s["metrics"]["final_accuracy"] * 0.5)
    assert [c["metric"] for c in document["questions"]["q"]["checks"]] == ["scaled"]


@pytest.mark.parametrize("edit, expected", [
    (("args = { scale = 0.5 }", "args = { scale = 0.5, shift = 1 }"), "metrics.scaled.args.shift: unknown argument"),
    (('args = { prefix = "We measured" }', "args = {}"), 'questions."q".observers[0].args.prefix: Field required'),
    (('kind = "analysis.py:name_runs"', 'kind = "analysis.py:nothing"'), "observers[0].kind: 'analysis.py' defines no callable 'nothing'"),
    (('[metrics.scaled]', '[metrics.final_accuracy]'), "metrics.final_accuracy: 'final_accuracy' is a built-in metric"),
])
def test_own_metric_and_observer_errors_name_the_key(own_analysis, edit, expected):
    spec = own_analysis / "experiments.toml"
    spec.write_text(spec.read_text().replace(*edit))
    with pytest.raises(SpecError, match=re.escape(expected)):
        load_spec(spec)


def test_registered_models_on_registered_data_keep_their_requests(tiny_spec):
    """Nothing new enters the key of a run that refers to nothing: every cached run of a spec stays valid."""
    spec = load_spec(tiny_spec)
    for run in plan_question(spec, "a", "smoke", "cpu"):
        assert not {"data", "arch_source", "locations"} & set(run.request)
        assert run.request["image_size"] == 28


def test_a_module_reference_is_keyed_by_its_file(project):
    (project / "experiments.toml").write_text(SPEC.replace('arch = "nets.py:Net"', 'arch = "tests.test_references:PlugNet"')
                                              .replace("args = { width = 4 }", ""))
    spec = load_spec(project / "experiments.toml")
    runs = [r for r in plan_question(spec, "q", "cpu", "cpu") if r.labels["model"] == "net"]
    from reportgen.references import file_sha256

    assert {r.request["arch_source"] for r in runs} == {"sha256:" + file_sha256(Path(__file__))}  # not installed: its file
    assert all("arch" not in r.request.get("locations", {}) for r in runs)  # imported by name in any process


def test_diff_of_a_moved_project_finds_no_setting_changed(project, tmp_path_factory):
    from reportgen.diff import diff_documents
    from reportgen.results_file import read_results

    moved = tmp_path_factory.mktemp("elsewhere") / "project"
    shutil.copytree(project, moved)
    for root in (project, moved):
        result = CliRunner().invoke(app, ["build", "--spec", str(root / "experiments.toml"), "--out", str(root / "out"),
                                          "--no-pdf", "--workers", "1"])
        assert result.exit_code == 0, result.output
    compared = diff_documents(read_results(project / "out"), read_results(moved / "out"), 0.0)
    assert compared.settings == [] and compared.moves == []


def test_plan_refuses_labels_beyond_the_classes_with_the_data_exit_code(project):
    write_npz(project / "data" / "toy.npz", classes=3, names=["a", "b"])
    result = CliRunner().invoke(app, ["plan", "--spec", str(project / "experiments.toml"), "--out", str(project / "out")])
    said = " ".join(result.output.split())
    assert result.exit_code == 3 and "Traceback" not in said, said
    assert "datasets.toy: the training labels of" in said and "labels must be 0 to 1" in said
    assert not (project / "out").exists()


@pytest.mark.slow
def test_the_example_generates_its_data_and_builds(tmp_path):
    """examples/shapes as a user runs it, with a smaller generated set (6 + 2 images per class) and one seed."""
    import subprocess
    import sys

    example = tmp_path / "shapes"
    shutil.copytree(Path(__file__).resolve().parents[1] / "examples" / "shapes", example,
                    ignore=shutil.ignore_patterns("data"))
    subprocess.run([sys.executable, str(example / "generate_data.py"), "--train-per-class", "6", "--test-per-class", "2"],
                   check=True, capture_output=True)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["build", "--spec", str(example / "experiments.toml"), "--out", str(out),
                                      "--seeds", "1", "--no-pdf", "--workers", "1"])
    assert result.exit_code == 0, result.output
    datasets = json.loads((out / "results.json").read_text())["provenance"]["datasets"]
    assert datasets["shapes"]["shape"] == [3, 32, 32] and datasets["shapes"]["sizes"] == [24, 8]
    assert "circle" in (out / "report.html").read_text()
