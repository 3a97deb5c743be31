"""Asks: every ask of every question of experiments.toml gets its sentence, with its number, from a synthetic build;
an ask with nothing measured says so; a spec naming no ask kind is refused at load."""
from __future__ import annotations

import math
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from reportgen.analysis.aggregate import aggregate_points
from reportgen.analysis.ask_answers import AskContext, ranking
from reportgen.analysis.asks import ask_sentence, covered, unanswerable
from reportgen.analysis.prose import question_prose
from reportgen.errors import SpecError
from reportgen.plan import plan_question
from reportgen.results import PROBE_STEPS, EpochMetrics, RunOutcome, RunResult
from reportgen.spec import load_spec

REPO = Path(__file__).resolve().parents[2]
SPEC = load_spec(REPO / "experiments.toml")
CLASSES = tuple(f"class {i}" for i in range(10))


# ---------------------------------------------------------------- a synthetic build of the real spec

def _curve(model: str, lr: float, seed: int, epochs: int, target: float | None) -> tuple[list[float], str]:
    """Test accuracies per epoch: one run stuck at chance (the plain MLP at lr 1), the others rising to a cap that
    depends on the rate, faster for larger rates; a targeted run stops at its target or its cap."""
    if model == "mlp" and lr >= 1:
        return [10.0] * min(epochs, 3), "stuck at chance"
    speed = min(1.5, 8 * lr + 0.05)
    cap = 90 - 2 * abs(math.log10(lr) + 1.5) - (3 if "sigmoid" in model else 0) + 0.3 * seed
    accs = []
    for e in range(1, epochs + 1):
        accs.append(round(cap - (cap - 20) * math.exp(-speed * e), 2))
        if target is not None and accs[-1] >= target:
            return accs, "target reached"
    return accs, "completed" if target is None else "epoch cap"


