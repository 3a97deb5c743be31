"""Stage 1: `experiments.toml` → validated, frozen spec models.

Every name the spec uses is checked against its registry (data sets, metrics, view kinds, observers,
architectures) together with its arguments; model presets are built on the meta device and explicit
facets must vary. Any failure is a SpecError naming the file and the key path.
"""
from __future__ import annotations

import math
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr, SerializeAsAny,
                      ValidationError, ValidationInfo, field_validator, model_validator)

from reportgen.analysis.asks import ask_kind, ask_names
from reportgen.analysis.metrics import comparable_metrics, metric, names_of_kind
from reportgen.analysis.observations import OBSERVERS
from reportgen.analysis.user_code import MetricReference, register_metric, register_observer
from reportgen.datasets import DATASETS
from reportgen.errors import SpecError
from reportgen.references import is_reference
from reportgen.registry import Args, NoArgs, VocabularyError, parse_args, unknown_name_message
from reportgen.sources import SOURCES
from reportgen.views import VIEWS, ViewArgs

QUESTION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
MAX_RUNS_PER_GRID = 200  # a guard against a typo that expands into thousands of trainings
Scalar = Union[bool, int, float, str]
MAX_SEEDS = 50
PROFILE_NAMES = ("full", "cpu", "smoke")  # every spec has these; one the spec does not declare changes nothing
# A count (the first n seeds from the run's `seed`) or an explicit list of seeds.
Seeds = Union[Annotated[int, Field(gt=0, le=MAX_SEEDS)], Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=1, max_length=MAX_SEEDS)]]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelPreset(_Model):
    arch: str  # a name in models.ARCHITECTURES, an installed plug-in, or a reference: 'nets.py:MyNet', 'package.module:callable'
    label: str
    short: str = ""  # the name prose uses after the full label's first mention in a section (e.g. "BN MLP")
    args: dict[str, Union[Scalar, list[int]]] = {}
    image_size: int | None = Field(None, gt=0, le=512)  # input resize the architecture needs (default: the data's size)


def _checkable_metric(name: str) -> str:
    allowed = [m for m in names_of_kind("run") if _is_checkable(m)]
    if name not in allowed:
        raise ValueError(unknown_name_message("checkable metric", name, allowed))
    return name


def _is_checkable(name: str) -> bool:
    return metric(name).checkable


class RunParams(_Model):
    """Everything a run may set; a grid gives each field one value or a list of values."""

    dataset: str | None = None  # a registered data set or one of the spec's [datasets]; checked by Spec
    model: str | None = None
    optimizer: Literal["sgd", "adam"] | None = None
    lr: float | None = Field(None, gt=0, allow_inf_nan=False)
    batch_size: int | None = Field(None, gt=0, le=65536)
    test_batch_size: int | None = Field(None, gt=0, le=65536)
    shuffle: bool | None = None
    seed: int | None = Field(None, ge=0)
    seeds: Seeds | None = None  # each run point trains once per seed; its numbers are aggregated over them
    epochs: int | None = Field(None, gt=0, le=2000)  # at most this many epochs
    until_accuracy: float | None = Field(None, gt=0, le=100)  # stop once test accuracy (%) reaches it
    plateau_patience: int | None = Field(None, gt=0)  # stop when the best accuracy is this many epochs old
    train_subset: int | None = Field(None, gt=0)
    test_subset: int | None = Field(None, gt=0)
    image_size: int | None = Field(None, gt=0, le=512)


GRID_FIELDS = tuple(RunParams.model_fields)
UNEXPANDED_FIELDS = ("seeds",)  # a list here is one setting (the seeds to train), not values to expand over


class Overlay(_Model):
    """A profile's change to run parameters, for some questions/models or for all."""

    questions: list[str] | None = None
    models: list[str] | None = None
    set: RunParams
    max_epochs: int | None = Field(None, gt=0)  # caps `epochs` without replacing it
    reason: str = ""


class Profile(_Model):
    description: str
    seeds: Seeds | None = None  # seeds per run point under this profile (a protocol, grid or overlay may change it)
    overlays: list[Overlay] = []
    # `--resolve` (reportgen/resolve.py): seeds are added to the settings of unresolved answer claims, this many
    # per stage, until every claim is resolved or a setting has `max_seeds`.
    max_seeds: int | None = Field(None, ge=2, le=50)
    seeds_per_stage: int = Field(3, ge=1, le=50)


