"""Open episodes of rules held over time, as the API (`episodes` of `/` and `/recent`) and the page show them.

Only pending and warned episodes have time left: pending until its `for` is over ("violated for 4m, acted on
at 12:40 if it holds"), warned until the grace ends ("will be stopped at 12:40 unless fixed").
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from enforcer.record.episodes import Episode
from enforcer.record.model import Phase
from enforcer.units import text_duration

VERBS = {"kill": "stopped", "stop": "stopped", "pause": "paused", "limit": "limited"}


def episode_json(episode: Episode, now: datetime, iso: Any) -> dict[str, Any]:
    """One item of `episodes`; `iso` formats times as the rest of the answer does."""
    left = episode.seconds_left(now)
    return {
        "id": episode.container_id,
        "name": "/" + episode.name,
        "rule": episode.rule,
        "phase": str(episode.phase),
        "owner": episode.owner,
        "action": episode.action,
        "started": iso(episode.started),
        "deadline": iso(episode.deadline) if episode.deadline else None,
        "seconds_left": None if left is None else round(left, 1),
        "summary": summary(episode, now),
    }


def summary(episode: Episode, now: datetime) -> str:
    """One sentence for an owner: what holds, and what happens when."""
    at = episode.deadline.strftime("%H:%M UTC") if episode.deadline else ""
    verb = VERBS.get(episode.action, episode.action)
    held = text_duration(max(0.0, (now - episode.started).total_seconds()))
    if episode.phase is Phase.PENDING:
        return f"violated for {held}; acted on at {at} if it still holds"
    if episode.phase is Phase.WARNED:
        return f"will be {verb} at {at} unless fixed"
    if episode.phase is Phase.ENFORCED:
        return f"{verb} after {held} of violation"
    return f"recorded (WARN) after {held} of violation"


def episode_rows(episodes: Iterable[Episode], now: datetime) -> list[dict[str, Any]]:
    """The page's rows: warned first (an owner has to act), then pending, then the settled ones."""
    order = {Phase.WARNED: 0, Phase.PENDING: 1}
    rows = sorted(episodes, key=lambda e: (order.get(e.phase, 2), e.deadline or e.started))
    return [
        {
            "name": e.name or e.container_id[:12],
            "short_id": e.container_id[:12],
            "rule": e.rule,
            "phase": str(e.phase),
            "owner": e.owner,
            "left": "" if e.seconds_left(now) is None else text_duration(round(e.seconds_left(now) or 0)),
            "summary": summary(e, now),
        }
        for e in rows
    ]
