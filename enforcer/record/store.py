"""The durable record of detections: SQLite at STATE_DB, in WAL mode, bounded in age and rows.

Two tables. `containers` holds one row per detected container: what it is (name, image, labels, restart
policy, safe config), how often it was detected and what the latest finding did. `detections` holds one row
per (container, rule) that it violated, upserted on every finding: count, first and last time, and the latest
mode, action, outcome, source and rule errors. Nothing is kept in memory: the daemon's memory stays flat and
the file's size is bounded by `purge` (age and row cap), which the daemon calls after each sweep and hourly,
and which `record` also runs by itself every `PURGE_EVERY` findings.

Times are stored as whole microseconds since the epoch (UTC): exact, and ordered as numbers.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import stat
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypedDict

from enforcer.record.model import Action, Finding, Outcome, Source, outcome_text, utcnow
from enforcer.settings import Mode

log = logging.getLogger(__name__)

SCHEMA_VERSION = 4
PURGE_EVERY = 1000  # findings between the purges that `record` runs by itself
WAL_LIMIT_BYTES = 4 * 1024 * 1024  # the WAL file is truncated back to this after a checkpoint
SUMMARY_KEPT = timedelta(seconds=30)  # a summary is counted again when its period moved by this much
FILE_MODE = 0o600  # detections name containers, images, labels and configs: for the daemon's user only
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS containers (
    container_id   TEXT PRIMARY KEY,
    name           TEXT NOT NULL,
    image          TEXT NOT NULL,
    owner          TEXT NOT NULL,
    labels         TEXT NOT NULL,   -- JSON object
    restart_policy TEXT,            -- the first one reported: the policy before the enforcer changed it
    config         TEXT,            -- JSON, from safe_config (never env values or the command line)
    count          INTEGER NOT NULL,
    first_ts       INTEGER NOT NULL,
    last_ts        INTEGER NOT NULL,
    rules          TEXT NOT NULL,   -- JSON list: the latest finding's violated rules, in rule order
    mode           TEXT NOT NULL,
    action         TEXT NOT NULL,
    outcome        TEXT NOT NULL,
    source         TEXT NOT NULL,
    rule_errors    TEXT NOT NULL,   -- JSON list
    outcome_detail TEXT,            -- why the action failed; NULL when it did not
    exec_command   TEXT             -- an exec check's executable (never its arguments); NULL for others
);
CREATE INDEX IF NOT EXISTS containers_by_last_ts ON containers (last_ts);
CREATE INDEX IF NOT EXISTS containers_by_owner ON containers (owner, last_ts);
CREATE INDEX IF NOT EXISTS containers_by_outcome ON containers (outcome, last_ts);
CREATE INDEX IF NOT EXISTS containers_by_name ON containers (name, last_ts);
CREATE INDEX IF NOT EXISTS containers_with_errors ON containers (last_ts) WHERE rule_errors != '[]';
CREATE TABLE IF NOT EXISTS detections (
    container_id   TEXT NOT NULL REFERENCES containers (container_id) ON DELETE CASCADE,
    rule           TEXT NOT NULL,
    count          INTEGER NOT NULL,
    first_ts       INTEGER NOT NULL,
    last_ts        INTEGER NOT NULL,
    mode           TEXT NOT NULL,
    action         TEXT NOT NULL,
    outcome        TEXT NOT NULL,
    source         TEXT NOT NULL,
    rule_errors    TEXT NOT NULL,
    outcome_detail TEXT,
    exec_command   TEXT,
    PRIMARY KEY (container_id, rule)
);
CREATE INDEX IF NOT EXISTS detections_by_last_ts ON detections (last_ts);
CREATE INDEX IF NOT EXISTS detections_by_rule ON detections (rule, container_id);
CREATE TABLE IF NOT EXISTS counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
"""


