"""Loading the user's files: where they are found, what is refused, and errors that say precisely why."""

from __future__ import annotations

import logging
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from enforcer.judge.loader import (
    DEFAULTS_DIR,
    RulesFileError,
    load_rules,
    load_triggers,
    load_whitelist_rules,
    resolve,
)
from enforcer.judge.policy import load_policy
from enforcer.judge.rules import Severity
from enforcer.settings import Mode, Settings


@pytest.fixture(autouse=True)
def _propagating_logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """caplog listens on the root logger; `enforcer` may have been set not to propagate by the CLI."""
    monkeypatch.setattr(logging.getLogger("enforcer"), "propagate", True)
    yield


def write(path: Path, text: str, mode: int = 0o644) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.parent.chmod(0o755)
    path.write_text(textwrap.dedent(text))
    path.chmod(mode)
    return path


def rules_file(tmp_path: Path, body: str, name: str = "rules.py") -> Path:
    return write(tmp_path / "user" / name, body)


def error_of(path: Path, loader=load_rules) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(RulesFileError) as caught:
        loader(path)
    return str(caught.value)


# -- where files are found --------------------------------------------------------------------------------
def test_without_files_the_packaged_defaults_are_used(tmp_path: Path) -> None:
    for kind in ("rules", "whitelist_rules", "triggers"):
        assert resolve(kind, None, tmp_path) == DEFAULTS_DIR / f"{kind}.py"


def test_rules_folder_of_the_original_layout_comes_first(tmp_path: Path) -> None:
    write(tmp_path / "rules.py", "rules = []\n")
    assert resolve("rules", None, tmp_path) == tmp_path / "rules.py"
    write(tmp_path / "rules" / "rules.py", "rules = []\n")
    assert resolve("rules", None, tmp_path) == tmp_path / "rules" / "rules.py"


def test_whitelist_rules_and_triggers_in_their_folders(tmp_path: Path) -> None:
    write(tmp_path / "whitelist_rules" / "whitelist_rules.py", "whitelist_rules = []\n")
    write(tmp_path / "triggers" / "triggers.py", "triggers = []\n")
    write(tmp_path / "triggers.py", "triggers = []\n")  # only rules.py has a top-level fallback
    assert resolve("whitelist_rules", None, tmp_path) == tmp_path / "whitelist_rules" / "whitelist_rules.py"
    assert resolve("triggers", None, tmp_path) == tmp_path / "triggers" / "triggers.py"


def test_resolution_is_relative_to_the_working_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "rules" / "rules.py", "rules = []\n")
    monkeypatch.chdir(tmp_path)
    assert resolve("rules", None).resolve() == (tmp_path / "rules" / "rules.py").resolve()


def test_an_explicit_file_wins(tmp_path: Path) -> None:
    write(tmp_path / "rules" / "rules.py", "rules = []\n")
    mine = write(tmp_path / "elsewhere" / "mine.py", "rules = []\n")
    assert resolve("rules", mine, tmp_path) == mine


def test_an_explicit_file_that_does_not_exist_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(RulesFileError, match="no such file"):
        resolve("rules", tmp_path / "missing.py", tmp_path)


def test_policy_uses_the_variables_and_the_working_dir(tmp_path: Path) -> None:
    write(tmp_path / "rules" / "rules.py", 'rules = [{"name": "from folder", "rule": lambda c: False}]\n')
    wl = write(tmp_path / "conf" / "wl.py", 'whitelist_rules = [{"name": "w", "rule": lambda c, r: False}]\n')
    policy = load_policy(
        Settings.from_env({"WHITELIST_RULES_FILE": str(wl), "IMAGE_WHITE_LIST": "busybox"}), cwd=tmp_path
    )
    assert [r.name for r in policy.rules] == ["from folder"]
    assert [w.name for w in policy.whitelist.rules] == ["w"]
    assert policy.triggers == ()
    assert policy.paths() == {
        "rules": str(tmp_path / "rules" / "rules.py"),
        "whitelist_rules": str(wl),
        "triggers": str(DEFAULTS_DIR / "triggers.py"),
    }
    assert [str(e) for e in policy.whitelist.images] == ["busybox"]
    assert policy.whitelist.names == ()  # no name is exempt by default


