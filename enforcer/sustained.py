"""Rules held over time ("for", "grace"): one sample of one container judged, its episodes advanced, the
owner told, the action run once (see enforcer/record/episodes.py for the phases).

Called by the sampler (enforcer/sources/samples.py) with facts gathered already; the judging is the same
pure `judge()` as every check, on the timed rules only and without stopping at the first violation. Checks of
one container are serialized with the pipeline's own (its per-container lock): never two actions at once.
A rule that could not be judged on this sample (facts unavailable, the rule raised) leaves its episode as
it was: neither advanced nor reset.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime

from enforcer.act import remedies
from enforcer.act.actions import Done
from enforcer.facts.container import Container
from enforcer.judge.judge import judge
from enforcer.judge.policy import Policy
from enforcer.judge.rules import Rule
from enforcer.judge.verdict import Verdict
from enforcer.pipeline import Pipeline
from enforcer.record.episodes import Episode, EpisodeStore, Sample, Step, advance, settled
from enforcer.record.model import Outcome, Phase, Source
from enforcer.settings import Mode

log = logging.getLogger("enforcer.sustained")


class Sustained:
    def __init__(self, pipeline: Pipeline, episodes: EpisodeStore) -> None:
        self.pipeline = pipeline
        self.episodes = episodes
        self.options = replace(pipeline.options, stop_on_first_violation=False)

    def sample(self, container: Container, policy: Policy, now: datetime) -> Verdict:
        """Judge one running container on the timed rules and advance each of its episodes."""
        with self.pipeline.locks.hold(container.cid):
            verdict = judge(container, policy.timed_rules, policy.whitelist, self.options, now)
            self.pipeline.errors.note(verdict, policy.version)
            self.pipeline.metrics.checks.labels(source=Source.SAMPLE).inc()
            unknown = {*verdict.deferred, *(error.rule for error in verdict.errors)}
            violated = {rule.name for rule in verdict.violated}
            for rule in policy.timed_rules:
                if rule.name not in unknown:
                    self._advance(container, rule, rule.name in violated, policy, now)
            return verdict

    def gone(self, ended: Iterable[Episode], policy: Policy) -> None:
        """Episodes ended because their container stopped running or went away, or their rule left the
        policy: an owner who was told hears that it is resolved."""
        rules = {rule.name: rule for rule in policy.timed_rules}
        for episode in ended:
            rule = rules.get(episode.rule)
            if rule is not None and episode.phase in (Phase.WARNED, Phase.RECORDED):
                params = {"Id": episode.container_id, "Name": "/" + episode.name}
                container = Container(episode.container_id, params, owner=episode.owner)
                self._tell(Verdict(container, (rule,), phase=Phase.RESOLVED), policy)

    # -- one (container, rule) ---------------------------------------------------------------------------
    def _advance(
        self, container: Container, rule: Rule, violated: bool, policy: Policy, now: datetime
    ) -> None:
        current = self.episodes.get(container.cid, rule.name)
        if current is None and not violated:
            return  # the common case: nothing open, nothing to open
        state = container.params.get("State") or {}
        sample = Sample(
            container.cid, rule.name, violated, str(state.get("StartedAt") or ""), container.name,
            container.owner, str(rule.action),
        )  # fmt: skip
        step = advance(current, sample, rule.for_s, rule.grace_s, now)
        if current is None and step.episode is not None and step.episode.phase is Phase.PENDING:
            log.info(
                "%s held by %s: pending until %s", rule, container.name, _clock(step.episode.deadline),
                extra={"container": container.name, "rule": rule.name, "phase": str(Phase.PENDING)},
            )  # fmt: skip
        if step.episode is None:
            self.episodes.end(container.cid, rule.name)
        else:
            self.episodes.put(step.episode)
        verdict = Verdict(container, (rule,))
        if step.announce is Phase.RESOLVED:
            log.info("%s on %s resolved before any action", rule, container.name)
            self._tell(replace(verdict, phase=Phase.RESOLVED), policy)
        elif step.announce is Phase.WARNED and step.episode is not None:
            self._warn(verdict, rule, step.episode, policy)
        if step.act:
            self._act(verdict, rule, step, policy, now)

    def _warn(self, verdict: Verdict, rule: Rule, episode: Episode, policy: Policy) -> None:
        """A grace starts: recorded (outcome "warned", with the time the action runs) and told at once."""
        enforced = rule.effective_mode(self.pipeline.settings.mode) is Mode.KILL
        planned = remedies.PLANNED[rule.action] if enforced else remedies.WOULD[rule.action]
        deadline = _clock(episode.deadline)
        detail = (
            f"will {rule.action} at {deadline} unless fixed"
            if enforced
            else f"would {rule.action} at {deadline}"
        )
        done = Done(planned, Outcome.WARNED, outcome_detail=detail)
        self.pipeline.finish(
            replace(verdict, phase=Phase.WARNED), policy, enforced, done, Source.SAMPLE, None, False
        )

    def _act(self, verdict: Verdict, rule: Rule, step: Step, policy: Policy, now: datetime) -> None:
        """The episode held (and its grace ran out): the rule's action in KILL mode, recorded in WARN mode."""
        assert step.episode is not None
        container = verdict.subject
        enforced = rule.effective_mode(self.pipeline.settings.mode) is Mode.KILL
        if enforced and not self.pipeline.breaker.admit():
            # Past the stop rate: recorded as held, the episode left due, so a later sample acts once the
            # rate has fallen (as any other action the breaker holds back).
            held = remedies.would(rule, container.params)
            done = replace(held, outcome=Outcome.HELD, outcome_detail=self.pipeline.breaker.detail)
            self.pipeline.finish(
                replace(verdict, phase=Phase.RECORDED), policy, False, done, Source.SAMPLE, None, False
            )
            return
        # The phase is written before the action: a daemon that dies in between never acts twice.
        self.episodes.put(settled(step.episode, enforced, now))
        if enforced:
            done = remedies.apply(self.pipeline.actuator, rule, container.cid, container.params)
            self.pipeline.gatherer.forget(container.cid)  # its state or limits changed
            if done.outcome is Outcome.FAILED:
                self.episodes.put(step.episode)  # not done: tried again on the next sample
        else:
            done = remedies.would(rule, container.params)
        phase = Phase.ENFORCED if enforced else Phase.RECORDED
        self.pipeline.finish(
            replace(verdict, phase=phase), policy, enforced, done, Source.SAMPLE, None, False
        )

    def _tell(self, verdict: Verdict, policy: Policy) -> None:
        self.pipeline.triggers.submit(policy.triggers, verdict)


def _clock(moment: datetime | None) -> str:
    return moment.strftime("%H:%M:%S UTC") if moment is not None else "the end of the grace"
