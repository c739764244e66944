"""Samples of the rules held over time: every SAMPLE_INTERVAL_S, the running containers judged on the rules
with "for" or "grace" only (enforcer/sustained.py), independently of the sweeps' CHECK_INTERVAL_S.

An APScheduler job with max_instances=1 and coalesce=True: samples never overlap or pile up. A round that
cannot list or gather the containers (engine trouble) is skipped whole: no clock advances or resets. A round
that can ends the episodes of containers no longer running (and of rules no longer in the policy). Without
timed rules, a round costs nothing: no engine call.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler

from enforcer.dockerhost.errors import EngineError
from enforcer.facts.gather import FactGatherer
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

    def sample(self) -> bool:
        """One round; False when it was skipped (engine trouble) or there is nothing to sample."""
        policy = self.sustained.pipeline.policy()
        timed = policy.timed_rules
        if not timed:
            self.sustained.gone(self.episodes.keep_only((), ()), policy)
            return False
        started = time.monotonic()
        for cid in {episode.container_id for episode in self.episodes.all()}:
            # Inspected afresh, not from the params cache: a restart (new State.StartedAt) resets `for`,
            # and a limit or a pause shows, even without events.
            self.gatherer.forget(cid)
        try:
            containers = self.gatherer.all_running(Source.SAMPLE)
        except EngineError as exc:
            log.warning("sample skipped, the engine could not be read: %s", exc)
            return False
        now = datetime.now(UTC)
        ended = self.episodes.keep_only((c.cid for c in containers), (r.name for r in timed))
        self.sustained.gone(ended, policy)
        list(self._checks.map(lambda c: self.sustained.sample(c, policy, now), containers))
        self.gatherer.cpu.keep_only(c.cid for c in containers)
        self.last_round_s = time.monotonic() - started
        log.debug(
            "sampled %d containers on %d timed rules in %.2f s",
            len(containers),
            len(timed),
            self.last_round_s,
        )
        return True

    def close(self) -> None:
        self._checks.shutdown(wait=False, cancel_futures=True)


def schedule(scheduler: BackgroundScheduler, sampler: Sampler, interval_s: int) -> None:
    """Add the sampling job; its first round one interval after the start (the clocks kept in the state
    database go on from where they were)."""
    scheduler.add_job(
        sampler.sample,
        "interval",
        seconds=interval_s,
        id=JOB_ID,
        next_run_time=datetime.now(UTC) + timedelta(seconds=interval_s),
        max_instances=1,
        coalesce=True,
        misfire_grace_time=interval_s,
    )
