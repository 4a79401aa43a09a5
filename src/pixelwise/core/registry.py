"""One pattern for every extension point: a named :class:`Registry` filled by a decorator.

Models, dataset formats, losses, inference backends, export formats and class presets each have one
(``pixelwise.models.registry``, ``pixelwise.data.formats.base``, ...), with ``register_*`` to add an
entry, ``list_*`` for the names and ``create_*`` (or ``get_*``) to use one. An unknown name is one error
line listing the known ones; the CLI's help texts and ``pixelwise models`` are read from the registries.

>>> shapes = Registry("shape", hint="see `pixelwise shapes`")
>>> @shapes.register("square")
... def square(side: int = 2) -> int:
...     '''A square of ``side``.'''
...     return side * side
>>> shapes.names(), shapes.get("square")(3), shapes.describe("square")
(['square'], 9, 'A square of ``side``.')
>>> try:
...     shapes.get("circle")
... except ConfigError as e:
...     print(e)
unknown shape 'circle'; choose one of square (see `pixelwise shapes`)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from pixelwise.core.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Entries of one kind by name, in the order they were registered."""

    def __init__(self, kind: str, hint: str = "") -> None:
        self.kind, self.hint = kind, hint
        self._entries: dict[str, T] = {}

    def register(self, name: str | None = None) -> Callable[[T], T]:
        """Decorator: register a function or class under ``name`` (default: its ``__name__``)."""

        def add(entry: T) -> T:
            self.add(name or entry.__name__, entry)  # type: ignore[attr-defined]
            return entry

        return add

    def add(self, name: str, entry: T) -> T:
        """Register ``entry`` under ``name``; registering a name again replaces the entry (a reloaded module)."""
        self._entries[name] = entry
        return entry

    def remove(self, name: str) -> None:
        """Forget ``name`` (tests that register a toy entry clean up after themselves)."""
        self._entries.pop(name, None)

    def get(self, name: str) -> T:
        """The entry called ``name``; an unknown name raises :class:`ConfigError` listing the known ones."""
        if name not in self._entries:
            hint = f" ({self.hint})" if self.hint else ""
            raise ConfigError(f"unknown {self.kind} '{name}'; choose one of {', '.join(sorted(self.names()))}{hint}")
        return self._entries[name]

    def names(self) -> list[str]:
        return list(self._entries)

    def describe(self, name: str) -> str:
        """The first line of the entry's docstring (what ``--help`` and the README tables show)."""
        doc = (getattr(self.get(name), "__doc__", None) or "").strip()
        return doc.splitlines()[0] if doc else ""

    def choices(self) -> str:
        """The names as one comma list, for help texts."""
        return ", ".join(self.names())

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)
