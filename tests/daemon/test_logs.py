"""What the daemon logs: one line per violation with what an owner needs, and never a container's secrets."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.daemon import Containers, DaemonFactory

SECRET_ENV = "hunter2-xyz"
SECRET_CMD = "hunter2-cmd"

LEAKY_RULES = """
def quote_env(c):
    if c.name.startswith("bad"):
        raise ValueError("env was %s" % list(c.params["Config"]["Env"]))
    return False


def quote_cmd(c):
    if c.name.startswith("bad"):
        raise RuntimeError("cmd was " + " ".join(c.params["Config"]["Cmd"]))
    return False


rules = [
    {"name": "quotes env", "rule": quote_env},
    {"name": "quotes cmd", "rule": quote_cmd},
    {"name": "no bad names", "rule": lambda c: c.name.startswith("bad")},
]
"""

LEAKY_TRIGGERS = """
def quote_env(verdict):
    raise RuntimeError("env was %s" % list(verdict.subject.params["Config"]["Env"]))


triggers = [{"name": "quotes env", "trigger": quote_env}]
"""


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_secrets_never_appear_in_the_output_or_the_api(
    daemon: DaemonFactory, containers: Containers, tmp_path: Path, log_format: str
) -> None:
    enforcer = daemon(
        LEAKY_RULES, triggers=LEAKY_TRIGGERS, LOG_LEVEL="DEBUG", LOG_FORMAT=log_format, wait=None
    )
    enforcer.wait_for_log(lambda r: "sweep of" in str(r.get("message")), 30)
    bad = containers.run(
        "bad-secret",
        command=["sh", "-c", f"sleep 3600 # {SECRET_CMD}"],
        environment={"SECRET": SECRET_ENV, "OTHER": f"x-{SECRET_ENV}-y"},
    )
    assert containers.wait_stopped(bad, 3)
    enforcer.wait_for_log(
        lambda r: "quotes env" in str(r.get("message")) and "failed for" in str(r.get("message"))
    )
    answers = [enforcer.get_text(path) for path in ("/", "/recent?show_image_and_labels=1", "/metrics")]
    assert "bad-secret" in answers[0]
    assert enforcer.stop() == 0

    output = "\n".join([enforcer.log_text(), *answers])
    assert "violation: container=bad-secret" in output
    assert "rule error: quotes env on container bad-secret" in output
    assert "***" in output  # the exception is logged, its quote of the env redacted
    for secret in (SECRET_ENV, SECRET_CMD, "hunter2"):
        assert secret not in output
    for state_file in Path(enforcer.env["STATE_DB"]).parent.iterdir():  # rule errors are recorded too
        assert b"hunter2" not in state_file.read_bytes(), state_file


def test_one_line_per_violation(daemon: DaemonFactory, containers: Containers) -> None:
    enforcer = daemon(LOG_FORMAT="text")
    bad = containers.run("bad-text", environment={"SECRET": SECRET_ENV})
    assert containers.wait_stopped(bad, 3)
    enforcer.wait_for_message("violation: container=bad-text")
    containers.run("good-text")
    assert enforcer.stop() == 0

    lines = [line for line in enforcer.log_lines() if "bad-text" in line or bad[:12] in line]
    assert len(lines) == 1, lines
    assert lines[0].endswith(
        f"INFO enforcer.pipeline: violation: container=bad-text id={bad[:12]} image={containers.image} "
        "rules=no bad names mode=KILL action=kill outcome=stopped"
    )
    assert "good-text" not in enforcer.log_text()
