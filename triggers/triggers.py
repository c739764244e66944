"""docker-enforcer triggers file.

`triggers` is a list of dicts; each "trigger" is called with the verdict after every violation (in KILL and
WARN mode), on the enforcer's trigger worker pool. The verdict has:
  v.verdict   True
  v.subject   the container object (as rules see it); str(v.subject) is its name
  v.reasons   the names of the violated rules
A trigger that raises or hangs never delays enforcement; its errors are logged and counted.
"""

import logging

log = logging.getLogger("enforcer.triggers")

triggers = [
    {
        "name": "additional log verdict",
        "trigger": lambda v: log.debug("trigger: %s violates %s", v.subject, ", ".join(v.reasons)),
    }
]
