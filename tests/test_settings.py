"""Settings from the environment: the original's variables and defaults, and one clear error per bad value.

Bad values are tested through `enforcer.cli.main(argv, environ)` (exit status 2, one line naming the
variable, the value and what is accepted) and through a real `python -m enforcer check` process, which
must never print a traceback.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from enforcer.cli import main
from enforcer.settings import Files, Mode, Settings, SettingsError, WhitelistEntry, parse_whitelist

REPO = Path(__file__).resolve().parent.parent

BOOLEANS = {
    "RUN_PERIODIC": ("run_periodic", True),
    "RUN_START_EVENTS": ("run_start_events", False),
    "RUN_UPDATE_EVENTS": ("run_update_events", False),
    "RUN_RENAME_EVENTS": ("run_rename_events", False),
    "IMMEDIATE_PERIODICAL_START": ("immediate_periodical_start", False),
    "CACHE_PARAMS": ("cache_params", True),
    "DISABLE_PARAMS": ("disable_params", False),
    "DISABLE_METRICS": ("disable_metrics", False),
    "STOP_ON_FIRST_VIOLATION": ("stop_on_first_violation", True),
    "RULE_ERRORS_ARE_VIOLATIONS": ("rule_errors_are_violations", False),
}
TRUE_SPELLINGS = ("True", "true", "TRUE", "yes", "Yes", "on", "ON", "1", " true ")
FALSE_SPELLINGS = ("False", "false", "FALSE", "no", "NO", "off", "Off", "0")


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """`main` configures the `enforcer` logger; put it back so other tests see the usual logging."""
    logger = logging.getLogger("enforcer")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    yield
    logger.handlers[:], logger.level, logger.propagate = saved


@pytest.fixture
def empty_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working dir without rules files: the packaged defaults are used."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def check_fails(environ: dict[str, str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run `docker-enforcer check`, expect exit 2, return its one line of error."""
    assert main(["check"], environ) == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


# -- defaults ---------------------------------------------------------------------------------------------
def test_defaults_are_the_originals() -> None:
    s = Settings.from_env({})
    assert s.mode is Mode.WARN
    assert s.run_periodic is True
    assert s.run_start_events is False
    assert s.run_update_events is False
    assert s.run_rename_events is False
    assert s.check_interval_s == 600
    assert s.immediate_periodical_start is False
    assert s.docker_socket == "unix:///var/run/docker.sock"
    assert s.docker_req_timeout_s == 30
    assert s.cache_params is True
    assert s.disable_params is False
    assert s.disable_metrics is False
    assert s.stop_on_first_violation is True
    assert s.rule_errors_are_violations is False
    assert s.log_level == "INFO"
    assert (
        s.white_list == ()
    )  # deliberately not the original's docker-enforcer,docker_enforcer (a name anyone picks)
    assert all(e.rule is None for e in s.white_list)
    assert s.image_white_list == ()
    assert s.files == Files()
    assert s.ignored_variables == ()


def test_an_empty_value_means_the_default() -> None:
    s = Settings.from_env({"MODE": "", "CHECK_INTERVAL_S": " ", "RUN_PERIODIC": "", "LOG_LEVEL": ""})
    assert (s.mode, s.check_interval_s, s.run_periodic, s.log_level) == (Mode.WARN, 600, True, "INFO")


def test_default_whitelist_exempts_no_name() -> None:
    """A container named docker_enforcer is judged like any other (the original's default exempted it)."""
    assert not any(e.matches("docker_enforcer") for e in Settings.from_env({}).white_list)


def test_a_whitelist_the_user_sets_matches_whole_names() -> None:
    names = Settings.from_env({"WHITE_LIST": "docker-enforcer,docker_enforcer"}).white_list
    assert any(e.matches("docker-enforcer") for e in names)
    assert any(e.matches("docker_enforcer") for e in names)
    assert not any(e.matches("docker-enforcer-2") for e in names)
    assert not any(e.matches("my-docker-enforcer") for e in names)


# -- booleans ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("variable", sorted(BOOLEANS))
@pytest.mark.parametrize("spelling", TRUE_SPELLINGS)
def test_booleans_accept_the_usual_spellings_of_true(variable: str, spelling: str) -> None:
    attribute, _ = BOOLEANS[variable]
    assert getattr(Settings.from_env({variable: spelling}), attribute) is True


@pytest.mark.parametrize("variable", sorted(BOOLEANS))
@pytest.mark.parametrize("spelling", FALSE_SPELLINGS)
def test_booleans_accept_the_usual_spellings_of_false(variable: str, spelling: str) -> None:
    attribute, _ = BOOLEANS[variable]
    assert getattr(Settings.from_env({variable: spelling}), attribute) is False


@pytest.mark.parametrize("variable", sorted(BOOLEANS))
def test_boolean_defaults(variable: str) -> None:
    attribute, default = BOOLEANS[variable]
    assert getattr(Settings.from_env({}), attribute) is default


def test_the_originals_lowercase_true_no_longer_turns_sweeps_off() -> None:
    assert Settings.from_env({"RUN_PERIODIC": "true"}).run_periodic is True


