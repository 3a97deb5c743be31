"""Stage 2: questions × grids × profile → run requests with content-addressed cache keys.

A request holds exactly what determines a training trajectory; how far along it a question
needs to go (epochs, stop rules) is its Budget, kept out of the key so questions share runs.
"""
from __future__ import annotations

import difflib
import itertools
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from reportgen.analysis.naming import varying_fields
from reportgen.cache import LOCATIONS, cache_key
from reportgen.errors import DataError, SpecError
from reportgen.results import Budget, PlannedRun
from reportgen.sources import describe
from reportgen.spec import GRID_FIELDS, UNEXPANDED_FIELDS, Overlay, RunParams, Seeds, Spec, load_spec

ENGINE_VERSION = "5"  # bump when a change to the engine changes its numbers (5: MLPs train in lockstep.py)
# Runs that differ only in these train as one lockstep group (lockstep.py), up to MAX_GROUP runs at a time.
PER_RUN_FIELDS = ("seed", "lr")
MAX_GROUP = 12
NATIVE_SIZE = 28  # the registered data sets' images are 28 × 28

DEFAULTS = RunParams(
    dataset="fashion-mnist", optimizer="sgd", lr=0.001, batch_size=64, test_batch_size=256,
    shuffle=False, seed=0, epochs=10,
)


@dataclass(frozen=True)
class SeedPlan:
    """How many seeds each run point trains: the spec's (or `count`, the CLI's --seeds, for all), plus the seeds
    a sequential build added to some settings (`added`: setting key → extra seeds; reportgen/resolve.py)."""

    count: int | None = None
    added: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, seeds: "int | SeedPlan | None") -> "SeedPlan":
        return seeds if isinstance(seeds, SeedPlan) else cls(seeds)

    def adding(self, settings: Iterable[str], more: int, cap: int, current: Mapping[str, int]) -> "SeedPlan":
        """This plan with `more` seeds for each setting, never past `cap` (`current`: each setting's seeds now)."""
        added = dict(self.added)
        for setting in settings:
            added[setting] = added.get(setting, 0) + max(0, min(more, cap - current.get(setting, 0)))
        return SeedPlan(self.count, added)


def setting_key(request: Mapping[str, Any]) -> str:
    """What every seed of one setting shares: the cache key of its request without the seed."""
    return cache_key({k: v for k, v in request.items() if k != "seed"})


@dataclass(frozen=True)
class RunJob:
    """One distinct training trajectory and every budget some question asks of it."""

    key: str
    request: dict[str, Any]
    budgets: tuple[Budget, ...]


