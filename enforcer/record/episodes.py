"""Episodes: one rule held over time by one container, from its first violating sample to its end.

Rules with `for` or `grace` are not judged once: an episode, keyed by (container id, rule), follows each of
them through its phases (`Phase` in record/model.py):

    (none) --violated--> PENDING --held `for`--> WARNED --grace over--> ENFORCED (KILL) | RECORDED (WARN)
                            |   (no grace: straight to the action) ----^
                            +-- a sample where it is false, or the container restarted: dropped silently
    WARNED --fixed, gone, or the container restarted--> RESOLVED (the episode ends; nothing is done)
    ENFORCED | RECORDED --no longer violated, or not running any more--> ends

Who drives it: the sampler (`enforcer.sources.samples`, every SAMPLE_INTERVAL_S) judges the timed rules of
every running container and, per (container, rule), calls `advance()` (pure: the next state and what to do)
and then `EpisodeStore.put()` or `EpisodeStore.end()` with the result; containers no longer running end
through `end_container()`. A sample that could not be taken (engine error) is not given to `advance()`
at all: it neither advances nor resets a clock.

An episode starts at the first violating sample (`started`); `deadline` is when `for` is over (PENDING) or
when the grace ends (WARNED). It ends (the row is deleted) when the container no longer violates the rule,
stops running, is removed or restarted, or the rule leaves the policy. The phases a trigger sees, in
`v.phase`: "warned" when a grace starts, "enforced" after the action ran, "recorded" in WARN mode and
"resolved" when a WARNED or RECORDED episode ends without action. PENDING is never shown to triggers (the
owner is told nothing while `for` runs), and an ENFORCED episode ends without a trigger call. Verdicts of
rules without `for` or `grace` carry "enforced" or "recorded" and open no episode.

Episodes live in the state database (STATE_DB, table `episodes`, apart from the detections tables), so a
daemon restart keeps every clock and deadline and never acts twice: the phase is written as soon as it
changes. An in-memory copy of the open episodes (bounded by them) answers reads without SQL.

Listeners: `subscribe(fn)` calls `fn(Change)` after every committed change, outside the store's lock, on the
thread that made it; a listener that raises is logged and never undoes the change. A `Change` with
`before` None is an episode starting; with `after` None, one ending (`before.phase` says how it stood).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable
from contextlib import suppress
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from enforcer.record.model import Phase
from enforcer.record.store import StoreError

log = logging.getLogger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_COLUMNS = (
    *("container_id", "rule", "phase", "started_ts", "deadline_ts", "container_started"),
    *("name", "owner", "action", "updated_ts"),
)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS episodes (
    container_id      TEXT NOT NULL,
    rule              TEXT NOT NULL,
    phase             TEXT NOT NULL,
    started_ts        INTEGER NOT NULL,  -- microseconds since the epoch (UTC): the first violating sample
    deadline_ts       INTEGER,           -- when `for` (pending) or the grace (warned) is over
    container_started TEXT NOT NULL,     -- State.StartedAt when the episode began: a restart resets it
    name              TEXT NOT NULL,
    owner             TEXT NOT NULL,
    action            TEXT NOT NULL,     -- what the rule does: kill, stop, pause, limit
    updated_ts        INTEGER NOT NULL,
    PRIMARY KEY (container_id, rule)
)
"""


@dataclass(frozen=True)
class Episode:
    """One (container, rule) held over time; see the module's docstring for the phases."""

    container_id: str
    rule: str
    phase: Phase
    started: datetime  # the first violating sample of this episode
    deadline: datetime | None  # end of `for` (PENDING) or of the grace (WARNED); None once acted
    container_started: str  # the container's State.StartedAt when the episode began
    name: str = ""
    owner: str = "[unknown]"
    action: str = "kill"
    updated: datetime = _EPOCH

    @property
    def key(self) -> tuple[str, str]:
        return (self.container_id, self.rule)

    def seconds_left(self, now: datetime) -> float | None:
        """Time left until the deadline (never negative); None without one."""
        if self.deadline is None:
            return None
        return max(0.0, (self.deadline - now).total_seconds())

    def __str__(self) -> str:
        return f"Episode of {self.rule!r} on {self.name or self.container_id[:12]}: {self.phase}"


