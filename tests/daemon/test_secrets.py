"""Issue 19: a container's secrets, in values that need escaping, never reach the API, the page, the log or the
record, while rules, a whitelist lambda and a trigger fail quoting them.

A real container made with the docker CLI carries an env value with a backslash, a healthcheck command with a
bearer token (and a zero-width space), a log driver token (with a no-break space) and a credential label; it is
prevented at create, so its configuration is recorded too.
"""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path

import docker.errors
from support.daemon import Containers, DaemonFactory, Enforcer, wait_until
from support.engine import Engine

ENV_VALUE = "P@ss\\w0rd!x-ENVk3y9"
HEALTH_CMD = 'wget -q --header "Authorization: Bearer hc\u200bTOKh7q2" http://localhost/'
LOG_TOKEN = "lo\xa0gTOKq8w3"
LABEL_TOKEN = "s.LBLz5x1"
MARKERS = ("ENVk3y9", "w0rd", "TOKh7q2", "gTOKq8w3", "LBLz5x1")  # what any form of the secrets keeps

LEAKY_RULES = """
import json


def secrets(c):
    config = c.params["Config"]
    return [config["Env"], config["Healthcheck"]["Test"], c.params["HostConfig"]["LogConfig"]["Config"],
            config["Labels"]]


def quote_repr_twice(c):
    if c.name.startswith("bad"):
        raise KeyError(str(secrets(c)))
    return False


def quote_json(c):
    if c.name.startswith("bad"):
        raise ValueError(json.dumps(secrets(c)))
    return False


rules = [
    {"name": "quotes repr", "rule": quote_repr_twice},
    {"name": "quotes json", "rule": quote_json},
    {"name": "no bad names", "rule": lambda c: c.name.startswith("bad")},
]
"""

LEAKY_WHITELIST = """
whitelist_rules = [{"name": "quotes ascii", "rule": lambda c, r: int(ascii(c.params["Config"]["Env"]))}]
"""

LEAKY_TRIGGERS = """
def quote_log_options(verdict):
    raise RuntimeError(repr(verdict.subject.params["HostConfig"]["LogConfig"]["Config"]))


triggers = [{"name": "quotes log options", "trigger": quote_log_options}]
"""


def page(enforcer: Enforcer, path: str) -> str:
    request = urllib.request.Request(enforcer.url + path, headers={"Accept": "text/html"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return str(response.read().decode())


def gone(containers: Containers, cid: str) -> bool:
    try:
        containers.inspect(cid)
    except docker.errors.NotFound:
        return True
    return False


def leaks(text: str) -> list[str]:
    return [marker for marker in MARKERS if marker in text]


def test_secrets_needing_escapes_never_leave_the_daemon(
    engine: Engine, daemon: DaemonFactory, containers: Containers
) -> None:
    enforcer = daemon(
        LEAKY_RULES,
        whitelist_rules=LEAKY_WHITELIST,
        triggers=LEAKY_TRIGGERS,
        PREVENT_ON_CREATE="true",
        LOG_LEVEL="DEBUG",
    )
    bad = engine.docker(
        "create", "--name", "bad-secrets", "--env", f"PASSWORD={ENV_VALUE}", "--health-cmd", HEALTH_CMD,
        "--log-driver", "splunk", "--log-opt", f"splunk-token={LOG_TOKEN}",
        "--log-opt", "splunk-url=https://127.0.0.1:9", "--log-opt", "splunk-verify-connection=false",
        "--label", f"vault.token={LABEL_TOKEN}", "--label", "team=red",
        "busybox", "sleep", "3600",
    ).stdout.strip()  # fmt: skip
    assert wait_until(lambda: gone(containers, bad), 5), "the violator was not prevented"
    enforcer.wait_for_violation("bad-secrets")
    enforcer.wait_for_log(lambda r: "quotes log options" in str(r.get("message")))

    (detection,) = enforcer.get("/?show_image_and_labels=1&show_all_violated_rules=1")["detections"]
    assert (detection["violated_rule"], detection["outcome"]) == (["no bad names"], "prevented")
    errors = detection["rule_errors"]
    assert [e.split(":")[0] for e in errors] == ["quotes repr", "quotes json", "whitelist rule quotes ascii"]
    assert all("***" in error for error in errors)
    assert detection["labels"] == {"vault.token": "***", "team": "red"}
    log_config = detection["config"]["HostConfig"]["LogConfig"]
    assert log_config["Type"] == "splunk" and set(log_config["Config"].values()) == {"***"}
    bodies = {
        "api": json.dumps(detection, ensure_ascii=False),
        "api, recent": enforcer.get_text("/recent?show_image_and_labels=1"),
        "page": page(enforcer, "/?show_image_and_labels=1"),
        "metrics": enforcer.get_text("/metrics"),
    }
    assert "quotes repr" in bodies["page"] and "whitelist rule quotes ascii" in bodies["page"]
    assert enforcer.stop() == 0

    bodies["log"] = enforcer.log_text()
    messages = "\n".join(enforcer.messages())
    for fragment in ("rule error: quotes repr", "whitelist rule error: quotes ascii", "quotes log options"):
        assert fragment in messages
    assert re.search(r"Trigger 'quotes log options' failed for bad-secrets: RuntimeError: .*\*\*\*", messages)
    for name, body in bodies.items():
        assert leaks(body) == [], name
    for path in Path(enforcer.env["STATE_DB"]).parent.iterdir():  # the database, its WAL and shared memory
        assert leaks(path.read_bytes().decode(errors="replace")) == [], path
