"""`reportgen diff` on synthetic results documents: moved numbers, seed noise, changed settings, bad files."""
from __future__ import annotations

import dataclasses
import json

import pytest
from rich.console import Console
from typer.testing import CliRunner

from reportgen.analysis.stats import AHEAD, UNRESOLVED
from reportgen.cli import app
from reportgen.diff import (BEYOND_TOLERANCE, CHANGED, NOT_JUDGED, WITHIN_TOLERANCE, diff_documents, render_html,
                            terminal_report)
from reportgen.results_file import results_document
from reportgen.spec import load_spec
from tests.test_results_file import PROVENANCE
from tests.test_stats import seed_run


@pytest.fixture
def make_doc(tiny_spec):
    """{lr: [final accuracy per seed]} → a results document of question a (two epochs per run)."""
    spec = load_spec(tiny_spec)

    def make(points: dict[float, list[float]], provenance: dict | None = None, **run_args) -> dict:
        outcomes = [seed_run(seed, [acc - 5.0, acc], lr=lr, **run_args)
                    for lr, accs in points.items() for seed, acc in enumerate(accs)]
        return json.loads(json.dumps(results_document(spec, "smoke", {"a": outcomes}, provenance or PROVENANCE)))

    return make


def only_move(diff, metric="final_accuracy"):
    (move,) = [m for m in diff.moves if m.metric == metric]
    return move


def test_a_number_that_moved_beyond_seed_noise(make_doc):
    a = make_doc({0.1: [80.0, 80.4, 79.8]})
    b = make_doc({0.1: [85.1, 84.8, 85.3]})
    diff = diff_documents(a, b)
    move = only_move(diff)
    assert move.difference == pytest.approx(85.0667 - 80.0667, abs=1e-3)
    assert move.verdict == AHEAD and move.moved and move.comparison.low > 0
    assert move.run == "MLP" and (move.a.n, move.b.n) == (3, 3)
    assert not diff.settings and diff.exit_code == 1


def test_a_number_within_seed_noise_is_listed_but_not_counted(make_doc):
    diff = diff_documents(make_doc({0.1: [80.0, 82.0, 78.0]}), make_doc({0.1: [81.0, 79.0, 83.5]}))
    move = only_move(diff)
    assert move.verdict == UNRESOLVED and not move.moved
    assert move.comparison.low < 0 < move.comparison.high
    assert diff.exit_code == 0


def test_a_changed_grid_of_rates_is_groups_only_in_a_and_only_in_b(make_doc):
    diff = diff_documents(make_doc({0.1: [80.0, 81.0], 0.01: [70.0, 71.0], 0.001: [60.0, 61.0]}),
                          make_doc({0.2: [80.0, 81.0], 0.02: [70.0, 71.0], 0.001: [60.0, 61.0]}))
    only = [(s.run, s.a, s.b) for s in diff.settings]
    assert only == [("MLP, lr 0.1", "present", None), ("MLP, lr 0.01", "present", None),
                    ("MLP, lr 0.2", None, "present"), ("MLP, lr 0.02", None, "present")]  # which is which: ambiguous
    assert not diff.moves  # the unchanged lr 0.001 group is matched and equal
    assert diff.exit_code == 1


def test_one_changed_label_pairs_the_old_and_new_group_and_compares_their_numbers(make_doc):
    diff = diff_documents(make_doc({0.1: [80.0, 80.4, 79.8], 0.01: [70.0, 71.0]}),
                          make_doc({0.2: [85.1, 84.8, 85.3], 0.01: [70.0, 71.0]}))
    assert [(s.run, s.setting, s.a, s.b) for s in diff.settings] == [("MLP, lr 0.1 → lr 0.2", "lr", 0.1, 0.2)]
    move = only_move(diff)
    assert move.run == "MLP, lr 0.1 → lr 0.2" and move.verdict == AHEAD and move.moved
    assert diff.exit_code == 1


def test_a_changed_request_field_under_the_same_labels_is_a_setting(make_doc, tiny_spec):
    spec = load_spec(tiny_spec)
    runs = [seed_run(0, [70.0, 80.0])]
    wider = [dataclasses.replace(r, planned=dataclasses.replace(r.planned, request=r.planned.request | {"width": 64}))
             for r in runs]
    diff = diff_documents(*(json.loads(json.dumps(results_document(spec, "smoke", {"a": x}, PROVENANCE)))
                            for x in (runs, wider)))
    assert [(s.setting, s.a, s.b) for s in diff.settings] == [("width", None, 64)]
    assert diff.exit_code == 1


def test_two_identical_documents_differ_in_nothing(make_doc):
    doc = make_doc({0.1: [80.0, 81.0, 79.5], 0.01: [70.0]})
    diff = diff_documents(doc, json.loads(json.dumps(doc)))
    assert (diff.parameters, diff.settings, diff.moves, diff.exit_code) == ([], [], [], 0)


