"""Gathering facts about containers from the engine: params (inspect), metrics (stats), position, the image
(image inspect, one fetch per image id) and, for an exec check, the exec session (exec inspect).

All of it before judging: sweeps and audits gather params and position of every running container, and its
metrics when a rule reads them (a round of samples gathers the metrics of all); an event check gathers params,
and metrics or position only when a rule reads them; the image only when a rule reads it, on any check (the
judge stops and says which, see `judge.Judgement`).

Facts for many containers are fetched concurrently, one request in flight per container up to
ENGINE_CONCURRENCY: the engine answers every pending one-shot stats request on the same 1-second tick, so 500
containers cost about one tick, not 500, nor 500 divided by a fixed pool's size. The pool (the sweep's checks
run on it too) starts its threads as the work needs them (a round of cached inspects needs few) and keeps
them, each with its kept-alive connection, for the next round.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from enforcer.dockerhost.client import DockerHost, Json
from enforcer.dockerhost.errors import ContainerGone, EngineError
from enforcer.facts import usage
from enforcer.facts.container import Container, ExecFacts, FactUnavailable, Missing
from enforcer.facts.images import ImageCache
from enforcer.facts.usage import CpuHistory

log = logging.getLogger(__name__)
MAX_FANOUT = 512  # ENGINE_CONCURRENCY's default


@dataclass(frozen=True)
class GatherOptions:
    cache_params: bool = True
    disable_params: bool = False
    disable_metrics: bool = False
    owner_labels: tuple[str, ...] = ()  # OWNER_LABELS
    concurrency: int = MAX_FANOUT  # ENGINE_CONCURRENCY: requests in flight at once, at most


def params_from_summary(summary: Mapping[str, Any]) -> Json:
    """What DISABLE_PARAMS leaves: id, name, image and labels from the container list, shaped like inspect."""
    names = summary.get("Names") or [""]
    labels = dict(summary.get("Labels") or {})
    image = summary.get("Image") or ""
    return {
        "Id": summary.get("Id", ""),
        "Name": names[0],
        "Image": summary.get("ImageID", image),
        "Created": summary.get("Created"),
        "Config": {"Image": image, "Labels": labels},
    }


SHARED_UP_TO = 64  # string values this short are shared between containers (names of states, drivers, ...)


def compact(value: Any) -> Any:
    """The same JSON with its keys and short strings shared between all containers (`sys.intern`): the
    params cache holds one inspect per running container, and their keys and most values repeat. A cached
    inspect takes less than half the memory (19 MB for 1,000 inspects of busybox containers -> 9 MB)."""
    if isinstance(value, dict):
        return {sys.intern(k): compact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [compact(v) for v in value]
    if isinstance(value, str) and len(value) <= SHARED_UP_TO:
        return sys.intern(value)
    return value


def start_key(params: Mapping[str, Any]) -> tuple[str, str]:
    state = params.get("State") or {}
    started = str(state.get("StartedAt") or params.get("Created") or "")
    return (_sortable_time(started), str(params.get("Id", "")))


_RFC3339 = re.compile(r"(?P<head>.*T\d\d:\d\d:\d\d)(?:\.(?P<fraction>\d+))?(?P<zone>Z)")


def _sortable_time(stamp: str) -> str:
    """Docker's times drop trailing zeros of the fraction (`.1Z`, `.12Z`): pad it so strings sort as times."""
    match = _RFC3339.fullmatch(stamp)
    if match is None:
        return stamp
    return f"{match['head']}.{(match['fraction'] or '').ljust(9, '0')}Z"


