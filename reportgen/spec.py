"""Stage 1: `experiments.toml` → validated, frozen spec models.

Only the file's shape and its internal references are checked here; names that
live in code registries (architectures, views, observers) are checked by `plan`.
No torch import, so `reportgen list` stays fast.
"""
from __future__ import annotations

import math
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from reportgen.errors import SpecError

DATASETS = ("fashion-mnist", "mnist")
QUESTION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
MAX_RUNS_PER_GRID = 200  # a guard against a typo that expands into thousands of trainings
Scalar = Union[bool, int, float, str]
MAX_SEEDS = 50
# A count (the first n seeds from the run's `seed`) or an explicit list of seeds.
Seeds = Union[Annotated[int, Field(gt=0, le=MAX_SEEDS)], Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=1, max_length=MAX_SEEDS)]]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelPreset(_Model):
    arch: str  # a name in models.ARCHITECTURES
    label: str
    args: dict[str, Union[Scalar, list[int]]] = {}
    image_size: int = Field(28, gt=0, le=512)  # input resize the architecture needs


class RunParams(_Model):
    """Everything a run may set; a grid gives each field one value or a list of values."""

    dataset: Literal["fashion-mnist", "mnist"] | None = None
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


class Reference(_Model):
    """A number from the seeds that the report checks our measurement against."""

    select: dict[str, Scalar]
    metric: Literal["final_accuracy", "best_accuracy", "epochs_to_target", "params"]
    value: float | Literal["not reached"]
    tolerance: float = Field(2.0, ge=0)
    unit: str = ""
    source: str = ""
    note: str = ""


class _View(_Model):
    caption: str = ""


class TableView(_View):
    kind: Literal["table"]
    columns: list[str] = Field(min_length=1)


class EpochTableView(_View):
    kind: Literal["epoch_table"]
    log_every: int = Field(100, gt=0)  # batches between logged training losses


class CurvesView(_View):
    kind: Literal["curves"]
    metrics: list[Literal["train_loss", "test_loss", "test_accuracy"]] = Field(min_length=1)
    facet: str = "model"  # one panel per value of this run field
    log_y: bool | None = None  # None: log scale when losses span more than a decade


class StepCurvesView(_View):
    kind: Literal["step_curves"]
    series: list[Literal["step_loss", "grad_mean", "grad_abs_mean", "grad_norm"]] = Field(min_length=1)
    steps: int = Field(100, gt=0)
    facet: str = "model"


class BarsView(_View):
    kind: Literal["bars"]
    metric: Literal["final_accuracy", "best_accuracy", "params", "seconds_per_epoch"]


class ImageGridView(_View):
    kind: Literal["image_grid"]
    dataset: Literal["fashion-mnist", "mnist"]
    per_class: int = Field(1, gt=0, le=10)
    classes: list[int] | None = None


class DatasetTableView(_View):
    kind: Literal["dataset_table"]
    dataset: Literal["fashion-mnist", "mnist"]


View = Annotated[
    Union[TableView, EpochTableView, CurvesView, StepCurvesView, BarsView, ImageGridView, DatasetTableView],
    Field(discriminator="kind"),
]


class Observer(_Model):
    kind: str  # a name in analysis.observations.OBSERVERS
    args: dict[str, Union[Scalar, list[Scalar]]] = {}


class Question(_Model):
    title: str
    part: str
    prompt: str
    protocol: str | None = None
    runs: list[dict[str, Union[Scalar, list[Scalar]]]] = []
    include_runs_of: list[str] = []
    views: list[View] = []
    observers: list[Observer] = []
    references: list[Reference] = []


class Spec(_Model):
    title: str
    author: str = ""
    seed: int = Field(0, ge=0)
    seeds: Seeds = 1  # seeds per run point unless a profile, protocol or grid says otherwise
    protocols: dict[str, RunParams]
    models: dict[str, ModelPreset]
    profiles: dict[str, Profile]
    questions: dict[str, Question]

    @field_validator("questions")
    @classmethod
    def _has_questions(cls, questions: dict[str, Question]) -> dict[str, Question]:
        if not questions:
            raise ValueError("the spec declares no questions")
        return questions

    @model_validator(mode="after")
    def _check_references(self) -> "Spec":
        for required in ("full", "cpu", "smoke"):
            if required not in self.profiles:
                raise ValueError(f"profile {required!r} is missing; every spec declares full, cpu and smoke")
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
        for key in reference.select:
            if key not in GRID_FIELDS:
                raise ValueError(f"{where}.references[{i}].select.{key}: unknown run field; allowed: {', '.join(GRID_FIELDS)}")
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


def _check_grid_value(spec: Spec, where: str, key: str, value: Any) -> None:
    if key == "model" and value not in spec.models:
        raise ValueError(f"{where}: unknown model {value!r}; known: {', '.join(sorted(spec.models))}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{where}: {value!r} is not a finite number")
    try:
        RunParams(**{key: value})
    except ValidationError as err:
        detail = err.errors()[0]
        raise ValueError(f"{where}: {detail['msg']} (got {value!r})") from None


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
    """Read and validate a spec file; every user error becomes a SpecError."""
    data = _read_toml(Path(path))
    try:
        return Spec(**data)
    except ValidationError as err:
        raise SpecError(_format_validation_error(Path(path), err)) from None
    except ValueError as err:  # raised by our own validators outside pydantic's wrapping
        raise SpecError(f"{path}: {err}") from None


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
        elif item in ("table", "epoch_table", "curves", "step_curves", "bars", "image_grid", "dataset_table"):
            continue  # pydantic's union tag: not a key the user wrote
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
        elif isinstance(item, str) and item in _VIEW_KINDS:
            model = _VIEW_KINDS[item]
    fields = getattr(model, "model_fields", {})
    return sorted(fields) or ["(see the documentation)"]


def _inner_model(annotation: Any) -> Any:
    """The BaseModel inside list[...]/dict[str, ...]/Optional[...], or the annotation itself."""
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _inner_model(arg)
        if isinstance(found, type) and issubclass(found, BaseModel):
            return found
    return annotation


_VIEW_KINDS = {m.model_fields["kind"].annotation.__args__[0]: m for m in
               (TableView, EpochTableView, CurvesView, StepCurvesView, BarsView, ImageGridView, DatasetTableView)}
