"""Settings read once from the environment into frozen dataclasses.

Every variable of the original docker-enforcer keeps its name and default. Each bad value raises a
`SettingsError` that names the variable, the value and what is accepted, so the command line can print one
line and exit 2 instead of a traceback.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# Variables of the original's authorization-plugin mode, which docker-enforcer deliberately does not have.
IGNORED_VARIABLES = ("LOG_AUTHZ_REQUESTS", "DEFAULT_ACTION_ALLOW")


NICE_RANGE = (-20, 19)


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


@dataclass(frozen=True)
class Files:
    """User files given explicitly (RULES_FILE, ...); None means: look in the usual places."""

    rules: Path | None = None
    whitelist_rules: Path | None = None
    triggers: Path | None = None
    allow_writable: bool = False


@dataclass(frozen=True)
class Settings:
    """Everything docker-enforcer reads from its environment, validated."""

    mode: Mode = Mode.WARN
    run_periodic: bool = True
    run_start_events: bool = False
    run_update_events: bool = False
    run_rename_events: bool = False
    check_interval_s: int = 600
    immediate_periodical_start: bool = False
    catch_up_sweep: bool = True
    docker_socket: str = "unix:///var/run/docker.sock"
    docker_req_timeout_s: int = 30
    docker_tls_verify: bool = False
    docker_cert_path: Path | None = None
    cache_params: bool = True
    disable_params: bool = False
    disable_metrics: bool = False
    stop_on_first_violation: bool = True
    rule_errors_are_violations: bool = False
    stop_timeout_s: int = 0
    prevent_on_create: bool = False
    nice: int | None = None  # the daemon's CPU priority; None: as started
    log_level: str = "INFO"
    log_format: str = "text"
    # Empty, unlike the original's `docker-enforcer,docker_enforcer`: anyone who can use the socket picks a
    # container's name, and the daemon recognises its own container by id.
    white_list: tuple[WhitelistEntry, ...] = ()
    image_white_list: tuple[WhitelistEntry, ...] = ()
    files: Files = Files()
    listen_address: tuple[str, int] = ("0.0.0.0", 8888)
    api_token: str | None = field(default=None, repr=False)
    # Host header names the API answers besides localhost and the host's own names; ("*",) turns the check off.
    allowed_hosts: tuple[str, ...] = ()
    metrics_public: bool = False
    state_db: Path = Path("state/detections.db")
    detections_max_age_days: int = 30
    ignored_variables: tuple[str, ...] = ()
    notify_socket: str | None = None  # set by systemd for Type=notify services
    watchdog_s: float | None = None  # systemd's WatchdogSec, from WATCHDOG_USEC

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Read and validate every variable; the first bad one raises SettingsError."""
        env = _Reader(environ)
        defaults = cls()
        return cls(
            mode=env.mode("MODE", defaults.mode),
            run_periodic=env.boolean("RUN_PERIODIC", defaults.run_periodic),
            run_start_events=env.boolean("RUN_START_EVENTS", defaults.run_start_events),
            run_update_events=env.boolean("RUN_UPDATE_EVENTS", defaults.run_update_events),
            run_rename_events=env.boolean("RUN_RENAME_EVENTS", defaults.run_rename_events),
            check_interval_s=env.integer("CHECK_INTERVAL_S", defaults.check_interval_s, minimum=1),
            immediate_periodical_start=env.boolean(
                "IMMEDIATE_PERIODICAL_START", defaults.immediate_periodical_start
            ),
            catch_up_sweep=env.boolean("CATCH_UP_SWEEP", defaults.catch_up_sweep),
            docker_socket=env.socket("DOCKER_SOCKET", defaults.docker_socket),
            docker_req_timeout_s=env.integer(
                "DOCKER_REQ_TIMEOUT_S", defaults.docker_req_timeout_s, minimum=1
            ),
            docker_tls_verify=env.boolean("DOCKER_TLS_VERIFY", False),
            docker_cert_path=env.path("DOCKER_CERT_PATH"),
            cache_params=env.boolean("CACHE_PARAMS", defaults.cache_params),
            disable_params=env.boolean("DISABLE_PARAMS", defaults.disable_params),
            disable_metrics=env.boolean("DISABLE_METRICS", defaults.disable_metrics),
            stop_on_first_violation=env.boolean("STOP_ON_FIRST_VIOLATION", defaults.stop_on_first_violation),
            rule_errors_are_violations=env.boolean(
                "RULE_ERRORS_ARE_VIOLATIONS", defaults.rule_errors_are_violations
            ),
            stop_timeout_s=env.integer("STOP_TIMEOUT_S", defaults.stop_timeout_s, minimum=0),
            prevent_on_create=env.boolean("PREVENT_ON_CREATE", defaults.prevent_on_create),
            nice=env.niceness("NICE"),
            log_level=env.choice("LOG_LEVEL", defaults.log_level, LOG_LEVELS, aliases={"WARN": "WARNING"}),
            log_format=env.choice("LOG_FORMAT", defaults.log_format.upper(), ("TEXT", "JSON")).lower(),
            white_list=env.whitelist("WHITE_LIST", defaults.white_list),
            image_white_list=env.whitelist("IMAGE_WHITE_LIST", defaults.image_white_list),
            files=Files(
                rules=env.path("RULES_FILE"),
                whitelist_rules=env.path("WHITELIST_RULES_FILE"),
                triggers=env.path("TRIGGERS_FILE"),
                allow_writable=env.boolean("ALLOW_WRITABLE_RULES", False),
            ),
            listen_address=env.address("LISTEN_ADDRESS", defaults.listen_address),
            api_token=environ.get("API_TOKEN") or None,
            allowed_hosts=env.names("ALLOWED_HOSTS"),
            metrics_public=env.boolean("METRICS_PUBLIC", defaults.metrics_public),
            state_db=env.path("STATE_DB") or defaults.state_db,
            detections_max_age_days=env.integer(
                "DETECTIONS_MAX_AGE_DAYS", defaults.detections_max_age_days, minimum=1
            ),
            ignored_variables=tuple(name for name in IGNORED_VARIABLES if name in environ),
            notify_socket=environ.get("NOTIFY_SOCKET") or None,
            watchdog_s=env.integer("WATCHDOG_USEC", 0, minimum=0) / 1e6 or None,
        )

    def public(self) -> dict[str, object]:
        """The settings as plain JSON-able values, without secrets (for /config and logs)."""
        return {
            "mode": str(self.mode),
            "run_periodic": self.run_periodic,
            "run_start_events": self.run_start_events,
            "run_update_events": self.run_update_events,
            "run_rename_events": self.run_rename_events,
            "check_interval_s": self.check_interval_s,
            "immediate_periodical_start": self.immediate_periodical_start,
            "catch_up_sweep": self.catch_up_sweep,
            "docker_socket": self.docker_socket,
            "docker_req_timeout_s": self.docker_req_timeout_s,
            "docker_tls_verify": self.docker_tls_verify,
            "cache_params": self.cache_params,
            "disable_params": self.disable_params,
            "disable_metrics": self.disable_metrics,
            "stop_on_first_violation": self.stop_on_first_violation,
            "rule_errors_are_violations": self.rule_errors_are_violations,
            "stop_timeout_s": self.stop_timeout_s,
            "prevent_on_create": self.prevent_on_create,
            "nice": self.nice,
            "log_level": self.log_level,
            "log_format": self.log_format,
            "white_list": [str(entry) for entry in self.white_list],
            "image_white_list": [str(entry) for entry in self.image_white_list],
            "listen_address": f"{self.listen_address[0]}:{self.listen_address[1]}",
            "api_token_set": self.api_token is not None,
            "allowed_hosts": list(self.allowed_hosts),
            "metrics_public": self.metrics_public,
            "state_db": str(self.state_db),
            "detections_max_age_days": self.detections_max_age_days,
        }


