"""Read-only views of Docker JSON whose keys match without regard to case, at every depth.

The original docker-enforcer lowercased every key, so its users' rules say `params['hostconfig']['memory']`;
its README says `params['HostConfig']['Memory']`. Both must work, label keys included. The views wrap
lazily (a child is wrapped on first access and kept), so a rule that reads two keys pays for two keys.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any


class ReadOnlyError(TypeError):
    """Raised when a rule tries to change the facts it was given."""


_MISSING = object()


class CaseInsensitiveMap(dict[str, Any]):
    """A read-only JSON object; `m['HostConfig']` and `m['hostconfig']` are the same.

    A dict subclass, as the original's plain dicts were, so `json.dumps(c.params)`, `dict(...)` and
    `.copy()` work in rules and triggers; every way of changing it raises ReadOnlyError.
    """

    __slots__ = ("_folded", "_children")

    def __init__(self, data: Mapping[str, Any]) -> None:
        super().__init__(data)
        self._folded: dict[str, str] | None = None
        self._children: dict[str, Any] = {}

    def _key(self, key: object) -> str:
        if isinstance(key, str):
            if dict.__contains__(self, key):
                return key
            if self._folded is None:
                self._folded = {k.casefold(): k for k in dict.keys(self)}
            real = self._folded.get(key.casefold())
            if real is not None:
                return real
        raise KeyError(key)

    def __getitem__(self, key: str) -> Any:
        real = self._key(key)
        child = self._children.get(real, _MISSING)
        if child is _MISSING:
            child = self._children[real] = wrap(dict.__getitem__(self, real))
        return child

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    def __contains__(self, key: object) -> bool:
        try:
            self._key(key)
        except KeyError:
            return False
        return True

    def items(self) -> list[tuple[str, Any]]:  # type: ignore[override]
        return [(key, self[key]) for key in dict.keys(self)]

    def values(self) -> list[Any]:  # type: ignore[override]
        return [self[key] for key in dict.keys(self)]

    def copy(self) -> dict[str, Any]:
        """A plain, changeable shallow copy of the raw JSON object."""
        return dict(dict.items(self))

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[str, Any]:
        return copy.deepcopy(dict(dict.items(self)), memo)

    def __reduce__(self) -> tuple[Any, ...]:
        return (dict, (dict(dict.items(self)),))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({dict.__repr__(self)})"

    def raw(self) -> Mapping[str, Any]:
        """The JSON object as plain values (a shallow copy)."""
        return self.copy()


def _refuse(self: Any, *args: Any, **kwargs: Any) -> None:
    raise ReadOnlyError("container facts are read-only")


class FrozenList(list[Any]):
    """A list that refuses changes; it still compares equal to a plain list, as rules expect."""

    __slots__ = ()
    append = extend = insert = remove = pop = clear = sort = reverse = _refuse
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse  # type: ignore[assignment]

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(self))


for _name in ("__setitem__", "__delitem__", "__ior__", "clear", "pop", "popitem", "setdefault", "update"):
    setattr(CaseInsensitiveMap, _name, _refuse)


def wrap(value: Any) -> Any:
    """Wrap JSON values: objects become CaseInsensitiveMap, arrays FrozenList; scalars stay as they are."""
    if isinstance(value, Mapping) and not isinstance(value, CaseInsensitiveMap):
        return CaseInsensitiveMap(value)
    if isinstance(value, list) and not isinstance(value, FrozenList):
        return FrozenList(wrap(item) for item in value)
    return value


EMPTY = CaseInsensitiveMap({})
