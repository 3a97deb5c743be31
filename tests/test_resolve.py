"""Seeds until resolved (reportgen/resolve.py): the design's looks, the loop's stopping rule and determinism, the
error rate of its sequential looks on null data, and one `build --resolve` end to end on tiny real runs."""
from __future__ import annotations

import json
import re
import random

import pytest
from typer.testing import CliRunner

from reportgen.analysis.stats import AHEAD, ALPHA, EQUIVALENT, UNRESOLVED, compare
from reportgen.cli import app
from reportgen.errors import SpecError
from reportgen.plan import SeedPlan, following_seeds, setting_key
from reportgen.resolve import Design, OpenClaim, design_for, resolve, seeds_per_setting
from reportgen.results import Budget, PlannedRun, RunOutcome
from reportgen.results_file import read_results
from reportgen.spec import load_spec
from tests.conftest import SHUFFLED_PROTOCOL


# ---------------------------------------------------------------- the design

@pytest.mark.parametrize("planned, cap, step, looks", [(3, 6, 3, 2), (3, 7, 2, 3), (2, 4, 1, 3), (5, 10, 5, 2),
                                                       (3, 3, 3, 1)])
def test_the_looks_are_fixed_by_the_design_before_any_number_is_seen(planned, cap, step, looks):
    assert Design(planned, cap, step).looks == looks


def test_a_missing_or_too_low_cap_is_an_error_that_says_where_to_set_it(tmp_path):
    (tmp_path / "e.toml").write_text(SPEC.replace("max_seeds = 4\nseeds_per_stage = 2\n", ""))
    spec = load_spec(tmp_path / "e.toml")
    with pytest.raises(SpecError, match=r"max_seeds.*\[profiles\.smoke\].*--max-seeds"):
        design_for(spec, "smoke", planned=2)
    with pytest.raises(SpecError, match="not above the 3 seeds"):
        design_for(spec, "smoke", planned=3, cap=3)
    assert design_for(spec, "smoke", planned=3, cap=6) == Design(3, 6, 3)  # seeds_per_stage defaults to 3


def test_added_seeds_follow_the_planned_ones_and_stop_at_the_cap():
    assert following_seeds([0, 1, 2], 3) == [3, 4, 5] and following_seeds([4, 9], 1) == [10]
    plan = SeedPlan(None).adding(["a", "b"], 3, 5, {"a": 3, "b": 2})
    assert plan.added == {"a": 2, "b": 3}  # a would pass the cap of 5 with 3 more
    assert plan.adding(["a"], 3, 5, {"a": 5}).added["a"] == 2  # at the cap: nothing more


# ---------------------------------------------------------------- the loop, on synthetic settings

def _outcomes(plan: SeedPlan, settings: list[str], planned: int) -> dict[str, list[RunOutcome]]:
    """Runs of each setting over its planned seeds and the ones `plan` added (the real planner's rule)."""
    runs = []
    for name in settings:
        request = {"setting": name, "seed": 0}
        seeds = list(range(planned))
        seeds += following_seeds(seeds, plan.added.get(setting_key(request), 0))
        runs += [RunOutcome(PlannedRun("q", f"{name}-{s}", request | {"seed": s}, Budget(1), {}), None) for s in seeds]
    return {"q": runs}


def _judge_pairs(values, margin: float, level: float, record: list[str]):
    """Every pair of settings compared at `level` (Welch, each over its own draws); the open ones as claims."""
    def judge(outcomes):
        seeds = {}
        for o in outcomes["q"]:
            seeds.setdefault(o.planned.request["setting"], []).append(o.planned.request["seed"])
        names, found = sorted(seeds), []
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                c = compare([values(a, s) for s in seeds[a]], [values(b, s) for s in seeds[b]], level, margin)
                record.append(c.verdict)
                if c.verdict == UNRESOLVED:
                    keys = frozenset(setting_key({"setting": n, "seed": 0}) for n in (a, b))
                    found.append(OpenClaim("q", f"{a} vs {b}", keys))
        return found
    return judge


