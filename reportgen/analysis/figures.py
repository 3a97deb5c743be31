"""Figures as files: per-epoch curves, per-step curves, bars and image grids, drawn with matplotlib.

Each function returns the path it wrote, or None when no run has data (no empty figures).
matplotlib is imported inside the functions so that importing this module stays cheap.
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator

from reportgen.analysis.metrics import RUN_METRICS
from reportgen.analysis.tables import describe_budget, format_value, label_text, run_label, varying_fields
from reportgen.results import RunOutcome, RunResult

if TYPE_CHECKING:
    from reportgen.data import Split
    from reportgen.spec import BarsView, CurvesView, ImageGridView, StepCurvesView

WIDTH_IN = 6.8  # A4 text width: figures are drawn at the size they are printed, so 8 pt text stays 8 pt
CHAR_IN = 0.052  # width of an average character at 7.5 pt, for sizing margins and legends
LEGEND_LINE_IN = 0.185  # height of a legend line at 7.5 pt
# tab10 then Dark2: neighbours differ, and runs of one question get neighbouring entries.
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf", "#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666")
MARKERS = ("o", "s", "^", "D", "v", "<", ">")  # 7 is prime to 18: colour and marker pairs repeat late
Y_LABELS = {
    "train_loss": "training loss\n(cross-entropy)", "test_loss": "test loss\n(cross-entropy)",
    "test_accuracy": "test accuracy (%)", "step_loss": "batch loss\n(cross-entropy)",
    "grad_mean": "mean gradient entry", "grad_abs_mean": "mean |gradient entry|", "grad_norm": "gradient L2 norm",
    "final_accuracy": "final test accuracy (%)", "best_accuracy": "best test accuracy (%)",
    "params": "trainable parameters", "seconds_per_epoch": "seconds per epoch",
}
SIGNED_SERIES = {"grad_mean"}  # may be negative: never a log scale
_RC = {
    "font.size": 8, "axes.titlesize": 8.5, "axes.labelsize": 8, "legend.fontsize": 7.5, "xtick.labelsize": 7.5,
    "ytick.labelsize": 7.5, "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True,
    "grid.alpha": 0.35, "grid.linewidth": 0.5, "lines.linewidth": 1.4, "lines.markersize": 3.5,
    "legend.frameon": False, "svg.fonttype": "none", "svg.hashsalt": "reportgen", "image.cmap": "gray",
}


@dataclass(frozen=True)
class RunStyle:
    colour: str
    marker: str


def make_palette(outcomes: Iterable[RunOutcome]) -> dict[str, RunStyle]:
    """One style per trajectory (cache key), in order of first appearance: the same run looks the same everywhere."""
    styles: dict[str, RunStyle] = {}
    for outcome in outcomes:
        if outcome.planned.key not in styles:
            i = len(styles)
            styles[outcome.planned.key] = RunStyle(PALETTE[i % len(PALETTE)], MARKERS[i % len(MARKERS)])
    return styles


# ---------------------------------------------------------------- curves

def curves_figure(view: CurvesView, outcomes: list[RunOutcome], path: Path,
                  palette: dict[str, RunStyle] | None = None) -> Path | None:
    """A row of panels per metric, a panel per facet value; x = epoch."""
    runs = [o for o in outcomes if o.result is not None and o.result.epochs]
    if not runs:
        return None
    palette = palette or make_palette(outcomes)
    losses = [getattr(e, m) for o in runs for e in o.result.epochs for m in view.metrics if m != "test_accuracy"]
    log_y = _use_log(view.log_y, losses)
    series = {m: (lambda r, m=m: ([e.epoch for e in r.epochs], [getattr(e, m) for e in r.epochs]))
              for m in view.metrics}
    _draw_lines(path, series, facet_groups(runs, view.facet), palette, "epoch",
                lambda m: log_y and m != "test_accuracy", mark_stop=True)
    return path


def step_curves_figure(view: StepCurvesView, outcomes: list[RunOutcome], path: Path,
                       palette: dict[str, RunStyle] | None = None) -> Path | None:
    """A row of panels per probe series over the first `view.steps` training steps; x = step."""
    runs = [o for o in outcomes if o.result is not None and any(o.result.probes.get(s) for s in view.series)]
    if not runs:
        return None
    palette = palette or make_palette(outcomes)
    series = {s: (lambda r, s=s: _probe(r, s, view.steps)) for s in view.series}
    log_rows = {s: s not in SIGNED_SERIES and _use_log(None, [v for o in runs for v in _probe(o.result, s, view.steps)[1]])
                for s in view.series}
    _draw_lines(path, series, facet_groups(runs, view.facet), palette, "training step", log_rows.get,
                mark_stop=False)
    return path


def _probe(result: RunResult, series: str, steps: int) -> tuple[list[int], list[float]]:
    values = list(result.probes.get(series, []))[:steps]
    return list(range(1, len(values) + 1)), values


def facet_groups(runs: list[RunOutcome], facet: str) -> list[tuple[str, list[RunOutcome]]]:
    """(panel title, runs) per value of the facet field; one panel when the facet would leave every panel one run."""
    if facet == "none" or all(facet not in o.planned.labels for o in runs):
        return [("", runs)]
    groups: dict[str, list[RunOutcome]] = {}
    for outcome in runs:
        groups.setdefault(repr(outcome.planned.labels.get(facet)), []).append(outcome)
    if len(groups) > 1 and all(len(members) == 1 for members in groups.values()):
        return [("", runs)]  # one line per panel compares nothing; one shared panel compares them all
    return [(label_text(members[0].planned, facet), members) for members in groups.values()]


def _draw_lines(path, series, groups, palette, x_label: str, log_row, mark_stop: bool) -> None:
    """Panels: a row per series (per block of facets), a column per facet; a legend under each column."""
    names = [_legend_names(members) for _, members in groups]
    ncols = min(len(groups), 3)
    blocks = math.ceil(len(groups) / ncols)
    rows = len(series) * blocks
    legend = max(math.ceil(len(n) / _legend_columns(n, ncols)) for n in names) * LEGEND_LINE_IN + 0.1
    titled = any(title for title, _ in groups)
    gap = 0.5 + (legend + 0.25 if blocks > 1 else 0)  # x label and ticks (+ a legend and titles between blocks)
    margins = Margins(left=0.8, right=0.15, top=0.3 if titled else 0.12, bottom=0.5 + legend, hgap=gap, wgap=0.2)
    with _figure(path, [1.75] * rows, ncols, margins) as (fig, axes):
        for g, (title, members) in enumerate(groups):
            for m, (key, get) in enumerate(series.items()):
                ax = axes[g // ncols * len(series) + m][g % ncols]
                for outcome, name in zip(members, names[g]):
                    _plot_run(ax, outcome, get, palette[outcome.planned.key], name, mark_stop)
                _style_axes(ax, key, x_label, log_row(key), title if m == 0 else "", g % ncols == 0)
            _legend_below(fig, ax, _legend_columns(names[g], ncols))
        for ax in axes.flat[len(groups) * len(series):] if blocks * ncols > len(groups) else []:
            ax.set_visible(False)


def _plot_run(ax, outcome: RunOutcome, get, style: RunStyle, name: str, mark_stop: bool) -> None:
    import numpy as np

    x, y = get(outcome.result)
    y = np.asarray(y, dtype=float)
    finite = np.isfinite(y)
    ax.plot(x, np.where(finite, y, np.nan), color=style.colour, marker=style.marker,
            markevery=max(1, len(x) // 15), label=name)
    bad = _first_bad(x, finite, outcome.result if mark_stop else None)
    if bad is not None:  # an x on the top edge where the run diverged: the line cannot go there
        ax.plot([bad], [0.97], marker="x", color=style.colour, markersize=7, markeredgewidth=1.8,
                transform=ax.get_xaxis_transform(), clip_on=False, linestyle="none")


def _first_bad(x: list[int], finite, result: RunResult | None) -> int | None:
    """Where to mark a divergence: the first non-finite point, or the last point of a run stopped as diverged."""
    if not finite.all():
        return x[int((~finite).argmax())]
    return x[-1] if result is not None and result.stop_reason == "diverged" and x else None


def _legend_names(members: list[RunOutcome]) -> list[str]:
    fields = varying_fields(o.planned for o in members)
    budgets_vary = len({o.planned.budget for o in members}) > 1
    names = []
    for o in members:
        name = run_label(o.planned, fields, budgets_vary)
        epoch = _divergence_epoch(o.result)
        names.append(f"{name} (× diverged, epoch {epoch})" if epoch else name)
    return names


def _divergence_epoch(result: RunResult) -> int | None:
    for e in result.epochs:
        if not (math.isfinite(e.train_loss) and math.isfinite(e.test_loss)):
            return e.epoch
    return result.epochs[-1].epoch if result.stop_reason == "diverged" and result.epochs else None


def _style_axes(ax, key: str, x_label: str, log: bool, title: str, first_column: bool) -> None:
    from matplotlib.ticker import MaxNLocator

    if log:
        ax.set_yscale("log")
    if key in SIGNED_SERIES:
        ax.axhline(0, color="#444444", linewidth=0.6)
    ax.set_xlabel(x_label)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if first_column:
        ax.set_ylabel(Y_LABELS.get(key, key))
    if title:
        ax.set_title(title)


def _use_log(flag: bool | None, values: Iterable[float]) -> bool:
    """The view's choice, else log when the positive finite values span more than a decade."""
    if flag is not None:
        return flag
    positive = [v for v in values if math.isfinite(v) and v > 0]
    return bool(positive) and max(positive) > 10 * min(positive)


