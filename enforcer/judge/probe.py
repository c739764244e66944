"""Which rules read `c.exec`, for `docker-enforcer check`: such a rule means something only on exec checks
(RUN_EXEC_EVENTS), and flags nothing on any other check.

Two looks, since neither alone is sure: the names the rule's code uses (`c.exec` puts `exec` among its
code's names, in nested functions too), and one call of the rule on a sample container that notes whether
`exec` was read (a library rule reads it through a helper whose code is elsewhere). A rule that reaches
`c.exec` only through a helper and only for some containers can still be missed: the answer is a help for
reviewing, never a guarantee.
"""

from __future__ import annotations

from contextlib import suppress
from types import CodeType
from typing import Any

from enforcer.facts.container import Container, ExecFacts
from enforcer.judge.rules import Rule

SAMPLE_PARAMS: dict[str, Any] = {
    "Id": "0" * 64,
    "Name": "/exec-probe",
    "Image": "sha256:" + "0" * 64,
    "Config": {"Image": "busybox", "User": "", "Labels": {}, "Env": []},
    "HostConfig": {},
    "State": {"Running": True},
}
SAMPLE_EXEC = ExecFacts("probe", "", True, True, ("sh",))


class _Probe(Container):
    """A sample container that notes whether `exec` was read."""

    def __init__(self) -> None:
        self.exec_read = False
        super().__init__("0" * 64, SAMPLE_PARAMS, exec=SAMPLE_EXEC, metrics={}, position=0, image_info={})

    @property
    def exec(self) -> ExecFacts | None:
        self.exec_read = True
        return self._probe_exec

    @exec.setter
    def exec(self, value: ExecFacts | None) -> None:
        self._probe_exec = value


def reads_exec(rule: Rule) -> bool:
    """Whether the rule reads `c.exec` (see the module docstring for how sure that is)."""
    code = getattr(rule.check, "__code__", None)
    if isinstance(code, CodeType) and "exec" in _names(code):
        return True
    probe = _Probe()
    with suppress(Exception):  # the sample may not suit the rule; what it read before it raised counts
        rule.check(probe)
    return probe.exec_read


def _names(code: CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, CodeType):
            names |= _names(const)
    return names
