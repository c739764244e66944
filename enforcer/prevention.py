"""The create-time path: a created container judged on its params before it starts; a violator of a rule that
prevents (PREVENT_ON_CREATE, or the rule's `prevent`) removed, any other verdict kept for the start check.

Prevention races the client's `start` request, which follows `create` by a millisecond or two. So the event
reader sends the container's inspect as the event arrives and, when the engine answers within RACE_WAIT_S,
runs the racing half itself (judge, send the removal): a handoff to a worker waits for a CPU just when the
engine and the client hold both on a busy host. Reading the removal's answer, the record and the triggers are
left to a worker. When the answer is late, or the rules were slow on the reader, a worker does it all.

Only this module and `dockerhost` know how an answer sent ahead is polled and read.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from enforcer.act.actions import Done
from enforcer.dockerhost.answer import Answer
from enforcer.dockerhost.client import DockerHost, Json
from enforcer.dockerhost.errors import ContainerGone
from enforcer.judge.policy import Policy
from enforcer.judge.verdict import Verdict
from enforcer.pipeline import Pipeline
from enforcer.record.model import Action, Outcome, Source

log = logging.getLogger("enforcer.prevention")
# How long the reader waits for a created container's inspect (the engine takes well under 1 ms) before it
# leaves the check to a worker, and what makes a check on the reader slow.
RACE_WAIT_S = 0.001
SLOW_ON_READER_S = 0.010
SLOW_IN_A_ROW = 3


class Prevention:
    """Create checks: `created` on the event reader, then `CreateCheck.finish` on a worker if anything is left."""

    def __init__(self, pipeline: Pipeline, host: DockerHost) -> None:
        self.pipeline = pipeline
        self.host = host
        # The event reader's own state (one thread): create checks go to workers under these rules.
        self._slow_rules_version: str | None = None
        self._slow_in_a_row = 0

    def created(self, cid: str, event_time: float | None) -> CreateCheck:
        """On the event reader, as the create event arrives: send the inspect and, if the engine answers within
        RACE_WAIT_S and the rules are fast, run the racing half of the check here. What is left of it, if
        anything (`left_to_do`), is the returned check's `finish`, for a worker."""
        check = CreateCheck(self, cid, event_time, self._inspect_soon(cid))
        version = self.pipeline.policy().version
        if self._slow_rules_version != version and check.inspected.ready(RACE_WAIT_S):
            began = time.perf_counter()
            try:
                check.race()
            finally:
                self._note_reader_time(time.perf_counter() - began, version)
        return check

    def check_created(self, cid: str, event_time: float | None = None) -> Verdict | None:
        """A whole create check on this thread; None when the container is gone."""
        return CreateCheck(self, cid, event_time, self._inspect_soon(cid)).finish()

    def _inspect_soon(self, cid: str) -> Answer[Json]:
        """Fresh params, asked for now (not kept in the params cache: the start path and sweeps need the
        running container's state, and State.StartedAt orders containers for `position`)."""
        known = self.pipeline.gatherer.params_without_engine(cid)
        if known is not None:
            return Answer(lambda: known, arrived=True)
        return self.host.inspect_soon(cid)

    def _note_reader_time(self, seconds: float, version: str) -> None:
        """Slow rules must not hold up the event reader: after SLOW_IN_A_ROW slow create checks in a row, checks
        go to workers until the rules change."""
        self._slow_in_a_row = self._slow_in_a_row + 1 if seconds > SLOW_ON_READER_S else 0
        if self._slow_in_a_row >= SLOW_IN_A_ROW:
            self._slow_rules_version = version
            self._slow_in_a_row = 0
            log.warning(
                "judging a created container took %.0f ms, %d times in a row: create checks run on workers "
                "until the rules change (a rule that waits, on the network or a file, is best left to sweeps)",
                seconds * 1000, SLOW_IN_A_ROW,
            )  # fmt: skip


