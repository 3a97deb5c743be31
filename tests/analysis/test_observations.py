"""Observers: every claim is checked to flip when the numbers behind it flip."""
import math

import pytest

from reportgen.errors import SpecError
from reportgen.analysis.observations import OBSERVERS, observe
from reportgen.analysis.wording import fmt_acc, fmt_loss, fmt_lr

NAN = math.nan
RISING = [70.0, 76.0, 80.0, 83.0]


def text(sentences: list[str]) -> str:
    return " ".join(sentences)


# ---------------------------------------------------------------- registry and edges

def test_registry_holds_every_kind_the_spec_uses():
    assert set(OBSERVERS) == {"lr_effect", "divergence", "overfitting", "convergence", "capacity",
                              "param_efficiency", "gradient_trend", "activation_effect", "param_claim", "compare", "lr_tradeoff"}


def test_unknown_kind_is_an_error(make_outcome):
    with pytest.raises(SpecError, match="unknown observer .lr_efect.. Did you mean .lr_effect."):
        observe("lr_efect", [make_outcome()], {})


def own_args(kind: str, candidates: dict) -> dict:
    """The candidates this observer's arguments model declares (it refuses any other key)."""
    return {k: v for k, v in candidates.items() if k in OBSERVERS.get(kind).args.model_fields}


@pytest.mark.parametrize("kind", sorted(OBSERVERS))
def test_runs_missing_from_the_cache_give_no_sentences(make_outcome, kind):
    args = own_args(kind, {"groups": ["mlp,mlp_wide"], "pairs": ["mlp,cnn"], "larger": "model_b", "smaller": "model_a", "along": "lr"})
    assert observe(kind, [make_outcome(missing=True)], args) == []


@pytest.mark.parametrize("kind", sorted(OBSERVERS))
def test_a_single_run_never_crashes(make_outcome, kind):
    args = own_args(kind, {"groups": ["mlp,mlp_wide"], "pairs": ["mlp,cnn"], "larger": "model_b", "smaller": "mlp", "along": "lr"})
    sentences = observe(kind, [make_outcome(accs=[50.0])], args)
    assert all(isinstance(s, str) and s for s in sentences)


def test_formatting_of_numbers():
    assert (fmt_acc(87.26), fmt_lr(1.0), fmt_lr(0.001), fmt_loss(NAN)) == ("87.3 %", "1", "0.001", "NaN")


# ---------------------------------------------------------------- lr_effect

def lr_grid(make_outcome, best_lr: float, model: str = "mlp"):
    """Four rates where `best_lr` ends at 87.3 % and the others lower."""
    finals = {1.0: 60.0, 0.1: 80.0, 0.01: 75.0, 0.001: 70.0, best_lr: 87.3}
    return [make_outcome(model=model, lr=lr, accs=[50.0, acc - 5, acc]) for lr, acc in finals.items()]


@pytest.mark.parametrize("best_lr", [0.1, 0.01])
def test_lr_effect_names_the_best_rate(make_outcome, best_lr):
    from reportgen.analysis.observations import answer

    runs = lr_grid(make_outcome, best_lr)
    assert f"lr {fmt_lr(best_lr)} for Tutorial MLP (87.3 %" in text(answer("lr_effect", runs, {}))
    said = text(observe("lr_effect", runs, {}))
    assert "the larger lr 1 trained stably, 27.3 points below the best" in said  # the worst, with its gap


def test_lr_effect_reports_a_diverged_large_rate(make_outcome):
    runs = [make_outcome(lr=1.0, accs=[10.0, 10.0], train_losses=[2.3, NAN], test_losses=[2.3, NAN],
                         stop_reason="diverged", max_epochs=4),
            make_outcome(lr=0.1, accs=[80.0, 84.0, 86.0, 87.0])]
    said = text(observe("lr_effect", runs, {}))
    assert "lr 1 diverged at epoch 2" in said and "ending at 10.0 %" in said


def test_lr_effect_reports_an_unstable_large_rate(make_outcome):
    runs = [make_outcome(lr=1.0, accs=[80.0, 85.0, 78.0]), make_outcome(lr=0.1, accs=[80.0, 84.0, 86.0])]
    said = text(observe("lr_effect", runs, {}))
    assert "lr 1 was unstable: test accuracy fell from 85.0 % (epoch 2) to 78.0 %" in said


@pytest.mark.parametrize("last, rising", [(71.0, True), (69.0, False)])
def test_lr_effect_calls_a_small_rate_slow_only_while_it_still_rises(make_outcome, last, rising):
    runs = [make_outcome(lr=0.1, accs=[80.0, 84.0, 86.0]), make_outcome(lr=0.001, accs=[50.0, 70.0, last])]
    said = text(observe("lr_effect", runs, {}))
    assert ("still rising, so slower" in said) is rising


