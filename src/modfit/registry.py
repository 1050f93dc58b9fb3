"""A name → implementation map, so a new attack, tuning method or defence touches one file.

Every registry has the same shape: `register(name, Options, build)` (or `@register(name, Options)` on
`build`), where `Options` is a frozen dataclass of the implementation's settings. The registry turns
the user's plain options into that record (`parse`): unknown keys, wrong types and failed `validate()`
checks are one-line errors, found before any data is read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from modfit.config import from_dict
from modfit.errors import ModfitError

E = TypeVar("E")


@dataclass(frozen=True)
class NoOptions:
    """The options record of an implementation that takes none (any key is an error)."""


@dataclass(frozen=True)
class Entry:
    """A registered implementation: its name, its options record and the function that builds it."""

    name: str
    options: type = NoOptions
    build: Callable[..., Any] | None = None


class Registry(Generic[E]):
    """`entry` makes the stored record from `(name, options, build, **fields)`; by default an `Entry`."""

    def __init__(self, kind: str, entry: Callable[..., E] = Entry) -> None:
        self.kind = kind
        self.entry = entry
        self._items: dict[str, E] = {}

    def register(self, name: str, options: type = NoOptions, build: Callable | None = None, **fields: Any):
        """Register `build` as `name` with its `options` record; without `build`, a decorator that
        registers the function it decorates and returns it unchanged."""

        def add(function: Callable) -> Callable:
            self.add(name, self.entry(name, options, function, **fields))
            return function

        return add if build is None else add(build)

    def add(self, name: str, entry: E) -> E:
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._items[name] = entry
        return entry

    def get(self, name: str) -> E:
        try:
            return self._items[name]
        except KeyError:
            raise ModfitError(
                f"unknown {self.kind} {name!r}; choose one of: {', '.join(self.names())}"
            ) from None

    def parse(self, name: str, options: Mapping[str, Any]) -> Any:
        """`options` as the typed record of `name` (an unknown name is an error too)."""
        record = self.get(name).options
        if record is NoOptions and options:
            raise ModfitError(f"{self.kind} {name!r} takes no options, got {sorted(options)[0]!r}")
        return from_dict(record, options, where=f"{name} options")

    def entries(self) -> list[E]:
        """Every entry, in the order they were registered."""
        return list(self._items.values())

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: str) -> bool:
        return name in self._items