class Reference(_Model):
    """A number from the seeds that the report checks our measurement against."""

    select: dict[str, Scalar]
    metric: Annotated[str, AfterValidator(_checkable_metric)]
    value: float | Literal["not reached"]
    tolerance: float = Field(2.0, ge=0)
    unit: str = ""
    source: str = ""
    note: str = ""  # shown beside the check in the report


def _check_margin(value: Any) -> Any:
    """A margin: a number ≥ 0, or a table of compared metrics → numbers ≥ 0 (each message names what is wrong)."""
    def number(v: Any, where: str) -> float:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            raise ValueError(f"{where}expected a number ≥ 0, got {v!r}")
        return float(v)

    if isinstance(value, dict):
        allowed = comparable_metrics()
        for name in value:
            if name not in allowed:
                raise ValueError(unknown_name_message("compared metric", name, allowed))
        return {name: number(v, f"{name}: ") for name, v in value.items()}
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return number(value, "")
    raise ValueError(f"expected a number ≥ 0 (for the observer's ranked metric) or a table "
                     f"{{ metric = number }}, got {value!r:.60}")


# A difference within ±margin does not matter (the "equivalent" verdict): a number, for the metric the observer ranks
# by (its `metric` argument, else final accuracy), or a table by metric; over the metric registry's defaults.
Margin = Annotated[Union[float, dict[str, float]], BeforeValidator(_check_margin)]


class Observer(_Model):
    kind: str  # a name in analysis.observations.OBSERVERS
    args: SerializeAsAny[Args] = NoArgs()  # validated by the observer's own arguments model
    margin: Margin | None = None  # over the question's margin for this observer's comparisons


class Ask(_Model):
    ask: str = Field(min_length=1)  # what the prompt asks, in the reader's words ("Not measured: <ask>.")
    by: str  # what answers it: an ask kind, an observer with an answer, or a numeric per-run metric (analysis/asks.py)
    args: SerializeAsAny[Args] = NoArgs()  # validated by the ask kind's own arguments model
    covers: list[str] = []  # observers of the question whose findings this sentence says in full (left out)


def _parse_asks(raw: Any) -> list[Ask]:
    """Each ask's `by` checked against the ask kinds (analysis/asks.py), its `args` through the kind's model."""
    parsed = []
    for i, item in enumerate(_table_list(raw, "asks")):
        if isinstance(item, Ask):
            parsed.append(item)
            continue
        if not isinstance(item, dict):
            raise VocabularyError(f"[{i}]", f'expected an inline table {{ ask = "...", by = "..." }}, got {item!r:.60}')
        unknown = sorted(set(item) - {"ask", "by", "args", "covers"})
        if unknown:
            raise VocabularyError(f"[{i}].{unknown[0]}", "unknown key; an ask has `ask`, `by`, `args` and `covers`")
        for key in ("ask", "by"):
            if not isinstance(item.get(key), str) or not item[key].strip():
                raise VocabularyError(f"[{i}].{key}", "missing; an ask is { ask = \"what the prompt asks\", by = \"what answers it\" }"
                                      + (f"; `by` is one of {', '.join(ask_names())}" if key == "by" else ""))
        if item["by"] not in ask_names():
            raise VocabularyError(f"[{i}].by", unknown_name_message("ask kind", item["by"], ask_names())[:-1]
                                  + " (ask kinds, observers with an answer, numeric per-run metrics; see `reportgen vocab`).")
        args = parse_args(ask_kind(item["by"]).args, item.get("args", {}), f"[{i}].args")
        parsed.append(Ask(ask=item["ask"], by=item["by"], args=args, covers=item.get("covers", [])))
    return parsed


def _parse_views(raw: Any) -> list[ViewArgs]:
    """Each view through its kind's arguments model (views.VIEWS), key paths kept for errors."""
    parsed = []
    for i, item in enumerate(_table_list(raw, "views")):
        kind = _kind_of(item, i, VIEWS.names(), "view kind")
        parsed.append(item if isinstance(item, ViewArgs) else parse_args(VIEWS.get(kind).args, item, f"[{i}]"))
    return parsed


