"""Evaluating the rules against one container's facts. Pure: no Docker, no I/O of its own.

User code (rules and whitelist lambdas) is called here and only here, and every outcome becomes a value:
violated, passed, whitelisted, errored or deferred.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import datetime

from enforcer.facts.container import Container, FactNotGathered, FactUnavailable
from enforcer.facts.redaction import Redactor
from enforcer.judge.rules import Rule, WhitelistRule
from enforcer.judge.verdict import RuleError, Verdict, WhitelistError
from enforcer.judge.whitelist import Whitelist

OWN_CONTAINER = "docker-enforcer's own container"
PEER_CONTAINER = "another docker-enforcer's container (PEERS_DIR)"


@dataclass(frozen=True)
class JudgeOptions:
    stop_on_first_violation: bool = True
    rule_errors_are_violations: bool = False
    own_container_id: str | None = None
    # The container ids other enforcers wrote into PEERS_DIR: a snapshot, read without I/O.
    peer_ids: Callable[[], Collection[str]] = frozenset


def judge(
    container: Container,
    rules: Iterable[Rule],
    whitelist: Whitelist,
    options: JudgeOptions = JudgeOptions(),
    now: datetime | None = None,
) -> Verdict:
    """Judge one container in the original's order: global whitelists, then per rule its exemptions and itself.

    `now` decides which exceptions are still in force (the current time when None). A rule that reads a fact
    the container lacks is deferred; `Judgement` stops there instead, for a caller that can gather it."""
    verdict = Judgement(rules, whitelist, options, now).run(container, gathering=False)
    assert verdict is not None
    return verdict


class Judgement:
    """One container judged rule by rule, resumable.

    With `gathering`, a rule (or whitelist lambda) that reads a fact the container lacks but the checker can
    gather (FactNotGathered: metrics and position of a running container) stops the judgement before that
    rule: `run` returns None and `needs` names the fact. `run` again with the container completed goes on from
    that rule, so a rule that finished is never called twice and judging does no I/O. Facts that cannot be
    known yet (before the container starts) defer the rule."""

    def __init__(
        self,
        rules: Iterable[Rule],
        whitelist: Whitelist,
        options: JudgeOptions = JudgeOptions(),
        now: datetime | None = None,
    ) -> None:
        self._rules = tuple(rules)
        self._whitelist = whitelist
        self._options = options
        self._now = now
        self._next = 0  # the rule to judge next
        self._violated: list[Rule] = []
        self._errors: list[RuleError] = []
        self._whitelisted: list[str] = []
        self._deferred: list[str] = []
        self._failed: dict[str, WhitelistError] = {}  # the first error of each whitelist lambda
        self.needs: str | None = None

    def run(self, container: Container, gathering: bool = True) -> Verdict | None:
        """The verdict, or None when a rule needs a fact `container` lacks (see `needs`)."""
        self.needs = None
        if self._next == 0:
            reason = self._exempt(container)
            if reason:
                return Verdict(container, exempt=reason)
        # An error may quote the container's secrets, or the arguments of the exec judged (only its executable
        # is ever shown).
        redactor = Redactor(container.params, container.exec.command[1:] if container.exec else ())

        def whitelist_failed(custom: WhitelistRule, exc: BaseException) -> None:
            if gathering and isinstance(exc, FactNotGathered):
                return  # judged again once the fact is gathered
            if custom.name not in self._failed:
                self._failed[custom.name] = WhitelistError(custom.name, redactor.error(exc))

        exempt = self._whitelist.rule_exemptions(container, whitelist_failed, self._now)
        watching = gathering and not container.all_gathered  # else no rule can need a fact gathered
        take_wanted = container.take_wanted
        take_wanted()
        rules, options = self._rules, self._options
        for index in range(self._next, len(rules)):
            rule = rules[index]
            reason = exempt(rule.name)
            hit: bool | None = None
            error: RuleError | None = None
            if not reason:
                try:
                    hit = bool(rule.check(container))
                except FactUnavailable:
                    hit = None
                except (Exception, SystemExit) as exc:  # noqa: BLE001 - a rule's failure is a value, never a crash
                    error = RuleError(rule.name, redactor.error(exc))
                    hit = options.rule_errors_are_violations
            if watching and (wanted := take_wanted()):
                # Read, even if the rule or a whitelist lambda caught what it raised: judged again once gathered.
                self.needs, self._next = wanted, index
                return None
            if reason:
                self._whitelisted.append(rule.name)
            elif hit is None:
                self._deferred.append(rule.name)
            else:
                if error is not None:
                    self._errors.append(error)
                if hit:
                    self._violated.append(rule)
                    if options.stop_on_first_violation:
                        break
        self._next = len(rules)
        return Verdict(
            container,
            tuple(self._violated),
            tuple(self._errors),
            tuple(self._whitelisted),
            None,
            tuple(self._deferred),
            tuple(self._failed.values()),
        )

    def until_done(self, container: Container, gather: Callable[[Container, str], Container]) -> Verdict:
        """The verdict, each fact a rule needs first gathered by `gather(container, fact)` (the caller's I/O,
        not the judge's)."""
        verdict = self.run(container)
        while verdict is None:
            assert self.needs is not None
            container = gather(container, self.needs)
            verdict = self.run(container)
        return verdict

    def _exempt(self, container: Container) -> str | None:
        """Why the whole container is skipped, or None."""
        options = self._options
        if options.own_container_id and container.cid.startswith(options.own_container_id):
            return OWN_CONTAINER
        if container.cid in options.peer_ids():
            return PEER_CONTAINER
        return self._whitelist.exempts_container(container)
