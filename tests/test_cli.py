"""The command line: `check` validates files without Docker; `audit` reports and never acts.

Exit status: 0 fine, 1 violations found, 2 bad settings or files, 3 engine unreachable. The tests that need
an engine run against the isolated one (tests/support/engine.py), never the host's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from support.cli import run, write
from support.engine import Engine, RunContainer

from enforcer import __version__
from enforcer.cli import main

pytestmark = pytest.mark.usefixtures("restore_logging")  # main() configures the enforcer logger

REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
ALL = DATA / "all.json"  # plain, limits, binds_labels
JSON_KEYS = {
    "id", "name", "image", "violated_rules", "rule_errors", "whitelist_errors", "whitelisted", "exempt", "state"
}  # fmt: skip
RULES = """
rules = [
    {"name": "must have memory limit", "rule": lambda c: c.params["hostconfig"]["memory"] == 0,
     "severity": "high", "description": "Every container needs -m."},
    {"name": "no host binds", "rule": lambda c: bool(c.params["HostConfig"]["Binds"]), "mode": "WARN"},
    {"name": "broken", "rule": lambda c: c.params["NoSuchKey"]},
]
"""
NOTHING_VIOLATED = 'rules = [{"name": "always false", "rule": lambda c: False}]\n'


def one_error_line(err: str) -> str:
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("docker-enforcer: ")]
    assert len(errors) == 1, err
    return errors[0]


# -- check ---------------------------------------------------------------------------------------------------------
def test_check_lists_each_rule_with_severity_and_mode(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = write(workdir, "mine.py", RULES)
    code, out, _ = run(["check", "--rules", str(rules)], capsys)
    assert code == 0
    assert f"rules (3) from {rules}:" in out
    assert "  - must have memory limit [high, WARN from MODE]" in out
    assert "  - no host binds [medium, WARN from the rule]" in out
    assert "  - broken [medium, WARN from MODE]" in out


def test_check_shows_the_mode_each_rule_acts_in(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = write(workdir, "mine.py", RULES)
    code, out, _ = run(["check", "--rules", str(rules)], capsys, MODE="kill")
    assert code == 0
    assert "  - must have memory limit [high, KILL from MODE]" in out
    assert "  - no host binds [medium, WARN from the rule]" in out  # the rule's own "mode": "WARN"


def test_check_says_a_rules_kill_needs_a_kill_instance(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = write(workdir, "mine.py", 'rules = [{"name": "r", "rule": lambda c: 0, "mode": "KILL"}]')
    code, out, _ = run(["check", "--rules", str(rules)], capsys)
    assert code == 0
    assert "  - r [medium, WARN from MODE; the rule's KILL needs MODE=KILL]" in out
    code, out, _ = run(["check", "--rules", str(rules)], capsys, MODE="KILL")
    assert "  - r [medium, KILL from the rule]" in out


def test_check_names_the_files_once_on_stdout_and_logs_nothing(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = write(workdir, "mine.py", RULES)
    code, out, err = run(["check", "--rules", str(rules)], capsys)
    assert code == 0
    assert out.count(str(rules)) == 1
    assert err == ""


def test_help_names_where_each_file_is_looked_for(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["check", "--help"], {})
    help_text = " ".join(capsys.readouterr().out.split())
    assert "RULES_FILE, then rules/rules.py, then ./rules.py, then the packaged default" in help_text
    assert "WHITELIST_RULES_FILE, then whitelist_rules/whitelist_rules.py" in help_text
    assert "TRIGGERS_FILE, then triggers/triggers.py" in help_text


def test_check_without_files_uses_the_packaged_defaults(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(["check"], capsys)
    assert code == 0
    assert "  - always false [medium, WARN from MODE]" in out
    assert "whitelist rules (0)" in out
    assert "triggers (0)" in out


def test_check_finds_the_originals_layout(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(workdir, "rules/rules.py", RULES)
    write(
        workdir,
        "whitelist_rules/whitelist_rules.py",
        'whitelist_rules = [{"name": "w", "rule": lambda c, r: 0}]',
    )
    write(workdir, "triggers/triggers.py", 'triggers = [{"name": "t", "trigger": print}]')
    code, out, _ = run(["check"], capsys)
    assert code == 0
    assert f"rules (3) from {workdir / 'rules' / 'rules.py'}:" in out
    assert "whitelist rules (1)" in out
    assert "triggers (1)" in out


def test_check_takes_files_from_options_and_variables(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = write(workdir, "conf/r.py", RULES)
    wl = write(workdir, "conf/w.py", 'whitelist_rules = [{"name": "w", "rule": lambda c, r: 0}]')
    triggers = write(workdir, "conf/t.py", 'triggers = [{"name": "t", "trigger": print}]')
    code, out, _ = run(
        ["check", "--rules", str(rules), "--whitelist", str(wl), "--triggers", str(triggers)], capsys
    )
    assert code == 0
    assert f"whitelist rules (1) from {wl}" in out
    assert f"triggers (1) from {triggers}" in out
    code, out2, _ = run(
        ["check"], capsys, RULES_FILE=str(rules), WHITELIST_RULES_FILE=str(wl), TRIGGERS_FILE=str(triggers)
    )
    assert (code, out2) == (0, out)


def test_an_option_wins_over_its_variable(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = write(workdir, "r.py", RULES)
    code, out, _ = run(["check", "--rules", str(rules)], capsys, RULES_FILE=str(workdir / "missing.py"))
    assert code == 0
    assert f"rules (3) from {rules}" in out


def test_check_reports_every_problem_of_a_file_at_once(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = """
        rules = [
            {"name": "two arguments", "rule": lambda c, x: 1},
            {"name": "fine", "rule": lambda c: 0},
            {"rule": lambda c: 0},
            {"name": "no arguments", "rule": lambda: 0},
            {"name": "fine"},
            {"name": "keyword only", "rule": lambda *, c: 0},
        ]
    """
    rules = write(workdir, "bad.py", body)
    code, out, err = run(["check", "--rules", str(rules)], capsys)
    assert code == 2
    assert out == ""
    lines = err.splitlines()
    assert lines == [
        f"docker-enforcer: {rules}: rule #1 ('two arguments'): 'rule' takes (c, x), but is called with 1 "
        "argument(s) (container); write it as `lambda container: ...`",
        f"docker-enforcer: {rules}: rule #3: has no 'name' (a non-empty string naming the rule)",
        f"docker-enforcer: {rules}: rule #4 ('no arguments'): 'rule' takes no arguments, but is called with 1 "
        "argument(s) (container); write it as `lambda container: ...`",
        f"docker-enforcer: {rules}: rule #5 ('fine'): another rule has the same name; rule names must be unique",
        f"docker-enforcer: {rules}: rule #6 ('keyword only'): 'rule' takes (*, c), but is called with 1 "
        "argument(s) (container); write it as `lambda container: ...`",
    ]


def test_check_accepts_callables_that_take_one_argument_in_any_form(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = """
        import functools
        def two(c, limit=3):
            return c.position > limit
        class Rule:
            def __call__(self, c):
                return False
        rules = [
            {"name": "default", "rule": two},
            {"name": "varargs", "rule": lambda *a: 0},
            {"name": "partial", "rule": functools.partial(lambda limit, c: 0, 3)},
            {"name": "object", "rule": Rule()},
            {"name": "builtin", "rule": bool},
        ]
    """
    code, out, err = run(["check", "--rules", str(write(workdir, "ok.py", body))], capsys)
    assert (code, err) == (0, "")
    assert "rules (5)" in out


def test_whitelist_rules_and_triggers_are_checked_for_their_arguments(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wl = write(workdir, "w.py", 'whitelist_rules = [{"name": "w", "rule": lambda c: True}]')
    code, _, err = run(["check", "--whitelist", str(wl)], capsys)
    assert code == 2
    assert "takes (c), but is called with 2 argument(s) (container, rule_name)" in err
    triggers = write(workdir, "t.py", 'triggers = [{"name": "t", "trigger": lambda: None}]')
    code, _, err = run(["check", "--triggers", str(triggers)], capsys)
    assert code == 2
    assert "'trigger' takes no arguments, but is called with 1 argument(s) (verdict)" in err


def test_check_warns_about_an_empty_rule_list(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = write(workdir, "empty.py", "rules = []\n")
    code, out, _ = run(["check", "--rules", str(rules)], capsys)
    assert code == 0
    assert f"warning: {rules} defines no rules: nothing will ever be flagged" in out


def test_check_warns_about_a_kill_rule_in_a_warn_instance(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = write(workdir, "k.py", 'rules = [{"name": "k", "rule": lambda c: 0, "mode": "KILL"}]\n')
    code, out, _ = run(["check", "--rules", str(rules)], capsys)
    assert code == 0
    assert "warning: rule 'k' asks for KILL, but MODE is WARN: it only records" in out
    code, out, _ = run(["check", "--rules", str(rules)], capsys, MODE="KILL")
    assert "warning" not in out


def test_check_names_the_rules_that_read_exec_and_warns_when_exec_checks_are_off(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = write(
        workdir,
        "e.py",
        """
        from enforcer.library import select
        rules = select("no-privileged-exec") + [{"name": "plain", "rule": lambda c: c.name == "x"}]
        """,
    )
    code, out, _ = run(["check", "--rules", str(rules)], capsys)
    assert code == 0
    assert (
        "  - no privileged exec (no-privileged-exec, CIS 5.23) [critical, WARN from MODE, reads c.exec]"
        in out
    )
    assert "  - plain [medium, WARN from MODE]" in out
    assert "warning: 'no privileged exec' read c.exec, which is set only on exec checks" in out
    code, out, _ = run(["check", "--rules", str(rules)], capsys, RUN_EXEC_EVENTS="true")
    assert "reads c.exec" in out and "warning" not in out


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("rules = [\n  {'name': 'a', 'rule': lambda c: (}\n]\n", ":2: syntax error"),
        ("rules = [{'rule': lambda c: 0}]\n", ": rule #1: has no 'name'"),
        ("rules = [{'name': 'a', 'rule': 'c.position > 3'}]\n", ": rule #1 ('a'): 'rule' must be a callable"),
        (
            "rules = [{'name': 'a', 'rule': lambda c: 0}, {'name': 'a', 'rule': lambda c: 1}]\n",
            ": rule #2 ('a'): another rule has the same name",
        ),
        (
            "rules = [{'name': 'a', 'rule': lambda c: 0, 'severity': 'huge'}]\n",
            ": rule #1 ('a'): severity 'huge'",
        ),
        ("RULES = []\n", ": defines no `rules` list"),
    ],
)
def test_check_reports_the_precise_error_and_exits_2(
    workdir: Path, capsys: pytest.CaptureFixture[str], body: str, expected: str
) -> None:
    rules = write(workdir, "bad.py", body)
    code, out, err = run(["check", "--rules", str(rules)], capsys)
    assert code == 2
    assert out == ""
    assert one_error_line(err).startswith(f"docker-enforcer: {rules}{expected}")


def test_check_refuses_a_writable_rules_file(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = write(workdir, "rules.py", NOTHING_VIOLATED)
    rules.chmod(0o666)
    code, _, err = run(["check"], capsys)
    assert code == 2
    line = one_error_line(err)
    assert line.startswith(f"docker-enforcer: {workdir / 'rules.py'}: the file")
    assert f"chmod go-w {workdir / 'rules.py'}" in line
    code, _, err = run(["check"], capsys, ALLOW_WRITABLE_RULES="True")
    assert code == 0
    assert "WARNING" in err
    assert "chmod go-w" in err


def test_check_of_a_missing_file_exits_2(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["check", "--rules", "nowhere.py"], capsys)
    assert code == 2
    assert one_error_line(err) == "docker-enforcer: nowhere.py: no such file (given for the rules file)"


def test_check_needs_no_docker(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, _ = run(["check"], capsys, DOCKER_SOCKET="unix:///nonexistent/docker.sock")
    assert code == 0


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["--version"], {})
    assert caught.value.code == 0
    assert capsys.readouterr().out.strip() == f"docker-enforcer {__version__}"


def test_a_command_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main([], {})
    assert caught.value.code == 2


# -- audit --from (offline) ------------------------------------------------------------------------------------------
def test_audit_from_file_prints_a_table_and_exits_1(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = write(workdir, "r.py", RULES)
    code, out, _ = run(
        ["audit", "--rules", str(rules), "--from", str(ALL)], capsys, STOP_ON_FIRST_VIOLATION="no"
    )
    assert code == 1
    lines = out.splitlines()
    assert lines[0].split() == ["CONTAINER", "IMAGE", "VIOLATED", "RULE", "ERRORS", "WHITELISTED"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert set(rows) == {"plain", "limits", "binds_labels"}
    assert "must have memory limit" in rows["plain"]
    assert "broken: KeyError: 'NoSuchKey'" in rows["plain"]
    assert "no host binds" in rows["binds_labels"]


def test_audit_from_file_json(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = write(workdir, "r.py", RULES)
    code, out, err = run(
        ["audit", "--json", "--rules", str(rules), "--from", str(ALL)],
        capsys,
        STOP_ON_FIRST_VIOLATION="false",
        WHITE_LIST="binds_labels|no host binds",
    )
    assert code == 1
    assert "in use" not in err  # the files are named by `check` and `run` only
    report = json.loads(out)
    assert [item["name"] for item in report] == ["plain", "limits", "binds_labels"]
    assert all(set(item) == JSON_KEYS for item in report)
    by_name = {item["name"]: item for item in report}
    saved = {item["Name"]: item for item in json.loads(ALL.read_text())}
    assert by_name["plain"] == {
        "id": saved["/plain"]["Id"],
        "name": "plain",
        "image": "busybox",
        "violated_rules": ["must have memory limit"],
        "rule_errors": [{"rule": "broken", "error": "KeyError: 'NoSuchKey'"}],
        "whitelist_errors": [],
        "whitelisted": [],
        "exempt": None,
        "state": "running",
    }
    assert by_name["limits"]["violated_rules"] == []
    assert by_name["limits"]["image"] == "busybox:latest"
    assert by_name["binds_labels"]["whitelisted"] == ["no host binds"]
    assert by_name["binds_labels"]["violated_rules"] == ["must have memory limit"]


def test_audit_exits_0_when_nothing_is_violated(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = write(workdir, "r.py", NOTHING_VIOLATED)
    code, out, _ = run(["audit", "--json", "--rules", str(rules), "--from", str(ALL)], capsys)
    assert code == 0
    assert [item["violated_rules"] for item in json.loads(out)] == [[], [], []]


def test_rule_errors_alone_exit_4(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Nothing violated, but nothing was really checked either: not the 0 of a clean host."""
    rules = write(workdir, "r.py", 'rules = [{"name": "broken", "rule": lambda c: 1 / 0}]\n')
    code, out, _ = run(["audit", "--json", "--rules", str(rules), "--from", str(ALL)], capsys)
    assert code == 4
    assert all(item["rule_errors"][0]["rule"] == "broken" for item in json.loads(out))
    code, _, _ = run(
        ["audit", "--rules", str(rules), "--from", str(ALL)], capsys, RULE_ERRORS_ARE_VIOLATIONS="true"
    )
    assert code == 1


