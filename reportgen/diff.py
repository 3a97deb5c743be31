"""`reportgen diff`: two results documents in, a structured Diff out — the settings that differ and the
numbers that moved, judged against seed noise with the report's verdicts (ahead, equivalent, unresolved; paired
where the seeds pair, else Welch) or, with one seed, against a tolerance.
Rendering (terminal and HTML) is at the end; nothing here reads or writes files.
"""
from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass, field
from typing import Any

from reportgen.analysis import pairing
from reportgen.analysis.metrics import METRICS
from reportgen.analysis.stats import AHEAD, EQUIVALENT, UNRESOLVED, Comparison, Summary, compare, summarize

DEFAULT_TOLERANCE = 0.5  # accuracy points: 50 of Fashion-MNIST's 10,000 test images
BEYOND_TOLERANCE = "beyond tolerance"
WITHIN_TOLERANCE = "within tolerance"
NOT_JUDGED = "not judged"
CHANGED = "changed"
NOISE_FREE = (BEYOND_TOLERANCE, WITHIN_TOLERANCE, NOT_JUDGED)  # verdicts given without a noise estimate

# How each compared metric is judged when a side has one seed (with ≥ 2 on both sides, all by the interval):
ACCURACY, UNJUDGED, EXACT = "accuracy", "unjudged", "exact"
COMPARED_METRICS = {
    "final_accuracy": ACCURACY, "best_accuracy": ACCURACY,  # against --tolerance, in accuracy points
    "final_train_loss": UNJUDGED, "final_test_loss": UNJUDGED, "epochs_trained": UNJUDGED,
    "epochs_to_target": UNJUDGED,  # the epoch among the seeds that reached the target
    "params": EXACT,  # a count: any change is a change of model
}  # seconds_per_epoch is left out: wall time measures the machine, not the result
BUILD_FIELDS = {"spec_sha256": "spec sha256", "profile": "profile", "device": "device"}
# The seed is matched on, the device is a build parameter, and where referenced files lie is no setting
# (cache.LOCATIONS: their content digests are request fields and are compared).
IGNORED_REQUEST_FIELDS = ("seed", "device", "locations")


@dataclass(frozen=True)
class Parameter:
    """A build parameter that differs: the spec's hash, the profile, the device, a version, the machines."""

    name: str
    a: Any
    b: Any


@dataclass(frozen=True)
class RunSetting:
    """A run setting that differs: a run group on one side only (b or a is None), or, for groups with
    the same labels, a request field (model arguments, engine version...) or the seeds trained."""

    question: str
    run: str  # the group in words
    setting: str  # "run group", a request field, or "seeds"
    a: Any
    b: Any


@dataclass(frozen=True)
class Move:
    """A number (or count) of one run group that is not the same in A and B."""

    question: str
    run: str
    metric: str  # a metric name, "outcome", "target reached" or "in cache"
    a: Summary | str
    b: Summary | str
    difference: float | None  # mean B − mean A, for numbers
    comparison: Comparison | None  # paired or Welch's, when both sides have ≥ 2 seeds
    verdict: str  # AHEAD, EQUIVALENT, UNRESOLVED (stats.py), or one of NOISE_FREE, or CHANGED
    moved: bool  # counts towards the exit code


@dataclass(frozen=True)
class Diff:
    a_name: str
    b_name: str
    tolerance: float
    parameters: list[Parameter] = field(default_factory=list)
    settings: list[RunSetting] = field(default_factory=list)
    moves: list[Move] = field(default_factory=list)
    titles: dict[str, str] = field(default_factory=dict)  # question id → title

    @property
    def moved(self) -> list[Move]:
        return [m for m in self.moves if m.moved]

    @property
    def exit_code(self) -> int:
        """0: no run setting differs and nothing moved beyond noise or tolerance; 1 otherwise."""
        return 1 if self.settings or self.moved else 0


