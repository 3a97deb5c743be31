"""The view-kind registry: what a question may show (tables, figures, image grids), each kind's
arguments as a pydantic model and the function that turns it into one item of the report.

A renderer gets a `canvas` (report.py's ViewCanvas: numbering, output folder, data splits, figure
reuse), the validated view and the question's runs, and returns the item the templates draw: from
`canvas.table(...)` or `canvas.figure(...)`, or `{"template": "_text.html.j2", "paragraphs": [...]}`.
Adding a view kind is one arguments model, one renderer and one `VIEWS.add(...)`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Callable, Optional

from pydantic import AfterValidator, Field

from reportgen.analysis.metrics import names_of_kind
from reportgen.analysis.naming import LABEL_FIELDS
from reportgen.registry import Args, Registry, unknown_name_message
from reportgen.results import PROBE_STEPS, RunOutcome

# Run fields a figure may split its panels by ("none": one panel).
FACET_FIELDS = (*LABEL_FIELDS, "none")


class ViewArgs(Args):
    kind: str
    caption: str = Field("", description="text under the table or figure")


@dataclass(frozen=True)
class ViewKind:
    name: str
    args: type[ViewArgs]
    render: Callable[[Any, Any, list[RunOutcome]], dict[str, Any]]  # (canvas, view, runs) → template item
    help: str
    uses_runs: bool = True  # drawn from run results (False: from the data set alone)


VIEWS: Registry[ViewKind] = Registry("view kind")


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


# ---------------------------------------------------------------- renderers

def render_table(canvas, view: TableArgs, runs: list[RunOutcome]) -> dict[str, Any]:
    from reportgen.analysis import tables

    return canvas.table(tables.run_table(view, runs), view.caption, per_seed=tables.per_seed_table(view, runs))


def render_epoch_table(canvas, view: EpochTableArgs, runs: list[RunOutcome]) -> dict[str, Any]:
    from reportgen.analysis import tables

    frame = tables.epoch_table(view, runs)
    return canvas.table(frame, view.caption, group_by=frame.attrs["keys"].index("epoch"))


def render_dataset_table(canvas, view: DatasetTableArgs, runs: list[RunOutcome]) -> dict[str, Any]:
    from reportgen.analysis import tables

    splits = canvas.splits(view.dataset)
    if isinstance(splits, dict):  # the data could not be read: a placeholder saying why
        return splits
    return canvas.table(tables.dataset_table(*splits), view.caption)


def render_curves(canvas, view: CurvesArgs, runs: list[RunOutcome]) -> dict[str, Any]:
    from reportgen.analysis import figures

    return canvas.figure(view, runs, figures.curves_figure)


def render_step_curves(canvas, view: StepCurvesArgs, runs: list[RunOutcome]) -> dict[str, Any]:
    from reportgen.analysis import figures

    return canvas.figure(view, runs, figures.step_curves_figure)


def render_bars(canvas, view: BarsArgs, runs: list[RunOutcome]) -> dict[str, Any]:
    from reportgen.analysis import figures

    return canvas.figure(view, runs, figures.bars_figure)


def render_image_grid(canvas, view: ImageGridArgs, runs: list[RunOutcome]) -> dict[str, Any]:
    from reportgen.analysis import figures

    splits = canvas.splits(view.dataset)
    if isinstance(splits, dict):
        return splits
    train = splits[0]
    draw = lambda v, _runs, path, _palette: figures.image_grid_figure(v, train, path)  # noqa: E731
    item = canvas.figure(view, runs, draw, inputs=train.source)
    return item | {"template": "_image_grid.html.j2"} if item["template"] == "_figure.html.j2" else item


for _kind in (
        ViewKind("table", TableArgs, render_table, "one row per run, with the columns named"),
        ViewKind("epoch_table", EpochTableArgs, render_epoch_table,
                 "per run and epoch: losses at the first and last logged batch, mean loss, test accuracy"),
        ViewKind("curves", CurvesArgs, render_curves, "per-epoch metrics as lines, a panel per facet value"),
        ViewKind("step_curves", StepCurvesArgs, render_step_curves,
                 "gradient probes or batch losses over the first training steps"),
        ViewKind("bars", BarsArgs, render_bars, "one horizontal bar per run for a per-run metric"),
        ViewKind("image_grid", ImageGridArgs, render_image_grid, "training images with their class names",
                 uses_runs=False),
        ViewKind("dataset_table", DatasetTableArgs, render_dataset_table,
                 "split sizes, image shape and images per class", uses_runs=False)):
    VIEWS.add(_kind)
