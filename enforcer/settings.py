"""Settings read once from the environment into frozen dataclasses.

Each setting is declared once, as a field of `Settings` (or of a group such as `Files`) made by `setting()`:
its variable, default, parser, one line of documentation, whether it is secret and whether /config shows it.
`Settings.from_env`, `Settings.public()` and the README's settings table (`python -m enforcer.settings
--readme README.md`) all follow from those declarations.

Every variable of the original docker-enforcer keeps its name and default. Each bad value raises a
`SettingsError` that names the variable, the value and what is accepted, so the command line can print one
line and exit 2 instead of a traceback. An empty value means the default (as `VAR=` in an env file).
"""

from __future__ import annotations

import argparse
import enum
import re
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# Variables of the original's authorization-plugin mode, which docker-enforcer deliberately does not have.
IGNORED_VARIABLES = ("LOG_AUTHZ_REQUESTS", "DEFAULT_ACTION_ALLOW")


NICE_RANGE = (-20, 19)
# Where an owner is named when OWNER_LABEL is not set on a container: its compose project, its Swarm service.
OWNER_FALLBACK_LABELS = ("com.docker.compose.project", "com.docker.swarm.service.name")


class SettingsError(ValueError):
    """A bad environment value; the message names the variable, the value and what is accepted."""

    def __init__(self, variable: str, value: str, accepted: str) -> None:
        super().__init__(f"{variable}={value!r} is not valid: {accepted}")
        self.variable = variable
        self.value = value


class Mode(enum.Enum):
    """What happens to a violator: WARN records it, KILL stops it and records it."""

    WARN = "WARN"
    KILL = "KILL"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class WhitelistEntry:
    """One WHITE_LIST / IMAGE_WHITE_LIST entry: a whole-name regex, for all rules or for one rule."""

    pattern: str
    rule: str | None = None
    regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "regex", re.compile(self.pattern))

    def matches(self, value: str) -> bool:
        return self.regex.fullmatch(value) is not None

    def __str__(self) -> str:
        return self.pattern if self.rule is None else f"{self.pattern}|{self.rule}"


T = TypeVar("T")
G = TypeVar("G")
_DECLARED = "enforcer.settings.declared"
_GROUP = "enforcer.settings.group"


@dataclass(frozen=True)
class Declared:
    """What one environment variable means; made by `setting()`, kept in its field's metadata."""

    variable: str
    parse: Callable[[str, str], object]  # (variable, value) -> the attribute; raises SettingsError
    doc: str  # one line for the README's table
    secret: bool = False  # never in repr() or public(); public() says only whether it is set
    shown: bool = True  # in public(), so in /config and the page
    strip: bool = True  # surrounding blanks dropped before parsing
    as_public: Callable[[Any], object] | None = None  # the JSON-able value in public(); None: plain
    default_text: str | None = None  # the README's default column, where the value's own text misleads


def setting(
    variable: str,
    default: T,
    parse: Callable[[str, str], T],
    doc: str,
    *,
    secret: bool = False,
    shown: bool = True,
    strip: bool = True,
    as_public: Callable[[Any], object] | None = None,
    default_text: str | None = None,
) -> T:
    """Declare a dataclass field read from `variable`; unset or empty, it keeps `default`."""
    declared = Declared(variable, parse, doc, secret, shown, strip, as_public, default_text)
    return field(default=default, repr=not secret, metadata={_DECLARED: declared})


def group(kind: Callable[[], G]) -> G:
    """A field holding a dataclass of its own declared settings (`Files`), read the same way."""
    return field(default=kind(), metadata={_GROUP: kind})


# -- parsers: (variable, value) -> value, each naming what it accepts -------------------------------------
def _boolean(name: str, raw: str) -> bool:
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise SettingsError(name, raw, "use true or false (also yes/no, on/off, 1/0, in any case)")


