"""The vocabulary: extending it through the registries alone, the traps it closes, `reportgen vocab`."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reportgen.analysis.metrics import METRICS, Metric
from reportgen.analysis.observations import OBSERVERS, add_observer
from reportgen.cli import app
from reportgen.errors import SpecError
from reportgen.plan import load_checked_spec, plan_question
from reportgen.registry import Args
from reportgen.report import render_report
from reportgen.results import RunOutcome
from reportgen.spec import load_spec
from reportgen.views import VIEWS, ViewArgs, ViewKind
from reportgen.vocab import vocabulary_markdown
from tests.conftest import TINY_SPEC
from tests.test_report import PROVENANCE, fake_load_split, fake_result

REPO = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------- extending through the registries

class ListArgs(ViewArgs):
    metric: str


def render_list(canvas, view: ListArgs, runs: list[RunOutcome]) -> dict:
    values = [METRICS.get(view.metric).value(o.result) for o in runs if o.result]
    return {"template": "_text.html.j2",
            "paragraphs": [f"{view.metric} per run: " + ", ".join(f"{v:.3f}" for v in values)]}


class MentionArgs(Args):
    word: str


def mention(outcomes: list[RunOutcome], args: MentionArgs) -> list[str]:
    """Says a word and how many runs were measured."""
    return [f"{args.word}: {sum(o.result is not None for o in outcomes)} runs measured."]


@pytest.fixture
def extended_vocabulary():
    METRICS.add(Metric("loss_gap", "run", "Test − train loss", "final test loss minus final training loss",
                       value=lambda r: r.final.test_loss - r.final.train_loss))
    VIEWS.add(ViewKind("metric_list", ListArgs, render_list, "a metric of every run, as one sentence"))
    add_observer("mention", mention, MentionArgs)
    yield
    METRICS.remove("loss_gap")
    VIEWS.remove("metric_list")
    OBSERVERS.remove("mention")


EXTENDED = TINY_SPEC.replace('''views = [{ kind = "table", columns = ["model", "lr", "final_accuracy"] }]
observers = [{ kind = "lr_effect" }]''', '''views = [
  { kind = "table", columns = ["model", "lr", "loss_gap"], caption = "With the new metric." },
  { kind = "bars", metric = "loss_gap", caption = "Gap bars." },
  { kind = "metric_list", metric = "loss_gap" },
]
observers = [{ kind = "mention", args = { word = "Extension" } }]''')


def test_a_view_kind_a_metric_and_an_observer_added_through_the_registries_render(extended_vocabulary, tmp_path):
    path = tmp_path / "spec.toml"
    path.write_text(EXTENDED)
    spec = load_spec(path)
    outcomes = {qid: [RunOutcome(run, fake_result(run)) for run in plan_question(spec, qid, "smoke", "cpu")]
                for qid in spec.questions}
    html_path, _ = render_report(spec, "smoke", outcomes, tmp_path / "out", PROVENANCE, fake_load_split, pdf=False)
    html = html_path.read_text(encoding="utf-8")
    gaps = [r.result.final.test_loss - r.result.final.train_loss for r in outcomes["a"]]
    assert "Test − train loss" in html  # the metric's title heads the column
    assert f"loss_gap per run: {gaps[0]:.3f}" in html  # the new view kind rendered from the runs
    assert "Extension: 4 runs measured." in html  # the observer's sentence (2 models × 2 learning rates)
    assert "train loss" in (tmp_path / "out" / "figures").joinpath(
        next(p.name for p in (tmp_path / "out" / "figures").iterdir() if p.name.startswith("a-2"))).read_text()
    assert "`loss_gap`" in vocabulary_markdown() and "`metric_list`" in vocabulary_markdown()


def test_without_the_registrations_the_same_spec_is_refused(tmp_path):
    path = tmp_path / "spec.toml"
    path.write_text(EXTENDED)
    with pytest.raises(SpecError, match=r"views\[0\]\.columns\[2\]: unknown column 'loss_gap'"):
        load_spec(path)


# ---------------------------------------------------------------- the traps, each refused at load

TRAPS = {
    "observer arg typo": (('observers = [{ kind = "lr_effect" }]',
                           'observers = [{ kind = "capacity", args = { group = ["mlp,bn"] } }]'),
                          r'observers\[0\]\.args\.group: unknown argument; allowed: groups'),
    "missing required observer arg": (('observers = [{ kind = "lr_effect" }]',
                                       'observers = [{ kind = "param_claim", args = { smaller = "mlp" } }]'),
                                      r"observers\[0\]\.args\.larger: Field required"),
    "observer names an unknown preset": (('observers = [{ kind = "lr_effect" }]',
                                          'observers = [{ kind = "capacity", args = { groups = ["mlp,bnn"] } }]'),
                                         r"unknown model preset 'bnn'\. Did you mean 'bn'\?"),
    "misspelt facet": (('views = [{ kind = "table", columns = ["model", "lr", "final_accuracy"] }]',
                        'views = [{ kind = "curves", metrics = ["train_loss"], facet = "modle" }]'),
                       r"views\[0\]\.facet: unknown facet 'modle'\. Did you mean 'model'\?"),
    "facet that does not vary": (('views = [{ kind = "table", columns = ["model", "lr", "final_accuracy"] }]',
                                  'views = [{ kind = "curves", metrics = ["train_loss"], facet = "optimizer" }]'),
                                 r"views\[0\]\.facet: 'optimizer' does not vary among this question's runs.*model, lr"),
    "probe steps above those recorded": (('views = [{ kind = "table", columns = ["model", "lr", "final_accuracy"] }]',
                                          'views = [{ kind = "step_curves", series = ["grad_norm"], steps = 500 }]'),
                                         r"views\[0\]\.steps: Input should be less than or equal to 100"),
    "unknown metric in curves": (('views = [{ kind = "table", columns = ["model", "lr", "final_accuracy"] }]',
                                  'views = [{ kind = "curves", metrics = ["trian_loss"] }]'),
                                 r"views\[0\]\.metrics\[0\]: unknown per-epoch metric 'trian_loss'\. Did you mean 'train_loss'\?"),
    "unknown view kind": (('views = [{ kind = "table", columns = ["model", "lr", "final_accuracy"] }]',
                           'views = [{ kind = "tabel", columns = ["model"] }]'),
                          r"views\[0\]\.kind: unknown view kind 'tabel'\. Did you mean 'table'\?"),
}


@pytest.mark.parametrize("name", list(TRAPS))
def test_each_trap_is_refused_at_load_with_its_key_path(name, tmp_path):
    (old, new), expected = TRAPS[name]
    assert old in TINY_SPEC
    path = tmp_path / "spec.toml"
    path.write_text(TINY_SPEC.replace(old, new, 1))
    with pytest.raises(SpecError) as caught:
        load_checked_spec(path)  # load_spec, and the facet check that plans the question's runs
    assert re.search(expected, str(caught.value)), str(caught.value)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize("command", [["list"], ["status", "--out", "o"], ["plan", "a", "--out", "o"],
                                     ["run", "a", "--no-report", "--out", "o"], ["build", "--out", "o"]])
def test_every_command_validates_the_whole_spec(command, tmp_path):
    path = tmp_path / "spec.toml"
    path.write_text(TINY_SPEC.replace('observers = [{ kind = "lr_effect" }]',
                                      'observers = [{ kind = "capacity", args = { group = ["mlp,bn"] } }]'))
    result = CliRunner().invoke(app, [*command, "--spec", str(path)])
    assert result.exit_code == 2, result.output
    assert "observers[0].args.group: unknown argument" in result.output.replace("\n", "")
    assert "Traceback" not in result.output


@pytest.mark.parametrize("content", [b"\xef\xbb\xbftitle = 1\n" + b"[" * 2000, b"a = [" * 600 + b"]" * 600])
def test_any_failure_while_parsing_a_spec_is_exit_2_naming_the_file(content, tmp_path):
    path = tmp_path / "spec.toml"
    path.write_bytes(content)
    result = CliRunner().invoke(app, ["list", "--spec", str(path)])
    assert result.exit_code == 2, result.output
    assert str(path.name) in result.output.replace("\n", "") and "Traceback" not in result.output


def test_a_folder_given_as_the_spec_is_exit_2(tmp_path):
    result = CliRunner().invoke(app, ["list", "--spec", str(tmp_path)])
    assert result.exit_code == 2 and "spec file not found" in result.output.replace("\n", "")


def test_a_reference_note_is_shown_in_the_report(tmp_path):
    path = tmp_path / "spec.toml"
    path.write_text(TINY_SPEC.replace("value = 50.0, tolerance = 50 }", 'value = 50.0, tolerance = 50, note = "measured on a GPU" }'))
    spec = load_spec(path)
    outcomes = {qid: [RunOutcome(run, fake_result(run)) for run in plan_question(spec, qid, "smoke", "cpu")]
                for qid in spec.questions}
    html, _ = render_report(spec, "smoke", outcomes, tmp_path / "out", PROVENANCE, fake_load_split, pdf=False)
    assert "Note: measured on a GPU" in html.read_text(encoding="utf-8")


# ---------------------------------------------------------------- reportgen vocab and the README

def test_the_readme_spec_reference_is_the_vocab_output():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    found = re.search(r"<!-- vocab:start -->\n(.*)<!-- vocab:end -->", readme, re.S)
    assert found, "README.md has no generated spec reference"
    result = CliRunner().invoke(app, ["vocab", "--markdown"])
    assert result.exit_code == 0
    assert found.group(1) == result.output, "README's spec reference is stale: paste `reportgen vocab --markdown`"


def test_vocab_lists_every_registered_name_with_its_arguments():
    text = vocabulary_markdown()
    for registry in (METRICS, VIEWS, OBSERVERS):
        assert all(f"`{name}`" in text for name in registry.names())
    assert "`groups` (list[str], required)" in text and "`activation` ('relu' | 'sigmoid' | 'tanh'" in text