def diff_documents(a: dict, b: dict, tolerance: float = DEFAULT_TOLERANCE, a_name: str = "A",
                   b_name: str = "B") -> Diff:
    """Compare two results documents (results_file.read_results): B against A."""
    result = Diff(a_name, b_name, tolerance, parameters=_parameters(a, b))
    qa, qb = a["questions"], b["questions"]
    for qid in [*qa, *(q for q in qb if q not in qa)]:
        result.titles[qid] = (qa.get(qid) or qb.get(qid)).get("title", qid)
        groups_a, groups_b = (qa.get(qid) or {}).get("groups", []), (qb.get(qid) or {}).get("groups", [])
        names = _run_namer(groups_a + groups_b)
        _diff_question(result, qid, _by_labels(groups_a), _by_labels(groups_b), names)
    return result


# ---------------------------------------------------------------- build parameters

def _parameters(a: dict, b: dict) -> list[Parameter]:
    pa, pb = a["provenance"], b["provenance"]
    found = [Parameter(title, pa.get(key), pb.get(key)) for key, title in BUILD_FIELDS.items()]
    va, vb = pa.get("versions") or {}, pb.get("versions") or {}
    found += [Parameter(f"{name} version", va.get(name), vb.get(name)) for name in sorted({*va, *vb})]
    found.append(Parameter("machines", _machines(a), _machines(b)))
    return [p for p in found if p.a != p.b]


def _machines(doc: dict) -> list[str]:
    """Every machine that trained a run of the build, in words; 'unknown' for entries that predate the record."""
    seen: list[str] = []
    for question in doc["questions"].values():
        for group in question["groups"]:
            for seed in group["seeds"]:
                if seed.get("in_cache", True):
                    name = _machine_name(seed.get("machine"))
                    seen += [name] if name not in seen else []
    return seen


def _machine_name(machine: dict | None) -> str:
    if not machine:
        return "unknown"
    threads = f", {machine.get('torch_threads')} threads" if machine.get("torch_threads") else ""
    gpu = f", {machine['gpu']}" if machine.get("gpu") else ""
    return f"{machine.get('processor', '?')}{threads}{gpu}, torch {machine.get('torch', '?')}"


# ---------------------------------------------------------------- run groups

def _labels_key(labels: dict) -> str:
    return json.dumps(labels, sort_keys=True)


def _by_labels(groups: list[dict]) -> dict[str, dict]:
    return {_labels_key(g["labels"]): g for g in groups}


def _run_namer(groups: list[dict]):
    """Groups named by their model and the labels that tell the question's groups apart (both sides)."""
    keys = {k for g in groups for k in g["labels"]} - {"model", "model_label", "arch"}
    varying = [k for k in sorted(keys) if len({_labels_key({"v": g["labels"].get(k)}) for g in groups}) > 1]

    def name(labels: dict) -> str:
        words = [str(labels.get("model_label") or labels.get("model") or "run")]
        return ", ".join(words + [f"{k} {_fmt_label(labels.get(k))}" for k in varying])

    return name


