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
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypedDict

from enforcer.record.model import Action, Finding, Outcome, Source, outcome_text, utcnow
from enforcer.settings import Mode

log = logging.getLogger(__name__)

SCHEMA_VERSION = 3
PURGE_EVERY = 1000  # findings between the purges that `record` runs by itself
WAL_LIMIT_BYTES = 4 * 1024 * 1024  # the WAL file is truncated back to this after a checkpoint
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
CREATE TABLE IF NOT EXISTS counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
"""

# What takes a database written with the schema before each version to that version (a new database gets
# _SCHEMA as it is). Version 2: the reason of a failed action moves out of `outcome` ("failed: <reason>", as
# version 1 wrote it) into `outcome_detail`. Version 3: `exec_command`, the executable of an exec check.
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
        if not finding.rules:
            raise ValueError(f"{finding.name}: a finding without violated rules is not a detection")
        at = to_micros(finding.timestamp)
        row: dict[str, str | int | None] = {
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
            "config": None
            if finding.config is None
            else json.dumps(finding.config, sort_keys=True, default=str),
            "rules": json.dumps(list(finding.rules)),
        }
        with self._write_lock, self._failing("record a detection"):
            with _transaction(self._writer, immediate=True) as conn:
                new = conn.execute(
                    "SELECT 1 FROM containers WHERE container_id = :container_id", row
                ).fetchone()
                conn.execute(_UPSERT_CONTAINER, container)
                for rule in dict.fromkeys(finding.rules):
                    conn.execute(_UPSERT_DETECTION, {**row, "rule": rule})
                if new is None:
                    conn.execute(
                        "INSERT INTO counters (name, value) VALUES ('distinct_containers', 1) "
                        "ON CONFLICT (name) DO UPDATE SET value = value + 1"
                    )
            self._since_purge += 1
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
        self, since: datetime | None = None, limit: int | None = None, before: datetime | None = None
    ) -> list[Detection]:
        """Detected containers, the most recently detected first.

        `since`: only containers last detected at or after it; `before`: only those last detected strictly
        before it (pass the last item's `last_timestamp` to get the next page); `limit`: at most that many.
        """
        where, args = ["1 = 1"], []
        if since is not None:
            where.append("last_ts >= ?")
            args.append(to_micros(since))
        if before is not None:
            where.append("last_ts < ?")
            args.append(to_micros(before))
        args.append(-1 if limit is None else max(limit, 0))
        query = (
            f"WITH page AS (SELECT {', '.join(_CONTAINER)} FROM containers WHERE {' AND '.join(where)} "
            "ORDER BY last_ts DESC, container_id LIMIT ?) "
            f"SELECT {_aliased('c', _CONTAINER)}, {_aliased('d', _RULE)} "
            "FROM page c JOIN detections d ON d.container_id = c.container_id "
            "ORDER BY c.last_ts DESC, c.container_id, d.last_ts DESC, d.rule"
        )
        with self._read_lock, self._failing("read detections"):
            rows = self._reader.execute(query, args).fetchall()
        return _group(rows)

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
            return int(self._reader.execute("SELECT COUNT(*) AS n FROM containers").fetchone()["n"])

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


@contextmanager
def _transaction(conn: sqlite3.Connection, immediate: bool = False) -> Iterator[sqlite3.Connection]:
    conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _statements(script: str) -> list[str]:
    lines = [line.split("--", 1)[0] for line in script.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


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
    return _Latest(
        mode=Mode(row[f"{table}_mode"]),
        action=Action(row[f"{table}_action"]),
        outcome=Outcome(row[f"{table}_outcome"]),
        outcome_detail=row[f"{table}_outcome_detail"],
        source=Source(row[f"{table}_source"]),
        rule_errors=tuple(json.loads(row[f"{table}_rule_errors"])),
        exec_command=row[f"{table}_exec_command"],
    )