def _parse_observers(raw: Any, base_dir: Path) -> list[Observer]:
    """Each observer's `args` through its own arguments model (analysis.observations.OBSERVERS); a `kind`
    that is a reference ('observers.py:fn') is the spec's own observer, registered first."""
    parsed = []
    for i, item in enumerate(_table_list(raw, "observers")):
        if isinstance(item, Observer):
            parsed.append(item)
            continue
        if isinstance(item, dict) and is_reference(str(item.get("kind", ""))):
            try:
                register_observer(item["kind"], base_dir, "kind")
            except SpecError as err:  # as a ValueError, so that the message gets the question's key path
                raise VocabularyError(f"[{i}].kind", str(err).removeprefix("kind: ")) from None
        kind = _kind_of(item, i, OBSERVERS.names(), "observer")
        unknown = sorted(set(item) - {"kind", "args", "margin"})
        if unknown:
            raise VocabularyError(f"[{i}].{unknown[0]}", "unknown key; an observer has `kind`, `args` and `margin`")
        args = parse_args(OBSERVERS.get(kind).args, item.get("args", {}), f"[{i}].args")
        parsed.append(_observer(kind, args, item.get("margin"), i))
    return parsed


def _observer(kind: str, args: Args, margin: Any, i: int) -> Observer:
    try:
        return Observer(kind=kind, args=args, margin=margin)
    except ValidationError as err:
        detail = err.errors()[0]
        raise VocabularyError(f"[{i}].margin", f"{detail['msg'].removeprefix('Value error, ')} (got {margin!r:.60})") from None


def _table_list(raw: Any, what: str) -> list[Any]:
    if not isinstance(raw, list):
        raise ValueError(f"expected a list of {what} (TOML: {what} = [{{ kind = ... }}, ...]), got {raw!r:.60}")
    return raw


def _kind_of(item: Any, i: int, allowed: list[str], concept: str) -> str:
    if isinstance(item, BaseModel):
        return getattr(item, "kind")
    if not isinstance(item, dict):
        raise VocabularyError(f"[{i}]", f"expected an inline table {{ kind = ... }}, got {item!r:.60}")
    if "kind" not in item:
        raise VocabularyError(f"[{i}].kind", f"missing; give the {concept}: one of {', '.join(allowed)}")
    if item["kind"] not in allowed:
        raise VocabularyError(f"[{i}].kind", unknown_name_message(concept, item["kind"], allowed))
    return item["kind"]


def _parse_datasets(raw: Any) -> dict[str, Args]:
    """Each `[datasets.NAME]` through its kind's arguments model (sources.SOURCES)."""
    if not isinstance(raw, dict):
        raise ValueError(f"expected a table of data sets ([datasets.NAME] kind = ...), got {raw!r:.60}")
    parsed = {}
    for name, item in raw.items():
        if name in DATASETS:
            raise VocabularyError(f".{name}", f"{name!r} is a registered data set; give yours another name")
        if isinstance(item, Args):
            parsed[name] = item
            continue
        if not isinstance(item, dict) or item.get("kind") not in SOURCES:
            given = item.get("kind", "nothing") if isinstance(item, dict) else item
            raise VocabularyError(f".{name}.kind", unknown_name_message("data-set kind", given, SOURCES.names()))
        parsed[name] = parse_args(SOURCES.get(item["kind"]).args, item, f".{name}")
    return parsed


class Question(_Model):
    title: str
    part: str
    prompt: str
    protocol: str | None = None
    runs: list[dict[str, Union[Scalar, list[Scalar]]]] = []
    include_runs_of: list[str] = []
    views: list[SerializeAsAny[ViewArgs]] = []
    observers: list[Observer] = []
    references: list[Reference] = []
    margin: Margin | None = None  # for every observer of the question (each may set its own)
    asks: list[Ask] = []  # what the answer must cover, in the prompt's order: one sentence each

    _views = field_validator("views", mode="before")(lambda cls, raw: _parse_views(raw))
    _observers = field_validator("observers", mode="before")(lambda cls, raw, info: _parse_observers(raw, _base_dir_of(info)))
    _asks = field_validator("asks", mode="before")(lambda cls, raw: _parse_asks(raw))


def _base_dir_of(info: ValidationInfo) -> Path:
    """The spec's folder, which load_spec passes as validation context (references are relative to it)."""
    return (info.context or {}).get("base_dir") or Path.cwd()


