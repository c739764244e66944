"""Periodic sweeps: every CHECK_INTERVAL_S, all running containers gathered concurrently and checked.

An APScheduler job with max_instances=1 and coalesce=True: sweeps never overlap or pile up. A catch-up
sweep (at start, after an event-stream reconnect) is the same job run now.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import CancelledError
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler

from enforcer.dockerhost.errors import EngineError
from enforcer.facts.container import Container
from enforcer.facts.gather import FactGatherer
from enforcer.pipeline import Pipeline
from enforcer.record.model import Source, utcnow
from enforcer.report.metrics import Metrics
from enforcer.settings import Settings
from enforcer.status import Health

log = logging.getLogger("enforcer.sweeps")
JOB_ID = "sweep"


class Sweeper:
    def __init__(
        self,
        settings: Settings,
        gatherer: FactGatherer,
        pipeline: Pipeline,
        health: Health,
        metrics: Metrics,
        after_sweep: Sequence[Callable[[], object]] = (),
    ) -> None:
        self.settings = settings
        self.gatherer = gatherer
        self.pipeline = pipeline
        self.health = health
        self.metrics = metrics
        self._after_sweep = tuple(after_sweep)
        self._running = threading.Lock()
        self._again = threading.Event()
        self._closed = threading.Event()

    def sweep(self, source: Source = Source.PERIODIC) -> bool:
        """One full sweep; False when another is running (the caller's request is folded into it)."""
        if not self._running.acquire(blocking=False):
            self._again.set()
            return False
        try:
            self._sweep_once(source)
            while self._again.is_set():  # a catch-up was asked for during this sweep: do it now
                self._again.clear()
                self._sweep_once(source)
        finally:
            self._running.release()
        return True

    def _sweep_once(self, source: Source) -> None:
        start = utcnow()
        self.health.sweep_started(start)
        try:
            # Metrics are gathered as the judgement of each container needs them: none for rules that read
            # none, else one stats request per container, all in flight together.
            containers = self.gatherer.all_running(str(source), metrics=False)
            # Checks run on the gatherer's pool, one in flight per container up to ENGINE_CONCURRENCY (one
            # set of threads and connections for the whole daemon); kills go out concurrently: one slow stop
            # must not hold back the rest of the sweep.
            self.gatherer.each(lambda c: self._check(c, source), containers)
        except EngineError as exc:
            self.health.sweep_failed()
            self.metrics.sweep_failures.inc()
            if self.health.engine_unreachable(str(exc)):
                log.error("sweep failed, docker engine unreachable: %s", exc)
            return
        except (RuntimeError, CancelledError):
            self.health.sweep_failed()
            if not self._closed.is_set():
                raise
            # The daemon is stopping: its pools refuse new work and drop what was queued.
            log.info("sweep cut short: the daemon is stopping")
            return
        except BaseException:
            self.health.sweep_failed()  # never left shown as running
            raise
        end = utcnow()
        self.health.engine_answered()
        self.health.sweep_finished(start, end)
        self.gatherer.keep_only(c.cid for c in containers)
        self.pipeline.swept([c.cid for c in containers], start)
        self.metrics.running_containers.set(len(containers))
        self.metrics.sweep_duration.observe((end - start).total_seconds())
        self.metrics.last_sweep.set(end.timestamp())
        log.info("sweep of %d containers took %.2f s", len(containers), (end - start).total_seconds())
        for step in self._after_sweep:
            step()

    def _check(self, container: Container, source: Source) -> None:
        if self._closed.is_set():
            raise CancelledError  # the daemon is stopping: the checks not begun are dropped
        self.pipeline.check_container(container, source)

    def close(self) -> None:
        self._closed.set()


def schedule(scheduler: BackgroundScheduler, sweeper: Sweeper, settings: Settings) -> None:
    """Add the periodic sweep job; the first run at once with IMMEDIATE_PERIODICAL_START."""
    first = datetime.now(UTC)
    if not settings.immediate_periodical_start:
        first += timedelta(seconds=settings.check_interval_s)
    scheduler.add_job(
        sweeper.sweep,
        "interval",
        seconds=settings.check_interval_s,
        id=JOB_ID,
        next_run_time=first,
        max_instances=1,
        coalesce=True,
        misfire_grace_time=settings.check_interval_s,
    )


def request_sweep(scheduler: BackgroundScheduler, sweeper: Sweeper) -> None:
    """Run a sweep now, off the caller's thread (catch-up after a reconnect)."""
    scheduler.add_job(sweeper.sweep, id=None, kwargs={"source": Source.PERIODIC}, max_instances=1)
