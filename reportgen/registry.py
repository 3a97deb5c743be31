"""Named registries for the spec's vocabulary (metrics, view kinds, observers, data sets, architectures).

Each concept keeps one `Registry` in its own module; every entry declares its arguments as a pydantic
model. Spec validation, rendering, `reportgen vocab` and the README's reference all read the registries.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
import types
from typing import Annotated, Any, Generic, Iterator, Literal, Protocol, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, ValidationError

from reportgen.errors import SpecError


class Args(BaseModel):
    """Base of every entry's arguments: unknown keys are errors, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NoArgs(Args):
    """An entry that takes no arguments."""


class _Named(Protocol):
    name: str
    help: str


E = TypeVar("E", bound=_Named)


class VocabularyError(ValueError):
    """A bad name or argument, with the key path below the field pydantic reports (e.g. '[1].metrics[0]')."""

    def __init__(self, subpath: str, message: str):
        super().__init__(message)
        self.subpath, self.message = subpath, message


class Registry(Generic[E]):
    """Entries by name, refusing duplicates; lookups of unknown names suggest the closest one."""

    def __init__(self, concept: str):
        self.concept = concept
        self._entries: dict[str, E] = {}

    def add(self, entry: E) -> E:
        if entry.name in self._entries:
            raise ValueError(f"{self.concept} {entry.name!r} is already registered")
        self._entries[entry.name] = entry
        return entry

    def remove(self, name: str) -> None:
        self._entries.pop(name, None)

    # Mapping access, so that tests can swap an entry with pytest's monkeypatch.setitem.
    def __getitem__(self, name: str) -> E:
        return self._entries[name]

    def __setitem__(self, name: str, entry: E) -> None:
        self._entries[name] = entry

    def __delitem__(self, name: str) -> None:
        del self._entries[name]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:  # names, as a dict iterates its keys
        return iter(list(self._entries))

    def names(self) -> list[str]:
        return list(self._entries)

    def entries(self) -> list[E]:
        return list(self._entries.values())

    def get(self, name: str, where: str = "") -> E:
        """The entry, or a SpecError naming `where`, the allowed names and the closest one."""
        if name not in self._entries:
            raise SpecError(unknown_name_message(self.concept, name, self.names(), where))
        return self._entries[name]


def unknown_name_message(concept: str, name: Any, allowed: list[str], where: str = "") -> str:
    close = difflib.get_close_matches(str(name), allowed, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    prefix = f"{where}: " if where else ""
    return f"{prefix}unknown {concept} {name!r}.{hint} Allowed: {', '.join(allowed)}."


def parse_args(model: type[BaseModel], raw: Any, subpath: str) -> BaseModel:
    """`raw` validated into the entry's argument model; errors carry their key path below `subpath`."""
    try:
        return model.model_validate(raw if raw is not None else {})
    except ValidationError as err:
        detail = min(err.errors(), key=lambda d: d["type"] != "extra_forbidden")  # a misspelt key explains the rest
        loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in detail["loc"])
        message = detail["msg"].removeprefix("Value error, ")
        if detail["type"] == "extra_forbidden":
            message = f"unknown argument; allowed: {', '.join(model.model_fields) or 'none'}"
        elif detail["type"] != "missing":
            message += f" (got {detail.get('input')!r:.80})"
        raise VocabularyError(subpath + loc, message) from None


# ---------------------------------------------------------------- help text for `reportgen vocab`

@dataclass(frozen=True)
class ArgHelp:
    name: str
    type: str
    default: str  # '' when required
    help: str


def describe_args(model: type[BaseModel]) -> list[ArgHelp]:
    """Each argument's name, type, default and description, as `reportgen vocab` prints them."""
    described = []
    for name, field in model.model_fields.items():
        if name == "kind":
            continue
        default = "" if field.is_required() else repr(field.get_default(call_default_factory=True))
        described.append(ArgHelp(name, type_name(field.annotation), default, field.description or ""))
    return described


def type_name(annotation: Any) -> str:
    """int, list[str], 'a' | 'b', int | None... as a spec author reads them."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is None:
        return getattr(annotation, "__name__", str(annotation))
    if origin is Annotated:  # constraints and validators: the author writes the base type
        return type_name(args[0])
    if origin is Literal:
        return " | ".join(repr(a) for a in args)
    if origin in (list, tuple, dict):
        return f"{origin.__name__}[{', '.join(type_name(a) for a in args)}]"
    if origin in (Union, types.UnionType):
        return " | ".join("None" if a is type(None) else type_name(a) for a in args)
    return str(annotation).replace("typing.", "")


def first_line(text: str | None) -> str:
    return (text or "").strip().splitlines()[0] if (text or "").strip() else ""
