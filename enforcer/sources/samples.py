"""Samples of the rules held over time: every SAMPLE_INTERVAL_S, the running containers judged on the rules
with "for" or "grace" only (enforcer/sustained.py), independently of the sweeps' CHECK_INTERVAL_S.

An APScheduler date job added again after each round (SampleJob): rounds never overlap, and the next starts one
interval after the one before began, or at once when it took longer. A round that
cannot list or gather the containers (engine trouble) is skipped whole: no clock advances or resets. A round
that can ends the episodes of containers no longer running (and of rules no longer in the policy). Without
timed rules, a round costs nothing: no engine call.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers import SchedulerNotRunningError
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_STOPPED

from enforcer.dockerhost.errors import EngineError
from enforcer.facts.container import Container
from enforcer.facts.gather import FactGatherer
from enforcer.judge.policy import Policy
from enforcer.record.episodes import EpisodeStore
from enforcer.record.model import Source
from enforcer.sustained import Sustained

log = logging.getLogger("enforcer.samples")
JOB_ID = "sample"


class Sampler:
    def __init__(self, gatherer: FactGatherer, sustained: Sustained, episodes: EpisodeStore) -> None:
        self.gatherer = gatherer
        self.sustained = sustained
        self.episodes = episodes
        self._checks = ThreadPoolExecutor(max_workers=8, thread_name_prefix="sample-check")
        self.last_round_s: float | None = None  # how long the last full round took
        self._closed = False

    def sample(self) -> bool:
        """One round; False when it was skipped (engine trouble) or there is nothing to sample."""
        policy = self.sustained.pipeline.policy()
        timed = policy.timed_rules
        if not timed:
            self.sustained.gone(self.episodes.keep_only((), ()), policy)
            return False
        started = time.monotonic()
        try:
            containers = self.gatherer.all_running(Source.SAMPLE)
        except EngineError as exc:
            log.warning("sample skipped, the engine could not be read: %s", exc)
            return False
        now = datetime.now(UTC)
        ended = self.episodes.keep_only((c.cid for c in containers), (r.name for r in timed))
        self.sustained.gone(ended, policy)
        try:
            list(self._checks.map(lambda c: self._sample_one(c, policy, now), containers))
        except RuntimeError:  # the pool was shut down: the daemon is stopping
            return False
        self.gatherer.cpu.keep_only(c.cid for c in containers)
        self.last_round_s = time.monotonic() - started
        log.debug(
            "sampled %d containers on %d timed rules in %.2f s",
            len(containers),
            len(timed),
            self.last_round_s,
        )
        return True

    def _sample_one(self, container: Container, policy: Policy, now: datetime) -> None:
        """One container's sample: its trouble (the state database, an action that raised) is logged and
        neither ends the round for the others nor reaches the scheduler; the next round tries it again."""
        if self._closed:
            return  # the daemon is stopping: its state database may be closed already
        try:
            self.sustained.sample(container, policy, now)
        except Exception:  # noqa: BLE001
            if not self._closed:
                log.exception("sample of %s failed", container.name)

    def close(self) -> None:
        self._closed = True
        self._checks.shutdown(wait=False, cancel_futures=True)


class SampleJob:
    """Runs the rounds on the scheduler, each one `interval_s` after the start of the one before, or at once
    when a round took longer (a date job added after each round: rounds never overlap, and none is dropped
    as an interval job's would be, with a warning, whenever a round outlasts the interval)."""

    def __init__(self, scheduler: BackgroundScheduler, sampler: Sampler, interval_s: int) -> None:
        self.scheduler = scheduler
        self.sampler = sampler
        self.interval = timedelta(seconds=interval_s)

    def start(self) -> None:
        """The first round one interval from now (the clocks kept in the state database go on)."""
        self._next(datetime.now(UTC) + self.interval)

    def _run(self) -> None:
        began = datetime.now(UTC)
        try:
            self.sampler.sample()
        finally:
            # Not while shutting down: add_job would wait for the lock that a waiting shutdown holds.
            if self.scheduler.state != STATE_STOPPED:
                self._next(max(datetime.now(UTC), began + self.interval))

    def _next(self, when: datetime) -> None:
        with suppress(SchedulerNotRunningError):  # stopping
            # A fresh id each time: the scheduler removes a date job once it has run, by its id, and could
            # otherwise remove the next one with it.
            self.scheduler.add_job(self._run, "date", run_date=when, name=JOB_ID, misfire_grace_time=None)


def schedule(scheduler: BackgroundScheduler, sampler: Sampler, interval_s: int) -> SampleJob:
    """Start the rounds of samples on the scheduler (see SampleJob)."""
    job = SampleJob(scheduler, sampler, interval_s)
    job.start()
    return job
