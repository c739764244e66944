"""`docker-enforcer run`: wires the parts and owns the stop flag, the threads, the scheduler and the API.

events: create ───────────> prevention ─┐
events: start, update, rename, exec ────┼─> pipeline: facts -> judge -> act -> record ─> triggers (a lane each)
sweeps ─────────────────────────────────┘                                             └─> status API, /metrics
"""

from __future__ import annotations

import logging
import signal
import socket
import sqlite3
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime
from types import FrameType

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_SUBMITTED, JobEvent
from apscheduler.schedulers.background import BackgroundScheduler

from enforcer import __version__
from enforcer.act.actions import Actuator
from enforcer.act.triggers import TriggerRunner
from enforcer.breaker import StopRateBreaker
from enforcer.dockerhost.client import DockerHost, connect
from enforcer.dockerhost.errors import ContainerGone, EngineError, EngineUnavailable
from enforcer.dockerhost.peers import PeerFolder
from enforcer.dockerhost.self_id import own_container_id
from enforcer.facts.gather import FactGatherer, GatherOptions
from enforcer.judge.policy import Policy
from enforcer.notices import Notices
from enforcer.notify.formats import REPEAT_S
from enforcer.pipeline import Pipeline
from enforcer.policy_in_force import PolicyInForce
from enforcer.prevention import Prevention
from enforcer.record.episodes import EpisodeStore
from enforcer.record.notified import NoticeLedger
from enforcer.record.store import DetectionStore, StoreError
from enforcer.report.app import create_app
from enforcer.report.hosts import exposure_warning
from enforcer.report.metrics import Metrics
from enforcer.report.server import ApiServer
from enforcer.retry import Backoff
from enforcer.settings import Settings
from enforcer.sources import samples
from enforcer.sources.events import EventWatcher
from enforcer.sources.guard import BlastRadiusGuard
from enforcer.sources.reload import PolicyReloader
from enforcer.sources.samples import Sampler
from enforcer.sources.sweeps import JOB_ID as SWEEP_JOB
from enforcer.sources.sweeps import Sweeper, request_sweep, schedule
from enforcer.status import Health
from enforcer.sustained import Sustained
from enforcer.systemd_notify import notify
from enforcer.tuning import apply_niceness, freeze_startup_objects, open_files_for

log = logging.getLogger("enforcer.daemon")
HEALTH_INTERVAL_S = 5
RELOAD_POLL_S = 3
PURGE_INTERVAL_S = 3600
SHUTDOWN_GRACE_S = 4.0


class StartupError(Exception):
    """The daemon cannot start (the state database, the API port); the message says what to fix."""


