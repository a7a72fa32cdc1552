"""One registry shape for every pluggable variant (descriptors, learners, ...): a dict and a decorator."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from matlib.errors import MatlibError

T = TypeVar("T")


class Registry(Generic[T]):
    """Named entries of one kind, filled at import by `@registry.register(alias)` or `registry.add(alias, entry)`."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def add(self, alias: str, entry: T) -> T:
        """Register entry under alias (a second entry under the same alias is a programming error)."""
        if alias in self._entries and self._entries[alias] is not entry:
            raise ValueError(f"{self.kind} {alias!r} is already registered")
        self._entries[alias] = entry
        return entry

    def register(self, alias: str) -> Callable[[T], T]:
        """Decorator form of `add`."""

        def deco(entry: T) -> T:
            return self.add(alias, entry)

        return deco

    def get(self, alias: str) -> T:
        """The entry registered as alias; a one-line MatlibError naming the known ones otherwise."""
        try:
            return self._entries[alias]
        except KeyError:
            raise MatlibError(f"unknown {self.kind} {alias!r}; known: {', '.join(sorted(self._entries))}") from None

    def __contains__(self, alias: object) -> bool:
        return alias in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._entries))

    def __len__(self) -> int:
        return len(self._entries)
