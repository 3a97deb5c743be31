"""Stage 6b: the results as data. Every build writes `results.json` beside its HTML: provenance, per run
group the per-seed numbers and their aggregates, every comparison the observers could state with its family, test
and verdict, and the reference checks (schema in README.md).
"""
from __future__ import annotations

import json
import math
import os
import platform
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

import reportgen
from reportgen.analysis import stats
from reportgen.analysis.aggregate import (PointOutcome, aggregate_points, seed_numbers, seed_summary, seed_values,
                                          target_epochs)
from reportgen.analysis.ask_answers import LoadSplit
from reportgen.analysis.families import Family
from reportgen.analysis.metrics import metric
from reportgen.analysis.naming import name_runs
from reportgen.analysis.noise import seeds_note
from reportgen.analysis.prose import question_families, question_prose
from reportgen.analysis.reproduction import check_references
from reportgen.errors import ResultsFileError
from reportgen.results import RunOutcome
from reportgen.spec import Spec

SCHEMA = 1  # bump when a reader of an older file would misread a newer one
FILE_NAME = "results.json"
OWN_AGGREGATE = ("epochs_to_target",)  # metrics aggregated by their own rule ("not reached" is no number)
TRAINED = "trained"  # metrics.outcome's value for a run that neither diverged nor got stuck


def results_path(out_dir: Path, name: str) -> Path:
    """`report` (a build) → OUT/results.json; a question's section (`run q1.3`) → OUT/q1.3.results.json."""
    return Path(out_dir) / (FILE_NAME if name == "report" else f"{name}.{FILE_NAME}")


def results_document(spec: Spec, profile: str, outcomes: dict[str, list[RunOutcome]], provenance: dict,
                     load_split: LoadSplit | None = None) -> dict:
    """The whole document as plain JSON values (NaN and ±inf written as the strings "NaN", "Infinity").

    `load_split` reads a data set for the answers that describe one (the report's own loader, so both agree)."""
    said: set[str] = set()  # shared as the report shares them, so the answers read as the report's do
    named: set[str] = set()
    questions = {qid: _question(spec, qid, outcomes[qid], profile, said, named, load_split)
                 for qid in spec.questions if qid in outcomes}
    points = [p for qid in questions for p in aggregate_points(outcomes[qid])]
    return _plain({"schema": SCHEMA, "title": spec.title, "provenance": _provenance(provenance),
                   "noise_note": seeds_note(points), "questions": questions})


def write_results(doc: dict, path: Path) -> Path:
    """Write atomically (temp file in the same folder, then replace): a reader sees the old file or the new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # open(), not mkstemp: the umask's permissions, as the HTML
    try:
        tmp.write_text(json.dumps(doc, indent=1, allow_nan=False) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def read_results(path: Path) -> dict:
    """A results document from a file or a folder (results_files); ResultsFileError naming the file when it
    is missing, not JSON, or not a results document this version reads."""
    docs = [(p, _read_one(p)) for p in results_files(Path(path))]
    return docs[0][1] if len(docs) == 1 else merge_documents(docs)


def results_files(path: Path) -> list[Path]:
    """The results file(s) a path means: the file itself; in a folder, the build's results.json, else every
    question's `<id>.results.json` that `reportgen run` wrote there (in name order)."""
    if not path.is_dir():
        return [path]
    if (path / FILE_NAME).is_file():
        return [path / FILE_NAME]  # a whole build; sections run into the same folder are parts of it
    found = sorted(p for p in path.glob(f"*.{FILE_NAME}") if not p.name.startswith("."))
    if not found:
        raise ResultsFileError(f"{path}: no {FILE_NAME} and no <id>.{FILE_NAME} in this folder (give a results file, "
                               f"or a folder where `reportgen build` or `reportgen run` wrote one).")
    return found


def merge_documents(docs: list[tuple[Path, dict]]) -> dict:
    """Several questions' files (`reportgen run q1.2`, `run q1.3`) as one document: their questions in file order.
    A provenance field the files disagree on (say, the spec's hash) reads "mixed: x; y" rather than picking one."""
    questions: dict[str, Any] = {}
    for path, doc in docs:
        for qid, question in doc["questions"].items():
            if qid in questions:
                raise ResultsFileError(f"{path}: question {qid!r} is also in another results file of this folder; "
                                       "give one file.")
            questions[qid] = question
    provenance = _merged_fields([doc["provenance"] for _, doc in docs])
    return {**docs[0][1], "provenance": provenance, "questions": questions}