def test_lr_effect_names_ties(make_outcome):
    runs = [make_outcome(lr=0.1, accs=[86.0, 87.0]), make_outcome(lr=0.01, accs=[85.0, 87.0]),
            make_outcome(lr=1.0, accs=[80.0, 82.0])]
    assert "lr 0.1 and 0.01 tie for the best (87.0 %)" in text(observe("lr_effect", runs, {}))


def test_lr_effect_single_rate_says_so(make_outcome):
    assert "Only one learning rate" in text(observe("lr_effect", [make_outcome()], {}))


@pytest.mark.parametrize("bn_at_1, less_sensitive", [(84.1, "BN MLP"), (5.0, "Tutorial MLP")])
def test_lr_effect_compares_the_families(make_outcome, bn_at_1, less_sensitive):
    runs = [make_outcome(model="mlp", lr=1.0, accs=[10.0, 10.0], stop_reason="stuck at chance"),
            make_outcome(model="mlp", lr=0.1, accs=[85.0, 87.3]),
            make_outcome(model="bn_mlp", lr=1.0, accs=[80.0, bn_at_1]),
            make_outcome(model="bn_mlp", lr=0.1, accs=[85.0, 86.9])]
    said = text(observe("lr_effect", runs, {}))
    assert "For Tutorial MLP, the larger lr 1 got stuck at chance at epoch 2, ending at 10.0 %." in said
    assert f"{less_sensitive} is less sensitive to the rate" in said


@pytest.mark.parametrize("fast_lr, slow_lr", [(0.1, 0.01), (0.01, 0.1)])
def test_lr_effect_ranks_rates_by_epochs_to_target(make_outcome, fast_lr, slow_lr):
    runs = [make_outcome(lr=fast_lr, accs=[80.0, 86.0], until_accuracy=85.0, stop_reason="target reached"),
            make_outcome(lr=slow_lr, accs=[70.0, 80.0, 84.0, 85.5], until_accuracy=85.0, stop_reason="target reached"),
            make_outcome(lr=1.0, accs=[10.0, 10.0], until_accuracy=85.0, stop_reason="stuck at chance")]
    said = text(observe("lr_effect", runs, {}))
    assert f"target came soonest at lr {fmt_lr(fast_lr)} (epoch 2)" in said
    assert f"lr {fmt_lr(slow_lr)} at epoch 4" in said and "lr 1 never (best 10.0 %; stuck at chance" in said


# ---------------------------------------------------------------- divergence

def test_divergence_none(make_outcome):
    runs = [make_outcome(lr=0.1, accs=[80.0, 87.0]), make_outcome(lr=0.01, accs=[70.0, 83.4])]
    assert observe("divergence", runs, {}) == [
        "No run diverged or ended at chance level (lowest: Tutorial MLP, lr 0.01, 83.4 %)."]


def test_divergence_names_the_run_and_epoch(make_outcome):
    runs = [make_outcome(lr=1.0, accs=[10.0, 10.0, 10.0], train_losses=[2.3, 2.5, NAN], test_losses=[2.3, 2.4, NAN],
                         stop_reason="diverged"),
            make_outcome(lr=0.1, accs=[80.0, 87.0, 88.0])]
    said = text(observe("divergence", runs, {}))
    assert "Tutorial MLP, lr 1 diverged at epoch 3" in said and "last training loss NaN" in said
    assert "lr 0.1" not in said


def test_divergence_reports_a_collapse_to_chance(make_outcome):
    runs = [make_outcome(lr=1.0, accs=[60.0, 30.0, 10.5]), make_outcome(lr=0.1, accs=[80.0, 87.0, 88.0])]
    assert "fell to chance level: 60.0 % at epoch 1, then 10.5 % at epoch 3" in text(observe("divergence", runs, {}))


# ---------------------------------------------------------------- overfitting

def test_overfitting_reported_when_test_loss_rises_and_train_loss_falls(make_outcome):
    run = make_outcome(accs=[80.0, 84.0, 85.0, 85.0], train_losses=[0.6, 0.4, 0.3, 0.2],
                       test_losses=[0.50, 0.40, 0.45, 0.52])
    said = text(observe("overfitting", [run], {}))
    assert said == ("Overfitting (test loss up from its minimum to the last epoch, training loss down): "
                    "Tutorial MLP 0.400 (epoch 2) → 0.520 (+30 %).")


