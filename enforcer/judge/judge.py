"""Evaluating the rules against one container's facts. Pure: no Docker, no I/O of its own.

User code (rules and whitelist lambdas) is called here and only here, and every outcome becomes a value:
violated, passed, whitelisted, errored or deferred.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import datetime

from enforcer.facts.container import Container, FactUnavailable
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

    `now` decides which exceptions are still in force (the current time when None)."""
    if options.own_container_id and container.cid.startswith(options.own_container_id):
        return Verdict(container, exempt=OWN_CONTAINER)
    if container.cid in options.peer_ids():
        return Verdict(container, exempt=PEER_CONTAINER)
    reason = whitelist.exempts_container(container)
    if reason:
        return Verdict(container, exempt=reason)
    violated: list[Rule] = []
    errors: list[RuleError] = []
    whitelisted: list[str] = []
    deferred: list[str] = []
    failed: dict[str, WhitelistError] = {}  # the first error of each whitelist lambda
    redactor = Redactor(container.params)  # an error may quote the container's secrets

    def whitelist_failed(custom: WhitelistRule, exc: Exception) -> None:
        if custom.name not in failed:
            failed[custom.name] = WhitelistError(custom.name, redactor.error(exc))

    exempt = whitelist.rule_exemptions(container, whitelist_failed, now)
    for rule in rules:
        if exempt(rule.name):
            whitelisted.append(rule.name)
            continue
        try:
            hit = bool(rule.check(container))
        except FactUnavailable:
            deferred.append(rule.name)
            continue
        except Exception as exc:  # noqa: BLE001 - a rule's failure is a value, never a crash
            errors.append(RuleError(rule.name, redactor.error(exc)))
            hit = options.rule_errors_are_violations
        if hit:
            violated.append(rule)
            if options.stop_on_first_violation:
                break
    return Verdict(
        container,
        tuple(violated),
        tuple(errors),
        tuple(whitelisted),
        None,
        tuple(deferred),
        tuple(failed.values()),
    )
