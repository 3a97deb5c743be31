"""Figures as files: per-epoch curves, per-step curves, bars and image grids, drawn with matplotlib.

Each function returns the path it wrote, or None when no run has data (no empty figures).
matplotlib is imported inside the functions so that importing this module stays cheap.
"""
from __future__ import annotations

import math
import textwrap
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator

from reportgen.analysis.aggregate import seed_summary
from reportgen.analysis.metrics import axis_label, metric
from reportgen.analysis.naming import LABEL_FIELDS, describe_budget, field_text, run_name, varying_fields
from reportgen.analysis.tables import format_value
from reportgen.results import RunOutcome, RunResult

from reportgen.view_args import BarsArgs, CurvesArgs, ImageGridArgs, StepCurvesArgs

if TYPE_CHECKING:
    from reportgen.data import Split

WIDTH_IN = 6.8  # A4 text width: figures are drawn at the size they are printed, so 8 pt text stays 8 pt
CHAR_IN = 0.062  # width of an average character at 7.5 pt, for sizing margins and legends
TITLE_CHAR_IN = 0.072  # the same at 8.5 pt (panel titles)
LEGEND_LINE_IN = 0.185  # height of a legend line at 7.5 pt
PANEL_IN = 1.75  # height of one panel of curves
X_LABEL_IN = 0.5  # room under a panel for its tick labels and x label
BAR_LABEL_CHARS = 48  # longer bar labels wrap onto a second line
# tab10 then Dark2: neighbours differ, and runs of one question get neighbouring entries.
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf", "#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666")
MARKERS = ("o", "s", "^", "D", "v", "<", ">")  # 7 is prime to 18: colour and marker pairs repeat late
SEED_NOTES = {  # what a figure drawn over several seeds shows, said under it
    "curves": "Lines are the means over {n} seeds; the shaded band spans the seeds' minimum to maximum.",
    "step_curves": "Lines are the means over {n} seeds; the shaded band spans the seeds' minimum to maximum.",
    "bars": "Bars are the means over {n} seeds; whiskers show ±1 standard deviation.",
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


@dataclass
class Palette:
    """Styles by value: each value of a run field (lr 0.1, a model) keeps one colour and one marker in
    every panel and every figure of a report, numbered per field in order of first appearance."""

    indices: dict[tuple[str, str], int] = field(default_factory=dict)  # (run field, repr(value)) → index

    def index(self, name: str, value: Any) -> int:
        key = (name, repr(value))
        if key not in self.indices:
            self.indices[key] = sum(1 for known, _ in self.indices if known == name)
        return self.indices[key]

    def style(self, outcome: RunOutcome, fields: list[str]) -> RunStyle:
        """The colour of the first field that tells the figure's lines apart; the marker of the second, if any."""
        labels = outcome.planned.labels
        fields = fields or ["model"]
        colour = self.index(fields[0], labels.get(fields[0]))
        marker = self.index(fields[1], labels.get(fields[1])) if len(fields) > 1 else colour
        return RunStyle(PALETTE[colour % len(PALETTE)], MARKERS[marker % len(MARKERS)])


def make_palette(outcomes: Iterable[RunOutcome]) -> Palette:
    """A palette numbering every run field's values in the order the report shows them."""
    palette = Palette()
    for outcome in outcomes:
        for name in LABEL_FIELDS:
            palette.index(name, outcome.planned.labels.get(name))
    return palette


# ---------------------------------------------------------------- curves

def curves_figure(view: CurvesArgs, outcomes: list[RunOutcome], path: Path,
                  palette: Palette | None = None) -> Path | None:
    """A row of panels per metric, a panel per facet value; x = epoch."""
    runs = [o for o in outcomes if o.result is not None and o.result.epochs]
    if not runs:
        return None
    palette = palette or make_palette(outcomes)  # a figure drawn alone numbers its own values
    losses = [getattr(e, m) for o in runs for e in o.result.epochs for m in view.metrics if m != "test_accuracy"]
    log_y = _use_log(view.log_y, losses)
    series = {m: (lambda r, m=m: ([e.epoch for e in r.epochs], [getattr(e, m) for e in r.epochs]))
              for m in view.metrics}
    _draw_lines(path, series, facet_groups(runs, view.facet), palette, "epoch",
                lambda m: log_y and m != "test_accuracy", mark_stop=True, fields=_line_fields(runs, view.facet))
    return path


def step_curves_figure(view: StepCurvesArgs, outcomes: list[RunOutcome], path: Path,
                       palette: Palette | None = None) -> Path | None:
    """A row of panels per probe series over the first `view.steps` training steps; x = step."""
    runs = [o for o in outcomes if o.result is not None and any(o.result.probes.get(s) for s in view.series)]
    if not runs:
        return None
    palette = palette or make_palette(outcomes)  # a figure drawn alone numbers its own values
    series = {s: (lambda r, s=s: _probe(r, s, view.steps)) for s in view.series}
    values = {s: [v for o in runs for v in _probe(o.result, s, view.steps)[1]] for s in view.series}
    log_rows = {s: s not in SIGNED_SERIES and _use_log(None, values[s]) for s in view.series}
    _draw_lines(path, series, facet_groups(runs, view.facet), palette, "training step", log_rows.get,
                mark_stop=False, fields=_line_fields(runs, view.facet))
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
    return [(field_text(members[0].planned, facet), members) for members in groups.values()]


def _line_fields(runs: list[RunOutcome], facet: str) -> list[str]:
    """The run fields that tell a figure's lines apart (the facet has its own panels)."""
    return [f for f in varying_fields(o.planned for o in runs) if f != facet] or ["model"]


def _draw_lines(path, series, groups, palette, x_label: str, log_row, mark_stop: bool, fields: list[str]) -> None:
    """Panels: a row per series, a column per facet (3 at most, then a further block of rows); one legend below all."""
    ncols = min(len(groups), 3)
    wrap = int((WIDTH_IN - 0.5) / CHAR_IN)  # the legend spans the figure's width
    names = [[textwrap.fill(n, wrap) for n in _legend_names(members)] for _, members in groups]
    titles = [textwrap.fill(title, int((WIDTH_IN / ncols - 0.3) / TITLE_CHAR_IN)) for title, _ in groups]
    entries = _legend_entries(groups, names, palette, fields)
    labels = [label for label, _, _ in entries]
    columns = _legend_columns(labels, 1)
    legend = _legend_lines(labels, columns) * LEGEND_LINE_IN + 0.1
    title_height = max(t.count("\n") + 1 for t in titles) * 0.17 if any(titles) else 0
    heights, spacers = _row_heights(len(series), math.ceil(len(groups) / ncols), X_LABEL_IN + title_height + 0.1)
    margins = Margins(left=0.8, right=0.15, top=0.12 + title_height, bottom=X_LABEL_IN + legend, hgap=X_LABEL_IN,
                      wgap=0.2)
    with _figure(path, heights, ncols, margins) as (fig, axes):
        unfilled = axes[len(heights) - len(series):, len(groups) - (len(spacers) * ncols):]  # the last block's
        for ax in [*axes[spacers].flat, *unfilled.flat]:
            ax.set_visible(False)
        for g, (title, (_, members)) in enumerate(zip(titles, groups)):
            for m, (key, get) in enumerate(series.items()):
                ax = axes[g // ncols * (len(series) + 1) + m][g % ncols]
                for outcome, name in zip(members, names[g]):
                    _plot_run(ax, outcome, get, palette.style(outcome, fields), name, mark_stop)
                if key == "test_accuracy":
                    _mark_targets(ax, members)
                _style_axes(ax, key, x_label, log_row(key), title if m == 0 else "", g % ncols == 0)
        _figure_legend(fig, axes, entries, columns)


def _mark_targets(ax, members: list[RunOutcome]) -> None:
    """A dashed line at each accuracy target the runs trained towards (Q1.3's 85 %)."""
    for target in sorted({o.result.budget.until_accuracy for o in members if o.result and o.result.budget.until_accuracy}):
        ax.axhline(target, color="#555555", linestyle="--", linewidth=0.8)
        ax.annotate(f"target {target:g} %", (1, target), xycoords=("axes fraction", "data"), xytext=(-2, 2),
                    textcoords="offset points", ha="right", va="bottom", fontsize=6.5, color="#555555")


def _row_heights(panel_rows: int, blocks: int, between: float) -> tuple[list[float], list[int]]:
    """Heights of the rows of panels, with a spacer row between blocks (room for x labels and the next titles)."""
    heights, spacers = [], []
    for b in range(blocks):
        if b:
            spacers.append(len(heights))
            heights.append(max(between - X_LABEL_IN, 0.01))
        heights += [PANEL_IN] * panel_rows
    return heights, spacers


def _plot_run(ax, outcome: RunOutcome, get, style: RunStyle, name: str, mark_stop: bool) -> None:
    import numpy as np

    x, y = get(outcome.result)
    y = np.asarray(y, dtype=float)
    finite = np.isfinite(y)
    _draw_band(ax, outcome, get, style)
    ax.plot(x, np.where(finite, y, np.nan), color=style.colour, marker=style.marker,
            markevery=max(1, math.ceil(len(x) / 8)), label=name)
    bad = _first_bad(x, finite, outcome.result if mark_stop else None)
    if bad is not None:  # an x on the top edge where the run diverged: the line cannot go there
        ax.plot([bad], [0.97], marker="x", color=style.colour, markersize=7, markeredgewidth=1.8,
                transform=ax.get_xaxis_transform(), clip_on=False, linestyle="none")


def _draw_band(ax, outcome: RunOutcome, get, style: RunStyle) -> None:
    """The seeds' minimum-to-maximum band behind a mean line (nothing with one seed)."""
    import numpy as np

    seeds = [get(r) for r in getattr(outcome, "measured", [])]
    if len(seeds) < 2:
        return
    length = max(len(xs) for xs, _ in seeds)
    rows = np.full((len(seeds), length), np.nan)
    for i, (_, ys) in enumerate(seeds):
        rows[i, :len(ys)] = np.where(np.isfinite(ys), ys, np.nan)
    x = next(xs for xs, _ in seeds if len(xs) == length)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an epoch no finite seed reached
        low, high = np.nanmin(rows, axis=0), np.nanmax(rows, axis=0)
    ax.fill_between(x, low, high, color=style.colour, alpha=0.15, linewidth=0)


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
        name = run_name(o.planned, fields, budgets_vary)
        epoch = _divergence_epoch(o.result)
        names.append(f"{name} (× diverged, epoch {epoch})" if epoch else name)
    return names


def _divergence_epoch(result: RunResult) -> int | None:
    for e in result.epochs:
        if not (math.isfinite(e.train_loss) and math.isfinite(e.test_loss)):
            return e.epoch
    return result.epochs[-1].epoch if result.stop_reason == "diverged" and result.epochs else None


def _style_axes(ax, key: str, x_label: str, log: bool, title: str, first_column: bool) -> None:
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    if log:  # plain numbers (0.1, 2) instead of 10^k: easier to read, and no mathtext to lay out
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: _minor_log_label(ax, v)))
    if key in SIGNED_SERIES:
        ax.axhline(0, color="#444444", linewidth=0.6)
    ax.set_xlabel(x_label)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=6, integer=True, steps=[1, 2, 2.5, 5, 10]))
    if not log:
        ax.yaxis.set_major_locator(MaxNLocator(nbins=5))
    if first_column:
        ax.set_ylabel(axis_label(key))
    if title:
        ax.set_title(title)


