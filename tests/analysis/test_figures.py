"""Figures: files written only when there is data, diverged runs drawn, colours stable per run."""
from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import pytest
import torch

from reportgen.analysis import figures
from reportgen.data import Split
from reportgen.views import BarsArgs as BarsView, CurvesArgs as CurvesView, ImageGridArgs as ImageGridView, StepCurvesArgs as StepCurvesView

SVG_TEXT = "{http://www.w3.org/2000/svg}text"


FakeSplit = Split  # the real record, filled with synthetic images


def svg_texts(path) -> str:
    """All text of an SVG (figures keep text as text), joined; also proves the file is well-formed XML."""
    root = ET.parse(path).getroot()
    return " ".join("".join(node.itertext()) for node in root.iter(SVG_TEXT))


def curves(**kw) -> CurvesView:
    return CurvesView(kind="curves", **({"metrics": ["train_loss", "test_loss", "test_accuracy"]} | kw))


def test_curves_figure_draws_diverged_runs_and_names_them(tmp_path, make_outcome):
    outcomes = [
        make_outcome(model="mlp", lr=1.0, accs=[10.0, 10.0], train_losses=[2.3, math.nan],
                     test_losses=[2.4, math.inf], stop_reason="diverged"),
        make_outcome(model="mlp", lr=0.1, accs=[80.0, 85.0, 87.0]),
        make_outcome(model="bn_mlp", lr=1.0, accs=[70.0, 80.0, 84.0]),
        make_outcome(model="bn_mlp", lr=0.1, accs=[81.0, 86.0, 88.0]),
    ]

    path = figures.curves_figure(curves(facet="model"), outcomes, tmp_path / "c.svg")

    assert path == tmp_path / "c.svg"
    text = svg_texts(path)
    assert "Tutorial MLP" in text and "BN MLP" in text  # one panel per model, titled
    assert "diverged, epoch 2" in text
    assert "epoch" in text and "test accuracy (%)" in text


def test_curves_figure_writes_nothing_without_results(tmp_path, make_outcome):
    outcomes = [make_outcome(model="mlp", missing=True)]

    assert figures.curves_figure(curves(), outcomes, tmp_path / "c.svg") is None
    assert not (tmp_path / "c.svg").exists()


def test_facet_groups(make_outcome):
    lr_grid = [make_outcome(model=m, lr=lr) for m in ("mlp", "bn_mlp") for lr in (0.1, 0.01)]
    one_each = [make_outcome(model=m) for m in ("mlp", "cnn", "bn_mlp")]

    assert [(t, len(g)) for t, g in figures.facet_groups(lr_grid, "model")] == [("Tutorial MLP", 2), ("BN MLP", 2)]
    assert [len(g) for _, g in figures.facet_groups(one_each, "model")] == [3]  # one line per panel: merged
    assert [len(g) for _, g in figures.facet_groups(lr_grid, "none")] == [4]


def test_a_value_keeps_its_colour_across_panels_and_figures(make_outcome):
    grid = [make_outcome(model=m, lr=lr) for m in ("mlp", "bn_mlp") for lr in (1.0, 0.1, 0.01)]
    palette = figures.make_palette(grid)
    colour = {(o.planned.labels["model"], o.planned.labels["lr"]): palette.style(o, ["lr"]).colour for o in grid}
    assert colour["mlp", 0.1] == colour["bn_mlp", 0.1]  # the same rate in both model panels
    assert len({colour["mlp", lr] for lr in (1.0, 0.1, 0.01)}) == 3
    # another figure, drawing only some of the rates, colours lr 0.1 the same
    later = [make_outcome(model="mlp", lr=lr, question="q1.4") for lr in (0.1, 0.01)]
    assert palette.style(later[0], ["lr"]).colour == colour["mlp", 0.1]
    # a model is one colour wherever the models tell the lines apart
    assert palette.style(grid[0], ["model"]).colour != palette.style(grid[3], ["model"]).colour


def test_colours_survive_in_the_drawn_svg(make_outcome, tmp_path):
    grid = [make_outcome(model=m, lr=lr) for m in ("mlp", "bn_mlp") for lr in (0.1, 0.01)]
    palette = figures.make_palette(grid)
    svg = figures.curves_figure(curves(metrics=["train_loss"]), grid, tmp_path / "c.svg", palette).read_text()
    lr01 = palette.style(grid[0], ["lr"]).colour
    assert svg.count(f"stroke: {lr01}") >= 2  # drawn in both panels (Tutorial MLP and BN MLP)


def test_log_scale_when_losses_span_more_than_a_decade():
    assert figures._use_log(None, [1.0, 0.5, 0.3]) is False
    assert figures._use_log(None, [2.0, 0.02, float("nan"), float("inf"), -1.0]) is True
    assert figures._use_log(True, [1.0]) is True
    assert figures._use_log(False, [100.0, 0.001]) is False