def _fmt_label(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return value if isinstance(value, str) else json.dumps(value)


def _diff_question(result: Diff, qid: str, ga: dict[str, dict], gb: dict[str, dict], names) -> None:
    pairs = _changed_pairs([k for k in ga if k not in gb], [k for k in gb if k not in ga], ga, gb)
    for key, group in ga.items():
        if key not in gb and key not in pairs:
            result.settings.append(RunSetting(qid, names(group["labels"]), "run group", "present", None))
    paired_b = {kb for kb, _ in pairs.values()}
    for key, group in gb.items():
        if key not in ga and key not in paired_b:
            result.settings.append(RunSetting(qid, names(group["labels"]), "run group", None, "present"))
    for key in (k for k in ga if k in gb):
        run = names(ga[key]["labels"])
        result.settings.extend(_setting_changes(qid, run, ga[key], gb[key]))
        result.moves.extend(_group_moves(qid, run, ga[key], gb[key], result.tolerance))
    for key_a, (key_b, label) in pairs.items():
        a, b = ga[key_a], gb[key_b]
        run = f"{names(a['labels'])} → {label} {_fmt_label(b['labels'].get(label))}"
        result.settings.append(RunSetting(qid, run, label, a["labels"].get(label), b["labels"].get(label)))
        result.settings.extend(_setting_changes(qid, run, a, b, ignore=(label,)))
        result.moves.extend(_group_moves(qid, run, a, b, result.tolerance))


def _changed_pairs(only_a: list[str], only_b: list[str], ga: dict[str, dict], gb: dict[str, dict]) -> dict[str, tuple[str, str]]:
    """Groups on one side only that are one edit apart: {A's key: (B's key, the label that changed)}.

    A spec edit such as `epochs = 10` → `15` in one question gives its run point new labels; pairing the old
    and the new group lets their numbers be compared. Only unambiguous pairs: each differs from the other in
    exactly one label and from no other unmatched group in only one (a changed grid of rates stays unpaired).
    """
    def one_label(ka: str, kb: str) -> str | None:
        la, lb = ga[ka]["labels"], gb[kb]["labels"]
        differ = [k for k in sorted({*la, *lb}) if la.get(k) != lb.get(k)]
        return differ[0] if len(differ) == 1 else None

    near = {(ka, kb): label for ka in only_a for kb in only_b if (label := one_label(ka, kb))}
    pairs = {}
    for (ka, kb), label in near.items():
        if sum(1 for a, _ in near if a == ka) == 1 and sum(1 for _, b in near if b == kb) == 1:
            pairs[ka] = (kb, label)
    return pairs


def _setting_changes(qid: str, run: str, a: dict, b: dict, ignore: tuple[str, ...] = ()) -> list[RunSetting]:
    seeds_a, seeds_b = [s.get("seed") for s in a["seeds"]], [s.get("seed") for s in b["seeds"]]
    changes = [RunSetting(qid, run, "seeds", seeds_a, seeds_b)] if seeds_a != seeds_b else []
    requests_b = {s.get("seed"): s.get("request") or {} for s in b["seeds"]}
    differing: dict[str, tuple[Any, Any]] = {}
    for seed in a["seeds"]:
        ra, rb = seed.get("request") or {}, requests_b.get(seed.get("seed"))
        for name in ([] if rb is None else sorted({*ra, *rb} - {*IGNORED_REQUEST_FIELDS, *ignore})):
            if ra.get(name) != rb.get(name):
                differing.setdefault(name, (ra.get(name), rb.get(name)))
    return changes + [RunSetting(qid, run, name, va, vb) for name, (va, vb) in differing.items()]


# ---------------------------------------------------------------- numbers

def _group_moves(qid: str, run: str, a: dict, b: dict, tolerance: float) -> list[Move]:
    present_a, present_b = _present(a), _present(b)
    moves = _count_moves(qid, run, a, b, present_a, present_b)
    if not present_a or not present_b:
        return moves  # nothing to compare numbers with; the "in cache" move says why
    for metric, rule in COMPARED_METRICS.items():
        sa, sb = (summarize(_number(s["metrics"].get(metric)) for s in side) for side in (present_a, present_b))
        if sa.n and sb.n and (sa.mean, sa.non_finite) != (sb.mean, sb.non_finite):
            comparison = _compare_seeds(metric, present_a, present_b)
            moves.append(_number_move(qid, run, metric, sa, sb, rule, tolerance, comparison))
    return moves


def _compare_seeds(metric: str, a: list[dict], b: list[dict]) -> Comparison:
    """B − A at 95 % with the metric's margin: paired when the seeds pair (analysis/pairing.py), else Welch."""
    na, nb = (_finite_by_seed(side, metric) for side in (a, b))
    is_paired = pairing.paired(((s, r) for s, (_, r) in na.items()), ((s, r) for s, (_, r) in nb.items()))
    order = sorted(na, key=repr) if is_paired else None
    vb = [nb[s][0] for s in order] if order else [v for v, _ in nb.values()]
    va = [na[s][0] for s in order] if order else [v for v, _ in na.values()]
    return compare(vb, va, margin=METRICS.get(metric).margin, paired=is_paired)


def _finite_by_seed(seeds: list[dict], metric: str) -> dict[Any, tuple[float, dict]]:
    found = {}
    for s in seeds:
        value = _number(s["metrics"].get(metric))
        if value is not None and math.isfinite(value):
            found[s.get("seed")] = (value, s.get("request") or {})
    return found


def _present(group: dict) -> list[dict]:
    return [s for s in group["seeds"] if s.get("in_cache", True) and s.get("metrics")]


def _number(value: Any) -> float | None:
    """A metric value as a number: JSON numbers, and the strings results.json writes for NaN and ±inf."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    return float(value) if value in ("NaN", "Infinity", "-Infinity") else None


def _number_move(qid: str, run: str, metric: str, a: Summary, b: Summary, rule: str, tolerance: float,
                 comparison: Comparison) -> Move:
    difference = comparison.difference
    if rule == EXACT:
        verdict = CHANGED  # a count that differs is a different model, whatever the seeds say
    elif comparison.low is not None:
        verdict = comparison.verdict
    elif rule == ACCURACY:
        verdict = BEYOND_TOLERANCE if abs(difference) > tolerance + 1e-9 else WITHIN_TOLERANCE  # 1e-9: float rounding
    else:
        verdict = NOT_JUDGED
    moved = verdict in (AHEAD, BEYOND_TOLERANCE, CHANGED)
    judged_by_noise = comparison.low is not None and rule != EXACT
    return Move(qid, run, metric, a, b, difference, comparison if judged_by_noise else None, verdict, moved)


def _count_moves(qid: str, run: str, a: dict, b: dict, present_a: list[dict], present_b: list[dict]) -> list[Move]:
    """Counts that are outcomes, not numbers: runs in the cache, how runs ended, who reached the target."""
    moves = []
    cached_a, cached_b = f"{len(present_a)} of {len(a['seeds'])}", f"{len(present_b)} of {len(b['seeds'])}"
    some_missing = len(present_a) < len(a["seeds"]) or len(present_b) < len(b["seeds"])
    if some_missing and cached_a != cached_b:  # (all cached on both sides: a seed change is a setting, not this)
        moves.append(Move(qid, run, "in cache", cached_a, cached_b, None, None, CHANGED, True))
    for what, counter in (("outcome", _outcomes), ("target reached", _reached)):
        ca, cb = counter(present_a), counter(present_b)
        if ca and cb and _shares(ca) != _shares(cb):
            moves.append(Move(qid, run, what, _count_text(ca), _count_text(cb), None, None, CHANGED, True))
    return moves


def _outcomes(seeds: list[dict]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for seed in seeds:
        name = str(seed["metrics"].get("outcome"))
        counts[name] = counts.get(name, 0) + 1
    return counts


def _reached(seeds: list[dict]) -> dict[str, int]:
    """{'reached': k, 'not reached': m}; empty when the runs have no target."""
    values = [seed["metrics"].get("epochs_to_target") for seed in seeds]
    if all(v is None for v in values):
        return {}
    reached = sum(1 for v in values if _number(v) is not None)
    return {"reached": reached, "not reached": len(values) - reached}


def _shares(counts: dict[str, int]) -> dict[str, float]:
    """Counts as fractions, so 1 of 2 and 2 of 4 agree while 0 of 3 and 1 of 3 do not."""
    total = sum(counts.values())
    return {k: v / total for k, v in counts.items() if v}


def _count_text(counts: dict[str, int]) -> str:
    total = sum(counts.values())
    return ", ".join(f"{k} {v}/{total}" for k, v in counts.items() if v)


# ---------------------------------------------------------------- rendering

METRIC_NAMES = {"final_accuracy": "final acc.", "best_accuracy": "best acc.", "final_train_loss": "train loss",
                "final_test_loss": "test loss", "epochs_trained": "epochs", "epochs_to_target": "epoch @ target",
                "params": "parameters"}
VERDICT_WORDS = {AHEAD: "ahead", EQUIVALENT: "equivalent", UNRESOLVED: "unresolved", BEYOND_TOLERANCE: "> tolerance*",
                 WITHIN_TOLERANCE: "≤ tolerance*", NOT_JUDGED: "not judged*", CHANGED: "changed"}
MOVE_HEADER = ("number", "A", "B", "B − A", "95 % CI", "verdict")


def summary_line(diff: Diff) -> str:
    if not diff.parameters and not diff.settings and not diff.moves:
        return "No differences: the same settings and the same numbers."
    moved, settings = len(diff.moved), len(diff.settings)
    return (f"{moved} number{'s' * (moved != 1)} moved (one side ahead, or beyond tolerance); "
            f"{settings} run setting{'s differ' if settings != 1 else ' differs'}.")


def footnote(diff: Diff) -> str:
    return (f"* one seed on a side: no noise estimate exists. Accuracies count as moved beyond "
            f"{diff.tolerance:g} points (--tolerance); other numbers are not judged. With 2 or more seeds on "
            f"both sides: the 95 % interval of B − A (paired t where seed s of both builds starts alike, else Welch): "
            "A or B ahead when it excludes 0, equivalent when it lies within the metric's margin, else unresolved.")


def setting_rows(diff: Diff) -> list[tuple[str, str, str, str]]:
    """(where, what, A, B) for every build parameter and run setting that differs."""
    rows = [("build", p.name, _fmt_any(p.a), _fmt_any(p.b)) for p in diff.parameters]
    for s in diff.settings:
        if s.setting == "run group":
            rows.append((s.question, s.run, "only in A" if s.a else "—", "only in B" if s.b else "—"))
        else:
            rows.append((s.question, f"{s.run}: {s.setting}", _fmt_any(s.a), _fmt_any(s.b)))
    return rows


def move_rows(diff: Diff, qid: str) -> list[tuple[str, tuple[str, ...], bool]]:
    """(run, cells under MOVE_HEADER, moved) for one question's moves, in order."""
    return [(m.run, (METRIC_NAMES.get(m.metric, m.metric), _fmt_side(m.a), _fmt_side(m.b), _fmt_difference(m),
                     _fmt_interval(m), _verdict_word(m)), m.moved)
            for m in diff.moves if m.question == qid]


def _verdict_word(move: Move) -> str:
    """'B ahead' (B is better: higher, or lower where lower is better), 'A ahead', or the verdict's word."""
    if move.verdict != AHEAD or move.difference is None:
        return VERDICT_WORDS[move.verdict]
    lower_better = move.metric in METRICS and METRICS.get(move.metric).better == "lower"
    return f"{'B' if (move.difference > 0) != lower_better else 'A'} ahead"


def _seeds_of(diff: Diff, qid: str, run: str) -> tuple[str, str]:
    """How many seeds each side's numbers of the run rest on (n=3), for the run's heading row."""
    for m in diff.moves:
        if m.question == qid and m.run == run and isinstance(m.a, Summary):
            return f"n={m.a.n}", f"n={m.b.n}"
    return "", ""


def _fmt_any(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, list):
        return "; ".join(map(str, value)) if all(isinstance(v, str) for v in value) else json.dumps(value)
    if isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value):
        return value[:12]  # a sha256: the first 12 digits tell builds apart
    return json.dumps(value) if isinstance(value, dict) else str(value)


