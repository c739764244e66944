"""`c.exec`: the exec session facts read from captured `GET /exec/{id}/json` output, and healthcheck execs.

The examples (tests/library/examples/exec/) are real exec inspect output from the isolated engine, each with
its container's inspect taken at the time (tests/library/capture_examples.py execs).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from enforcer.facts.container import EXECUTABLE_SHOWN, Container, ExecFacts
from enforcer.facts.gather import is_healthcheck

EXEC_DIR = Path(__file__).resolve().parent / "library" / "examples" / "exec"


def example(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EXEC_DIR / f"{name}.json").read_text())
    return data


def facts(name: str) -> ExecFacts:
    data = example(name)
    return ExecFacts.from_inspect(data["exec"], data["container"]["Config"].get("User") or "")


@pytest.mark.parametrize(
    ("name", "user", "privileged", "tty"),
    [
        ("privileged", "", True, False),
        ("u0", "0", False, False),
        ("u-root-group", "root:1000", False, False),
        ("default-root", "", False, False),  # no -u, container without a user: the image's default (root)
        ("u1000", "1000", False, False),
        ("inherits-1000", "1000", False, False),  # no -u: the container's Config.User, as the engine does
        ("tty-1000", "1000", False, True),
    ],
)
def test_exec_facts_from_real_inspect_data(name: str, user: str, privileged: bool, tty: bool) -> None:
    exec_facts = facts(name)
    assert (exec_facts.user, exec_facts.privileged, exec_facts.tty) == (user, privileged, tty)
    assert exec_facts.command == ("sh", "-c", "exit 0")
    assert exec_facts.executable == "sh"
    assert exec_facts.id == example(name)["exec"]["ID"]


def test_the_arguments_never_show_in_str_or_repr() -> None:
    exec_facts = ExecFacts("e1", "0", False, False, ("sh", "-c", "curl -H 'token: s3cret'"))
    assert "s3cret" not in str(exec_facts) and "s3cret" not in repr(exec_facts)
    assert str(exec_facts) == "exec sh as 0"


def test_exec_is_none_on_every_other_check() -> None:
    data = example("u0")
    rule = lambda c: c.exec and c.exec.privileged  # noqa: E731 - the README's form
    assert Container("c1", data["container"]).exec is None
    assert not rule(Container("c1", data["container"]))
    assert rule(Container("c1", data["container"], exec=facts("privileged")))


@pytest.mark.parametrize("name", ["healthcheck", "healthcheck-1000"])
def test_the_containers_own_healthcheck_is_recognised(name: str) -> None:
    data = example(name)
    assert is_healthcheck(data["exec"], data["container"])


@pytest.mark.parametrize("name", ["privileged", "u0", "default-root", "u1000", "inherits-1000", "tty-1000"])
def test_a_docker_exec_is_no_healthcheck(name: str) -> None:
    data = example(name)
    assert not is_healthcheck(data["exec"], data["container"])


def changed(data: dict[str, Any], **process: Any) -> dict[str, Any]:
    raw = copy.deepcopy(data["exec"])
    raw["ProcessConfig"].update(process)
    return raw


@pytest.mark.parametrize(
    "change",
    [
        {"privileged": True},
        {"tty": True},
        {"user": "0"},  # the healthcheck runs as Config.User (1000)
        {"arguments": ["-c", "true; id"]},
        {"entrypoint": "/bin/bash"},
    ],
)
def test_an_exec_that_only_resembles_the_healthcheck_is_judged(change: dict[str, Any]) -> None:
    data = example("healthcheck-1000")
    assert not is_healthcheck(changed(data, **change), data["container"])


def test_cmd_healthchecks_and_a_custom_shell() -> None:
    data = example("healthcheck")
    container = copy.deepcopy(data["container"])
    container["Config"]["Healthcheck"]["Test"] = ["CMD", "wget", "-q", "localhost"]
    assert is_healthcheck(changed(data, entrypoint="wget", arguments=["-q", "localhost"]), container)
    container["Config"]["Healthcheck"]["Test"] = ["CMD-SHELL", "true"]
    container["Config"]["Shell"] = ["/bin/ash", "-eo"]
    assert is_healthcheck(changed(data, entrypoint="/bin/ash", arguments=["-eo", "true"]), container)
    assert not is_healthcheck(data["exec"], container)
    container["Config"]["Healthcheck"]["Test"] = ["NONE"]
    assert not is_healthcheck(data["exec"], container)


def test_a_long_executable_or_user_is_shown_cut_short() -> None:
    long = ExecFacts("e1", "u" * 1000, False, False, ("/bin/" + "x" * 10_000, "arg"))
    assert long.shown == long.executable[: EXECUTABLE_SHOWN - 1] + "…" and len(long.shown) == EXECUTABLE_SHOWN
    assert len(str(long)) < 3 * EXECUTABLE_SHOWN
    assert ExecFacts("e2", "0", False, False, ("sh", "-c", "x")).shown == "sh"