def test_overfitting_not_reported_when_test_loss_keeps_falling(make_outcome):
    run = make_outcome(accs=[80.0, 84.0, 85.0, 85.0], train_losses=[0.6, 0.4, 0.3, 0.2],
                       test_losses=[0.50, 0.40, 0.38, 0.37])
    said = text(observe("overfitting", [run], {}))
    assert said.startswith("No run overfits") and "Overfitting" not in said


def test_overfitting_rising_train_loss_is_instability(make_outcome):
    run = make_outcome(accs=[80.0, 84.0, 80.0], train_losses=[0.6, 0.4, 0.7], test_losses=[0.5, 0.4, 0.8])
    said = text(observe("overfitting", [run], {}))
    assert "No run overfits" in said and "instability, not overfitting" in said


def test_overfitting_leaves_out_nan_runs(make_outcome):
    runs = [make_outcome(lr=1.0, accs=[10.0, 10.0], train_losses=[2.3, NAN], test_losses=[2.3, NAN],
                         stop_reason="diverged"), make_outcome(lr=0.1)]
    said = text(observe("overfitting", runs, {}))
    assert "Left out, with non-finite losses or a single epoch: Tutorial MLP, lr 1." in said


# ---------------------------------------------------------------- convergence

@pytest.mark.parametrize("fast, slow", [("bn_mlp", "mlp"), ("mlp", "bn_mlp")])
def test_convergence_ranks_epochs_to_target(make_outcome, fast, slow):
    runs = [make_outcome(model=fast, accs=[86.0], until_accuracy=85.0, stop_reason="target reached"),
            make_outcome(model=slow, accs=[80.0, 83.0, 85.5], until_accuracy=85.0, stop_reason="target reached"),
            make_outcome(model="cnn", accs=[80.0, 80.5], until_accuracy=85.0, stop_reason="plateau")]
    said = text(observe("convergence", runs, {}))
    assert f"Fastest to 85.0 %: {make_outcome(model=fast).planned.labels['model_label']} (epoch 1)" in said
    assert f"slowest: {make_outcome(model=slow).planned.labels['model_label']} (epoch 3)" in said
    assert "Never reached 85.0 %: Small CNN (best 80.5 %, stopped after 2 epochs: plateau)" in said


def test_convergence_without_target_uses_nearness_to_best(make_outcome):
    runs = [make_outcome(model="cnn", accs=[85.0, 88.0, 88.5, 88.6]),
            make_outcome(model="mlp", accs=[70.0, 78.0, 82.0, 85.0]),
            make_outcome(model="mlp_wide", accs=[10.0, 10.0, 10.0, 10.0])]
    said = text(observe("convergence", runs, {}))
    assert ("First epoch within 1 point of its best, of 4 (in brackets: accuracy after epoch 1): Small CNN 2 (85.0 %), "
            "Tutorial MLP 4 (70.0 %); after epoch 1 Small CNN leads Tutorial MLP by +15.0 points, single runs.") in said
    assert "Left out because they diverged or stayed at chance level: Wider MLP" in said


# ---------------------------------------------------------------- gradient_trend

def test_gradient_trend_fluctuating_mean(make_outcome):
    probes = {"grad_mean": [(-1) ** i * 1e-4 for i in range(100)], "grad_norm": [2.0 - 0.01 * i for i in range(100)]}
    said = text(observe("gradient_trend", [make_outcome(probes=probes)], {"steps": 100}))
    assert "fluctuates around zero" in said and "gradient norm decreases (1.96 → 1.06)" in said


def test_gradient_trend_shrinking_and_growing_mean(make_outcome):
    down = text(observe("gradient_trend", [make_outcome(probes={"grad_mean": [1e-3 * 0.95 ** i for i in range(50)]})], {}))
    up = text(observe("gradient_trend", [make_outcome(probes={"grad_mean": [1e-3 * 1.05 ** i for i in range(50)]})], {}))
    assert "magnitude decreases" in down and "magnitude increases" in up


def test_gradient_trend_without_probes(make_outcome):
    assert observe("gradient_trend", [make_outcome()], {}) == ["Tutorial MLP: no gradient probes were recorded."]


# ---------------------------------------------------------------- capacity, efficiency, activations, claims

@pytest.mark.parametrize("wide_acc, best", [(87.0, "Wider MLP"), (84.0, "Deeper MLP")])
def test_capacity_names_the_most_accurate_variant(make_outcome, wide_acc, best):
    runs = [make_outcome(model="mlp", accs=[85.5], params=669_706),
            make_outcome(model="mlp_wide", accs=[wide_acc], params=1_863_690),
            make_outcome(model="mlp_deep", accs=[86.0], params=932_362)]
    said = text(observe("capacity", runs, {"groups": ["mlp,mlp_wide,mlp_deep"]}))
    assert f"The most accurate is {best}" in said
    assert "Wider MLP at 2.78× the parameters: " in said and "Deeper MLP at 1.39× the parameters: " in said


