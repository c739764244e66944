"""Secrets never pass redaction (issue 19): env values (`--env`, `--env-file`), the command line, healthcheck
commands, log driver options, volume driver options, credential labels and registry auth, each with a value
that needs escaping, quoted by rules, whitelist lambdas and triggers in every form Python and JSON give them;
and the configuration recorded for a prevented container. On the captured `plain` container.
"""

from __future__ import annotations

import copy
import json
import logging
import re
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from enforcer.act.triggers import TriggerRunner
from enforcer.facts.container import Container, ExecFacts
from enforcer.facts.redaction import LABEL_SHOWN, REDACTED, describe, redact, scrub_labels
from enforcer.judge.judge import JudgeOptions, judge
from enforcer.judge.rules import Rule, Trigger, WhitelistRule
from enforcer.judge.verdict import Verdict
from enforcer.judge.whitelist import Whitelist
from enforcer.record.model import safe_config

DATA = Path(__file__).resolve().parent / "data"
ALL_RULES = JudgeOptions(stop_on_first_violation=False)

# Values that need escaping in one form or another; each letter-and-digit run of 3 or more is the proof of
# a leak: whatever form the value took, such a run survives in it.
VALUES = {
    "backslash": "Xy7kP\\w0rdQz",
    "zero-width space": "Zw5mA\u200bB9qrT",
    "no-break space": "Nb4sA\xa0Pk8vR",
    "both quotes": "Qu0tA'Qb\"Qc8dE",
    "newline and tab": "Nl2aB\nTb3cD\tTc4eF",
    "non-ASCII": "Ca5fé-Üb6gH",
    "astral": "Em7oJ\U0001f600Em8pK",
    "long, backslash": "Lg0n\\" + "".join(f"t{i:03d}" for i in range(80)),  # int() quotes 200 characters
}


def inspected(name: str = "plain") -> dict[str, Any]:
    return copy.deepcopy(json.loads((DATA / f"{name}.json").read_text())[0])


# Where a secret sits in inspect data: how to put it there, and the text a rule reads from the container.
def _env(p: dict[str, Any], v: str) -> None:
    p["Config"]["Env"] = ["PATH=/bin", f"PASSWORD={v}"]


def _healthcheck(p: dict[str, Any], v: str) -> None:
    p["Config"]["Healthcheck"] = {
        "Test": ["CMD-SHELL", f'wget --header "Authorization: Bearer {v}" http://api/']
    }


def _log_option(p: dict[str, Any], v: str) -> None:
    p["HostConfig"]["LogConfig"] = {
        "Type": "splunk",
        "Config": {"splunk-token": v, "splunk-url": "https://s:8088"},
    }


def _command(p: dict[str, Any], v: str) -> None:
    p["Path"], p["Args"] = "server", [f"--password={v}"]
    p["Config"]["Cmd"] = ["server", f"--password={v}"]


def _entrypoint(p: dict[str, Any], v: str) -> None:
    p["Config"]["Entrypoint"] = ["/entry", v]


def _volume_option(p: dict[str, Any], v: str) -> None:
    options = {"type": "cifs", "device": "//nas/share", "o": f"username=u,password={v}"}
    p["HostConfig"]["Mounts"] = [
        {
            "Type": "volume",
            "Source": "share",
            "Target": "/mnt",
            "VolumeOptions": {"DriverConfig": {"Options": options}},
        }
    ]


def _label(p: dict[str, Any], v: str) -> None:
    p["Config"]["Labels"] = {"team": "blue", "traefik.http.middlewares.a.basicauth.users": f"admin:{v}"}


def _registry_auth(p: dict[str, Any], v: str) -> None:
    p["HostConfig"]["RegistryAuth"] = {"username": "ci", "password": v}  # not in today's inspect: if ever


PLACES: dict[str, tuple[Callable[[dict[str, Any], str], None], Callable[[Any], str]]] = {
    "env": (_env, lambda params: params["Config"]["Env"][1]),
    "env value": (_env, lambda params: params["Config"]["Env"][1].partition("=")[2]),
    "healthcheck": (_healthcheck, lambda params: params["Config"]["Healthcheck"]["Test"][1]),
    "log option": (_log_option, lambda params: params["HostConfig"]["LogConfig"]["Config"]["splunk-token"]),
    "command": (_command, lambda params: " ".join(params["Config"]["Cmd"])),
    "args": (_command, lambda params: params["Args"][0]),
    "entrypoint": (_entrypoint, lambda params: params["Config"]["Entrypoint"][1]),
    "volume option": (
        _volume_option,
        lambda params: params["HostConfig"]["Mounts"][0]["VolumeOptions"]["DriverConfig"]["Options"]["o"],
    ),
    "credential label": (_label, lambda params: params["Config"]["Labels"]["traefik.http.middlewares.a.basicauth.users"]),
    "registry auth": (_registry_auth, lambda params: params["HostConfig"]["RegistryAuth"]["password"]),
}  # fmt: skip


def _int_error(text: str) -> BaseException:
    try:
        int(text)
    except ValueError as exc:
        return exc
    raise AssertionError("an int")