@dataclass(frozen=True)
class Change:
    """One committed change: `before` None is a start, `after` None an end."""

    before: Episode | None
    after: Episode | None


@dataclass(frozen=True)
class Sample:
    """One container judged against one timed rule, as `advance` needs it."""

    container_id: str
    rule: str
    violated: bool
    container_started: str  # State.StartedAt
    name: str = ""
    owner: str = "[unknown]"
    action: str = "kill"


@dataclass(frozen=True)
class Step:
    """What a sample leads to: the episode after it (None: no open episode), whether the rule's action runs
    now, and the phase to tell the triggers (WARNED when a grace starts, RESOLVED when a told episode ends)."""

    episode: Episode | None
    act: bool = False
    announce: Phase | None = None


def advance(current: Episode | None, sample: Sample, for_s: float, grace_s: float, now: datetime) -> Step:
    """The next state of an episode after one sample (pure). The caller stores `episode` (put, or end when
    None) and, when `act`, runs the action and stores the episode again as ENFORCED or RECORDED."""
    announce = None
    if current is not None and current.container_started != sample.container_started:
        announce = _ending(current)  # a restart of the container resets the clock
        current = None
    if not sample.violated:
        return Step(None, announce=announce or (_ending(current) if current else None))
    if current is None:
        current = Episode(
            sample.container_id, sample.rule, Phase.PENDING, now, now + timedelta(seconds=for_s),
            sample.container_started, sample.name, sample.owner, sample.action, now,
        )  # fmt: skip
    if current.phase is Phase.PENDING and _due(current, now):
        if grace_s > 0:
            warned = replace(
                current, phase=Phase.WARNED, deadline=now + timedelta(seconds=grace_s), updated=now
            )
            return Step(warned, announce=Phase.WARNED)
        return Step(current, act=True)
    if current.phase is Phase.WARNED and _due(current, now):
        return Step(current, act=True)
    return Step(current, announce=announce)


def _due(episode: Episode, now: datetime) -> bool:
    return episode.deadline is None or now >= episode.deadline


def _ending(episode: Episode) -> Phase | None:
    """What an ending episode tells the triggers: RESOLVED when its owner had been told, nothing otherwise."""
    return Phase.RESOLVED if episode.phase in (Phase.WARNED, Phase.RECORDED) else None


def settled(episode: Episode, enforced: bool, now: datetime) -> Episode:
    """The episode once its action ran (ENFORCED) or was recorded (RECORDED, WARN mode)."""
    return replace(episode, phase=Phase.ENFORCED if enforced else Phase.RECORDED, deadline=None, updated=now)


