"""Sample rules for the sandbox demo (scripts/demo): a few static rules and one from the ready library.

The library rule, `no-sensitive-mounts` (CIS 5.6), is what stops the demo's `rootfs-reader`, which mounts the
host's /etc; see docs/rules.md for the rest of the library.
"""

from enforcer.library import select

rules = [
    *select("no-sensitive-mounts"),
    {
        "name": "must have memory limit",
        "rule": lambda c: c.params["HostConfig"]["Memory"] == 0,
        "severity": "high",
        "description": "Every container must set --memory.",
    },
    {
        "name": "uses valid dirs for volumes",
        "rule": lambda c: not all(b.startswith("/opt/") for b in (c.params["HostConfig"]["Binds"] or [])),
        "description": "Host directories may be mounted only from /opt.",
    },
    {
        "name": "no latest tag",
        "rule": lambda c: not c.image.partition("@")[0].rpartition("/")[2].count(":")
        or c.image.endswith(":latest"),
        "mode": "WARN",
        "severity": "low",
        "description": "Recorded only (mode WARN): images should be pinned to a version.",
    },
]
