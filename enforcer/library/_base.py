"""What a ready rule is: a small frozen spec that turns into the ordinary rule dict the loader accepts.

Ready rules are plain rule dicts (`name`, `rule`, `description`, `severity` plus the library keys `id`, `cis`,
`tags`, `remediation`), so whitelists, STOP_ON_FIRST_VIOLATION, per-rule `mode` and triggers treat them like
the user's own lambdas. Each call of `as_rule()` gives a fresh dict: a rules file that edits one (to add
`"mode": "WARN"`, say) never changes the library for anyone else.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

SEVERITIES = ("info", "low", "medium", "high", "critical")
_ID = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
_CIS = re.compile(r"^[0-9]+(\.[0-9]+)+$")

Check = Callable[[Any], bool]


class LibraryError(ValueError):
    """A ready rule asked for with bad parameters, or an unknown selector; the message says what to use."""


@dataclass(frozen=True)
class RuleSpec:
    """One ready rule: its check and everything the docs and reports say about it.

    `cis` is the CIS Docker Benchmark v1.6 id ("5.5") or None; `description` says what is checked and why,
    `remediation` how to fix a container that violates it.
    """

    id: str
    name: str
    check: Check
    severity: str
    description: str
    remediation: str
    cis: str | None = None
    tags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not _ID.match(self.id):
            raise LibraryError(f"rule id {self.id!r} must be lowercase words joined by '-'")
        if not self.name or "," in self.name or "|" in self.name:
            # WHITE_LIST entries are comma-separated and split `pattern|rule name` on the first '|'.
            raise LibraryError(f"rule {self.id}: name {self.name!r} must be non-empty, without ',' or '|'")
        if self.severity not in SEVERITIES:
            raise LibraryError(f"rule {self.id}: severity {self.severity!r} is not one of {SEVERITIES}")
        if self.cis is not None and not _CIS.match(self.cis):
            raise LibraryError(f"rule {self.id}: CIS id {self.cis!r} must look like '5.5'")
        if not callable(self.check):
            raise LibraryError(f"rule {self.id}: check must be callable")

    def __str__(self) -> str:
        return f"Library rule {self.id!r}"

    def as_rule(self) -> dict[str, Any]:
        """The rule dict a rules file puts in its `rules` list (a new dict on every call)."""
        return {
            "id": self.id,
            "name": self.name,
            "rule": self.check,
            "severity": self.severity,
            "description": self.description,
            "remediation": self.remediation,
            "cis": self.cis,
            "tags": list(self.tags),
        }

    def selectors(self) -> frozenset[str]:
        """The keys `select` finds this rule by: its id, `cis-<id>` and its tags."""
        keys = {self.id, *self.tags}
        if self.cis:
            keys.add(f"cis-{self.cis}")
        return frozenset(keys)


def unique(specs: Iterable[RuleSpec]) -> tuple[RuleSpec, ...]:
    """The specs in order, each id once (a rule shared by two groups, such as no-privileged, stays one)."""
    seen: dict[str, RuleSpec] = {}
    for spec in specs:
        if spec.id in seen and seen[spec.id] is not spec:
            raise LibraryError(f"two different library rules have the id {spec.id!r}")
        seen.setdefault(spec.id, spec)
    return tuple(seen.values())


def selected(specs: Iterable[RuleSpec], keys: Iterable[str], what: str = "select") -> tuple[RuleSpec, ...]:
    """The specs (in their order, each once) that any key names by id, `cis-<id>` or tag.

    A key that names none of them is an error, so that a typo fails when the rules file loads.
    """
    specs = unique(specs)
    wanted = _keys(keys, what)
    known = frozenset().union(*(spec.selectors() for spec in specs))
    unknown = [key for key in wanted if key not in known]
    if unknown:
        raise LibraryError(
            f"{what}: {', '.join(map(repr, unknown))} names no library rule; use a rule id "
            f"(such as 'no-privileged'), 'cis-<number>' (such as 'cis-5.5') or a tag: {', '.join(sorted(known))}"
        )
    return tuple(spec for spec in specs if not spec.selectors().isdisjoint(wanted))


def excluding(specs: Iterable[RuleSpec], keys: Iterable[str]) -> tuple[RuleSpec, ...]:
    """The specs minus those the keys name (id, `cis-<id>` or tag); unknown keys are an error."""
    specs = unique(specs)
    dropped = {spec.id for spec in selected(specs, keys, "exclude")}
    return tuple(spec for spec in specs if spec.id not in dropped)


def _keys(keys: Iterable[str], what: str) -> list[str]:
    if isinstance(keys, str):
        keys = [keys]  # exclude="apparmor-profile" means one key, not its letters
    out = []
    for key in keys:
        if not isinstance(key, str) or not key.strip():
            raise LibraryError(f"{what}: {key!r} is not a rule id, 'cis-<number>' or tag")
        out.append(key.strip().lower())
    return out


def named(factory: str, default: str, name: str | None) -> str:
    """The rule's name: the caller's, or the default built from the parameters if that is usable."""
    chosen = default if name is None else name
    if not isinstance(chosen, str) or not chosen.strip():
        raise LibraryError(f"{factory}: name {chosen!r} must be a non-empty string")
    if "," in chosen or "|" in chosen:
        hint = "" if name is not None else " (it is built from the parameters); pass name='...'"
        raise LibraryError(f"{factory}: rule name {chosen!r} may not contain ',' or '|'{hint}")
    return chosen


@dataclass(frozen=True)
class FactorySpec:
    """A rule factory and the example arguments the docs and the example tests call it with."""

    factory: Callable[..., dict[str, Any]]
    args: tuple[Any, ...] = ()
    kwargs: tuple[tuple[str, Any], ...] = ()

    @property
    def call(self) -> str:
        """The example call as a user would write it, e.g. `limits.memory_at_most('2g')`."""
        parts = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs]
        module = self.factory.__module__.rsplit(".", 1)[-1]
        return f"{module}.{self.factory.__name__}({', '.join(parts)})"

    def example(self) -> dict[str, Any]:
        return self.factory(*self.args, **dict(self.kwargs))


def example(factory: Callable[..., dict[str, Any]], *args: Any, **kwargs: Any) -> FactorySpec:
    return FactorySpec(factory, args, tuple(kwargs.items()))
