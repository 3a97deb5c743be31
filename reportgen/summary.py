"""`reportgen summary`: a results document (and optionally a base build's) → GitHub-flavoured Markdown for a
CI job summary or a pull-request comment: the answers page, the reproduction counts, and diff.py's
noise-aware comparison with the base. Built from the structured results, never from the HTML; the
verdicts are diff.py's own (its `Move.verdict` words and `moved` flags), never decided again here.
"""
from __future__ import annotations

from typing import Any

from reportgen import diff as d
from reportgen.analysis.reproduction import VERDICTS as CHECK_VERDICTS

# GitHub refuses comments over 65,536 characters; the job summary takes 1 MiB. Stay under the smaller.
MAX_CHARS = 60_000
MARKER = "<!-- reportgen-summary -->"  # lets the workflow find its own comment to update in place


def summary_markdown(doc: dict, comparison: d.Diff | None = None, report_url: str | None = None) -> str:
    """The whole summary; `comparison` is diff.diff_documents(base, doc), None when there is no base."""
    parts = [MARKER, _heading(doc, report_url), _answers(doc), _reproduction(doc),
             _changes(comparison) if comparison is not None else _no_base()]
    return _limited("\n\n".join(p for p in parts if p) + "\n")


def _heading(doc: dict, report_url: str | None) -> str:
    prov = doc["provenance"]
    facts = [f"profile **{prov.get('profile')}** on {prov.get('device')}", f"spec `{str(prov.get('spec_sha256'))[:12]}`"]
    trained = prov.get("runs_trained")
    if trained:
        facts.append(f"{trained} run{'s' * (trained != 1)} trained in this build ({_duration(prov.get('trained_seconds'))})")
    elif trained == 0:
        facts.append("no run trained in this build")
    missing = len({s.get("key") for q in doc["questions"].values() for g in q["groups"] for s in g["seeds"]
                   if not s.get("in_cache", True)})
    if missing:
        facts.append(f"**{missing} run{'s' * (missing != 1)} missing from the cache** (shown as not trained)")
    link = f" · [full report]({report_url})" if report_url else ""
    return f"## {_cell(doc.get('title') or 'reportgen')}\n\n" + " · ".join(facts) + link


def _answers(doc: dict) -> str:
    lines = ["### Answers"]
    if doc.get("noise_note"):
        lines.append(f"<sub>{doc['noise_note']}</sub>")
    part = None
    for qid, question in doc["questions"].items():
        if question.get("part") and question["part"] != part:
            part = question["part"]
            lines.append(f"\n**{part}**\n")
        lines.append(f"- **{question.get('title', qid)}** (`{qid}`): {_answer_text(question)}")
    return "\n".join(lines)


def _answer_text(question: dict) -> str:
    if question.get("answer"):
        return " ".join(question["answer"])
    if "answer" not in question:
        return "_no answer in this results file (written by an older reportgen; rebuild to add it)._"
    return "_not trained yet._" if question.get("trained") is False else "_shown as data; no measured answer._"


def _reproduction(doc: dict) -> str:
    checks = [c for q in doc["questions"].values() for c in q.get("checks", [])]
    if not checks:
        return ""
    counts = {v: sum(1 for c in checks if c.get("verdict") == v) for v in CHECK_VERDICTS}
    said = [f"{n} {v}" for v, n in counts.items() if n] or ["none judged"]
    lines = ["### Reproduction",
             f"{len(checks)} reference numbers from the source documents against our measurements: "
             + ", ".join(said) + "."]
    outside = [c for c in checks if c.get("verdict") == "outside tolerance"]
    if outside:
        rows = [(c["question"], c["label"], d.METRIC_NAMES.get(c["metric"], c["metric"]), _value(c["reference"]), _value(c["measured"]),
                 _tolerance(c), c.get("reason", "")) for c in outside]
        lines += ["", _details(f"{len(outside)} outside tolerance",
                               _table(("question", "run", "metric", "reference", "measured", "tolerance", "why"), rows))]
    return "\n".join(lines)


def _tolerance(check: dict) -> str:
    """As the report's table says it: '± 2' around a number, 'exact' for a word such as "not reached"."""
    numeric = isinstance(check.get("reference"), (int, float)) and isinstance(check.get("tolerance"), (int, float))
    return f"± {check['tolerance']:g}" if numeric else "exact"


def _no_base() -> str:
    return "### Changes\nNo base build to compare with (the first build, or no base results were found)."


def _changes(diff: d.Diff) -> str:
    lines = ["### Changes against the base build", f"**{d.summary_line(diff)}** (A: the base build, B: this one.)"]
    if diff.parameters or diff.settings:
        lines += ["", "Settings that differ:", "", _table(("where", "what", "A", "B"), d.setting_rows(diff))]
    for qid, title in diff.titles.items():
        rows = d.move_rows(diff, qid)
        if rows:
            lines += ["", _question_moves(qid, title, rows)]
    if any(m.verdict in d.NOISE_FREE for m in diff.moves):
        lines += ["", f"<sub>{d.footnote(diff)}</sub>"]
    return "\n".join(lines)


def _question_moves(qid: str, title: str, rows: list[tuple[str, tuple[str, ...], bool]]) -> str:
    """The numbers diff counts as moved in a table; those it does not (unresolved, equivalent, within tolerance) folded below."""
    header = ("run", *d.MOVE_HEADER)
    moved = [(run, *cells) for run, cells, flag in rows if flag]
    within = [(run, *cells) for run, cells, flag in rows if not flag]
    lines = [f"**{_cell(title)}** (`{qid}`)"]
    if moved:
        lines += ["", _table(header, moved)]
    if within:
        what = f"{len(within)} number{'s' * (len(within) != 1)} changed, none ahead or beyond tolerance"
        lines += ["", _details(what, _table(header, within))]
    return "\n".join(lines)


# ---------------------------------------------------------------- Markdown pieces

def _table(header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> str:
    lines = ["| " + " | ".join(map(_cell, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _details(summary: str, body: str) -> str:
    # Blank lines around the body: GitHub renders Markdown inside <details> only then.
    return f"<details><summary>{summary}</summary>\n\n{body}\n\n</details>"


def _cell(value: Any) -> str:
    """A table cell on one line, with the characters that would end the cell or start markup escaped."""
    return str(value).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").replace("<", "&lt;")


def _value(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else ("—" if value is None else str(value))


def _duration(seconds: Any) -> str:
    if not isinstance(seconds, (int, float)):
        return "time unknown"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs:02d} s" if minutes else f"{seconds:.1f} s"


def _limited(text: str) -> str:
    """Cut to MAX_CHARS at a line break, saying so: a PR comment over GitHub's limit is refused outright."""
    if len(text) <= MAX_CHARS:
        return text
    cut = text.rfind("\n", 0, MAX_CHARS - 200)
    return text[:cut] + "\n\n_… cut here to fit a GitHub comment; `reportgen diff` on the artifacts shows all._\n"
