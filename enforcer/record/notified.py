"""The episodes notifiers were told about: (container, rule) pairs whose start was notified and whose end
was not yet, in the state database (table `notified`), so a restart of the daemon neither repeats a start
nor forgets an end.

An episode starts at the first check that finds the rule violated and ends at the first check that does not,
or when the container stops running or is removed; for a rule held over time, when its own episode
(`record.episodes`) ends. A told episode whose phase changes (warned, then enforced) is told again.
Thread-safe; reads come from an in-memory copy.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from enforcer.record.model import Phase

_COLUMNS = (
    *("container_id", "rule", "severity", "name", "image", "owner"),
    *("mode", "action", "outcome", "phase", "started"),
)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS notified (
    container_id TEXT NOT NULL,
    rule         TEXT NOT NULL,
    severity     TEXT NOT NULL,
    name         TEXT NOT NULL,
    image        TEXT NOT NULL,
    owner        TEXT NOT NULL,
    mode         TEXT NOT NULL,
    action       TEXT NOT NULL,
    outcome      TEXT NOT NULL,
    phase        TEXT NOT NULL,
    started      TEXT NOT NULL,  -- ISO 8601, UTC: the check that found it
    PRIMARY KEY (container_id, rule)
)
"""


@dataclass(frozen=True)
class Told:
    """One open episode a notifier was told about: enough to tell its end after the container is gone."""

    container_id: str
    rule: str
    severity: str
    name: str
    image: str
    owner: str
    mode: str
    action: str
    outcome: str
    phase: Phase
    started: datetime

    @property
    def key(self) -> tuple[str, str]:
        return (self.container_id, self.rule)


class NoticeLedger:
    """Open told episodes by (container id, rule)."""

    def __init__(self, path: Path | None) -> None:
        """`path` None keeps them in memory only (tests, `notify-test`)."""
        self._lock = threading.Lock()
        target = ":memory:" if path is None else str(path)
        if path is not None:
            with suppress(OSError):  # there already, or not creatable: sqlite3 says which
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
        self._conn = sqlite3.connect(target, timeout=10, isolation_level=None, check_same_thread=False)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute(_SCHEMA)
        # By container id, then rule: the check of a container with nothing told costs one lookup.
        self._open: dict[str, dict[str, Told]] = {}
        for row in self._conn.execute(f"SELECT {', '.join(_COLUMNS)} FROM notified"):
            with suppress(ValueError):  # a phase this version does not know: that episode starts again
                told = _from_row(row)
                self._open.setdefault(told.container_id, {})[told.rule] = told

    def of_container(self, container_id: str) -> list[Told]:
        with self._lock:
            return list(self._open.get(container_id, {}).values())

    def all(self) -> list[Told]:
        with self._lock:
            return sorted(
                (t for rules in self._open.values() for t in rules.values()), key=lambda t: (t.started, t.key)
            )

    def start(self, episodes: Iterable[Told]) -> list[Told]:
        """Open these episodes, or move open ones to their new phase (keeping when they started); returns
        those that were not open yet or changed phase (the ones to tell)."""
        new: list[Told] = []
        with self._lock:
            for told in episodes:
                known = self._open.get(told.container_id, {}).get(told.rule)
                if known is not None and known.phase == told.phase:
                    continue
                if known is not None:
                    told = replace(told, started=known.started)
                self._conn.execute(
                    f"INSERT OR REPLACE INTO notified ({', '.join(_COLUMNS)}) "
                    f"VALUES ({', '.join(':' + c for c in _COLUMNS)})",
                    _to_row(told),
                )
                self._open.setdefault(told.container_id, {})[told.rule] = told
                new.append(told)
        return new

    def end(self, keys: Iterable[tuple[str, str]]) -> list[Told]:
        """End these episodes; returns those that were open (the ones to tell)."""
        ended: list[Told] = []
        with self._lock:
            for key in keys:
                rules = self._open.get(key[0], {})
                told = rules.pop(key[1], None)
                if not rules:
                    self._open.pop(key[0], None)
                if told is not None:
                    self._conn.execute("DELETE FROM notified WHERE container_id = ? AND rule = ?", key)
                    ended.append(told)
        return ended

    def end_container(self, container_id: str) -> list[Told]:
        return self.end([t.key for t in self.of_container(container_id)])

    def keep_only(self, running: Iterable[str], started_before: datetime) -> list[Told]:
        """End the episodes of containers not in `running` that started before `started_before` (those
        found during a sweep of `running` are left alone); returns them."""
        alive = set(running)
        gone = [t.key for t in self.all() if t.container_id not in alive and t.started < started_before]
        return self.end(gone)

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _to_row(told: Told) -> dict[str, str]:
    row = {c: str(getattr(told, c)) for c in _COLUMNS}
    row["started"] = told.started.astimezone(UTC).isoformat()
    return row


def _from_row(row: sqlite3.Row) -> Told:
    values = {c: row[c] for c in _COLUMNS}
    values["phase"] = Phase(row["phase"])
    values["started"] = datetime.fromisoformat(row["started"])
    return Told(**values)