def _register_metrics(raw: Any, info: ValidationInfo) -> dict[str, Any]:
    """Each `[metrics.NAME]` table, checked and registered in METRICS before the questions that name it."""
    if not isinstance(raw, dict):
        raise ValueError(f"expected a table of metrics ([metrics.NAME] value = ...), got {raw!r:.60}")
    parsed = {}
    for name, item in raw.items():
        parsed[name] = item if isinstance(item, MetricReference) else parse_args(MetricReference, item, f".{name}")
        try:
            register_metric(name, parsed[name], _base_dir_of(info))
        except SpecError as err:
            raise VocabularyError(f".{name}.value", str(err).removeprefix(f"metrics.{name}.value: ")) from None
    return parsed


class Spec(_Model):
    title: str
    author: str = ""
    seed: int = Field(0, ge=0)
    seeds: Seeds = 1  # seeds per run point unless a profile, protocol or grid says otherwise
    protocols: dict[str, RunParams] = {}
    models: dict[str, ModelPreset]
    profiles: dict[str, Profile] = Field({}, validate_default=True)  # full, cpu and smoke exist whether declared or not (see _all_profiles)
    datasets: dict[str, SerializeAsAny[Args]] = {}  # data sets by reference (sources.SOURCES), by the spec's name
    # the spec's own per-run metrics by reference (analysis.user_code); validated before the questions that use them
    metrics: dict[str, SerializeAsAny[Args]] = {}
    questions: dict[str, Question]
    _base_dir: Path = PrivateAttr(default_factory=Path.cwd)  # the spec's folder: references are relative to it

    _datasets = field_validator("datasets", mode="before")(lambda cls, raw: _parse_datasets(raw))
    _metrics = field_validator("metrics", mode="before")(lambda cls, raw, info: _register_metrics(raw, info))

    @field_validator("profiles")
    @classmethod
    def _all_profiles(cls, profiles: dict[str, Profile]) -> dict[str, Profile]:
        undeclared = {name: Profile(description="not declared by the spec: every protocol as written")
                      for name in PROFILE_NAMES if name not in profiles}
        return {**profiles, **undeclared}

    @property
    def base_dir(self) -> Path:
        return self._base_dir

    def dataset_names(self) -> list[str]:
        return DATASETS.names() + list(self.datasets)

    @field_validator("questions")
    @classmethod
    def _has_questions(cls, questions: dict[str, Question]) -> dict[str, Question]:
        if not questions:
            raise ValueError("the spec declares no questions")
        return questions

    @model_validator(mode="after")
    def _check_references(self) -> "Spec":
        for name, protocol in self.protocols.items():
            _check_dataset(self, f'protocols."{name}".dataset', protocol.dataset)
        for name, profile in self.profiles.items():
            for j, overlay in enumerate(profile.overlays):
                _check_dataset(self, f"profiles.{name}.overlays[{j}].set.dataset", overlay.set.dataset)
        for qid, question in self.questions.items():
            _check_question(self, qid, question)
        _check_no_cycles(self)
        return self


def _check_question(spec: Spec, qid: str, question: Question) -> None:
    where = f'questions."{qid}"'
    if not QUESTION_ID.fullmatch(qid) or ".." in qid:
        # Ids become file names (build/<id>.html, figures/<id>-1.svg): nothing that leaves the folder.
        raise ValueError(f"{where}: invalid question id {qid!r}; use letters, digits, '.', '_' and '-' (e.g. q1.3)")
    for i, reference in enumerate(question.references):
        for key, value in reference.select.items():
            if key not in GRID_FIELDS:
                raise ValueError(f"{where}.references[{i}].select.{key}: unknown run field; allowed: {', '.join(GRID_FIELDS)}")
            if key == "model" and value not in spec.models:
                raise ValueError(f"{where}.references[{i}].select.model: {unknown_name_message('model preset', value, sorted(spec.models))}")
    for i, view in enumerate(question.views):
        _check_dataset(spec, f"{where}.views[{i}].dataset", getattr(view, "dataset", None))
    for i, observer in enumerate(question.observers):
        for name in getattr(observer.args, "presets", lambda: [])():
            if name not in spec.models:
                raise ValueError(f"{where}.observers[{i}].args: {unknown_name_message('model preset', name, sorted(spec.models))}")
    _check_asks(where, question)
    if question.protocol is not None and question.protocol not in spec.protocols:
        raise ValueError(f"{where}.protocol: unknown protocol {question.protocol!r}; known: {sorted(spec.protocols)}")
    for other in question.include_runs_of:
        if other not in spec.questions:
            raise ValueError(f"{where}.include_runs_of: unknown question {other!r}; known: {sorted(spec.questions)}")
    for i, grid in enumerate(question.runs):
        _check_grid(spec, f"{where}.runs[{i}]", grid)
    for name, profile in spec.profiles.items():
        for j, overlay in enumerate(profile.overlays):
            for ref in overlay.models or []:
                if ref not in spec.models:
                    raise ValueError(f"profiles.{name}.overlays[{j}].models: unknown model {ref!r}; known: {sorted(spec.models)}")
            for ref in overlay.questions or []:
                if ref not in spec.questions:
                    raise ValueError(f"profiles.{name}.overlays[{j}].questions: unknown question {ref!r}; known: {sorted(spec.questions)}")