def test_audit_whitelists_from_the_environment(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = write(workdir, "r.py", 'rules = [{"name": "always", "rule": lambda c: True}]\n')
    code, out, _ = run(
        ["audit", "--json", "--rules", str(rules), "--from", str(ALL)], capsys, IMAGE_WHITE_LIST="busybox"
    )
    assert code == 0
    assert [item["exempt"] for item in json.loads(out)] == ["IMAGE_WHITE_LIST entry busybox"] * 3


def test_audit_never_judges_the_enforcers_own_container(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    own = json.loads(ALL.read_text())[0]["Id"]
    monkeypatch.setattr("enforcer.cli.own_container_id", lambda: own)
    rules = write(workdir, "r.py", 'rules = [{"name": "always", "rule": lambda c: True}]\n')
    code, out, _ = run(["audit", "--json", "--rules", str(rules), "--from", str(ALL)], capsys)
    assert code == 1
    report = {item["id"]: item for item in json.loads(out)}
    assert report[own]["exempt"] == "docker-enforcer's own container"
    assert report[own]["violated_rules"] == []
    assert sum(bool(item["violated_rules"]) for item in report.values()) == 2


@pytest.mark.parametrize("content", ["not json", '[{"Name": "/no-id"}]'])
def test_audit_from_a_bad_file_exits_2(
    workdir: Path, capsys: pytest.CaptureFixture[str], content: str
) -> None:
    saved = write(workdir, "saved.json", content)
    code, out, err = run(["audit", "--from", str(saved)], capsys)
    assert code == 2
    assert out == ""
    assert one_error_line(err).startswith(f"docker-enforcer: {saved}")


def test_audit_with_bad_settings_exits_2(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["audit", "--from", str(ALL)], capsys, IMAGE_WHITE_LIST="busybox,(")
    assert code == 2
    line = one_error_line(err)
    assert "IMAGE_WHITE_LIST" in line
    assert "'('" in line


def test_audit_with_a_bad_rules_file_exits_2(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = write(workdir, "r.py", "rules = [\n")
    code, _, err = run(["audit", "--rules", str(rules), "--from", str(ALL)], capsys)
    assert code == 2
    assert one_error_line(err).startswith(f"docker-enforcer: {rules}:")


# -- audit against an engine -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "socket",
    ["unix:///nonexistent/docker.sock", "tcp://127.0.0.1:9", "127.0.0.1:9"],
    ids=["unix", "tcp", "bare"],
)
def test_audit_exits_3_naming_the_socket_when_the_engine_is_unreachable(
    workdir: Path, capsys: pytest.CaptureFixture[str], socket: str
) -> None:
    code, out, err = run(["audit"], capsys, DOCKER_SOCKET=socket, DOCKER_REQ_TIMEOUT_S="5")
    assert code == 3
    assert out == ""
    line = one_error_line(err)
    expected = socket if "://" in socket else f"tcp://{socket}"
    assert f"cannot reach the Docker engine at {expected}" in line
    assert "DOCKER_SOCKET" in line


def running_ids(engine: Engine) -> set[str]:
    with engine.api() as api:
        return {c["Id"] for c in api.containers()}


def audit_engine_json(engine: Engine, capsys: pytest.CaptureFixture[str], *argv: str, **env: str) -> Any:
    code, out, _ = run(["audit", "--json", *argv], capsys, DOCKER_SOCKET=engine.url, **env)
    return code, json.loads(out)


def test_audit_of_the_engine_reports_and_stops_nothing(
    workdir: Path, capsys: pytest.CaptureFixture[str], clean_engine: Engine, run_container: RunContainer
) -> None:
    limited = run_container("limited", mem_limit="64m")
    unlimited = run_container("unlimited")
    write(workdir, "rules/rules.py", RULES)
    code, report = audit_engine_json(clean_engine, capsys)
    assert code == 1
    assert [item["name"] for item in report] == ["limited", "unlimited"]  # by start time
    by_name = {item["name"]: item for item in report}
    assert by_name["unlimited"]["violated_rules"] == ["must have memory limit"]
    assert by_name["unlimited"]["id"] == unlimited
    assert by_name["unlimited"]["image"] == "busybox:latest"
    assert by_name["limited"]["violated_rules"] == []
    assert by_name["limited"]["rule_errors"] == [{"rule": "broken", "error": "KeyError: 'NoSuchKey'"}]
    assert running_ids(clean_engine) == {limited, unlimited}

    code, _, _ = run(["audit"], capsys, DOCKER_SOCKET=clean_engine.url, MODE="KILL")
    assert code == 1
    assert running_ids(clean_engine) == {limited, unlimited}  # even with MODE=KILL


def test_audit_of_the_engine_table(
    workdir: Path, capsys: pytest.CaptureFixture[str], clean_engine: Engine, run_container: RunContainer
) -> None:
    run_container("table-row")
    write(workdir, "rules/rules.py", RULES)
    code, out, err = run(["audit"], capsys, DOCKER_SOCKET=clean_engine.url)
    assert code == 1
    lines = out.splitlines()
    assert lines[0].startswith("CONTAINER")
    assert lines[1].startswith("table-row")
    assert "busybox:latest" in lines[1]
    assert "gathering facts" not in out  # no progress bar in the report; stderr is not a terminal here


def test_audit_of_an_empty_engine_exits_0(
    workdir: Path, capsys: pytest.CaptureFixture[str], clean_engine: Engine
) -> None:
    code, report = audit_engine_json(clean_engine, capsys)
    assert (code, report) == (0, [])


def test_audit_from_saved_docker_inspect_matches_the_live_audit(
    workdir: Path, capsys: pytest.CaptureFixture[str], clean_engine: Engine, run_container: RunContainer
) -> None:
    ids = [run_container(f"saved-{n}", **kw) for n, kw in enumerate([{}, {"mem_limit": "32m"}, {}])]
    write(workdir, "rules/rules.py", RULES)
    saved = write(workdir, "saved.json", clean_engine.docker("inspect", *ids).stdout)
    live_code, live = audit_engine_json(clean_engine, capsys)
    saved_code, offline = audit_engine_json(clean_engine, capsys, "--from", str(saved))
    assert (live_code, saved_code) == (1, 1)
    assert offline == live


def test_python_m_enforcer_audit_against_the_engine(
    tmp_path: Path, clean_engine: Engine, run_container: RunContainer
) -> None:
    cid = run_container("via-process")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "WHITE_LIST", "IMAGE_WHITE"))}
    env.update({"PYTHONPATH": str(REPO), "DOCKER_SOCKET": clean_engine.url})
    done = subprocess.run(
        [sys.executable, "-m", "enforcer", "audit", "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    (item,) = json.loads(done.stdout)
    assert (item["id"], item["name"], item["violated_rules"]) == (cid, "via-process", [])


def test_audit_judges_containers_created_and_never_started(
    workdir: Path, capsys: pytest.CaptureFixture[str], clean_engine: Engine, busybox: str
) -> None:
    """A `docker create`d container is judged on its configuration, as at its create event: rules that need
    metrics or position wait for its start (no rule error), and it is never started by the audit."""
    clean_engine.docker("create", "--name", "made-not-run", busybox, "sleep", "60")
    write(
        workdir,
        "rules/rules.py",
        """\
rules = [
    {"name": "must have memory limit", "rule": lambda c: c.params["HostConfig"]["Memory"] == 0},
    {"name": "no more than 0", "rule": lambda c: c.position >= 0},
    {"name": "low memory use", "rule": lambda c: c.metrics["memory_stats"]["usage"] > 0},
]
""",
    )
    code, report = audit_engine_json(clean_engine, capsys, STOP_ON_FIRST_VIOLATION="False")
    assert code == 1
    [item] = report
    assert (item["name"], item["state"]) == ("made-not-run", "created")
    assert item["violated_rules"] == ["must have memory limit"]
    assert item["rule_errors"] == []
    assert running_ids(clean_engine) == set()
    code, out, _ = run(["audit"], capsys, DOCKER_SOCKET=clean_engine.url)
    assert "made-not-run (created)" in out


def test_check_shows_the_blast_radius_limit_and_where_it_comes_from(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = write(workdir, "mine.py", RULES)
    assert (
        "max new stops 7 (MAX_NEW_STOPS)"
        in run(["check", "--rules", str(rules)], capsys, MAX_NEW_STOPS="7")[1]
    )
    rules.write_text(RULES + "\nmax_new_stops = 50\n")
    assert (
        "max new stops 50 (max_new_stops in the rules file)"
        in run(["check", "--rules", str(rules)], capsys)[1]
    )
    rules.write_text(RULES + "\nmax_new_stops = 'many'\n")
    code, _, err = run(["check", "--rules", str(rules)], capsys)
    assert code == 2 and "`max_new_stops` must be a whole number of at least 0" in err
