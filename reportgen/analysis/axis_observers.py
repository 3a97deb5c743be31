"""The generic comparison observer: along any run field a grid varies (optimizer, batch size, data set,
model, learning rate...), each setting against the best one, with the interval of the difference.

A question written only in TOML that varies a field gets its comparison sentence without any Python.
"""
from __future__ import annotations

import math

from pydantic import Field, field_validator

from reportgen.analysis import noise
from reportgen.analysis import wording as w
from reportgen.analysis.aggregate import seed_summary
from reportgen.analysis.families import Family, all_pairs
from reportgen.analysis.metrics import METRICS, names_of_kind
from reportgen.analysis.naming import LABEL_FIELDS, field_text
from reportgen.registry import Args, unknown_name_message
from reportgen.results import RunOutcome

FIELDS = tuple(f for f in LABEL_FIELDS if f != "seed")  # a setting's seeds are its noise, not an axis


class CompareArgs(Args):
    along: str = Field(description="the run field whose values are compared, e.g. optimizer or batch_size")
    metric: str = Field("final_accuracy", description="a numeric per-run metric")

    @field_validator("along")
    @classmethod
    def _field(cls, value: str) -> str:
        if value not in FIELDS:
            raise ValueError(unknown_name_message("run field", value, list(FIELDS)))
        return value

    @field_validator("metric")
    @classmethod
    def _metric(cls, value: str) -> str:
        allowed = names_of_kind("run", numeric=True)
        if value not in allowed:
            raise ValueError(unknown_name_message("numeric per-run metric", value, allowed))
        return value


def compare_family(outcomes: list[RunOutcome], args: CompareArgs) -> Family:
    """Every pair of the field's values, per setting of the other fields."""
    pairs = [p for points in _settings(w.distinct(outcomes), args.along).values() for p in all_pairs(points, args.metric)]
    return Family.of("compare", pairs, f"every pair of {args.along} values per setting of the other fields")


def compare_along(outcomes: list[RunOutcome], args: CompareArgs) -> list[str]:
    """Each value of a run field against the best one, per setting of the other fields: ahead, equivalent or unresolved."""
    metric = METRICS.get(args.metric)
    family = compare_family(outcomes, args)
    sentences = []
    for others, points in _settings(w.distinct(outcomes), args.along).items():
        if len(points) < 2:
            continue
        ranked = sorted(points, key=lambda p: _rank(p, metric))
        title = metric.axis_label.split(" (")[0].lower()
        where = f" ({others})" if others else ""
        listing = ", ".join(f"{_name(p, args.along)} {_fmt(p, metric)}" for p in ranked)
        sentences.append(f"{title.capitalize()} by {args.along}{where}: {listing}.")
        sentences += [noise.compare_sentence(_name(ranked[0], args.along), ranked[0], _name(p, args.along), p,
                                             family, args.metric, title)
                      for p in ranked[1:]]
    return sentences or [f"No two runs differ only in {args.along}, so there is nothing to compare along it."]


def _settings(points: list[RunOutcome], along: str) -> dict[str, list[RunOutcome]]:
    """Points grouped by every other varying field, keyed by those fields in words."""
    varying = [f for f in FIELDS if f != along and len({repr(p.planned.labels.get(f)) for p in points}) > 1]
    groups: dict[str, list[RunOutcome]] = {}
    for p in points:
        key = ", ".join(_name(p, f) for f in varying)
        groups.setdefault(key, []).append(p)
    return groups


def _name(point: RunOutcome, field: str) -> str:
    return field_text(point.planned, field)


def _rank(point: RunOutcome, metric) -> tuple[int, float]:
    """Best first (highest, or lowest where lower is better); points without a finite mean last."""
    mean = seed_summary(point, metric.value).mean
    if mean is None or not math.isfinite(mean):
        return 1, 0.0
    return 0, mean if metric.better == "lower" else -mean


def _fmt(point: RunOutcome, metric) -> str:
    digits = 1 if metric.unit == "%" else 3
    return noise.fmt_spread(seed_summary(point, metric.value), lambda v: w.fmt_float(v, digits),
                            " %" if metric.unit == "%" else "")
