"""Episodes: the pure transitions (`advance`) and the store that keeps them across restarts."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from enforcer.record.episodes import Change, Episode, EpisodeStore, Sample, advance, settled
from enforcer.record.model import Phase

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def sample(violated: bool, started: str = "s1") -> Sample:
    return Sample("c1", "hog", violated, started, name="web", owner="ann")


def run(
    samples: list[tuple[float, bool]], for_s: float, grace_s: float = 0
) -> list[tuple[Phase | None, bool, Phase | None]]:
    """Feed samples through advance (settling acts as KILL would); (phase after, acted, announced) each."""
    episode: Episode | None = None
    out = []
    for when, violated in samples:
        step = advance(episode, sample(violated), for_s, grace_s, at(when))
        episode = settled(step.episode, True, at(when)) if step.act and step.episode else step.episode
        out.append((episode.phase if episode else None, step.act, step.announce))
    return out


def test_for_acts_once_the_condition_held_on_every_sample_for_that_long() -> None:
    steps = run([(0, True), (5, True), (9, True), (10, True), (15, True)], for_s=10)
    assert [s[1] for s in steps] == [False, False, False, True, False]
    assert steps[0][0] is Phase.PENDING and steps[3][0] is Phase.ENFORCED and steps[4][0] is Phase.ENFORCED


def test_a_false_sample_resets_the_clock_silently() -> None:
    steps = run([(0, True), (8, False), (9, True), (15, True), (19, True)], for_s=10)
    assert [s[1] for s in steps] == [False, False, False, False, True]
    assert steps[1] == (None, False, None)  # pending dropped, nobody told


def test_a_restart_of_the_container_resets_the_clock() -> None:
    first = advance(None, sample(True, "s1"), 10, 0, at(0)).episode
    again = advance(first, sample(True, "s2"), 10, 0, at(12))
    assert not again.act and again.episode is not None and again.episode.started == at(12)


def test_grace_warns_first_then_acts_at_its_end_unless_fixed() -> None:
    steps = run([(0, True), (10, True), (20, True), (40, True)], for_s=10, grace_s=30)
    assert steps[1] == (Phase.WARNED, False, Phase.WARNED)
    assert steps[2] == (Phase.WARNED, False, None)
    assert steps[3] == (Phase.ENFORCED, True, None)
    fixed = run([(0, True), (10, True), (20, False)], for_s=10, grace_s=30)
    assert fixed[2] == (None, False, Phase.RESOLVED)


def test_no_for_and_no_grace_acts_on_the_first_violating_sample() -> None:
    assert run([(0, True)], for_s=0) == [(Phase.ENFORCED, True, None)]
    assert run([(0, True)], for_s=0, grace_s=5)[0] == (Phase.WARNED, False, Phase.WARNED)


def test_the_store_keeps_episodes_across_a_reopen_and_tells_listeners(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    store = EpisodeStore(db)
    changes: list[Change] = []
    store.subscribe(changes.append)
    episode = advance(None, sample(True), 60, 0, at(0)).episode
    assert episode is not None
    store.put(episode)
    store.put(episode)  # unchanged: nothing written, nobody told
    warned = Episode("c2", "idle", Phase.WARNED, at(0), at(30), "s", "db", "bob", "stop", at(0))
    store.put(warned)
    assert store.counts()[Phase.PENDING] == 1 and store.counts()[Phase.WARNED] == 1
    store.close()

    again = EpisodeStore(db)
    assert again.get("c1", "hog") == episode
    assert again.get("c2", "idle") == warned
    assert again.all()[1].seconds_left(at(10)) == 20
    assert again.keep_only(["c2"], ["idle"]) == [episode]
    assert again.end_container("c2") == [warned]
    assert again.all() == []
    assert [(c.before is None, c.after is None) for c in changes] == [(True, False), (True, False)]
    assert (db.stat().st_mode & 0o777) == 0o600


def test_a_listener_that_raises_never_undoes_the_change(tmp_path: Path) -> None:
    store = EpisodeStore(tmp_path / "state.db")

    def broken(change: Change) -> None:
        raise RuntimeError("listener bug")

    store.subscribe(broken)
    episode = Episode("c1", "hog", Phase.PENDING, at(0), at(10), "s")
    store.put(episode)
    assert store.get("c1", "hog") == episode
    assert store.end("c1", "hog") == episode and store.get("c1", "hog") is None


class FailingDeletes:
    """Stands for the store's connection: DELETEs of container `failing` raise, as a full disk would."""

    def __init__(self, conn: sqlite3.Connection, failing: str) -> None:
        self.conn, self.failing = conn, failing

    def execute(self, sql: str, args: Any = ()) -> Any:
        if sql.startswith("DELETE") and args[0] == self.failing:
            raise sqlite3.OperationalError("disk I/O error")
        return self.conn.execute(sql, args)

    def close(self) -> None:
        self.conn.close()


def test_an_end_the_database_refuses_leaves_the_episode_open_and_tells_those_ended(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    store = EpisodeStore(db)
    changes: list[Change] = []
    store.subscribe(changes.append)
    first = Episode("c1", "hog", Phase.PENDING, at(0), at(10), "s")
    second = Episode("c2", "hog", Phase.WARNED, at(0), at(10), "s")
    store.put(first)
    store.put(second)
    changes.clear()
    store._conn = FailingDeletes(store._conn, "c2")  # type: ignore[assignment]
    with pytest.raises(sqlite3.OperationalError):
        store.keep_only([], ["hog"])
    assert changes == [Change(first, None)]  # told, though a later end failed
    assert store.all() == [second]  # as the database still has it
    store.close()
    assert EpisodeStore(db).all() == [second]