def _statements(script: str) -> list[str]:
    lines = [line.split("--", 1)[0] for line in script.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


# What takes a database written with the schema before each version to that version (a new database gets
# _SCHEMA as it is). Version 2: the reason of a failed action moves out of `outcome` ("failed: <reason>", as
# version 1 wrote it) into `outcome_detail`. Version 3: `exec_command`, the executable of an exec check.
# Version 4: indexes for the page's filters (owner, outcome, name, rule, rule errors).
_MIGRATIONS = {
    2: [
        *(f"ALTER TABLE {table} ADD COLUMN outcome_detail TEXT" for table in ("containers", "detections")),
        *(
            f"UPDATE {table} SET outcome_detail = substr(outcome, 9), outcome = 'failed' "
            "WHERE substr(outcome, 1, 8) = 'failed: '"
            for table in ("containers", "detections")
        ),
    ],
    3: [f"ALTER TABLE {table} ADD COLUMN exec_command TEXT" for table in ("containers", "detections")],
    4: [sql for sql in _statements(_SCHEMA) if sql.startswith("CREATE INDEX")],
}

# The latest-finding columns follow the newest finding by time, even when findings are recorded out of order
# (an event check and a sweep racing on the same container).
_LATEST = ("mode", "action", "outcome", "outcome_detail", "source", "rule_errors", "exec_command")
_CONTAINER = (
    *("container_id", "name", "image", "owner", "labels", "restart_policy", "config"),
    *("count", "first_ts", "last_ts", "rules", *_LATEST),
)
_RULE = ("rule", "count", "first_ts", "last_ts", *_LATEST)  # a detection's columns but its container's id
_DETECTION = ("container_id", *_RULE)


def _upsert(table: str, columns: tuple[str, ...], key: str, latest: tuple[str, ...], keep: str = "") -> str:
    """INSERT of one finding (named parameters, `count` 1), or its update of the row it conflicts with."""
    values = ", ".join("1" if col == "count" else f":{col}" for col in columns)
    newer = f"excluded.last_ts >= {table}.last_ts"
    sets = [f"{col} = CASE WHEN {newer} THEN excluded.{col} ELSE {table}.{col} END" for col in latest]
    sets += [
        f"count = {table}.count + 1",
        f"first_ts = MIN({table}.first_ts, excluded.first_ts)",
        f"last_ts = MAX({table}.last_ts, excluded.last_ts)",
    ]
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({values}) "
        f"ON CONFLICT ({key}) DO UPDATE SET {', '.join(sets)}{keep}"
    )


_UPSERT_CONTAINER = _upsert(
    "containers",
    _CONTAINER,
    "container_id",
    ("name", "image", "owner", "labels", "rules", *_LATEST),
    ", restart_policy = COALESCE(containers.restart_policy, excluded.restart_policy)"
    ", config = COALESCE(excluded.config, containers.config)",
)
_UPSERT_DETECTION = _upsert("detections", _DETECTION, "container_id, rule", _LATEST)


class StoreError(Exception):
    """The detections database cannot be used; the message names the file and the fix."""


@dataclass(frozen=True)
class RuleDetection:
    """How often one container violated one rule, and what the latest of those findings did."""

    rule: str
    count: int
    first_timestamp: datetime
    last_timestamp: datetime
    mode: Mode
    action: Action
    outcome: Outcome
    source: Source
    rule_errors: tuple[str, ...] = ()
    outcome_detail: str | None = None
    exec_command: str | None = None  # the executable, when the latest finding was an exec check

    def __str__(self) -> str:
        return f"Rule {self.rule!r} violated {self.count} time(s)"

    @property
    def outcome_text(self) -> str:
        return outcome_text(self.outcome, self.outcome_detail)


@dataclass(frozen=True)
class Detection:
    """One detected container with every rule it violated (newest first) and its latest finding."""

    container_id: str
    name: str  # without the leading "/"
    image: str
    owner: str
    labels: Mapping[str, str]
    restart_policy: str | None
    config: Mapping[str, Any] | None
    count: int  # findings recorded for this container
    first_timestamp: datetime
    last_timestamp: datetime
    latest_rules: tuple[str, ...]  # the latest finding's violated rules, in rule order
    mode: Mode  # of the latest finding, as are action, outcome, source, rule_errors and outcome_detail
    action: Action
    outcome: Outcome
    source: Source
    rule_errors: tuple[str, ...] = ()
    rules: tuple[RuleDetection, ...] = field(default=())
    outcome_detail: str | None = None
    exec_command: str | None = None  # the executable, when the latest finding was an exec check

    def __str__(self) -> str:
        return f"Detection of {self.name!r} ({self.container_id[:12]}): {', '.join(self.latest_rules)}"

    @property
    def outcome_text(self) -> str:
        return outcome_text(self.outcome, self.outcome_detail)