ADDITIVE = ("runs_trained", "trained_seconds")  # what each `run` command did itself adds up over the files


def _merged_fields(parts: list[dict]) -> dict:
    """Field by field: equal values kept, objects (versions) merged the same way, counts of what each
    command trained added, and any other disagreement said as "mixed: a; b"."""
    merged = {}
    for key in dict.fromkeys(k for part in parts for k in part):
        values = [part.get(key) for part in parts]
        if all(isinstance(v, dict) for v in values):
            merged[key] = _merged_fields(values)
        elif key in ADDITIVE and all(isinstance(v, (int, float)) or v is None for v in values):
            merged[key] = sum(v or 0 for v in values)
        else:
            distinct = list(dict.fromkeys(json.dumps(v, sort_keys=True) for v in values))
            merged[key] = values[0] if len(distinct) == 1 else "mixed: " + "; ".join(distinct)
    return merged


def _read_one(path: Path) -> dict:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ResultsFileError(f"{path}: no such file (give a results.json, a <id>.results.json, or a folder "
                               "holding them; `reportgen build` and `reportgen run` write them).") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ResultsFileError(f"{path}: cannot be read ({getattr(err, 'strerror', None) or err}).") from None
    except ValueError as err:
        raise ResultsFileError(f"{path}: not valid JSON ({err}); the file is damaged or not a results file.") from None
    _check_shape(doc, path)
    return doc


def _check_shape(doc: Any, path: Path) -> None:
    """The keys a reader relies on, so a damaged file is an error naming the key, not a crash later."""
    if not isinstance(doc, dict) or "schema" not in doc:
        raise ResultsFileError(f"{path}: not a reportgen results file (no `schema` key).")
    if doc["schema"] != SCHEMA:
        raise ResultsFileError(f"{path}: results schema {doc['schema']!r}; this reportgen reads schema {SCHEMA}.")
    _expect(isinstance(doc.get("provenance"), dict), path, "provenance", "an object")
    _expect(isinstance(doc.get("questions"), dict), path, "questions", "an object")
    for qid, question in doc["questions"].items():
        _expect(isinstance(question, dict) and isinstance(question.get("groups"), list), path,
                f"questions.{qid}.groups", "a list")
        for i, group in enumerate(question["groups"]):
            where = f"questions.{qid}.groups[{i}]"
            _expect(isinstance(group, dict) and isinstance(group.get("labels"), dict), path, f"{where}.labels", "an object")
            _expect(isinstance(group.get("seeds"), list), path, f"{where}.seeds", "a list")
            for j, seed in enumerate(group["seeds"]):
                _expect(isinstance(seed, dict) and isinstance(seed.get("metrics"), dict), path,
                        f"{where}.seeds[{j}].metrics", "an object")


def _expect(ok: bool, path: Path, key: str, what: str) -> None:
    if not ok:
        raise ResultsFileError(f"{path}: `{key}` is missing or not {what}; the file is damaged or not a results file.")


# ---------------------------------------------------------------- building the document

def _provenance(given: dict) -> dict[str, Any]:
    return {"spec_path": given.get("spec_path"), "spec_sha256": given.get("spec_hash"),
            "profile": given.get("profile"), "device": given.get("device"), "command": given.get("command"),
            "total_training_seconds": given.get("total_training_seconds"),
            # What this build itself trained (0 runs when the cache held everything): CI's job summary says it.
            "runs_trained": given.get("runs_trained", 0), "trained_seconds": given.get("trained_seconds"),
            "versions": _versions(),
            "datasets": given.get("datasets") or {},  # the spec's own data sets (sources.used_data), by name
            "resolve": given.get("resolve")}  # a --resolve build's design, looks and added seeds (resolve.py); else None


