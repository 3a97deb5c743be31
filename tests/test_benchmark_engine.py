"""benchmarks/engine.py still imports and runs its lockstep sections (it timed modules that were removed
once, and nothing noticed): the groups section and its bit-identity check, on a few steps."""
from __future__ import annotations

from dataclasses import replace

import pytest

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
    engine.measure_groups(report, TINY, splits, ceiling=100.0)
    for family in engine.GROUP_FAMILIES:
        rows = [row for row in report.rows if row.section == f"groups: {family}"]
        assert [round(row.vs_lone, 6) for row in rows[:1]] == [1.0]
        assert all(row.value and row.value > 0 and row.unit == "run-samples/s" for row in rows)
    assert [row.vs_ceiling is not None for row in report.rows][:3] == [True] * 3  # the plain MLP's rows
    assert len(report.checks) == len(engine.GROUP_FAMILIES)
    assert all(check["identical"] and check["pass"] for check in report.checks)
    assert "identical" in engine._format_check(report.checks[0])
    assert "DIFFERS (lr 1 seed 1)" in engine._format_check(report.checks[0] | {"identical": False, "differs": ["lr 1 seed 1"]})


def test_lone_mlp_engine_is_the_lockstep_path(splits):
    request = engine.make_request("mlp", {"hidden": [512, 512]}, None)
    group = engine.make_group([request])
    picked, _ = engine.group_train(group, engine.subset(splits, "mlp", {"hidden": [512, 512]}, 2))
    assert group.size == 1 and tuple(picked.shape) == (2, 1, engine.BATCH)
