"""Stage 6: run outcomes → tables, figures and prose → one Jinja2 context → HTML (and a WeasyPrint PDF).

Figures go to `out_dir/figures/`, tables also to `out_dir/tables/` as CSV; the HTML refers to both
relatively, so the folder can be moved as a whole.
"""
from __future__ import annotations

import hashlib
import inspect
import json
import platform
import re
import sys
from dataclasses import dataclass, field
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

import reportgen
from reportgen.analysis import figures, naming, tables
from reportgen.analysis.aggregate import aggregate_points, seeds_text
from reportgen.analysis.metrics import metric
from reportgen.analysis.noise import seeds_note
from reportgen.analysis.prose import question_prose, question_tests_note
from reportgen.analysis.reproduction import check_references
from reportgen.analysis.stats import ALPHA
from reportgen.datasets import dataset_title
from reportgen.errors import ReportgenError
from reportgen.results import RunOutcome
from reportgen.spec import Question, Spec
from reportgen.views import VIEWS

# A checkout (or editable install) has templates/ beside the package; a wheel installs them as
# data files under <prefix>/share/reportgen/templates (pyproject.toml).
TEMPLATE_PLACES = (Path(__file__).resolve().parents[1] / "templates", Path(sys.prefix) / "share" / "reportgen" / "templates")
_FIGURES_SOURCE_HASH = hashlib.sha256(inspect.getsource(figures).encode()).hexdigest()  # new drawing code, new figures
VERDICT_CLASSES = {"inside prediction interval": "ok", "outside prediction interval": "bad",
                   "within tolerance": "ok", "outside tolerance": "bad", "not measured": "na"}
VERSIONS = ("torch", "torchvision", "matplotlib", "pandas", "jinja2", "weasyprint")


@dataclass
class _Build:
    """What every view of one report shares: the output folder, run colours, loaded splits, numbering."""

    out_dir: Path
    palette: figures.Palette
    load_split: Callable[[str, bool], Any]
    splits: dict[tuple[str, bool], Any] = field(default_factory=dict)
    tables: int = 0
    figures: int = 0

    def split(self, name: str, train: bool) -> Any:
        if (name, train) not in self.splits:
            self.splits[name, train] = self.load_split(name, train)
        return self.splits[name, train]


@dataclass
class ViewCanvas:
    """What a view's renderer (views.VIEWS) may use: its number, the output folder, data, figure reuse."""

    build: _Build
    qid: str
    index: int

    def table(self, frame, caption: str, group_by: int = 0, per_seed=None) -> dict[str, Any]:
        """A table item; `per_seed`, the same table with a row per seed, is written beside it as CSV."""
        item = _table_item(self.build, self.qid, self.index, frame, caption, group_by)
        if per_seed is not None:
            item["csv_seeds"] = f"tables/{slug(self.qid)}-{self.index}-seeds.csv"
            tables.write_csv(per_seed, self.build.out_dir / item["csv_seeds"])
        return item

    def figure(self, view, runs: list[RunOutcome], draw, inputs: Any = None) -> dict[str, Any]:
        return _figure_item(self.build, self.qid, self.index, view, runs, draw, inputs)

    def splits(self, dataset: str) -> tuple[Any, Any] | dict[str, Any]:
        """(train, test) splits, or a placeholder item saying why the data could not be read."""
        try:
            return self.build.split(dataset, True), self.build.split(dataset, False)
        except ReportgenError as err:
            return _data_missing(dataset, err)


def render_report(spec: Spec, profile: str, outcomes: dict[str, list[RunOutcome]], out_dir: Path,
                  provenance: dict, load_split: Callable[[str, bool], Any], name: str = "report",
                  pdf: bool = True, self_contained: bool = False) -> tuple[Path, Path | None]:
    """Write `out_dir/<name>.html` (and `.pdf`) for the questions in `outcomes`, in spec order.

    `outcomes` maps a question id to its planned runs with results (None = not in the cache);
    a question without runs (data views only) is given an empty list. `self_contained`: figures and
    CSV tables are embedded as data URIs, so the HTML file alone works offline (a CI artifact, a mail).
    """
    out_dir = Path(out_dir)
    for sub in ("figures", "tables"):
        (out_dir / sub).mkdir(parents=True, exist_ok=True)
    context = build_context(spec, profile, outcomes, out_dir, provenance, load_split)
    html_path = out_dir / f"{name}.html"
    partial = out_dir / f".{name}.html.partial"
    template = _environment(out_dir if self_contained else None).get_template("report.html.j2")
    partial.write_text(template.render(**context), encoding="utf-8")
    partial.replace(html_path)
    pdf_path = out_dir / f"{name}.pdf" if pdf else None
    if pdf_path is not None:
        _write_pdf(html_path, pdf_path, out_dir)
    return html_path, pdf_path


