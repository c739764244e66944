"""Loading the user's files: where they are found, what is refused, and errors that say precisely why."""

from __future__ import annotations

import importlib.util
import logging
import os
import py_compile
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

import enforcer.judge
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
from enforcer.judge.user_imports import OWN_PACKAGE, FolderGuard, SourceOnlyLoader
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


# -- the whole chain, the way sudo and ssh check theirs (issue 19) -----------------------------------------
NOBODY = 65534
GOOD_RULES = 'rules = [{"name": "good", "rule": lambda c: False}]\n'


def open_to_nobody(tmp_path: Path) -> None:
    """pytest's folders are 0700: let uid 65534 reach tmp_path, as it reaches a deployment's folders."""
    for folder in (tmp_path, tmp_path.parent):
        folder.chmod(0o755)


def as_nobody(script: str) -> None:
    subprocess.run(["sh", "-ec", script], user=NOBODY, group=NOBODY, check=True, timeout=10)


@pytest.mark.external  # sh as nobody
def test_the_reported_attack_a_folder_swapped_under_a_parent_others_may_write(tmp_path: Path) -> None:
    """A rules folder whose parent anyone may write: `mv sub sub.old; mkdir sub` by an unprivileged user
    put their code where root would run it. Refused before the swap, and after it."""
    open_to_nobody(tmp_path)
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    path = write(shared / "sub" / "rules.py", GOOD_RULES)  # file and folder as the old check wanted them
    message = error_of(path)
    assert message.startswith(
        f"{path}: the folder {shared} is writable by group and others, owner uid 0 (root), mode drwxrwxrwx (0777)"
    )
    assert f"fix with `chmod go-w {shared}`" in message

    marker = tmp_path / "ran-as-root"
    as_nobody(
        f"cd {shared} && mv sub sub.old && mkdir sub && chmod 755 sub && "
        f'printf \'open("{marker}", "w").close()\\nrules = []\\n\' > sub/rules.py'
    )
    message = error_of(path)
    assert f"the folder {shared} is writable" in message
    assert f"the folder {shared / 'sub'} is owned by uid {NOBODY} (nobody)" in message
    assert f"fix with `chown root {shared / 'sub'}`" in message
    assert f"the file {path} is owned by uid {NOBODY}" in message
    assert not marker.exists()


def test_a_symlink_in_a_world_writable_folder_is_refused(tmp_path: Path) -> None:
    real = write(tmp_path / "etc" / "rules.py", GOOD_RULES)
    drop = tmp_path / "drop"
    drop.mkdir(mode=0o777)
    drop.chmod(0o777)
    (drop / "rules.py").symlink_to(real)
    message = error_of(drop / "rules.py")
    assert f"the folder {drop} is writable by group and others" in message
    assert f"chmod go-w {drop}" in message


@pytest.mark.parametrize("owned", ["file", "folder"])
def test_a_file_or_folder_owned_by_another_user_is_refused(tmp_path: Path, owned: str) -> None:
    path = write(tmp_path / "user" / "rules.py", GOOD_RULES)
    target = path if owned == "file" else path.parent
    os.chown(target, NOBODY, NOBODY)
    message = error_of(path)
    mode = "-rw-r--r-- (0644)" if owned == "file" else "drwxr-xr-x (0755)"
    assert f"the {owned} {target} is owned by uid {NOBODY} (nobody), mode {mode}" in message
    assert f"fix with `chown root {target}`" in message
    assert "would run as root" in message


def test_whitelist_rules_and_triggers_are_checked_the_same_way(tmp_path: Path) -> None:
    wl = write(tmp_path / "wl" / "whitelist_rules.py", "whitelist_rules = []\n")
    triggers = write(tmp_path / "tr" / "triggers.py", "triggers = []\n")
    for path in (wl, triggers):
        os.chown(path.parent, NOBODY, NOBODY)
    assert f"the folder {wl.parent} is owned by uid {NOBODY}" in error_of(wl, load_whitelist_rules)
    assert f"the folder {triggers.parent} is owned by uid {NOBODY}" in error_of(triggers, load_triggers)


def test_a_group_writable_helper_imported_by_the_rules_file_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "helper-ran"
    helper = write(
        tmp_path / "user" / "helper_gw.py", f"open({str(marker)!r}, 'w').close()\nMAX = 3\n", 0o664
    )
    path = rules_file(tmp_path, "import helper_gw\nrules = []\n")
    message = error_of(path)
    assert message.startswith(f"{path}:1: imports {helper}: the file {helper} is writable by group")
    assert f"fix with `chmod go-w {helper}`" in message
    assert not marker.exists()
    assert "helper_gw" not in sys.modules


def test_a_helper_in_a_package_of_the_rules_folder_is_checked(tmp_path: Path) -> None:
    write(tmp_path / "user" / "helpers_pkg" / "__init__.py", "")
    inner = write(tmp_path / "user" / "helpers_pkg" / "limits.py", "MAX = 3\n")
    os.chown(inner, NOBODY, NOBODY)
    path = rules_file(tmp_path, "\nfrom helpers_pkg.limits import MAX\nrules = []\n")
    assert error_of(path).startswith(f"{path}:2: imports {inner}: the file {inner} is owned by uid {NOBODY}")