def test_policy_version_follows_the_files_content(tmp_path: Path) -> None:
    path = write(tmp_path / "rules" / "rules.py", 'rules = [{"name": "a", "rule": lambda c: False}]\n')
    first = load_policy(Settings(), cwd=tmp_path).version
    assert load_policy(Settings(), cwd=tmp_path).version == first
    write(path, 'rules = [{"name": "b", "rule": lambda c: False}]\n')
    assert load_policy(Settings(), cwd=tmp_path).version != first


def test_the_packaged_defaults_load() -> None:
    assert [r.name for r in load_rules(DEFAULTS_DIR / "rules.py").items] == ["always false"]
    assert load_whitelist_rules(DEFAULTS_DIR / "whitelist_rules.py").items == ()
    assert load_triggers(DEFAULTS_DIR / "triggers.py").items == ()


# -- permissions --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", [0o664, 0o646, 0o666])
def test_a_file_writable_by_group_or_others_is_refused(tmp_path: Path, mode: int) -> None:
    path = write(tmp_path / "user" / "rules.py", "rules = []\n", mode)
    message = error_of(path)
    assert str(path) in message
    assert f"chmod go-w {path}" in message
    assert "ALLOW_WRITABLE_RULES" in message


def test_a_folder_writable_by_group_or_others_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "user" / "rules.py", "rules = []\n")
    path.parent.chmod(0o777)
    message = error_of(path)
    assert f"folder {path.parent}" in message
    assert f"chmod go-w {path.parent}" in message


def test_writable_files_are_loaded_with_a_warning_when_allowed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(tmp_path / "user" / "rules.py", 'rules = [{"name": "a", "rule": lambda c: 0}]\n', 0o666)
    with caplog.at_level(logging.WARNING, logger="enforcer.judge.loader"):
        loaded = load_rules(path, allow_writable=True)
    assert [r.name for r in loaded.items] == ["a"]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert str(path) in warnings[0].getMessage()
    assert "chmod go-w" in warnings[0].getMessage()


def test_allow_writable_rules_reaches_the_loader(tmp_path: Path) -> None:
    write(tmp_path / "rules" / "rules.py", "rules = []\n", 0o666)
    with pytest.raises(RulesFileError, match="chmod go-w"):
        load_policy(Settings.from_env({}), cwd=tmp_path)
    assert load_policy(Settings.from_env({"ALLOW_WRITABLE_RULES": "yes"}), cwd=tmp_path).rules == ()


# -- errors that name the file, the line, the item ------------------------------------------------------
def test_a_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = rules_file(tmp_path, 'rules = [\n    {"name": "a", "rule": lambda c: c.params[}\n]\n')
    message = error_of(path)
    assert message.startswith(f"{path}:2: syntax error")


def test_an_exception_while_loading_names_file_and_line(tmp_path: Path) -> None:
    path = rules_file(tmp_path, "import os\n\nLIMIT = 1 / 0\nrules = []\n")
    message = error_of(path)
    assert message.startswith(f"{path}:3: ZeroDivisionError")


def test_a_file_without_a_rules_list(tmp_path: Path) -> None:
    path = rules_file(tmp_path, "rule = []\n")
    assert error_of(path) == f"{path}: defines no `rules` list (expected `rules = [...]`)"


def test_rules_must_be_a_list(tmp_path: Path) -> None:
    path = rules_file(tmp_path, 'rules = {"name": "a", "rule": lambda c: 0}\n')
    assert "`rules` must be a list, not dict" in error_of(path)


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ('{"rule": lambda c: 0}', "rule #2: has no 'name'"),
        ('{"name": "", "rule": lambda c: 0}', "rule #2: has no 'name'"),
        ('{"name": "   ", "rule": lambda c: 0}', "rule #2: has no 'name'"),
        ('{"name": 7, "rule": lambda c: 0}', "rule #2: has no 'name'"),
        ('{"name": "b"}', "rule #2 ('b'): 'rule' must be a callable such as a lambda, not NoneType"),
        (
            '{"name": "b", "rule": True}',
            "rule #2 ('b'): 'rule' must be a callable such as a lambda, not bool",
        ),
        ('{"name": "b", "rule": "c.position > 3"}', "rule #2 ('b'): 'rule' must be a callable"),
        ('("b", lambda c: 0)', "rule #2: must be a dict"),
        ('{"name": "a", "rule": lambda c: 1}', "rule #2 ('a'): another rule has the same name"),
        ('{"name": "b", "rule": lambda c: 0, "severity": "urgent"}', "rule #2 ('b'): severity 'urgent'"),
        (
            '{"name": "b", "rule": lambda c: 0, "mode": "STOP"}',
            "rule #2 ('b'): mode 'STOP' is not WARN or KILL",
        ),
        (
            '{"name": "b", "rule": lambda c: 0, "description": 3}',
            "rule #2 ('b'): 'description' must be a string",
        ),
        (
            '{"name": "b", "rule": lambda c: 0, "prevent": "yes"}',
            "rule #2 ('b'): 'prevent' must be True or False",
        ),
        ('{"name": "b", "rule": lambda c: 0, "sevrity": "high"}', "rule #2 ('b'): unknown key(s) sevrity"),
    ],
)
def test_a_bad_rule_is_named(tmp_path: Path, item: str, expected: str) -> None:
    path = rules_file(tmp_path, f'rules = [\n    {{"name": "a", "rule": lambda c: 0}},\n    {item},\n]\n')
    message = error_of(path)
    assert message.startswith(f"{path}: {expected}"), message


