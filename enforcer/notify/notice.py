"""What a notifier is told: one `Notice` when an episode of a container violating rules starts, and one when it
ends; a value built from the record, so it can be made after the container is gone."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime

from enforcer.record.model import Phase


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class NoticeRule:
    """A violated rule as a notice names it."""

    name: str
    severity: str = "medium"


class EndReason:
    """Why an episode ended (`Notice.reason`)."""

    FIXED = "fixed"  # checked again: it no longer violates the rule
    GONE = "gone"  # stopped running or removed (not by the enforcer)
    STOPPED = "stopped"  # the enforcer stopped or removed it: the episode ended with the action
    RESOLVED = "resolved"  # a rule held over time: its episode ended (fixed in time, restarted or gone)


@dataclass(frozen=True)
class Notice:
    """One container's episode of violating `rules`, as it starts (`ended` False) or ends.

    `phase` is what the owner is told: "enforced" (the action ran), "recorded" (WARN mode), "warned" (a grace
    started) when an episode starts; "resolved" when it ends without the enforcer stopping the container. An
    action that stopped or removed the container ends its episode at once: one notice, "enforced", `ended`
    True, reason "stopped". `repeat` marks the reminders of an open episode sent to notifiers that need them
    (Alertmanager); `test` the one of `docker-enforcer notify-test`.
    """

    host: str
    container_id: str
    name: str
    image: str
    owner: str
    rules: tuple[NoticeRule, ...]
    mode: str
    action: str
    outcome: str
    phase: Phase
    started: datetime
    time: datetime = field(default_factory=utcnow)
    ended: bool = False
    reason: str | None = None
    repeat: bool = False
    test: bool = False
    # The daemon's stop flag: a notifier's retries wake on it and give up once it is set.
    stop: threading.Event = field(default_factory=threading.Event, compare=False, repr=False)

    @property
    def short_id(self) -> str:
        return self.container_id[:12]

    @property
    def rule_names(self) -> list[str]:
        return [rule.name for rule in self.rules]

    def __str__(self) -> str:
        state = f"ended ({self.reason})" if self.ended else "started"
        return f"Notice {self.phase} for {self.name}: {', '.join(self.rule_names)} {state}"
