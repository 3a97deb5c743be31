"""Stage 3, grouped: the operations lockstep.py applies to a whole stack of runs, and the check that
each gives every run the bits of its lone run, made in this process before a group relies on it.

No BLAS documents that slice k of a batched product equals the product of slice k alone. On a
2-core AMD EPYC it held for every shape the spec uses; on a 2-core Intel Xeon (MKL, AVX-512) it
failed at two threads for a stack of 3 (how MKL splits a batch over threads). So the engine checks
instead of assuming: for the shapes, run count, thread count and device a group is about to use, it
runs each stacked operation on small random inputs and compares every run's slice with the lone
operation, bit for bit (cached per process). Where a check fails, that kind of operation runs run by
run for the group (still one group, one code path; only slower), and the group reports which shapes
fell back and why. A lone run is a group of one, so "lone" is what K = 1 computes here.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Iterable

import torch

OPERATIONS = ("forward", "input gradient", "weight gradient", "weight update", "batch sum")


@dataclass(frozen=True)
class Use:
    """One stacked operation a group is about to take, on one shape: (rows, n_in) @ (n_in, n_out);
    a batch sum reduces (rows, n_out) over its rows (n_in unused)."""

    operation: str
    rows: int
    n_in: int
    n_out: int
    shared_input: bool = False  # the input is one batch expanded over the runs (data-set order, tests)

    def describe(self) -> str:
        if self.operation == "batch sum":
            return f"batch sum of {self.rows}×{self.n_out}"
        shared = ", one input for all runs" if self.shared_input else ""
        return f"{self.operation} {self.rows}×{self.n_in} · {self.n_in}×{self.n_out}{shared}"


@dataclass
class Stacking:
    """How a group of `runs` takes its products (chunks of runs per batched call) and its batch sums,
    and what could not be stacked on this machine (empty when everything is stacked)."""

    runs: int
    chunks: list[slice]
    stacked_sums: bool = True
    fallbacks: list[str] = field(default_factory=list)

    def bmm(self, a: torch.Tensor, b: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        """Every run's a @ b (+ bias): (K, r, n) @ (K, n, m) → (K, r, m)."""
        out = a.new_empty(a.shape[0], a.shape[1], b.shape[2])
        for part in self.chunks:
            if bias is None:
                torch.bmm(a[part], b[part], out=out[part])
            else:
                torch.baddbmm(bias[part], a[part], b[part], out=out[part])
        return out

    def subtract_bmm_(self, weight: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> None:
        """weight -= a @ b for every run, in place."""
        for part in self.chunks:
            weight[part].baddbmm_(a[part], b[part], alpha=-1)

    def batch_sum(self, stacked: torch.Tensor) -> torch.Tensor:
        """(K, b, h) → (K, 1, h): each run's sum over its batch."""
        if self.stacked_sums:
            return stacked.sum(1, keepdim=True)
        return torch.cat([stacked[k:k + 1].sum(1, keepdim=True) for k in range(stacked.shape[0])])


def product_chunks(runs: int, threads: int | None = None, device: str = "cpu") -> list[slice]:
    """How K runs' products are batched when stacking holds. MKL gives each thread whole matrices
    of a batch, so a batch whose size is not a multiple of the thread count leaves a thread idle
    (3 stacked products ran at 0.75x the speed of 2 or 4 on the EPYC); the runs left over take a
    product each, which MKL spreads over all threads. A GPU takes the whole stack at once."""
    if device != "cpu":
        return [slice(0, runs)]
    threads = threads or torch.get_num_threads()
    even = runs - runs % threads
    return ([slice(0, even)] if even else []) + [slice(k, k + 1) for k in range(even, runs)]


def run_by_run(runs: int) -> list[slice]:
    return [slice(k, k + 1) for k in range(runs)]


def mlp_uses(widths: list[int], train_rows: Iterable[int], test_rows: Iterable[int], shuffled: bool) -> list[Use]:
    """Every stacked operation a lockstep MLP of these layer widths (input first) takes: training
    batches of `train_rows` rows (forward, backward, update, probes, batch sums) and evaluation
    batches of `test_rows` (forward only). The first layer's input is one batch expanded over the runs
    in evaluation, and in training unless the runs shuffle (then each run gathers its own batch)."""
    uses: list[Use] = []
    layers = list(zip(widths, widths[1:]))
    for rows in sorted(set(train_rows)):
        for depth, (n_in, n_out) in enumerate(layers):
            shared = depth == 0 and not shuffled
            uses += [Use("forward", rows, n_in, n_out, shared), Use("weight gradient", rows, n_in, n_out, shared),
                     Use("weight update", rows, n_in, n_out, shared), Use("batch sum", rows, 0, n_out)]
            if depth > 0:
                uses.append(Use("input gradient", rows, n_in, n_out))
    for rows in sorted(set(test_rows)):
        uses += [Use("forward", rows, n_in, n_out, depth == 0) for depth, (n_in, n_out) in enumerate(layers)]
    return uses


def plan_stacking(runs: int, uses: Iterable[Use], device: str = "cpu", threads: int | None = None) -> Stacking:
    """The fastest way for a group of `runs` to take `uses` that gives each run its lone bits here:
    products in product_chunks unless a check fails (then run by run), batch sums over the stack unless
    a check fails (then run by run)."""
    threads = threads or torch.get_num_threads()
    if runs == 1:  # a lone run is the reference itself
        return Stacking(1, [slice(0, 1)])
    uses = list(dict.fromkeys(uses))
    products = [u for u in uses if u.operation != "batch sum"]
    sums = [u for u in uses if u.operation == "batch sum"]
    stacking = Stacking(runs, product_chunks(runs, threads, device))
    where = f"{device}, {threads} thread{'s' if threads != 1 else ''}, {runs} runs"
    failed = [u for u in products if not use_holds(u, runs, _key(stacking.chunks), device, threads)]
    if failed:
        stacking.chunks = run_by_run(runs)
        stacking.fallbacks.append(_fallback_note("products", failed, where))
        still = [u for u in failed if not use_holds(u, runs, _key(stacking.chunks), device, threads)]
        if still:
            stacking.fallbacks.append(_unverified_note(still, where))
    failed_sums = [u for u in sums if not use_holds(u, runs, (), device, threads)]
    if failed_sums:
        stacking.stacked_sums = False
        stacking.fallbacks.append(_fallback_note("batch sums", failed_sums, where))
    return stacking


@functools.lru_cache(maxsize=None)
def use_holds(use: Use, runs: int, chunks: tuple[tuple[int, int], ...], device: str, threads: int) -> bool:
    """Whether, on this device and thread count, every run's slice of the stacked operation equals
    the lone operation, bit for bit. `chunks` () stands for batch sums over the whole stack."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        stacked, lone = _operands(use, runs, device), None
        grouped = _apply(use, stacked, _stacking_of(runs, chunks))
        for k in range(runs):
            lone = _operands_of_one(use, stacked, k)
            if not torch.equal(grouped[k], _apply(use, lone, Stacking(1, [slice(0, 1)]))[0]):
                return False
        return True
    finally:
        torch.set_num_threads(before)


def _stacking_of(runs: int, chunks: tuple[tuple[int, int], ...]) -> Stacking:
    if not chunks:  # batch sums
        return Stacking(runs, [slice(0, runs)], stacked_sums=True)
    return Stacking(runs, [slice(a, b) for a, b in chunks])


def _key(chunks: list[slice]) -> tuple[tuple[int, int], ...]:
    return tuple((part.start, part.stop) for part in chunks)


def _operands(use: Use, runs: int, device: str) -> dict[str, torch.Tensor]:
    """Random inputs at the scale training sees, laid out as lockstep lays out its tensors."""
    generator = torch.Generator().manual_seed(hash((use.rows, use.n_in, use.n_out)) % 2**31)

    def rand(*shape: int, scale: float = 1.0) -> torch.Tensor:
        return (torch.randn(*shape, generator=generator) * scale).to(device)

    if use.shared_input:
        x = rand(use.rows, use.n_in)  # one batch, every run sees it (lockstep._batch)
        a = x.expand(runs, -1, -1)
    else:
        x, a = None, rand(runs, use.rows, use.n_in)
    return {"x": x, "a": a, "weight": rand(runs, use.n_in, use.n_out, scale=0.05),
            "bias": rand(runs, 1, use.n_out, scale=0.05), "grad": rand(runs, use.rows, use.n_out, scale=0.01)}


def _operands_of_one(use: Use, stacked: dict[str, torch.Tensor], k: int) -> dict[str, torch.Tensor]:
    """Run k's inputs as a lone run holds them: fresh tensors of one run (the shared batch expanded once)."""
    one = {name: t[k:k + 1].clone() for name, t in stacked.items() if name != "x" and t is not None}
    if use.shared_input:
        one["a"] = stacked["x"].expand(1, -1, -1)
    return one


def _apply(use: Use, t: dict[str, torch.Tensor], stacking: Stacking) -> torch.Tensor:
    """The operation as lockstep.py takes it (same calls, same layouts)."""
    if use.operation == "forward":
        return stacking.bmm(t["a"], t["weight"], t["bias"])
    if use.operation == "input gradient":
        return stacking.bmm(t["grad"], t["weight"].transpose(1, 2))
    if use.operation == "weight gradient":
        return stacking.bmm(t["a"].transpose(1, 2), t["grad"])
    if use.operation == "weight update":
        weight = t["weight"].clone()
        stacking.subtract_bmm_(weight, t["a"].transpose(1, 2), t["grad"])
        return weight
    if use.operation == "batch sum":
        return stacking.batch_sum(t["grad"])
    raise ValueError(f"unknown operation {use.operation!r}; expected one of {', '.join(OPERATIONS)}")


def _fallback_note(what: str, failed: list[Use], where: str) -> str:
    shown = "; ".join(u.describe() for u in failed[:3]) + (f"; and {len(failed) - 3} more" if len(failed) > 3 else "")
    return (f"lockstep ({where}): a stacked run's {what} differed from its lone run's in the last bits for {shown}; "
            f"this group takes its {what} run by run (same numbers as alone, slower)")


def _unverified_note(failed: list[Use], where: str) -> str:
    shown = "; ".join(u.describe() for u in failed[:3])
    return (f"lockstep ({where}): even run by run, a product on a view of the stack differed from a lone run's for "
            f"{shown}; runs of this group may differ in their last bits from the same runs trained alone")