def test_resolve_stops_at_the_cap_and_adds_the_same_seeds_every_time():
    design, settings = Design(3, 7, 2), ["a", "b", "c"]
    noisy = lambda name, seed: random.Random(f"{name}/{seed}").gauss(0, 5)  # far too noisy to resolve

    def run_once():
        measured: list[SeedPlan] = []

        def measure(plan):
            measured.append(plan)
            return _outcomes(plan, settings, design.planned)
        resolution, outcomes = resolve(design, SeedPlan(), measure, _judge_pairs(noisy, 0.5, 0.99, []))
        return resolution, outcomes, measured

    resolution, outcomes, measured = run_once()
    assert len(measured) == len(resolution.looks) == design.looks == 3
    assert set(seeds_per_setting(outcomes).values()) == {7}  # 3, then 5, then the cap
    assert resolution.looks[-1].open and "at the cap" in resolution.stopped_because
    again, _, _ = run_once()
    assert again.plan == resolution.plan and again.to_dict() == resolution.to_dict()


def test_resolve_grows_only_the_settings_of_open_claims_and_stops_when_none_is_open():
    design, settings = Design(3, 7, 2), ["a", "b", "c"]
    # a and b: 10 points apart with little noise; c vs a/b: resolved too. Nothing is open at the first look.
    means = {"a": 90.0, "b": 80.0, "c": 70.0}
    values = lambda name, seed: means[name] + random.Random(f"{name}/{seed}").gauss(0, 0.5)
    resolution, outcomes = resolve(design, SeedPlan(), lambda plan: _outcomes(plan, settings, 3),
                                   _judge_pairs(values, 0.5, 1 - ALPHA / 3, []))
    assert len(resolution.looks) == 1 and not resolution.plan.added
    assert resolution.stopped_because == "every answer claim is resolved"

    # d sits on top of a: their claim stays open, and only a and d get seeds.
    means["d"] = 90.0
    resolution, outcomes = resolve(design, SeedPlan(), lambda plan: _outcomes(plan, settings + ["d"], 3),
                                   _judge_pairs(values, 0.01, 1 - ALPHA / 6, []))
    seeds = {o.planned.request["setting"]: 0 for o in outcomes["q"]}
    for o in outcomes["q"]:
        seeds[o.planned.request["setting"]] += 1
    assert seeds == {"a": 7, "b": 3, "c": 3, "d": 7}
    assert all(reason == ["a vs d"] for reason in resolution.reasons.values()) and len(resolution.reasons) == 2


def test_looking_again_does_not_inflate_the_error_rate_on_null_data():
    """Four settings drawn from one distribution, 3 seeds then up to 9 in stages of 3 (3 looks), every pair judged
    at 1 − α/(m · looks): across many repetitions, at most α of them ever call any pair ahead, at any look."""
    design, settings, m = Design(3, 9, 3), ["a", "b", "c", "d"], 6
    level = 1 - ALPHA / (m * design.looks)
    repetitions, wrong = 300, 0
    for rep in range(repetitions):
        values = lambda name, seed, rep=rep: random.Random(f"{rep}/{name}/{seed}").gauss(85.0, 1.0)
        verdicts: list[str] = []
        resolve(design, SeedPlan(), lambda plan: _outcomes(plan, settings, 3), _judge_pairs(values, 0.5, level, verdicts))
        wrong += AHEAD in verdicts
    assert wrong / repetitions <= ALPHA
    # The correction is what holds it: judged at 95 % per comparison and look, the same data err far more often.
    naive = 0
    for rep in range(repetitions):
        values = lambda name, seed, rep=rep: random.Random(f"{rep}/{name}/{seed}").gauss(85.0, 1.0)
        verdicts = []
        resolve(design, SeedPlan(), lambda plan: _outcomes(plan, settings, 3), _judge_pairs(values, 0.5, 0.95, verdicts))
        naive += AHEAD in verdicts
    assert naive / repetitions > 2 * ALPHA