def check_question_ids(spec: Spec, ids: Iterable[str]) -> list[str]:
    """The ids as given, or a SpecError with a did-you-mean suggestion."""
    checked = []
    for qid in ids:
        if qid not in spec.questions:
            close = difflib.get_close_matches(qid, list(spec.questions), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise SpecError(f"unknown question {qid!r}.{hint} Known: {', '.join(spec.questions)}.")
        checked.append(qid)
    return checked


def plan_question(spec: Spec, qid: str, profile: str, device: str,
                  seeds: int | SeedPlan | None = None) -> list[PlannedRun]:
    """Every run the question shows, its own and those of the questions it includes, once per seed.

    `seeds` (the CLI's --seeds) overrides every seed count in the spec; a SeedPlan also adds seeds to some settings.
    """
    question = spec.questions[qid]
    planned: list[PlannedRun] = []
    for other in question.include_runs_of:
        planned += [_retarget(run, qid) for run in plan_question(spec, other, profile, device, seeds)]
    for grid in question.runs:
        for point in _expand(grid):
            planned += _plan_point(spec, qid, point, profile, device, seeds)
    return _unique(planned)


def plan_jobs(spec: Spec, qids: Iterable[str], profile: str, device: str,
              seeds: int | SeedPlan | None = None) -> list[RunJob]:
    """The distinct trajectories behind the questions, each with all budgets asked of it."""
    by_key: dict[str, tuple[dict[str, Any], list[Budget]]] = {}
    for qid in qids:
        for run in plan_question(spec, qid, profile, device, seeds):
            request, budgets = by_key.setdefault(run.key, (run.request, []))
            if run.budget not in budgets:
                budgets.append(run.budget)
    return [RunJob(key, request, tuple(budgets)) for key, (request, budgets) in by_key.items()]


def lockstep_reason(request: dict[str, Any]) -> str | None:
    """Why this request trains alone by autograd (None when lockstep.py trains it, alone or grouped)."""
    if request["arch"] != "mlp":
        return f"arch {request['arch']!r} (only 'mlp' trains in lockstep)"
    if request["optimizer"] != "sgd":
        return f"optimizer {request['optimizer']!r} (only plain SGD trains in lockstep)"
    if not request["lr"] > 0:  # the probes divide the lr-scaled gradients by the lr
        return f"learning rate {request['lr']!r}"
    return None


def group_signature(request: dict[str, Any]) -> str | None:
    """Requests with equal signatures can train as one group; None: this request trains alone."""
    if lockstep_reason(request) is not None:
        return None
    return repr(sorted((k, v) for k, v in request.items() if k not in PER_RUN_FIELDS))


def group_jobs(jobs: list[RunJob], workers: int = 1, max_size: int = MAX_GROUP) -> list[list[RunJob]]:
    """The jobs as lockstep groups (in the order their first job comes), at most max_size each;
    a job no group can take is a group of one, and so is a repeated job (a run cannot train beside
    itself). Grouping never changes a run's numbers.

    Groups are made small enough that there are at least `workers` of them where the jobs allow:
    on one CPU thread a group trains its runs at 0.93-1.12x the speed of one after another
    (benchmarks/engine.py), so an idle worker costs far more than a smaller group."""
    signatures = [group_signature(job.request) for job in jobs]
    counts = Counter(signature for signature in signatures if signature is not None)
    size = _group_size(counts, signatures.count(None), workers, max_size)
    # per signature, as many groups as `size` gives, with sizes that differ by at most one
    limits = {signature: math.ceil(n / math.ceil(n / size)) for signature, n in counts.items()}
    groups: dict[str, list[list[RunJob]]] = {}
    order: list[list[RunJob]] = []
    for job, signature in zip(jobs, signatures):
        chunks = groups.setdefault(signature, []) if signature is not None else []
        if not chunks or len(chunks[-1]) >= limits[signature] or job.key in {j.key for j in chunks[-1]}:
            chunks.append([])
            order.append(chunks[-1])
        chunks[-1].append(job)
    return order


def longest_first(groups: list[list[RunJob]], seconds: dict[str, float]) -> list[list[RunJob]]:
    """The groups in the order workers should take them: longest (estimated) first, so the build does
    not end with one worker on a long group while the others wait (the classic LPT rule); groups
    without an estimate keep their place after those with one."""
    return sorted(groups, key=lambda group: -sum(seconds.get(job.key, 0.0) for job in group))


def _group_size(counts: Counter[str], alone: int, workers: int, max_size: int) -> int:
    """The largest group size up to max_size that makes at least `workers` groups (1 if none does)."""
    size = max_size
    while size > 1 and alone + sum(math.ceil(n / size) for n in counts.values()) < workers:
        size -= 1
    return size


def _expand(grid: dict[str, Any]) -> list[dict[str, Any]]:
    keys = list(grid)
    values = [v if isinstance(v, list) and k not in UNEXPANDED_FIELDS else [v] for k, v in grid.items()]
    return [dict(zip(keys, combo)) for combo in itertools.product(*values)]


def _plan_point(spec: Spec, qid: str, point: dict[str, Any], profile: str, device: str,
                seeds: int | SeedPlan | None) -> list[PlannedRun]:
    """One planned run per seed of the grid point, and one per seed a sequential build added to it."""
    question = spec.questions[qid]
    params = DEFAULTS.model_dump()
    params["seed"] = spec.seed
    params["seeds"] = spec.profiles[profile].seeds or spec.seeds
    if question.protocol:
        params.update(spec.protocols[question.protocol].model_dump(exclude_none=True))
    params.update(point)
    if not params.get("model"):
        raise SpecError(f'questions."{qid}".runs: no model given (set `model` in the grid or the protocol)')
    preset = spec.models[params["model"]]
    params, notes = _apply_profile(spec.profiles[profile].overlays, qid, params)
    references = _reference_fields(spec, preset, params["dataset"])
    native = references["data"]["shape"][-1] if "data" in references else NATIVE_SIZE
    params["image_size"] = params.get("image_size") or preset.image_size or native
    seeds = SeedPlan.of(seeds)
    planned = seed_list(seeds.count or params["seeds"], params["seed"])
    runs = [_plan_seed(qid, preset, params | {"seed": seed}, device, notes, references) for seed in planned]
    more = seeds.added.get(setting_key(runs[0].request), 0) if runs else 0
    return runs + [_plan_seed(qid, preset, params | {"seed": seed}, device, notes, references)
                   for seed in following_seeds(planned, more)]


def _reference_fields(spec: Spec, preset: Any, dataset: str) -> dict[str, Any]:
    """What a request adds when it uses the spec's own data set or network: the data's digest, shape and class
    count (sources.DataDescription), the code's stamp (references.Resolved.source), and where both lie."""
    from reportgen.models import ARCHITECTURES, find_architecture

    fields: dict[str, Any] = {}
    if dataset in spec.datasets:
        fields = describe(dataset, spec.datasets[dataset], spec.base_dir).request_fields(spec.datasets[dataset])
    if preset.arch not in ARCHITECTURES:
        entry = find_architecture(preset.arch, spec.base_dir)
        fields["arch_source"] = entry.source
        if entry.location:
            fields[LOCATIONS] = fields.get(LOCATIONS, {}) | {"arch": entry.location}
    return fields


def seed_list(seeds: Seeds, first: int) -> list[int]:
    """A count n means the n seeds from `first` on (seed 0 alone stays what one seed always was)."""
    return list(seeds) if isinstance(seeds, list) else list(range(first, first + seeds))


def following_seeds(seeds: list[int], more: int) -> list[int]:
    """`more` seeds after the last of `seeds` (the seeds a sequential build adds to a setting)."""
    first = max(seeds, default=-1) + 1
    return list(range(first, first + more))


def _plan_seed(qid: str, preset: Any, params: dict[str, Any], device: str, notes: list[str],
               references: dict[str, Any]) -> PlannedRun:
    request = {
        "dataset": params["dataset"], "train_subset": params.get("train_subset"),
        "test_subset": params.get("test_subset"), "image_size": params["image_size"],
        "arch": preset.arch, "model_args": dict(sorted(preset.args.items())),
        "optimizer": params["optimizer"], "lr": float(params["lr"]), "loss": "cross_entropy",
        "batch_size": params["batch_size"], "test_batch_size": params["test_batch_size"],
        "shuffle": params["shuffle"], "seed": params["seed"], "device": device,
        "engine_version": ENGINE_VERSION, **references,
    }
    budget = Budget(params["epochs"], params.get("until_accuracy"), params.get("plateau_patience"))
    labels = {k: params.get(k) for k in GRID_FIELDS if k != "seeds"} | {"model_label": preset.label, "arch": preset.arch}
    return PlannedRun(qid, cache_key(request), request, budget, labels, tuple(notes))


def _apply_profile(overlays: list[Overlay], qid: str, params: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    notes = []
    for overlay in overlays:
        if overlay.questions is not None and qid not in overlay.questions:
            continue
        if overlay.models is not None and params["model"] not in overlay.models:
            continue
        changes = overlay.set.model_dump(exclude_none=True)
        params = params | changes
        if overlay.max_epochs is not None and params["epochs"] > overlay.max_epochs:
            params["epochs"] = overlay.max_epochs
            changes["max_epochs"] = overlay.max_epochs
        if changes:
            said = ", ".join(f"{k} = {v}" for k, v in changes.items())
            notes.append(f"{said} ({overlay.reason})" if overlay.reason else said)
    return params, notes


def _retarget(run: PlannedRun, qid: str) -> PlannedRun:
    return PlannedRun(qid, run.key, run.request, run.budget, run.labels, run.overlays)


def _unique(runs: list[PlannedRun]) -> list[PlannedRun]:
    seen, unique = set(), []
    for run in runs:
        ident = (run.key, run.budget)
        if ident not in seen:
            seen.add(ident)
            unique.append(run)
    return unique


def check_models(spec: Spec, runs: Iterable[PlannedRun]) -> None:
    """Each model preset built (on the meta device) for each data shape it meets, and given a batch,
    before anything trains: a model that cannot take the data or does not give one logit per class is
    a SpecError naming the preset and the data set."""
    from reportgen.models import check_model_fits, request_inputs

    seen = set()
    for run in runs:
        name, inputs = run.labels["model"], request_inputs(run.request)
        if (name, inputs) in seen:
            continue
        seen.add((name, inputs))
        preset = spec.models[name]
        try:
            check_model_fits(preset.arch, dict(preset.args), inputs, f'models."{name}"', spec.base_dir)
        except SpecError as err:
            channels, size, _ = inputs.shape
            raise SpecError(f"{err} (question {run.question!r}, data set {run.request['dataset']!r}: {channels} × "
                            f"{size} × {size} inputs, {inputs.classes} classes)") from None


def load_checked_spec(path: Path) -> Spec:
    """spec.load_spec, then the checks that need each question's runs planned; every failure names the file."""
    spec = load_spec(path)
    try:
        check_facets(spec)
    except (SpecError, DataError) as err:  # DataError: a data set the spec refers to, read to plan its runs
        raise type(err)(f"{path}: {err}") from None
    return spec


def check_facets(spec: Spec) -> None:
    """A facet the author wrote must split the question's runs (under any profile), else it draws one panel."""
    for qid, question in spec.questions.items():
        for i, view in enumerate(question.views):
            facet = getattr(view, "facet", None)
            if facet in (None, "none") or "facet" not in view.model_fields_set:
                continue
            varying = varying_fields(r for profile in spec.profiles for r in plan_question(spec, qid, profile, "cpu"))
            if facet not in varying:
                raise SpecError(f'questions."{qid}".views[{i}].facet: {facet!r} does not vary among this question\'s '
                                f"runs, so it would draw a single panel; use one of: {', '.join(varying + ['none'])}")