def _check_asks(where: str, question: Question) -> None:
    """An ask that reads an observer's family and arguments needs the question to list that observer."""
    listed = [o.kind for o in question.observers]
    for i, ask in enumerate(question.asks):
        needed = ask_kind(ask.by).observer or getattr(ask.args, "observer", None)
        key = "args.observer" if getattr(ask.args, "observer", None) else "by"
        if needed and needed not in listed:
            raise ValueError(f"{where}.asks[{i}].{key}: {ask.by!r} reads the family and arguments of observer "
                             f"{needed!r}, which this question does not list; add {{ kind = {needed!r} }} to its "
                             f"observers (it lists: {', '.join(listed) or 'none'})")
        for j, kind in enumerate(ask.covers):
            if kind not in listed:
                raise ValueError(f"{where}.asks[{i}].covers[{j}]: {unknown_name_message('observer of this question', kind, listed)}")
        name = getattr(ask.args, "metric", None)
        if name is not None and name not in names_of_kind("run", numeric=True):
            raise ValueError(f"{where}.asks[{i}].args.metric: "
                             f"{unknown_name_message('numeric per-run metric', name, names_of_kind('run', numeric=True))}")


def _check_grid(spec: Spec, where: str, grid: dict[str, Any]) -> None:
    size = 1
    for key, value in grid.items():
        if key not in GRID_FIELDS:
            raise ValueError(f"{where}.{key}: unknown run field; allowed: {', '.join(GRID_FIELDS)}")
        values = value if isinstance(value, list) and key not in UNEXPANDED_FIELDS else [value]
        if not values:
            raise ValueError(f"{where}.{key}: empty list; give at least one value")
        if len(set(map(repr, values))) != len(values):
            raise ValueError(f"{where}.{key}: duplicate values {values!r}")
        for v in values:
            _check_grid_value(spec, f"{where}.{key}", key, v)
        size *= len(values)
    if size > MAX_RUNS_PER_GRID:
        raise ValueError(f"{where}: the grid expands to {size} runs, above the limit of {MAX_RUNS_PER_GRID}; split it or trim its lists")


def _check_dataset(spec: Spec, where: str, name: str | None) -> None:
    if name is not None and name not in spec.dataset_names():
        raise ValueError(f"{where}: {unknown_name_message('data set', name, spec.dataset_names())} "
                         "Declare your own under [datasets.NAME] (see `reportgen vocab`).")


def _check_grid_value(spec: Spec, where: str, key: str, value: Any) -> None:
    if key == "model" and value not in spec.models:
        raise ValueError(f"{where}: unknown model {value!r}; known: {', '.join(sorted(spec.models))}")
    if key == "dataset":
        _check_dataset(spec, where, value)
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{where}: {value!r} is not a finite number")
    try:
        RunParams(**{key: value})
    except ValidationError as err:
        detail = err.errors()[0]
        raise ValueError(f"{where}: {detail['msg'].removeprefix('Value error, ')} (got {value!r})") from None


def _check_no_cycles(spec: Spec) -> None:
    def visit(qid: str, path: tuple[str, ...]) -> None:
        if qid in path:
            raise ValueError(f"questions.\"{qid}\".include_runs_of: cycle {' -> '.join(path + (qid,))}")
        for other in spec.questions[qid].include_runs_of:
            visit(other, path + (qid,))

    for qid in spec.questions:
        visit(qid, ())


# ---------------------------------------------------------------- loading