class _Reader:
    """Reads one variable at a time; an empty value means the default (as `VAR=` in an env file)."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def _raw(self, name: str) -> str | None:
        value = self._environ.get(name)
        if value is None or value.strip() == "":
            return None
        return value.strip()

    def boolean(self, name: str, default: bool) -> bool:
        raw = self._raw(name)
        if raw is None:
            return default
        if raw.lower() in _TRUE:
            return True
        if raw.lower() in _FALSE:
            return False
        raise SettingsError(name, raw, "use true or false (also yes/no, on/off, 1/0, in any case)")

    def integer(self, name: str, default: int, minimum: int) -> int:
        what = "a positive whole number" if minimum == 1 else f"a whole number of at least {minimum}"
        value = self._whole(name, minimum, None, f"use {what}")
        return default if value is None else value

    def niceness(self, name: str) -> int | None:
        return self._whole(
            name, *NICE_RANGE, "use a whole number from -20 (served first) to 19, as for nice(1)"
        )

    def _whole(self, name: str, minimum: int, maximum: int | None, accepted: str) -> int | None:
        raw = self._raw(name)
        if raw is None:
            return None
        try:
            value = int(raw)
        except ValueError:
            raise SettingsError(name, raw, accepted) from None
        if value < minimum or (maximum is not None and value > maximum):
            raise SettingsError(name, raw, accepted)
        return value

    def choice(
        self, name: str, default: str, accepted: tuple[str, ...], aliases: Mapping[str, str] | None = None
    ) -> str:
        raw = self._raw(name)
        if raw is None:
            return default
        value = raw.upper()
        value = (aliases or {}).get(value, value)
        if value not in accepted:
            raise SettingsError(name, raw, "use one of " + ", ".join(accepted))
        return value

    def mode(self, name: str, default: Mode) -> Mode:
        return Mode(self.choice(name, default.value, tuple(m.value for m in Mode)))

    def path(self, name: str) -> Path | None:
        raw = self._raw(name)
        return None if raw is None else Path(raw)

    def socket(self, name: str, default: str) -> str:
        raw = self._raw(name)
        if raw is None:
            return default
        return normalize_docker_url(name, raw)

    def address(self, name: str, default: tuple[str, int]) -> tuple[str, int]:
        raw = self._raw(name)
        if raw is None:
            return default
        host, _, port = raw.rpartition(":")
        if not port.isdigit() or not 0 <= int(port) < 65536:  # 0: any free port
            raise SettingsError(name, raw, "use HOST:PORT, for example 0.0.0.0:8888 or 127.0.0.1:8888")
        return (host.strip("[]") or "0.0.0.0", int(port))

    def names(self, name: str) -> tuple[str, ...]:
        """Comma-separated host names (lowercased, without a trailing dot), or `*` alone."""
        raw = self._raw(name)
        if raw is None:
            return ()
        names = tuple(
            dict.fromkeys(item.strip().lower().rstrip(".") for item in raw.split(",") if item.strip())
        )
        if "*" in names and names != ("*",):
            raise SettingsError(name, raw, "use `*` alone (no check), or comma-separated host names")
        for item in names:
            if item != "*" and not re.fullmatch(r"[a-z0-9_]([a-z0-9_.-]*[a-z0-9_])?", item):
                raise SettingsError(
                    name, raw, f"{item!r} is not a host name; use names such as enforcer.example.com"
                )
        return names

    def whitelist(self, name: str, default: tuple[WhitelistEntry, ...]) -> tuple[WhitelistEntry, ...]:
        raw = self._environ.get(name)
        if raw is None:
            return default
        return parse_whitelist(name, raw)


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