def test_build_parameters_are_listed_but_alone_do_not_fail(make_doc):
    other = PROVENANCE | {"spec_hash": "cd" * 32, "device": "cuda"}
    diff = diff_documents(make_doc({0.1: [80.0]}), make_doc({0.1: [80.0]}, provenance=other))
    assert {(p.name, p.a, p.b) for p in diff.parameters} == {("spec sha256", "ab" * 32, "cd" * 32), ("device", "cpu", "cuda")}
    assert diff.exit_code == 0


@pytest.mark.parametrize("b_acc, tolerance, verdict, code", [
    (80.4, 0.5, WITHIN_TOLERANCE, 0), (80.6, 0.5, BEYOND_TOLERANCE, 1), (80.6, 1.0, WITHIN_TOLERANCE, 0),
    (79.4, 0.5, BEYOND_TOLERANCE, 1)])
def test_one_seed_is_judged_against_the_tolerance(make_doc, b_acc, tolerance, verdict, code):
    diff = diff_documents(make_doc({0.1: [80.0]}), make_doc({0.1: [b_acc]}), tolerance)
    move = only_move(diff)
    assert move.verdict == verdict and move.comparison is None
    assert move.difference == pytest.approx(b_acc - 80.0)
    assert diff.exit_code == code


def test_with_one_seed_a_loss_that_moved_is_shown_but_not_judged(make_doc):
    diff = diff_documents(make_doc({0.1: [80.0]}, losses=[1.0, 0.5]), make_doc({0.1: [80.0]}, losses=[1.0, 0.6]))
    move = only_move(diff, "final_train_loss")
    assert move.verdict == NOT_JUDGED and not move.moved and diff.exit_code == 0


def test_a_seed_that_diverged_in_b_only_is_a_changed_outcome(make_doc, tiny_spec):
    spec = load_spec(tiny_spec)
    nan = float("nan")
    trained = [seed_run(s, [70.0, 80.0 + s], losses=[0.9, 0.5]) for s in range(3)]
    diverged = trained[:2] + [seed_run(2, [10.0, 10.0], losses=[2.3, nan], stop="diverged")]
    docs = [json.loads(json.dumps(results_document(spec, "smoke", {"a": x}, PROVENANCE))) for x in (trained, diverged)]
    diff = diff_documents(*docs)
    outcome = only_move(diff, "outcome")
    assert (outcome.a, outcome.b, outcome.verdict, outcome.moved) == ("trained 3/3", "trained 2/3, diverged 1/3", CHANGED, True)
    assert only_move(diff, "final_train_loss").b.non_finite == 1
    assert diff.exit_code == 1


def test_terminal_output_fits_80_columns_and_says_when_there_is_no_noise_estimate(make_doc):
    diff = diff_documents(make_doc({0.1: [80.0], 0.3: [80.0], 0.01: [70.0, 71.0, 69.0]}),
                          make_doc({0.2: [81.0], 0.4: [81.0], 0.01: [75.0, 76.0, 74.5]}))  # two new rates: unpaired
    console = Console(width=80, record=True, file=open("/dev/null", "w"))
    for part in terminal_report(diff):
        console.print(part)
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "only in A" in text and "only in B" in text and "B ahead" in text
    assert "no noise estimate" not in text  # every move here has 3 seeds a side
    one_seed = diff_documents(make_doc({0.1: [80.0]}), make_doc({0.1: [81.0]}))
    console = Console(width=80, record=True, file=open("/dev/null", "w"))
    for part in terminal_report(one_seed):
        console.print(part)
    assert "no noise estimate" in console.export_text()


def test_html_page_is_standalone_and_escaped(make_doc):
    diff = diff_documents(make_doc({0.1: [80.0, 80.4, 79.8]}), make_doc({0.1: [85.1, 84.8, 85.3]}),
                          a_name="<a>", b_name="b")
    page = render_html(diff)
    assert page.startswith("<!DOCTYPE html>") and "&lt;a&gt;" in page and "B ahead" in page
    assert "<link" not in page and "<script" not in page


# ---------------------------------------------------------------- the command

def write(path, doc):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    return path


def test_command_exit_codes_and_html(make_doc, tmp_path):
    same = write(tmp_path / "a" / "results.json", make_doc({0.1: [80.0, 80.4, 79.8]}))
    write(tmp_path / "b" / "results.json", make_doc({0.1: [85.1, 84.8, 85.3]}))
    unchanged = CliRunner().invoke(app, ["diff", str(same), str(tmp_path / "a")])
    assert unchanged.exit_code == 0, unchanged.output
    assert "No differences" in unchanged.output
    page = tmp_path / "diff.html"
    moved = CliRunner().invoke(app, ["diff", str(tmp_path / "a"), str(tmp_path / "b"), "--html", str(page)])
    assert moved.exit_code == 1, moved.output
    assert "B ahead" in moved.output and "2 numbers moved" in moved.output  # final and best accuracy
    assert "B ahead" in page.read_text()