def is_healthcheck(exec_inspect: Mapping[str, Any], params: Mapping[str, Any]) -> bool:
    """Whether an exec is the container's own healthcheck, run as the engine runs it (moby daemon/health.go):
    the command of Config.Healthcheck.Test (`CMD`: its items; `CMD-SHELL`: Config.Shell, by default
    `/bin/sh -c`, then the string), as Config.User, not privileged, without a tty. A `docker exec` that copies
    all of that gains nothing the healthcheck does not already have."""
    config = params.get("Config") or {}
    test = list((config.get("Healthcheck") or {}).get("Test") or [])
    if len(test) < 2 or test[0] not in ("CMD", "CMD-SHELL"):
        return False
    command = test[1:]
    if test[0] == "CMD-SHELL":
        command = list(config.get("Shell") or ["/bin/sh", "-c"]) + command
    process = exec_inspect.get("ProcessConfig") or {}
    ran = [process.get("entrypoint"), *(process.get("arguments") or [])]
    return (
        ran == command
        and not process.get("privileged")
        and not process.get("tty")
        and (process.get("user") or "") == (config.get("User") or "")
    )


class Progress:
    """Items done of a total, told to a callback as (done, total) after each; thread-safe."""

    def __init__(self, report: Callable[[int, int], None] | None, total: int) -> None:
        self._report = report
        self._total = total
        self._done = 0
        self._lock = threading.Lock()

    def one_done(self) -> None:
        if self._report is None:
            return
        with self._lock:
            self._done += 1
            self._report(self._done, self._total)


METRICS_BEFORE_START = Missing("metrics", why="metrics are not known before the container starts")
POSITION_BEFORE_START = Missing("position", why="position is not known before the container starts")