class CreateCheck:
    """One created container's check, in up to two halves: `race` (judge and send the removal) on the event
    reader, `finish` (the rest, or all of it when `race` did not run) on a worker.

    While a removal's answer is outstanding, the container's lock stays held, so its start check waits."""

    def __init__(
        self, prevention: Prevention, cid: str, event_time: float | None, inspected: Answer[Json]
    ) -> None:
        self.cid = cid
        self.event_time = event_time
        self.inspected = inspected
        self.raced = False  # the racing half ran, on the thread that called `race`
        self.verdict: Verdict | None = None
        self._prevention = prevention
        self._pipeline = prevention.pipeline
        self._holding = False  # the container's lock, held from `race` until `finish`
        self._policy: Policy | None = None
        self._enforced = False
        self._held = False  # the stop-rate breaker held the removal back
        self._removal: Answer[Any] | None = None
        self._finished = False

    @property
    def left_to_do(self) -> bool:
        """Whether `finish` has anything to do: all of the check, or what follows a removal sent or meant."""
        return not self._finished and (not self.raced or self._holding)

    def race(self) -> None:
        """The racing half, on this thread: nothing when another check holds the container (`finish` then
        does the whole check, waiting for it)."""
        if not self._pipeline.locks.acquire(self.cid, blocking=False):
            return
        self.raced = True
        try:
            self._holding = not self._judge()
        finally:
            if not self._holding:
                self._pipeline.locks.release(self.cid)

    def finish(self) -> Verdict | None:
        """What is left of the check, on this thread; the verdict (None when the container was gone)."""
        if not self.left_to_do:
            return self.verdict
        self._finished = True
        if self._holding:
            try:
                return self._conclude()
            finally:
                self._pipeline.locks.release(self.cid)
        with self._pipeline.locks.hold(self.cid):
            return self.verdict if self._judge() else self._conclude()

    def _judge(self) -> bool:
        """Judge, then keep the verdict for the start check, or send the removal of a violator to prevent;
        True when nothing is left to do (the verdict kept, or the container gone)."""
        pipeline = self._pipeline
        policy = pipeline.policy()
        try:
            params = self.inspected()
        except ContainerGone:
            return True
        self.verdict = verdict = pipeline.judge(
            pipeline.gatherer.before_start(self.cid, params, "event"), policy
        )
        preventing = any(pipeline.prevents(rule) for rule in verdict.violated)
        # A container that started before this check (its start event was handled first) is the start path's:
        # removing it now would record as prevented a container that ran.
        if not (preventing and _not_started(params)):
            pipeline.pending.keep(self.cid, policy.version, verdict)
            return True
        pipeline.metrics.checks.labels(source=Source.CREATE).inc()
        self._policy = policy
        self._enforced = bool(pipeline.enforced(verdict))
        if self._enforced and not pipeline.breaker.admit():
            self._enforced, self._held = False, True
        if self._enforced:  # unforced: the engine refuses to remove a container that won the race
            self._removal = self._prevention.host.remove_soon(self.cid, force=False)
        return False

    def _conclude(self) -> Verdict:
        """Read the removal's answer; record the prevention, or stop a container that started first."""
        pipeline, verdict, policy = self._pipeline, self.verdict, self._policy
        assert verdict is not None and policy is not None
        if self._enforced:
            done = pipeline.actuator.prevent(self.cid, self._removal)
        else:
            done = Done(Action.WOULD_PREVENT, Outcome.RECORDED)
            if self._held:
                done = Done(Action.WOULD_PREVENT, Outcome.HELD, outcome_detail=pipeline.breaker.detail)
        if done is None:
            # Its start got in first and the engine refused the removal: stop it now, as the start path would,
            # but without waiting for the start event; that check then has nothing left to do.
            pipeline.conclude(verdict, policy, Source.EVENT, self.event_time, verdict.deferred)
            pipeline.pending.keep(self.cid, policy.version, verdict, acted=True)
            return verdict
        if done.outcome is Outcome.PREVENTED:
            pipeline.metrics.preventions.inc()
        pipeline.finish(verdict, policy, self._enforced, done, Source.CREATE, self.event_time, prevent=True)
        return verdict


def _not_started(params: Any) -> bool:
    """Whether inspect saw the container before any start (without params, as with DISABLE_PARAMS: assumed)."""
    state = params.get("State") or {}
    return state.get("Status", "created") == "created"
