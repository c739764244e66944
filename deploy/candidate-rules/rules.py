"""Candidate rules: the stable rules plus the ones on trial, run by the WARN audit twin only.

The twin records every violator of these and stops none, so a rule that misfires hurts nobody: watch its
detections (http://HOST:8889/, docker_enforcer_detections_total{mode="WARN"}) for a while, then promote it
to ../stable-rules/rules.py. The stable rules are imported from the folder next to this one, mounted at
/opt/docker_enforcer/stable-rules in the twin's container (deploy/compose.yaml); with systemd, make
/etc/docker-enforcer/audit/stable-rules a link to ../rules. After changing the stable rules, touch this
file (or send the twin SIGHUP) so that it reloads them too.
"""

import runpy
from pathlib import Path

from enforcer.library import select

STABLE = Path(__file__).resolve().parent.parent / "stable-rules" / "rules.py"

rules = runpy.run_path(str(STABLE))["rules"] + select(
    "memory-limit",  # CIS 5.11: on trial before being enforced
    "pids-limit",  # CIS 5.29
)
