"""The CI workflow's cache logic, shared with .github/workflows/report.yml and replayable on this machine.

`keys` is what the workflow itself runs to name its actions/cache entry, so the replay and GitHub compute
the same keys. `run` replays one CI run in a work folder: restore the entry actions/cache would pick from
a local store (its documented matching: the exact key, then a key prefix, then each restore key in order,
the newest entry winning; the run's own branch first, then the base branch), build as the workflow
builds, write the Markdown summary against the last main run's results, and save a new entry when
something was trained.

    python -m benchmarks.ci_replay keys --spec experiments.toml --profile cpu --run-id 42 >> "$GITHUB_OUTPUT"
    python -m benchmarks.ci_replay run --work /tmp/ci --store /tmp/ci-store --spec experiments.toml \\
        --profile smoke --seeds 2 --run-id 1
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from reportgen.cache import PROJECT_CACHE
from reportgen.plan import ENGINE_VERSION

REPO = Path(__file__).resolve().parents[1]
PREFIX = "reportgen-runs"
SPEC_DIGITS = 16  # of the spec's sha256 in the key: enough to tell specs apart, short enough to read


@dataclass(frozen=True)
class CacheKeys:
    key: str  # unique per run: actions/cache entries are immutable, so each save needs a new key
    restore_keys: tuple[str, ...]  # tried in order; each matches the newest entry starting with it


def cache_keys(spec_path: Path, profile: str, run_id: str) -> CacheKeys:
    """Keys from what decides which cached runs are useful: the engine version (a new engine retrains
    everything, so older entries are not even restored), the profile and the spec. A changed spec falls
    back to the newest entry of the same profile (its unchanged runs are reused: runs are content-addressed),
    then to any profile's (they share runs where the protocols agree)."""
    spec = hashlib.sha256(Path(spec_path).read_bytes()).hexdigest()[:SPEC_DIGITS]
    engine = f"{PREFIX}-e{ENGINE_VERSION}-"
    same_spec = f"{engine}{profile}-{spec}-"
    return CacheKeys(f"{same_spec}{run_id}", (same_spec, f"{engine}{profile}-", engine))


def github_output(keys: CacheKeys) -> str:
    """The keys as step outputs (restore-keys is multi-line, hence the heredoc form GitHub documents)."""
    return f"key={keys.key}\nrestore-keys<<EOF\n" + "\n".join(keys.restore_keys) + "\nEOF\n"


# ---------------------------------------------------------------- a local stand-in for GitHub's cache service

@dataclass(frozen=True)
class Restored:
    key: str | None  # the entry restored, None on a miss
    how: str  # "exact key", "prefix of the key", "restore key <prefix>", or "miss"
    ref: str | None  # the branch whose entry it was


class CacheStore:
    """Saved entries as folders under `root`, each with its key, branch and creation order."""

    def __init__(self, root: Path):
        self.root = Path(root)
        (self.root / "entries").mkdir(parents=True, exist_ok=True)

    def _entries(self) -> list[dict]:
        found = [json.loads(p.read_text()) for p in (self.root / "entries").glob("*.json")]
        return sorted(found, key=lambda e: e["created"], reverse=True)  # newest first

    def match(self, keys: CacheKeys, ref: str, base_ref: str) -> Restored:
        entries = self._entries()
        for scope in dict.fromkeys((ref, base_ref)):
            visible = [e for e in entries if e["ref"] == scope]
            tries = [("exact key", lambda k: k == keys.key), ("prefix of the key", lambda k: k.startswith(keys.key))]
            tries += [(f"restore key {p}", lambda k, p=p: k.startswith(p)) for p in keys.restore_keys]
            for how, fits in tries:
                hit = next((e for e in visible if fits(e["key"])), None)
                if hit:
                    return Restored(hit["key"], how, scope)
        return Restored(None, "miss", None)

    def restore(self, restored: Restored, into: Path) -> None:
        shutil.rmtree(into, ignore_errors=True)
        if restored.key is not None:
            shutil.copytree(self.root / "entries" / restored.key, into)

    def save(self, key: str, ref: str, folder: Path) -> bool:
        """False when the key exists already: actions/cache never overwrites an entry."""
        if (self.root / "entries" / f"{key}.json").exists():
            return False
        shutil.copytree(folder, self.root / "entries" / key)
        created = max((e["created"] for e in self._entries()), default=0) + 1
        (self.root / "entries" / f"{key}.json").write_text(json.dumps({"key": key, "ref": ref, "created": created}))
        return True

    def upload_results(self, ref: str, run_id: str, results: Path) -> None:
        """The run's results.json as an artifact; the newest main one is a later run's base."""
        target = self.root / "artifacts" / ref / f"{int(time.time() * 1e6)}-{run_id}" / "results.json"
        target.parent.mkdir(parents=True)
        shutil.copy2(results, target)

    def last_results(self, ref: str) -> Path | None:
        runs = sorted((self.root / "artifacts" / ref).glob("*/results.json"))
        return runs[-1] if runs else None


