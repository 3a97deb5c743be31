"""`reportgen summary`: GitHub Markdown from results documents, for fixture pairs of builds (unchanged, a changed
setting, a number moved within seed noise, one moved beyond it), with diff.py's verdicts."""
from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from reportgen.cli import app
from reportgen.diff import VERDICT_WORDS, diff_documents
from reportgen.analysis.stats import EQUIVALENT, UNRESOLVED
from reportgen.summary import MARKER, MAX_CHARS, summary_markdown
from tests.test_diff import make_doc, write  # noqa: F401 (make_doc is a fixture)

BASE = {0.1: [80.0, 80.4, 79.8], 0.01: [70.0, 70.5, 69.6]}


def section(text: str, heading: str) -> str:
    """The Markdown under `### heading`, up to the next heading of that level."""
    start = text.index(f"### {heading}")
    end = text.find("\n### ", start + 1)
    return text[start:end if end > 0 else None]


def table_rows(text: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip("|").split(" | ")] for line in text.splitlines()
            if line.startswith("| ") and not line.startswith("| run |") and not line.startswith("| where |")]


def test_unchanged_builds_say_so_and_show_no_table(make_doc):
    doc = make_doc(BASE)
    text = summary_markdown(doc, diff_documents(doc, json.loads(json.dumps(doc))))
    changes = section(text, "Changes against the base build")
    assert "No differences: the same settings and the same numbers." in changes
    assert "|" not in changes


def test_a_changed_setting_is_listed_with_both_values(make_doc):
    base, changed = make_doc(BASE), make_doc({0.2: BASE[0.1], 0.01: BASE[0.01]})
    changes = section(summary_markdown(changed, diff_documents(base, changed)), "Changes against the base build")
    assert "0 numbers moved (one side ahead, or beyond tolerance); 1 run setting differs." in changes
    assert ["a", "MLP, lr 0.1 → lr 0.2: lr", "0.1", "0.2"] in table_rows(changes)
    assert "lr 0.01" not in changes  # the run point the edit left alone


def test_a_new_run_point_is_listed_as_only_in_this_build(make_doc):
    base, grown = make_doc(BASE), make_doc({**BASE, 0.5: [60.0, 61.0, 59.0]})
    changes = section(summary_markdown(grown, diff_documents(base, grown)), "Changes against the base build")
    assert ["a", "MLP, lr 0.5", "—", "only in B"] in table_rows(changes)


def test_a_number_moved_within_noise_is_folded_with_diffs_verdict(make_doc):
    base, moved = make_doc({0.1: [80.0, 82.0, 78.0]}), make_doc({0.1: [81.0, 79.0, 83.5]})
    comparison = diff_documents(base, moved)
    changes = section(summary_markdown(moved, comparison), "Changes against the base build")
    assert "0 numbers moved (one side ahead, or beyond tolerance); 0 run settings differ." in changes
    folded = changes[changes.index("<details>"):]
    assert "changed, none ahead or beyond tolerance" in folded
    (row,) = [r for r in table_rows(folded) if r[1] == "final acc."]
    assert row[0] == "MLP" and row[-1] in (VERDICT_WORDS[UNRESOLVED], VERDICT_WORDS[EQUIVALENT])
    assert row[-1] == VERDICT_WORDS[next(m.verdict for m in comparison.moves if m.metric == "final_accuracy")]


def test_a_number_moved_beyond_noise_is_in_the_open_table_with_its_interval(make_doc):
    base, moved = make_doc(BASE), make_doc({0.1: [85.1, 84.8, 85.3], 0.01: BASE[0.01]})
    comparison = diff_documents(base, moved)
    changes = section(summary_markdown(moved, comparison), "Changes against the base build")
    assert "2 numbers moved (one side ahead, or beyond tolerance)" in changes  # final and best accuracy
    open_table = changes[:changes.index("<details>")] if "<details>" in changes else changes
    rows = {r[1]: r for r in table_rows(open_table)}
    final = rows["final acc."]
    assert final[0] == "MLP, lr 0.1" and final[-1] == "B ahead"
    move = next(m for m in comparison.moves if m.metric == "final_accuracy")
    assert final[4] == f"{move.difference:+.3g}" and final[5].startswith(f"{move.comparison.low:+.2g}")
    assert "lr 0.01" not in open_table  # the unchanged run point is not mentioned


