"""Rule keys for rules held over time: for, grace, action, limits; parsed, refused with file and rule named,
and listed by `check`."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.cli import run, write

from enforcer.judge.loader import RulesFileError, load_rules
from enforcer.judge.policy import Policy
from enforcer.judge.rules import Limits, Remedy
from enforcer.judge.whitelist import Whitelist
from enforcer.units import duration_s, size_bytes, text_duration

pytestmark = pytest.mark.usefixtures("restore_logging")


def rules_at(tmp_path: Path, items: str) -> Path:
    return write(tmp_path / "user", "rules.py", f"rules = [\n{items}\n]\n")


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (30, 30),
        (0.5, 0.5),
        ("30s", 30),
        ("10m", 600),
        ("2h", 7200),
        ("1d", 86400),
        (" 1.5m ", 90),
        ("45", 45),
    ],
)
def test_durations(value: object, seconds: float) -> None:
    assert duration_s(value) == seconds


@pytest.mark.parametrize("value", ["10 minutes", "-5", -5, "1w", True, None, [], float("inf"), "m"])
def test_bad_durations_say_what_is_accepted(value: object) -> None:
    with pytest.raises(ValueError, match=r"30s|not negative"):
        duration_s(value)


def test_sizes_and_short_durations() -> None:
    assert size_bytes("2g") == 2 * 1024**3
    assert size_bytes("512m") == size_bytes("512MB") == 512 * 1024**2
    assert size_bytes(1000) == 1000
    assert (text_duration(90), text_duration(3600), text_duration(2.5)) == ("1m30s", "1h", "2.5s")


def test_the_keys_are_parsed(tmp_path: Path) -> None:
    path = rules_at(
        tmp_path,
        """
    {"name": "hog", "rule": lambda c: c.cpu_percent > 90, "for": "10m", "action": "pause"},
    {"name": "idle", "rule": lambda c: c.cpu_percent < 1, "for": "1d", "grace": 3600, "action": "STOP"},
    {"name": "no limit", "rule": lambda c: True, "action": "limit",
     "limits": {"memory": "2g", "cpus": 1.5, "pids": 512}},
    {"name": "plain", "rule": lambda c: False},
""",
    )
    hog, idle, limited, plain = load_rules(path).items
    assert (hog.for_s, hog.grace_s, hog.action, hog.timed) == (600, 0, Remedy.PAUSE, True)
    assert (idle.for_s, idle.grace_s, idle.action) == (86400, 3600, Remedy.STOP)
    assert limited.limits == Limits(2 * 1024**3, 1_500_000_000, 512) and not limited.timed
    assert (plain.action, plain.timed, plain.limits) == (Remedy.KILL, False, None)
    assert limited.summary()["limits"] == {"memory": 2 * 1024**3, "cpus": 1.5, "pids": 512}


def test_every_bad_value_is_refused_naming_file_and_rule(tmp_path: Path) -> None:
    path = rules_at(
        tmp_path,
        """
    {"name": "a", "rule": lambda c: 0, "for": "ten minutes"},
    {"name": "b", "rule": lambda c: 0, "grace": -1},
    {"name": "c", "rule": lambda c: 0, "action": "explode"},
    {"name": "d", "rule": lambda c: 0, "action": "limit"},
    {"name": "e", "rule": lambda c: 0, "limits": {"memory": "1g"}},
    {"name": "f", "rule": lambda c: 0, "action": "limit", "limits": {"swap": 1}},
    {"name": "g", "rule": lambda c: 0, "action": "limit", "limits": {"cpus": 0}},
    {"name": "h", "rule": lambda c: 0, "action": "limit", "limits": {"memory": "lots"}},
    {"name": "i", "rule": lambda c: 0, "for": "1m", "prevent": True},
""",
    )
    with pytest.raises(RulesFileError) as caught:
        load_rules(path)
    lines = str(caught.value).splitlines()
    expected = [
        "rule #1 ('a'): 'for' 'ten minutes'",
        "rule #2 ('b'): 'grace' -1 must be finite and not negative",
        "rule #3 ('c'): action 'explode' is not one of kill, stop, pause, limit",
        'rule #4 (\'d\'): "action": "limit" needs "limits"',
        "rule #5 ('e'): 'limits' is used only with \"action\": \"limit\"",
        "rule #6 ('f'): unknown limit(s) swap",
        "rule #7 ('g'): limits 'cpus' 0 must be a number of CPUs above 0",
        "rule #8 ('h'): limits 'memory' 'lots'",
        "rule #9 ('i'): 'prevent' acts at create time",
    ]
    assert len(lines) == len(expected), lines
    for line, want in zip(lines, expected, strict=True):
        assert line.startswith(f"{path}: {want}"), line


def test_check_lists_for_grace_and_action(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = write(
        workdir,
        "mine.py",
        'rules = [{"name": "idle", "rule": lambda c: 0, "for": "1d", "grace": "1h", "action": "stop"},\n'
        '         {"name": "cap", "rule": lambda c: 0, "action": "limit", "limits": {"memory": "2g", "pids": 64}}]\n',
    )
    code, out, _ = run(["check", "--rules", str(rules)], capsys)
    assert code == 0
    assert "  - idle [medium, WARN from MODE, for 1d, grace 1h, action stop]" in out
    assert "  - cap [medium, WARN from MODE, action limit, limits memory 2g, pids 64]" in out


def test_timed_rules_are_kept_apart_from_the_rules_judged_at_once(tmp_path: Path) -> None:
    path = rules_at(
        tmp_path,
        """
    {"name": "now", "rule": lambda c: True},
    {"name": "held", "rule": lambda c: True, "for": 60},
    {"name": "graced", "rule": lambda c: True, "grace": "5m"},
""",
    )
    policy = Policy(load_rules(path).items, Whitelist((), (), (), ()), ())
    assert [r.name for r in policy.instant_rules] == ["now"]
    assert [r.name for r in policy.timed_rules] == ["held", "graced"]


def test_check_warns_about_a_for_of_fewer_than_two_samples(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = write(workdir, "mine.py", 'rules = [{"name": "quick", "rule": lambda c: 0, "for": 20}]\n')
    _, out, _ = run(["check", "--rules", str(rules)], capsys)
    assert "warning: rule 'quick' is held 'for' 20s, under two samples (SAMPLE_INTERVAL_S=15)" in out
    _, out, _ = run(["check", "--rules", str(rules)], capsys, SAMPLE_INTERVAL_S="5")
    assert "under two samples" not in out