# How user code's exceptions quote a text.
QUOTINGS: dict[str, Callable[[str], BaseException]] = {
    "str": lambda s: ValueError(f"unexpected {s}"),
    "KeyError (repr)": lambda s: KeyError(s),
    "repr of a list": lambda s: ValueError(f"items: {[s, 1]}"),
    "KeyError of a list's str (repr twice)": lambda s: KeyError(str([s])),
    "json": lambda s: RuntimeError(json.dumps({"value": s})),
    "json, not ASCII": lambda s: RuntimeError(json.dumps([s], ensure_ascii=False)),
    "ascii()": lambda s: TypeError(ascii(s)),
    "bytes repr": lambda s: KeyError(s.encode()),
    "unicode-escape": lambda s: ValueError(s.encode("unicode_escape").decode("ascii")),
    "URL": lambda s: ValueError("http://api/?q=" + urllib.parse.quote(s, safe="")),
    "repr of a dict": lambda s: ValueError(repr({"k": s})),
    "int() (repr cut at 200)": _int_error,
}


def leaked(message: str, value: str) -> list[str]:
    """The letter-and-digit runs of `value` (3 to 6 characters of each) that `message` still shows."""
    runs = re.findall(r"[A-Za-z0-9]{3,}", value)
    chunks = [run[i : i + 6] for run in runs for i in range(0, len(run), 6)]
    return [chunk for chunk in chunks if len(chunk) >= 3 and chunk in message]


def secret_container(place: str, value: str) -> Container:
    params = inspected()
    PLACES[place][0](params, value)
    return Container(params["Id"], params)


def raising(read: Callable[[Any], str], quoting: Callable[[str], BaseException]) -> Callable[..., Any]:
    def check(c: Any, *rest: Any) -> Any:
        subject = c.subject if isinstance(c, Verdict) else c
        raise quoting(read(subject.params))

    return check


@pytest.mark.parametrize("value", VALUES.values(), ids=VALUES.keys())
@pytest.mark.parametrize("place", PLACES)
def test_rule_errors_never_show_a_secret_in_any_form(place: str, value: str) -> None:
    c = secret_container(place, value)
    rules = [Rule(name, raising(PLACES[place][1], quoting)) for name, quoting in QUOTINGS.items()]
    errors = judge(c, rules, Whitelist(), ALL_RULES).errors
    assert [e.rule for e in errors] == list(QUOTINGS)
    for error in errors:
        assert REDACTED in error.error, error
        assert leaked(error.error, value) == [], error


@pytest.mark.parametrize("value", VALUES.values(), ids=VALUES.keys())
@pytest.mark.parametrize("place", PLACES)
def test_whitelist_lambda_errors_never_show_a_secret_in_any_form(place: str, value: str) -> None:
    c = secret_container(place, value)
    custom = tuple(WhitelistRule(name, raising(PLACES[place][1], q)) for name, q in QUOTINGS.items())
    v = judge(c, [Rule("always", lambda c: True)], Whitelist(rules=custom))
    assert v.reasons == ["always"]
    assert [e.whitelist_rule for e in v.whitelist_errors] == list(QUOTINGS)
    for error in v.whitelist_errors:
        assert REDACTED in error.error, error
        assert leaked(error.error, value) == [], error


@pytest.mark.parametrize("place", PLACES)
def test_trigger_errors_never_show_a_secret_in_any_form(place: str, caplog: pytest.LogCaptureFixture) -> None:
    value = VALUES["backslash"] + VALUES["zero-width space"]
    c = secret_container(place, value)
    triggers = [Trigger(name, raising(PLACES[place][1], quoting)) for name, quoting in QUOTINGS.items()]
    errors: list[str] = []
    runner = TriggerRunner(on_error=errors.append)
    with caplog.at_level(logging.ERROR, logger="enforcer.act.triggers"):
        runner.submit(triggers, Verdict(c, (Rule("r", lambda c: True),)))
        deadline = time.monotonic() + 10
        while len(errors) < len(QUOTINGS) and time.monotonic() < deadline:
            time.sleep(0.01)
        runner.close(wait=True)
    assert sorted(errors) == sorted(QUOTINGS)  # each trigger in its own lane: any order
    failures = [r.getMessage() for r in caplog.records if " failed for plain: " in r.getMessage()]
    assert len(failures) == len(QUOTINGS)
    for message in failures:
        assert REDACTED in message, message
        assert leaked(message, value) == [], message


def test_a_piece_of_a_secret_quoted_alone_is_redacted_too() -> None:
    c = secret_container("healthcheck", "Xy7kP\\w0rdQz")
    errors = judge(c, [Rule("part", lambda c: {}["Authorization"]), Rule("bearer", lambda c: {}["Bearer"])], Whitelist(), ALL_RULES).errors  # fmt: skip
    assert [e.error for e in errors] == ["KeyError: '***'", "KeyError: '***'"]


