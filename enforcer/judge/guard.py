"""The blast-radius guard's decision (pure): before a rules version is put in force in KILL mode, it is judged
against every running container. When it would stop more containers that the version in force leaves alone
than its limit allows, it is held (see `Hold`): the version in force stays enforced, the new one only records.

Judged as a sweep would judge, on params and position; rules that read metrics or anything else not given
are left out (deferred), as are rules held over time ("for", "grace"): they act only after a while.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from enforcer.facts.container import Container
from enforcer.judge.judge import JudgeOptions, judge
from enforcer.judge.policy import Hold, Policy
from enforcer.judge.verdict import Verdict
from enforcer.settings import Mode


def stops(verdict: Verdict, mode: Mode) -> bool:
    """Whether a check would act on the container: a violated rule whose effective mode is KILL."""
    return any(rule.effective_mode(mode) is Mode.KILL for rule in verdict.violated)


def new_stops(
    containers: Iterable[Container], enforcing: Policy, candidate: Policy, options: JudgeOptions, mode: Mode
) -> list[Container]:
    """The containers `candidate` would stop and `enforcing` leaves alone."""

    def stopped_by(container: Container, policy: Policy) -> bool:
        return stops(judge(container, policy.instant_rules, policy.whitelist, options), mode)

    return [c for c in containers if stopped_by(c, candidate) and not stopped_by(c, enforcing)]


def limit_of(candidate: Policy, default: int) -> int:
    """The rules file's own `max_new_stops`, else MAX_NEW_STOPS."""
    return default if candidate.max_new_stops is None else candidate.max_new_stops


def vet(
    enforcing: Policy,
    candidate: Policy,
    containers: Iterable[Container],
    options: JudgeOptions,
    mode: Mode,
    default_limit: int,
) -> tuple[Policy, list[Container]]:
    """The policy to put in force (`candidate`, or `enforcing` carrying a hold of it) and the containers the
    candidate would newly stop. WARN mode stops nothing: nothing is held."""
    if mode is not Mode.KILL:
        return candidate, []
    stopped = new_stops(containers, enforcing, candidate, options, mode)
    limit = limit_of(candidate, default_limit)
    if len(stopped) <= limit:
        return candidate, stopped
    return holding(enforcing, candidate, len(stopped), limit), stopped


def holding(enforcing: Policy, candidate: Policy, new_stops: int | None, limit: int) -> Policy:
    """`enforcing` kept in force, with `candidate` held (its rules only record)."""
    return replace(enforcing, held=Hold(candidate, new_stops, limit))
