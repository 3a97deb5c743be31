"""The spec's vocabulary as text, generated from the registries: `reportgen vocab` prints it and the
README's spec reference is the same text (a test keeps the two equal).
"""
from __future__ import annotations

from typing import Any

from reportgen.analysis.asks import ASKS
from reportgen.analysis.metrics import METRICS
from reportgen.analysis.observations import OBSERVERS
from reportgen.analysis.user_code import MetricReference
from reportgen.datasets import DATASETS
from reportgen.registry import describe_args
from reportgen.sources import SOURCES
from reportgen.views import VIEWS


def vocabulary_markdown() -> str:
    """Every view kind, metric, observer, ask kind, data set and architecture with its arguments and help."""
    from reportgen.models import ARCHITECTURES, plugin_architectures  # torch: only when the vocabulary is asked for

    sections = [
        _entries("View kinds", "a question's `views = [{ kind = \"...\", ... }]`", VIEWS.entries(), skip=("caption",)),
        _metrics(METRICS.entries()),
        _entries("Observers", "a question's `observers = [{ kind = \"...\", args = { ... } }]`", OBSERVERS.entries())
        + MARGIN_NOTE,
        _entries("Asks", "a question's `asks = [{ ask = \"...\", by = \"...\", args = { ... } }]`", ASKS.entries())
        + ASKS_NOTE,
        _entries("Data sets", "`dataset = \"...\"` in a protocol or grid, and in data views", DATASETS.entries()),
        _entries("Your own data sets", "a `[datasets.NAME]` table with `kind = \"...\"` and the kind's arguments; "
                 "`dataset = \"NAME\"` then uses it. Input shape and class names are read from the data; the "
                 "content's sha256 is part of every run's cache key", SOURCES.entries()),
        _entries("Architectures", "a model preset's `arch = \"...\"` and `args = { ... }`",
                 ARCHITECTURES.entries() + plugin_architectures()) + "\n\n" + OWN_ARCHITECTURES,
        _own_analysis(),
        SEEDS,
    ]
    return "\n\n".join(sections) + "\n"


OWN_ARCHITECTURES = """\
Your own network: `arch = "nets.py:MyNet"` (a file, relative to the spec) or `arch = "package.module:callable"`;
installed packages may register theirs under the entry-point group `reportgen.architectures` (listed above
as plug-ins). The callable returns an `nn.Module`; its keyword arguments are the preset's `args`, checked
against its signature when the spec loads. Two parameters come from the data: `input_shape` (C, H, W) and,
unless `args` sets it, `classes`. The file's sha256 (or the package's version) is part of the cache key:
editing the network retrains its runs and no others."""

SEEDS = """\
#### Seeds and profiles

Every spec has the profiles `full`, `cpu` and `smoke`; one the spec does not declare has no overlays.
Seeds per run point: `--seeds N` wins over everything; else a profile overlay that sets `seeds`, else the
grid's `seeds`, else its protocol's, else the profile's `seeds`, else the spec's top-level `seeds` (default
1): a protocol or grid that sets `seeds` wins over the profile's count. A count n trains the seeds `seed`,
`seed` + 1, ...; a list trains exactly those seeds. A profile's `max_seeds` and `seeds_per_stage` (default 3)
set how far `--resolve` may add seeds to a setting (`--max-seeds` overrides the cap); added seeds follow the last
planned one."""


def _own_analysis() -> str:
    lines = ["#### Your own metrics and observers", "",
             "A `[metrics.NAME]` table adds a per-run metric (a table column, a bar, a checkable reference metric):", ""]
    for arg in describe_args(MetricReference):
        default = f", default `{arg.default}`" if arg.default else ", required"
        lines.append(f"- `{arg.name}` ({arg.type}{default}): {arg.help}")
    lines += ["", "An observer by reference, `observers = [{ kind = \"observers.py:fn\", args = { ... } }]`, is "
              "fn(points, args) returning a list of sentences; `points` are the question's measured run points "
              "(one per setting, over its seeds). A function's arguments model is the annotation of its second "
              "parameter (a subclass of `reportgen.registry.Args`); a function of one parameter takes none."]
    return "\n".join(lines)


MARGIN_NOTE = (
    "\n\nEvery observer, and every question, also takes `margin`: the ± within which a difference does not matter "
    "(the *equivalent* verdict), a number for the metric the observer ranks by (its `metric` argument, else "
    "`final_accuracy`) or a table by metric (`margin = { final_accuracy = 1.0, epochs_to_target = 2 }`); an "
    "observer's margin overrides its question's, which overrides the metric's default (the Metrics table).")


ASKS_NOTE = (
    "\n\nAn ask's `by` may also name an observer with an answer function (its part of the answer: `lr_effect`, "
    "`lr_tradeoff`, `divergence`, `convergence`, …) or a numeric per-run metric (`final_accuracy`, `params`, …: "
    "its mean for every run, by model). Each ask gives one sentence of the answer, in the spec's order, or "
    "\"Not measured: <ask>.\" when nothing it needs was measured (`reportgen list` and `plan` flag those before "
    "training). An ask that reads an observer's family and arguments (the kinds above that name one, or "
    "`ranking`'s `observer`) needs the question to list that observer. `covers = [\"observer\", …]` leaves out "
    "the findings of observers whose content the ask's sentence says in full.")


def _entries(title: str, where: str, entries: list[Any], skip: tuple[str, ...] = ()) -> str:
    lines = [f"#### {title}", "", f"Used in {where}.", ""]
    for entry in entries:
        lines.append(f"- `{entry.name}` — {entry.help}")
        for arg in describe_args(entry.args):
            if arg.name in skip:
                continue
            default = f", default `{arg.default}`" if arg.default else ", required"
            said = f": {arg.help}" if arg.help else ""
            lines.append(f"  - `{arg.name}` ({arg.type}{default}){said}")
    if skip:
        lines += ["", f"Every view also takes {', '.join(f'`{s}`' for s in skip)} (text under it)."]
    return "\n".join(lines)


def _metrics(metrics: list[Any]) -> str:
    uses = {"label": "table column (a run field)", "run": "table column, bars when numeric",
            "epoch": "`curves` metric", "step": "`step_curves` series"}
    lines = ["#### Metrics", "",
             "Named by table `columns`, `curves.metrics`, `step_curves.series`, `bars.metric` and references' "
             "`metric`. A margin is the default ± within which two settings count as equivalent.", "",
             "| name | use | title | what it is | margin |", "|---|---|---|---|---|"]
    for m in metrics:
        use = uses[m.kind] + ("; checkable reference" if m.checkable else "")
        margin = f"±{m.margin:g}" if m.margin is not None else ""
        lines.append(f"| `{m.name}` | {use} | {m.title.replace(chr(10), ' ')} | {m.help} | {margin} |")
    return "\n".join(lines)