def _probes(model: str, seed: int) -> dict[str, list[float]]:
    scale = 1e-3 if model.startswith("bn") else 5e-5
    sign = [(-1) ** (i // 3) for i in range(PROBE_STEPS)]
    return {"grad_mean": [s * scale * (1 + 0.1 * seed) for s in sign],
            "grad_abs_mean": [scale * 5 * (1 - i / 200) for i in range(PROBE_STEPS)],
            "grad_norm": [2.0 * (1 - i / 200) for i in range(PROBE_STEPS)],
            "step_loss": [2.3 * (1 - i / 300) for i in range(PROBE_STEPS)]}


def _outcome(planned) -> RunOutcome:
    labels, budget = planned.labels, planned.budget
    seed = int(planned.request.get("seed", 0))
    accs, stop = _curve(str(labels["model"]), float(labels["lr"]), seed, min(budget.max_epochs, 150), budget.until_accuracy)
    epochs = [EpochMetrics(i + 1, 1.0 / (i + 1), 1.1 / (i + 1), a, 1.0 + len(str(labels["model"]))) for i, a in enumerate(accs)]
    params = 100_000 + 7_919 * sum(map(ord, str(labels["model"])))
    result = RunResult(planned.key, planned.request, params, epochs, stop, _probes(str(labels["model"]), seed), budget)
    return RunOutcome(planned, result)


def _load_split(name: str, train: bool):
    """A stand-in data set: 10 classes, uint8 images, one class with fewer images."""
    n = 200 if train else 50
    labels = torch.arange(n) % 10
    labels[:3] = 0  # class 0 gets three more images than class 1 and 2
    return SimpleNamespace(images=torch.randint(0, 256, (n, 28, 28), dtype=torch.uint8), labels=labels, classes=CLASSES,
                           source="synthetic")


def _answer(qid: str, profile: str = "cpu", load_split=_load_split) -> list[str]:
    planned = plan_question(SPEC, qid, profile, "cpu", 2)
    points = [p for p in aggregate_points([_outcome(p) for p in planned]) if p.result is not None]
    return question_prose(SPEC, SPEC.questions[qid], points, load_split=load_split, profile=profile)[0]


@pytest.mark.parametrize("qid", list(SPEC.questions))
def test_every_ask_of_the_spec_has_its_own_sentence_with_its_number(qid):
    asks = SPEC.questions[qid].asks
    assert asks, f"{qid} lists no asks"
    answer = _answer(qid)
    assert len(answer) == len(asks), answer
    for ask, sentence in zip(asks, answer):
        assert not sentence.startswith("Not measured"), (ask.ask, sentence)
        if ask.by != "image_classes":  # names classes, not numbers
            assert re.search(r"\d", sentence), (ask.ask, sentence)


def test_q1_3_gives_every_rate_its_epoch_or_its_stop_reason():
    sentence = _answer("q1.3")[0]
    for lr in ("1", "0.1", "0.01", "0.001"):
        assert re.search(rf"lr (\S+, )*{re.escape(lr)}\b", sentence), sentence
    assert "never (stuck at chance after 3 epochs)" in sentence
    assert re.search(r"epoch \d+", sentence)


def test_q1_4_reads_the_two_tables_together():
    tradeoff, cost, usable = _answer("q1.4")
    assert "Tutorial MLP" in tradeoff and "BN MLP" in tradeoff  # both networks, not the first only
    assert re.search(r"best rate after 10 epochs, lr [\d.]+, reaches 85\.0 % at epoch \d+", cost)
    assert "as many epochs" in cost
    assert "tolerates a wider range of rates" in usable and "not 1" in usable


def test_q1_6_states_the_signed_mean_in_plain_words_for_both_networks():
    sentence = _answer("q1.6")[0]
    assert "stays within ±6e-5 of zero" in sentence and "stays within ±2e-3 of zero" in sentence
    assert "magnitude" not in sentence
    assert sentence.startswith("Over the first 100 steps, ")


@pytest.mark.parametrize("largest, said", [(1.1e-4, "2e-4"), (1e-4, "1e-4"), (9.5e-5, "1e-4"), (3e-2, "3e-2")])
def test_a_signed_mean_is_bounded_by_a_round_number_at_or_above_it(largest, said):
    from reportgen.analysis.ask_answers import _bound

    assert _bound(largest) == said


def test_q1_7_covers_both_pairs():
    convergence, gaps, sizes = _answer("q1.7")
    for pair in (("Small CNN", "MLP"), ("BN CNN", "BN MLP")):
        assert all(name in gaps for name in pair) and all(name in sizes for name in pair)
    assert re.search(r"CI [−+]", gaps)
    assert len(re.findall(r"\d ± [\d.]+ %", gaps)) == 4  # each side of each pair with its accuracy


def test_lab_t1_names_the_cpu_profiles_budget_and_not_under_full():
    assert _answer("lab.t1", "cpu")[0] == ("Budget: the cpu profile's first 3,000 training and 2,000 test images, "
                                            "3 epochs, not the full protocol.")
    assert _answer("lab.t1", "full")[0].startswith("Budget: the full protocol, all training and all test images")


def test_lab_t1_gives_each_network_its_training_loss_over_the_epochs():
    assert re.fullmatch(r"Mean training loss from epoch 1 to 3: ResNet18 \(random init\) 1\.000 → 0\.333; "
                        r"AlexNet \(random init\) 1\.000 → 0\.333\.", _answer("lab.t1")[1])


def test_lab_act_ranks_every_activation_best_to_worst():
    speed, end = _answer("lab.act")
    for sentence in (speed, end):
        names = re.findall(r"Model A \((\w+)\)", sentence)
        assert sorted(names) == ["ReLU", "Sigmoid", "Tanh"], sentence
    assert end.index("Sigmoid") > end.index("ReLU")  # the synthetic Sigmoid ends lowest


def test_lab_t2_counts_depth_and_receptive_field_from_the_built_models():
    structure = _answer("lab.t2")[2]
    assert structure == ("Model A (ReLU): 1 convolution and 2 linear layers, receptive field 4 × 4 pixels; "
                         "Model B: 2 convolutions and 2 linear layers, receptive field 10 × 10 pixels.")


def test_q1_1_reads_shape_range_and_counts_from_the_data():
    shown, shape, counts = _answer("q1.1")
    assert shown == "Shown with their class names: class 0, class 1 and class 9."
    assert shape == "One image is a 1 × 28 × 28 (C × H × W) float tensor, values 0 to 1."
    assert counts == ("200 training and 50 test images, from 19 (class 1) to 22 (class 0) and "
                      "from 4 (class 1) to 7 (class 0) per class.")


def test_every_answer_of_a_cpu_build_fits_the_first_pdf_page(tmp_path):
    from weasyprint import HTML

    from reportgen.report import render_report, slug

    outcomes = {qid: [_outcome(p) for p in plan_question(SPEC, qid, "cpu", "cpu", 3)] for qid in SPEC.questions}
    html, _ = render_report(SPEC, "cpu", outcomes, tmp_path, {}, _load_split, pdf=False)
    first_page = HTML(filename=str(html), base_url=str(tmp_path)).render().pages[0].anchors
    assert {f"answer-{slug(qid)}" for qid in SPEC.questions} <= set(first_page), sorted(first_page)


# ---------------------------------------------------------------- nothing measured

def test_an_ask_with_nothing_measured_renders_its_notice():
    question = SPEC.questions["q1.3"]
    fixed = [_outcome(p) for p in plan_question(SPEC, "q1.2", "cpu", "cpu", 1)]  # no run has a target
    answer = question_prose(SPEC, question, fixed)[0]
    assert answer == ["Not measured: the epoch each rate first reaches 85 %, or why it stopped."]


def test_an_untrained_question_says_once_what_is_not_measured():
    assert question_prose(SPEC, SPEC.questions["lab.act"], [])[0] == [
        "Not measured: how fast each activation converges; how accurate each ends."]


def test_data_asks_without_data_and_run_asks_without_runs_say_not_measured():
    q11, q12 = SPEC.questions["q1.1"], SPEC.questions["q1.2"]
    assert _answer("q1.1", load_split=None) == [
        "Not measured: three training images of three classes, with their class names; the shape of one image as the "
        "training tensors store it; the images per class."]
    assert ask_sentence(q12.asks[0], AskContext([])) == "Not measured: the test accuracy after 10 epochs for each rate."
    assert ask_sentence(q11.asks[2], AskContext([], load_split=_load_split)).startswith("200 training")


def test_list_flags_asks_the_plan_cannot_answer():
    assert [unanswerable(a, plan_question(SPEC, "q1.3", "cpu", "cpu")) for a in SPEC.questions["q1.3"].asks] == [None]
    no_target = plan_question(SPEC, "q1.2", "cpu", "cpu")
    assert unanswerable(SPEC.questions["q1.3"].asks[0], no_target) == "no run has a target accuracy (until_accuracy)"
    assert unanswerable(SPEC.questions["q1.2"].asks[0], []) == "the question trains no runs"
    assert unanswerable(SPEC.questions["q1.1"].asks[0], []) is None  # read from the data set


def test_a_covering_ask_leaves_its_observers_findings_out():
    assert covered(SPEC.questions["lab.act"].asks) == {"activation_effect"}
    assert "convergence" in covered(SPEC.questions["q1.3"].asks)


# ---------------------------------------------------------------- spec errors at load

def _spec_with(tmp_path: Path, old: str, new: str) -> Path:
    text = (REPO / "experiments.toml").read_text()
    assert old in text
    path = tmp_path / "experiments.toml"
    path.write_text(text.replace(old, new, 1))
    return path


@pytest.mark.parametrize("old, new, expected", [
    ('by = "final_accuracy" }', 'by = "final_acuracy" }',
     r'questions\."q1\.2"\.asks\[0\]\.by: unknown ask kind .*final_acuracy.*Did you mean \'final_accuracy\''),
    ('by = "param_claim" }', 'by = "param_claim", covers = ["overfitting"] }',
     r'lab\.t2"\.asks\[3\]\.covers\[0\]: unknown observer of this question'),
    ('{ ask = "the budget these numbers come from", by = "budget" }', '{ ask = "x", by = "budget", sees = 1 }',
     r'asks\[0\]\.sees: unknown key'),
    ('{ ask = "the budget these numbers come from", by = "budget" }', '{ by = "budget" }', r'asks\[0\]\.ask: missing'),
    ('args = { dataset = "fashion-mnist" } },', 'args = { dataset = "fashion-mnst" } },', r"did you mean 'fashion-mnist'"),
    ('observer = "activation_effect" }', 'observer = "overfitting" }',
     r'asks\[1\]\.args\.observer: .*observer \'overfitting\', which this question does not list'),
])
def test_a_bad_ask_is_a_spec_error_at_load(tmp_path, old, new, expected):
    path = _spec_with(tmp_path, old, new)
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert str(caught.value).startswith(str(path)), caught.value
    assert re.search(expected, str(caught.value), re.I), caught.value


def test_an_ask_reading_an_observer_the_question_lacks_is_refused(tmp_path):
    path = _spec_with(tmp_path, '{ ask = "the test accuracy", by = "pair_gaps" }', '{ ask = "the test accuracy", by = "capacity" }')
    with pytest.raises(SpecError, match=r'lab\.t1"\.asks\[2\]\.by: .*observer \'capacity\''):
        load_spec(path)


def test_rate_cost_says_plainly_when_neither_rate_reaches_the_target(make_outcome):
    from reportgen.analysis.ask_answers import rate_cost

    fixed = [make_outcome(lr=lr, accs=[60.0, acc]) for lr, acc in ((0.1, 80.0), (0.001, 50.0))]
    targeted = [make_outcome(lr=lr, accs=[60.0, acc], until_accuracy=85.0, max_epochs=2, stop_reason="epoch cap")
                for lr, acc in ((0.1, 80.0), (0.001, 50.0))]
    assert rate_cost(AskContext(fixed + targeted), None) == (
        "Tutorial MLP's best rate after 2 epochs, lr 0.1, never reaches 85.0 %, nor does lr 0.001.")


def test_findings_drop_the_sentences_the_answer_already_says():
    from reportgen.analysis.prose import _unsaid

    finding = "Against MLP: Wider MLP −0.1 points (CI −0.4 to +0.2). All equivalent to the baseline within ±0.5 points."
    reply = ["Against MLP, all equivalent to the baseline within ±0.5 points; against BN MLP, …."]
    assert _unsaid(finding, reply) == "Against MLP: Wider MLP −0.1 points (CI −0.4 to +0.2)."
    assert _unsaid("For BN MLP, lr 1 is best.", ["For MLP, lr 0.1 is best; for BN MLP, lr 1 is best."]) == ""
    # a clause giving a comparison the answer gave, with the same interval, goes; the rest of the finding stays
    efficiency = ("Small CNN against MLP: unresolved with 3 seeds (80.5 ± 0.6 vs 78.8 ± 0.1 %, CI −0.4 to +4.0); "
                  "Small CNN is the more parameter-efficient (with 0.63× the parameters).")
    assert _unsaid(efficiency, ["Small CNN (80.5 ± 0.6 %) is unresolved against MLP with 3 seeds (CI −0.4 to +4.0)."]) \
        == "Small CNN is the more parameter-efficient (with 0.63× the parameters)."
    assert _unsaid(efficiency, ["Small CNN is unresolved against MLP (CI −0.5 to +4.0)."]) == efficiency
    q15 = SPEC.questions["q1.5"]
    points = [p for p in aggregate_points([_outcome(p) for p in plan_question(SPEC, "q1.5", "cpu", "cpu", 2)])]
    answer, findings = question_prose(SPEC, q15, points)
    verdicts = answer[2].split("; ")
    assert not any(v.split(", ", 1)[1].rstrip(".") in f.lower() for v in verdicts for f in findings), findings


def test_a_ranking_judges_only_in_a_family_that_compares_its_metric():
    from reportgen.analysis.asks import RankingArgs
    from reportgen.analysis.prose import ask_context

    question = SPEC.questions["lab.act"]
    points = [p for p in aggregate_points([_outcome(p) for p in plan_question(SPEC, "lab.act", "cpu", "cpu", 2)])]
    ctx = ask_context(question, points)
    by_accuracy = ranking(ctx, RankingArgs(metric="final_accuracy", observer="activation_effect"))
    by_size = ranking(ctx, RankingArgs(metric="params", observer="activation_effect"))
    assert re.search(r"behind \(CI|equivalent within|unresolved with", by_accuracy)
    assert not re.search(r"CI|equivalent|unresolved", by_size) and by_size.count("Model A") == 3
