"""What a rules file defines: rules, whitelist rules and triggers, as small frozen values."""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from enforcer.judge.exceptions import RuleException
from enforcer.settings import Mode


class Severity(enum.Enum):
    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Rule:
    """One rule: a truthy result of `check(container)` is a violation."""

    name: str
    check: Callable[[Any], Any] = field(repr=False, compare=False)
    description: str = ""
    severity: Severity = Severity.MEDIUM
    mode: Mode | None = None  # Mode.WARN makes the rule record-only even in a KILL instance
    prevent: bool = False  # remove a violator found at create time, before it starts (KILL mode)
    meta: Mapping[str, Any] = field(default_factory=dict, compare=False)  # library extras: id, cis, tags...

    def __str__(self) -> str:
        return f"Rule {self.name!r}"

    def effective_mode(self, instance_mode: Mode) -> Mode:
        return Mode.WARN if self.mode is Mode.WARN else instance_mode

    def summary(self) -> dict[str, Any]:
        """A JSON-able description (for `check`, /rules and logs)."""
        out: dict[str, Any] = {"name": self.name, "severity": str(self.severity)}
        out["mode"] = str(self.mode) if self.mode else None
        if self.prevent:
            out["prevent"] = True
        if self.description:
            out["description"] = self.description
        for key in ("id", "cis", "tags"):
            if key in self.meta:
                value = self.meta[key]
                out[key] = list(value) if isinstance(value, (tuple, list)) else value
        return out


@dataclass(frozen=True)
class WhitelistRule:
    """A custom whitelist lambda: `check(container, violated_rule_name)` true exempts the container."""

    name: str
    check: Callable[[Any, str], Any] = field(repr=False, compare=False)

    def __str__(self) -> str:
        return f"Whitelist rule {self.name!r}"


@dataclass(frozen=True)
class Trigger:
    """A user callable run with the verdict after every violation."""

    name: str
    call: Callable[[Any], Any] = field(repr=False, compare=False)

    def __str__(self) -> str:
        return f"Trigger {self.name!r}"


@dataclass(frozen=True)
class Loaded:
    """The content of one user file, with where it came from and its sha256 (the rules version)."""

    path: str
    sha256: str
    text: str
    items: tuple[Any, ...]
    exceptions: tuple[RuleException, ...] = ()  # a rules file's `exceptions = [...]`