_RULE_LOOKUP = "container_id IN (SELECT container_id FROM detections WHERE rule = :rule)"
_RULE_SCAN = (
    "EXISTS (SELECT 1 FROM detections d WHERE d.container_id = containers.container_id AND d.rule = :rule)"
)


@dataclass(frozen=True)
class Filter:
    """Which detected containers a listing keeps (all of the given conditions hold); empty keeps them all."""

    owner: str | None = None
    rule: str | None = None  # violated it, in any finding
    outcomes: tuple[Outcome, ...] = ()  # the latest finding's outcome is one of these
    rule_errors: bool = False  # the latest finding had rule errors

    def sql(self, rule_by_scan: bool = False) -> tuple[list[str], dict[str, Any]]:
        """The conditions on `containers`, with named parameters; each one served by an index. The rule's
        either walks the newest containers checking each (`rule_by_scan`: quick when many violated it) or
        looks its violators up and sorts them (quick when few did); the store picks."""
        where: list[str] = []
        args: dict[str, Any] = {}
        if self.owner is not None:
            where.append("owner = :owner")
            args["owner"] = self.owner
        if self.rule is not None:
            where.append(_RULE_SCAN if rule_by_scan else _RULE_LOOKUP)
            args["rule"] = self.rule
        if self.outcomes:
            names = [f"outcome_{index}" for index in range(len(self.outcomes))]
            where.append(f"outcome IN ({', '.join(':' + name for name in names)})")
            args.update(zip(names, (Outcome(o).value for o in self.outcomes), strict=True))
        if self.rule_errors:
            where.append("rule_errors != '[]'")
        return where, args


@dataclass(frozen=True)
class Tally:
    total: int  # containers on record
    recent: int  # of those, last detected in the period asked for


@dataclass(frozen=True)
class Summary:
    """Containers on record by their latest outcome (keyed by the outcome's value), and with rule errors."""

    outcomes: Mapping[str, Tally]
    rule_errors: Tally

    def of(self, *outcomes: str) -> Tally:
        found = [self.outcomes[o] for o in outcomes if o in self.outcomes]
        return Tally(sum(t.total for t in found), sum(t.recent for t in found))


