"""docker-enforcer triggers file.

`triggers` is a list of dicts; each "trigger" is called with the verdict after every violation (in KILL and
WARN mode), in its own lane (a queue and a worker). The verdict has:
  v.verdict   True
  v.subject   the container object (as rules see it); str(v.subject) is its name
  v.reasons   the names of the violated rules
  v.phase     "enforced", "recorded", or for rules held over time "warned" and "resolved"
A trigger that raises or hangs never delays enforcement nor another trigger; its errors are logged and
counted.

Ready notifiers (enforcer.notify), told once per episode (when a violation starts and when it ends), routed by
owner (OWNER_LABEL); keep their URLs in the environment, not in this file:

    from enforcer import notify
    triggers.append(notify.slack(os.environ["SLACK_URL"], owners={"team-a": os.environ["TEAM_A_SLACK_URL"]}))
    triggers.append(notify.alertmanager("http://127.0.0.1:9093"))
    triggers.append(notify.falcosidekick("http://127.0.0.1:2801"))

`docker-enforcer notify-test` sends one test notification through each and prints what it answered.
"""

import logging

log = logging.getLogger("enforcer.triggers")

triggers = [
    {
        "name": "additional log verdict",
        "trigger": lambda v: log.debug("trigger: %s violates %s", v.subject, ", ".join(v.reasons)),
    }
]