def _write_pdf(html_path: Path, pdf_path: Path, out_dir: Path) -> None:
    """WeasyPrint is most of a cached rebuild's time: skip it when the HTML (figure names included) is unchanged."""
    digest = hashlib.sha256(html_path.read_bytes()).hexdigest()
    stamp = pdf_path.with_name(f".{pdf_path.name}.sha256")
    if pdf_path.exists() and stamp.exists() and stamp.read_text() == digest:
        return
    from weasyprint import HTML

    partial = pdf_path.with_name(f".{pdf_path.name}.partial")
    HTML(filename=str(html_path), base_url=str(out_dir)).write_pdf(partial)
    partial.replace(pdf_path)  # a reader never sees half a PDF, even after Ctrl-C
    stamp.write_text(digest)


def build_context(spec: Spec, profile: str, outcomes: dict[str, list[RunOutcome]], out_dir: Path,
                  provenance: dict, load_split: Callable[[str, bool], Any]) -> dict[str, Any]:
    """Everything the template shows, as plain dicts, lists and strings."""
    qids = [qid for qid in spec.questions if qid in outcomes]
    build = _Build(out_dir, figures.make_palette(p for qid in qids for p in aggregate_points(outcomes[qid])), load_split)
    said: set[str] = set()  # findings already given: no sentence appears in two sections
    named: set[str] = set()  # model labels already given in full: later mentions use the short name
    sections = [_section(spec, qid, outcomes[qid], profile, build, said, named) for qid in qids]
    parts: dict[str, list[dict]] = {}
    for section in sections:
        parts.setdefault(section["part"], []).append(section)
    checks = [row for section in sections for row in section["checks"]]
    return {
        "title": spec.title, "author": spec.author, "profile": profile,
        "profile_description": spec.profiles[profile].description if profile in spec.profiles else "",
        "date": datetime.now().astimezone().strftime("%d %B %Y"),  # the day only: same cache, same day, same report
        "css": (templates_dir() / "report.css").read_text(encoding="utf-8"),
        "parts": [{"title": title, "id": "part-" + slug(title), "sections": members}
                  for title, members in parts.items()],
        "noise_note": seeds_note([p for qid in qids for p in aggregate_points(outcomes[qid])]),
        "checks": checks, "check_counts": _count_verdicts(checks), "distribution_counts": _count_distribution(checks),
        "provenance": _provenance(provenance, outcomes, qids),
        "resolve": _resolve_shown(provenance.get("resolve")), "resolve_note": resolve_note(provenance.get("resolve")),
    }


def _resolve_shown(resolve: dict[str, Any] | None) -> dict[str, Any] | None:
    """The --resolve record with each stage's training times as durations, for the appendix."""
    if not resolve:
        return None
    stages = [stage | {"estimated": _duration(stage["estimated_seconds"]), "trained": _duration(stage["trained_seconds"])}
              for stage in resolve.get("stages", [])]
    return resolve | {"stages": stages}


def resolve_note(resolve: dict[str, Any] | None) -> str:
    """The answers page's sentence on a --resolve build ('' for a build of fixed seeds)."""
    if not resolve:
        return ""
    added, looks = resolve["added"], resolve["looks_allowed"]
    grown = (f"{len(added)} settings got more seeds (up to {resolve['cap']})" if added
             else "no setting needed more seeds")
    return (f"Seeds until resolved (--resolve): {grown} over {len(resolve['looks'])} of at most {looks} looks; "
            f"{resolve['stopped_because']}. Each CI is also corrected for the looks (100 − {100 * ALPHA:g}/(m · "
            f"{looks}) %); the appendix lists each added seed and its claim.")


def slug(text: str) -> str:
    """A file- and anchor-safe name: 'lab.t1' → 'lab-t1'."""
    return re.sub(r"[^A-Za-z0-9_]+", "-", text).strip("-") or "x"


