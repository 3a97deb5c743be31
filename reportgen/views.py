"""The view-kind registry: what a question may show (tables, figures, image grids), each kind's
arguments as a pydantic model (view_args.py) and the function that turns it into one item of the report.

A renderer gets a `canvas` (report.py's ViewCanvas: numbering, output folder, data splits, figure
reuse), the validated view and the question's runs, and returns the item the templates draw: from
`canvas.table(...)` or `canvas.figure(...)`, or `{"template": "_text.html.j2", "paragraphs": [...]}`.
Adding a view kind is one arguments model, one renderer and one `VIEWS.add(...)`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from reportgen.analysis import figures, tables
from reportgen.registry import Registry
from reportgen.results import RunOutcome
# The argument models live below this registry and the drawing modules; re-exported for `from reportgen.views import`.
from reportgen.view_args import (BarsArgs, CurvesArgs, DatasetTableArgs, EpochTableArgs,  # noqa: F401
                                 ImageGridArgs, StepCurvesArgs, TableArgs, ViewArgs)


@dataclass(frozen=True)
class ViewKind:
    name: str
    args: type[ViewArgs]
    render: Callable[[Any, Any, list[RunOutcome]], dict[str, Any]]  # (canvas, view, runs) → template item
    help: str
    uses_runs: bool = True  # drawn from run results (False: from the data set alone)


VIEWS: Registry[ViewKind] = Registry("view kind")


# ---------------------------------------------------------------- renderers

def render_table(canvas, view: TableArgs, runs: list[RunOutcome]) -> dict[str, Any]:
    return canvas.table(tables.run_table(view, runs), view.caption, per_seed=tables.per_seed_table(view, runs))


def render_epoch_table(canvas, view: EpochTableArgs, runs: list[RunOutcome]) -> dict[str, Any]:
    frame = tables.epoch_table(view, runs)
    return canvas.table(frame, view.caption, group_by=frame.attrs["keys"].index("epoch"))


def render_dataset_table(canvas, view: DatasetTableArgs, runs: list[RunOutcome]) -> dict[str, Any]:
    splits = canvas.splits(view.dataset)
    if isinstance(splits, dict):  # the data could not be read: a placeholder saying why
        return splits
    return canvas.table(tables.dataset_table(*splits), view.caption)


def render_curves(canvas, view: CurvesArgs, runs: list[RunOutcome]) -> dict[str, Any]:
    return canvas.figure(view, runs, figures.curves_figure)


def render_step_curves(canvas, view: StepCurvesArgs, runs: list[RunOutcome]) -> dict[str, Any]:
    return canvas.figure(view, runs, figures.step_curves_figure)


def render_bars(canvas, view: BarsArgs, runs: list[RunOutcome]) -> dict[str, Any]:
    return canvas.figure(view, runs, figures.bars_figure)


def render_image_grid(canvas, view: ImageGridArgs, runs: list[RunOutcome]) -> dict[str, Any]:
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
