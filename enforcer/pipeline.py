"""`check`: gather -> judge -> act -> record, written once for every source (events, sweeps, create).

Checks of one container are serialized by a per-container lock (no double kill); checks of different
containers run concurrently on the callers' threads. Nothing here waits for triggers or the HTTP API.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from enforcer.act.actions import Actuator, Done, restart_policy_of
from enforcer.act.triggers import TriggerRunner
from enforcer.dockerhost.answer import Answer
from enforcer.dockerhost.client import Json
from enforcer.dockerhost.errors import ContainerGone
from enforcer.facts.container import Container
from enforcer.facts.gather import FactGatherer
from enforcer.facts.redaction import scrub_labels
from enforcer.judge.judge import JudgeOptions, judge
from enforcer.judge.policy import Policy
from enforcer.judge.rules import Rule
from enforcer.judge.verdict import Verdict
from enforcer.policy_in_force import PolicyInForce
from enforcer.record.model import Action, Finding, Outcome, Source, safe_config
from enforcer.report.metrics import Metrics
from enforcer.settings import Mode, Settings

log = logging.getLogger("enforcer.pipeline")
PENDING_LIMIT = 10_000


class Recorder(Protocol):
    def record(self, finding: Finding) -> None: ...


class KeyedLocks:
    """One lock per key, created on demand and dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, tuple[threading.Lock, int]] = {}

    def acquire(self, key: str, blocking: bool = True) -> bool:
        """Take the key's lock (False when `blocking` is off and it is held); `release` it on any thread."""
        with self._guard:
            lock, users = self._locks.get(key, (threading.Lock(), 0))
            self._locks[key] = (lock, users + 1)
        if lock.acquire(blocking):
            return True
        self._drop(key)
        return False

    def release(self, key: str) -> None:
        with self._guard:
            lock, _ = self._locks[key]
        lock.release()
        self._drop(key)

    def _drop(self, key: str) -> None:
        with self._guard:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    @contextmanager
    def hold(self, key: str) -> Iterator[None]:
        self.acquire(key)
        try:
            yield
        finally:
            self.release(key)


