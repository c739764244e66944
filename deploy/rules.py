"""The fleet's rules: distributed to every node of the Swarm as the config `docker-enforcer-rules-<version>`.

deploy/stack.yml mounts this file at /opt/docker_enforcer/rules/rules.py in every enforcer task. Swarm
configs cannot change in place, so a change rolls out under a new name: set RULES_VERSION to a new value
(the file's hash is handy) and deploy the stack again; Swarm then replaces the enforcer on one node after
another, and rolls back if a new task fails (a broken file makes it exit with status 2):

    RULES_VERSION=$(sha256sum deploy/rules.py | cut -c1-12) docker stack deploy -c deploy/stack.yml enforcer

Try a change first with `docker-enforcer check --rules deploy/rules.py`, and with the audit twin.
"""

from enforcer.library import select

rules = select(
    "no-privileged",
    "no-docker-socket",
    "no-host-pid",
    "no-host-ipc",
    "no-dangerous-capabilities",
)