def test_capacity_baseline_best_and_missing_variant(make_outcome):
    runs = [make_outcome(model="mlp", accs=[88.0], params=100), make_outcome(model="mlp_wide", accs=[86.0], params=300)]
    said = text(observe("capacity", runs, {"groups": ["mlp,mlp_wide,mlp_deep"]}))
    assert "No variant beats the baseline" in said and "Not measured: mlp_deep." in said


@pytest.mark.parametrize("cnn_acc, cnn_params, lean", [(81.2, 421_642, "Small CNN"), (78.0, 2_000_000, "Tutorial MLP")])
def test_param_efficiency_flips(make_outcome, cnn_acc, cnn_params, lean):
    runs = [make_outcome(model="mlp", accs=[78.5], params=669_706, seconds=3.0),
            make_outcome(model="cnn", accs=[cnn_acc], params=cnn_params, seconds=6.0)]
    said = text(observe("param_efficiency", runs, {"pairs": ["mlp,cnn"]}))
    assert f"{lean} is the more parameter-efficient" in said
    assert "takes 2.00× the time per epoch of Tutorial MLP" in said
    assert len(observe("param_efficiency", runs, {"pairs": ["mlp,cnn"]})) == 1  # gap, efficiency, speed: one finding


@pytest.mark.parametrize("sigmoid, best, worst", [(97.0, "Model A (ReLU)", "Model A (Sigmoid)"),
                                                  (99.0, "Model A (Sigmoid)", "Model A (Tanh)")])
def test_activation_effect_best_and_worst_flip(make_outcome, sigmoid, best, worst):
    runs = [make_outcome(model="model_a", accs=[97.0, 98.5]), make_outcome(model="model_a_sigmoid", accs=[91.0, sigmoid]),
            make_outcome(model="model_a_tanh", accs=[97.5, 98.1])]
    from reportgen.analysis.observations import answer

    assert text(answer("activation_effect", runs, {})).startswith(f"{best} is the most accurate")
    said = text(observe("activation_effect", runs, {}))
    assert f"Lowest at the end: {worst} at " in said
    assert "after the first epoch Model A (Tanh) led and Model A (Sigmoid) trailed by 6.5 points" in said


@pytest.mark.parametrize("b_params, verdict", [(52_138, "contradicts"), (150_000, "confirms")])
def test_param_claim_true_and_false(make_outcome, b_params, verdict):
    runs = [make_outcome(model="model_a", params=101_146), make_outcome(model="model_b", params=b_params)]
    args = {"larger": "model_b", "smaller": "model_a", "claim_source": "the lab's prose"}
    said = text(observe("param_claim", runs, args))
    assert said.startswith("The lab's prose says Model B has more trainable parameters than Model A (ReLU)")
    assert f"the measurement {verdict} it" in said and "101,146" in said and f"{b_params:,}" in said


def test_param_claim_missing_model(make_outcome):
    said = text(observe("param_claim", [make_outcome(model="model_a")], {"larger": "model_b", "smaller": "model_a"}))
    assert "cannot be checked: model_b not measured" in said


def test_param_efficiency_compares_times_only_of_runs_from_groups_of_one_size(make_outcome):
    from dataclasses import replace

    mlp = make_outcome(model="mlp", accs=[78.5], params=669_706, seconds=1.0)
    cnn = make_outcome(model="cnn", accs=[81.2], params=421_642, seconds=6.0)
    assert "6.00× the time per epoch" in text(observe("param_efficiency", [mlp, cnn], {"pairs": ["mlp,cnn"]}))
    grouped = replace(mlp, result=replace(mlp.result, machine={"group_size": 3}))  # its 1.0 s is a third of 3.0 s
    said = text(observe("param_efficiency", [grouped, cnn], {"pairs": ["mlp,cnn"]}))
    assert "time per epoch" not in said and "more parameter-efficient" in said


def test_the_mean_of_seeds_keeps_what_their_machine_records_agree_on(make_outcome):
    from dataclasses import replace

    from reportgen.analysis.aggregate import mean_result

    runs = [make_outcome(accs=[80.0 + seed]).result for seed in range(3)]
    machines = [{"group_size": 3, "processor": "EPYC", "torch_threads": 1 + (seed == 2)} for seed in range(3)]
    mean = mean_result([replace(r, machine=m) for r, m in zip(runs, machines)])
    assert mean.machine == {"group_size": 3, "processor": "EPYC"}
    assert mean_result(runs).machine is None