class Pipeline:
    def __init__(
        self,
        settings: Settings,
        in_force: PolicyInForce,
        gatherer: FactGatherer,
        actuator: Actuator,
        recorder: Recorder,
        triggers: TriggerRunner,
        metrics: Metrics,
        own_container_id: str | None = None,
        peer_ids: Callable[[], Collection[str]] = frozenset,
    ) -> None:
        self.settings = settings
        self.in_force = in_force
        self.gatherer = gatherer
        self.actuator = actuator
        self.recorder = recorder
        self.triggers = triggers
        self.metrics = metrics
        self.options = JudgeOptions(
            settings.stop_on_first_violation, settings.rule_errors_are_violations, own_container_id, peer_ids
        )
        self._locks = KeyedLocks()
        # cid -> (rules version, create-time verdict, whether the create check already stopped it)
        self._pending: OrderedDict[str, tuple[str, Verdict, bool]] = OrderedDict()
        self._pending_lock = threading.Lock()
        self._errors_seen: OrderedDict[tuple[str, ...], None] = OrderedDict()

    # -- entry points ----------------------------------------------------------------------------------
    def check(
        self, cid: str, source: str, event_time: float | None = None, fresh: bool = False
    ) -> Verdict | None:
        """Check one container by id (start, update and rename events). None when it vanished."""
        with self._locks.hold(cid):
            policy = self.in_force.get()
            verdict, deferred, acted = self._take_pending(cid, policy)
            if acted and source == "event" and not fresh:
                return verdict  # the create check found it started and stopped it already
            try:
                if verdict is None:
                    container = self.gatherer.one(cid, source, fresh=fresh)
                    verdict = self._judge(container, policy)
                at_start = source == "event" and not fresh  # update and rename checks ask for fresh facts
                return self._conclude(verdict, policy, source, event_time, deferred if at_start else None)
            except ContainerGone:
                log.debug("container %s vanished before it could be checked", cid[:12])
                return None

    def check_container(self, container: Container, source: str) -> Verdict:
        """Check a container whose facts were gathered already (sweeps)."""
        with self._locks.hold(container.cid):
            policy = self.in_force.get()
            return self._conclude(self._judge(container, policy), policy, source, None)

    def inspect_created(self, cid: str) -> Answer[Json]:
        """Ask for a created container's params now, on the event reader; the create check takes the answer.

        Prevention races the client's start request by a millisecond or two: the engine answers while the
        event reader decides where the check runs.
        """
        return self.gatherer.fresh_params_soon(cid)

    def check_created(
        self, cid: str, event_time: float | None = None, inspected: Answer[Json] | None = None
    ) -> Verdict | None:
        """Judge a created container on its params before it starts; prevent it, or keep the verdict for start.

        `inspected` is what `inspect_created` returned for it, if it was called."""
        with self._locks.hold(cid):
            verdict, rest = self._created(cid, event_time, inspected)
            return rest() if rest else verdict

    def race_created(
        self, cid: str, event_time: float | None, inspected: Answer[Json]
    ) -> tuple[bool, Callable[[], Verdict] | None]:
        """The create check's racing half, on the calling thread (the event reader, once the inspect has been
        answered): judge and, for a violator to prevent, send its removal.

        Returns whether it ran (not when another check holds the container: `check_created` it on a worker
        then) and what is left for a worker, if anything: the removal's answer, the record and the triggers;
        the container stays locked until that has run."""
        if not self._locks.acquire(cid, blocking=False):
            return False, None
        try:
            _, rest = self._created(cid, event_time, inspected)
        except BaseException:
            self._locks.release(cid)
            raise
        if rest is None:
            self._locks.release(cid)
            return True, None

        def conclude() -> Verdict:
            try:
                return rest()
            finally:
                self._locks.release(cid)

        return True, conclude

    def _created(
        self, cid: str, event_time: float | None, inspected: Answer[Json] | None
    ) -> tuple[Verdict | None, Callable[[], Verdict] | None]:
        """Judge, then keep the verdict for the start check or send the removal; returns the verdict (None
        when the container is gone) and what is left to do for a violator found at create."""
        policy = self.in_force.get()
        try:
            # Not kept in the params cache: the start path and sweeps need the running container's state
            # (State.StartedAt orders containers for `position`).
            params = inspected() if inspected else self.gatherer.params(cid, fresh=True, keep=False)
        except ContainerGone:
            return None, None
        verdict = self._judge(self.gatherer.before_start(cid, params, "event"), policy)
        preventing = any(self._prevents(rule.prevent) for rule in verdict.violated)
        # A container that started before this check (its start event was handled first) is the start path's:
        # removing it now would record as prevented a container that ran.
        if not (preventing and _not_started(params)):
            self._keep_pending(cid, policy, verdict)
            return verdict, None
        self.metrics.checks.labels(source="create").inc()
        enforced = bool(self._enforced(verdict))
        removal = self.actuator.prevent_soon(cid) if enforced else None

        def conclude() -> Verdict:
            done = removal() if removal else Done(Action.WOULD_PREVENT, Outcome.RECORDED)
            if done is None:
                # Its start got in first and the engine refused the removal: stop it now, as the start path
                # would, but without waiting for the start event; that check then has nothing left to do.
                self._conclude(verdict, policy, "event", event_time, verdict.deferred)
                self._keep_pending(cid, policy, verdict, acted=True)
                return verdict
            if done.outcome == Outcome.PREVENTED:
                self.metrics.preventions.inc()
            self._finish(verdict, policy, enforced, done, "create", event_time, prevent=True)
            return verdict

        return verdict, conclude

    def forget(self, cid: str) -> None:
        """A container was updated, renamed, died or was destroyed: drop what is known of it."""
        self.gatherer.forget(cid)
        with self._pending_lock:
            self._pending.pop(cid, None)

    # -- steps -----------------------------------------------------------------------------------------
    def _judge(self, container: Container, policy: Policy) -> Verdict:
        verdict = judge(container, policy.rules, policy.whitelist, self.options)
        for error in verdict.errors:
            self.metrics.rule_errors.labels(rule=error.rule).inc()
            self._log_error("rule", error.rule, error.error, container, policy)
        for failure in verdict.whitelist_errors:
            self.metrics.whitelist_rule_errors.labels(whitelist_rule=failure.whitelist_rule).inc()
            self._log_error("whitelist rule", failure.whitelist_rule, failure.error, container, policy)
        return verdict

    def _log_error(self, kind: str, name: str, error: str, container: Container, policy: Policy) -> None:
        # Once at WARNING per rule (or whitelist lambda), container and rules version; every sweep repeats it
        # at DEBUG only.
        first = self._first_error((kind, name, container.cid, policy.version))
        log.log(logging.WARNING if first else logging.DEBUG, "%s error: %s on container %s (%s): %s", kind, name,
                container.name, container.short_id, error)  # fmt: skip

    def _first_error(self, key: tuple[str, ...]) -> bool:
        with self._pending_lock:
            if key in self._errors_seen:
                return False
            self._errors_seen[key] = None
            while len(self._errors_seen) > PENDING_LIMIT:
                self._errors_seen.popitem(last=False)
            return True

    def _prevents(self, rule_prevent: bool) -> bool:
        return self.settings.prevent_on_create or rule_prevent

    def _conclude(
        self,
        verdict: Verdict,
        policy: Policy,
        source: str,
        event_time: float | None,
        deferred_at_create: tuple[str, ...] | None = None,
    ) -> Verdict:
        """Stop (KILL) or record (WARN) a violator; `deferred_at_create` is given for start checks only."""
        self.metrics.checks.labels(source=source).inc()
        if not verdict.violated:
            return verdict
        container = verdict.subject
        enforced = self._enforced(verdict)
        if enforced:
            done = self.actuator.stop(container.cid, container.params)
            if deferred_at_create is not None and any(
                self._prevents(rule.prevent) and rule.name not in deferred_at_create for rule in enforced
            ):
                self.metrics.race_lost.inc()  # a rule judged at create: the start request came first
        else:
            done = Done(Action.WOULD_STOP, Outcome.RECORDED, restart_policy_of(container.params))
        self._finish(verdict, policy, bool(enforced), done, source, event_time, prevent=False)
        return verdict

    def _enforced(self, verdict: Verdict) -> list[Rule]:
        return [r for r in verdict.violated if r.effective_mode(self.settings.mode) is Mode.KILL]

    def _finish(
        self,
        verdict: Verdict,
        policy: Policy,
        enforced: bool,
        done: Done,
        source: str,
        event_time: float | None,
        prevent: bool,
    ) -> None:
        if event_time is not None and enforced:
            self.metrics.event_to_action.observe(max(0.0, time.time() - event_time))
        self._record(verdict, Mode.KILL if enforced else Mode.WARN, done, source, prevent)
        self.triggers.submit(policy.triggers, verdict)

    def _record(self, verdict: Verdict, mode: Mode, done: Done, source: str, prevent: bool) -> None:
        container = verdict.subject
        finding = Finding(
            container_id=container.cid,
            name=container.name,
            image=container.image,
            rules=tuple(verdict.reasons),
            mode=mode,
            action=done.action,
            outcome=done.outcome,
            source=Source(source),
            outcome_detail=done.outcome_detail,
            owner=container.owner,
            labels=scrub_labels(container.labels),
            rule_errors=tuple(str(e) for e in (*verdict.errors, *verdict.whitelist_errors)),
            restart_policy=done.restart_policy,
            config=safe_config(container.params) if prevent else None,
        )
        log.info(
            "violation: container=%s id=%s image=%s rules=%s mode=%s action=%s outcome=%s",
            finding.name, container.short_id, finding.image, ", ".join(finding.rules), finding.mode,
            finding.action, finding.outcome_text,
            extra={"container": finding.name, "container_id": container.short_id, "image": finding.image,
                   "rules": list(finding.rules), "mode": str(finding.mode), "action": finding.action,
                   "outcome": finding.outcome_text, "source": source},
        )  # fmt: skip
        for rule in finding.rules:
            self.metrics.detections.labels(
                rule=rule, mode=finding.mode, source=source, action=done.action
            ).inc()
        self.metrics.actions.labels(action=done.action, outcome=done.outcome).inc()
        try:
            self.recorder.record(finding)
        except Exception:  # noqa: BLE001 - the record must not undo enforcement; the log line above has it
            log.exception("could not record the detection of %s", finding.name)

    # -- verdicts judged at create, kept for the start event -------------------------------------------
    def _keep_pending(self, cid: str, policy: Policy, verdict: Verdict, acted: bool = False) -> None:
        with self._pending_lock:
            self._pending[cid] = (policy.version, verdict, acted)
            while len(self._pending) > PENDING_LIMIT:
                self._pending.popitem(last=False)

    def _take_pending(self, cid: str, policy: Policy) -> tuple[Verdict | None, tuple[str, ...], bool]:
        """The create-time verdict if it still holds (same policy, no rule left for start), the rules the
        create check left for start (none known when it did not run first), and whether it acted already."""
        with self._pending_lock:
            kept = self._pending.pop(cid, None)
        if kept is None:
            return None, (), False
        version, verdict, acted = kept
        if acted:
            return verdict, (), True
        if version != policy.version or verdict.deferred:
            return None, verdict.deferred, False
        return verdict, (), False


def _not_started(params: Any) -> bool:
    """Whether inspect saw the container before any start (without params, as with DISABLE_PARAMS: assumed)."""
    state = params.get("State") or {}
    return state.get("Status", "created") == "created"