# ---------------------------------------------------------------- one CI run

@dataclass(frozen=True)
class ReplayedRun:
    run_id: str
    ref: str
    key: str
    restored: Restored
    base: str | None  # the base results the summary compared with
    runs_trained: int  # results.json's count
    entries_written: int  # what decides the save, as in the workflow
    build_seconds: float
    saved: bool
    cache_bytes: int
    summary: str  # path of the Markdown summary


def build_command(profile: str, seeds: int | None, pdf: bool = True) -> list[str]:
    """What the workflow's build step runs (report.yml says the same)."""
    return ["build", "--profile", profile, "--device", "cpu", "--self-contained", "--out", "build",
            *(["--seeds", str(seeds)] if seeds else []), *([] if pdf else ["--no-pdf"])]


def summary_command(base: Path | None) -> list[str]:
    return ["summary", "build", *(["--base", str(base)] if base else []), "--output", "build/summary.md"]


def replay_run(work: Path, store: CacheStore, spec: Path, profile: str, run_id: str, seeds: int | None = None,
               ref: str = "main", base_ref: str = "main", pdf: bool = True) -> ReplayedRun:
    """One CI run on a fresh runner: a checkout (the spec), the restored cache, the build, the summary, the save."""
    work.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(work / "build", ignore_errors=True)  # a runner starts with nothing but the checkout
    shutil.copy2(spec, work / "experiments.toml")
    keys = cache_keys(work / "experiments.toml", profile, run_id)
    restored = store.match(keys, ref, base_ref)
    store.restore(restored, work / PROJECT_CACHE)
    base = store.last_results(base_ref)
    started, wall = time.time(), time.perf_counter()
    _reportgen(work, build_command(profile, seeds, pdf))
    seconds = time.perf_counter() - wall
    _reportgen(work, summary_command(base))
    trained = json.loads((work / "build" / "results.json").read_text())["provenance"].get("runs_trained", 0)
    written = changed_entries(work / PROJECT_CACHE, started)
    saved = written > 0 and store.save(keys.key, ref, work / PROJECT_CACHE)  # nothing new: nothing to save
    store.upload_results(ref, run_id, work / "build" / "results.json")
    size = sum(p.stat().st_size for p in (work / PROJECT_CACHE).rglob("*") if p.is_file())
    return ReplayedRun(run_id, ref, keys.key, restored, str(base) if base else None, trained, written, seconds, saved, size,
                       str(work / "build" / "summary.md"))


def changed_entries(cache: Path, since: float) -> int:
    """Cache entries written since `since` (the workflow: `find -name state.json -newer .ci-build-start`). Counted
    from the cache, not from results.json, so a build stopped by the training budget still saves its epochs."""
    return sum(1 for p in Path(cache).rglob("state.json") if p.stat().st_mtime > since)


def _reportgen(work: Path, args: list[str]) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-m", "reportgen", *args], cwd=work, env=env, capture_output=True, text=True)
    (work / "build").mkdir(exist_ok=True)
    with open(work / "build" / "ci.log", "a", encoding="utf-8") as log:  # the job log, kept for reading later
        log.write(f"$ reportgen {' '.join(args)}\n{done.stdout}{done.stderr}")
    if done.returncode != 0:
        raise RuntimeError(f"reportgen {' '.join(args)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")


# ---------------------------------------------------------------- command line

def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    keys = commands.add_parser("keys", help="print the cache keys as GitHub step outputs")
    run = commands.add_parser("run", help="replay one CI run")
    for p in (keys, run):
        p.add_argument("--spec", type=Path, default=Path("experiments.toml"))
        p.add_argument("--profile", required=True)
        p.add_argument("--run-id", required=True)
    run.add_argument("--work", type=Path, required=True, help="the runner's checkout (spec copied in, build/ fresh)")
    run.add_argument("--store", type=Path, required=True, help="stands in for GitHub's cache and artifacts")
    run.add_argument("--seeds", type=int)
    run.add_argument("--ref", default="main", help="the branch of the run (a PR: e.g. pr-7)")
    run.add_argument("--no-pdf", action="store_true")
    args = parser.parse_args(argv)
    if args.command == "keys":
        print(github_output(cache_keys(args.spec, args.profile, args.run_id)), end="")
        return
    done = replay_run(args.work, CacheStore(args.store), args.spec, args.profile, args.run_id, args.seeds, args.ref,
                      pdf=not args.no_pdf)
    print(json.dumps(asdict(done), indent=1))


if __name__ == "__main__":
    main()
