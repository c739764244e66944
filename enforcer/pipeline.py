"""`check`: gather -> judge -> act -> record, written once for every source (events, sweeps; the create-time
path in `prevention` uses the same steps).

Checks of one container are serialized by a per-container lock (no double kill); checks of different
containers run concurrently on the callers' threads. Nothing here waits for triggers or the HTTP API.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from typing import Protocol

from enforcer.act import remedies
from enforcer.act.actions import Actuator, Done
from enforcer.act.remedies import strongest
from enforcer.act.triggers import TriggerRunner
from enforcer.breaker import StopRateBreaker
from enforcer.dockerhost.errors import ContainerGone
from enforcer.error_log import ErrorLog
from enforcer.facts.container import Container
from enforcer.facts.gather import FactGatherer
from enforcer.facts.redaction import scrub_labels
from enforcer.judge.judge import Judgement, JudgeOptions
from enforcer.judge.policy import Hold, Policy
from enforcer.judge.rules import Rule
from enforcer.judge.verdict import Verdict
from enforcer.notices import Notices
from enforcer.pending import PendingVerdicts
from enforcer.policy_in_force import PolicyInForce
from enforcer.record.model import Action, Finding, Outcome, Phase, Source, safe_config
from enforcer.report.metrics import Metrics
from enforcer.settings import Mode, Settings

log = logging.getLogger("enforcer.pipeline")


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
    """gather -> judge -> act -> record for one container, whoever asked (start, update and rename events,
    sweeps; the create-time path in `prevention` uses the same steps)."""

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
        notices: Notices | None = None,
        breaker: StopRateBreaker | None = None,
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
        self.locks = KeyedLocks()  # one check of a container at a time
        self.pending = PendingVerdicts()  # create-time verdicts, kept for the start check
        self.errors = ErrorLog(metrics)
        self.notices = notices  # the notifiers' episodes (None: no notifier is ever told)
        self.breaker = breaker or StopRateBreaker(settings.max_stops_per_minute)

    # -- entry points ----------------------------------------------------------------------------------
    def check(
        self, cid: str, source: Source, event_time: float | None = None, fresh: bool = False
    ) -> Verdict | None:
        """Check one container by id (start, update and rename events). None when it vanished."""
        with self.locks.hold(cid):
            policy = self.policy()
            kept = self.pending.take(cid, policy.version)
            if kept.acted and source == Source.EVENT and not fresh:
                return kept.verdict  # the create check found it started and stopped it already
            verdict = kept.verdict
            try:
                if verdict is None:
                    container = self.gatherer.one(cid, str(source), fresh=fresh)
                    verdict = self.judge(container, policy)
                # A start check: update and rename checks ask for fresh facts.
                at_start = source == Source.EVENT and not fresh
                left_for_start = kept.left_for_start if at_start else None
                return self.conclude(verdict, policy, source, event_time, left_for_start)
            except ContainerGone:
                log.debug("container %s vanished before it could be checked", cid[:12])
                return None

    def check_exec(self, cid: str, exec_id: str, event_time: float | None = None) -> Verdict | None:
        """Check one `docker exec` session at its exec_start: every rule, with `c.exec` set; a violation acts on
        the container. None when the container vanished or the exec is the container's own healthcheck."""
        with self.locks.hold(cid):
            policy = self.policy()
            try:
                container = self.gatherer.exec_session(cid, exec_id, Source.EXEC)
                if container is None:
                    return None
                return self.conclude(self.judge(container, policy), policy, Source.EXEC, event_time)
            except ContainerGone:
                log.debug("container %s or its exec vanished before it could be checked", cid[:12])
                return None

    def check_container(self, container: Container, source: Source) -> Verdict:
        """Check a container whose facts were gathered already (sweeps)."""
        with self.locks.hold(container.cid):
            policy = self.policy()
            return self.conclude(self.judge(container, policy), policy, source, None)

    def forget(self, cid: str, gone: bool = False) -> None:
        """A container was updated, renamed, died or was destroyed (`gone`): drop what is known of it."""
        self.gatherer.forget(cid)
        self.pending.forget(cid)
        if gone and self.notices is not None:
            self.notices.gone(cid)

    def swept(self, running: Iterable[str], began: datetime) -> None:
        """A sweep that began at `began` found these containers running (and no others)."""
        if self.notices is not None:
            self.notices.swept(running, began)

    # -- steps -----------------------------------------------------------------------------------------
    def policy(self) -> Policy:
        """The policy in force."""
        return self.in_force.get()

    def judge(self, container: Container, policy: Policy) -> Verdict:
        """Judge `container`; a fact a rule needs is gathered before the judgement goes on (judging does no
        I/O: metrics and position are fetched only for a rule that reads them)."""
        judgement = Judgement(policy.instant_rules, policy.whitelist, self.options)
        verdict = judgement.until_done(container, lambda c, fact: self.gatherer.complete(c, fact))
        self.errors.note(verdict, policy.version)
        return verdict

    def prevents(self, rule: Rule) -> bool:
        """Whether a violation of `rule` found at create removes the container (in KILL mode)."""
        return self.settings.prevent_on_create or rule.prevent

    def conclude(
        self,
        verdict: Verdict,
        policy: Policy,
        source: Source,
        event_time: float | None,
        deferred_at_create: tuple[str, ...] | None = None,
    ) -> Verdict:
        """Stop (KILL) or record (WARN) a violator; `deferred_at_create` is given for start checks only: the
        rules the create check left for the start (a kill for any other preventing rule is a race lost)."""
        self.metrics.checks.labels(source=source).inc()
        held = None  # why an action is held back: recorded as WARN, its outcome "held"
        if policy.held is not None and not self.enforced(verdict):
            verdict, policy, held = self._held_version(verdict, policy, policy.held)
        if not verdict.violated:
            if self.notices is not None:
                self.notices.passed(verdict, policy)
            return verdict
        container = verdict.subject
        enforced = self.enforced(verdict) if held is None else []
        if enforced and not self.breaker.admit():
            enforced, held = [], self.breaker.detail
        if enforced:
            done = remedies.apply(self.actuator, strongest(enforced), container.cid, container.params)
            if done.action in (Action.PAUSE, Action.LIMIT):
                self.gatherer.forget(container.cid)  # left running, changed: the next check inspects afresh
            if deferred_at_create is not None and any(
                self.prevents(rule) and rule.name not in deferred_at_create for rule in enforced
            ):
                self.metrics.race_lost.inc()  # a rule judged at create: the start request came first
        else:
            done = remedies.would(strongest(verdict.violated), container.params)
            if held:
                done = replace(done, outcome=Outcome.HELD, outcome_detail=held)
        self.finish(verdict, policy, bool(enforced), done, source, event_time, prevent=False)
        return verdict

    def _held_version(
        self, verdict: Verdict, policy: Policy, hold: Hold
    ) -> tuple[Verdict, Policy, str | None]:
        """What a version held by the blast-radius guard finds, to record, never to act on; asked only when
        the rules in force act on nothing (their `verdict` stands when the held version finds nothing)."""
        found = self.judge(verdict.subject, hold.policy)
        if not found.violated:
            return verdict, policy, None
        return found, hold.policy, hold.detail if self.enforced(found) else None

    def enforced(self, verdict: Verdict) -> list[Rule]:
        return [r for r in verdict.violated if r.effective_mode(self.settings.mode) is Mode.KILL]

    def finish(
        self,
        verdict: Verdict,
        policy: Policy,
        enforced: bool,
        done: Done,
        source: Source,
        event_time: float | None,
        prevent: bool,
    ) -> None:
        """Record what was done and hand the verdict to the triggers (`v.phase` "enforced" or "recorded"
        unless the verdict has a phase already)."""
        if event_time is not None and enforced:
            self.metrics.event_to_action.observe(max(0.0, time.time() - event_time))
        mode = Mode.KILL if enforced else Mode.WARN
        self._record(verdict, mode, done, source, prevent)
        if verdict.phase is None:
            verdict = replace(verdict, phase=Phase.ENFORCED if enforced else Phase.RECORDED)
        self.triggers.submit(policy.triggers, verdict)
        if self.notices is not None:
            self.notices.violated(verdict, policy, mode, done)

    def _record(self, verdict: Verdict, mode: Mode, done: Done, source: Source, prevent: bool) -> None:
        container = verdict.subject
        finding = Finding(
            container_id=container.cid,
            name=container.name,
            image=container.image,
            rules=tuple(verdict.reasons),
            mode=mode,
            action=done.action,
            outcome=done.outcome,
            source=source,
            outcome_detail=done.outcome_detail,
            owner=container.owner,
            labels=scrub_labels(container.labels),
            rule_errors=tuple(str(e) for e in (*verdict.errors, *verdict.whitelist_errors)),
            restart_policy=done.restart_policy,
            config=safe_config(container.params) if prevent else None,
            exec_command=container.exec.shown if container.exec else None,
        )
        executable = f" exec={finding.exec_command}" if finding.exec_command is not None else ""
        log.info(
            "violation: container=%s id=%s image=%s rules=%s mode=%s action=%s outcome=%s%s",
            finding.name, container.short_id, finding.image, ", ".join(finding.rules), finding.mode,
            finding.action, finding.outcome_text, executable,
            extra={"container": finding.name, "container_id": container.short_id, "image": finding.image,
                   "rules": list(finding.rules), "mode": str(finding.mode), "action": finding.action,
                   "outcome": finding.outcome_text, "source": str(source),
                   **({"exec": finding.exec_command} if finding.exec_command is not None else {})},
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