class EpisodeStore:
    """The open episodes: in the state database, with an in-memory copy for reads; thread-safe.

    Uses its own connection and lock (never the detections store's), and only the `episodes` table.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._listeners: list[Callable[[Change], None]] = []
        with suppress(OSError):  # there already, or not creatable: sqlite3 says which
            self.path.parent.mkdir(parents=True, exist_ok=True)
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
        try:
            self._conn = sqlite3.connect(self.path, timeout=10, isolation_level=None, check_same_thread=False)
            self._conn.row_factory = sqlite3.Row
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute(_SCHEMA)
            rows = self._conn.execute(f"SELECT {', '.join(_COLUMNS)} FROM episodes").fetchall()
        except sqlite3.Error as exc:
            raise StoreError(
                f"{self.path}: cannot keep the episodes of rules held over time ({exc}); make it readable "
                "and writable by the daemon's user, or set STATE_DB to another path"
            ) from None
        self._open: dict[tuple[str, str], Episode] = {}
        for row in rows:
            try:
                episode = _from_row(row)
            except ValueError:  # a phase this version does not know: the episode starts again
                continue
            self._open[episode.key] = episode

    def __str__(self) -> str:
        return f"Episode store {str(self.path)!r}"

    def subscribe(self, listener: Callable[[Change], None]) -> None:
        """Call `listener(Change)` after every committed change (see the module's docstring)."""
        self._listeners.append(listener)

    # -- reads (from memory) ---------------------------------------------------------------------------
    def get(self, container_id: str, rule: str) -> Episode | None:
        with self._lock:
            return self._open.get((container_id, rule))

    def of_container(self, container_id: str) -> list[Episode]:
        with self._lock:
            return [e for e in self._open.values() if e.container_id == container_id]

    def all(self) -> list[Episode]:
        """Every open episode, the oldest first."""
        with self._lock:
            return sorted(self._open.values(), key=lambda e: (e.started, e.key))

    def counts(self) -> dict[Phase, int]:
        """Open episodes by phase (every phase present, 0 when none)."""
        out = dict.fromkeys(Phase, 0)
        with self._lock:
            for episode in self._open.values():
                out[episode.phase] += 1
        return out

    # -- writes (committed before they return) ---------------------------------------------------------
    def put(self, episode: Episode) -> None:
        """Start or update an episode (nothing is written when it did not change)."""
        with self._lock:
            before = self._open.get(episode.key)
            if before == episode:
                return
            row = _to_row(episode)
            self._conn.execute(
                f"INSERT OR REPLACE INTO episodes ({', '.join(_COLUMNS)}) "
                f"VALUES ({', '.join(':' + c for c in _COLUMNS)})",
                row,
            )
            self._open[episode.key] = episode
        self._tell(Change(before, episode))

    def end(self, container_id: str, rule: str) -> Episode | None:
        """End an episode; returns it as it stood (None when there was none)."""
        return next(iter(self._end([(container_id, rule)])), None)

    def end_container(self, container_id: str) -> list[Episode]:
        """End every episode of a container (it stopped running or was removed)."""
        with self._lock:
            keys = [key for key in self._open if key[0] == container_id]
        return self._end(keys)

    def keep_only(self, container_ids: Iterable[str], rules: Iterable[str]) -> list[Episode]:
        """End the episodes of containers not in `container_ids` or rules not in `rules`; returns them."""
        running, timed = set(container_ids), set(rules)
        with self._lock:
            keys = [key for key in self._open if key[0] not in running or key[1] not in timed]
        return self._end(keys)

    def _end(self, keys: list[tuple[str, str]]) -> list[Episode]:
        ended: list[Episode] = []
        try:
            with self._lock:
                for key in keys:
                    if key not in self._open:
                        continue
                    # Deleted first: an episode the database could not forget stays open in memory too.
                    self._conn.execute("DELETE FROM episodes WHERE container_id = ? AND rule = ?", key)
                    ended.append(self._open.pop(key))
        finally:  # those ended before a failure are told all the same
            for episode in ended:
                self._tell(Change(episode, None))
        return ended

    def _tell(self, change: Change) -> None:
        for listener in list(self._listeners):
            try:
                listener(change)
            except Exception:  # noqa: BLE001 - a listener never undoes a change nor stops the others
                log.exception("episode listener %r failed", listener)

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _micros(when: datetime) -> int:
    return (when - _EPOCH) // timedelta(microseconds=1)


def _time(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


def _to_row(episode: Episode) -> dict[str, str | int | None]:
    return {
        "container_id": episode.container_id,
        "rule": episode.rule,
        "phase": Phase(episode.phase).value,
        "started_ts": _micros(episode.started),
        "deadline_ts": None if episode.deadline is None else _micros(episode.deadline),
        "container_started": episode.container_started,
        "name": episode.name,
        "owner": episode.owner,
        "action": episode.action,
        "updated_ts": _micros(episode.updated),
    }


def _from_row(row: sqlite3.Row) -> Episode:
    deadline = row["deadline_ts"]
    return Episode(
        container_id=row["container_id"],
        rule=row["rule"],
        phase=Phase(row["phase"]),
        started=_time(row["started_ts"]),
        deadline=None if deadline is None else _time(deadline),
        container_started=row["container_started"],
        name=row["name"],
        owner=row["owner"],
        action=row["action"],
        updated=_time(row["updated_ts"]),
    )
