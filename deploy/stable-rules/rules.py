"""Stable rules: enforced by the KILL instance, and audited again by its WARN twin (which imports them).

Only rules that have run in the audit twin long enough to be trusted belong here: a violator of any of them
is killed on sight. To promote a candidate rule, move it from ../candidate-rules/rules.py to this file.
The ready rules come from docker-enforcer's library (docs/rules.md describes each); own lambdas mix in freely.
"""

from enforcer.library import select

rules = select(
    "no-privileged",  # CIS 5.5
    "no-docker-socket",  # CIS 5.32: whoever holds the socket is root on the host
    "no-host-pid",  # CIS 5.16
    "no-host-ipc",  # CIS 5.17
    "no-dangerous-capabilities",  # CIS 5.4 (SYS_ADMIN, NET_ADMIN, ...)
)
