"""Which stacked operations give every run its lone bits on this machine, for every MLP of the spec.

    python -m benchmarks.stacking [--spec experiments.toml] [--threads 1 2] [--runs 3 12]

A diagnostic, not a test: the engine makes the same check itself before a group relies on stacking
(reportgen/stacked_ops.py) and takes what fails run by run, so a "falls back" here costs speed, never
a number. Printed per MLP preset, thread count and group size: the plan a group would take (stacked
products and sums, or which fell back), and how long the check took in a fresh process-level cache.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from reportgen.spec import load_spec
from reportgen.stacked_ops import mlp_uses, plan_stacking, use_holds

FULL_DATA = {"fashion-mnist": (60_000, 10_000), "mnist": (60_000, 10_000)}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spec", type=Path, default=Path("experiments.toml"))
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--runs", type=int, nargs="+", default=[3, 12])
    parser.add_argument("--presets", nargs="*", help="MLP presets to check (default: every MLP preset of the spec)")
    return parser.parse_args(argv)


def mlp_presets(spec_path: Path, names: list[str] | None) -> dict[str, list[int]]:
    """Layer widths (input first) of the spec's MLP presets, on 28×28 inputs."""
    spec = load_spec(spec_path)
    return {name: [28 * 28, *preset.args["hidden"], 10] for name, preset in spec.models.items()
            if preset.arch == "mlp" and (not names or name in names)}


def check_rows(widths: list[int], threads: int, runs: int, batch: int = 64, test_batch: int = 256) -> dict:
    """One row of the diagnostic: the plan for a group of `runs` on the full data, and the check's seconds."""
    train_n, test_n = FULL_DATA["fashion-mnist"]
    uses = mlp_uses(widths, {batch, train_n % batch or batch}, {test_batch, test_n % test_batch or test_batch},
                    shuffled=False) + mlp_uses(widths, {batch}, set(), shuffled=True)
    uses = list(dict.fromkeys(uses))  # the layers past the first take the same products either way
    use_holds.cache_clear()
    start = time.perf_counter()
    stacking = plan_stacking(runs, uses, device="cpu", threads=threads)
    return {"seconds": time.perf_counter() - start, "checks": len(uses), "fallbacks": stacking.fallbacks}


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    print(f"torch {torch.__version__}, CPU capability {torch.backends.cpu.get_cpu_capability()}, "
          f"MKL {'yes' if torch.backends.mkl.is_available() else 'no'}")
    for name, widths in mlp_presets(args.spec, args.presets).items():
        for threads in args.threads:
            for runs in args.runs:
                row = check_rows(widths, threads, runs)
                verdict = "stacked" if not row["fallbacks"] else "FALLS BACK: " + " | ".join(row["fallbacks"])
                print(f"{name:<12} {'×'.join(map(str, widths)):<22} {threads} thread(s) {runs:>2} runs  "
                      f"{row['checks']:>3} checks in {row['seconds']:.2f} s  {verdict}", flush=True)


if __name__ == "__main__":
    main()