def _minor_log_label(ax, value: float) -> str:
    """Label the 2s and 5s of each decade, but only on axes spanning less than two decades (else too crowded)."""
    low, high = ax.get_ylim()
    if value <= 0 or low <= 0 or high / low > 100:
        return ""
    mantissa = round(value / 10 ** math.floor(math.log10(value)), 6)
    return f"{value:g}" if mantissa in (2, 5) else ""


def _use_log(flag: bool | None, values: Iterable[float]) -> bool:
    """The view's choice, else log when the positive finite values span more than a decade."""
    if flag is not None:
        return flag
    positive = [v for v in values if math.isfinite(v) and v > 0]
    return bool(positive) and max(positive) > 10 * min(positive)


def _legend_columns(names: list[str], panels: int) -> int:
    width = max(len(line) for n in names for line in n.split("\n")) * CHAR_IN + 0.45  # inches per entry
    return max(1, min(len(names), int(WIDTH_IN / panels // width)))


def _legend_lines(names: list[str], columns: int) -> int:
    """Text lines of a legend with `columns` columns, filled column by column as matplotlib does."""
    heights = [n.count("\n") + 1 for n in names]
    per_column = math.ceil(len(names) / columns)
    return max(sum(heights[i:i + per_column]) for i in range(0, len(names), per_column))


def _legend_entries(groups, names: list[list[str]], palette: Palette, fields: list[str]) -> list[tuple[str, str, str]]:
    """The figure's legend entries (label, colour, marker): each once, in order of first appearance over the panels.

    A value keeps its colour in every panel (the palette), so one legend serves them all.
    """
    entries: dict[tuple[str, str, str], None] = {}
    for (_, members), group_names in zip(groups, names):
        for outcome, name in zip(members, group_names):
            style = palette.style(outcome, fields)
            entries.setdefault((name, style.colour, style.marker), None)
    return list(entries)


def _figure_legend(fig, axes, entries: list[tuple[str, str, str]], ncol: int) -> None:
    """One legend for the whole figure, centred below the panels."""
    from matplotlib.colors import to_hex

    handles: dict[tuple[str, str, str], Any] = {}
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault((label, to_hex(handle.get_color()), handle.get_marker()), handle)
    shown = [e for e in entries if (e[0], to_hex(e[1]), e[2]) in handles]
    fig.legend([handles[e[0], to_hex(e[1]), e[2]] for e in shown], [e[0] for e in shown], loc="lower center",
               bbox_to_anchor=(0.5, 0.04 / fig.get_figheight()), bbox_transform=fig.transFigure, ncol=ncol, handlelength=1.8,
               columnspacing=1.2, borderaxespad=0)


# ---------------------------------------------------------------- bars

def bars_figure(view: BarsArgs, outcomes: list[RunOutcome], path: Path,
                palette: Palette | None = None) -> Path | None:
    """Horizontal bars, one per run, labelled with the value; a panel per stop rule when they differ."""
    metric_value = metric(view.metric).value
    summaries = [seed_summary(o, metric_value) for o in outcomes]
    values = [_finite_or_none(s.mean) for s in summaries]
    errors = [s.std or 0.0 for s in summaries]
    if all(v is None for v in values):
        return None
    palette = palette or make_palette(outcomes)  # a figure drawn alone numbers its own values
    panels: dict[Any, list[int]] = {}
    for i, outcome in enumerate(outcomes):
        panels.setdefault(outcome.planned.budget, []).append(i)
    fields = varying_fields(o.planned for o in outcomes)
    longest = min(max(len(run_name(o.planned, fields)) for o in outcomes), BAR_LABEL_CHARS)
    titled = len(panels) > 1
    margins = Margins(left=longest * CHAR_IN + 0.2, right=0.15, top=0.3 if titled else 0.1, bottom=0.45,
                      hgap=0.5 if titled else 0.2, wgap=0)
    with _figure(path, [len(p) * 0.24 + 0.1 for p in panels.values()], 1, margins, sharey=False) as (fig, axes):
        for ax, (budget, members) in zip(axes[:, 0], panels.items()):
            _draw_bars(ax, [outcomes[i] for i in members], [values[i] for i in members], fields, palette, view.metric,
                       [errors[i] for i in members])
            if len(panels) > 1:
                ax.set_title(f"Runs trained {describe_budget(budget)}", loc="left")
        axes[-1][0].set_xlabel(axis_label(view.metric))
    return path


def _draw_bars(ax, members, values, fields, palette, metric: str, errors: list[float]) -> None:
    from matplotlib.ticker import FuncFormatter

    y = list(range(len(members)))
    heights = [v if v is not None else 0 for v in values]
    colours = [palette.style(o, fields).colour for o in members]
    whiskers = {"xerr": errors, "error_kw": {"elinewidth": 0.8, "capsize": 2}} if any(errors) else {}
    bars = ax.barh(y, heights, color=colours, height=0.7, **whiskers)
    texts = [(format_value(metric, v) + (f" ± {format_value(metric, e)}" if e else "")) if v is not None
             else ("not run" if o.result is None else "—") for o, v, e in zip(members, values, errors)]
    ax.bar_label(bars, labels=texts, padding=3, fontsize=7)
    ax.set_yticks(y, [textwrap.fill(run_name(o.planned, fields), BAR_LABEL_CHARS) for o in members])
    ax.invert_yaxis()  # first run on top, as in the tables
    ax.set_xlim(0, max(h + e for h, e in zip(heights, errors)) * 1.18 or 1)
    ax.grid(axis="y", visible=False)
    if metric == "params":
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))


def _finite_or_none(value: Any) -> float | None:
    return value if isinstance(value, (int, float)) and math.isfinite(value) else None


# ---------------------------------------------------------------- images

def image_grid_figure(view: ImageGridArgs, split: Split, path: Path) -> Path | None:
    """The first `per_class` images of each chosen class, titled with the class name.

    The images are pasted into one white-gapped mosaic on a single axes: ten axes would cost ten times as much.
    """
    import numpy as np

    classes = list(range(len(split.classes))) if view.classes is None else view.classes
    for c in classes:
        if not 0 <= c < len(split.classes):
            raise ValueError(f"image_grid class {c!r} is not a label of the data set (0 to {len(split.classes) - 1})")
    picks = [(c, int(i)) for c in classes for i in (split.labels == c).nonzero().flatten()[:view.per_class]]
    if not picks:
        return None
    ncols = min(len(picks), 5) if view.per_class == 1 else view.per_class
    nrows = math.ceil(len(picks) / ncols)
    side = split.images.shape[-1]  # pixels; one image is drawn 1 inch wide
    gap_x, gap_y = side // 3, side // 2  # white space between images, and above each for its title
    colour = split.images.dim() == 4  # (N, C, H, W); one channel comes as (N, H, W)
    mosaic = np.full((nrows * (side + gap_y), ncols * (side + gap_x) - gap_x, *((3,) if colour else ())), 255, dtype=np.uint8)
    corners = []
    for k, (c, i) in enumerate(picks):
        y, x = k // ncols * (side + gap_y) + gap_y, k % ncols * (side + gap_x)
        image = split.images[i].numpy()
        mosaic[y:y + side, x:x + side] = image.transpose(1, 2, 0)[..., :3] if colour else image  # (H, W[, 3]) uint8
        corners.append((x, y, c, i))
    with _figure(path, [mosaic.shape[0] / side], 1, Margins(0, 0, 0, 0, 0, 0), width=mosaic.shape[1] / side,
                 sharey=False) as (fig, axes):
        ax = axes[0][0]
        ax.imshow(mosaic, vmin=0, vmax=255, interpolation="none")
        ax.set_axis_off()
        for x, y, c, i in corners:
            ax.text(x + side / 2, y - 1, f"{split.classes[c]}\nlabel {c} · image {i}", ha="center", va="bottom",
                    fontsize=7.5, linespacing=1.15)
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