def test_step_curves_figure(tmp_path, make_outcome):
    probes = {"grad_norm": [1.0 / (i + 1) for i in range(120)], "grad_mean": [(-1) ** i * 1e-4 for i in range(120)]}
    outcomes = [make_outcome(model="mlp", probes=probes), make_outcome(model="bn_mlp", probes=probes)]
    view = StepCurvesView(kind="step_curves", series=["grad_norm", "grad_mean"], steps=100)

    path = figures.step_curves_figure(view, outcomes, tmp_path / "s.svg")

    text = svg_texts(path)
    assert "training step" in text and "gradient L2 norm" in text and "mean gradient entry" in text


def test_step_curves_figure_without_probes_writes_nothing(tmp_path, make_outcome):
    view = StepCurvesView(kind="step_curves", series=["grad_norm"])

    assert figures.step_curves_figure(view, [make_outcome()], tmp_path / "s.svg") is None


def test_bars_figure_one_panel_per_budget_and_missing_runs(tmp_path, make_outcome):
    outcomes = [make_outcome(model="mlp", lr=0.1, accs=[80.0, 87.31]),
                make_outcome(model="mlp", lr=0.01, missing=True),
                make_outcome(model="mlp", lr=0.1, accs=[80.0, 85.2], until_accuracy=85.0, max_epochs=200)]

    path = figures.bars_figure(BarsView(kind="bars", metric="final_accuracy"), outcomes, tmp_path / "b.svg")

    text = svg_texts(path)
    assert "87.31" in text and "85.20" in text and "not run" in text
    assert "Runs trained 2 epochs" in text and "until 85 % test accuracy" in text
    assert "final test accuracy (%)" in text


def test_bars_figure_writes_nothing_when_every_run_is_missing(tmp_path, make_outcome):
    view = BarsView(kind="bars", metric="params")

    assert figures.bars_figure(view, [make_outcome(missing=True)], tmp_path / "b.svg") is None


@pytest.mark.parametrize("suffix", [".svg", ".png"])
def test_image_grid_titles_are_class_names(tmp_path, suffix):
    classes = ("T-shirt/top", "Trouser", "Ankle boot")
    split = FakeSplit(torch.randint(0, 255, (6, 28, 28), dtype=torch.uint8), torch.tensor([2, 0, 1, 0, 1, 2]),
                      classes, "")
    view = ImageGridView(kind="image_grid", dataset="fashion-mnist", classes=[0, 2])

    path = figures.image_grid_figure(view, split, tmp_path / f"g{suffix}")

    assert path.stat().st_size > 0
    if suffix == ".svg":
        text = svg_texts(path)
        assert "T-shirt/top" in text and "Ankle boot" in text and "Trouser" not in text
        assert "image 1" in text  # the first T-shirt is image 1 of the split


def test_image_grid_rejects_unknown_class(tmp_path):
    split = FakeSplit(torch.zeros(2, 28, 28, dtype=torch.uint8), torch.tensor([0, 1]), ("a", "b"), "")
    view = ImageGridView(kind="image_grid", dataset="mnist", classes=[5])

    with pytest.raises(ValueError, match="5"):
        figures.image_grid_figure(view, split, tmp_path / "g.svg")


def test_an_accuracy_target_is_drawn_as_a_dashed_line(make_outcome, tmp_path):
    runs = [make_outcome(lr=lr, accs=[80.0, 86.0], until_accuracy=85.0, max_epochs=5) for lr in (0.1, 0.01)]
    svg = figures.curves_figure(curves(metrics=["test_accuracy"]), runs, tmp_path / "t.svg").read_text()
    assert "target 85 %" in svg and "stroke-dasharray" in svg


def test_one_legend_per_figure_with_each_value_once(make_outcome, tmp_path):
    """Panels per model share one legend below them all; a rate drawn in both panels is listed once."""
    grid = [make_outcome(model=m, lr=lr) for m in ("mlp", "bn_mlp") for lr in (0.1, 0.01)]
    grid.append(make_outcome(model="bn_mlp", lr=1.0))  # a rate only one panel has
    path = figures.curves_figure(curves(metrics=["train_loss", "test_loss"], facet="model"), grid, tmp_path / "c.svg")
    svg = path.read_text()
    assert svg.count('id="legend_') == 1  # four panels, one legend
    legend = next(g for g in ET.parse(path).getroot().iter("{http://www.w3.org/2000/svg}g")
                  if (g.get("id") or "").startswith("legend_"))
    labels = ["".join(t.itertext()) for t in legend.iter(SVG_TEXT)]
    assert sorted(labels) == ["lr 0.01", "lr 0.1", "lr 1"]


def test_step_curves_also_get_one_legend(make_outcome, tmp_path):
    probes = {"grad_norm": [1.0 + 0.01 * i for i in range(20)]}
    grid = [make_outcome(model=m, lr=lr, probes=probes) for m in ("mlp", "bn_mlp") for lr in (0.1, 0.01)]
    view = StepCurvesView(kind="step_curves", series=["grad_norm"], steps=20, facet="model")
    path = figures.step_curves_figure(view, grid, tmp_path / "s.svg")
    assert path.read_text().count('id="legend_') == 1
