"""The detections store: upserts, ordering and paging, restarts, retention, bad files, threads."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from enforcer.record import store as store_module
from enforcer.record.model import Action, Finding, Outcome, safe_config
from enforcer.record.store import DetectionStore, StoreError

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
MakeFinding = Callable[..., Finding]


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_a_finding_is_recorded_with_its_container(store: DetectionStore, make_finding: MakeFinding) -> None:
    config = safe_config({"Name": "/web", "Config": {"Image": "busybox", "Env": ["X=1"]}})
    store.record(
        make_finding(
            name="web",
            rules=("a", "b"),
            labels={"k": "v"},
            restart_policy="always",
            config=config,
            rule_errors=("c: ValueError: boom",),
            timestamp=at(0),
        )
    )

    [found] = store.detections()
    assert (found.name, found.image, found.owner, found.count) == ("web", "busybox", "[unknown]", 1)
    assert found.labels == {"k": "v"}
    assert found.restart_policy == "always"
    assert found.config == config
    assert found.latest_rules == ("a", "b")
    assert found.rule_errors == ("c: ValueError: boom",)
    assert (found.first_timestamp, found.last_timestamp) == (at(0), at(0))
    assert sorted(r.rule for r in found.rules) == ["a", "b"]
    assert all(r.count == 1 and r.action == Action.STOP for r in found.rules)


def test_repeats_of_a_container_and_rule_update_count_and_last_time(
    store: DetectionStore, make_finding: MakeFinding
) -> None:
    store.record(make_finding(rules=("a",), timestamp=at(0), outcome="failed: engine timeout"))
    store.record(make_finding(rules=("a",), timestamp=at(10), outcome=Outcome.ALREADY_GONE))
    store.record(make_finding(rules=("b",), timestamp=at(20), action=Action.WOULD_STOP, outcome="recorded"))

    [found] = store.detections()
    assert found.count == 3
    assert (found.first_timestamp, found.last_timestamp) == (at(0), at(20))
    assert found.latest_rules == ("b",)
    assert (found.action, found.outcome) == (Action.WOULD_STOP, "recorded")
    by_rule = {r.rule: r for r in found.rules}
    assert by_rule["a"].count == 2
    assert (by_rule["a"].first_timestamp, by_rule["a"].last_timestamp) == (at(0), at(10))
    assert by_rule["a"].outcome == Outcome.ALREADY_GONE
    assert by_rule["b"].count == 1
    assert [r.rule for r in found.rules] == ["b", "a"], "newest rule first"


def test_latest_fields_follow_the_newest_finding_even_when_recorded_late(
    store: DetectionStore, make_finding: MakeFinding
) -> None:
    store.record(make_finding(rules=("a",), timestamp=at(10), outcome=Outcome.STOPPED))
    store.record(make_finding(rules=("a",), timestamp=at(5), outcome="failed: late"))

    [found] = store.detections()
    assert found.outcome == Outcome.STOPPED
    assert found.rules[0].outcome == Outcome.STOPPED
    assert (found.first_timestamp, found.last_timestamp, found.count) == (at(5), at(10), 2)


def test_restart_policy_keeps_the_first_reported_and_name_follows_renames(
    store: DetectionStore, make_finding: MakeFinding
) -> None:
    store.record(make_finding(name="old", restart_policy="always", timestamp=at(0)))
    store.record(make_finding(name="new", restart_policy="no", timestamp=at(1)))

    [found] = store.detections()
    assert (found.name, found.restart_policy) == ("new", "always")


def test_detections_are_newest_first_and_page_with_limit_since_and_before(
    store: DetectionStore, make_finding: MakeFinding
) -> None:
    for i in range(10):
        store.record(make_finding(container_id=f"{i:064d}", name=f"c{i}", timestamp=at(i)))

    assert [d.name for d in store.detections()] == [f"c{i}" for i in range(9, -1, -1)]
    assert [d.name for d in store.detections(limit=3)] == ["c9", "c8", "c7"]
    assert [d.name for d in store.detections(since=at(7))] == ["c9", "c8", "c7"]

    pages, before = [], None
    while True:
        page = store.detections(limit=4, before=before)
        if not page:
            break
        pages.append([d.name for d in page])
        before = page[-1].last_timestamp
    assert pages == [["c9", "c8", "c7", "c6"], ["c5", "c4", "c3", "c2"], ["c1", "c0"]]


def test_the_record_survives_a_restart_in_wal_mode(tmp_path: Path, make_finding: MakeFinding) -> None:
    path = tmp_path / "deep" / "er" / "detections.db"
    first = DetectionStore(path, max_age_days=30)
    first.record(make_finding(rules=("a",), timestamp=at(0)))
    first.record(make_finding(rules=("a",), timestamp=at(1)))
    first.close()

    again = DetectionStore(path, max_age_days=30)
    try:
        [found] = again.detections()
        assert found.count == 2 and found.last_timestamp == at(1)
        assert again.distinct_containers() == 1
        with sqlite3.connect(path) as raw:
            assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        raw.close()
    finally:
        again.close()


def test_purge_drops_old_rows_then_the_oldest_beyond_the_cap(
    tmp_path: Path, make_finding: MakeFinding
) -> None:
    store = DetectionStore(tmp_path / "d.db", max_age_days=30, max_rows=5)
    try:
        now = at(0)
        store.record(make_finding(container_id="old".ljust(64, "0"), timestamp=now - timedelta(days=31)))
        for i in range(7):
            store.record(
                make_finding(container_id=f"{i:064d}", rules=(f"r{i}",), timestamp=now - timedelta(hours=i))
            )

        assert store.purge(now) == 3 + 3  # one row aged out, two beyond the cap, and their three containers
        assert [d.container_id for d in store.detections()] == [f"{i:064d}" for i in range(5)]
        assert store.count() == 5
        assert store.distinct_containers() == 8, "the counter behind containers_stopped_total never goes down"
        assert store.purge(now) == 0
    finally:
        store.close()


def test_record_purges_by_itself_so_the_file_stays_bounded(
    tmp_path: Path, make_finding: MakeFinding, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "PURGE_EVERY", 10)
    store = DetectionStore(tmp_path / "d.db", max_age_days=30, max_rows=5)
    try:
        for i in range(40):
            store.record(make_finding(container_id=f"{i:064d}", timestamp=at(i)))
            assert store.count() <= 5 + 10
        assert store.count() <= 15
    finally:
        store.close()


def test_a_finding_without_rules_is_refused(store: DetectionStore, make_finding: MakeFinding) -> None:
    with pytest.raises(ValueError, match="without violated rules"):
        store.record(make_finding(rules=()))


def test_a_corrupt_file_names_the_file_and_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "detections.db"
    path.write_bytes(b"this is not a database" * 100)

    with pytest.raises(StoreError) as caught:
        DetectionStore(path, max_age_days=30)
    message = str(caught.value)
    assert str(path) in message
    assert "move it aside" in message and "STATE_DB" in message


def test_a_folder_that_cannot_be_made_names_the_file_and_the_fix(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("")
    path = tmp_path / "afile" / "detections.db"

    with pytest.raises(StoreError, match="cannot create its folder") as caught:
        DetectionStore(path, max_age_days=30)
    assert str(path) in str(caught.value)


def test_a_database_of_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "detections.db"
    raw = sqlite3.connect(path)
    raw.execute("PRAGMA user_version=99")
    raw.close()

    with pytest.raises(StoreError, match="newer docker-enforcer"):
        DetectionStore(path, max_age_days=30)


def test_concurrent_records_are_all_counted_once(store: DetectionStore, make_finding: MakeFinding) -> None:
    def worker(n: int) -> None:
        for i in range(100):
            store.record(make_finding(container_id=f"{i % 10:064d}", rules=(f"r{n}",)))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    reads = [store.detections() for _ in range(20)]
    for thread in threads:
        thread.join()

    found = store.detections()
    assert len(found) == 10 and reads
    assert all(d.count == 60 for d in found)
    assert all(sorted(r.count for r in d.rules) == [10] * 6 for d in found)
    assert store.distinct_containers() == 10


def test_odd_names_and_labels_round_trip(store: DetectionStore, make_finding: MakeFinding) -> None:
    rule = "quote \" and ' and \\ and \n newline"
    labels = {"html": "<script>alert(1)</script>", "unicode": "☃", 'k"ey': "v"}
    store.record(make_finding(rules=(rule,), labels=labels, name="/with-slash"))

    [found] = store.detections()
    assert found.latest_rules == (rule,)
    assert found.labels == labels
    assert found.name == "with-slash"