def _versions() -> dict[str, str]:
    found = {"python": platform.python_version(), "reportgen": reportgen.__version__}
    for package in ("torch", "torchvision"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


def _question(spec: Spec, qid: str, outcomes: list[RunOutcome], profile: str, said: set[str],
              named: set[str], load_split: LoadSplit | None = None) -> dict[str, Any]:
    question = spec.questions[qid]
    # The report's own run points (aggregate_points), so the file and the tables group and summarise alike.
    points = aggregate_points(outcomes)
    present = [p for p in points if p.result is not None]
    answer, _findings = question_prose(spec, question, present, said, named, load_split, profile)
    return {"title": question.title, "part": question.part, "answer": answer,
            "trained": any(o.result for o in outcomes) if outcomes else None,  # None: data views, no runs
            "groups": [_group(p) for p in points],
            "comparisons": _comparisons(question, present),
            "checks": [asdict(c) for c in _checks(qid, question, outcomes, profile)]}


def _comparisons(question: Any, present: list[PointOutcome]) -> list[dict[str, Any]]:
    """Every comparison of every family the question's observers could state (analysis/families.py)."""
    found = []
    for family in question_families(question, present):
        name = name_runs([p for pair in family.pairs for p in (pair.a, pair.b)])
        found += [_comparison(family, pair, c, name) for pair, c in family.comparisons()]
    return found


def _comparison(family: Family, pair: Any, c: stats.Comparison, name: Callable[[RunOutcome], str]) -> dict[str, Any]:
    value = metric(pair.metric).value
    return {"observer": family.observer, "family": family.what, "family_size": family.size, "metric": pair.metric,
            "a": name(pair.a), "b": name(pair.b),
            "a_labels": _labels(pair.a), "b_labels": _labels(pair.b),
            "seeds_a": sorted(seed_numbers(pair.a, value), key=repr), "seeds_b": sorted(seed_numbers(pair.b, value), key=repr),
            **c.to_dict()}


def _labels(point: RunOutcome) -> dict[str, Any]:
    return {k: v for k, v in point.planned.labels.items() if k != "seed"}


def _checks(qid: str, question: Any, outcomes: list[RunOutcome], profile: str) -> list[Any]:
    return check_references(qid, question.references, outcomes, profile) if question.references else []


def _group(point: PointOutcome) -> dict[str, Any]:
    seeds = [_seed(o) for o in point.seeds]
    names = [n for n in stats.run_metric_names() if n not in OWN_AGGREGATE and _has_number(seeds, n)]
    labels = {k: v for k, v in point.planned.labels.items() if k != "seed"}
    return {"labels": labels, "seeds": seeds, "aggregate": {
        "metrics": {name: seed_summary(point, metric(name).value).to_dict() for name in names},
        "epochs_to_target": _target_summary(point),
        "outcomes": _outcome_counts(point),
    }}


def _target_summary(point: PointOutcome) -> dict[str, Any] | None:
    """When the seeds reached the budget's target accuracy; None when the runs have no target."""
    values = seed_values(point, metric("epochs_to_target").value)
    if not values or all(v is None for v in values):
        return None
    middle, reached, n, epochs = target_epochs(values)
    low, high = (epochs[0], epochs[-1]) if epochs else (None, None)
    if not reached:
        text = f"not reached in {n} of {n} seeds"
    else:
        spread = f" (range {low}–{high})" if low != high else ""
        missed = f"; not reached in {n - reached} of {n} seeds" if reached < n else ""
        text = f"median epoch {middle:g}{spread}{missed}"
    return {"n": n, "reached": reached, "not_reached": n - reached, "median": middle, "min": low, "max": high,
            "text": text}


def _outcome_counts(point: PointOutcome) -> dict[str, Any]:
    """How the seeds ended: trained, diverged, stuck at chance (metrics.outcome), and how many are missing."""
    counts: dict[str, int] = {}
    for name in seed_values(point, metric("outcome").value):
        counts[name] = counts.get(name, 0) + 1
    n, missing = point.n, len(point.seeds) - point.n
    failed = [f"{name} in {count} of {n} seeds" for name, count in counts.items() if name != TRAINED]
    text = "; ".join(failed) or (f"trained in all {n} seeds" if n else "no seed in the cache")
    text += f" ({missing} not in the cache)" if missing and n else ""
    return {"n": n, "counts": counts, "missing": missing, "text": text}


def _has_number(seeds: list[dict[str, Any]], name: str) -> bool:
    values = [s["metrics"].get(name) for s in seeds]
    return any(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def _seed(outcome: RunOutcome) -> dict[str, Any]:
    result = outcome.result
    seed = {"seed": outcome.planned.labels.get("seed", outcome.planned.request.get("seed")),
            "key": outcome.planned.key, "request": outcome.planned.request, "in_cache": result is not None}
    if result is None:
        return seed | {"machine": None, "metrics": {}, "epochs": {}}
    return seed | {
        "machine": result.machine,
        "metrics": {name: stats.run_metric(outcome, name) for name in stats.run_metric_names()},
        "epochs": {name: [getattr(e, name) for e in result.epochs] for name in stats.SERIES_METRICS},
    }


def _plain(value: Any) -> Any:
    """JSON-ready: tuples as lists, non-finite floats as the strings float() reads back."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return value
