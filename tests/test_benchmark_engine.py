"""benchmarks/engine.py still imports and runs its lockstep sections (it timed modules that were removed
once, and nothing noticed): the groups section and its bit-identity check, on a few steps."""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from benchmarks import engine
from reportgen.data import load_split


@pytest.fixture(scope="module")
def splits(data_dir):
    return load_split("fashion-mnist", True, data_dir), load_split("fashion-mnist", False, data_dir)


TINY = replace(engine.QUICK, steps=2, repeats=1, variant_repeats=1, identity_steps=3)


def test_sections_and_help():
    assert "groups" in engine.SECTIONS and "sweep" not in engine.SECTIONS
    assert engine.parse_args(["--quick", "--sections", "groups"]).sections == "groups"


def test_groups_section_rows_and_identity_check(splits):
    report = engine.Report()
    engine.measure_groups(report, TINY, splits)
    for family in engine.GROUP_FAMILIES:
        rows = [row for row in report.rows if row.section == f"groups: {family}, 1 thread"]
        assert [round(row.vs_lone, 6) for row in rows[:1]] == [1.0]
        assert all(row.value and row.value > 0 and row.unit == "run-samples/s" for row in rows)
        assert all(row.vs_ceiling is not None for row in rows if row.name.startswith(("lone", "group")))
        bound = next(row for row in rows if row.name.startswith("bound"))
        assert f"{bound.vs_lone:.2f}x lone" in bound.note  # the ceiling's cap on any group, as measured
    assert len(report.checks) == len(engine.GROUP_FAMILIES)
    assert all(check["identical"] and check["pass"] for check in report.checks)
    assert "identical" in engine._format_check(report.checks[0])
    assert "DIFFERS (lr 1 seed 1)" in engine._format_check(report.checks[0] | {"identical": False, "differs": ["lr 1 seed 1"]})


def test_cnn_groups_section_measures_every_family_stacked_and_alone(splits):
    report = engine.Report()
    engine.measure_cnn_groups(report, replace(TINY, cnn_steps=2), splits)
    for family in engine.CNN_FAMILIES:
        lone, stacked = [row for row in report.rows if row.section == f"cnn groups: {family}, 1 thread"]
        assert lone.vs_lone == 1.0 and stacked.value > 0 and stacked.vs_lone > 0


def test_stacked_runs_train_each_run_as_its_own_model(splits):
    """The benchmark's vmapped group is a fair competitor: each stacked run takes the steps its lone
    run takes (to float tolerance: grouped convolutions round differently)."""
    request = engine.make_request("lab_model_a", {}, None, 1e-3) | {"optimizer": "adam"}
    data = engine.subset(splits, "lab_model_a", {}, 3)
    stacked = engine.StackedRuns([request | {"seed": seed} for seed in (0, 1)])
    stacked.train(data, 3)
    alone = engine.engine_state(request | {"seed": 1})
    engine.engine_train(alone, data, request | {"seed": 1})
    for name, value in alone.model.named_parameters():
        assert torch.allclose(stacked.params[name][1], value, atol=1e-5), name


def test_lone_mlp_engine_is_the_lockstep_path(splits):
    request = engine.make_request("mlp", {"hidden": [512, 512]}, None)
    group = engine.make_group([request])
    picked, _ = engine.group_train(group, engine.subset(splits, "mlp", {"hidden": [512, 512]}, 2))
    assert group.size == 1 and tuple(picked.shape) == (2, 1, engine.BATCH)
