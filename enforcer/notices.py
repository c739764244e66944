"""Once per episode: which Notice the notifiers (triggers with `"once": True`) get, and when.

An episode of (container, rule) starts at the first check that finds the rule violated: its notifiers are
told once, with the phase ("recorded" in WARN mode, "enforced" when the action ran). Later checks that find
the same violation tell nothing, nor does a restart of the daemon (the ledger is in the state database). It
ends, told once with phase "resolved", at the first check that finds the rule no longer violated (reason
"fixed"), or when the container stops running or is removed (reason "gone": its die or destroy event, or a
sweep that no longer finds it running). A rule held over time ("for", "grace") is told when its grace starts
("warned") and again when its action runs ("enforced", "recorded"); its end follows its own episode
(record.episodes: reason "resolved"). An action that stopped or removed the container ends its episode at
once: one notice, "enforced", ended, reason "stopped". Notifiers with `"repeat": True` (Alertmanager) are
also told of every open episode every `REPEAT_S`.

Each notice goes to each notifier's own trigger lane (`act.triggers`): a slow receiver delays nobody else.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, TypeVar, cast

from enforcer.act.actions import Done
from enforcer.act.triggers import Call, TriggerRunner
from enforcer.judge.policy import Policy
from enforcer.judge.rules import Trigger
from enforcer.judge.verdict import Verdict
from enforcer.notify.notice import EndReason, Notice, NoticeRule, utcnow
from enforcer.policy_in_force import PolicyInForce
from enforcer.record.episodes import Change
from enforcer.record.model import Outcome, Phase, outcome_text
from enforcer.record.notified import NoticeLedger, Told
from enforcer.settings import Mode

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., None])


def _never_raises(method: F) -> F:
    """Telling notifiers must never undo or stop a check: a failure (the state database) is logged."""

    @functools.wraps(method)
    def guarded(*args: Any, **kwargs: Any) -> None:
        try:
            method(*args, **kwargs)
        except Exception:  # noqa: BLE001
            log.exception("could not tell the notifiers (%s)", method.__name__)

    return cast(F, guarded)


STOPPED = (Outcome.STOPPED, Outcome.ALREADY_GONE, Outcome.PREVENTED)  # the container no longer runs


class Notices:
    def __init__(
        self,
        ledger: NoticeLedger,
        runner: TriggerRunner,
        in_force: PolicyInForce,
        host: Callable[[], str],
        stop: threading.Event,
        stop_on_first_violation: bool = True,
    ) -> None:
        self.ledger = ledger
        self.runner = runner
        self.in_force = in_force
        self.host = host
        self.stop = stop
        self.stop_on_first_violation = stop_on_first_violation

    # -- what the pipeline and the sources tell -------------------------------------------------------
    @_never_raises
    def violated(self, verdict: Verdict, policy: Policy, mode: Mode, done: Done) -> None:
        """A check found violations and acted (or recorded): tell the episodes that start, or the stop."""
        if not self._notifiers(policy):
            return
        self.passed(verdict, policy)  # the rules it no longer violates end first
        c = verdict.subject
        phase = _phase(verdict, mode)
        now = utcnow()
        told = [
            Told(c.cid, r.name, str(r.severity), c.name, c.image, c.owner, str(mode), str(done.action),
                 outcome_text(done.outcome, done.outcome_detail), phase, now)
            for r in verdict.violated
        ]  # fmt: skip
        if done.outcome in STOPPED:
            ended = {t.rule: t for t in self.ledger.end(t.key for t in told)}
            told = [ended.get(t.rule, t) for t in told]  # an episode told before keeps its start
            self._tell(policy, told, phase, ended=True, reason=EndReason.STOPPED, now=now, done=done)
        else:
            self._tell(policy, self.ledger.start(told), phase, now=now)

    @_never_raises
    def passed(self, verdict: Verdict, policy: Policy) -> None:
        """A check of a running container: the told episodes of rules it no longer violates end (fixed)."""
        if not self._notifiers(policy):
            return
        told = self.ledger.of_container(verdict.subject.cid)
        if not told:
            return  # the usual case: nothing told of this container, nothing to end
        kept = self._unjudged(verdict, policy) | set(verdict.reasons)
        fixed = [t.key for t in told if t.rule not in kept]
        if fixed:
            self._tell(policy, self.ledger.end(fixed), Phase.RESOLVED, ended=True, reason=EndReason.FIXED)

    @_never_raises
    def gone(self, container_id: str) -> None:
        """The container stopped running or was removed (its die or destroy event)."""
        ended = self.ledger.end_container(container_id)
        if ended:
            self._tell(self.in_force.get(), ended, Phase.RESOLVED, ended=True, reason=EndReason.GONE)

    @_never_raises
    def episode_changed(self, change: Change) -> None:
        """A rule held over time: its episode (record.episodes) ended, so does the told one, if any."""
        if change.after is not None or change.before is None:
            return  # starts and phase changes come through the pipeline, with their verdict
        ended = self.ledger.end([change.before.key])
        if ended:
            self._tell(self.in_force.get(), ended, Phase.RESOLVED, ended=True, reason=EndReason.RESOLVED)

    @_never_raises
    def swept(self, running: Iterable[str], began: datetime) -> None:
        """A sweep that began at `began` found these containers running: the others' episodes end."""
        policy = self.in_force.get()
        for ended in _by_container(self.ledger.keep_only(running, began)):
            self._tell(policy, ended, Phase.RESOLVED, ended=True, reason=EndReason.GONE)

    @_never_raises
    def repeat(self) -> None:
        """Remind the notifiers that need it (Alertmanager) of every open episode."""
        policy = self.in_force.get()
        repeating = [t for t in self._notifiers(policy) if t.repeat]
        if not repeating:
            return
        for told in _by_container(self.ledger.all()):
            self._send(repeating, self._notice(told, told[0].phase, repeat=True))

    # -- telling --------------------------------------------------------------------------------------
    def _notifiers(self, policy: Policy) -> list[Trigger]:
        return [t for t in policy.triggers if t.once]

    def _unjudged(self, verdict: Verdict, policy: Policy) -> set[str]:
        """The rules of the policy this check did not judge: those held over time (sampled apart), those it
        could not judge yet (deferred) and, when it stopped at its first violation, those after it. A told
        rule no longer in the policy counts as judged clean: its episode ends."""
        names = [r.name for r in policy.rules]
        unjudged = {r.name for r in policy.rules if r.timed} | set(verdict.deferred)
        if self.stop_on_first_violation and verdict.violated and not verdict.exempt:
            first = verdict.violated[0].name
            unjudged |= set(names[names.index(first) + 1 :]) if first in names else set()
        return unjudged

    def _tell(
        self,
        policy: Policy,
        told: list[Told],
        phase: Phase,
        *,
        ended: bool = False,
        reason: str | None = None,
        now: datetime | None = None,
        done: Done | None = None,
    ) -> None:
        if told:
            notice = self._notice(told, phase, ended=ended, reason=reason, now=now, done=done)
            log.info("notifying: %s", notice)
            self._send(self._notifiers(policy), notice)

    def _notice(
        self,
        told: list[Told],
        phase: Phase,
        *,
        ended: bool = False,
        reason: str | None = None,
        repeat: bool = False,
        now: datetime | None = None,
        done: Done | None = None,
    ) -> Notice:
        first = told[0]
        return Notice(
            host=self.host(), container_id=first.container_id, name=first.name, image=first.image,
            owner=first.owner, rules=tuple(NoticeRule(t.rule, t.severity) for t in told), mode=first.mode,
            action=str(done.action) if done else first.action,
            outcome=outcome_text(done.outcome, done.outcome_detail) if done else first.outcome, phase=phase,
            started=min(t.started for t in told), time=now or utcnow(), ended=ended, reason=reason,
            repeat=repeat, stop=self.stop,
        )  # fmt: skip

    def _send(self, triggers: list[Trigger], notice: Notice) -> None:
        for trigger in triggers:
            self.runner.call(Call(trigger, notice, notice.name))


def _phase(verdict: Verdict, mode: Mode) -> Phase:
    """The verdict's own phase (a rule held over time: warned, enforced, recorded), else the mode's."""
    try:
        return Phase(str(verdict.phase))
    except ValueError:
        return Phase.ENFORCED if mode is Mode.KILL else Phase.RECORDED


def _by_container(told: list[Told]) -> list[list[Told]]:
    groups: dict[str, list[Told]] = defaultdict(list)
    for t in told:
        groups[t.container_id].append(t)
    return list(groups.values())