class Daemon:
    def __init__(self, settings: Settings, policy: Policy) -> None:
        self.settings = settings
        self.stop = threading.Event()
        self.reload_requested = threading.Event()
        self.metrics = Metrics(str(settings.mode))
        self.health = Health()
        self.in_force = PolicyInForce(policy)
        self.breaker = StopRateBreaker(settings.max_stops_per_minute)
        try:
            self.store = DetectionStore(settings.state_db, settings.detections_max_age_days)
            self.ledger = NoticeLedger(settings.state_db)
        except (StoreError, sqlite3.Error) as exc:
            raise StartupError(str(exc)) from None
        try:
            self.episodes = EpisodeStore(settings.state_db)
        except StoreError as exc:
            self.store.close()
            raise StartupError(str(exc)) from None
        self.metrics.count_distinct_detected(self.store.distinct_containers)
        self.metrics.count_episodes(self.episodes.counts)
        self.metrics.watch_holds(
            lambda: self.in_force.get().held is not None, lambda: self.breaker.state().tripped
        )
        self.reloader = PolicyReloader(settings, self.in_force, self.metrics)
        app = create_app(
            settings, self.health, self.in_force, self.store, self.metrics, socket.gethostname(), self.episodes,
            self.breaker, next_sweep=self._next_sweep,
        )  # fmt: skip
        self.api = ApiServer(app, *settings.listen_address)
        self.scheduler = BackgroundScheduler(timezone="UTC")
        self.jobs = JobsInFlight(self.scheduler)
        self.triggers = TriggerRunner(
            on_error=lambda name: self.metrics.trigger_errors.labels(trigger=name).inc(),
            on_drop=lambda name: self.metrics.trigger_dropped.labels(trigger=name).inc(),
        )
        self.notices = Notices(
            self.ledger,
            self.triggers,
            self.in_force,
            self._host_name,
            self.stop,
            settings.stop_on_first_violation,
        )
        self.episodes.subscribe(self.notices.episode_changed)
        self.host: DockerHost | None = None
        self.watcher: EventWatcher | None = None
        self.sweeper: Sweeper | None = None
        self.sampler: Sampler | None = None
        self.gatherer: FactGatherer | None = None
        self.peers = PeerFolder(settings.peers_dir)
        self._watcher_thread: threading.Thread | None = None

    def _next_sweep(self) -> datetime | None:
        """When the scheduler runs the next periodic sweep (None before it is scheduled)."""
        job = self.scheduler.get_job(SWEEP_JOB)
        return None if job is None else job.next_run_time

    # -- lifecycle -------------------------------------------------------------------------------------
    def run(self) -> int:
        """Run until SIGTERM/SIGINT (or `self.stop` is set); returns the exit status."""
        self._install_signals()
        # Event handling races the client's next request by milliseconds: hand the GIL over sooner than
        # the default 5 ms, so the event reader and the check that acts are not held up by busy threads.
        sys.setswitchinterval(0.0005)
        s = self.settings
        apply_niceness(s.nice)  # before any thread starts: they inherit it
        open_files_for(
            2 * s.engine_concurrency
        )  # the gatherer's and the event checks' pools: a connection each
        log.info(
            "docker-enforcer %s starting: mode=%s socket=%s events=%s sweeps=%s interval=%ss rules version %s",
            __version__, s.mode, s.docker_socket, s.run_start_events, s.run_periodic, s.check_interval_s,
            self.in_force.get().version[:12],
        )  # fmt: skip
        try:
            self.api.start()
        except OSError as exc:
            self.store.close()
            raise StartupError(
                f"cannot serve the status API on {s.listen_address[0]}:{s.listen_address[1]}: {exc}; "
                "set LISTEN_ADDRESS to a free HOST:PORT"
            ) from None
        log.info("status API on http://%s:%d/", s.listen_address[0], self.api.port)
        if exposed := exposure_warning(s.listen_address, s.api_token):
            log.warning("%s", exposed)
        self.host = self._wait_for_engine()
        if self.host is None:
            return self._shutdown()
        self._start_enforcing(self.host)
        freeze_startup_objects()
        notify(s.notify_socket, "READY=1")
        self._main_loop()
        return self._shutdown()

    def _install_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return

        def on_stop(signum: int, frame: FrameType | None) -> None:
            log.info("received %s, stopping", signal.Signals(signum).name)
            self.stop.set()

        def on_hup(signum: int, frame: FrameType | None) -> None:
            self.reload_requested.set()

        signal.signal(signal.SIGTERM, on_stop)
        signal.signal(signal.SIGINT, on_stop)
        signal.signal(signal.SIGHUP, on_hup)

    def _wait_for_engine(self) -> DockerHost | None:
        """Connect, retrying with capped backoff while the engine is down; None when asked to stop."""
        delays = Backoff(0.5, 10.0).delays()
        while not self.stop.is_set():
            try:
                host = connect(
                    self.settings.docker_socket,
                    self.settings.docker_req_timeout_s,
                    self.settings.docker_tls_verify,
                    self.settings.docker_cert_path,
                )
                self.health.engine_answered(_engine_name(host))
                log.info("connected to the docker engine at %s", self.settings.docker_socket)
                return host
            except EngineUnavailable as exc:
                if self.health.engine_unreachable(str(exc)):  # once per state change, not once per attempt
                    log.error("docker engine unreachable (%s); retrying until it answers", exc)
                self.stop.wait(next(delays))
        return None

    def _start_enforcing(self, host: DockerHost) -> None:
        s = self.settings
        self.gatherer = FactGatherer(
            host,
            GatherOptions(
                s.cache_params, s.disable_params, s.disable_metrics, s.owner_label_chain, s.engine_concurrency
            ),
        )
        own = own_container_id()
        if own:
            log.info("running in container %s: it is never judged", own[:12])
            self.peers.publish(own, gone=lambda cid: _gone(host, cid))
        self.peers.refresh()
        pipeline = Pipeline(
            s, self.in_force, self.gatherer, Actuator(host, self.stop, s.stop_timeout_s), self.store, self.triggers,
            self.metrics, own, self.peers.ids, self.notices, self.breaker,
        )  # fmt: skip
        # Before any check: the rules loaded at start are vetted against the running containers.
        gatherer = self.gatherer
        self.reloader.guard(
            BlastRadiusGuard(s, lambda: gatherer.all_running_params("periodic"), pipeline.options)
        )
        self.sweeper = Sweeper(
            s, self.gatherer, pipeline, self.health, self.metrics, after_sweep=[self._purge]
        )
        if s.run_periodic:
            schedule(self.scheduler, self.sweeper, s)
        self.sampler = Sampler(self.gatherer, Sustained(pipeline, self.episodes), self.episodes)
        samples.schedule(self.scheduler, self.sampler, s.sample_interval_s)
        self.scheduler.add_job(self._health, "interval", seconds=HEALTH_INTERVAL_S, id="health")
        self.scheduler.add_job(self.reloader.poll, "interval", seconds=RELOAD_POLL_S, id="reload")
        if s.peers_dir is not None:
            self.scheduler.add_job(self.peers.refresh, "interval", seconds=RELOAD_POLL_S, id="peers")
        self.scheduler.add_job(self._purge, "interval", seconds=PURGE_INTERVAL_S, id="purge")
        self.scheduler.add_job(self.notices.repeat, "interval", seconds=REPEAT_S, id="notices")
        self.scheduler.start()
        if s.run_start_events or s.run_exec_events:
            sweeper = self.sweeper
            self.watcher = EventWatcher(
                s, host, pipeline, Prevention(pipeline, host), self.health, self.metrics,
                catch_up=lambda: request_sweep(self.scheduler, sweeper), stop=self.stop,
            )  # fmt: skip
            self._watcher_thread = _guarded_thread("events", self.watcher.run, self.stop, self.health)
        if not s.run_start_events and not s.run_periodic and not s.run_exec_events:
            log.warning("RUN_START_EVENTS and RUN_PERIODIC are both off: nothing will be checked")

    def _main_loop(self) -> None:
        watchdog = self.settings.watchdog_s
        tick = min(1.0, watchdog / 2) if watchdog else 1.0
        while not self.stop.wait(tick):
            if self.reload_requested.is_set():
                self.reload_requested.clear()
                self.reloader.reload("SIGHUP")
            if watchdog and self._alive():
                notify(self.settings.notify_socket, "WATCHDOG=1")

    def _alive(self) -> bool:
        """The watchdog is fed only while the long-lived workers run."""
        watching = self.settings.run_start_events or self.settings.run_exec_events
        if watching and not (self._watcher_thread and self._watcher_thread.is_alive()):
            return False
        return bool(self.scheduler.running)

    def _host_name(self) -> str:
        """The engine's host name once known (inside a container, the local host name is the container id)."""
        return self.health.snapshot().engine_host or socket.gethostname()

    def _health(self) -> None:
        assert self.host is not None
        try:
            self.host.ping()
        except EngineError as exc:
            if self.health.engine_unreachable(str(exc)):
                log.error("docker engine unreachable: %s", exc)
            return
        self.health.engine_answered()

    def _purge(self) -> None:
        """Apply retention to the detections record (after each sweep and hourly)."""
        try:
            self.store.purge()
        except StoreError as exc:
            log.error("could not apply retention to the detections record: %s", exc)

    def _shutdown(self) -> int:
        notify(self.settings.notify_socket, "STOPPING=1")
        deadline = time.monotonic() + SHUTDOWN_GRACE_S
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        if self.watcher is not None:
            self.watcher.close(wait=False)
            self.watcher.drain(SHUTDOWN_GRACE_S)
        if self.sweeper is not None:
            self.sweeper.close()
        if self.sampler is not None:
            self.sampler.close()
        self.triggers.close(wait=False)
        # A sweep or a round of samples under way records what it found before the stores close.
        if not self.jobs.wait(max(0.0, deadline - time.monotonic())):
            log.warning("stopping with a sweep or a round of samples still running")
        self.api.stop()
        if self.gatherer is not None:
            self.gatherer.close()
        self.store.close()
        self.episodes.close()
        self.ledger.close()
        log.info("stopped")
        return 0