def _whole(
    minimum: int, maximum: int | None = None, accepted: str | None = None
) -> Callable[[str, str], int]:
    what = "a positive whole number" if minimum == 1 else f"a whole number of at least {minimum}"
    accepted = accepted or f"use {what}"

    def parse(name: str, raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise SettingsError(name, raw, accepted) from None
        if value < minimum or (maximum is not None and value > maximum):
            raise SettingsError(name, raw, accepted)
        return value

    return parse


_positive = _whole(1)
_nice = _whole(*NICE_RANGE, "use a whole number from -20 (served first) to 19, as for nice(1)")


def _choice(accepted: tuple[str, ...], aliases: Mapping[str, str] | None = None) -> Callable[[str, str], str]:
    def parse(name: str, raw: str) -> str:
        value = raw.upper()
        value = (aliases or {}).get(value, value)
        if value not in accepted:
            raise SettingsError(name, raw, "use one of " + ", ".join(accepted))
        return value

    return parse


_log_level = _choice(LOG_LEVELS, aliases={"WARN": "WARNING"})


def _mode(name: str, raw: str) -> Mode:
    return Mode(_choice(tuple(m.value for m in Mode))(name, raw))


def _log_format(name: str, raw: str) -> str:
    return _choice(("TEXT", "JSON"))(name, raw).lower()


def _text(name: str, raw: str) -> str:
    return raw


def _path(name: str, raw: str) -> Path:
    return Path(raw)


def _address(name: str, raw: str) -> tuple[str, int]:
    host, _, port = raw.rpartition(":")
    if not port.isdigit() or not 0 <= int(port) < 65536:  # 0: any free port
        raise SettingsError(name, raw, "use HOST:PORT, for example 0.0.0.0:8888 or 127.0.0.1:8888")
    return (host.strip("[]") or "0.0.0.0", int(port))


def _host_port(address: tuple[str, int]) -> str:
    return f"{address[0]}:{address[1]}"


def _label_names(name: str, raw: str) -> tuple[str, ...]:
    """Comma-separated label names, in order of preference; blanks around each are dropped."""
    names = tuple(dict.fromkeys(item.strip() for item in raw.split(",") if item.strip()))
    for item in names:
        if re.search(r"[\s=]", item):
            raise SettingsError(
                name, raw, f"{item!r} is not a label name; use names such as com.example.owner,maintainer"
            )
    return names


def _label_name(name: str, raw: str) -> str:
    """One label name."""
    names = _label_names(name, raw)
    if len(names) != 1:
        raise SettingsError(
            name, raw, "use one label name such as com.example.owner (OWNER_LABELS takes several)"
        )
    return names[0]


def _host_names(name: str, raw: str) -> tuple[str, ...]:
    """Comma-separated host names (lowercased, without a trailing dot), or `*` alone."""
    names = tuple(dict.fromkeys(item.strip().lower().rstrip(".") for item in raw.split(",") if item.strip()))
    if "*" in names and names != ("*",):
        raise SettingsError(name, raw, "use `*` alone (no check), or comma-separated host names")
    for item in names:
        if item != "*" and not re.fullmatch(r"[a-z0-9_]([a-z0-9_.-]*[a-z0-9_])?", item):
            raise SettingsError(
                name, raw, f"{item!r} is not a host name; use names such as enforcer.example.com"
            )
    return names


def _watchdog(name: str, raw: str) -> float | None:
    """systemd's WATCHDOG_USEC in seconds; 0 means no watchdog."""
    return _whole(0)(name, raw) / 1e6 or None


def parse_whitelist(variable: str, raw: str) -> tuple[WhitelistEntry, ...]:
    """Parse comma-separated `pattern` or `pattern|rule name` entries (split on the first `|`)."""
    entries = []
    for item in raw.split(","):
        item = item.strip()
        if not item:
            continue
        pattern, sep, rule = item.partition("|")
        try:
            entries.append(WhitelistEntry(pattern.strip(), rule.strip() if sep else None))
        except re.error as exc:
            raise SettingsError(
                variable, raw, f"entry {item!r} is not a valid regular expression ({exc})"
            ) from None
    return tuple(entries)


def normalize_docker_url(variable: str, raw: str) -> str:
    """Accept unix://PATH, tcp://HOST:PORT, http(s)://HOST:PORT and the original's bare HOST:PORT."""
    if raw.startswith(("unix://", "tcp://", "http://", "https://", "ssh://")):
        return raw
    if raw.startswith("/"):
        return "unix://" + raw
    host, _, port = raw.rpartition(":")
    if host and port.isdigit():
        return "tcp://" + raw
    raise SettingsError(variable, raw, "use unix:///path/to/docker.sock, tcp://HOST:PORT or HOST:PORT")


# -- the declarations --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Files:
    """User files given explicitly (RULES_FILE, ...); None means: look in the usual places."""

    rules: Path | None = setting(
        "RULES_FILE", None, _path, "the rules file (unset: the usual places, see above)", shown=False
    )
    whitelist_rules: Path | None = setting(
        "WHITELIST_RULES_FILE", None, _path, "the whitelist rules file (unset: the usual places)", shown=False
    )
    triggers: Path | None = setting(
        "TRIGGERS_FILE", None, _path, "the triggers file (unset: the usual places)", shown=False
    )
    allow_writable: bool = setting(
        "ALLOW_WRITABLE_RULES",
        False,
        _boolean,
        "load user files and their helpers that others could change (owner, mode, a parent); one warning each",
        shown=False,
    )


@dataclass(frozen=True)
class Settings:
    """Everything docker-enforcer reads from its environment, validated."""

    mode: Mode = setting("MODE", Mode.WARN, _mode, "`KILL` stops violators, `WARN` only records them")
    run_periodic: bool = setting("RUN_PERIODIC", True, _boolean, "periodic sweeps of all running containers")
    check_interval_s: int = setting("CHECK_INTERVAL_S", 600, _positive, "seconds between sweeps")
    sample_interval_s: int = setting(
        "SAMPLE_INTERVAL_S",
        15,
        _positive,
        'seconds between samples of the rules held over time ("for", "grace"), on running containers',
    )
    immediate_periodical_start: bool = setting(
        "IMMEDIATE_PERIODICAL_START", False, _boolean, "first sweep at start instead of after one interval"
    )
    run_start_events: bool = setting(
        "RUN_START_EVENTS", False, _boolean, "check containers on `create` and `start` events"
    )
    run_update_events: bool = setting(
        "RUN_UPDATE_EVENTS", False, _boolean, "also re-check on `update` events"
    )
    run_rename_events: bool = setting(
        "RUN_RENAME_EVENTS", False, _boolean, "also re-check on `rename` events"
    )
    run_exec_events: bool = setting(
        "RUN_EXEC_EVENTS",
        False,
        _boolean,
        "judge every `docker exec` at its `exec_start` with `c.exec` set (healthchecks excepted); a violator "
        "is stopped in KILL mode",
    )
    catch_up_sweep: bool = setting(
        "CATCH_UP_SWEEP", True, _boolean, "with events on, sweep at start (and after every reconnect)"
    )
    stop_on_first_violation: bool = setting(
        "STOP_ON_FIRST_VIOLATION", True, _boolean, "stop judging a container at its first violated rule"
    )
    rule_errors_are_violations: bool = setting(
        "RULE_ERRORS_ARE_VIOLATIONS",
        False,
        _boolean,
        "treat a rule that raises as violated (the original's fail-closed behaviour)",
    )
    stop_timeout_s: int = setting(
        "STOP_TIMEOUT_S", 0, _whole(0), "0: SIGKILL at once; N: `docker stop` with N seconds of grace"
    )
    prevent_on_create: bool = setting(
        "PREVENT_ON_CREATE", False, _boolean, "remove violators at create time, before they start (KILL mode)"
    )
    max_new_stops: int = setting(
        "MAX_NEW_STOPS",
        5,
        _whole(0),
        "KILL mode: a rules version (at start, SIGHUP, file change) that would stop more than this many running "
        "containers the version in force leaves alone is held (its rules only record) until one within the "
        "limit is loaded; a rules file may set its own with `max_new_stops = N` (see Safe changes)",
    )
    max_stops_per_minute: int = setting(
        "MAX_STOPS_PER_MINUTE",
        60,
        _whole(0),
        "stop-rate breaker: actions (stops, kills, removals at create) beyond this many in a minute are "
        "recorded as held, not done, until the rate falls; 0: no limit",
    )
    nice: int | None = setting(
        "NICE",
        None,
        _nice,
        "the daemon's CPU priority, as `nice(1)`: -20 (served first) to 19; below 0 needs "
        "`CAP_SYS_NICE` or an `RLIMIT_NICE` of 20 - NICE (`--ulimit nice=30` for -10)",
    )
    # Empty, unlike the original's `docker-enforcer,docker_enforcer`: anyone who can use the socket picks a
    # container's name, and the daemon recognises its own container by id.
    white_list: tuple[WhitelistEntry, ...] = setting(
        "WHITE_LIST",
        (),
        parse_whitelist,
        "name whitelist (see above); the original's default was `docker-enforcer,docker_enforcer`",
        strip=False,
    )
    image_white_list: tuple[WhitelistEntry, ...] = setting(
        "IMAGE_WHITE_LIST", (), parse_whitelist, "image whitelist", strip=False
    )
    peers_dir: Path | None = setting(
        "PEERS_DIR",
        None,
        _path,
        "a folder the enforcers of one host share: one in a container writes its container id there, and "
        "each exempts the ids found there; ignored while group- or others-writable",
    )
    owner_label: str | None = setting(
        "OWNER_LABEL",
        None,
        _label_name,
        "the label that names a container's `owner` (rules, detections, API, page, triggers, notifications); "
        "without it, the compose project (`com.docker.compose.project`), then the Swarm service "
        "(`com.docker.swarm.service.name`); none: `[unknown]`",
    )
    owner_labels: tuple[str, ...] = setting(
        "OWNER_LABELS",
        (),
        _label_names,
        "comma-separated label names, after OWNER_LABEL: the first one set on a container names its `owner`; "
        "none set: `[unknown]` (or, with OWNER_LABEL, the compose project, then the Swarm service)",
    )
    files: Files = group(Files)
    docker_socket: str = setting(
        "DOCKER_SOCKET",
        "unix:///var/run/docker.sock",
        normalize_docker_url,
        "also `tcp://host:port` and the original's bare `host:port`",
    )
    docker_tls_verify: bool = setting(
        "DOCKER_TLS_VERIFY", False, _boolean, "TLS with client certificates for a remote engine"
    )
    docker_cert_path: Path | None = setting(
        "DOCKER_CERT_PATH", None, _path, "the folder of `ca.pem`, `cert.pem` and `key.pem`", shown=False
    )
    docker_req_timeout_s: int = setting(
        "DOCKER_REQ_TIMEOUT_S", 30, _positive, "timeout of one request to the engine"
    )
    engine_concurrency: int = setting(
        "ENGINE_CONCURRENCY",
        512,
        _positive,
        "engine requests a sweep, a round of samples or an audit has in flight at once: one per running "
        "container, up to this many",
    )
    cache_params: bool = setting(
        "CACHE_PARAMS",
        True,
        _boolean,
        "cache `docker inspect` data (dropped on update, rename, die, destroy; purged after sweeps)",
    )
    disable_params: bool = setting(
        "DISABLE_PARAMS",
        False,
        _boolean,
        "params hold only id, name, image and labels from the container list",
    )
    disable_metrics: bool = setting("DISABLE_METRICS", False, _boolean, "no stats; metrics are empty")
    log_level: str = setting("LOG_LEVEL", "INFO", _log_level, "DEBUG, INFO, WARNING, ERROR, CRITICAL")
    log_format: str = setting("LOG_FORMAT", "text", _log_format, "`json`: one JSON object per line")
    listen_address: tuple[str, int] = setting(
        "LISTEN_ADDRESS", ("0.0.0.0", 8888), _address, "the status API", as_public=_host_port
    )
    allowed_hosts: tuple[str, ...] = setting(
        "ALLOWED_HOSTS",
        (),
        _host_names,
        "`Host` header names the API answers besides `localhost` and the host's own names (IP addresses "
        "always pass); `*` turns the check off",
    )
    api_token: str | None = setting(
        "API_TOKEN",
        None,
        _text,
        "require `Authorization: Bearer <token>` on every endpoint but `/healthz`",
        secret=True,
        strip=False,
    )
    metrics_public: bool = setting("METRICS_PUBLIC", False, _boolean, "with a token, leave `/metrics` open")
    state_db: Path = setting(
        "STATE_DB",
        Path("state/detections.db"),
        _path,
        "the SQLite detections record",
        default_text="`./state/detections.db`",
    )
    detections_max_age_days: int = setting(
        "DETECTIONS_MAX_AGE_DAYS", 30, _positive, "retention of detections (also capped in rows)"
    )
    notify_socket: str | None = setting(
        "NOTIFY_SOCKET", None, _text, "set by systemd for `Type=notify` services", shown=False, strip=False
    )
    watchdog_s: float | None = setting(
        "WATCHDOG_USEC", None, _watchdog, "set by systemd from `WatchdogSec=`", shown=False
    )
    # Not a setting: which of the original's authorization-plugin variables are set (each is warned about).
    ignored_variables: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Read and validate every declared variable; the first bad one raises SettingsError."""
        ignored = tuple(name for name in IGNORED_VARIABLES if name in environ)
        return cls(**_read(cls, environ), ignored_variables=ignored)

    @property
    def owner_label_chain(self) -> tuple[str, ...]:
        """The labels that name a container's owner, the first one set wins: OWNER_LABEL, OWNER_LABELS,
        then, with OWNER_LABEL, the compose project and the Swarm service."""
        first = (self.owner_label,) if self.owner_label else ()
        fallback = OWNER_FALLBACK_LABELS if self.owner_label else ()
        return tuple(dict.fromkeys((*first, *self.owner_labels, *fallback)))

    def public(self) -> dict[str, object]:
        """The settings shown in /config, as plain JSON-able values; a secret only says whether it is set."""
        public: dict[str, object] = {}
        for name, declared, value in _values(self):
            if declared.secret:
                public[f"{name}_set"] = value is not None
            elif declared.shown:
                public[name] = (declared.as_public or _plain)(value)
        return public


def _read(kind: type, environ: Mapping[str, str]) -> dict[str, Any]:
    """The attributes of `kind` whose variables are set (a group is read whole); unset ones keep defaults."""
    values: dict[str, Any] = {}
    for f in fields(kind):
        if _GROUP in f.metadata:
            values[f.name] = f.metadata[_GROUP](**_read(f.metadata[_GROUP], environ))
        elif _DECLARED in f.metadata:
            declared: Declared = f.metadata[_DECLARED]
            raw = environ.get(declared.variable)
            if raw is not None and raw.strip():
                values[f.name] = declared.parse(declared.variable, raw.strip() if declared.strip else raw)
    return values


def _values(obj: Any) -> Iterator[tuple[str, Declared, Any]]:
    """(attribute, declaration, value) of every declared setting of `obj`, groups included, in order."""
    for f in fields(obj):
        value = getattr(obj, f.name)
        if _GROUP in f.metadata:
            yield from _values(value)
        elif _DECLARED in f.metadata:
            yield f.name, f.metadata[_DECLARED], value


def declarations() -> list[Declared]:
    """Every declared setting, in the order of the README's table."""
    return [declared for _, declared, _ in _values(Settings())]


def _plain(value: object) -> object:
    """A JSON-able form: numbers, text, booleans and None as they are, sequences as lists, the rest as text."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    return str(value)


# -- the README's table --------------------------------------------------------------------------------------
TABLE_BEGIN = "<!-- settings table: generated by `python -m enforcer.settings --readme README.md` -->"
TABLE_END = "<!-- end of settings table -->"


def readme_table() -> str:
    """The Markdown table of every setting: variable, default, meaning."""
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    for _, declared, default in _values(Settings()):
        lines.append(f"| `{declared.variable}` | {_default_text(declared, default)} | {declared.doc} |")
    return "\n".join(lines) + "\n"


def _default_text(declared: Declared, default: object) -> str:
    if declared.default_text is not None:
        return declared.default_text
    if default is None:
        return "unset"
    if default == ():
        return "empty"
    shown = (declared.as_public or _plain)(default)
    return f"`{shown}`"


def with_readme_table(readme: str) -> str:
    """The README's text with the generated table between its markers."""
    before, begin, rest = readme.partition(TABLE_BEGIN)
    _, end, after = rest.partition(TABLE_END)
    if not begin or not end:
        raise ValueError(f"the README lacks the markers {TABLE_BEGIN!r} and {TABLE_END!r}")
    return f"{before}{TABLE_BEGIN}\n{readme_table()}{TABLE_END}{after}"


def main(argv: Sequence[str] | None = None) -> int:
    """Print the settings table, or write it into a README between the markers (`--readme README.md`)."""
    cli = argparse.ArgumentParser(prog="python -m enforcer.settings", description=main.__doc__)
    cli.add_argument("--readme", type=Path, metavar="FILE", help="rewrite the table in this file")
    args = cli.parse_args(argv)
    if args.readme is None:
        sys.stdout.write(readme_table())
        return 0
    text = args.readme.read_text(encoding="utf-8")
    args.readme.write_text(with_readme_table(text), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