def to_micros(when: datetime) -> int:
    """Whole microseconds since the epoch; a naive datetime is taken as UTC."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (when - _EPOCH) // _US


def from_micros(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


class DetectionStore:
    """Thread-safe store of detections; every `record` is committed before it returns.

    Writes go through one connection and reads through another: in WAL mode readers never block the
    writer, so a slow status request never delays the recording of a finding.
    """

    def __init__(self, path: Path, max_age_days: int, max_rows: int = 100_000) -> None:
        if max_age_days < 1 or max_rows < 1:
            raise ValueError("max_age_days and max_rows must be at least 1")
        self.path = Path(path)
        self.max_age = timedelta(days=max_age_days)
        self.max_rows = max_rows
        self._write_lock = threading.Lock()
        self._read_lock = threading.Lock()
        self._since_purge = 0
        # Figures kept by the reader's PRAGMA data_version, which changes whenever the writer commits.
        self._summary: tuple[int, datetime, Summary] | None = None
        self._count: tuple[int, int] | None = None
        self._writer = self._open(readonly=False)
        try:
            self._reader = self._open(readonly=True)
        except BaseException:
            self._writer.close()
            raise

    def __str__(self) -> str:
        return f"Detections store {str(self.path)!r}"

    # -- opening -------------------------------------------------------------------------------------------

    def _open(self, readonly: bool) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"{self.path}: cannot create its folder ({exc}); create it writable for the daemon's user, "
                "or set STATE_DB to a path in a writable folder"
            ) from None
        if not readonly:
            self._restrict_files()
        conn = None
        try:
            conn = sqlite3.connect(self.path, timeout=10, isolation_level=None, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            self._configure(conn, readonly)
        except BaseException as exc:
            if conn is not None:
                conn.close()
            if isinstance(exc, sqlite3.DatabaseError):
                raise self._explain(exc) from None
            raise
        return conn

    def _restrict_files(self) -> None:
        """Create the database 0600 whatever the umask, and tighten an existing one and its -wal and -shm
        files to 0600 (SQLite creates those two with the database's mode, so new ones follow it).

        Errors are left to SQLite's open, which follows and explains them.
        """
        with suppress(OSError):  # there already, or not creatable: SQLite says which
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE))
        for path in (self.path, *(self.path.with_name(self.path.name + end) for end in ("-wal", "-shm"))):
            try:
                mode = stat.S_IMODE(path.stat().st_mode)
                if mode & ~FILE_MODE:
                    path.chmod(FILE_MODE)
                    log.warning("%s was mode %04o, open to group or others; now 0600", path, mode)
            except FileNotFoundError:
                continue
            except OSError as exc:
                log.warning("%s: cannot make it 0600 (%s); make it the daemon's user's, mode 0600", path, exc)

    def _configure(self, conn: sqlite3.Connection, readonly: bool) -> None:
        if not readonly:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()["journal_mode"]
            if str(mode).lower() != "wal":
                raise sqlite3.OperationalError(f"cannot switch to WAL mode (journal_mode is {mode})")
            self._check_integrity(conn)
            self._migrate(conn)
        # In WAL mode a commit is complete once its frames are written into the -wal file. With NORMAL that
        # write is not followed by an fsync, but it is in the kernel's page cache as soon as write() returns,
        # so a `kill -9` (or any crash) of this process loses no committed detection; only a power cut or an
        # OS crash may roll back the last few commits, and never corrupts the file. FULL would add an fsync
        # to every record, on the enforcement path, to cover that case too; NORMAL is the trade we take.
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute(f"PRAGMA journal_size_limit={WAL_LIMIT_BYTES}")
        if readonly:
            conn.execute("PRAGMA query_only=ON")

    def _check_integrity(self, conn: sqlite3.Connection) -> None:
        result = conn.execute("PRAGMA quick_check").fetchone()["quick_check"]
        if result != "ok":
            raise sqlite3.DatabaseError(f"integrity check failed: {result}")

    def _migrate(self, conn: sqlite3.Connection) -> None:
        # All or nothing, and the version read under the write lock: a failed migration leaves the file as it
        # was, and two processes opening an old file at once migrate it once.
        with _transaction(conn, immediate=True):
            version = conn.execute("PRAGMA user_version").fetchone()["user_version"]
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path}: written by a newer docker-enforcer (schema {version}, this one knows "
                    f"{SCHEMA_VERSION}); run the newer version, or set STATE_DB to another path"
                )
            if version == 0:  # a new file: the schema as it is now
                statements = _statements(_SCHEMA)  # not executescript: it would commit early
            else:
                statements = [
                    sql for step in range(version + 1, SCHEMA_VERSION + 1) for sql in _MIGRATIONS[step]
                ]
            for statement in statements:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def _explain(self, exc: sqlite3.DatabaseError) -> StoreError:
        text = str(exc)
        if "unable to open" in text or "readonly" in text or "read-only" in text:
            fix = "make the file and its folder readable and writable by the daemon's user"
        else:
            fix = "it is damaged or not a docker-enforcer database: move it aside (its detections are lost)"
        return StoreError(
            f"{self.path}: cannot be used as the detections database ({text}); {fix}, "
            "or set STATE_DB to another path"
        )

    # -- writing -------------------------------------------------------------------------------------------

    def record(self, finding: Finding) -> None:
        """Upsert one finding: its container and one row per violated rule. Committed when this returns.

        Raises ValueError for a finding without violated rules (not a detection) or with a mode, action,
        outcome or source that is not one of its enum's values; StoreError when the database fails.
        """
        self.record_many([finding])

    def record_many(self, findings: Iterable[Finding]) -> None:
        """Upsert findings in one transaction (all or none), as `record` does each: imports, benchmarks."""
        rows = [_finding_rows(finding) for finding in findings]  # every one checked before any is written
        with self._write_lock, self._failing("record a detection"):
            with _transaction(self._writer, immediate=True) as conn:
                for row, container, rules in rows:
                    new = conn.execute(
                        "SELECT 1 FROM containers WHERE container_id = :container_id", row
                    ).fetchone()
                    conn.execute(_UPSERT_CONTAINER, container)
                    for rule in rules:
                        conn.execute(_UPSERT_DETECTION, {**row, "rule": rule})
                    if new is None:
                        conn.execute(
                            "INSERT INTO counters (name, value) VALUES ('distinct_containers', 1) "
                            "ON CONFLICT (name) DO UPDATE SET value = value + 1"
                        )
            self._since_purge += len(rows)
            if self._since_purge >= PURGE_EVERY:
                self._purge_locked(utcnow())

    def purge(self, now: datetime | None = None) -> int:
        """Drop rows older than max_age_days, then the oldest beyond max_rows; returns the rows dropped."""
        with self._write_lock, self._failing("purge old detections"):
            return self._purge_locked(now or utcnow())

    def _purge_locked(self, now: datetime) -> int:
        self._since_purge = 0
        cutoff = to_micros(now - self.max_age)
        with _transaction(self._writer, immediate=True) as conn:
            dropped = conn.execute("DELETE FROM detections WHERE last_ts < ?", (cutoff,)).rowcount
            excess = conn.execute("SELECT COUNT(*) AS n FROM detections").fetchone()["n"] - self.max_rows
            if excess > 0:
                dropped += conn.execute(
                    "DELETE FROM detections WHERE rowid IN "
                    "(SELECT rowid FROM detections ORDER BY last_ts, rowid LIMIT ?)",
                    (excess,),
                ).rowcount
            containers = conn.execute(
                "DELETE FROM containers WHERE NOT EXISTS "
                "(SELECT 1 FROM detections d WHERE d.container_id = containers.container_id)"
            ).rowcount
        if dropped:
            log.info("purged %d detection row(s) of %d container(s) from %s", dropped, containers, self.path)
        return dropped + containers

    # -- reading -------------------------------------------------------------------------------------------

    def detections(
        self,
        since: datetime | None = None,
        limit: int | None = None,
        before: datetime | None = None,
        only: Filter | None = None,
    ) -> list[Detection]:
        """Detected containers, the most recently detected first.

        `since`: only containers last detected at or after it; `before`: only those last detected strictly
        before it (pass the last item's `last_timestamp` to get the next page); `limit`: at most that many;
        `only`: those that match it as well.
        """
        only = only or Filter()
        where, args = only.sql(rule_by_scan=self._scan_for_rule(only.rule, limit))
        if since is not None:
            where.append("last_ts >= :since")
            args["since"] = to_micros(since)
        if before is not None:
            where.append("last_ts < :before")
            args["before"] = to_micros(before)
        args["limit"] = -1 if limit is None else max(limit, 0)
        return self._containers(" AND ".join(where) or "1 = 1", args, "ORDER BY last_ts DESC, container_id")

    def _scan_for_rule(self, rule: str | None, limit: int | None) -> bool:
        """Whether walking the containers newest first finds `limit` violators of `rule` sooner than sorting
        all of them: it takes about limit x containers / violators steps, the sort about violators."""
        if rule is None or limit is None or limit < 0:
            return False
        with self._read_lock, self._failing("count detections"):
            violators = self._reader.execute(
                "SELECT COUNT(*) AS n FROM detections WHERE rule = ?", (rule,)
            ).fetchone()["n"]
        return bool(violators) and violators * violators > limit * self.count()

    def container(self, key: str) -> list[Detection]:
        """The containers `key` names, newest first: by full id, else by id prefix (hexadecimal keys), else
        by name (a name may have been used by several containers over time). Empty when none."""
        hexadecimal = key.isascii() and all(ch in "0123456789abcdef" for ch in key)
        if len(key) == 64 and hexadecimal:
            return self._containers("container_id = :key", {"key": key, "limit": 2}, "")
        if hexadecimal and key:
            # A range on the primary key: every id that starts with `key` ("g" sorts after every hex digit).
            found = self._containers(
                "container_id >= :key AND container_id < :end",
                {"key": key, "end": key + "g", "limit": 50},
                "ORDER BY last_ts DESC, container_id",
            )
            if found:
                return found
        return self._containers(
            "name = :key", {"key": key.lstrip("/"), "limit": 50}, "ORDER BY last_ts DESC, container_id"
        )

    def _containers(self, where: str, args: dict[str, Any], order: str) -> list[Detection]:
        """The containers that match `where`, in `order`, at most `args["limit"]`, each with its rules."""
        query = (
            f"WITH page AS (SELECT {', '.join(_CONTAINER)} FROM containers WHERE {where} {order} LIMIT :limit) "
            f"SELECT {_aliased('c', _CONTAINER)}, {_aliased('d', _RULE)} "
            "FROM page c JOIN detections d ON d.container_id = c.container_id "
            "ORDER BY c.last_ts DESC, c.container_id, d.last_ts DESC, d.rule"
        )
        with self._read_lock, self._failing("read detections"):
            rows = self._reader.execute(query, args).fetchall()
        return _group(rows)

    def summary(self, since: datetime) -> Summary:
        """Containers on record by their latest outcome, and those whose latest finding had rule errors: in
        all, and among those last detected at or after `since`. Read from indexes, and kept until the record
        changes or `since` moves by SUMMARY_KEPT (each page asks; the figures change with the record)."""
        with self._read_lock, self._failing("count detections"):
            version = self._reader.execute("PRAGMA data_version").fetchone()[0]
            kept = self._summary
            if kept is not None and kept[0] == version and abs(kept[1] - since) < SUMMARY_KEPT:
                return kept[2]
            summary = self._count_summary(since)
            self._summary = (version, since, summary)
            return summary

    def _count_summary(self, since: datetime) -> Summary:
        day = {"since": to_micros(since)}
        by_outcome = self._reader.execute(
            "SELECT outcome, COUNT(*) AS total, COALESCE(SUM(last_ts >= :since), 0) AS recent "
            "FROM containers GROUP BY outcome",
            day,
        ).fetchall()
        errors = self._reader.execute(
            "SELECT COUNT(*) AS total, COALESCE(SUM(last_ts >= :since), 0) AS recent "
            "FROM containers WHERE rule_errors != '[]'",
            day,
        ).fetchone()
        return Summary(
            outcomes={row["outcome"]: Tally(row["total"], row["recent"]) for row in by_outcome},
            rule_errors=Tally(errors["total"], errors["recent"]),
        )

    def distinct_containers(self) -> int:
        """Distinct containers ever detected (kept across purges and restarts, so it never goes down)."""
        with self._read_lock, self._failing("count detected containers"):
            row = self._reader.execute(
                "SELECT value FROM counters WHERE name = 'distinct_containers'"
            ).fetchone()
        return 0 if row is None else int(row["value"])

    def count(self) -> int:
        """Containers currently in the record."""
        with self._read_lock, self._failing("count detections"):
            version = self._reader.execute("PRAGMA data_version").fetchone()[0]
            if self._count is None or self._count[0] != version:
                n = int(self._reader.execute("SELECT COUNT(*) AS n FROM containers").fetchone()["n"])
                self._count = (version, n)
            return self._count[1]

    def close(self) -> None:
        with self._write_lock, self._read_lock:
            self._reader.close()
            self._writer.close()

    @contextmanager
    def _failing(self, what: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot {what}: {exc}") from exc


def _finding_rows(finding: Finding) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """A finding's parameters: the latest-finding columns, its container's row, and its rules once each."""
    if not finding.rules:
        raise ValueError(f"{finding.name}: a finding without violated rules is not a detection")
    at = to_micros(finding.timestamp)
    row: dict[str, Any] = {
        "container_id": finding.container_id,
        "first_ts": at,
        "last_ts": at,
        # Checked against their enums here: a value no reader knows is refused, never stored.
        "mode": Mode(finding.mode).value,
        "action": Action(finding.action).value,
        "outcome": Outcome(finding.outcome).value,
        "outcome_detail": finding.outcome_detail,
        "source": Source(finding.source).value,
        "rule_errors": json.dumps(list(finding.rule_errors)),
        "exec_command": finding.exec_command,
    }
    container = {
        **row,
        "name": finding.name.lstrip("/"),
        "image": finding.image,
        "owner": finding.owner,
        "labels": json.dumps(dict(finding.labels), sort_keys=True),
        "restart_policy": finding.restart_policy,
        "config": None if finding.config is None else json.dumps(finding.config, sort_keys=True, default=str),
        "rules": json.dumps(list(finding.rules)),
    }
    return row, container, list(dict.fromkeys(finding.rules))


@contextmanager
def _transaction(conn: sqlite3.Connection, immediate: bool = False) -> Iterator[sqlite3.Connection]:
    conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _aliased(table: str, columns: tuple[str, ...]) -> str:
    """`table.col AS table_col, ...`: a join's columns, each under a name of its own."""
    return ", ".join(f"{table}.{col} AS {table}_{col}" for col in columns)


def _group(rows: list[sqlite3.Row]) -> list[Detection]:
    """Detections from the rows of `detections()`' join: one row per (container, rule), a container's together."""
    out: list[Detection] = []
    current: sqlite3.Row | None = None
    rules: list[RuleDetection] = []
    for row in rows:
        if current is not None and row["c_container_id"] != current["c_container_id"]:
            out.append(_detection(current, rules))
            rules = []
        current = row
        rules.append(_rule_detection(row))
    if current is not None:
        out.append(_detection(current, rules))
    return out


def _detection(row: sqlite3.Row, rules: list[RuleDetection]) -> Detection:
    config = row["c_config"]
    return Detection(
        container_id=row["c_container_id"],
        name=row["c_name"],
        image=row["c_image"],
        owner=row["c_owner"],
        labels=json.loads(row["c_labels"]),
        restart_policy=row["c_restart_policy"],
        config=None if config is None else json.loads(config),
        count=row["c_count"],
        first_timestamp=from_micros(row["c_first_ts"]),
        last_timestamp=from_micros(row["c_last_ts"]),
        latest_rules=tuple(json.loads(row["c_rules"])),
        rules=tuple(rules),
        **_latest(row, "c"),
    )


def _rule_detection(row: sqlite3.Row) -> RuleDetection:
    return RuleDetection(
        rule=row["d_rule"],
        count=row["d_count"],
        first_timestamp=from_micros(row["d_first_ts"]),
        last_timestamp=from_micros(row["d_last_ts"]),
        **_latest(row, "d"),
    )


class _Latest(TypedDict):
    """The latest finding's fields, which a container's row and each of its rules' rows hold alike."""

    mode: Mode
    action: Action
    outcome: Outcome
    outcome_detail: str | None
    source: Source
    rule_errors: tuple[str, ...]
    exec_command: str | None


def _latest(row: sqlite3.Row, table: str) -> _Latest:
    # Enum members by plain dict lookups: a page of the record builds a few thousand of them.
    return _Latest(
        mode=_MODES[row[f"{table}_mode"]],
        action=_ACTIONS[row[f"{table}_action"]],
        outcome=_OUTCOMES[row[f"{table}_outcome"]],
        outcome_detail=row[f"{table}_outcome_detail"],
        source=_SOURCES[row[f"{table}_source"]],
        rule_errors=_json_list(row[f"{table}_rule_errors"]),
        exec_command=row[f"{table}_exec_command"],
    )


_MODES = {str(m): m for m in Mode}
_ACTIONS = {str(a): a for a in Action}
_OUTCOMES = {str(o): o for o in Outcome}
_SOURCES = {str(s): s for s in Source}


def _json_list(text: str) -> tuple[str, ...]:
    return () if text == "[]" else tuple(json.loads(text))
