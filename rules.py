"""docker-enforcer rules file.

`rules` is a list of dicts. A rule's "rule" is called with the container's facts and a truthy result is a
violation. The container object has:
  c.params     `docker inspect` data; keys match in any case: c.params['HostConfig']['Memory'] and
               c.params['hostconfig']['memory'] are the same
  c.metrics    `docker stats` data (memory_stats, cpu_stats, precpu_stats, networks, blkio_stats, pids_stats)
  c.position   0-based place among running containers ordered by start time
  c.check_source  "periodic" or "event";  c.cid the id;  c.name the name;  str(c) the name as "/name"

Optional keys: "description", "severity" (info, low, medium, high, critical), "mode": "WARN" (only record this
rule's violators, even in a KILL instance), "prevent": True (with PREVENT_ON_CREATE semantics for this rule).

Validate a rules file with:  docker-enforcer check --rules rules.py
"""

rules = [
    {
        "name": "always false",
        "rule": lambda c: False,
    },
    # --- Examples (uncomment to use) ---
    #
    # Static rules, on the container's configuration:
    # {
    #     "name": "must have memory limit",
    #     "rule": lambda c: c.params["HostConfig"]["Memory"] == 0,
    #     "severity": "high",
    # },
    # {
    #     "name": "must have CPU limit",
    #     "rule": lambda c: c.params["HostConfig"]["CpuQuota"] == 0,
    # },
    # {
    #     "name": "no more than 3",
    #     "rule": lambda c: c.position >= 3,
    # },
    # {
    #     "name": "uses valid dirs for volumes",
    #     "rule": lambda c: not all(
    #         b.startswith(("/opt/mnt1", "/opt/mnt2")) for b in (c.params["HostConfig"]["Binds"] or [])
    #     ),
    # },
    #
    # Dynamic rules, on the container's usage metrics (checked by periodic sweeps):
    # {
    #     "name": "can't use over 1GB of RAM",
    #     "rule": lambda c: c.metrics["memory_stats"]["usage"] > 1 * 1024**3,
    # },
    #
    # A rule that is only recorded, even when MODE=KILL (try a new rule before enforcing it):
    # {
    #     "name": "no latest tag",
    #     "rule": lambda c: c.params["Config"]["Image"].endswith(":latest"),
    #     "mode": "WARN",
    #     "severity": "low",
    #     "description": "Images should be pinned to a version.",
    # },
    #
    # Ready rules from the library, mixed with your own:
    # from enforcer.library import cis
    # rules = cis.rules() + [...]
]
