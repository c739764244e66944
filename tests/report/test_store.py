"""The detections store: upserts, ordering and paging, restarts, retention, bad files, threads."""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from enforcer.record import store as store_module
from enforcer.record.model import Action, Finding, Outcome, Source, safe_config
from enforcer.record.store import DetectionStore, StoreError
from enforcer.settings import Mode

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
    store.record(
        make_finding(rules=("a",), timestamp=at(0), outcome=Outcome.FAILED, outcome_detail="engine timeout")
    )
    store.record(make_finding(rules=("a",), timestamp=at(10), outcome=Outcome.ALREADY_GONE))
    store.record(
        make_finding(rules=("b",), timestamp=at(20), action=Action.WOULD_STOP, outcome=Outcome.RECORDED)
    )

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
    store.record(make_finding(rules=("a",), timestamp=at(5), outcome=Outcome.FAILED, outcome_detail="late"))

    [found] = store.detections()
    assert found.outcome == Outcome.STOPPED
    assert found.rules[0].outcome == Outcome.STOPPED
    assert (found.first_timestamp, found.last_timestamp, found.count) == (at(5), at(10), 2)


def test_an_exec_findings_executable_is_kept_and_follows_the_newest_finding(
    store: DetectionStore, make_finding: MakeFinding
) -> None:
    store.record(make_finding(rules=("a",), source=Source.EXEC, exec_command="sh", timestamp=at(1)))
    (detection,) = store.detections()
    assert (detection.source, detection.exec_command, detection.rules[0].exec_command) == (
        Source.EXEC, "sh", "sh"
    )  # fmt: skip
    store.record(make_finding(rules=("a",), source=Source.PERIODIC, timestamp=at(2)))
    (detection,) = store.detections()
    assert (detection.exec_command, detection.rules[0].exec_command) == (None, None)


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


def test_source_action_outcome_and_mode_come_back_as_their_enums(
    store: DetectionStore, make_finding: MakeFinding
) -> None:
    store.record(make_finding(container_id="a" * 64, rules=("r",), mode=Mode.KILL, source=Source.CREATE,
                              action=Action.PREVENT, outcome=Outcome.PREVENTED, timestamp=at(0)))  # fmt: skip
    store.record(make_finding(container_id="b" * 64, rules=("r",), mode=Mode.WARN, source=Source.EVENT,
                              action=Action.WOULD_STOP, outcome=Outcome.RECORDED, timestamp=at(1)))  # fmt: skip

    warned, prevented = store.detections()
    for found, expected in (
        (prevented, (Mode.KILL, Source.CREATE, Action.PREVENT, Outcome.PREVENTED)),
        (warned, (Mode.WARN, Source.EVENT, Action.WOULD_STOP, Outcome.RECORDED)),
    ):
        for latest in (found, found.rules[0]):
            got = (latest.mode, latest.source, latest.action, latest.outcome)
            assert all(value is want for value, want in zip(got, expected, strict=True)), got
            assert latest.outcome_detail is None


def test_a_failure_reason_is_stored_apart_from_the_outcome(
    tmp_path: Path, store: DetectionStore, make_finding: MakeFinding
) -> None:
    reason = "500 Server Error: cannot kill: permission denied"
    store.record(make_finding(rules=("a",), outcome=Outcome.FAILED, outcome_detail=reason))

    raw = sqlite3.connect(store.path)
    for table in ("containers", "detections"):
        row = raw.execute(f"SELECT outcome, outcome_detail FROM {table}").fetchone()
        assert row == ("failed", reason), table
    raw.close()
    [found] = store.detections()
    assert (found.outcome, found.outcome_detail) == (Outcome.FAILED, reason)
    assert found.outcome_text == found.rules[0].outcome_text == f"failed: {reason}"


@pytest.mark.parametrize("field", ["mode", "action", "outcome", "source"])
def test_a_value_outside_its_enum_is_refused_before_it_is_stored(
    store: DetectionStore, make_finding: MakeFinding, field: str
) -> None:
    with pytest.raises(ValueError, match="failed: engine timeout"):
        store.record(make_finding(**{field: "failed: engine timeout"}))
    assert store.count() == 0


