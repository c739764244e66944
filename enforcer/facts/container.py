"""The object a rule receives: one container's facts, read-only.

Compatible with the original's `Container`: `cid`, `params`, `metrics`, `position`, `check_source`,
`owner`, and `str(c)` is the container's name as Docker gives it (`/name`). Added: `cpu_percent`,
`memory_bytes`, `memory_percent` and `uptime_s` (see facts/usage.py), for rules held over time. `metrics`
and `position` may be `Missing`: reading one raises. No I/O here: a fact not gathered yet (`FactNotGathered`)
is noted, the judgement stops, the checker gathers it (`FactGatherer.complete`) and the judgement goes on, so
a check whose rules never read metrics does not wait a second for `docker stats`. `image_info` (the image's
inspect) works the same way: fetched only for a rule that reads it, once per image (facts/images.py).

`exec` is set on the check of one `docker exec` session only (`ExecFacts`), None on every other check.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from enforcer.facts import usage
from enforcer.facts.usage import FactUnavailable
from enforcer.facts.views import EMPTY, CaseInsensitiveMap, wrap

UNKNOWN_OWNER = "[unknown]"
# Of an owner label's value, what rules, records and notifiers see: whoever creates a container chooses it.
OWNER_SHOWN = 256
__all__ = [
    "Container",
    "ExecFacts",
    "FactNotGathered",
    "FactUnavailable",
    "Missing",
    "NO_IMAGE_INFO",
    "container_name",
    "configured_image",
    "owner_of",
]


class FactNotGathered(FactUnavailable):
    """A fact the checker can gather but has not yet (metrics and position of a running container)."""

    def __init__(self, fact: str) -> None:
        super().__init__(f"{fact} not gathered yet")
        self.fact = fact


@dataclass(frozen=True)
class Missing:
    """Stands for a fact not in hand; reading the fact raises a fresh copy of what `error` describes."""

    fact: str
    why: str = ""  # FactUnavailable's message; empty: not gathered yet
    failure: Exception | None = None  # what gathering it raised: rules that read it get it as their error

    def error(self) -> Exception:
        if self.failure is not None:
            return self.failure.with_traceback(None)  # raised again per rule: no traceback piles up
        return FactUnavailable(self.why) if self.why else FactNotGathered(self.fact)

    @property
    def gatherable(self) -> bool:
        return not self.why and self.failure is None


# Of an exec's executable, what the log, the store and the API keep: whoever runs `docker exec` chooses it,
# up to 128 kB.
EXECUTABLE_SHOWN = 256


@dataclass(frozen=True)
class ExecFacts:
    """One `docker exec` session as rules see it in `c.exec`.

    `user` is the user the exec runs as: its own `-u`, or else the container's Config.User, as the engine
    does ("" when both are empty: the image's default, root). `command` is the executable and its arguments;
    arguments can hold secrets, so only `executable` is ever logged or recorded (repr and str leave the rest
    out).
    """

    id: str
    user: str
    privileged: bool
    tty: bool
    command: tuple[str, ...] = field(repr=False)

    @property
    def executable(self) -> str:
        return self.command[0] if self.command else ""

    @property
    def shown(self) -> str:
        """The executable as logged and recorded: its first EXECUTABLE_SHOWN characters."""
        text = self.executable
        return text if len(text) <= EXECUTABLE_SHOWN else text[: EXECUTABLE_SHOWN - 1] + "…"

    def __str__(self) -> str:
        user = self.user if len(self.user) <= EXECUTABLE_SHOWN else self.user[: EXECUTABLE_SHOWN - 1] + "…"
        return f"exec {self.shown} as {user or 'the default user'}"

    @classmethod
    def from_inspect(cls, raw: Mapping[str, Any], container_user: str = "") -> ExecFacts:
        """From `GET /exec/{id}/json`; `container_user` is the container's Config.User."""
        process = raw.get("ProcessConfig") or {}
        entrypoint = process.get("entrypoint")
        arguments = [str(a) for a in process.get("arguments") or []]
        return cls(
            id=str(raw.get("ID") or ""),
            user=str(process.get("user") or container_user or ""),
            privileged=bool(process.get("privileged")),
            tty=bool(process.get("tty")),
            command=tuple(([str(entrypoint)] if entrypoint else []) + arguments),
        )


NO_IMAGE_INFO = Missing("image_info", why="the image's inspect data is not known here")


class Container:
    """One container's facts as rules see them."""

    __slots__ = (
        *("cid", "check_source", "owner", "image", "exec", "_params", "_metrics", "_position"),
        *("_cpu_percent", "_checked_at", "_wanted", "_image_info"),
    )

    def __init__(
        self,
        cid: str,
        params: Mapping[str, Any],
        *,
        metrics: Mapping[str, Any] | Missing = EMPTY,
        position: int | Missing = 0,
        check_source: str = "periodic",
        owner: str | None = None,
        owner_labels: Sequence[str] = (),
        image: str | None = None,
        cpu_percent: float | None = None,
        checked_at: datetime | None = None,
        exec: ExecFacts | None = None,
        image_info: Mapping[str, Any] | Missing = NO_IMAGE_INFO,
    ) -> None:
        """`cpu_percent`: measured since the previous sample (CpuHistory); None: from the stats alone.
        `checked_at`: the time `uptime_s` and `image_age_days` are counted to (the current time when None).
        `exec`: the exec session of an exec check (None on every other check)."""
        self.cid = cid
        self.check_source = check_source
        self.exec = exec
        self._image_info = image_info if isinstance(image_info, Missing) else wrap(image_info)
        self._params: CaseInsensitiveMap = wrap(params)
        self.owner = owner if owner is not None else owner_of(self.labels, owner_labels)
        self._metrics = metrics if isinstance(metrics, Missing) else wrap(metrics)
        self._position = position if isinstance(position, Missing) else int(position)
        self.image = image if image is not None else configured_image(self._params)
        self._cpu_percent = cpu_percent
        self._checked_at = checked_at
        self._wanted: str | None = None

    @property
    def params(self) -> CaseInsensitiveMap:
        """`docker inspect` data; keys match without regard to case."""
        return self._params

    @property
    def metrics(self) -> CaseInsensitiveMap:
        """`docker stats` data (empty when metrics are disabled)."""
        if isinstance(self._metrics, Missing):
            raise self._missing(self._metrics)
        return self._metrics

    @property
    def position(self) -> int:
        """0-based place among running containers ordered by start time."""
        if isinstance(self._position, Missing):
            raise self._missing(self._position)
        return self._position

    def _missing(self, missing: Missing) -> Exception:
        if missing.gatherable and self._wanted is None:
            self._wanted = missing.fact  # noted even if the rule swallows the exception
        return missing.error()

    @property
    def all_gathered(self) -> bool:
        """Whether no fact is waiting to be gathered (those not known yet, before a start, are not)."""
        return not any(
            isinstance(fact, Missing) and fact.gatherable
            for fact in (self._metrics, self._position, self._image_info)
        )

    def take_wanted(self) -> str | None:
        """The first fact not gathered that was read since the last call (by the judge, after each rule)."""
        wanted, self._wanted = self._wanted, None
        return wanted

    def with_facts(
        self,
        metrics: Mapping[str, Any] | Missing | None = None,
        position: int | Missing | None = None,
        image_info: Mapping[str, Any] | Missing | None = None,
        cpu_percent: float | None = None,
    ) -> Container:
        """A copy with the facts given (the others as they are)."""
        return Container(
            self.cid,
            self._params,
            metrics=self._metrics if metrics is None else metrics,
            position=self._position if position is None else position,
            check_source=self.check_source,
            owner=self.owner,
            image=self.image,
            cpu_percent=self._cpu_percent if cpu_percent is None else cpu_percent,
            checked_at=self._checked_at,
            exec=self.exec,
            image_info=self._image_info if image_info is None else image_info,
        )

    @property
    def image_info(self) -> CaseInsensitiveMap:
        """`docker image inspect` data of the container's image; keys match without regard to case."""
        if isinstance(self._image_info, Missing):
            raise self._missing(self._image_info)
        return self._image_info

    @property
    def image_age_days(self) -> float:
        """Days since the image was built (its `Created`); FactUnavailable when the image gives no time."""
        created = usage.parse_time(str(self.image_info.get("Created") or ""))
        if created is None:
            raise FactUnavailable("the image's inspect data gives no creation time")
        return ((self._checked_at or usage.now()) - created).total_seconds() / 86400

    @property
    def uptime_s(self) -> float:
        """Seconds since the container last started."""
        return usage.uptime_s(self._params, self._checked_at or usage.now())

    @property
    def cpu_percent(self) -> float:
        """CPU use in percent of one CPU as `docker stats` shows it (two busy cores read 200): since the
        previous sample of this container, or since it started."""
        if self._cpu_percent is not None:
            return self._cpu_percent
        stats = self._usage_stats()
        return usage.cpu_percent(stats, None, self.uptime_s)

    @property
    def memory_bytes(self) -> int:
        """Memory in use without the page cache, as `docker stats` shows it."""
        return usage.memory_bytes(self._usage_stats())

    @property
    def memory_percent(self) -> float:
        """`memory_bytes` in percent of the container's memory limit, or of the host's memory."""
        return usage.memory_percent(self._usage_stats())

    def _usage_stats(self) -> CaseInsensitiveMap:
        stats = self.metrics
        if not stats.get("cpu_stats") and not stats.get("memory_stats"):
            raise FactUnavailable("no stats for this container (not running, or DISABLE_METRICS)")
        return stats

    @property
    def name(self) -> str:
        """The name without Docker's leading `/`."""
        return container_name(self._params) or self.cid[:12]

    @property
    def labels(self) -> Mapping[str, str]:
        config = self._params.get("Config") or EMPTY
        return config.get("Labels") or EMPTY

    @property
    def short_id(self) -> str:
        return self.cid[:12]

    def __str__(self) -> str:
        raw = self._params.get("Name")
        return raw if raw else self.cid

    def __repr__(self) -> str:
        return f"<Container {self.name} {self.short_id}>"


def owner_of(labels: Mapping[str, Any], owner_labels: Sequence[str]) -> str:
    """The value of the first of `owner_labels` set (not empty) on the container (OWNER_LABELS), its first
    OWNER_SHOWN characters; `[unknown]` when none is, as in the original."""
    for name in owner_labels:
        value = labels.get(name)
        if isinstance(value, str) and value.strip():
            owner = value.strip()
            return owner if len(owner) <= OWNER_SHOWN else owner[: OWNER_SHOWN - 1] + "…"
    return UNKNOWN_OWNER


def container_name(params: Mapping[str, Any]) -> str:
    """The container's name without the leading `/`."""
    return str(params.get("Name") or "").lstrip("/")


def configured_image(params: Mapping[str, Any]) -> str:
    """The image as the user typed it (`Config.Image`), falling back to the image id."""
    config = params.get("Config") or {}
    return str(config.get("Image") or params.get("Image") or "")
