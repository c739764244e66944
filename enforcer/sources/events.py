"""Watching the engine's event stream, in three layers (after kopf's watching):

- `run` (forever): reconnects with capped, jittered backoff whenever the stream ends or fails, resuming
  from the last event seen, and asks for a catch-up sweep after every reconnect, since the engine drops
  events for slow subscribers and keeps only a small buffer;
- `_watch_once`: one stream, keeping the resume point;
- `_dispatch` (per event): unknown or malformed events are skipped with a debug line.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from typing import Any

from enforcer.dockerhost.client import DockerHost
from enforcer.dockerhost.errors import EngineError
from enforcer.pipeline import Pipeline
from enforcer.prevention import Prevention
from enforcer.record.model import Source
from enforcer.report.metrics import Metrics
from enforcer.retry import Backoff
from enforcer.settings import Settings
from enforcer.status import Health

log = logging.getLogger("enforcer.events")
FORGET_ON = ("update", "rename", "die", "destroy")
# Reconnect attempts to a missing socket cost next to nothing: a low cap lets the daemon find an engine that
# came back within 2 s (the catch-up sweep after the reconnect then finds what started meanwhile).
RECONNECT_CAP_S = 2.0
SEEN_KEPT = 4096  # events remembered to recognise the engine's replay after a reconnect (its buffer: 256)


# Exec checks waiting at most: a flood of `docker exec` must not grow the daemon's memory without bound.
# Past it each exec check is dropped, logged and counted (docker_enforcer_exec_checks_dropped_total).
EXEC_BACKLOG = 1000


class EventWatcher:
    def __init__(
        self,
        settings: Settings,
        host: DockerHost,
        pipeline: Pipeline,
        prevention: Prevention,
        health: Health,
        metrics: Metrics,
        catch_up: Callable[[], None],
        stop: threading.Event,
        workers: int | None = None,
    ) -> None:
        """`workers`: checks in flight at once, by default ENGINE_CONCURRENCY (threads start as a burst needs
        them: every violator's kill goes out at once, as from a thread of its own)."""
        self.settings = settings
        self.host = host
        self.pipeline = pipeline
        self.prevention = prevention
        self.health = health
        self.metrics = metrics
        self.catch_up = catch_up
        self.stop = stop
        self._pool = ThreadPoolExecutor(
            max_workers=workers or settings.engine_concurrency, thread_name_prefix="check"
        )
        self._in_flight = 0
        self._exec_backlog = 0  # exec checks submitted and not finished
        self._idle = threading.Condition()
        self._stream: Any = None
        self._since_nano: int | None = None
        self._seen: OrderedDict[tuple[str, str, int], None] = OrderedDict()  # the latest SEEN_KEPT events
        self.rechecked = {"start"} if settings.run_start_events else set()
        if settings.run_update_events:
            self.rechecked.add("update")
        if settings.run_rename_events:
            self.rechecked.add("rename")

    def filters(self) -> dict[str, Any]:
        events = [*FORGET_ON]
        if self.settings.run_start_events:
            events[:0] = ["create", "start"]
        if self.settings.run_exec_events:
            events.append("exec_start")  # the engine matches it as a prefix: "exec_start: <command>"
        return {"type": ["container"], "event": events}

    # -- forever ---------------------------------------------------------------------------------------
    def run(self) -> None:
        delays: Iterator[float] = Backoff(0.2, RECONNECT_CAP_S).delays()
        first = True
        while not self.stop.is_set():
            try:
                for connected in self._watch_once():
                    if connected:
                        delays = Backoff(0.2, RECONNECT_CAP_S).delays()
                        self._connected(first)
                        first = False
            except EngineError as exc:
                if self.health.engine_unreachable(str(exc)):
                    log.error("event stream lost: %s; reconnecting", exc)
            except Exception:  # noqa: BLE001 - the watcher must outlive anything a single event does
                log.exception("event watcher failed; reconnecting")
            finally:
                self._disconnected()
            if not self.stop.is_set():
                self.stop.wait(next(delays))

    def _connected(self, first: bool) -> None:
        self.health.events_connected(True)
        self.metrics.events_connected.set(1)
        self.health.engine_answered()
        if not first:
            self.metrics.reconnects.inc()
            log.info("event stream reconnected; running a catch-up sweep")
        if not first or self.settings.catch_up_sweep:
            self.catch_up()

    def _disconnected(self) -> None:
        self.health.events_connected(False)
        self.metrics.events_connected.set(0)

    # -- once ------------------------------------------------------------------------------------------
    def _watch_once(self) -> Iterator[bool]:
        since = self._since_nano / 1e9 if self._since_nano else None
        stream = self.host.events(since=since, filters=self.filters())
        self._stream = stream
        try:
            yield True  # the request is open: events from here on reach us, so a catch-up sweep is safe now
            for event in stream:
                if self.stop.is_set():
                    return
                self._dispatch(event)
            yield False
        finally:
            self._stream = None
            with suppress(Exception):
                stream.close()

    def close(self, wait: bool = True) -> None:
        """Stop watching: the blocked read returns once the stream is closed."""
        stream = self._stream
        if stream is not None:
            with suppress(Exception):
                stream.close()
        self._pool.shutdown(wait=wait, cancel_futures=not wait)

    # -- per event -------------------------------------------------------------------------------------
    def _dispatch(self, event: Any) -> None:
        try:
            cid = str(event["id"]) if "id" in event else str(event["Actor"]["ID"])
            action = str(event.get("Action") or event["status"]).split(":")[0]
            nano = int(event.get("timeNano") or int(event["time"]) * 1_000_000_000)
        except (KeyError, TypeError, ValueError, AttributeError):
            # Its keys only: an exec_start event's Action quotes the exec's command line.
            shape = sorted(map(str, event))[:20] if isinstance(event, dict) else type(event).__name__
            log.debug("skipping a malformed event (%s)", shape)
            return
        if self._already_seen(cid, action, nano):
            return
        if action in FORGET_ON:
            self.pipeline.forget(cid, gone=action in ("die", "destroy"))
        if action == "exec_start" and self.settings.run_exec_events:
            self._exec_started(cid, event, nano / 1e9)
        elif action == "create" and self.settings.run_start_events:
            self._created(cid, nano / 1e9)
        elif action in self.rechecked:
            self._submit(self.pipeline.check, cid, Source.EVENT, nano / 1e9, action != "start")

    def _created(self, cid: str, event_time: float) -> None:
        """A created container: the prevention module sends its inspect and may judge it right here, on the
        reader (see `prevention`); what is left of the check goes to a worker."""
        check = _logged(self.prevention.created, cid, event_time)
        if check is False or not check.left_to_do:
            return  # done, or it failed and said why in the log: the start path still checks the container
        if not self._submit(_run, cid, check.finish) and check.raced:
            _logged(_run, cid, check.finish)  # shutting down: the racing half ran (a removal went out)

    def _exec_started(self, cid: str, event: Any, event_time: float) -> None:
        """An exec session started: judged on a worker. Its command (in the Action text) is never logged."""
        try:
            exec_id = str(event["Actor"]["Attributes"]["execID"])
        except (KeyError, TypeError):
            log.debug("skipping an exec_start event of %s without an execID", cid[:12])
            return
        with self._idle:
            if self._exec_backlog >= EXEC_BACKLOG:
                self.metrics.exec_checks_dropped.inc()
                log.warning("exec check of %s dropped: %d exec checks are waiting already (a flood of "
                            "docker exec)", cid[:12], self._exec_backlog)  # fmt: skip
                return
            self._exec_backlog += 1
        if not self._submit(self._exec_check, cid, exec_id, event_time):
            self._exec_done()

    def _exec_check(self, cid: str, exec_id: str, event_time: float) -> None:
        try:
            self.pipeline.check_exec(cid, exec_id, event_time)
        finally:
            self._exec_done()

    def _exec_done(self) -> None:
        with self._idle:
            self._exec_backlog -= 1

    def _already_seen(self, cid: str, action: str, nano: int) -> bool:
        """Events from the resume point on arrive again after a reconnect: drop the exact repeats.

        A repeat is the same (id, action, time), not merely an older time: nothing repeats within one stream,
        and an event older than the last one means the engine's clock stepped back (NTP, a VM resumed),
        which must not blind the watcher until the clock catches up.
        """
        key = (cid, action, nano)
        if key in self._seen:
            return True
        self._seen[key] = None
        if len(self._seen) > SEEN_KEPT:
            self._seen.popitem(last=False)
        if self._since_nano is None or nano > self._since_nano:
            self._since_nano = nano
        return False

    def _submit(self, fn: Callable[..., Any], *args: Any) -> bool:
        """Run fn(*args) on a worker; False when the pool is shut down (nothing was run)."""
        with self._idle:
            self._in_flight += 1
        try:
            future = self._pool.submit(self._guarded, fn, *args)
        except RuntimeError:  # shutting down
            self._done()
            return False
        future.add_done_callback(lambda f: self._done() if f.cancelled() else None)
        return True

    def _guarded(self, fn: Callable[..., Any], *args: Any) -> None:
        try:
            _logged(fn, *args)
        finally:
            self._done()

    def _done(self) -> None:
        with self._idle:
            self._in_flight -= 1
            self._idle.notify_all()

    def drain(self, timeout_s: float) -> bool:
        """Wait until the checks already running have finished (their kills included), at most timeout_s."""
        with self._idle:
            return self._idle.wait_for(lambda: self._in_flight <= 0, timeout_s)


def _run(cid: str, step: Callable[[], Any]) -> None:
    """What is left of a create check (`cid` names it in the logs)."""
    step()


def _logged(fn: Callable[..., Any], *args: Any) -> Any:
    """fn(*args), or False when it raised: a check's failure is logged and must not end the thread."""
    try:
        return fn(*args)
    except EngineError as exc:
        log.warning("check of %s failed: %s", str(args[0])[:12], exc)
    except Exception:  # noqa: BLE001 - one check's failure must not end the worker or the reader
        log.exception("check of %s failed", str(args[0])[:12])
    return False
