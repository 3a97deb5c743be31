"""The `reportgen` command line: thin Typer commands that wire the stages together.

Heavy imports (torch, matplotlib, weasyprint) happen inside commands so `--help` stays instant.
"""
from __future__ import annotations

import hashlib
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Annotated, Iterator, Optional

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from reportgen.diff import DEFAULT_TOLERANCE
from reportgen.errors import ReportgenError

app = typer.Typer(
    help="Answer the experiment questions in experiments.toml with cached, reproducible trainings, "
    "and render the answers as build/report.html and build/report.pdf.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
console = Console()
errors = Console(stderr=True)


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


class ExecutorName(str, Enum):
    local = "local"
    ray = "ray"


SpecOpt = Annotated[Path, typer.Option("--spec", help="The experiment spec (TOML).")]
ProfileOpt = Annotated[Optional[str], typer.Option("--profile", help="full, cpu or smoke (default: full with CUDA, else cpu).")]
DeviceOpt = Annotated[Device, typer.Option("--device", help="Where to train: auto picks CUDA when present.")]
DataOpt = Annotated[Optional[Path], typer.Option("--data-dir", envvar="REPORTGEN_DATA_DIR",
                                                 help="Folder with the MNIST/Fashion-MNIST IDX files (else system folders, else download).")]
CacheOpt = Annotated[Optional[Path], typer.Option("--cache-dir", envvar="REPORTGEN_CACHE_DIR", help="Run cache (default: .reportgen/cache beside the spec, whatever --out is).")]
OutOpt = Annotated[Path, typer.Option("--out", help="Where the report, figures and tables go.")]
ExecutorOpt = Annotated[ExecutorName, typer.Option(
    "--executor", help="local: train on this machine (--workers runs side by side); ray: on a Ray cluster.")]
RayAddressOpt = Annotated[str, typer.Option("--ray-address", help="Ray cluster: 'auto', HOST:PORT, or 'local' to start one here.")]
WorkersOpt = Annotated[Optional[int], typer.Option(
    "--workers", min=1, help="Runs (lockstep groups) trained side by side by the local executor, each on one "
                             "thread (default: one per CPU core; 1 with CUDA).")]
SeedsOpt = Annotated[Optional[int], typer.Option("--seeds", min=1, max=50,
                                                  help="Seeds per run point, overriding the spec and profile (default: the profile's).")]
TERMINAL_COLUMNS = ["model", "lr", "epochs_trained", "final_accuracy", "best_accuracy", "epochs_to_target", "stop_reason"]
NoTrainOpt = Annotated[bool, typer.Option("--no-train", help="Render only what is cached; mark the rest as missing.")]
ResolveOpt = Annotated[bool, typer.Option(
    "--resolve", help="After the planned seeds, add seeds in stages to both settings of every answer claim that is "
                      "still unresolved, until each is ahead or equivalent or its settings reach the cap (the "
                      "profile's max_seeds, or --max-seeds). Every look's intervals are corrected for all looks; "
                      "see README 'Statistics'.")]
MaxSeedsOpt = Annotated[Optional[int], typer.Option("--max-seeds", min=2, max=50,
                                                     help="With --resolve: the cap on seeds per setting (default: the profile's max_seeds).")]
SelfContainedOpt = Annotated[bool, typer.Option("--self-contained", help="Embed figures and CSV tables in the HTML "
                                                "(data URIs): one file that works offline, e.g. as a CI artifact.")]


@dataclass
class Session:
    """What every command resolves first: the spec, the profile, the device and the folders."""

    spec_path: Path
    spec: object
    profile: str
    device: str
    data_dir: Optional[Path]
    cache_dir: Path
    out: Path
    seeds: object = None  # --seeds (overrides every seed count of the spec), or the plan.SeedPlan --resolve grew
    probed: dict = field(default_factory=dict)  # speeds probed so far: each model is timed once per command


@contextmanager
def _user_errors() -> Iterator[None]:
    """Print a user error as one paragraph and exit with its code; never a traceback."""
    try:
        yield
    except ReportgenError as err:
        errors.print(f"[bold red]error:[/] {err}", highlight=False, soft_wrap=True)
        raise typer.Exit(err.exit_code)
    except KeyboardInterrupt:
        errors.print("[yellow]Interrupted.[/] Finished epochs are saved in the cache; run the same command again to resume.")
        raise typer.Exit(130)


def _open_session(spec_path: Path, profile: Optional[str], device: Device, data_dir: Optional[Path],
                  cache_dir: Optional[Path], out: Path, needs_torch: bool = True, seeds: Optional[int] = None) -> Session:
    from reportgen.plan import load_checked_spec

    spec = load_checked_spec(spec_path)
    resolved_device, resolved_profile = "cpu", profile or "cpu"
    if needs_torch:
        from reportgen.train import resolve_device

        resolved_device = resolve_device(device.value)
        resolved_profile = profile or ("full" if resolved_device == "cuda" else "cpu")
    if resolved_profile not in spec.profiles:
        from reportgen.errors import SpecError

        raise SpecError(f"--profile {resolved_profile!r}: unknown profile; the spec declares: {', '.join(spec.profiles)}")
    from reportgen.cache import default_cache_dir

    return Session(spec_path, spec, resolved_profile, resolved_device, data_dir,
                   cache_dir or default_cache_dir(spec_path), out, seeds)


@app.command("list")
def list_questions(spec: SpecOpt = Path("experiments.toml"), profile: ProfileOpt = None, seeds: SeedsOpt = None) -> None:
    """List every question with its title, how many runs it needs and how many asks its answer covers; flag the
    asks that nothing the profile trains can answer (they would read "Not measured: …" in the report)."""
    with _user_errors():
        from reportgen.plan import plan_question

        session = _open_session(spec, profile, Device.cpu, None, None, Path("build"), needs_torch=False, seeds=seeds)
        table = Table("id", "part", "title", "runs", "asks", title=f"Questions in {spec}")
        for qid, question in session.spec.questions.items():
            runs = plan_question(session.spec, qid, session.profile, "cpu", session.seeds)
            flags = _unmeasured_asks(session, [qid])
            table.add_row(qid, question.part, question.title, str(len(runs)),
                          f"{len(question.asks)}" + (f" ({len(flags)} not measured)" if flags else ""))
        console.print(table)
        _say_unmeasured_asks(session, list(session.spec.questions))


@app.command()
def run(
    ids: Annotated[list[str], typer.Argument(help="Question ids, e.g. q1.3 lab.t2 (see `reportgen list`).")],
    spec: SpecOpt = Path("experiments.toml"), profile: ProfileOpt = None, device: DeviceOpt = Device.auto,
    data_dir: DataOpt = None, cache_dir: CacheOpt = None, out: OutOpt = Path("build"),
    executor: ExecutorOpt = ExecutorName.local, ray_address: RayAddressOpt = "auto", seeds: SeedsOpt = None,
    workers: WorkersOpt = None, self_contained: SelfContainedOpt = False, resolve: ResolveOpt = False,
    max_seeds: MaxSeedsOpt = None,
    report: Annotated[bool, typer.Option(help="Also write OUT/<id>.html and .pdf for each question.")] = True,
) -> None:
    """Train what the questions need (resuming from the cache), print their results, write their sections."""
    with _user_errors():
        from reportgen.plan import check_question_ids

        session = _open_session(spec, profile, device, data_dir, cache_dir, out, seeds=seeds)
        qids = check_question_ids(session.spec, ids)
        _say_profile(session)
        with _training(session, qids, executor, ray_address, workers, resolve, max_seeds) as (outcomes, trained):
            for qid in qids:
                _print_results(session, qid, outcomes[qid])
                if report:
                    _render(session, {qid: outcomes[qid]}, name=qid, trained=trained, self_contained=self_contained)


@app.command()
def build(
    spec: SpecOpt = Path("experiments.toml"), profile: ProfileOpt = None, device: DeviceOpt = Device.auto,
    data_dir: DataOpt = None, cache_dir: CacheOpt = None, out: OutOpt = Path("build"),
    executor: ExecutorOpt = ExecutorName.local, ray_address: RayAddressOpt = "auto", no_train: NoTrainOpt = False,
    seeds: SeedsOpt = None, workers: WorkersOpt = None, self_contained: SelfContainedOpt = False,
    resolve: ResolveOpt = False, max_seeds: MaxSeedsOpt = None,
    pdf: Annotated[bool, typer.Option(help="Also write the PDF (WeasyPrint).")] = True,
) -> None:
    """Train whatever is missing, then write OUT/report.html and OUT/report.pdf."""
    with _user_errors():
        session = _open_session(spec, profile, device, data_dir, cache_dir, out, seeds=seeds)
        qids = list(session.spec.questions)
        _say_profile(session)
        with _training(session, qids, executor, ray_address, workers, resolve, max_seeds, no_train) as (outcomes, trained):
            missing = sum(1 for runs in outcomes.values() for o in runs if o.result is None)
            html, pdf_path = _render(session, outcomes, name="report", pdf=pdf, trained=trained,
                                     self_contained=self_contained)
        console.print(f"Wrote {html}" + (f" and {pdf_path}" if pdf_path else "")
                      + (f" ({missing} runs missing, shown as placeholders)" if missing else ""))


@app.command()
def status(spec: SpecOpt = Path("experiments.toml"), profile: ProfileOpt = None, device: DeviceOpt = Device.auto,
           cache_dir: CacheOpt = None, out: OutOpt = Path("build"), seeds: SeedsOpt = None) -> None:
    """Show which runs are cached, how far each has trained, and which questions use them."""
    with _user_errors():
        from reportgen.plan import plan_jobs, plan_question
        from reportgen.runner import cached_results

        session = _open_session(spec, profile, device, None, cache_dir, out, seeds=seeds)
        _say_cache(session)
        users: dict[str, list[str]] = {}
        for qid in session.spec.questions:
            for run in plan_question(session.spec, qid, session.profile, session.device, session.seeds):
                users.setdefault(run.key, []).append(qid)
        table = Table("key", "model", "lr", "seed", "epochs cached", "state", "questions", title=f"Runs for profile {session.profile!r}")
        for job in plan_jobs(session.spec, list(session.spec.questions), session.profile, session.device, session.seeds):
            results = cached_results(session.cache_dir, job)
            epochs = max((len(r.epochs) for r in results.values()), default=0) if results else 0
            table.add_row(job.key[:12], job.request["arch"], f"{job.request['lr']:g}", str(job.request["seed"]), str(epochs),
                          "cached" if results else "missing", ", ".join(sorted(set(users[job.key]))))
        console.print(table)


@app.command("plan")
def plan_command(
    ids: Annotated[Optional[list[str]], typer.Argument(help="Question ids (default: every question of the spec).")] = None,
    spec: SpecOpt = Path("experiments.toml"), profile: ProfileOpt = None, device: DeviceOpt = Device.auto,
    data_dir: DataOpt = None, cache_dir: CacheOpt = None, out: OutOpt = Path("build"), seeds: SeedsOpt = None,
    workers: WorkersOpt = None, resolve: ResolveOpt = False, max_seeds: MaxSeedsOpt = None,
) -> None:
    """Show what a build would train, without training: each run's state, its epochs and estimated time,
    per question and in total. new: nothing cached; extend: the cached epochs serve some question, another
    needs more; resume: they serve none (an interrupted run, or one trained for a budget since removed:
    the cache cannot tell these apart). Speeds come from cached runs of the same model, else from timing
    a few training steps. A stop rule's epochs: '~' taken from cached runs of the same model with another
    seed or lr, '≈' from the spec's reference epochs to target, '≤' its epoch cap (an upper bound).
    With --resolve: what the added seeds can cost at most, and, once the planned seeds are cached, what the
    next stage adds for the answer claims unresolved now."""
    with _user_errors():
        from reportgen.plan import check_question_ids

        session = _open_session(spec, profile, device, data_dir, cache_dir, out, seeds=seeds)
        qids = check_question_ids(session.spec, ids) if ids else list(session.spec.questions)
        _say_profile(session)
        estimate = _estimate(session, qids)
        _say_data_changes(session, estimate)
        if estimate.to_train:
            console.print(_plan_table(estimate))
            console.print(_question_table(estimate, qids))
        console.print(_plan_summary(estimate, _workers(session, workers)), highlight=False)
        _say_unmeasured_asks(session, qids)
        if resolve:
            _say_resolve_cost(session, qids, estimate, _workers(session, workers), max_seeds)


@app.command()
def vocab(
    markdown: Annotated[bool, typer.Option("--markdown", help="Print the Markdown source (the README's spec reference).")] = False,
) -> None:
    """List the spec's vocabulary: every view kind, metric, observer, ask kind, data set and architecture with its arguments."""
    from rich.markdown import Markdown

    from reportgen.vocab import vocabulary_markdown

    text = vocabulary_markdown()
    if markdown:
        print(text, end="")
    else:
        console.print(Markdown(text))


@app.command()
def clean(
    spec: SpecOpt = Path("experiments.toml"), profile: ProfileOpt = None, device: DeviceOpt = Device.auto,
    cache_dir: CacheOpt = None, out: OutOpt = Path("build"),
    unused: Annotated[bool, typer.Option("--unused", help="Remove only runs no question of the spec needs (any profile).")] = False,
) -> None:
    """Remove cached runs: all of them, or with --unused only those no question needs."""
    with _user_errors():
        from reportgen.cache import RunCache

        session = _open_session(spec, profile, device, None, cache_dir, out, needs_torch=unused)
        cache = RunCache(session.cache_dir)
        needed = _needed_keys(session) if unused else set()
        removed = [key for key in cache.keys() if key not in needed]
        for key in removed:
            cache.discard(key)
        console.print(f"Removed {len(removed)} cached runs from {session.cache_dir}.")


@app.command()
def diff(
    a: Annotated[Path, typer.Argument(help="The earlier build: a results file, or a folder where `build` (results.json) "
                                                    "or `run` (<id>.results.json, one per question) wrote.")],
    b: Annotated[Path, typer.Argument(help="The later build, compared against A.")],
    tolerance: Annotated[float, typer.Option("--tolerance", min=0.0,
                                             help="Accuracy points a one-seed number may move before it counts (no noise estimate then).")] = DEFAULT_TOLERANCE,
    html: Annotated[Optional[Path], typer.Option("--html", help="Also write the comparison as a standalone HTML page.")] = None,
) -> None:
    """Compare two builds: settings that differ, then numbers where one build is ahead beyond seed noise (exit 1 if any)."""
    with _user_errors():
        from reportgen.diff import diff_documents, render_html, terminal_report
        from reportgen.results_file import read_results

        result = diff_documents(read_results(a), read_results(b), tolerance, a_name=str(a), b_name=str(b))
        for part in terminal_report(result):
            console.print(part)
        if html is not None:
            html.parent.mkdir(parents=True, exist_ok=True)
            html.write_text(render_html(result), encoding="utf-8")
            console.print(f"Wrote {html}")
    raise typer.Exit(result.exit_code)


@app.command()
def summary(
    results: Annotated[Path, typer.Argument(help="This build: a results file, or a folder where `build` or `run` wrote.")],
    base: Annotated[Optional[Path], typer.Option("--base", help="A base build's results (file or folder) to compare "
                                                 "with, e.g. the last main build's.")] = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write the Markdown here instead of stdout.")] = None,
    report_url: Annotated[Optional[str], typer.Option("--report-url", help="A link to the full report (CI: the artifact or Pages).")] = None,
    tolerance: Annotated[float, typer.Option("--tolerance", min=0.0,
                                             help="As for diff: accuracy points a one-seed number may move.")] = DEFAULT_TOLERANCE,
) -> None:
    """Write the answers, the reproduction counts and (with --base) the noise-aware diff as GitHub Markdown."""
    with _user_errors():
        from reportgen.diff import diff_documents
        from reportgen.results_file import read_results
        from reportgen.summary import summary_markdown

        doc = read_results(results)
        comparison = diff_documents(read_results(base), doc, tolerance, a_name=str(base), b_name=str(results)) if base else None
        text = summary_markdown(doc, comparison, report_url)
        if output is None:
            print(text, end="")
            return
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
        errors.print(f"Wrote {output}", highlight=False)  # stderr: stdout may be piped into the job summary


def _unmeasured_asks(session: Session, qids: list[str]) -> list[str]:
    """'q1.3: 'the epoch …' (rate_epochs): no run has a target accuracy' for each ask the plan cannot answer."""
    from reportgen.analysis.asks import unanswerable
    from reportgen.plan import plan_question

    lines = []
    for qid in qids:
        runs = plan_question(session.spec, qid, session.profile, "cpu", session.seeds)
        lines += [f"{qid}: {ask.ask!r} ({ask.by}): {why}" for ask in session.spec.questions[qid].asks
                  if (why := unanswerable(ask, runs))]
    return lines


def _say_unmeasured_asks(session: Session, qids: list[str]) -> None:
    for line in _unmeasured_asks(session, qids):
        console.print(f"[yellow]Not measured under profile {session.profile!r}:[/] {line}", highlight=False)


def _say_profile(session: Session) -> None:
    console.print(f"Profile [bold]{session.profile}[/] on [bold]{session.device}[/] "
                  f"({session.spec.profiles[session.profile].description})", highlight=False)
    _say_cache(session)


def _say_cache(session: Session) -> None:
    """Where runs are looked up, and a hint when an older reportgen's cache (then OUT/cache) sits unused."""
    console.print(f"Run cache: {session.cache_dir}", highlight=False)
    old, new = session.out / "cache", Path(session.cache_dir)
    if (old / "runs").is_dir() and not (new / "runs").exists():
        console.print(f"[yellow]note:[/] {old} holds runs from an older reportgen (which cached under --out); "
                      f"move them with `mkdir -p {new} && mv {old}/runs {new}/`, or pass --cache-dir {old}.",
                      highlight=False)


def _needed_keys(session: Session) -> set[str]:
    from reportgen.plan import plan_jobs

    return {job.key for profile in session.spec.profiles
            for job in plan_jobs(session.spec, list(session.spec.questions), profile, session.device)}


def _train_missing(session: Session, qids: list[str], executor: ExecutorName, ray_address: str,
                   workers: Optional[int]) -> dict[str, float]:
    """Train what the cache lacks; for the provenance, the estimated and actual wall time ({} if nothing trained)."""
    from reportgen.estimate import format_seconds, wall_seconds
    from reportgen.progress import TrainingProgress

    estimate = _estimate(session, qids)
    _say_data_changes(session, estimate)
    missing = [e.job for e in estimate.to_train]
    side_by_side = _workers(session, workers) if executor is ExecutorName.local else 1
    wall = wall_seconds(estimate, side_by_side)
    console.print(f"{len(estimate.jobs)} runs planned, {estimate.cached_count} cached, {len(missing)} to train"
                  + (f" ({_total_text(estimate, 'of training')}; {_wall_text(estimate, wall, side_by_side)})."
                     if missing else "."), highlight=False)
    if not missing:
        return {}
    runner = _make_executor(session, executor, ray_address, side_by_side, {e.job.key: e.seconds for e in estimate.to_train})
    started = time.perf_counter()
    with TrainingProgress(console, missing, estimate, side_by_side) as progress:
        for job, _results in runner.run(missing, progress.on_event):
            progress.job_finished(job)
    from reportgen.sources import record_data, used_data

    record_data(session.cache_dir, used_data([e.job.request for e in estimate.jobs]))
    actual = time.perf_counter() - started
    console.print(f"{progress.summary()} Wall time {format_seconds(actual)}, estimated {format_seconds(wall, estimate.total_marker)}.",
                  highlight=False)
    return {"estimated_training_seconds": wall, "trained_seconds": actual, "workers": side_by_side,
            "runs_trained": len(missing)}


@contextmanager
def _training(session: Session, qids: list[str], executor: ExecutorName, ray_address: str, workers: Optional[int],
              resolve: bool, max_seeds: Optional[int], no_train: bool = False) -> Iterator[tuple[dict, dict]]:
    """Train what the questions lack (with --resolve, stage by stage until the answers resolve) and yield
    (outcomes, what was trained); the block renders under the same looks the verdicts were read with."""
    from reportgen.analysis.families import looks_in_force

    if not resolve:
        trained = {} if no_train else _train_missing(session, qids, executor, ray_address, workers)
        yield _collect(session, qids), trained
        return
    looks, outcomes, trained = _resolve(session, qids, executor, ray_address, workers, max_seeds, no_train)
    with looks_in_force(looks):
        yield outcomes, trained


def _resolve(session: Session, qids: list[str], executor: ExecutorName, ray_address: str, workers: Optional[int],
             max_seeds: Optional[int], no_train: bool):
    """The sequential build (reportgen/resolve.py): look, add seeds to the open claims' settings, look again.
    Returns the looks the design allows, the last look's outcomes, and what was trained (with the resolution)."""
    from reportgen.analysis.wording import plural
    from reportgen.resolve import resolve

    start, design = _resolve_design(session, qids, max_seeds)
    console.print(f"--resolve: {design.describe()}; each interval corrected for every comparison and look.",
                  highlight=False)
    stages: list[dict] = []

    def measure(plan):
        session.seeds = plan
        stage = {} if no_train else _train_missing(session, qids, executor, ray_address, workers)
        stages.append({"look": len(stages) + 1, "runs_trained": stage.get("runs_trained", 0),
                       "estimated_seconds": stage.get("estimated_training_seconds", 0.0),
                       "trained_seconds": stage.get("trained_seconds", 0.0)})
        return _collect(session, qids)

    def judge(outcomes):
        claims = _open_claims(session, outcomes, design.looks)
        console.print(f"Look {len(stages)}: {plural(len(claims), 'answer claim')} unresolved"
                      + (": " + "; ".join(c.text for c in claims) if claims else "."), highlight=False)
        return claims

    resolution, outcomes = resolve(design, start, measure, judge)
    console.print(f"--resolve stopped after {len(resolution.looks)} looks: {resolution.stopped_because}.",
                  highlight=False)
    trained: dict = {"resolve": resolution.to_dict() | {"stages": stages}}
    if any(s["runs_trained"] for s in stages):
        trained |= {"estimated_training_seconds": sum(s["estimated_seconds"] for s in stages),
                    "trained_seconds": sum(s["trained_seconds"] for s in stages),
                    "runs_trained": sum(s["runs_trained"] for s in stages)}
    return design.looks, outcomes, trained


def _resolve_design(session: Session, qids: list[str], max_seeds: Optional[int]):
    """(the seed plan --resolve starts from, its design), the planned seeds read from the plan, not the cache."""
    from reportgen.plan import SeedPlan, plan_question
    from reportgen.resolve import design_for, planned_seeds

    start = SeedPlan.of(session.seeds)
    planned = (run for qid in qids for run in plan_question(session.spec, qid, session.profile, session.device, start))
    return start, design_for(session.spec, session.profile, planned_seeds(planned), max_seeds)


def _open_claims(session: Session, outcomes: dict, looks: int) -> list:
    """The answer claims the outcomes leave open, judged at the level a design of `looks` looks spends."""
    from reportgen.analysis.families import looks_in_force
    from reportgen.resolve import open_claims
    from reportgen.sources import split_loader

    loader = split_loader(session.spec.datasets, session.spec.base_dir, session.data_dir)
    with looks_in_force(looks):
        return open_claims(session.spec, outcomes, loader, session.profile)


def _say_resolve_cost(session: Session, qids: list[str], base, workers: int, max_seeds: Optional[int]) -> None:
    """plan --resolve: the worst case (every compared setting at the cap) and, when the planned seeds are all
    cached, the next stage for the claims unresolved now; both as training beyond the plain plan."""
    from reportgen.analysis.wording import plural
    from reportgen.resolve import seeds_per_setting, worst_case_plan

    start, design = _resolve_design(session, qids, max_seeds)
    outcomes = _collect(session, qids)
    console.print(f"--resolve: {design.describe()}.", highlight=False)
    worst = _extra_training(session, qids, base, worst_case_plan(session.spec, outcomes, design, start), workers)
    console.print(f"At most {worst}, if every setting an answer compares goes to {design.cap} seeds.", highlight=False)
    if any(o.result is None for runs in outcomes.values() for o in runs):
        console.print("What the first stage adds depends on the planned seeds' numbers: train them first.")
        return
    claims = _open_claims(session, outcomes, design.looks)
    grow = sorted({key for c in claims for key in c.settings})
    nxt = start.adding(grow, design.step, design.cap, seeds_per_setting(outcomes))
    console.print(f"Now {plural(len(claims), 'answer claim')} unresolved"
                  + (f"; the next stage adds {_extra_training(session, qids, base, nxt, workers)}." if claims else "."),
                  highlight=False)
    for claim in claims:
        console.print(f"  {claim.text}", highlight=False)


def _extra_training(session: Session, qids: list[str], base, seed_plan, workers: int) -> str:
    """'12 runs, 8 min 10 s of training (4 min 05 s wall time with 2 runs side by side)' beyond `base`."""
    from reportgen.estimate import format_seconds, wall_seconds

    grown = _estimate(session, qids, seed_plan)
    runs = len(grown.to_train) - len(base.to_train)
    seconds = grown.total_seconds - base.total_seconds
    wall = wall_seconds(grown, workers) - wall_seconds(base, workers)
    return (f"{runs} more runs, {format_seconds(seconds, grown.total_marker)} more training "
            f"({_wall_text(grown, wall, workers)})")


def _workers(session: Session, workers: Optional[int]) -> int:
    from reportgen.runner import default_workers

    return workers or default_workers(session.device)


def _wall_text(estimate, wall: float, workers: int) -> str:
    from reportgen.estimate import format_seconds

    where = f"{workers} runs side by side" if workers > 1 else "one run at a time"
    return f"{format_seconds(wall, estimate.total_marker)} wall time with {where}"


def _estimate(session: Session, qids: list[str], seeds=None):
    """The plan's estimate (under `seeds`, default the session's), after every model has been checked against
    the data it will train on."""
    from functools import partial

    from reportgen.estimate import estimate_plan, probe_speed
    from reportgen.plan import check_models, plan_question

    seeds = session.seeds if seeds is None else seeds
    check_models(session.spec, (run for qid in qids for run in plan_question(session.spec, qid, session.profile,
                                                                             session.device, seeds)))
    return estimate_plan(session.spec, qids, session.profile, session.device, seeds, session.cache_dir,
                         partial(probe_speed, data_dir=session.data_dir), probed=session.probed)


def _say_data_changes(session: Session, estimate) -> None:
    from reportgen.sources import data_changes, used_data

    for note in data_changes(session.cache_dir, used_data([e.job.request for e in estimate.jobs])):
        console.print(note, style="yellow", highlight=False)


def _plan_table(estimate) -> Table:
    from reportgen.estimate import format_seconds

    table = Table("questions", "model", "lr", "seed", "state", "epochs", "time", box=box.SIMPLE_HEAD,
                  title="Runs to train")
    for e in estimate.to_train:
        request = e.job.request
        table.add_row(" ".join(estimate.users(e.job.key)), estimate.models.get(e.job.key, request["arch"]),
                      f"{request['lr']:g}", str(request["seed"]), e.state, f"{e.marker}{e.epochs_to_train}",
                      format_seconds(e.seconds, e.marker))
    return table


def _question_table(estimate, qids: list[str]) -> Table:
    from reportgen.estimate import UPPER_BOUND, format_seconds

    # A column for the epoch caps' share only when some question has one.
    capped = any(estimate.question_upper_bound_seconds(qid) for qid in qids)
    table = Table("question", "runs to train", "time", *(["of it upper bounds"] if capped else []),
                  box=box.SIMPLE_HEAD, title="Per question")
    for qid in qids:
        runs, seconds, marker = estimate.question_estimate(qid)
        upper = estimate.question_upper_bound_seconds(qid)
        done = "cached" if estimate.questions[qid] else "no runs"
        cells = [qid, str(runs), format_seconds(seconds, marker) if runs else done]
        table.add_row(*cells, *([format_seconds(upper, UPPER_BOUND) if upper else ""] if capped else []))
    return table


def _total_text(estimate, what: str) -> str:
    """The total, `what` it is, and how much of it counts stop rules' epoch caps, so a reader can tell the
    point estimate from the bound: '≈ 1 h 50 min in total, ≤ 18 min 00 s of it upper bounds'."""
    from reportgen.estimate import UPPER_BOUND, format_seconds

    text = f"{format_seconds(estimate.total_seconds, estimate.total_marker)} {what}"
    upper = estimate.upper_bound_seconds
    if not upper:
        return text
    if upper >= estimate.total_seconds:
        return f"{text}, all of it upper bounds"
    return f"{text}, {format_seconds(upper, UPPER_BOUND)} of it upper bounds"


def _plan_summary(estimate, workers: int) -> str:
    from reportgen.estimate import FROM_REFERENCE, FROM_SIBLINGS, UPPER_BOUND, wall_seconds

    planned, cached, to_train = len(estimate.jobs), estimate.cached_count, estimate.to_train
    if not to_train:
        return f"Nothing to train: all {planned} runs are cached."
    lines = [f"{planned} runs planned: {cached} cached, {len(to_train)} to train, {_total_text(estimate, 'of training')}; "
             f"{_wall_text(estimate, wall_seconds(estimate, workers), workers)}.",
             "Per question: the epochs its own budgets need (a shared run counts in each)."]
    markers = {e.marker for e in to_train}
    if FROM_SIBLINGS in markers:
        lines.append("~ estimate: the most epochs cached runs of the same model (other seed, else other lr) took.")
    if FROM_REFERENCE in markers:
        lines.append("≈ estimate: the epochs to target the spec's references give for the run.")
    if UPPER_BOUND in markers:
        lines.append("≤ upper bound: the epoch cap of a stop rule (until_accuracy, plateau) that nothing predicts.")
    probed = sorted({estimate.models.get(e.job.key, e.job.request["arch"]) for e in to_train if e.speed_source == "probe"})
    if probed:
        lines.append(f"Speed from a few timed steps (nothing cached): {', '.join(probed)}.")
    return "\n".join(lines)


def _make_executor(session: Session, executor: ExecutorName, ray_address: str, workers: int,
                   seconds: dict[str, float]):
    if executor is ExecutorName.ray:
        from reportgen.executors.ray_executor import RayExecutor

        return RayExecutor(session.cache_dir, session.data_dir, address=ray_address, seconds=seconds)
    from reportgen.runner import LocalExecutor

    return LocalExecutor(session.cache_dir, session.data_dir, workers, seconds)


def _collect(session: Session, qids: list[str]):
    from reportgen.runner import collect_outcomes

    return collect_outcomes(session.spec, qids, session.profile, session.device, session.cache_dir, session.seeds)


def _render(session: Session, outcomes, name: str, pdf: bool = True, trained: Optional[dict[str, float]] = None,
            self_contained: bool = False):
    """`trained`: _train_missing's estimated and actual seconds, shown beside the training time."""
    from reportgen.report import render_report
    from reportgen.results_file import results_document, results_path, write_results
    from reportgen.runner import total_training_seconds, training_seconds
    from reportgen.sources import split_loader, used_data

    seconds = training_seconds(outcomes)
    provenance = {
        "profile": session.profile, "device": session.device, "spec_path": str(session.spec_path),
        "spec_hash": hashlib.sha256(session.spec_path.read_bytes()).hexdigest(),
        "total_training_seconds": total_training_seconds(outcomes), "training_seconds_by_question": seconds,
        "command": "reportgen " + " ".join(sys.argv[1:]), **(trained or {}),
        # the spec's own data sets: where they were read, their content digest, shape and classes
        "datasets": used_data([o.planned.request for runs in outcomes.values() for o in runs]),
    }
    loader = split_loader(session.spec.datasets, session.spec.base_dir, session.data_dir)
    write_results(results_document(session.spec, session.profile, outcomes, provenance, loader),
                  results_path(session.out, name))
    return render_report(session.spec, session.profile, outcomes, session.out, provenance, loader, name=name, pdf=pdf,
                         self_contained=self_contained)


def _print_results(session: Session, qid: str, outcomes) -> None:
    """The question's own table views (its columns, the report's titles) and its observations."""
    from reportgen.analysis.aggregate import aggregate_points
    from reportgen.analysis.noise import seeds_note
    from reportgen.analysis.prose import question_prose, question_tests_note

    question = session.spec.questions[qid]
    points = aggregate_points(outcomes)  # one row per grid point, over its seeds
    console.rule(f"{qid}: {question.title}")
    for view in _terminal_table_views(question):
        for table in _rich_tables(view, points, console.width):
            console.print(table)
    from functools import partial

    from reportgen.data import load_split

    answer, findings = question_prose(session.spec, question, [p for p in points if p.result is not None],
                                      load_split=partial(load_split, data_dir=session.data_dir), profile=session.profile)
    if answer:
        console.print(f"[bold]Answer.[/] {' '.join(answer)}", highlight=False)
    for finding in findings:
        console.print(f"• {finding}", highlight=False)
    if (tests := question_tests_note(question, [p for p in points if p.result is not None])):
        console.print(tests, style="dim", highlight=False)
    if findings and (note := seeds_note(points)):  # the report says this once on its Answers page
        console.print(note, style="dim", highlight=False)


def _terminal_table_views(question) -> list:
    from reportgen.views import TableArgs

    tables = [v for v in question.views if v.kind == "table"]
    return tables or [TableArgs(kind="table", columns=TERMINAL_COLUMNS)]


def _rich_tables(view, outcomes, width: int) -> list[Table]:
    """The view's table; run fields that tell rows apart but the view does not show are added first.

    Columns never break inside a word: when they do not fit `width`, the table is split into several,
    each repeating the run fields (model, lr...) so every row stays readable.
    """
    from reportgen.analysis import tables
    from reportgen.analysis.metrics import METRICS

    shown = [*tables.distinguishing_columns(view.columns, outcomes), *view.columns]
    frame = tables.run_table(view.model_copy(update={"columns": shown}), outcomes)
    keys = frame.attrs["keys"]
    cells = [[tables.format_value(k, v) for k, v in zip(keys, row)] for row in frame.itertuples(index=False)]
    columns = [(title, key, [row[j] for row in cells]) for j, (title, key) in enumerate(zip(frame.columns, keys))]
    labels = [c for c in columns if METRICS.get(c[1]).kind == "label"]
    chunks = _pack_columns(labels, [_split_spread(c) for c in columns if c not in labels], width)
    return [_table_of(view.caption if i == 0 else None, chunk, len(cells)) for i, chunk in enumerate(chunks)]


def _split_spread(column) -> list:
    """A column of 'mean ± std' cells as two, the means and '±std', so that on 80 columns no cell is
    broken over lines ('52.05 ± 3.72' used to take three); a column of plain cells stays one."""
    title, key, values = column
    if not any(" ± " in str(v) for v in values):
        return [column]
    halves = [str(v).partition(" ± ") for v in values]
    return [(title, key, [mean for mean, _, _ in halves]),
            ("±", key, [f"±{spread}" if spread else "" for _, _, spread in halves])]


def _longest_word(column) -> int:
    return max((len(word) for text in (column[0], *column[2]) for word in str(text).split()), default=1)


def _pack_columns(labels: list, metrics: list[list], width: int) -> list[list]:
    """The label columns, then as many metric groups (a mean and its spread stay together) as fit."""
    def need(columns) -> int:  # the longest word of the header or a cell, plus padding and a border
        return sum(_longest_word(column) + 3 for column in columns)

    chunks, current = [], list(labels)
    for group in metrics:
        if current != labels and need(current) + need(group) + 1 > width:
            chunks.append(current)
            current = list(labels)
        current.extend(group)
    return chunks + [current]


def _table_of(caption: str | None, columns: list, rows: int) -> Table:
    from reportgen.analysis.tables import is_numeric_text

    table = Table(title=caption or None, title_justify="left")
    for column in columns:
        title, _key, values = column
        numeric = all(is_numeric_text(str(v).removeprefix("±")) for v in values if v != "")
        # Numbers get exactly the room of their longest word (headers wrap); labels take what is left.
        table.add_column(title, overflow="fold", min_width=_longest_word(column),
                         width=_longest_word(column) if numeric else None, justify="right" if numeric else "left")
    for r in range(rows):
        table.add_row(*(values[r] for _t, _k, values in columns))
    return table

