"""Issue 16's measure: the words of every section's Answer and Findings in a rendered report, per section and in all.

    python -m benchmarks.report_words build/report.html [--sentences]

Reads the HTML the renderer wrote (a measuring script may; the product never parses its own HTML). Counts each
section's answer once (the Answers page repeats it word for word), its findings, and the report-wide note on
seeds and noise on the Answers page, since that sentence replaced one per section. Words are whitespace-separated
tokens, so '88.0 ± 0.4 %' counts as four.
"""
from __future__ import annotations

import argparse
from html.parser import HTMLParser
from pathlib import Path


class _ProseParser(HTMLParser):
    """Collects (section id, 'answer' | 'findings' | 'note', text) from the report's markup."""

    def __init__(self) -> None:
        super().__init__()
        self.section = "(front)"
        self.kind: str | None = None  # what the text being read belongs to
        self.depth = 0  # open tags inside the element being read
        self.buffer: list[str] = []
        self.items: list[tuple[str, str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        classes = (dict(attrs).get("class") or "").split()
        if tag == "section" and "question" in classes:
            self.section = dict(attrs).get("id") or "?"
        if self.kind is not None:
            self.depth += 1
            return
        if tag == "p" and "answer" in classes:
            self._open("answer")
        elif tag == "p" and "noise-note" in classes:
            self._open("note")
        elif tag == "li" and self.section != "(front)" and self._in_findings:
            self._open("findings")
        if tag == "ul":
            self._in_findings = "findings" in classes

    _in_findings = False

    def _open(self, kind: str) -> None:
        self.kind, self.depth, self.buffer = kind, 0, []

    def handle_endtag(self, tag: str) -> None:
        if self.kind is None:
            if tag == "ul":
                self._in_findings = False
            return
        if self.depth:
            self.depth -= 1
            return
        text = " ".join("".join(self.buffer).split())
        if self.kind == "answer" and text.startswith("Answer."):
            text = text[len("Answer."):].strip()
        section = "(answers page)" if self.kind == "note" else self.section
        self.items.append((section, self.kind, text))
        self.kind = None

    def handle_data(self, data: str) -> None:
        if self.kind is not None:
            self.buffer.append(data)


def prose_items(html: str) -> list[tuple[str, str, str]]:
    parser = _ProseParser()
    parser.feed(html)
    return parser.items


def words(text: str) -> int:
    return len(text.split())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("html", type=Path)
    parser.add_argument("--sentences", action="store_true", help="also print every counted text")
    args = parser.parse_args()
    items = prose_items(args.html.read_text(encoding="utf-8"))
    sections = list(dict.fromkeys(section for section, _, _ in items))
    print(f"{'section':<34} {'answer':>7} {'findings':>9} {'total':>7}")
    totals = [0, 0]
    for section in sections:
        answer = sum(words(t) for s, k, t in items if s == section and k in ("answer", "note"))
        found = sum(words(t) for s, k, t in items if s == section and k == "findings")
        totals[0] += answer
        totals[1] += found
        print(f"{section:<34} {answer:>7} {found:>9} {answer + found:>7}")
    print(f"{'TOTAL':<34} {totals[0]:>7} {totals[1]:>9} {sum(totals):>7}")
    if args.sentences:
        for section, kind, text in items:
            print(f"\n[{section} {kind}] {text}")


if __name__ == "__main__":
    main()
