"""The report: a synthetic spec and hand-made outcomes (no training) rendered to HTML and PDF."""
from __future__ import annotations

import math
import re
import zlib

import pytest
import torch

from reportgen.plan import plan_question
from reportgen.report import describe_protocol, render_report, slug
from reportgen.results import EpochMetrics, PlannedRun, RunOutcome, RunResult
from reportgen.data import Split
from reportgen.spec import load_spec

SPEC = """
title = "Synthetic report"
author = "tests"
seed = 0

[protocols.p]
dataset = "fashion-mnist"
optimizer = "sgd"
lr = 0.01
batch_size = 64
test_batch_size = 1000
shuffle = false
epochs = 3

[models.mlp]
arch = "mlp"
label = "Tiny MLP"
args = { hidden = [8] }

[models.bn]
arch = "mlp"
label = "Tiny BN MLP"
args = { hidden = [8], batch_norm = true }

[models.big]
arch = "resnet18"
label = "Big net"
image_size = 32

[profiles.full]
description = "everything"
[profiles.cpu]
description = "a budget for the big net"
[[profiles.cpu.overlays]]
questions = ["lab.big"]
set = { train_subset = 300, epochs = 2 }
reason = "too slow on a CPU"
[profiles.smoke]
description = "tiny"

[questions."d.1"]
part = "Part A"
title = "D1 The images"
prompt = "Show three images and count the classes."
views = [
  { kind = "image_grid", dataset = "fashion-mnist", classes = [0, 1, 2], caption = "Three classes." },
  { kind = "dataset_table", dataset = "fashion-mnist", caption = "Sizes." },
]

[questions."q.lr"]
part = "Part A"
title = "Q1 Learning rates"
prompt = "Train at two learning rates."
protocol = "p"
runs = [{ model = ["mlp", "bn"], lr = [1.0, 0.1] }]
views = [
  { kind = "table", columns = ["model", "lr", "final_accuracy", "final_train_loss", "params", "outcome"], caption = "Accuracy." },
  { kind = "curves", metrics = ["train_loss", "test_loss"], facet = "model", caption = "Loss." },
]
observers = [{ kind = "lr_effect" }, { kind = "divergence" }]
references = [
  { select = { model = "mlp", lr = 0.1 }, metric = "final_accuracy", value = 80.0, unit = "%", tolerance = 5.0, source = "doc.txt:1" },
  { select = { model = "bn", lr = 1.0 }, metric = "params", value = 1234, tolerance = 0, source = "doc.txt:2" },
]

[questions."q.target"]
part = "Part A"
title = "Q2 Epochs to a target"
prompt = "Train until 85 %."
protocol = "p"
runs = [{ model = "mlp", lr = 0.1, until_accuracy = 85.0, epochs = 20, plateau_patience = 3 }]
views = [{ kind = "table", columns = ["model", "lr", "epochs_to_target", "stop_reason"], caption = "Epochs." }]
references = [{ select = { model = "mlp" }, metric = "epochs_to_target", value = 2, tolerance = 1, source = "doc.txt:3" }]

[questions."q.both"]
part = "Part A"
title = "Q3 Both tables"
prompt = "Compare the two."
include_runs_of = ["q.lr", "q.target"]
views = [{ kind = "bars", metric = "final_accuracy", caption = "Final accuracy." }]

[questions."q.steps"]
part = "Part A"
title = "Q4 Gradients"
prompt = "Plot the gradient norm."
protocol = "p"
runs = [{ model = ["mlp", "bn"], lr = 0.1, epochs = 1 }]
views = [{ kind = "step_curves", series = ["grad_norm", "step_loss"], steps = 100, caption = "Gradients." }]
observers = [{ kind = "gradient_trend", args = { steps = 100 } }]

[questions."lab.big"]
part = "Part B"
title = "B1 A big network"
prompt = "Train the big network."
protocol = "p"
runs = [{ model = "big" }]
views = [
  { kind = "table", columns = ["model", "final_accuracy"], caption = "Big." },
  { kind = "curves", metrics = ["train_loss"], facet = "none", caption = "Big loss." },
]
observers = [{ kind = "convergence" }]
references = [{ select = { model = "big" }, metric = "final_accuracy", value = 99.0, unit = "%", source = "doc.txt:4" }]

[questions."lab.epochs"]
part = "Part B"
title = "B2 Per epoch"
prompt = "Tabulate each epoch."
protocol = "p"
runs = [{ model = ["mlp", "bn"], optimizer = "adam", lr = 0.001 }]
views = [
  { kind = "epoch_table", log_every = 100, caption = "Per epoch." },
  { kind = "curves", metrics = ["train_loss", "test_accuracy"], facet = "none", caption = "Both." },
]
"""

CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
STEPS_PER_EPOCH = 250


FakeSplit = Split  # the real record, filled with synthetic images


def fake_load_split(name: str, train: bool) -> FakeSplit:
    n = 50 if train else 20
    generator = torch.Generator().manual_seed(int(train))
    images = torch.randint(0, 256, (n, 28, 28), dtype=torch.uint8, generator=generator)
    return FakeSplit(images, torch.arange(n) % 10, CLASSES, f"/fake/{name}")


def fake_result(run: PlannedRun) -> RunResult:
    """A deterministic trajectory: the plain MLP diverges at lr 1, the others learn at a rate set by lr."""
    lr, bn = run.labels["lr"], run.labels["model"] == "bn"
    epochs, budget = [], run.budget
    for e in range(1, budget.max_epochs + 1):
        if lr >= 1.0 and not bn and e == 2:
            epochs.append(EpochMetrics(e, math.nan, math.nan, 10.0, 1.0, [math.nan] * STEPS_PER_EPOCH))
            break
        loss = 2.3 * math.exp(-e * min(lr * 20, 1.0)) + 0.05
        accuracy = 60 + 10 * e * min(lr * 20, 1.0) + (5 if bn else 0)
        steps = [loss * (1 + (STEPS_PER_EPOCH - s) / STEPS_PER_EPOCH) for s in range(STEPS_PER_EPOCH)]
        epochs.append(EpochMetrics(e, loss, loss * 1.1, min(accuracy, 99.0), 2.0, steps))
        if budget.until_accuracy and accuracy >= budget.until_accuracy:
            break
    stop = "diverged" if lr >= 1.0 and not bn else "completed"
    if budget.until_accuracy:
        stop = "target reached" if epochs[-1].test_accuracy >= budget.until_accuracy else "epoch cap"
    probes = {"grad_norm": [2.0 / math.sqrt(i + 1) for i in range(100)], "step_loss": [2.3 - i / 100 for i in range(100)],
              "grad_mean": [(-1) ** i * 1e-4 for i in range(100)], "grad_abs_mean": [1e-3] * 100}
    return RunResult(run.key, run.request, 1234 if bn else 5678, epochs, stop, probes, budget)


def make_outcomes(spec, profile: str = "cpu", missing: tuple[str, ...] = ("lab.big",)) -> dict[str, list[RunOutcome]]:
    return {qid: [RunOutcome(run, None if qid in missing else fake_result(run))
                  for run in plan_question(spec, qid, profile, "cpu")] for qid in spec.questions}


PROVENANCE = {
    "profile": "cpu", "device": "cpu", "spec_path": "experiments.toml", "spec_hash": "f" * 64,
    "total_training_seconds": 3725.0, "training_seconds_by_question": {"q.lr": 60.0, "q.steps": 1.5},
    "command": "reportgen build",
}


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    path = tmp_path_factory.mktemp("spec") / "experiments.toml"
    path.write_text(SPEC)
    return load_spec(path)


