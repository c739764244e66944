"""What one check found and did, as handed to the detections store and the logs."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from enforcer.facts.redaction import scrub
from enforcer.settings import Mode


def utcnow() -> datetime:
    return datetime.now(UTC)


class Source(enum.StrEnum):
    """Which kind of check found a violator; the value is what the API, the store and the metrics show."""

    PERIODIC = (
        "periodic"  # a sweep: the scheduled one, or the catch-up sweep after the event stream reconnects
    )
    EVENT = "event"  # a start, update or rename event
    CREATE = "create"  # a create event: judged on its params before it started
    SAMPLE = "sample"  # a rule held over time, judged every SAMPLE_INTERVAL_S
    EXEC = "exec"  # an exec_start event (RUN_EXEC_EVENTS): judged with `c.exec` set


class Action(enum.StrEnum):
    """What the enforcer did (or would have done) about a violator."""

    KILL = "kill"  # SIGKILL (STOP_TIMEOUT_S=0)
    STOP = "stop"  # graceful stop with STOP_TIMEOUT_S of grace
    WOULD_STOP = "would stop"  # WARN mode or a rule with "mode": "WARN"
    PAUSE = "pause"  # a rule's "action": "pause"
    WOULD_PAUSE = "would pause"
    LIMIT = "limit"  # a rule's "action": "limit": a container update, left running
    WOULD_LIMIT = "would limit"
    PREVENT = "prevent"  # removed at create time, before it started
    WOULD_PREVENT = "would prevent"


class Outcome(enum.StrEnum):
    """How an action ended; the reason of a failure is kept apart, in an `outcome_detail` field."""

    STOPPED = "stopped"
    ALREADY_GONE = "already gone"
    RECORDED = "recorded"  # nothing done: WARN
    HELD = "held"  # nothing done: a safeguard held the action back (outcome_detail says which)
    PREVENTED = "prevented"
    FAILED = "failed"
    PAUSED = "paused"
    LIMITED = "limited"  # outcome_detail says the old and new limits
    WARNED = "warned"  # a grace started: outcome_detail says when the action runs unless fixed


class Phase(enum.StrEnum):
    """Where an episode of a rule held over time stands (see `enforcer.record.episodes`); the value is what
    triggers read in `v.phase`, and what the API, the page and the metrics show."""

    PENDING = "pending"  # `for` running: violated on every sample since the episode started
    WARNED = "warned"  # grace running: the owner was told; the action runs at the deadline unless fixed
    ENFORCED = "enforced"  # the action ran (KILL mode)
    RECORDED = "recorded"  # WARN mode: what would have been done was recorded
    RESOLVED = "resolved"  # ended without action: fixed in time, or the container went away while warned


def outcome_text(outcome: Outcome, detail: str | None) -> str:
    """The outcome as the API, the page and the logs show it: `failed: <reason>` when there is a reason."""
    return str(outcome) if detail is None else f"{outcome}: {detail}"


@dataclass(frozen=True)
class Finding:
    """One violating check of one container: its rules, the action taken and how it ended.

    Never holds a secret of the container (see `enforcer.facts.redaction`): `config` (for prevented
    containers) is built by `safe_config`, `labels` by `scrub_labels`, `rule_errors` are redacted.
    """

    container_id: str
    name: str  # without the leading "/"
    image: str
    rules: tuple[str, ...]  # violated rules, in rule order
    mode: Mode  # the effective mode: KILL when the action was enforced
    action: Action
    outcome: Outcome
    source: Source
    outcome_detail: str | None = None  # why it failed (the engine's message); None when it did not
    owner: str = "[unknown]"
    labels: Mapping[str, str] = field(default_factory=dict)
    rule_errors: tuple[str, ...] = ()
    restart_policy: str | None = None  # the policy the container had before the enforcer set it to "no"
    config: Mapping[str, Any] | None = None
    timestamp: datetime = field(default_factory=utcnow)
    exec_command: str | None = None  # an exec check's executable, never its arguments (they can hold secrets)

    @property
    def outcome_text(self) -> str:
        return outcome_text(self.outcome, self.outcome_detail)


SAFE_CONFIG_KEYS = ("Image", "Labels", "User", "WorkingDir", "ExposedPorts", "Volumes", "Hostname")


def safe_config(params: Mapping[str, Any]) -> dict[str, Any]:
    """The parts of `docker inspect` an owner needs to investigate, with every secret blanked out: no env
    values or command line, and `***` for log driver options, volume driver options and credential labels."""
    scrubbed = scrub(params)
    config = scrubbed.get("Config") or {}
    return {
        "Name": str(scrubbed.get("Name") or "").lstrip("/"),
        "Image": scrubbed.get("Image"),
        "Created": scrubbed.get("Created"),
        "Config": {key: config[key] for key in SAFE_CONFIG_KEYS if key in config},
        "HostConfig": scrubbed.get("HostConfig") or {},
        "Mounts": scrubbed.get("Mounts") or [],
    }
