"""What a rules file defines: rules, whitelist rules and triggers, as small frozen values."""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from enforcer.judge.exceptions import RuleException
from enforcer.settings import Mode
from enforcer.units import text_size


class Severity(enum.Enum):
    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    def __str__(self) -> str:
        return self.value


class Remedy(enum.Enum):
    """What KILL mode does to a violator of a rule (its "action" key)."""

    KILL = "kill"  # today's: SIGKILL, or `docker stop` with STOP_TIMEOUT_S
    STOP = "stop"  # graceful: `docker stop` with STOP_TIMEOUT_S, or 10 s
    PAUSE = "pause"
    LIMIT = "limit"  # a container update with the rule's "limits", left running

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Limits:
    """A rule's "limits" for "action": "limit"; None: left as it is."""

    memory_bytes: int | None = None
    nano_cpus: int | None = None
    pids: int | None = None

    def __str__(self) -> str:
        """`memory 2g, cpus 1.5, pids 512`."""
        parts = [] if self.memory_bytes is None else [f"memory {text_size(self.memory_bytes)}"]
        parts += [] if self.nano_cpus is None else [f"cpus {self.nano_cpus / 1e9:g}"]
        parts += [] if self.pids is None else [f"pids {self.pids}"]
        return ", ".join(parts)

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.memory_bytes is not None:
            out["memory"] = self.memory_bytes
        if self.nano_cpus is not None:
            out["cpus"] = self.nano_cpus / 1e9
        if self.pids is not None:
            out["pids"] = self.pids
        return out


@dataclass(frozen=True)
class Rule:
    """One rule: a truthy result of `check(container)` is a violation.

    Held over time (`for_s` or `grace_s` set): judged on every sample (SAMPLE_INTERVAL_S), violated once it
    held for `for_s`, acted on `grace_s` after the owner was told (see enforcer/record/episodes.py)."""

    name: str
    check: Callable[[Any], Any] = field(repr=False, compare=False)
    description: str = ""
    severity: Severity = Severity.MEDIUM
    mode: Mode | None = None  # Mode.WARN makes the rule record-only even in a KILL instance
    prevent: bool = False  # remove a violator found at create time, before it starts (KILL mode)
    meta: Mapping[str, Any] = field(default_factory=dict, compare=False)  # library extras: id, cis, tags...
    for_s: float = 0.0  # "for": violated only once it held on every sample for this long
    grace_s: float = 0.0  # "grace": the owner is told, the action waits this long
    action: Remedy = Remedy.KILL  # "action"
    limits: Limits | None = None  # "limits", for Remedy.LIMIT

    def __str__(self) -> str:
        return f"Rule {self.name!r}"

    @property
    def timed(self) -> bool:
        """Held over time: judged by the sampler, not by event checks and sweeps."""
        return self.for_s > 0 or self.grace_s > 0

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
        if self.for_s:
            out["for_s"] = self.for_s
        if self.grace_s:
            out["grace_s"] = self.grace_s
        if self.action is not Remedy.KILL:
            out["action"] = str(self.action)
        if self.limits is not None:
            out["limits"] = self.limits.summary()
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
    """A user callable run with the verdict after every violation; with `once`, run with a Notice when an
    episode starts and when it ends instead (enforcer.notify), and with `repeat` also every minute while one
    is open. `target` says where it sends, without secrets (scheme and host), for the API and the page."""

    name: str
    call: Callable[[Any], Any] = field(repr=False, compare=False)
    once: bool = False
    repeat: bool = False
    target: str | None = None

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
    max_new_stops: int | None = None  # a rules file's `max_new_stops = N` (the blast-radius guard's limit)
