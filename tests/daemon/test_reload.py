"""Reloading the rules while the daemon runs: on a change on disk, on SIGHUP, and not at all when broken."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

from support.daemon import Containers, DaemonFactory, replace_file

KILL_WITHIN_S = 3.0
RELOAD_WITHIN_S = 8.0  # the files are polled every 3 s

EVIL_NAME_RULES = """
rules = [{"name": "no evil names", "rule": lambda c: c.name.startswith("evil")}]
"""


def test_a_changed_rules_file_takes_effect_within_seconds(
    daemon: DaemonFactory, containers: Containers
) -> None:
    enforcer = daemon()
    replace_file(enforcer.rules_path, EVIL_NAME_RULES)

    reloaded = enforcer.wait_for_message("rules reloaded (a file changed on disk)", RELOAD_WITHIN_S)
    assert "1 rules" in reloaded["message"]
    bad = containers.run("bad-now-allowed")
    evil = containers.run("evil-1")
    assert containers.wait_stopped(evil, KILL_WITHIN_S)
    assert enforcer.wait_for_violation("evil-1")["rules"] == ["no evil names"]
    assert containers.running(bad)
    assert enforcer.violations("bad-now-allowed") == []


def test_a_broken_rules_file_on_reload_keeps_the_old_rules(
    daemon: DaemonFactory, containers: Containers
) -> None:
    enforcer = daemon()
    replace_file(enforcer.rules_path, "rules = [{'name': 'half written',\n")

    error = enforcer.wait_for_message("refused, the previous rules stay in force", RELOAD_WITHIN_S)
    assert error["level"] == "ERROR"
    assert f"{enforcer.rules_path}:" in error["message"] and "syntax error" in error["message"]
    bad = containers.run("bad-still-caught")
    assert containers.wait_stopped(bad, KILL_WITHIN_S)
    assert enforcer.wait_for_violation("bad-still-caught")["rules"] == ["no bad names"]
    assert enforcer.alive()

    replace_file(enforcer.rules_path, EVIL_NAME_RULES)  # fixed: the next look loads it
    enforcer.wait_for_message("rules reloaded", RELOAD_WITHIN_S)
    evil = containers.run("evil-after-fix")
    assert containers.wait_stopped(evil, KILL_WITHIN_S)


def test_a_rules_folder_swapped_by_another_user_is_refused_and_the_old_rules_stay(
    daemon: DaemonFactory, containers: Containers, tmp_path: Path
) -> None:
    """Issue 19: the rules folder's parent is writable by others, and an unprivileged user swaps the folder
    (`mv rules rules.old; mkdir rules`). The next look at the files must refuse it, not run it as root."""
    enforcer = daemon()
    tmp_path.parent.chmod(0o755)  # pytest's 0700: let uid 65534 reach tmp_path
    tmp_path.chmod(0o777)  # the mistake that opens the door
    marker = tmp_path / "ran-as-root"
    evil = f'open("{marker}", "w").close()\\nrules = [{{"name": "everything", "rule": lambda c: True}}]\\n'
    subprocess.run(
        [
            "sh",
            "-ec",
            f"cd {tmp_path} && mv rules rules.old && mkdir rules && printf '{evil}' > rules/rules.py",
        ],
        user=65534,
        group=65534,
        check=True,
        timeout=10,
    )

    error = enforcer.wait_for_message("refused, the previous rules stay in force", RELOAD_WITHIN_S)
    assert error["level"] == "ERROR"
    assert f"the folder {tmp_path} is writable by group and others" in error["message"]
    assert f"the folder {tmp_path / 'rules'} is owned by uid 65534" in error["message"]
    assert f"chown root {tmp_path / 'rules'}" in error["message"]
    assert not marker.exists()
    fine = containers.run("fine-1")
    bad = containers.run("bad-still-caught")
    assert containers.wait_stopped(bad, KILL_WITHIN_S)
    assert enforcer.wait_for_violation("bad-still-caught")["rules"] == ["no bad names"]
    assert containers.running(fine)
    assert enforcer.violations("fine-1") == []
    assert enforcer.alive()


def test_sighup_reloads(daemon: DaemonFactory, containers: Containers) -> None:
    enforcer = daemon()
    # Same size, same mtime: invisible to the poll, so only the SIGHUP can load it.
    replace_file(enforcer.rules_path, BAD_TO_VILE, keep_stat=True)
    enforcer.signal(signal.SIGHUP)

    enforcer.wait_for_message("rules reloaded (SIGHUP)", RELOAD_WITHIN_S)
    vile = containers.run("vile-1")
    bad = containers.run("bad-1")
    assert containers.wait_stopped(vile, KILL_WITHIN_S)
    assert containers.running(bad)
    assert enforcer.alive()


# The default rules with "bad" swapped for "vil": the file keeps its size.
BAD_TO_VILE = """
rules = [{"name": "no vil names", "rule": lambda c: c.name.startswith("vil")}]
"""