@pytest.mark.parametrize("value", ["maybe", "2", "-1", "y", "n", "enabled", "truee", "T"])
@pytest.mark.parametrize("variable", ["RUN_PERIODIC", "DISABLE_METRICS", "STOP_ON_FIRST_VIOLATION"])
def test_a_bad_boolean_exits_2_naming_variable_value_and_accepted(
    variable: str, value: str, empty_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    line = check_fails({variable: value}, capsys)
    assert variable in line
    assert repr(value) in line
    for accepted in ("true", "false", "yes", "no", "on", "off", "1", "0"):
        assert accepted in line


# -- numbers, MODE, LOG_LEVEL ------------------------------------------------------------------------------
@pytest.mark.parametrize("variable", ["CHECK_INTERVAL_S", "DOCKER_REQ_TIMEOUT_S"])
def test_intervals_take_positive_whole_numbers(variable: str) -> None:
    s = Settings.from_env({variable: "15"})
    assert (s.check_interval_s if variable == "CHECK_INTERVAL_S" else s.docker_req_timeout_s) == 15


@pytest.mark.parametrize("value", ["abc", "0", "-5", "1.5", "10s", "1e3"])
@pytest.mark.parametrize("variable", ["CHECK_INTERVAL_S", "DOCKER_REQ_TIMEOUT_S"])
def test_a_bad_interval_exits_2(
    variable: str, value: str, empty_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    line = check_fails({variable: value}, capsys)
    assert variable in line
    assert repr(value) in line
    assert "positive whole number" in line


@pytest.mark.parametrize(("value", "mode"), [("WARN", Mode.WARN), ("warn", Mode.WARN), ("Kill", Mode.KILL)])
def test_mode_in_any_case(value: str, mode: Mode) -> None:
    assert Settings.from_env({"MODE": value}).mode is mode


def test_an_unknown_mode_exits_2(empty_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = check_fails({"MODE": "stop"}, capsys)
    assert "MODE" in line
    assert "'stop'" in line
    assert "WARN" in line
    assert "KILL" in line


@pytest.mark.parametrize(
    ("value", "level"),
    [("debug", "DEBUG"), ("INFO", "INFO"), ("Warning", "WARNING"), ("warn", "WARNING"), ("error", "ERROR")],
)
def test_log_level_in_any_case(value: str, level: str) -> None:
    assert Settings.from_env({"LOG_LEVEL": value}).log_level == level


def test_an_unknown_log_level_exits_2(empty_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = check_fails({"LOG_LEVEL": "verbose"}, capsys)
    assert "LOG_LEVEL" in line
    assert "'verbose'" in line
    assert "DEBUG" in line
    assert "ERROR" in line


def test_settings_error_names_variable_and_value() -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"CHECK_INTERVAL_S": "0"})
    assert caught.value.variable == "CHECK_INTERVAL_S"
    assert caught.value.value == "0"


# -- DOCKER_SOCKET ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "url"),
    [
        ("unix:///var/run/docker.sock", "unix:///var/run/docker.sock"),
        ("unix:///tmp/other.sock", "unix:///tmp/other.sock"),
        ("tcp://10.20.30.40:2375", "tcp://10.20.30.40:2375"),
        ("10.20.30.40:2375", "tcp://10.20.30.40:2375"),
        ("docker-host.example:2376", "tcp://docker-host.example:2376"),
        ("/var/run/docker.sock", "unix:///var/run/docker.sock"),
    ],
)
def test_docker_socket_forms(value: str, url: str) -> None:
    assert Settings.from_env({"DOCKER_SOCKET": value}).docker_socket == url


@pytest.mark.parametrize("value", ["docker-host", "10.20.30.40:", "host:port"])
def test_a_bad_docker_socket_exits_2(value: str, empty_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = check_fails({"DOCKER_SOCKET": value}, capsys)
    assert "DOCKER_SOCKET" in line
    assert repr(value) in line
    assert "unix://" in line
    assert "tcp://" in line


# -- whitelists ----------------------------------------------------------------------------------------------
def test_white_list_is_comma_separated_with_optional_rule() -> None:
    s = Settings.from_env(
        {
            "WHITE_LIST": "docker.*, docker-enforcer|steal socket ,docker.*|steal socket",
            "IMAGE_WHITE_LIST": "alpine",
        }
    )
    assert [(e.pattern, e.rule) for e in s.white_list] == [
        ("docker.*", None),
        ("docker-enforcer", "steal socket"),
        ("docker.*", "steal socket"),
    ]
    assert [(e.pattern, e.rule) for e in s.image_white_list] == [("alpine", None)]


def test_a_whitelist_entry_is_split_on_the_first_pipe_only() -> None:
    (entry,) = parse_whitelist("WHITE_LIST", "web.*|no a|b rule")
    assert (entry.pattern, entry.rule) == ("web.*", "no a|b rule")


def test_a_pipe_is_not_an_entry_separator() -> None:
    # The original README says entries are separated by '|'; the code splits on commas.
    entries = parse_whitelist("WHITE_LIST", "a|b")
    assert [(e.pattern, e.rule) for e in entries] == [("a", "b")]


def test_empty_entries_are_skipped_and_an_empty_list_replaces_the_default() -> None:
    assert parse_whitelist("WHITE_LIST", " , ,") == ()
    assert Settings.from_env({"WHITE_LIST": ""}).white_list == ()


def test_whitelist_patterns_match_whole_names() -> None:
    entry = WhitelistEntry("web.*")
    assert entry.matches("web")
    assert entry.matches("web-1")
    assert not entry.matches("my-web")
    assert not WhitelistEntry("web").matches("web-1")


@pytest.mark.parametrize("variable", ["WHITE_LIST", "IMAGE_WHITE_LIST"])
def test_an_invalid_regex_exits_2_naming_variable_and_entry(
    variable: str, empty_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    line = check_fails({variable: "good.*,bad[|some rule"}, capsys)
    assert variable in line
    assert "'bad[|some rule'" in line
    assert "regular expression" in line


# -- files ---------------------------------------------------------------------------------------------------
def test_file_variables() -> None:
    s = Settings.from_env(
        {
            "RULES_FILE": "/etc/enforcer/rules.py",
            "WHITELIST_RULES_FILE": "wl.py",
            "TRIGGERS_FILE": "/t.py",
            "ALLOW_WRITABLE_RULES": "True",
        }
    )
    assert s.files == Files(Path("/etc/enforcer/rules.py"), Path("wl.py"), Path("/t.py"), allow_writable=True)


# -- the authorization-plugin variables -------------------------------------------------------------------
@pytest.mark.parametrize("variable", ["LOG_AUTHZ_REQUESTS", "DEFAULT_ACTION_ALLOW"])
@pytest.mark.parametrize("value", ["True", "False", "anything"])
def test_authz_variables_are_accepted_and_ignored_with_one_warning(
    variable: str, value: str, empty_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert Settings.from_env({variable: value}).ignored_variables == (variable,)
    assert main(["check"], {variable: value}) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if "WARNING" in line]
    assert len(warnings) == 1
    assert variable in warnings[0]
    assert "ignored" in warnings[0]


def test_both_authz_variables_give_one_warning_each(
    empty_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check"], {"LOG_AUTHZ_REQUESTS": "True", "DEFAULT_ACTION_ALLOW": "False"}) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if "WARNING" in line]
    assert len(warnings) == 2
    assert "LOG_AUTHZ_REQUESTS is ignored" in warnings[0]
    assert "DEFAULT_ACTION_ALLOW is ignored" in warnings[1]


# -- the public view --------------------------------------------------------------------------------------
def test_public_settings_hide_the_api_token() -> None:
    public = Settings.from_env({"API_TOKEN": "s3cret-token", "MODE": "kill"}).public()
    assert "s3cret-token" not in repr(public)
    assert public["api_token_set"] is True
    assert public["mode"] == "KILL"
    assert "s3cret-token" not in repr(Settings.from_env({"API_TOKEN": "s3cret-token"}))


# -- a real process: one line, never a traceback -----------------------------------------------------------
@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("MODE", "destroy"),
        ("LOG_LEVEL", "loud"),
        ("CHECK_INTERVAL_S", "ten"),
        ("CHECK_INTERVAL_S", "-1"),
        ("RUN_PERIODIC", "maybe"),
        ("WHITE_LIST", "(unclosed"),
        ("DOCKER_SOCKET", "nowhere"),
    ],
)
@pytest.mark.external  # a docker-enforcer process
def test_python_m_enforcer_prints_one_line_and_no_traceback(
    variable: str, value: str, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("MODE", "LOG_LEVEL", "WHITE_LIST")}
    env.update({"PYTHONPATH": str(REPO), variable: value})
    done = subprocess.run(
        [sys.executable, "-m", "enforcer", "check"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1
    assert variable in done.stderr
    assert repr(value) in done.stderr


# -- NICE ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("value", "nice"), [("", None), ("-10", -10), (" 5 ", 5), ("-20", -20), ("19", 19)])
def test_nice_is_a_nice1_value(value: str, nice: int | None) -> None:
    assert Settings.from_env({"NICE": value}).nice == nice


@pytest.mark.parametrize("value", ["high", "-21", "20", "1.5"])
def test_a_nice_out_of_range_names_the_range(value: str) -> None:
    with pytest.raises(SettingsError, match=r"NICE=.* from -20 \(served first\) to 19"):
        Settings.from_env({"NICE": value})


def test_allowed_hosts_are_names_or_star() -> None:
    assert Settings.from_env({}).allowed_hosts == ()
    assert Settings.from_env({"ALLOWED_HOSTS": "Enforcer.Example.com., ci-7"}).allowed_hosts == (
        "enforcer.example.com",
        "ci-7",
    )
    assert Settings.from_env({"ALLOWED_HOSTS": "*"}).allowed_hosts == ("*",)
    for bad in ("*,ci-7", "http://x", "a b"):
        with pytest.raises(SettingsError, match="ALLOWED_HOSTS"):
            Settings.from_env({"ALLOWED_HOSTS": bad})
