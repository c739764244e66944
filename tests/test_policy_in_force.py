"""The policy in force: replaced whole, and a policy taken before a replacement stays as it was."""

from __future__ import annotations

from enforcer.judge.policy import Policy
from enforcer.judge.whitelist import Whitelist
from enforcer.policy_in_force import PolicyInForce


def test_replace_puts_the_new_policy_in_force_and_returns_the_old_one() -> None:
    first, second = Policy((), Whitelist(), ()), Policy((), Whitelist(), ())
    in_force = PolicyInForce(first)
    taken = in_force.get()

    assert in_force.replace(second) is first
    assert in_force.get() is second
    assert taken is first  # a check that took the policy before the reload keeps judging under it