class JobsInFlight:
    """How many scheduler jobs (sweeps, rounds of samples, purges) run now, so that a stop can wait for them
    before it closes the stores they write to."""

    def __init__(self, scheduler: BackgroundScheduler) -> None:
        self._running = 0
        self._changed = threading.Condition()
        scheduler.add_listener(self._submitted, EVENT_JOB_SUBMITTED)
        scheduler.add_listener(self._finished, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)

    def _submitted(self, _: JobEvent) -> None:
        with self._changed:
            self._running += 1

    def _finished(self, _: JobEvent) -> None:
        with self._changed:
            self._running -= 1  # may run before its submission is counted: below 0 for that moment
            self._changed.notify_all()

    def wait(self, timeout_s: float) -> bool:
        """Wait until none runs; False when some still ran after `timeout_s`."""
        with self._changed:
            return self._changed.wait_for(lambda: self._running <= 0, timeout_s)


def _engine_name(host: DockerHost) -> str | None:
    try:
        return str(host.info().get("Name") or "") or None
    except EngineError:
        return None


def _gone(host: DockerHost, cid: str) -> bool:
    """Whether the engine says the container no longer exists (not when it cannot tell)."""
    try:
        host.inspect(cid)
    except ContainerGone:
        return True
    except EngineError:
        return False
    return False


def _guarded_thread(
    name: str, target: Callable[[], None], stop: threading.Event, health: Health
) -> threading.Thread:
    """A daemon thread whose end before the stop flag is logged and reported to health (/healthz names it);
    the watchdog sees it too."""

    def guarded() -> None:
        try:
            target()
        except BaseException:  # noqa: BLE001
            if not stop.is_set():
                log.exception("worker %s died", name)
                health.worker_died(name)
            return
        if not stop.is_set():
            log.error("worker %s died: it returned while the daemon runs", name)
            health.worker_died(name)

    thread = threading.Thread(target=guarded, name=name, daemon=True)
    thread.start()
    return thread