def test_optional_keys(tmp_path: Path) -> None:
    path = rules_file(
        tmp_path,
        """
        rules = [
            {"name": "plain", "rule": lambda c: False},
            {
                "name": "described",
                "rule": lambda c: False,
                "description": "Why it matters.",
                "severity": "HIGH",
                "mode": "warn",
            },
            {"name": "killing", "rule": lambda c: False, "severity": "critical", "mode": "KILL"},
        ]
        """,
    )
    plain, described, killing = load_rules(path).items
    assert (plain.description, plain.severity, plain.mode) == ("", Severity.MEDIUM, None)
    assert (described.description, described.severity, described.mode) == (
        "Why it matters.",
        Severity.HIGH,
        Mode.WARN,
    )
    assert (killing.severity, killing.mode) == (Severity.CRITICAL, Mode.KILL)
    assert described.effective_mode(Mode.KILL) is Mode.WARN
    assert plain.effective_mode(Mode.KILL) is Mode.KILL


@pytest.mark.parametrize("severity", ["info", "low", "medium", "high", "critical"])
def test_every_severity(tmp_path: Path, severity: str) -> None:
    path = rules_file(tmp_path, f'rules = [{{"name": "a", "rule": lambda c: 0, "severity": "{severity}"}}]\n')
    assert str(load_rules(path).items[0].severity) == severity


def test_rules_files_are_plain_python_with_imports_and_helpers(tmp_path: Path) -> None:
    write(tmp_path / "user" / "limits_for_loader_test.py", "MAX = 3\n")
    path = rules_file(
        tmp_path,
        """
        import re
        from limits_for_loader_test import MAX

        def too_many(c):
            return c.position >= MAX

        rules = [{"name": "no more than %d" % MAX, "rule": too_many}]
        """,
    )
    (rule,) = load_rules(path).items
    assert rule.name == "no more than 3"


def test_loaded_file_keeps_path_text_and_digest(tmp_path: Path) -> None:
    body = 'rules = [{"name": "a", "rule": lambda c: 0}]\n'
    path = rules_file(tmp_path, body)
    loaded = load_rules(path)
    assert loaded.path == str(path)
    assert loaded.text == body
    assert len(loaded.sha256) == 64


def test_whitelist_rules_file(tmp_path: Path) -> None:
    path = write(
        tmp_path / "user" / "whitelist_rules.py",
        'whitelist_rules = [{"name": "trusted team", "rule": lambda c, rule: c.labels.get("team") == "ops"}]\n',
    )
    (wl,) = load_whitelist_rules(path).items
    assert wl.name == "trusted team"
    bad = write(tmp_path / "user" / "bad_wl.py", 'whitelist_rules = [{"name": "x", "rule": None}]\n')
    assert f"{bad}: whitelist rule #1 ('x'): 'rule' must be a callable" in error_of(bad, load_whitelist_rules)
    missing = write(tmp_path / "user" / "missing_wl.py", "rules = []\n")
    assert "defines no `whitelist_rules` list" in error_of(missing, load_whitelist_rules)


def test_triggers_file(tmp_path: Path) -> None:
    path = write(tmp_path / "user" / "triggers.py", 'triggers = [{"name": "log", "trigger": print}]\n')
    (trigger,) = load_triggers(path).items
    assert trigger.name == "log"
    bad = write(tmp_path / "user" / "bad_triggers.py", 'triggers = [{"trigger": print}]\n')
    assert f"{bad}: trigger #1: has no 'name'" in error_of(bad, load_triggers)
