"""The check behind lockstep groups: which stacked operations give every run its lone bits on this
machine, and the run-by-run fallback where one does not. What the BLAS does here is not asserted
(that differs between CPUs: benchmarks/stacking.py reports it); what the engine does about it is."""
from __future__ import annotations

import pytest
import torch

from reportgen import stacked_ops, train
from reportgen.lockstep import Group, Member
from reportgen.stacked_ops import Stacking, Use, mlp_uses, plan_stacking, product_chunks, use_holds
from tests.test_lockstep import FAMILIES, assert_identical, make_request, train_group

SMALL = Use("forward", 16, 24, 10)


def test_products_are_batched_in_multiples_of_the_thread_count_and_leftovers_alone():
    assert product_chunks(1, threads=2) == [slice(0, 1)]
    assert product_chunks(3, threads=2) == [slice(0, 2), slice(2, 3)]
    assert product_chunks(12, threads=2) == [slice(0, 12)]
    assert product_chunks(5, threads=4) == [slice(0, 4), slice(4, 5)]
    assert product_chunks(2, threads=4) == [slice(0, 1), slice(1, 2)]
    assert product_chunks(3, device="cuda") == [slice(0, 3)]  # the whole stack, where the check passes


def test_the_uses_of_an_mlp_cover_every_product_and_batch_sum_it_takes():
    uses = mlp_uses([784, 48, 10], train_rows={64, 44}, test_rows={50}, shuffled=False)
    assert Use("forward", 64, 784, 48, shared_input=True) in uses  # data-set order: one batch for all runs
    assert Use("weight update", 44, 784, 48, shared_input=True) in uses
    assert Use("input gradient", 64, 48, 10) in uses and Use("input gradient", 64, 784, 48) not in uses
    assert Use("batch sum", 44, 0, 48) in uses and Use("batch sum", 64, 0, 10) in uses
    assert Use("forward", 50, 784, 48, shared_input=True) in uses and Use("weight update", 50, 784, 48) not in uses
    shuffled = mlp_uses([784, 48, 10], train_rows={64}, test_rows={50}, shuffled=True)
    assert Use("forward", 64, 784, 48) in shuffled  # each run gathers its own batch


def test_the_check_passes_where_every_slice_equals_its_lone_result():
    stacking = plan_stacking(3, [SMALL, Use("batch sum", 16, 0, 10)], threads=1)
    holds = use_holds(SMALL, 3, ((0, 3),), "cpu", 1)
    assert (stacking.chunks == [slice(0, 3)]) == holds  # stacked exactly where the check says so


def test_a_slice_that_differs_in_one_bit_makes_the_group_fall_back_and_say_where(monkeypatch):
    real_bmm = Stacking.bmm

    def last_bit_off_when_stacked(self, a, b, bias=None):
        out = real_bmm(self, a, b, bias)
        if any(part.stop - part.start > 1 for part in self.chunks):
            out[-1].view(torch.int32)[0, 0] ^= 1  # the last run's first element, one ulp off
        return out

    monkeypatch.setattr(Stacking, "bmm", last_bit_off_when_stacked)
    use_holds.cache_clear()
    try:
        stacking = plan_stacking(3, [SMALL, Use("weight update", 16, 24, 10)], threads=1)
    finally:
        use_holds.cache_clear()
    assert stacking.chunks == [slice(0, 1), slice(1, 2), slice(2, 3)]
    assert stacking.stacked_sums
    (note,) = stacking.fallbacks
    assert "forward 16×24 · 24×10" in note and "weight update" not in note and "run by run" in note
    assert "cpu, 1 thread, 3 runs" in note


def test_a_lone_run_checks_nothing():
    assert plan_stacking(1, [SMALL]) == Stacking(1, [slice(0, 1)])


@pytest.fixture
def nothing_stacks(monkeypatch):
    """A machine on which no stacked product or batch sum gives the lone bits."""
    monkeypatch.setattr(stacked_ops, "use_holds", lambda use, runs, chunks, device, threads:
                        all(stop - start == 1 for start, stop in chunks) if chunks else False)


@pytest.fixture(scope="module")
def data(data_dir):
    from reportgen.data import load_split

    splits = load_split("fashion-mnist", True, data_dir), load_split("fashion-mnist", False, data_dir)
    return train.prepare_tensors(make_request(FAMILIES["mlp"]), splits)


@pytest.mark.parametrize("family", ["mlp", "bn_mlp"])
def test_groups_that_fall_back_give_every_run_its_lone_bits(family, nothing_stacks, data):
    requests = [make_request(FAMILIES[family], lr, seed, shuffle=True) for lr in (1.0, 0.1) for seed in (0, 1)]
    members = [Member(r, train.new_state(r)) for r in requests]
    group = Group(members)
    with train.run_threads(2):
        history = [group.train_epoch(data) for _ in range(2)]
    assert group.stacking.chunks == [slice(k, k + 1) for k in range(4)] and not group.stacking.stacked_sums
    assert any("products" in note for note in group.fallbacks) and any("batch sums" in note for note in group.fallbacks)
    for k in (0, 3):
        alone = train_group([requests[k]], data, epochs=2, threads=2)
        assert_identical(([epoch[k] for epoch in history], members[k].state.model.state_dict()), (alone[0][0], alone[1][0]))


def test_a_build_says_once_which_operations_fell_back(nothing_stacks, tmp_path, data_dir):
    from reportgen.runner import execute_group
    from tests.test_runner import Recorder, group_of_jobs

    recorder = Recorder()
    execute_group(group_of_jobs(epochs=2), tmp_path, data_dir, recorder)
    notes = [e.message for e in recorder.events if e.kind == "notice"]
    assert len(notes) == len(set(notes)) == 2  # products and batch sums, each once for the group's two epochs
    assert "6 runs" in notes[0] and "run by run" in notes[0]


def test_a_machine_where_even_run_by_run_products_differ_is_told_so(monkeypatch):
    monkeypatch.setattr(stacked_ops, "use_holds", lambda *args: False)
    stacking = plan_stacking(2, [SMALL], threads=1)
    assert stacking.chunks == [slice(0, 1), slice(1, 2)]
    assert "may differ in their last bits" in stacking.fallbacks[-1] and "forward 16×24" in stacking.fallbacks[-1]