@pytest.fixture(scope="module")
def rendered(spec, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    html, pdf = render_report(spec, "cpu", make_outcomes(spec), out, PROVENANCE, fake_load_split)
    return out, html, pdf, html.read_text(encoding="utf-8")


def section(html: str, qid: str) -> str:
    match = re.search(rf'<section class="question" id="{slug(qid)}" data-question="{re.escape(qid)}">(.*?)</section>',
                      html, re.S)
    assert match, f"no section for {qid}"
    return match.group(1)


def count_pdf_pages(data: bytes) -> int:
    """Page objects, also inside compressed object streams (no PDF library needed)."""
    chunks = [data]
    for stream in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", data, re.S):
        try:
            chunks.append(zlib.decompress(stream))
        except zlib.error:
            pass
    return sum(len(re.findall(rb"/Type\s*/Page(?![s\w])", chunk)) for chunk in chunks)


def test_every_question_has_a_section_in_spec_order_grouped_by_part(spec, rendered):
    _, html_path, _, html = rendered
    assert html_path.name == "report.html"
    found = re.findall(r'data-question="([^"]+)"', html)
    assert found == list(spec.questions)
    assert html.index("Part A") < html.index("Part B")
    for qid in spec.questions:
        assert f'href="#{slug(qid)}"' in html  # in the table of contents


def test_tables_are_rendered_and_written_as_csv(rendered):
    out, _, _, html = rendered
    lr = section(html, "q.lr")
    assert "Learning rate" in lr and "Trainable parameters" in lr
    assert "5,678" in lr  # params with a thousands separator
    assert "NaN" in lr and "diverged" in lr
    assert (out / "tables" / "q-lr-1.csv").read_text().startswith("Model,Learning rate,")
    for href in re.findall(r'<a class="csv" href="([^"]+)"', html):
        assert (out / href).is_file(), href


def test_every_image_exists_and_figures_have_safe_names(rendered):
    out, _, _, html = rendered
    sources = re.findall(r'<img src="([^"]+)"', html)
    assert len(sources) == 5  # images, q.lr curves, q.both bars, q.steps, lab.epochs curves
    for src in sources:
        assert not src.startswith("/") and (out / src).is_file(), src
    assert all(re.fullmatch(r"[A-Za-z0-9_-]+\.svg", p.name) for p in (out / "figures").iterdir())


def test_all_runs_missing_gives_a_placeholder(rendered):
    _, _, _, html = rendered
    big = section(html, "lab.big")
    assert "Not trained yet" in big and "<code>reportgen run lab.big</code>" in big
    assert "<img" not in big and '<table class="data">' not in big
    assert "not measured" in big  # its reference check is still listed
    assert "train_subset = 300" in big and "too slow on a CPU" in big  # the profile's deviation


def test_protocol_line_describes_the_runs(rendered):
    _, _, _, html = rendered
    target = section(html, "q.target")
    assert "Fashion-MNIST" in target and "optimizer SGD" in target and "learning rate 0.1" in target
    assert "until 85 % test accuracy (cap 20 epochs, plateau 3)" in target
    assert "batches in data-set order (not shuffled)" in target and "profile <em>cpu</em>" in target
    assert "input resized to 32 × 32 px for Big net" in section(html, "lab.big")


def test_reproduction_summary_lists_every_check(spec, rendered):
    _, _, _, html = rendered
    summary = re.search(r'<section class="front-checks appendix" id="checks">(.*?)</section>', html, re.S).group(1)
    references = sum(len(q.references) for q in spec.questions.values())
    assert summary.count('<td class="verdict') == references == 4
    assert "within tolerance" in summary and "not measured" in summary
    assert "doc.txt:\u200b1" in summary  # the source, with a break opportunity after the colon


def test_sections_show_observations_epoch_table_and_data_views(rendered):
    _, _, _, html = rendered
    assert "<h3>Findings</h3>" in section(html, "q.lr") and '<ul class="findings">' in section(html, "q.lr")
    epochs = section(html, "lab.epochs")
    assert "Loss, first logged batch" in epochs and "batches 100 and 200 of 250" in epochs
    data = section(html, "d.1")
    assert "[1, 28, 28]" in data and "0: T-shirt/top" in data


def test_provenance_appendix(rendered):
    _, _, _, html = rendered
    appendix = html[html.index('id="provenance"'):]
    assert "1 h 02 min" in appendix and "reportgen build" in appendix and "f" * 64 in appendix
    assert "torch" in appendix and "Python" in appendix
    keys = re.findall(r'<code title="([0-9a-f]{64})">([0-9a-f]{12})</code>', appendix)
    assert keys and all(full.startswith(short) for full, short in keys)
    assert "q.lr, q.both" in appendix  # a run shared by two questions


def test_pdf_exists_and_has_several_pages(rendered):
    _, _, pdf, _ = rendered
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF")
    assert count_pdf_pages(data) > 1


def test_render_without_pdf_and_for_one_question(spec, tmp_path):
    outcomes = make_outcomes(spec, missing=())
    html, pdf = render_report(spec, "cpu", {"q.target": outcomes["q.target"]}, tmp_path, {}, fake_load_split,
                              name="q.target", pdf=False)
    assert pdf is None and html == tmp_path / "q.target.html"
    assert re.findall(r'data-question="([^"]+)"', html.read_text()) == ["q.target"]


def test_a_self_contained_report_embeds_every_figure_and_table(spec, rendered, tmp_path):
    import base64

    out, _, _, linked = rendered
    html, _ = render_report(spec, "cpu", make_outcomes(spec), tmp_path, PROVENANCE, fake_load_split, pdf=False,
                            self_contained=True)
    text = html.read_text(encoding="utf-8")
    sources = re.findall(r'<img src="([^"]+)"', text)
    assert len(sources) == len(re.findall(r'<img src="([^"]+)"', linked)) == 5
    for src, path in zip(sources, re.findall(r'<img src="([^"]+)"', linked)):
        assert src.startswith("data:image/svg+xml;base64,")
        assert base64.b64decode(src.split(",", 1)[1]) == (out / path).read_bytes()  # the very file, whole
    csv = re.findall(r'<a class="csv" href="([^"]+)"', text)
    assert csv and all(href.startswith("data:text/csv;base64,") for href in csv)
    assert not re.search(r'(src|href)="(figures|tables)/', text)  # nothing left to fetch beside the file


def test_describe_protocol_lists_each_value_once(spec):
    runs = make_outcomes(spec)["q.both"]
    text = "; ".join(describe_protocol(runs))
    assert "learning rates 1, 0.1" in text
    assert "3 epochs; until 85 % test accuracy (cap 20 epochs, plateau 3)" in text
    assert describe_protocol([]) == []


def test_missing_data_set_gives_placeholders(spec, tmp_path):
    from reportgen.errors import DataError

    def no_data(name: str, train: bool):
        raise DataError(f"{name}: no IDX files found")

    html, _ = render_report(spec, "cpu", {"d.1": []}, tmp_path, {}, no_data, pdf=False)
    data = section(html.read_text(), "d.1")
    assert data.count('class="placeholder"') == 2
    assert data.count("no IDX files found") == 1  # the reason once; the second view refers to it
    assert "Not shown either, for the same reason: Sizes." in data
    assert not list((tmp_path / "figures").iterdir())


def test_an_unchanged_rebuild_redraws_nothing_and_keeps_the_pdf(spec, tmp_path):
    outcomes = make_outcomes(spec)
    html, pdf = render_report(spec, "cpu", outcomes, tmp_path, PROVENANCE, fake_load_split)
    before = {p.name: p.stat().st_mtime_ns for p in [*(tmp_path / "figures").iterdir(), pdf]}
    render_report(spec, "cpu", outcomes, tmp_path, PROVENANCE, fake_load_split)
    after = {p.name: p.stat().st_mtime_ns for p in [*(tmp_path / "figures").iterdir(), pdf]}
    assert after == before

    changed = {qid: [RunOutcome(o.planned, None) for o in runs] if qid == "q.lr" else runs for qid, runs in outcomes.items()}
    render_report(spec, "cpu", changed, tmp_path, PROVENANCE, fake_load_split)
    assert pdf.stat().st_mtime_ns != before[pdf.name]  # the HTML changed, so the PDF was rewritten
    assert any(n.startswith("q-lr-") for n in before)
    assert "figures/q-lr-" not in html.read_text()  # runs now missing: no figure shown from before


def test_templates_are_found_beside_the_package_or_in_the_installed_data(tmp_path):
    """A checkout finds templates/ beside the package; a wheel install finds <prefix>/share/reportgen/templates."""
    from reportgen.errors import ReportgenError
    from reportgen.report import TEMPLATE_PLACES, templates_dir

    assert templates_dir() == TEMPLATE_PLACES[0]  # this checkout
    missing, installed = tmp_path / "missing", tmp_path / "share"
    installed.mkdir()
    (installed / "report.html.j2").write_text("{{ title }}")
    assert templates_dir((missing, installed)) == installed
    with pytest.raises(ReportgenError) as err:
        templates_dir((missing,))
    assert str(missing) in str(err.value) and "pip install" in str(err.value)


def test_the_report_opens_with_every_question_s_answer(spec, rendered):
    _, _, _, html = rendered
    answers = html.index('id="answers"')
    assert answers < html.index('class="part"') and answers < html.index('id="checks"')
    front = html[answers:html.index("</section>", answers)]
    assert "Best learning rate after" in front  # q.lr's answer, from lr_effect
    assert front.count('class="noise-note"') == 1 and "one seed" in front  # said once, for the whole report
    assert "Not trained yet." in front  # lab.big is missing from the cache
    assert front.count("<dt>") == len(spec.questions)
    lr = section(html, "q.lr")
    assert '<p class="answer"><span class="lead">Answer.</span>' in lr


def test_no_sentence_appears_in_two_sections(rendered):
    _, _, _, html = rendered
    findings = re.findall(r"<li>(.*?)</li>", html, re.S)
    per_section = [re.findall(r"<li>(.*?)</li>", m, re.S) for m in
                   re.findall(r'<ul class="findings">(.*?)</ul>', html, re.S)]
    flat = [f.strip() for part in per_section for f in part]
    assert findings and len(flat) == len(set(flat))
    assert not any(f.startswith(("Numbers are", "Each setting")) for f in flat)  # the seeds note is on the Answers page
