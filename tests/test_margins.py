"""`margin` in the spec: on a question or an observer, a number or a table by metric; validated at load,
listed by `reportgen vocab`, and used by the verdicts."""
from __future__ import annotations

import pytest

from reportgen.analysis.prose import margins
from reportgen.errors import SpecError
from reportgen.spec import load_spec
from reportgen.vocab import vocabulary_markdown
from tests.conftest import TINY_SPEC

OBSERVERS = 'observers = [{ kind = "lr_effect" }]'


def spec_with(tmp_path, question_margin: str = "", observer: str = '{ kind = "lr_effect" }'):
    text = TINY_SPEC.replace(OBSERVERS, f"observers = [{observer}]\n{question_margin}")
    path = tmp_path / "experiments.toml"
    path.write_text(text)
    return load_spec(path)


def test_a_question_margin_and_an_observer_margin_are_read(tmp_path):
    spec = spec_with(tmp_path, "margin = 2.0", '{ kind = "lr_effect", margin = { epochs_to_target = 3 } }')
    question = spec.questions["a"]
    assert question.margin == 2.0
    assert margins(question, question.observers[0]) == {"final_accuracy": 2.0, "epochs_to_target": 3.0}


def test_a_number_on_the_compare_observer_is_the_margin_of_its_metric(tmp_path):
    spec = spec_with(tmp_path, observer='{ kind = "compare", args = { along = "lr", metric = "final_test_loss" }, margin = 0.1 }')
    question = spec.questions["a"]
    assert margins(question, question.observers[0]) == {"final_test_loss": 0.1}


@pytest.mark.parametrize("question_margin, observer, words", [
    ("margin = -1.0", '{ kind = "lr_effect" }', "margin"),
    ("", '{ kind = "lr_effect", margin = { final_acuracy = 1.0 } }', "Did you mean 'final_accuracy'"),
    ("", '{ kind = "lr_effect", margin = { params = 1.0 } }', "compared metric"),
    ("", '{ kind = "lr_effect", margin = "wide" }', "margin"),
])
def test_a_bad_margin_is_refused_naming_the_key(tmp_path, question_margin, observer, words):
    with pytest.raises(SpecError) as err:
        spec_with(tmp_path, question_margin, observer)
    assert words in str(err.value) and 'questions."a"' in str(err.value)


def test_vocab_lists_each_metric_s_margin_and_the_margin_key():
    text = vocabulary_markdown()
    assert "| `final_accuracy` |" in text and "| ±0.5 |" in text and "| ±0.02 |" in text
    assert "also takes `margin`" in text