def _legend_columns(names: list[str], panels: int) -> int:
    width = max(len(n) for n in names) * CHAR_IN + 0.45  # inches per entry, with its line sample
    return max(1, min(len(names), int(WIDTH_IN / panels // width)))


def _legend_below(fig, ax, ncol: int) -> None:
    from matplotlib.transforms import offset_copy

    ax.legend(loc="upper center", bbox_to_anchor=(0.5, 0), ncol=ncol, handlelength=1.8, columnspacing=1.2,
              borderaxespad=0, bbox_transform=offset_copy(ax.transAxes, fig=fig, y=-30, units="points"))


# ---------------------------------------------------------------- bars

def bars_figure(view: BarsView, outcomes: list[RunOutcome], path: Path,
                palette: dict[str, RunStyle] | None = None) -> Path | None:
    """Horizontal bars, one per run, labelled with the value; a panel per stop rule when they differ."""
    metric = RUN_METRICS[view.metric]
    values = [_finite_or_none(metric(o.result)) if o.result else None for o in outcomes]
    if all(v is None for v in values):
        return None
    palette = palette or make_palette(outcomes)
    panels: dict[Any, list[int]] = {}
    for i, outcome in enumerate(outcomes):
        panels.setdefault(outcome.planned.budget, []).append(i)
    fields = varying_fields(o.planned for o in outcomes)
    longest = max(len(run_label(o.planned, fields)) for o in outcomes)
    titled = len(panels) > 1
    margins = Margins(left=min(longest * CHAR_IN + 0.2, 3.2), right=0.15, top=0.3 if titled else 0.1, bottom=0.45,
                      hgap=0.5 if titled else 0.2, wgap=0)
    with _figure(path, [len(p) * 0.24 + 0.1 for p in panels.values()], 1, margins, sharey=False) as (fig, axes):
        for ax, (budget, members) in zip(axes[:, 0], panels.items()):
            _draw_bars(ax, [outcomes[i] for i in members], [values[i] for i in members], fields, palette, view.metric)
            if len(panels) > 1:
                ax.set_title(f"Runs trained {describe_budget(budget)}", loc="left")
        axes[-1][0].set_xlabel(Y_LABELS.get(view.metric, view.metric))
    return path


def _draw_bars(ax, members, values, fields, palette, metric: str) -> None:
    from matplotlib.ticker import FuncFormatter

    y = list(range(len(members)))
    heights = [v if v is not None else 0 for v in values]
    colours = [palette[o.planned.key].colour for o in members]
    bars = ax.barh(y, heights, color=colours, height=0.7)
    texts = [format_value(metric, v) if v is not None else ("not run" if o.result is None else "—")
             for o, v in zip(members, values)]
    ax.bar_label(bars, labels=texts, padding=3, fontsize=7)
    ax.set_yticks(y, [run_label(o.planned, fields) for o in members])
    ax.invert_yaxis()  # first run on top, as in the tables
    ax.set_xlim(0, max(heights) * 1.12 or 1)
    ax.grid(axis="y", visible=False)
    if metric == "params":
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))


def _finite_or_none(value: Any) -> float | None:
    return value if isinstance(value, (int, float)) and math.isfinite(value) else None


# ---------------------------------------------------------------- images

def image_grid_figure(view: ImageGridView, split: Split, path: Path) -> Path | None:
    """The first `per_class` images of each chosen class, titled with the class name."""
    classes = list(range(len(split.classes))) if view.classes is None else view.classes
    for c in classes:
        if not 0 <= c < len(split.classes):
            raise ValueError(f"image_grid class {c!r} is not a label of the data set (0 to {len(split.classes) - 1})")
    picks = [(c, int(i)) for c in classes for i in (split.labels == c).nonzero().flatten()[:view.per_class]]
    if not picks:
        return None
    ncols = min(len(picks), 5) if view.per_class == 1 else view.per_class
    nrows = math.ceil(len(picks) / ncols)
    margins = Margins(left=0.05, right=0.05, top=0.35, bottom=0.05, hgap=0.4, wgap=0.2)
    with _figure(path, [1.05] * nrows, ncols, margins, width=ncols * 1.25 + 0.1, sharey=False) as (fig, axes):
        for ax in axes.flat:
            ax.set_axis_off()
        for ax, (c, i) in zip(axes.flat, picks):
            ax.imshow(split.images[i].numpy(), vmin=0, vmax=255, interpolation="none")  # (28, 28) uint8
            ax.set_title(f"{split.classes[c]}\nlabel {c} · image {i}", fontsize=7.5)
    return path


# ---------------------------------------------------------------- files

@dataclass(frozen=True)
class Margins:
    """Space around and between the panels, in inches (fixed layout: no layout engine, which doubles the cost)."""

    left: float
    right: float
    top: float
    bottom: float
    hgap: float
    wgap: float


@contextmanager
def _figure(path: Path, row_heights: list[float], ncols: int, margins: Margins, width: float = WIDTH_IN,
            sharey: Any = "row") -> Iterator[tuple[Any, Any]]:
    """A Figure (no pyplot state) with rows of panels of the given heights; saved to `path` on exit."""
    import matplotlib
    from matplotlib.figure import Figure

    m = margins
    height = m.top + m.bottom + sum(row_heights) + m.hgap * (len(row_heights) - 1)
    panel_width = (width - m.left - m.right - m.wgap * (ncols - 1)) / ncols
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(width, height))
        axes = fig.subplots(len(row_heights), ncols, squeeze=False, sharey=sharey, height_ratios=row_heights)
        fig.subplots_adjust(left=m.left / width, right=1 - m.right / width, top=1 - m.top / height,
                            bottom=m.bottom / height, wspace=m.wgap / panel_width,
                            hspace=m.hgap / (sum(row_heights) / len(row_heights)))
        yield fig, axes
        metadata = {"Date": None} if Path(path).suffix == ".svg" else None  # reproducible SVG files
        fig.savefig(path, metadata=metadata, dpi=200)