class FactGatherer:
    """Builds the `Container` objects rules see; owns the params cache."""

    def __init__(self, host: DockerHost, options: GatherOptions) -> None:
        self.host = host
        self.options = options
        self._lock = threading.Lock()
        self._params: dict[str, Json] = {}
        self._image_tags: dict[str, str] = {}
        self.cpu = CpuHistory()  # the previous stats sample of each running container, for cpu_percent
        self.images = ImageCache(lambda image_id: self.host.inspect_image(image_id))
        self._pool = ThreadPoolExecutor(
            max_workers=options.concurrency, thread_name_prefix="facts", initializer=_on_the_pool
        )

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- params cache ------------------------------------------------------------------------------------
    def params(
        self,
        cid: str,
        summary: Mapping[str, Any] | None = None,
        fresh: bool = False,
        keep: bool = True,
        inspect: Callable[[], Json] | None = None,
    ) -> Json:
        """Inspect data, from the cache unless `fresh`; `keep=False` leaves the cache as it was; `inspect`
        asks the engine in place of `host.inspect`."""
        if self.options.disable_params:
            return params_from_summary(summary or {"Id": cid})
        if self.options.cache_params and not fresh:
            with self._lock:
                cached = self._params.get(cid)
            if cached is not None:
                return cached
        params = inspect() if inspect is not None else self.host.inspect(cid)
        if self.options.cache_params and keep:
            params = compact(params)
            with self._lock:
                self._params[cid] = params
        return params

    def params_without_engine(self, cid: str) -> Json | None:
        """With DISABLE_PARAMS, what is known of a container by its id alone; otherwise None (ask the engine)."""
        return params_from_summary({"Id": cid}) if self.options.disable_params else None

    def forget(self, cid: str) -> None:
        """Drop a container's cached params (on update, rename, die and destroy)."""
        with self._lock:
            self._params.pop(cid, None)

    def keep_only(self, running: Iterable[str]) -> None:
        """Purge cache entries of containers no longer running (after each sweep)."""
        keep = set(running)
        with self._lock:
            for cid in [cid for cid in self._params if cid not in keep]:
                del self._params[cid]
        self.cpu.keep_only(keep)

    def cached_count(self) -> int:
        with self._lock:
            return len(self._params)

    # -- single facts ------------------------------------------------------------------------------------
    def metrics(self, cid: str) -> Json:
        if self.options.disable_metrics:
            return {}
        return self.host.stats(cid)

    def image_name(self, params: Mapping[str, Any]) -> str:
        """Config.Image as typed; a `sha256:` id becomes the image's first repo tag."""
        image = str((params.get("Config") or {}).get("Image") or params.get("Image") or "")
        if not image.startswith("sha256:"):
            return image
        with self._lock:
            known = self._image_tags.get(image)
        if known is None:
            try:
                tags = self.host.image_tags(image)
            except EngineError:
                tags = []
            known = tags[0] if tags else image
            with self._lock:
                self._image_tags[image] = known
        return known

    def _keep_image_names(self, in_use: set[str]) -> None:
        """Forget the names of image ids no running container was created from."""
        with self._lock:
            for image in [image for image in self._image_tags if image not in in_use]:
                del self._image_tags[image]

    def running_order(self) -> list[str]:
        """Ids of running containers ordered by State.StartedAt."""
        summaries = self.host.list_running()
        keys = self.each(lambda s: (self.start_key_of(s), s["Id"]), summaries)
        return [cid for _, cid in sorted(k for k in keys if k is not None)]

    def start_key_of(self, summary: Json) -> tuple[str, str]:
        return start_key(self.params(summary["Id"], summary))

    def position_of(self, cid: str) -> int:
        order = self.running_order()
        return order.index(cid) if cid in order else len(order)

    def image_of(self, container: Container) -> Json:
        """The container's image inspect (Image: the image id), fetched once per image (`ImageCache`)."""
        return self.images.get(str(container.params.get("Image") or ""))

    # -- containers ----------------------------------------------------------------------------------------
    def one(
        self,
        cid: str,
        source: str,
        summary: Mapping[str, Any] | None = None,
        fresh: bool = False,
        exec: ExecFacts | None = None,
    ) -> Container:
        """One container's facts for an event check: params now; metrics, position and the image when a rule
        reads them (`complete`)."""
        params = self.params(cid, summary, fresh=fresh)
        return Container(
            cid,
            params,
            metrics=Missing("metrics"),
            position=Missing("position"),
            check_source=source,
            owner_labels=self.options.owner_labels,
            image=self.image_name(params),
            exec=exec,
            image_info=Missing("image_info"),
        )

    def exec_session(self, cid: str, exec_id: str, source: str = "exec") -> Container | None:
        """The facts of a check of one `docker exec` session: the container's with `exec` set; None when the
        exec is the container's own healthcheck (never judged)."""
        sent: list[Json] = []

        def both() -> Json:  # a container not cached: both requests go out before either answer is read
            raw, params = self.host.inspect_exec_with_container(exec_id, cid)
            sent.append(raw)
            return params

        params = self.params(cid, inspect=both)
        raw = sent[0] if sent else self.host.inspect_exec(exec_id)
        if is_healthcheck(raw, params):
            return None
        user = str((params.get("Config") or {}).get("User") or "")
        return self.one(cid, source, exec=ExecFacts.from_inspect(raw, user))

    def complete(self, container: Container, fact: str) -> Container:
        """`container` with `fact` ("metrics", "position" or "image_info") gathered.

        A fact the engine fails to give is kept as that failure: the rules that read it get it as their error,
        as they did when they fetched the fact themselves. Metrics come with `cpu_percent` since the
        container's previous sample, as in `all_running`."""
        fetch: dict[str, Callable[[], Any]] = {
            "metrics": lambda: self.metrics(container.cid),
            "position": lambda: self.position_of(container.cid),
            "image_info": lambda: self.image_of(container),
        }
        try:
            value: Any = fetch[fact]()
        except Exception as exc:  # noqa: BLE001 - a value for the rules that read it, never a crash here
            value = Missing(fact, failure=exc)
        if fact == "metrics":
            cpu = self.cpu_since_last(container.params, value, usage.now())
            return container.with_facts(metrics=value, cpu_percent=cpu)
        return container.with_facts(**{fact: value})

    def before_start(self, cid: str, params: Json, source: str = "event") -> Container:
        """Facts of a created container that has not started: params only."""
        return Container(
            cid,
            params,
            metrics=METRICS_BEFORE_START,
            position=POSITION_BEFORE_START,
            check_source=source,
            owner_labels=self.options.owner_labels,
            image=self.image_name(params),
            image_info=Missing("image_info"),
        )

    def all_running(
        self,
        source: str,
        on_progress: Callable[[int, int], None] | None = None,
        metrics: bool = True,
    ) -> list[Container]:
        """Facts of every running container, fetched concurrently; containers that vanish are skipped.

        With `metrics` off, metrics are left to be gathered for the rules that read them (`complete`): a
        sweep whose rules read none asks the engine for no stats."""
        summaries = self.host.list_running()
        progress = Progress(on_progress, len(summaries))

        def fetch(summary: Json) -> tuple[Json, Json | Missing] | None:
            cid = summary["Id"]
            params = self.params(cid, summary)
            stats: Json | Missing = self.metrics(cid) if metrics else Missing("metrics")
            progress.one_done()
            return params, stats

        fetched = [f for f in self.each(fetch, summaries) if f is not None]
        fetched.sort(key=lambda pm: start_key(pm[0]))
        self.images.keep_only(str(params.get("Image") or "") for params, _ in fetched)
        self._keep_image_names({str((p.get("Config") or {}).get("Image") or "") for p, _ in fetched})
        now = usage.now()
        return [
            Container(
                params["Id"],
                params,
                metrics=stats,
                position=index,
                check_source=source,
                owner_labels=self.options.owner_labels,
                image=self.image_name(params),
                cpu_percent=self.cpu_since_last(params, stats, now),
                checked_at=now,
                image_info=Missing("image_info"),
            )
            for index, (params, stats) in enumerate(fetched)
        ]

    def all_running_params(self, source: str) -> list[Container]:
        """Every running container on its params and position alone (what a rules version would do to them,
        without waiting for stats): rules that read other facts are deferred."""
        summaries = self.host.list_running()
        fetched = [p for p in self.each(lambda s: self.params(s["Id"], s), summaries) if p is not None]
        fetched.sort(key=start_key)
        return [
            Container(
                params["Id"],
                params,
                metrics=Missing("metrics"),
                position=index,
                check_source=source,
                owner_labels=self.options.owner_labels,
                image=self.image_name(params),
                image_info=Missing("image_info"),
            )
            for index, params in enumerate(fetched)
        ]

    def cpu_since_last(
        self, params: Mapping[str, Any], metrics: Mapping[str, Any] | Missing, now: datetime
    ) -> float | None:
        """CPU % since this container's previous sample (or its start); None without stats."""
        if isinstance(metrics, Missing) or not metrics.get("cpu_stats"):
            return None
        cid = str(params.get("Id", ""))
        if self.cpu.restarted(cid, metrics):
            self.forget(cid)  # its cached inspect predates the restart: the next sample inspects afresh
        started = str((params.get("State") or {}).get("StartedAt") or "")
        previous = self.cpu.swap(cid, started, metrics)
        try:
            uptime = usage.uptime_s(params, now)
        except FactUnavailable:
            uptime = None
        return usage.cpu_percent(metrics, previous, uptime)

    def all_created(self, source: str) -> list[Container]:
        """Facts of every container created and never started: params only, as at its create event."""
        summaries = self.host.list_created()
        fetched = self.each(
            lambda summary: self.params(summary["Id"], summary, fresh=True, keep=False), summaries
        )
        return [self.before_start(params["Id"], params, source) for params in fetched if params is not None]

    def each(self, fn: Callable[[Any], Any], items: list[Any]) -> list[Any]:
        """fn of every item, concurrently, in order; a container that vanished gives None, engine trouble
        propagates. Called from a task of the pool (a sweep's check that needs the running order), one item
        after another on the caller's thread: a task waiting for the pool's threads could wait for itself."""

        def guarded(item: Any) -> Any:
            try:
                return fn(item)
            except ContainerGone:
                return None

        if getattr(_pool_thread, "marked", False):
            return [guarded(item) for item in items]
        return list(self._pool.map(guarded, items))


_pool_thread = threading.local()


def _on_the_pool() -> None:
    _pool_thread.marked = True
