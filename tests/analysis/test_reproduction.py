"""The reproduction check: verdicts, reasons and labels against synthetic outcomes."""
import pytest

from reportgen.analysis.reproduction import Check, check_references
from reportgen.spec import Reference


def ref(metric: str = "final_accuracy", value=87.3, tolerance: float = 2.0, **select) -> Reference:
    return Reference(select=select or {"model": "mlp", "lr": 0.1}, metric=metric, value=value,
                     tolerance=tolerance, unit="%", source="seed.txt:1")


def check_one(reference: Reference, outcomes, profile: str = "full") -> Check:
    [check] = check_references("q1.2", [reference], outcomes, profile)
    return check


@pytest.mark.parametrize("final, verdict", [(86.0, "within tolerance"), (84.0, "outside tolerance")])
def test_accuracy_verdict_flips_with_the_measurement(make_outcome, final, verdict):
    check = check_one(ref(), [make_outcome(lr=0.1, accs=[80.0, final])])
    assert (check.verdict, check.measured) == (verdict, final)
    assert check.difference == pytest.approx(final - 87.3)
    assert check.label == "Tutorial MLP, lr 0.1" and check.source == "seed.txt:1" and check.unit == "%"
    expected = "" if verdict == "within tolerance" else "single-seed reference; seed and initialisation differ"
    assert check.reason == expected


def test_tolerance_edge_counts_as_within(make_outcome):
    assert check_one(ref(), [make_outcome(lr=0.1, accs=[85.3])]).verdict == "within tolerance"


def test_select_compares_numbers_as_floats(make_outcome):
    check = check_one(ref(model="mlp", lr=1), [make_outcome(lr=1.0, accs=[10.0]), make_outcome(lr=0.1, accs=[87.0])])
    assert check.measured == 10.0 and check.label == "Tutorial MLP, lr 1"


def test_the_matching_run_is_chosen(make_outcome):
    outcomes = [make_outcome(model="bn_mlp", lr=0.1, accs=[50.0]), make_outcome(model="mlp", lr=0.1, accs=[87.0])]
    assert check_one(ref(), outcomes).measured == 87.0


def test_not_measured_when_missing_or_unmatched(make_outcome):
    missing = check_one(ref(), [make_outcome(lr=0.1, missing=True)])
    unmatched = check_one(ref(), [make_outcome(lr=0.01)])
    assert missing.verdict == unmatched.verdict == "not measured"
    assert missing.measured is None and missing.reason == "the run is not in the cache"
    assert unmatched.label == "model = mlp, lr = 0.1" and "no run" in unmatched.reason


@pytest.mark.parametrize("accs, until, expected", [
    ([10.0, 10.0], 85.0, "within tolerance"),          # "not reached" on both sides
    ([80.0, 86.0], 85.0, "outside tolerance"),         # we reached it at epoch 2
    ([80.0, 86.0], None, "not measured"),              # no target: the metric is undefined
])
def test_not_reached_reference(make_outcome, accs, until, expected):
    stop = "stuck at chance" if accs[-1] < 85 else "target reached"
    outcome = make_outcome(lr=1.0, accs=accs, until_accuracy=until, stop_reason=stop)
    check = check_one(ref(metric="epochs_to_target", value="not reached", model="mlp", lr=1.0), [outcome])
    assert check.verdict == expected and check.difference is None


@pytest.mark.parametrize("epochs, verdict", [(5, "within tolerance"), (9, "outside tolerance")])
def test_epochs_to_target(make_outcome, epochs, verdict):
    accs = [80.0] * (epochs - 1) + [85.5]
    outcome = make_outcome(lr=0.1, accs=accs, until_accuracy=85.0, stop_reason="target reached")
    check = check_one(ref(metric="epochs_to_target", value=5, tolerance=2), [outcome])
    assert (check.measured, check.verdict, check.difference) == (epochs, verdict, epochs - 5)


def test_reference_reached_but_we_did_not(make_outcome):
    outcome = make_outcome(lr=0.1, accs=[80.0, 81.0], until_accuracy=85.0, stop_reason="plateau")
    check = check_one(ref(metric="epochs_to_target", value=5, tolerance=2), [outcome])
    assert check.measured == "not reached" and check.verdict == "outside tolerance"
    assert "our run stopped: plateau" in check.reason


def test_params_mismatch_reason(make_outcome):
    check = check_one(ref(metric="params", value=669706, tolerance=0, model="mlp"), [make_outcome(params=669707)])
    assert check.verdict == "outside tolerance" and check.reason == "architecture differs from the reference"
    assert check.label == "Tutorial MLP"


def test_params_exact_match(make_outcome):
    check = check_one(ref(metric="params", value=669706, tolerance=0, model="mlp"), [make_outcome(params=669706)])
    assert check.verdict == "within tolerance" and check.difference == 0


def test_smoke_profile_reason(make_outcome):
    outcome = make_outcome(lr=0.1, accs=[40.0, 55.0], overlays=("train_subset = 512, max_epochs = 2",))
    check = check_one(ref(), [outcome], profile="smoke")
    assert check.reason == "smoke profile: tiny subset and 2 epochs, not comparable"


def test_overlay_reason(make_outcome):
    outcome = make_outcome(lr=0.1, accs=[40.0, 55.0, 60.0], overlays=("epochs = 3 (CPU budget)",))
    check = check_one(ref(), [outcome], profile="cpu")
    assert check.reason == "profile changed the protocol: epochs = 3 (CPU budget)"


def test_one_check_per_reference_in_order(make_outcome):
    refs = [ref(value=87.3), ref(metric="params", value=5, tolerance=0)]
    checks = check_references("q1.2", refs, [make_outcome(lr=0.1, params=5)], "full")
    assert [c.metric for c in checks] == ["final_accuracy", "params"] and all(c.question == "q1.2" for c in checks)