def test_an_import_made_later_from_inside_a_rule_is_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`python -m enforcer` puts the working dir on sys.path: with the original's layout (rules.py in the
    working dir) a rule's own `import` finds the folder's modules long after the file was loaded."""
    marker = tmp_path / "late-ran"
    late = write(tmp_path / "user" / "late_helper.py", f"open({str(marker)!r}, 'w').close()\nX = 1\n", 0o666)
    path = rules_file(
        tmp_path,
        """
        def late(c):
            import late_helper
            return late_helper.X

        rules = [{"name": "late", "rule": late}]
        """,
    )
    (rule,) = load_rules(path).items
    monkeypatch.syspath_prepend(str(path.parent))
    monkeypatch.delitem(sys.modules, "late_helper", raising=False)
    with pytest.raises(RulesFileError, match=f"the file {late} is writable by group and others"):
        rule.check(None)
    assert not marker.exists()
    late.chmod(0o644)
    assert rule.check(None) == 1


def test_helpers_run_from_source_never_from_a_bytecode_cache(tmp_path: Path) -> None:
    """A .pyc planted with the source's size and mtime would be run by Python's own loader."""
    helper = write(tmp_path / "user" / "cached_helper.py", "X = 1\n")
    planted = write(tmp_path / "other" / "cached_helper.py", "X = 2\n")
    os.utime(planted, ns=(helper.stat().st_atime_ns, helper.stat().st_mtime_ns))
    py_compile.compile(str(planted), cfile=importlib.util.cache_from_source(str(helper)), doraise=True)
    path = rules_file(
        tmp_path, 'import cached_helper\nrules = [{"name": str(cached_helper.X), "rule": print}]\n'
    )
    assert [r.name for r in load_rules(path).items] == ["1"]


def test_a_changed_helper_is_checked_and_loaded_again_with_the_file(tmp_path: Path) -> None:
    helper = write(tmp_path / "user" / "changing_helper.py", "X = 1\n")
    path = rules_file(
        tmp_path, 'import changing_helper\nrules = [{"name": str(changing_helper.X), "rule": print}]\n'
    )
    assert [r.name for r in load_rules(path).items] == ["1"]
    write(helper, "X = 2\n", 0o664)
    assert "is writable by group" in error_of(path)
    helper.chmod(0o644)
    assert [r.name for r in load_rules(path).items] == ["2"]


def test_allow_writable_rules_loads_with_one_warning_per_problem(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(tmp_path / "user" / "rules.py", "import helper_allowed\nrules = []\n", 0o666)
    os.chown(path.parent, NOBODY, NOBODY)
    write(tmp_path / "user" / "helper_allowed.py", "X = 1\n", 0o664)
    with caplog.at_level(logging.WARNING, logger="enforcer.judge.loader"):
        assert load_rules(path, allow_writable=True).items == ()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 4, warnings  # the folder counts for the file and for the helper
    assert all(w.startswith("SECURITY: loading ") and "can run code as root" in w for w in warnings)
    assert f"the folder {path.parent} is owned by uid {NOBODY}" in warnings[0]
    assert f"chmod go-w {path}" in warnings[1]
    assert "helper_allowed.py although the folder" in warnings[2]
    assert "helper_allowed.py is writable by group" in warnings[3]


# -- errors that name the file, the line, the item ------------------------------------------------------
def test_a_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = rules_file(tmp_path, 'rules = [\n    {"name": "a", "rule": lambda c: c.params[}\n]\n')
    message = error_of(path)
    assert message.startswith(f"{path}:2: syntax error")


def test_an_exception_while_loading_names_file_and_line(tmp_path: Path) -> None:
    path = rules_file(tmp_path, "import os\n\nLIMIT = 1 / 0\nrules = []\n")
    message = error_of(path)
    assert message.startswith(f"{path}:3: ZeroDivisionError")


def test_sys_exit_while_loading_is_an_error_of_the_file(tmp_path: Path) -> None:
    # Not a way out of the daemon: on a SIGHUP it once ended the main loop, and the daemon with it.
    path = rules_file(tmp_path, "import sys\n\nsys.exit(3)\nrules = []\n")
    assert error_of(path).startswith(f"{path}:3: SystemExit: 3")


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


def test_the_enforcers_own_modules_are_never_taken_for_user_modules(tmp_path: Path) -> None:
    """A rules.py at the top of a checkout watches a folder that holds the enforcer package itself."""
    checked: list[Path] = []
    guard = FolderGuard(lambda path, allow: checked.append(path))
    guard.watch(OWN_PACKAGE.parent, False)
    assert guard.find_spec("enforcer.trust", enforcer.judge.__path__) is None
    write(tmp_path / "user" / "next_to_rules.py", "X = 1\n")
    guard.watch(tmp_path / "user", False)
    spec = guard.find_spec("next_to_rules", [str(tmp_path / "user")])
    assert spec is not None and isinstance(spec.loader, SourceOnlyLoader)
    assert checked == [tmp_path / "user" / "next_to_rules.py"]