@pytest.mark.parametrize("content", [None, "{truncated", '{"schema": 1}'])
def test_command_names_an_unreadable_file_and_exits_2(make_doc, tmp_path, content):
    good = write(tmp_path / "good.json", make_doc({0.1: [80.0]}))
    bad = tmp_path / "bad" / "results.json"
    if content is not None:
        bad.parent.mkdir()
        bad.write_text(content)
    result = CliRunner().invoke(app, ["diff", str(good), str(bad)])
    assert result.exit_code == 2, result.output
    assert str(bad) in result.output.replace("\n", "") and "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_diff_explains_itself():
    result = CliRunner().invoke(app, ["diff", "--help"])
    assert result.exit_code == 0 and "--tolerance" in result.output and "--html" in result.output


def test_a_changed_parameter_count_is_a_change_not_a_noise_question(make_doc, tiny_spec):
    spec = load_spec(tiny_spec)
    runs = [seed_run(s, [70.0, 80.0]) for s in range(2)]
    bigger = [dataclasses.replace(r, result=dataclasses.replace(r.result, params=4000)) for r in runs]
    diff = diff_documents(*(json.loads(json.dumps(results_document(spec, "smoke", {"a": x}, PROVENANCE)))
                            for x in (runs, bigger)))
    move = only_move(diff, "params")
    assert (move.difference, move.verdict, move.comparison, move.moved) == (3000.0, CHANGED, None, True)


def as_question(doc: dict, qid: str) -> dict:
    """The document with its one question renamed, as `reportgen run <qid>` would have written it."""
    (question,) = doc["questions"].values()
    return {**doc, "questions": {qid: question}}


def test_diff_takes_folders_of_question_files_that_run_writes(make_doc, tmp_path):
    for side, accs in (("a", [80.0, 80.4, 79.8]), ("b", [85.1, 84.8, 85.3])):
        write(tmp_path / side / "q1.results.json", as_question(make_doc({0.1: [70.0, 70.5, 69.8]}), "q1"))
        write(tmp_path / side / "q2.results.json", as_question(make_doc({0.1: accs}), "q2"))
    result = CliRunner().invoke(app, ["diff", str(tmp_path / "a"), str(tmp_path / "b")])
    assert result.exit_code == 1, result.output
    from reportgen.results_file import read_results

    diff = diff_documents(read_results(tmp_path / "a"), read_results(tmp_path / "b"))
    assert {m.question for m in diff.moves} == {"q2"} and list(diff.titles) == ["q1", "q2"]


def test_a_build_folders_results_json_wins_over_question_files_beside_it(make_doc, tmp_path):
    from reportgen.results_file import read_results, results_files

    write(tmp_path / "results.json", make_doc({0.1: [80.0]}))
    write(tmp_path / "q9.results.json", as_question(make_doc({0.1: [10.0]}), "q9"))
    assert results_files(tmp_path) == [tmp_path / "results.json"]
    assert list(read_results(tmp_path)["questions"]) == ["a"]


def test_question_files_from_different_builds_say_so_in_the_provenance(make_doc, tmp_path):
    from reportgen.results_file import read_results

    write(tmp_path / "q1.results.json", as_question(make_doc({0.1: [80.0]}), "q1"))
    write(tmp_path / "q2.results.json", as_question(make_doc({0.1: [80.0]}, provenance=PROVENANCE | {"profile": "cpu"}), "q2"))
    assert read_results(tmp_path)["provenance"]["profile"] == 'mixed: "smoke"; "cpu"'


def test_question_files_merge_versions_field_by_field_and_add_what_each_run_trained(make_doc, tmp_path):
    from reportgen.results_file import read_results

    for qid, torch, trained in (("q1", "2.13", 3), ("q2", "2.14", 2)):
        doc = as_question(make_doc({0.1: [80.0]}), qid)
        doc["provenance"] |= {"runs_trained": trained, "versions": doc["provenance"]["versions"] | {"torch": torch}}
        write(tmp_path / f"{qid}.results.json", doc)
    provenance = read_results(tmp_path)["provenance"]
    assert provenance["versions"]["torch"] == 'mixed: "2.13"; "2.14"' and provenance["runs_trained"] == 5
    assert provenance["versions"]["python"] == make_doc({0.1: [80.0]})["provenance"]["versions"]["python"]
    diff = diff_documents(make_doc({0.1: [80.0]}), read_results(tmp_path))  # a mixed version is a parameter, no crash
    assert ("torch version", provenance["versions"]["torch"]) in {(p.name, p.b) for p in diff.parameters}


def test_a_folder_without_results_is_an_error_naming_it(make_doc, tmp_path):
    write(tmp_path / "a" / "results.json", make_doc({0.1: [80.0]}))
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(app, ["diff", str(tmp_path / "a"), str(tmp_path / "empty")])
    assert result.exit_code == 2, result.output
    said = result.output.replace("\n", "")
    assert str(tmp_path / "empty") in said and "reportgen run" in said
