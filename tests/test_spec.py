"""Spec validation: every user error names the file and the key, and says what was expected."""
from pathlib import Path

import pytest

from reportgen.errors import SpecError
from reportgen.spec import load_spec

from tests.conftest import TINY_SPEC

REPO = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spec.toml"
    path.write_text(text)
    return path


def error_of(tmp_path: Path, text: str) -> str:
    with pytest.raises(SpecError) as caught:
        load_spec(write(tmp_path, text))
    return str(caught.value)


def test_the_project_spec_declares_every_question():
    spec = load_spec(REPO / "experiments.toml")
    assert [q for q in spec.questions if q.startswith("q1.")] == [f"q1.{i}" for i in range(1, 8)]
    assert {"lab.t1", "lab.t2", "lab.act", "lab.lr"} <= set(spec.questions)
    assert {"full", "cpu", "smoke"} <= set(spec.profiles)


def test_syntax_error_gives_file_line_and_column(tmp_path):
    message = error_of(tmp_path, TINY_SPEC.replace('title = "tiny"', 'title = "tiny'))
    assert "spec.toml" in message and "TOML syntax error" in message and "line 2" in message


def test_unknown_run_field_gives_its_path_and_the_allowed_keys(tmp_path):
    message = error_of(tmp_path, TINY_SPEC.replace("lr = [0.1, 0.01] }", "lrr = [0.1, 0.01] }"))
    assert 'questions."a".runs[0].lrr: unknown run field' in message
    assert "allowed: dataset, model" in message


def test_unknown_key_in_a_table_lists_the_allowed_keys(tmp_path):
    message = error_of(tmp_path, TINY_SPEC.replace('title = "Question A"', 'title = "Question A"\ncolour = 1'))
    assert 'questions."a".colour: unknown key' in message and "prompt" in message


def test_wrong_type_gives_path_expected_and_got(tmp_path):
    message = error_of(tmp_path, TINY_SPEC.replace("batch_size = 64", 'batch_size = "big"'))
    assert 'protocols."p".batch_size' in message and "integer" in message and "'big'" in message


def test_dangling_model_reference_names_the_known_models(tmp_path):
    message = error_of(tmp_path, TINY_SPEC.replace('model = ["mlp", "bn"]', 'model = ["mlp", "resnet"]'))
    assert "unknown model 'resnet'" in message and "known: bn, mlp" in message


def test_not_utf8_is_refused(tmp_path):
    path = tmp_path / "spec.toml"
    path.write_bytes(TINY_SPEC.encode() + b"\n# caf\xe9\n")
    with pytest.raises(SpecError, match="not UTF-8"):
        load_spec(path)


def test_missing_file_says_how_to_point_at_one(tmp_path):
    with pytest.raises(SpecError, match="spec file not found.*--spec"):
        load_spec(tmp_path / "nope.toml")