# The schema of version 1 (before outcome_detail), as `git show` of that version's store.py has it.
V1_SCHEMA = """
CREATE TABLE containers (
    container_id TEXT PRIMARY KEY, name TEXT NOT NULL, image TEXT NOT NULL, owner TEXT NOT NULL,
    labels TEXT NOT NULL, restart_policy TEXT, config TEXT, count INTEGER NOT NULL, first_ts INTEGER NOT NULL,
    last_ts INTEGER NOT NULL, rules TEXT NOT NULL, mode TEXT NOT NULL, action TEXT NOT NULL,
    outcome TEXT NOT NULL, source TEXT NOT NULL, rule_errors TEXT NOT NULL
);
CREATE INDEX containers_by_last_ts ON containers (last_ts);
CREATE TABLE detections (
    container_id TEXT NOT NULL REFERENCES containers (container_id) ON DELETE CASCADE,
    rule TEXT NOT NULL, count INTEGER NOT NULL, first_ts INTEGER NOT NULL, last_ts INTEGER NOT NULL,
    mode TEXT NOT NULL, action TEXT NOT NULL, outcome TEXT NOT NULL, source TEXT NOT NULL,
    rule_errors TEXT NOT NULL, PRIMARY KEY (container_id, rule)
);
CREATE INDEX detections_by_last_ts ON detections (last_ts);
CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT INTO containers VALUES ('aaaa', 'failing', 'busybox', '[unknown]', '{"team": "blue"}', 'always', NULL,
    2, 1714564800000000, 1714564810000000, '["a", "b"]', 'KILL', 'kill', 'failed: engine: timeout', 'event',
    '["c: ValueError: boom"]');
INSERT INTO detections VALUES ('aaaa', 'a', 2, 1714564800000000, 1714564810000000, 'KILL', 'kill',
    'failed: engine: timeout', 'event', '["c: ValueError: boom"]');
INSERT INTO detections VALUES ('aaaa', 'b', 1, 1714564800000000, 1714564800000000, 'KILL', 'kill', 'stopped',
    'periodic', '[]');
INSERT INTO containers VALUES ('bbbb', 'prevented', 'alpine', '[unknown]', '{}', NULL, '{"Name": "prevented"}',
    1, 1714564805000000, 1714564805000000, '["a"]', 'WARN', 'would prevent', 'recorded', 'create', '[]');
INSERT INTO detections VALUES ('bbbb', 'a', 1, 1714564805000000, 1714564805000000, 'WARN', 'would prevent',
    'recorded', 'create', '[]');
INSERT INTO counters VALUES ('distinct_containers', 2);
PRAGMA user_version=1;
"""


def test_a_database_of_version_1_is_migrated_and_reads_as_before(
    tmp_path: Path, make_finding: MakeFinding
) -> None:
    path = tmp_path / "detections.db"
    raw = sqlite3.connect(path)
    raw.executescript(V1_SCHEMA)
    raw.close()

    opened = DetectionStore(path, max_age_days=100_000)
    try:
        failing, prevented = opened.detections()
        assert (failing.name, failing.count, failing.latest_rules) == ("failing", 2, ("a", "b"))
        assert (failing.mode, failing.action, failing.source) == (Mode.KILL, Action.KILL, Source.EVENT)
        assert (failing.outcome, failing.outcome_detail) == (Outcome.FAILED, "engine: timeout")
        assert failing.outcome_text == "failed: engine: timeout"
        assert (failing.restart_policy, failing.labels, failing.rule_errors) == (
            "always", {"team": "blue"}, ("c: ValueError: boom",)
        )  # fmt: skip
        by_rule = {r.rule: r for r in failing.rules}
        assert by_rule["a"].outcome_text == "failed: engine: timeout"
        assert (by_rule["b"].outcome, by_rule["b"].outcome_detail, by_rule["b"].source) == (
            Outcome.STOPPED, None, Source.PERIODIC
        )  # fmt: skip
        assert (prevented.action, prevented.outcome, prevented.source) == (
            Action.WOULD_PREVENT, Outcome.RECORDED, Source.CREATE
        )  # fmt: skip
        assert prevented.config == {"Name": "prevented"}
        assert (failing.exec_command, prevented.exec_command) == (None, None)
        assert opened.distinct_containers() == 2

        opened.record(make_finding(container_id="aaaa", rules=("a",), timestamp=at(10**9)))
        assert opened.detections()[0].count == 3
    finally:
        opened.close()
    reopened = DetectionStore(path, max_age_days=100_000)  # a migrated file opens as a current one
    try:
        assert reopened.count() == 2
    finally:
        reopened.close()
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA user_version").fetchone() == (store_module.SCHEMA_VERSION,)
    raw.close()


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    """As in the image, which sets no umask; 0 is the worst case: files 0666 unless made otherwise."""
    old = os.umask(0)
    yield
    os.umask(old)


def modes(path: Path) -> dict[str, int]:
    """The permission bits of the database and of its -wal and -shm files that exist."""
    files = [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]
    return {f.name: stat.S_IMODE(f.stat().st_mode) for f in files if f.exists()}