def test_a_tight_pair_resolves_as_equivalent_once_seeds_are_added():
    design, settings = Design(2, 8, 3), ["a", "b"]
    values = lambda name, seed: 85.0 + random.Random(f"{name}/{seed}").gauss(0, 0.15)
    verdicts: list[str] = []
    resolution, _ = resolve(design, SeedPlan(), lambda plan: _outcomes(plan, settings, 2),
                            _judge_pairs(values, 0.5, 1 - ALPHA / design.looks, verdicts))
    assert verdicts[0] == UNRESOLVED and verdicts[-1] == EQUIVALENT and len(resolution.looks) > 1


# ---------------------------------------------------------------- end to end

SPEC = """
title = "resolve"
""" + SHUFFLED_PROTOCOL + """
[models.m]
arch = "mlp"
label = "MLP"
args = { hidden = [32] }

[profiles.smoke]
description = "tiny"
seeds = 2
max_seeds = 4
seeds_per_stage = 2

[questions.rates]
part = "P"
title = "Three rates"
prompt = "Which rate is best?"
protocol = "p"
runs = [{ model = "m", lr = [0.1, 0.09, 0.02] }]
observers = [{ kind = "lr_effect" }]
"""


@pytest.fixture(scope="module")
def resolved(tmp_path_factory, data_dir):
    root = tmp_path_factory.mktemp("resolve")
    spec = root / "experiments.toml"
    spec.write_text(SPEC)
    args = ["--spec", str(spec), "--profile", "smoke", "--device", "cpu", "--cache-dir", str(root / "cache"),
            "--data-dir", str(data_dir)]
    first = CliRunner().invoke(app, ["build", *args, "--out", str(root / "a"), "--no-pdf", "--resolve"])
    assert first.exit_code == 0, first.output
    again = CliRunner().invoke(app, ["build", *args, "--out", str(root / "b"), "--no-pdf", "--resolve"])
    assert again.exit_code == 0, again.output
    plan = CliRunner().invoke(app, ["plan", *args, "--resolve"], terminal_width=200)
    assert plan.exit_code == 0, plan.output
    return root, first.output, again.output, plan.output


def test_build_resolve_adds_seeds_only_for_open_answer_claims_and_says_why(resolved):
    root, output, _, _ = resolved
    doc = read_results(root / "a")
    record = doc["provenance"]["resolve"]
    assert record["cap"] == 4 and record["looks_allowed"] == 2 and 1 <= len(record["looks"]) <= 2
    opened = record["looks"][0]["open_claims"]
    assert "Look 1:" in output
    comparisons = doc["questions"]["rates"]["comparisons"]
    assert all(c["level"] == pytest.approx(1 - ALPHA / (3 * 2)) for c in comparisons)  # 3 pairs, 2 looks
    if opened:  # the seeds went to the settings of the open claims, with the claim as the reason
        assert record["added"] and all(row["because"] and row["seeds"] == 4 for row in record["added"])
        assert max(len(c["seeds_a"]) for c in comparisons) == 4
    else:
        assert not record["added"] and record["stopped_because"] == "every answer claim is resolved"
    html = (root / "a" / "report.html").read_text(encoding="utf-8")
    assert "Seeds until resolved (--resolve)" in html and 'id="resolve"' in html


def test_build_resolve_again_trains_nothing_and_writes_the_same_numbers(resolved):
    root, _, again, _ = resolved
    assert "0 to train" in again and "Trained" not in again
    a, b = (json.loads((root / side / "results.json").read_text()) for side in ("a", "b"))
    assert a["questions"] == b["questions"]
    assert a["provenance"]["resolve"]["added"] == b["provenance"]["resolve"]["added"]


def test_plan_resolve_gives_the_worst_case_and_the_next_stage(resolved):
    _, _, _, plan = resolved
    assert "--resolve: up to 4 seeds per setting, 2 per stage: at most 2 looks." in plan
    assert re.search(r"At most [0-6] more runs", plan) and "if every setting an answer compares goes to 4 seeds" in plan
    assert "answer claim" in plan