def load_spec(path: Path) -> Spec:
    """Read and validate a spec file, every name and argument included; every failure is a SpecError. The checks
    that need a question's runs planned (a facet must vary among them) are plan.load_checked_spec's."""
    path = Path(path)
    try:
        spec = _validated(path, _read_toml(path))
        spec._base_dir = path.resolve().parent
        _check_models_build(spec)
        return spec
    except SpecError as err:
        message = str(err)
        raise SpecError(message if message.startswith(str(path)) else f"{path}: {message}") from None
    except Exception as err:  # noqa: BLE001 - whatever a hostile file makes the parser do, the user gets one paragraph
        raise SpecError(f"{path}: could not be read as a spec ({type(err).__name__}: {err}). "
                        "Check the file against `reportgen vocab` and the README's spec reference.") from None


def _validated(path: Path, data: dict[str, Any]) -> Spec:
    try:
        return Spec.model_validate(data, context={"base_dir": path.resolve().parent})
    except ValidationError as err:
        raise SpecError(_format_validation_error(path, err)) from None
    except ValueError as err:  # raised by our own validators outside pydantic's wrapping
        raise SpecError(f"{path}: {err}") from None


def _check_models_build(spec: Spec) -> None:
    """Build each preset on the meta device (no memory, no time) so bad arguments fail now, not mid-build."""
    import torch

    from reportgen.models import DEFAULT_INPUTS, check_model_args, find_architecture, instantiate

    for name, preset in spec.models.items():
        where = f'models."{name}"'
        check_model_args(preset.arch, dict(preset.args), where=where, base_dir=spec.base_dir)
        try:
            with torch.device("meta"):
                # The data's shape is known when a plan is made (plan.check_models); the build alone is checked here.
                instantiate(find_architecture(preset.arch, spec.base_dir, f"{where}.arch"), dict(preset.args),
                            DEFAULT_INPUTS, where)
        except SpecError:
            raise
        except Exception as err:  # a builder given a wrong value can raise anything
            raise SpecError(f'models."{name}".args: {preset.arch!r} cannot be built from {dict(preset.args)!r} '
                            f"({type(err).__name__}: {err})") from None


def _read_toml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise SpecError(f"{path}: spec file not found. Pass --spec PATH, or run from the folder holding experiments.toml.")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise SpecError(f"{path}: not UTF-8 text (byte {err.start}: {raw[err.start:err.start + 1]!r}); save the file as UTF-8.") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise SpecError(f"{path}: TOML syntax error: {err}. Fix the file at that line and column.") from None


def _format_validation_error(path: Path, err: ValidationError) -> str:
    lines = []
    for detail in err.errors()[:5]:
        loc = _format_location(detail["loc"])
        msg = detail["msg"].removeprefix("Value error, ")
        cause = detail.get("ctx", {}).get("error")
        if isinstance(cause, VocabularyError):  # a view or observer argument: its path below the field
            loc, msg = loc + cause.subpath, cause.message
        if detail["type"] == "extra_forbidden":
            msg = f"unknown key; allowed here: {', '.join(_allowed_keys(detail['loc']))}"
        got = detail.get("input")
        got_text = "" if detail["type"] in ("extra_forbidden", "value_error", "missing") else f" (got {got!r:.80})"
        lines.append(f"{loc}: {msg}{got_text}" if loc else f"{msg}")
    more = f" (and {len(err.errors()) - 5} more)" if len(err.errors()) > 5 else ""
    return f"{path}: invalid spec. " + "; ".join(lines) + more


def _format_location(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for previous, item in zip((None,) + tuple(loc), loc):
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif previous in ("questions", "models", "profiles", "protocols") or not str(item).isidentifier():
            parts.append(f'."{item}"')
        elif str(item).startswith(("function-after[", "nullable[", "union[")):
            continue  # pydantic's validator or union tags: not keys the user wrote
        else:
            parts.append(f".{item}")
    return "".join(parts).lstrip(".")


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    """The keys allowed at the parent of `loc`, found by walking the models."""
    model: Any = Spec
    for item in loc[:-1]:
        fields = getattr(model, "model_fields", None)
        if fields and item in fields:
            model = _inner_model(fields[item].annotation)
    fields = getattr(model, "model_fields", {})
    return sorted(fields) or ["(see the documentation)"]


def _inner_model(annotation: Any) -> Any:
    """The BaseModel inside list[...]/dict[str, ...]/Optional[...], or the annotation itself."""
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _inner_model(arg)
        if isinstance(found, type) and issubclass(found, BaseModel):
            return found
    return annotation