@pytest.mark.usefixtures("permissive_umask")
def test_a_new_database_and_its_wal_files_are_the_daemons_alone(
    tmp_path: Path, make_finding: MakeFinding, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "state" / "detections.db"
    with caplog.at_level(logging.WARNING, logger="enforcer.record.store"):
        opened = DetectionStore(path, max_age_days=30)
    assert caplog.records == []
    try:
        opened.record(make_finding())
        found = modes(path)
    finally:
        opened.close()
    assert found == {"detections.db": 0o600, "detections.db-wal": 0o600, "detections.db-shm": 0o600}


@pytest.mark.usefixtures("permissive_umask")
def test_existing_files_readable_by_others_are_tightened_with_a_log_line(
    tmp_path: Path, make_finding: MakeFinding, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "detections.db"
    DetectionStore(path, max_age_days=30).close()
    for name in ("detections.db", "detections.db-wal", "detections.db-shm"):
        (tmp_path / name).touch()
        (tmp_path / name).chmod(0o644 if name.endswith("db") else 0o666)

    with caplog.at_level(logging.WARNING, logger="enforcer.record.store"):
        opened = DetectionStore(path, max_age_days=30)
    try:
        opened.record(make_finding())
        assert [c.name for c in opened.detections()] == ["web"]
        assert set(modes(path).values()) == {0o600}
    finally:
        opened.close()
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 3 and all("now 0600" in w for w in warnings), warnings
    assert "0644" in warnings[0] and str(path) in warnings[0]


def test_an_old_database_opened_by_several_at_once_is_migrated_once(tmp_path: Path) -> None:
    path = tmp_path / "detections.db"
    raw = sqlite3.connect(path)
    raw.executescript(V1_SCHEMA)
    raw.close()
    start = threading.Barrier(6)
    errors: list[BaseException] = []

    def open_and_close() -> None:
        start.wait()
        try:
            DetectionStore(path, max_age_days=100_000).close()
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=open_and_close) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    opened = DetectionStore(path, max_age_days=100_000)
    try:
        assert opened.detections()[0].outcome_text == "failed: engine: timeout"
    finally:
        opened.close()


# -- the page's queries: filters, summary, one container ---------------------------------------------------

INDEXES = {
    "containers_by_owner", "containers_by_outcome", "containers_by_name", "containers_with_errors",
    "detections_by_rule",
}  # fmt: skip


def indexes(path: Path) -> set[str]:
    raw = sqlite3.connect(path)
    try:
        return {row[0] for row in raw.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    finally:
        raw.close()


def test_a_database_of_version_1_gets_the_filter_indexes(tmp_path: Path) -> None:
    path = tmp_path / "detections.db"
    raw = sqlite3.connect(path)
    raw.executescript(V1_SCHEMA)
    raw.close()
    assert not INDEXES & indexes(path)
    DetectionStore(path, max_age_days=100_000).close()
    assert indexes(path) >= INDEXES


def test_each_filter_is_read_through_an_index(store: DetectionStore) -> None:
    raw = sqlite3.connect(store.path)
    try:
        for only in (
            store_module.Filter(owner="x"),
            store_module.Filter(outcomes=(Outcome.FAILED, Outcome.STOPPED)),
            store_module.Filter(rule_errors=True),
        ):
            where, args = only.sql()
            plan = raw.execute(
                f"EXPLAIN QUERY PLAN SELECT container_id FROM containers WHERE {' AND '.join(where)} "
                "ORDER BY last_ts DESC LIMIT 100",
                args,
            ).fetchall()
            assert any("USING INDEX" in str(step) or "USING COVERING INDEX" in str(step) for step in plan), (
                plan
            )
            assert not any(step[3] == "SCAN containers" for step in plan), plan
        for scan in (False, True):
            where, args = store_module.Filter(rule="r").sql(rule_by_scan=scan)
            plan = str(
                raw.execute(f"EXPLAIN QUERY PLAN SELECT 1 FROM containers WHERE {where[0]}", args).fetchall()
            )
            assert "INDEX" in plan and "SCAN detections" not in plan, plan
    finally:
        raw.close()


def test_filters_by_owner_rule_outcome_and_rule_errors(
    store: DetectionStore, make_finding: MakeFinding
) -> None:
    store.record_many(
        [
            make_finding(container_id="a" * 64, name="a", owner="blue", rules=("r1", "r2"), timestamp=at(0)),
            make_finding(
                container_id="b" * 64, name="b", owner="red", rules=("r2",), outcome=Outcome.RECORDED,
                action=Action.WOULD_STOP, mode=Mode.WARN, timestamp=at(1),
            ),
            make_finding(container_id="c" * 64, name="c", owner="blue", rules=("r3",), rule_errors=("x: boom",), timestamp=at(2)),
        ]
    )  # fmt: skip
    F = store_module.Filter

    def names(only: store_module.Filter, limit: int | None = None) -> list[str]:
        return [d.name for d in store.detections(only=only, limit=limit)]

    assert names(F()) == ["c", "b", "a"]
    assert names(F(owner="blue")) == ["c", "a"]
    assert names(F(rule="r2")) == ["b", "a"]
    assert names(F(rule="r2"), limit=1) == ["b"]
    assert names(F(rule="r1", owner="red")) == []
    assert names(F(outcomes=(Outcome.RECORDED,))) == ["b"]
    assert names(F(outcomes=(Outcome.RECORDED, Outcome.STOPPED))) == ["c", "b", "a"]
    assert names(F(rule_errors=True)) == ["c"]
    assert [d.name for d in store.detections(only=F(owner="blue"), before=at(2))] == ["a"]
    [a] = store.detections(only=F(rule="r2", owner="blue"))
    assert sorted(r.rule for r in a.rules) == ["r1", "r2"], "a filtered container keeps all its rules"


@pytest.mark.parametrize("scan", [False, True])
def test_both_ways_of_reading_a_rule_give_the_same_page(
    store: DetectionStore, make_finding: MakeFinding, monkeypatch: pytest.MonkeyPatch, scan: bool
) -> None:
    store.record_many(
        make_finding(container_id=f"{n:064x}", name=f"n{n}", rules=(f"r{n % 3}",), timestamp=at(n))
        for n in range(30)
    )
    monkeypatch.setattr(store, "_scan_for_rule", lambda rule, limit: scan)
    page = store.detections(only=store_module.Filter(rule="r1"), limit=4)
    assert [d.name for d in page] == ["n28", "n25", "n22", "n19"]


def test_the_summary_counts_by_latest_outcome_and_follows_every_record(
    store: DetectionStore, make_finding: MakeFinding
) -> None:
    store.record(make_finding(container_id="a" * 64, outcome=Outcome.STOPPED, timestamp=at(0)))
    store.record(make_finding(container_id="b" * 64, outcome=Outcome.RECORDED, timestamp=at(100)))
    summary = store.summary(at(50))
    assert summary.outcomes["stopped"] == store_module.Tally(1, 0)
    assert summary.outcomes["recorded"] == store_module.Tally(1, 1)
    assert summary.of("stopped", "recorded", "held") == store_module.Tally(2, 1)
    assert summary.rule_errors == store_module.Tally(0, 0)

    store.record(
        make_finding(container_id="a" * 64, outcome=Outcome.FAILED, rule_errors=("x",), timestamp=at(200))
    )
    again = store.summary(at(50))
    assert "stopped" not in again.outcomes, "the latest outcome counts"
    assert again.outcomes["failed"] == store_module.Tally(1, 1)
    assert again.rule_errors == store_module.Tally(1, 1)
    assert store.summary(at(150)).outcomes["recorded"] == store_module.Tally(1, 0), (
        "a moved period counts again"
    )
    assert store.count() == 2


def test_a_container_by_full_id_prefix_or_name(store: DetectionStore, make_finding: MakeFinding) -> None:
    store.record(make_finding(container_id="ab" + "0" * 62, name="web", timestamp=at(0)))
    store.record(make_finding(container_id="ab" + "1" * 62, name="web", timestamp=at(5)))
    store.record(make_finding(container_id="cd" + "0" * 62, name="db", timestamp=at(1)))

    assert [d.container_id[:3] for d in store.container("ab" + "0" * 62)] == ["ab0"]
    assert [d.container_id[:3] for d in store.container("ab")] == ["ab1", "ab0"], "newest first"
    assert [d.name for d in store.container("cd00")] == ["db"]
    assert [d.container_id[:3] for d in store.container("web")] == ["ab1", "ab0"]
    assert [d.name for d in store.container("/db")] == ["db"]
    assert store.container("ef") == [] and store.container("nobody") == []
    assert store.container("f" * 64) == []


def test_record_many_is_all_or_nothing(store: DetectionStore, make_finding: MakeFinding) -> None:
    with pytest.raises(ValueError):
        store.record_many(
            [make_finding(container_id="a" * 64), make_finding(container_id="b" * 64, rules=())]
        )
    assert store.count() == 0
