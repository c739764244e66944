"""The policy in force: one writer (the reloader) swaps it whole; every check reads the one it gets.

A `Policy` is immutable, so handing out the current object is handing out a snapshot: a check takes it once
and judges, records and runs triggers under that same policy even when a reload lands meanwhile.
"""

from __future__ import annotations

import threading

from enforcer.judge.policy import Policy


class PolicyInForce:
    """Holds the current `Policy`; `get()` is safe from any thread, `replace()` is for the reloader."""

    def __init__(self, policy: Policy) -> None:
        self._policy = policy
        self._swap = threading.Lock()

    def get(self) -> Policy:
        """The policy in force now (one reference read: never a half-replaced policy)."""
        return self._policy

    def replace(self, policy: Policy) -> Policy:
        """Put `policy` in force; returns the one it replaced."""
        with self._swap:
            old, self._policy = self._policy, policy
            return old