def _fmt_side(value: Summary | str) -> str:
    if isinstance(value, str):
        return value
    return _fmt_number(value.mean) + (f" +{value.non_finite} NaN" if value.non_finite else "")


def _fmt_difference(move: Move) -> str:
    if move.difference is None:
        return ""
    return f"{move.difference:+.3g}" if abs(move.difference) < 1e4 else f"{move.difference:+,.0f}"


def _fmt_interval(move: Move) -> str:
    c = move.comparison
    return "" if c is None or c.low is None else f"{c.low:+.2g}…{c.high:+.2g}"


def _fmt_number(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return str(value)
    return f"{value:.4g}" if abs(value) < 1e4 else f"{value:,.0f}"


def terminal_report(diff: Diff) -> list[Any]:
    """Rich renderables for the terminal, readable on 80 columns: settings first, then each question's
    moves under a heading row per run (with its seed counts); moves within noise or tolerance are dimmed."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    parts: list[Any] = [Text(f"A: {diff.a_name}\nB: {diff.b_name}")]
    if diff.parameters or diff.settings:
        table = Table("where", "what", "A", "B", title="Settings that differ", title_justify="left", box=box.SIMPLE_HEAD,
                      pad_edge=False)
        for row in setting_rows(diff):
            table.add_row(*row)
        parts.append(table)
    for qid, title in diff.titles.items():
        rows = move_rows(diff, qid)
        if not rows:
            continue
        table = Table(*MOVE_HEADER, title=f"{qid}: {title} (n: seeds)", title_justify="left", box=box.SIMPLE_HEAD,
                      pad_edge=False)
        for column in table.columns[1:5]:
            column.no_wrap = True  # numbers stay whole; a long run name or a verdict wraps instead
        current = None
        for run, cells, moved in rows:
            if run != current:
                table.add_row(Text(run, style="bold"), *_seeds_of(diff, qid, run), end_section=False)
                current = run
            table.add_row("  " + cells[0], *cells[1:], style=None if moved else "dim")
        parts.append(table)
    if any(m.verdict in NOISE_FREE for m in diff.moves):
        parts.append(Text(footnote(diff), style="dim"))
    parts.append(Text(summary_line(diff), style="bold"))
    return parts


def render_html(diff: Diff) -> str:
    """A standalone page with the same sections as the terminal output."""
    e = html.escape
    body = [f"<h1>reportgen diff</h1><p>A: <code>{e(diff.a_name)}</code><br>B: <code>{e(diff.b_name)}</code></p>",
            f"<p><strong>{e(summary_line(diff))}</strong></p>"]
    if diff.parameters or diff.settings:
        body.append("<h2>Settings that differ</h2>" + _html_table(["where", "what", "A", "B"], setting_rows(diff)))
    for qid, title in diff.titles.items():
        rows = move_rows(diff, qid)
        if rows:
            table = _html_table(["run", *MOVE_HEADER], [(run, *cells) for run, cells, _ in rows], [m for *_, m in rows])
            body.append(f"<h2>{e(qid)}: {e(title)}</h2>{table}")
    if any(m.verdict in NOISE_FREE for m in diff.moves):
        body.append(f"<p class=note>{e(footnote(diff))}</p>")
    style = ("body{font-family:sans-serif;max-width:60em;margin:2em auto}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left}tr.same{color:#888}.note{color:#555}")
    return (f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>reportgen diff</title>"
            f"<style>{style}</style></head><body>{''.join(body)}</body></html>\n")


def _html_table(header: list[str], rows: list[tuple], moved: list[bool] | None = None) -> str:
    """A table; rows whose `moved` flag is False are greyed (changed, but within noise or tolerance)."""
    e = html.escape
    lines = ["<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in header) + "</tr>"]
    for row, flag in zip(rows, moved or [True] * len(rows)):
        css = "" if flag else " class=same"
        lines.append(f"<tr{css}>" + "".join(f"<td>{e(str(c))}</td>" for c in row) + "</tr>")
    return "".join(lines) + "</table>"
