"""The view kinds' arguments, as pydantic models: what a question's `views = [{ kind = ..., ... }]` may say.

Below both the view registry (views.py) and the modules that draw views (analysis/tables.py, figures.py), so that
those read their arguments' types without importing the registry that calls them.
"""
from __future__ import annotations

from typing import Annotated, Callable, Optional

from pydantic import AfterValidator, Field

from reportgen.analysis.metrics import names_of_kind
from reportgen.analysis.naming import LABEL_FIELDS
from reportgen.registry import Args, unknown_name_message
from reportgen.results import PROBE_STEPS

# Run fields a figure may split its panels by ("none": one panel).
FACET_FIELDS = (*LABEL_FIELDS, "none")


class ViewArgs(Args):
    kind: str
    caption: str = Field("", description="text under the table or figure")


def _name_in(allowed: Callable[[], list[str]], concept: str) -> AfterValidator:
    """Refuse a name outside `allowed()` (read at validation time, so later registrations count)."""
    def check(value: str) -> str:
        if value not in allowed():
            raise ValueError(unknown_name_message(concept, value, allowed()))
        return value
    return AfterValidator(check)


Column = Annotated[str, _name_in(lambda: names_of_kind("label", "run"), "column")]
EpochMetric = Annotated[str, _name_in(lambda: names_of_kind("epoch"), "per-epoch metric")]
StepSeries = Annotated[str, _name_in(lambda: names_of_kind("step"), "per-step series")]
BarMetric = Annotated[str, _name_in(lambda: names_of_kind("run", numeric=True), "numeric per-run metric")]
DatasetName = str  # a registered data set or one of the spec's [datasets]: checked by spec.Spec
Facet = Annotated[str, _name_in(lambda: list(FACET_FIELDS), "facet")]


# ---------------------------------------------------------------- argument models

class TableArgs(ViewArgs):
    columns: list[Column] = Field(min_length=1, description="run fields and per-run metrics, one column each")


class EpochTableArgs(ViewArgs):
    log_every: int = Field(100, gt=0, description="batches between logged training losses")


class CurvesArgs(ViewArgs):
    metrics: list[EpochMetric] = Field(min_length=1, description="per-epoch metrics, one row of panels each")
    facet: Facet = Field("model", description="one panel per value of this run field ('none': one panel)")
    log_y: Optional[bool] = Field(None, description="log scale; default: when losses span more than a decade")


class StepCurvesArgs(ViewArgs):
    series: list[StepSeries] = Field(min_length=1, description="per-step probes, one row of panels each")
    steps: int = Field(PROBE_STEPS, gt=0, le=PROBE_STEPS,
                       description=f"first training steps to draw (probes are recorded for {PROBE_STEPS})")
    facet: Facet = Field("model", description="one panel per value of this run field ('none': one panel)")


class BarsArgs(ViewArgs):
    metric: BarMetric = Field(description="a numeric per-run metric, one bar per run")


class ImageGridArgs(ViewArgs):
    dataset: DatasetName = Field(description="the data set to draw training images from")
    per_class: int = Field(1, gt=0, le=10, description="images per class")
    classes: Optional[list[int]] = Field(None, description="class indices to show (default: all)")


class DatasetTableArgs(ViewArgs):
    dataset: DatasetName = Field(description="the data set to describe")