def test_what_is_no_secret_is_kept() -> None:
    c = secret_container("env", VALUES["backslash"])
    (error,) = judge(c, [Rule("broken", lambda c: c.params["HostConfig"]["NoSuchThing"])], Whitelist()).errors
    assert error.error == "KeyError: 'NoSuchThing'"
    assert redact("the image is busybox", c.params) == "the image is busybox"


def test_an_exception_whose_str_raises_is_named_by_its_type() -> None:
    class Unprintable(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no str for you")

    def check(c: Container) -> None:
        raise Unprintable()

    (error,) = judge(secret_container("env", "x"), [Rule("odd", check)], Whitelist()).errors
    assert error.error == "Unprintable: <str() failed>"
    assert describe(KeyError("k")) == "KeyError: 'k'"


# -- the configuration recorded for a prevented container -------------------------------------------------------
@pytest.mark.parametrize("value", VALUES.values(), ids=VALUES.keys())
def test_the_recorded_config_holds_no_secret(value: str) -> None:
    params = inspected()
    for put, _ in PLACES.values():
        put(params, value)
    params["Config"]["Labels"]["org.opencontainers.image.authors"] = "Ada <ada@example.org>"
    c = Container(params["Id"], params)
    config = safe_config(c.params)
    text = json.dumps(config)
    assert leaked(text, value) == [], text
    assert leaked(json.dumps(config, ensure_ascii=False), value) == []
    assert config["HostConfig"]["LogConfig"] == {
        "Type": "splunk",
        "Config": {"splunk-token": REDACTED, "splunk-url": REDACTED},
    }
    (mount,) = config["HostConfig"]["Mounts"]
    assert mount["VolumeOptions"]["DriverConfig"]["Options"] == {
        "type": REDACTED,
        "device": REDACTED,
        "o": REDACTED,
    }
    assert (mount["Type"], mount["Target"]) == ("volume", "/mnt")
    assert config["HostConfig"]["RegistryAuth"] == {"username": REDACTED, "password": REDACTED}
    assert config["Config"]["Labels"] == {
        "team": "blue",
        "traefik.http.middlewares.a.basicauth.users": REDACTED,
        "org.opencontainers.image.authors": "Ada <ada@example.org>",
    }
    assert set(config["Config"]) <= {
        "Image",
        "Labels",
        "User",
        "WorkingDir",
        "ExposedPorts",
        "Volumes",
        "Hostname",
    }
    assert config["HostConfig"]["Memory"] == params["HostConfig"]["Memory"]  # the rest is kept as it is


def test_labels_naming_a_credential_are_blanked_out() -> None:
    labels = {
        "team": "blue",
        "vault.TOKEN": "s.abc",
        "db.password": "x",
        "image.authors": "Ada",
        "oauth.key": "k",
    }
    assert scrub_labels(labels) == {
        "team": "blue",
        "vault.TOKEN": REDACTED,
        "db.password": REDACTED,
        "image.authors": "Ada",
        "oauth.key": REDACTED,
    }


EXEC_TOKEN = "hunter2-s3cret-value"


def exec_check() -> Container:
    session = ExecFacts("e1", "0", False, False, ("curl", "-H", f"X-Token: {EXEC_TOKEN}"))
    return Container(secret_container("env", "x").cid, secret_container("env", "x").params, exec=session)


def test_rule_and_whitelist_errors_never_quote_the_arguments_of_the_exec_judged() -> None:
    """An exec's arguments are as secret as the container's command line (only its executable is shown)."""
    quote_token = lambda c, *_: int(c.exec.command[2].split(": ")[1])  # noqa: E731
    v = judge(
        exec_check(), [Rule("exec token", quote_token)], Whitelist(rules=(WhitelistRule("w", quote_token),))
    )
    assert [e.rule for e in v.errors] == ["exec token"] and [
        e.whitelist_rule for e in v.whitelist_errors
    ] == ["w"]
    for error in (*v.errors, *v.whitelist_errors):
        assert leaked(str(error), EXEC_TOKEN) == [] and REDACTED in str(error), error


def test_trigger_errors_never_quote_the_arguments_of_the_exec_judged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    errors: list[str] = []
    runner = TriggerRunner(on_error=errors.append)
    with caplog.at_level(logging.ERROR, logger="enforcer.act.triggers"):
        runner.submit([Trigger("t", lambda v: int(v.subject.exec.command[-1]))], Verdict(exec_check(), ()))
        deadline = time.monotonic() + 10
        while not errors and time.monotonic() < deadline:
            time.sleep(0.01)
        runner.close(wait=True)
    (message,) = [r.getMessage() for r in caplog.records if " failed for " in r.getMessage()]
    assert leaked(message, EXEC_TOKEN) == [] and REDACTED in message, message


def test_recorded_label_values_are_cut_short() -> None:
    """Whoever creates a container chooses its labels, of any size: what is recorded (store, API, page) keeps
    LABEL_SHOWN characters of each value."""
    labels = scrub_labels({"huge": "x" * 100_000, "team": "a", "api_token": "y" * 5000})
    assert labels == {"huge": "x" * (LABEL_SHOWN - 1) + "…", "team": "a", "api_token": REDACTED}
