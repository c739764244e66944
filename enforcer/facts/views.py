"""Read-only views of Docker JSON whose keys match without regard to case, at every depth.

The original docker-enforcer lowercased every key, so its users' rules say `params['hostconfig']['memory']`;
its README says `params['HostConfig']['Memory']`. Both must work, label keys included. The views wrap
lazily (a child is wrapped on first access and kept), so a rule that reads two keys pays for two keys.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any


class ReadOnlyError(TypeError):
    """Raised when a rule tries to change the facts it was given."""


class CaseInsensitiveMap(Mapping[str, Any]):
    """A read-only mapping over a JSON object; `m['HostConfig']` and `m['hostconfig']` are the same."""

    __slots__ = ("_data", "_folded", "_children")

    def __init__(self, data: Mapping[str, Any]) -> None:
        self._data = data
        self._folded: dict[str, str] | None = None
        self._children: dict[str, Any] = {}

    def _key(self, key: object) -> str:
        if isinstance(key, str):
            if key in self._data:
                return key
            if self._folded is None:
                self._folded = {k.casefold(): k for k in self._data}
            real = self._folded.get(key.casefold())
            if real is not None:
                return real
        raise KeyError(key)

    def __getitem__(self, key: str) -> Any:
        real = self._key(key)
        try:
            return self._children[real]
        except KeyError:
            child = self._children[real] = wrap(self._data[real])
            return child

    def __contains__(self, key: object) -> bool:
        try:
            self._key(key)
        except KeyError:
            return False
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._data!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, CaseInsensitiveMap):
            return self._data == other._data
        if isinstance(other, Mapping):
            return dict(self._data) == dict(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def raw(self) -> Mapping[str, Any]:
        """The wrapped JSON object itself (do not modify it)."""
        return self._data


def _refuse(self: Any, *args: Any, **kwargs: Any) -> None:
    raise ReadOnlyError("container facts are read-only")


class FrozenList(list[Any]):
    """A list that refuses changes; it still compares equal to a plain list, as rules expect."""

    __slots__ = ()
    append = extend = insert = remove = pop = clear = sort = reverse = _refuse
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse  # type: ignore[assignment]

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(self))


def wrap(value: Any) -> Any:
    """Wrap JSON values: objects become CaseInsensitiveMap, arrays FrozenList; scalars stay as they are."""
    if isinstance(value, Mapping) and not isinstance(value, CaseInsensitiveMap):
        return CaseInsensitiveMap(value)
    if isinstance(value, list) and not isinstance(value, FrozenList):
        return FrozenList(wrap(item) for item in value)
    return value


EMPTY = CaseInsensitiveMap({})