def test_the_answers_page_and_reproduction_counts(make_doc):
    doc = make_doc(BASE)
    text = summary_markdown(doc)
    answers = section(text, "Answers")
    assert "**Part**" in answers and "- **Question A** (`a`): " in answers
    assert " ".join(doc["questions"]["a"]["answer"]) in answers and doc["questions"]["a"]["answer"]
    assert doc["noise_note"] in answers
    check = doc["questions"]["a"]["checks"][0]
    assert f"1 reference numbers from the source documents against our measurements: " in section(text, "Reproduction")
    assert f"1 {check['verdict']}" in section(text, "Reproduction")
    assert "No base build to compare with" in text and text.startswith(MARKER)


def test_an_answer_missing_from_an_older_file_is_said_not_invented(make_doc):
    doc = make_doc(BASE)
    del doc["questions"]["a"]["answer"]
    assert "no answer in this results file" in summary_markdown(doc)


def test_a_huge_diff_is_cut_to_fit_a_github_comment(make_doc):
    doc = make_doc(BASE)
    doc["questions"]["a"]["answer"] = ["word " * 20_000]
    text = summary_markdown(doc)
    assert len(text) <= MAX_CHARS and "cut here" in text


def test_command_writes_markdown_with_a_base_from_a_folder(make_doc, tmp_path):
    write(tmp_path / "base" / "results.json", make_doc(BASE))
    write(tmp_path / "new" / "a.results.json", make_doc({0.1: [85.1, 84.8, 85.3], 0.01: BASE[0.01]}))
    out = tmp_path / "summary.md"
    result = CliRunner().invoke(app, ["summary", str(tmp_path / "new"), "--base", str(tmp_path / "base"),
                                      "--output", str(out), "--report-url", "https://example.org/report.html"])
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert "[full report](https://example.org/report.html)" in text and "B ahead" in text
    stdout = CliRunner().invoke(app, ["summary", str(tmp_path / "new")])
    assert stdout.exit_code == 0 and stdout.output.startswith(MARKER)


def test_command_names_a_missing_base_and_exits_2(make_doc, tmp_path):
    write(tmp_path / "new" / "results.json", make_doc(BASE))
    result = CliRunner().invoke(app, ["summary", str(tmp_path / "new"), "--base", str(tmp_path / "nothing.json")])
    assert result.exit_code == 2 and "nothing.json" in result.output.replace("\n", "")


@pytest.mark.slow
def test_a_real_builds_answers_are_the_reports(tmp_path, data_dir):
    from markupsafe import escape

    from tests.conftest import TINY_SPEC

    spec = tmp_path / "experiments.toml"
    spec.write_text(TINY_SPEC)
    result = CliRunner().invoke(app, ["build", "--spec", str(spec), "--profile", "smoke", "--device", "cpu", "--seeds", "2",
                                      "--out", str(tmp_path / "out"), "--data-dir", str(data_dir), "--no-pdf"])
    assert result.exit_code == 0, result.output
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    assert doc["provenance"]["runs_trained"] == 8  # 4 run points of a, 2 seeds each; b reuses one of them
    html = (tmp_path / "out" / "report.html").read_text()
    answer = doc["questions"]["a"]["answer"]
    assert answer and all(str(escape(sentence)) in html for sentence in answer)


def test_runs_missing_from_the_cache_are_counted_in_the_heading(make_doc, tiny_spec):
    from reportgen.results_file import results_document
    from reportgen.spec import load_spec
    from tests.test_results_file import PROVENANCE
    from tests.test_stats import seed_run

    runs = [seed_run(0, [70.0, 80.0]), seed_run(1, [70.0, 80.0], missing=True)]
    doc = json.loads(json.dumps(results_document(load_spec(tiny_spec), "smoke", {"a": runs}, PROVENANCE)))
    assert "**1 run missing from the cache**" in summary_markdown(doc)


def test_a_question_without_runs_is_shown_as_data_and_an_untrained_one_says_so(make_doc, tiny_spec):
    from reportgen.results_file import results_document
    from reportgen.spec import load_spec
    from tests.test_results_file import PROVENANCE
    from tests.test_stats import seed_run

    doc = json.loads(json.dumps(results_document(load_spec(tiny_spec), "smoke",
                                                 {"a": [seed_run(0, [70.0, 80.0], missing=True)], "b": []}, PROVENANCE)))
    text = summary_markdown(doc)
    assert "(`a`): _not trained yet._" in text and "(`b`): _shown as data; no measured answer._" in text