def templates_dir(places: tuple[Path, ...] = TEMPLATE_PLACES) -> Path:
    """The first place holding the report templates; a clear error when none does."""
    for place in places:
        if (place / "report.html.j2").is_file():
            return place
    raise ReportgenError("The report templates were not found; looked in: " + ", ".join(map(str, places))
                         + ". Reinstall reportgen (pip install .) or run it from a checkout.")


def _environment(embed_from: Path | None = None):
    """The templates' environment; its `asset` filter turns a relative figure or CSV path into a data URI of
    the file under `embed_from` (None: the path stays a link beside the HTML)."""
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    env = Environment(loader=FileSystemLoader(templates_dir()), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["asset"] = (lambda path: path) if embed_from is None else (lambda path: data_uri(embed_from / path))
    return env


MEDIA_TYPES = {".svg": "image/svg+xml", ".png": "image/png", ".csv": "text/csv"}


def data_uri(path: Path) -> str:
    """The file as a base64 data URI (base64 even for SVG: no quoting rules to get wrong inside src="...")."""
    import base64

    media = MEDIA_TYPES.get(path.suffix.lower(), "application/octet-stream")
    return f"data:{media};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


# ---------------------------------------------------------------- sections

def _section(spec: Spec, qid: str, runs: list[RunOutcome], profile: str, build: _Build, said: set[str],
             named: set[str]) -> dict[str, Any]:
    question = spec.questions[qid]
    present = [o for o in runs if o.result is not None]
    points = aggregate_points(runs)  # one per grid point, over its seeds
    needs_runs = any(VIEWS.get(view.kind).uses_runs for view in question.views) or bool(question.observers)
    untrained = needs_runs and not present
    views = [(i, v) for i, v in enumerate(question.views, 1) if not (untrained and VIEWS.get(v.kind).uses_runs)]
    return {
        "qid": qid, "id": slug(qid), "part": question.part, "title": question.title, "prompt": question.prompt,
        "protocol": describe_protocol(runs),
        "deviations": list(dict.fromkeys(d for o in runs for d in o.planned.overlays)),
        "placeholder": _not_trained(qid, runs) if untrained else None,
        "missing": [_missing_name(o) for o in runs if o.result is None] if present else [],
        "views": _without_repeated_placeholders([(view, VIEWS.get(view.kind).render(ViewCanvas(build, qid, i), view, points))
                                                 for i, view in views]),
        **_prose(spec, question, [p for p in points if p.result is not None], said, named, build.split, profile),
        "checks": [_check_row(c, slug(qid)) for c in _checks(qid, question, runs, profile)],
    }


def _missing_name(outcome: RunOutcome) -> str:
    """A run missing from the cache: its model, lr and seed."""
    return naming.describe_run(outcome, ["lr", "seed"])


def _without_repeated_placeholders(items: list[tuple[Any, dict[str, Any]]]) -> list[dict[str, Any]]:
    """A reason already given in this section (say, unreadable data) is not repeated in full for each view."""
    seen: set[str] = set()
    kept = []
    for view, item in items:
        text = item.get("message", {}).get("text") if item["template"] == "_placeholder.html.j2" else None
        if text in seen:
            item = _placeholder(f"Not shown either, for the same reason: {view.caption or view.kind}")
        elif text is not None:
            seen.add(text)
        kept.append(item)
    return kept


def _not_trained(qid: str, runs: list[RunOutcome]) -> dict[str, str]:
    if not runs:
        return {"text": "No runs are planned for this question under this profile.", "command": ""}
    return {"text": f"Not trained yet ({len(runs)} runs missing from the cache) — run",
            "command": f"reportgen run {qid}"}


def describe_protocol(runs: list[RunOutcome]) -> list[str]:
    """The planned runs' settings in words, each distinct value once: data, models, optimizer, lr, budget..."""
    if not runs:
        return []
    planned = [o.planned for o in runs]

    def values(name: str) -> list[Any]:
        found = (p.labels.get(name) if p.labels.get(name) is not None else p.request.get(name) for p in planned)
        return [v for v in dict.fromkeys(found) if v is not None]

    items = [
        _listed("data set", [dataset_title(v) for v in values("dataset")]),
        _listed("model", values("model_label")),
        _listed("optimizer", list(dict.fromkeys(naming.field_text(p, "optimizer") for p in planned
                                                if p.labels.get("optimizer") or p.request.get("optimizer")))),
        _listed("learning rate", [tables.format_value("lr", v) for v in values("lr")]),
        "; ".join(dict.fromkeys(naming.describe_budget(p.budget) for p in planned)),
        _listed("batch size", [str(v) for v in values("batch_size")]),
        " or ".join("batches shuffled every epoch" if v else "batches in data-set order (not shuffled)"
                    for v in values("shuffle")),
        _subsets(values("train_subset"), values("test_subset")),
        _input_sizes(planned),
    ]
    return [item for item in items if item]


def _listed(what: str, values: list[Any]) -> str:
    if not values:
        return ""
    return f"{what}{'s' if len(values) > 1 else ''} {', '.join(map(str, values))}"


def _subsets(train: list[Any], test: list[Any]) -> str:
    if not train and not test:
        return "all training and test images"
    said = [f"first {', '.join(f'{v:,}' for v in train)} training images" if train else "all training images",
            f"first {', '.join(f'{v:,}' for v in test)} test images" if test else "all test images"]
    return " and ".join(said)


def _input_sizes(planned: list) -> str:
    sizes = {}
    for p in planned:
        size = p.labels.get("image_size") or p.request.get("image_size")
        native = p.request["data"]["shape"][-1] if "data" in p.request else 28  # a referenced data set's own size
        if size and size != native:
            sizes.setdefault(size, []).append(naming.model_label(p))
    return "; ".join(f"input resized to {s} × {s} px for {', '.join(dict.fromkeys(m))}" for s, m in sizes.items())


# ---------------------------------------------------------------- views

def _table_item(build: _Build, qid: str, index: int, frame, caption: str, group_by: int = 0) -> dict[str, Any]:
    """A table for the template, also written as CSV; rows sharing their first `group_by` cells are grouped."""
    build.tables += 1
    csv = f"tables/{slug(qid)}-{index}.csv"
    tables.write_csv(frame, build.out_dir / csv)
    keys = frame.attrs["keys"]
    numeric = [any(tables.is_numeric(v) for v in frame.iloc[:, j]) for j in range(frame.shape[1])]
    rows, previous = [], None
    for values in frame.itertuples(index=False):
        cells = [{"text": tables.format_value(k, v), "cls": _cell_class(v, num)}
                 for k, v, num in zip(keys, values, numeric)]
        group = tuple(values[:group_by])
        if group_by and group == previous:  # the run's labels once, at its first epoch
            cells[:group_by] = [{"text": "", "cls": "repeat"}] * group_by
        rows.append({"cells": cells, "cls": "group-start" if group_by and group != previous and rows else ""})
        previous = group
    return {"template": "_table.html.j2", "number": build.tables, "caption": caption, "csv": csv,
            "headers": [{"text": t, "num": n} for t, n in zip(frame.columns, numeric)], "rows": rows,
            "notes": frame.attrs["notes"], "id": f"{slug(qid)}-{index}"}


def _cell_class(value: Any, numeric_column: bool) -> str:
    classes = ["num"] if numeric_column else []
    if value in (tables.NOT_RUN, None):
        classes.append("muted")
    return " ".join(classes)


def _figure_item(build: _Build, qid: str, index: int, view, runs: list[RunOutcome], draw, inputs: Any = None) -> dict[str, Any]:
    stem = f"{slug(qid)}-{index}"
    digest = _figure_digest(view, runs, build.palette, inputs)
    path = _reuse_figure(build.out_dir / "figures", stem, digest)
    if path is None:
        path = draw(view, runs, build.out_dir / "figures" / f"{stem}-{digest}.svg", build.palette)
        _remove_stale_figures(build.out_dir / "figures", stem, keep=path)
    if path is None:
        return _placeholder(f"No data for this figure yet ({view.caption or view.kind}).")
    build.figures += 1
    missing = [_missing_name(s) for o in runs for s in getattr(o, "seeds", (o,)) if s.result is None]
    notes = [f"Not trained yet, so not drawn: {'; '.join(missing)}."] if missing else []
    if said := seeds_text(runs):
        notes.append(figures.SEED_NOTES.get(view.kind, "").format(n=said))
    return {"template": "_figure.html.j2", "number": build.figures, "caption": view.caption,
            "src": f"figures/{path.name}", "id": f"{slug(qid)}-{index}", "kind": view.kind,
            "note": " ".join(n for n in notes if n)}


def _figure_digest(view, runs: list[RunOutcome], palette: figures.Palette, inputs: Any) -> str:
    """What a figure is drawn from: the view, each run's identity and length, its colour, the drawing code."""
    runs_seen = [(o.planned.key, repr(o.planned.budget), sorted(o.planned.labels.items(), key=str),
                  len(o.result.epochs) if o.result else None, o.result.stop_reason if o.result else None,
                  _seeds_seen(o)) for o in runs]
    # The palette numbers every value in the report, so a figure's colours depend on the others': include it.
    blob = json.dumps([view.model_dump(), runs_seen, repr(inputs), sorted(palette.indices.items()), _FIGURES_SOURCE_HASH],
                      default=str, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def _seeds_seen(point: RunOutcome) -> list[Any]:
    seeds = getattr(point, "seeds", ())
    return [(s.planned.key, len(s.result.epochs) if s.result else None) for s in seeds] if len(seeds) > 1 else []


def _reuse_figure(folder: Path, stem: str, digest: str) -> Path | None:
    return next(iter(sorted(folder.glob(f"{stem}-{digest}.*"))), None)


def _remove_stale_figures(folder: Path, stem: str, keep: Path | None) -> None:
    for old in folder.glob(f"{stem}-*.*"):
        if old != keep and re.fullmatch(rf"{re.escape(stem)}-[0-9a-f]{{12}}\.\w+", old.name):
            old.unlink(missing_ok=True)


def _placeholder(text: str, command: str = "") -> dict[str, Any]:
    return {"template": "_placeholder.html.j2", "message": {"text": text, "command": command}}


def _data_missing(dataset: str, err: Exception) -> dict[str, Any]:
    return _placeholder(f"The {dataset_title(dataset)} data could not be read: {err}")


# ---------------------------------------------------------------- prose and checks

def _prose(spec: Spec, question: Question, present: list[RunOutcome], said: set[str], named: set[str],
           load_split: Callable[[str, bool], Any], profile: str) -> dict[str, list[str]]:
    answer, findings = question_prose(spec, question, present, said, named, load_split, profile)
    return {"answer": answer, "observations": findings, "tests": question_tests_note(question, present)}


def _checks(qid: str, question: Question, runs: list[RunOutcome], profile: str) -> list[Any]:
    if not question.references:
        return []
    return check_references(qid, question.references, runs, profile)


def _check_row(check: Any, anchor: str) -> dict[str, Any]:
    unit = f" {check.unit}" if check.unit else ""
    return {
        "question": check.question, "anchor": anchor, "label": check.label,
        "metric": metric(check.metric).title,
        "reference": _number(check.reference) + (unit if tables.is_numeric(check.reference) else ""),
        "tolerance": f"± {check.tolerance:g}{unit}" if tables.is_numeric(check.reference) else "exact",
        "measured": tables.format_value(check.metric, check.measured)
                    + (unit if tables.is_numeric(check.measured) else ""),
        "difference": _difference(check), "verdict": check.verdict,
        "verdict_class": VERDICT_CLASSES.get(check.verdict, "na"), "reason": check.reason, "note": check.note,
        "distribution": _distribution(check), "in_range": check.in_seed_range,
        "within_2_sigmas": None if check.sigmas is None else abs(check.sigmas) <= 2,
        "source": re.sub(r"([:_])", "\\1\u200b", check.source),  # break opportunities in 'file_hash.txt:12-34'
    }


def _distribution(check: Any) -> str:
    """Where the reference lies among our seeds: 'mean of 3 seeds, range 86.1–87.0; reference inside, 0.4 sd'."""
    if check.seeds < 2:
        return ""
    said = f"mean of {check.seeds} seeds"
    if check.seed_min is None:
        return said
    low, high = (tables.format_value(check.metric, v) for v in (check.seed_min, check.seed_max))
    said += f", range {low}–{high}"
    if check.in_seed_range is not None:
        said += "; reference " + ("inside it" if check.in_seed_range else "outside it")
    if check.sigmas is not None:
        said += f", {abs(check.sigmas):.1f} sd {'above' if check.sigmas > 0 else 'below'} the mean"
    if check.prediction is not None:
        low, high = (tables.format_value(check.metric, v) for v in check.prediction)
        said += f"; 95 % prediction interval of one new run {low}–{high}"
    return said


def _number(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return f"{int(value):,}" if abs(value) >= 1000 else f"{value:g}"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _difference(check: Any) -> str:
    if check.difference is None:
        return "—"
    if check.metric in ("final_accuracy", "best_accuracy"):
        return f"{check.difference:+.2f}"
    return f"{check.difference:+,.0f}" if float(check.difference).is_integer() else f"{check.difference:+.3g}"


def _count_distribution(checks: list[dict]) -> dict[str, int]:
    """How many references have a seed range, lie inside it, and lie within 2 sd of the seeds' mean."""
    ranged = [row for row in checks if row["in_range"] is not None]
    spread = [row for row in checks if row["within_2_sigmas"] is not None]
    return {"ranged": len(ranged), "inside": sum(bool(row["in_range"]) for row in ranged),
            "spread": len(spread), "within_2_sigmas": sum(bool(row["within_2_sigmas"]) for row in spread)}


def _count_verdicts(checks: list[dict]) -> dict[str, int]:
    counts = {verdict: 0 for verdict in VERDICT_CLASSES}
    for row in checks:
        counts[row["verdict"]] = counts.get(row["verdict"], 0) + 1
    return counts


# ---------------------------------------------------------------- provenance

def _provenance(given: dict, outcomes: dict[str, list[RunOutcome]], qids: list[str]) -> dict[str, Any]:
    named = {"profile": "Profile", "device": "Device", "spec_path": "Spec file", "spec_hash": "Spec sha256",
             "command": "Command", "total_training_seconds": "Training time (each run once)",
             "estimated_training_seconds": "Training wall time of this build, estimated beforehand",
             "trained_seconds": "Training wall time of this build, actual", "workers": "Runs trained side by side",
             "runs_trained": "Runs trained by this build"}
    items = [(title, _duration(given[k]) if k.endswith("seconds") else str(given[k]))
             for k, title in named.items() if given.get(k) is not None]
    items += [(k.replace("_", " ").capitalize(), str(v)) for k, v in given.items()
              if k not in named and k not in ("training_seconds_by_question", "datasets", "resolve")]
    items += [(f"Data set {name}", _data_said(data)) for name, data in (given.get("datasets") or {}).items()]
    by_question = given.get("training_seconds_by_question") or {}
    return {
        "items": items, "versions": _versions(),
        "seconds": [(qid, _duration(by_question[qid])) for qid in qids if qid in by_question],
        "runs": _runs_used(outcomes, qids),
    }


def _data_said(data: dict[str, Any]) -> str:
    """A referenced data set as the provenance lists it: kind, place, content digest, shape, classes, sizes."""
    channels, height, width = data["shape"]
    train, test = data["sizes"]
    return (f"{data['kind']} at {data['location']}; content sha256 {data['sha256']}; {channels} × {height} × {width} "
            f"inputs, {data['classes']} classes, {train:,} training and {test:,} test images")


def _versions() -> list[tuple[str, str]]:
    found = [("Python", platform.python_version()), ("reportgen", reportgen.__version__)]
    for package in VERSIONS:
        try:
            found.append((package, metadata.version(package)))
        except metadata.PackageNotFoundError:
            found.append((package, "not installed"))
    return found


def _runs_used(outcomes: dict[str, list[RunOutcome]], qids: list[str]) -> list[dict[str, Any]]:
    """Every distinct run (cache key) with the questions that use it, in order of first use."""
    runs: dict[str, dict[str, Any]] = {}
    for qid in qids:
        for o in outcomes[qid]:
            row = runs.setdefault(o.planned.key, {"key": o.planned.key, "short": o.planned.key[:12],
                                                   "name": naming.describe_run(o, ["lr"]), "questions": [], "epochs": None})
            if qid not in row["questions"]:
                row["questions"].append(qid)
            if o.result is not None:
                row["epochs"] = max(row["epochs"] or 0, len(o.result.epochs))
    return list(runs.values())


def _duration(seconds: float) -> str:
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"
