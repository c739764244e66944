"""Exceptions that expire: parsed from the rules file, exempting until their end, then not at all."""

from __future__ import annotations

import json
import logging
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from support.cli import run, write

from enforcer.facts.container import Container
from enforcer.judge.exceptions import RuleException, parse_exceptions, parse_until
from enforcer.judge.judge import judge
from enforcer.judge.loader import RulesFileError, load_rules
from enforcer.judge.policy import load_policy
from enforcer.judge.rules import Rule
from enforcer.judge.whitelist import Whitelist
from enforcer.policy_in_force import PolicyInForce
from enforcer.report.metrics import Metrics
from enforcer.settings import Files, Settings
from enforcer.sources.reload import PolicyReloader

pytestmark = pytest.mark.usefixtures("restore_logging")
DATA = Path(__file__).resolve().parent / "data"
(PLAIN,) = json.loads((DATA / "plain.json").read_text())  # name "plain", image "busybox", no memory limit
NOW = datetime(2027, 1, 15, 12, 0, tzinfo=UTC)
RULES = """
from datetime import UTC, datetime, timedelta
rules = [
    {"name": "mem", "rule": lambda c: c.params["HostConfig"]["Memory"] == 0},
    {"name": "any", "rule": lambda c: True},
]
"""


def container(name: str = "plain", image: str | None = None) -> Container:
    params = dict(PLAIN, Name="/" + name)
    if image is not None:
        params["Config"] = dict(PLAIN["Config"], Image=image)
    return Container(PLAIN["Id"], params)


def exception(**fields: str) -> RuleException:
    (parsed,) = parse_exceptions(Path("rules.py"), [{"until": "2027-01-31", "reason": "r", **fields}])
    return parsed


# -- parsing ---------------------------------------------------------------------------------------------------
def test_a_date_exempts_through_that_day_in_utc() -> None:
    assert parse_until("2027-01-31") == datetime(2027, 2, 1, tzinfo=UTC)
    assert parse_until("2027-01-31T18:30:00") == datetime(2027, 1, 31, 18, 30, tzinfo=UTC)
    assert parse_until("2027-01-31T18:30:00+02:00") == datetime(2027, 1, 31, 16, 30, tzinfo=UTC)


def test_every_problem_of_the_list_is_reported_at_once() -> None:
    items = [
        {"container": "ci-.*", "reason": "no end"},
        {"container": "ci-.*", "until": "2027-01-31"},
        {"until": "2027-01-31", "reason": "whom?"},
        {"image": "(", "until": "2027-01-31", "reason": "bad regex"},
        {"container": "x", "until": "31/01/2027", "reason": "bad date"},
        {"container": "x", "until": "2027-01-31", "reason": "r", "expires": "never"},
        {"container": "x", "until": "2027-01-31", "reason": "fine"},
    ]
    with pytest.raises(ValueError) as caught:
        parse_exceptions(Path("r.py"), items)
    lines = str(caught.value).splitlines()
    assert [line.split(":")[1].strip() for line in lines] == [f"exception #{i}" for i in range(1, 7)]
    assert "has no 'until'" in lines[0]
    assert "has no 'reason'" in lines[1]
    assert "give 'container' or 'image'" in lines[2]
    assert "'image' '(' is not a valid regular expression" in lines[3]
    assert "'until' '31/01/2027' is not an ISO date" in lines[4]
    assert "unknown key(s) expires" in lines[5]


def test_the_rules_file_loads_its_exceptions_and_refuses_bad_ones(tmp_path: Path) -> None:
    good = write(tmp_path, "good.py", RULES + 'exceptions = [{"rule": "mem", "container": "ci-.*", '
                 '"until": "2027-01-31", "reason": "new runners", "ticket": "OPS-1"}]\n')  # fmt: skip
    (loaded,) = load_rules(good).exceptions
    assert (loaded.rule, loaded.container, loaded.ticket) == ("mem", "ci-.*", "OPS-1")
    bad = write(tmp_path, "bad.py", RULES + 'exceptions = [{"container": "ci-.*", "reason": "forever"}]\n')
    with pytest.raises(RulesFileError, match=r"bad.py: exception #1: has no 'until'"):
        load_rules(bad)


# -- exempting -----------------------------------------------------------------------------------------------
@pytest.fixture
def rules(tmp_path: Path) -> tuple[Rule, ...]:
    return load_rules(write(tmp_path, "rules/rules.py", RULES)).items


def test_an_exception_exempts_its_rule_until_its_end_then_nothing(rules: tuple[Rule, ...]) -> None:
    wl = Whitelist(exceptions=(exception(rule="mem", container="pla.*"),))
    before = judge(container(), rules, wl, now=NOW)
    assert before.whitelisted == ("mem",)
    assert [r.name for r in before.violated] == ["any"]
    after = judge(container(), rules, wl, now=datetime(2027, 2, 1, tzinfo=UTC))
    assert after.whitelisted == ()
    assert [r.name for r in after.violated] == ["mem"]


def test_an_exception_without_a_rule_covers_every_rule(rules: tuple[Rule, ...]) -> None:
    verdict = judge(container(), rules, Whitelist(exceptions=(exception(image="busybox"),)), now=NOW)
    assert verdict.whitelisted == ("mem", "any")
    assert verdict.verdict is False


def test_container_and_image_must_both_match_when_both_are_given() -> None:
    both = exception(container="plain", image="alpine:.*")
    assert not both.applies("plain", ("busybox", "busybox:latest"), "mem")
    assert both.applies("plain", ("alpine:3.19",), "mem")
    assert not both.applies("plainer", ("alpine:3.19",), "mem")  # the whole name, as WHITE_LIST
    assert exception(image="busybox:latest").applies("x", ("busybox", "busybox:latest"), "mem")


# -- telling of the end ----------------------------------------------------------------------------------------
def test_a_run_out_exception_is_logged_and_counted_once_per_rules_version(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    text = RULES + textwrap.dedent("""
        exceptions = [
            {"container": "a", "until": "2027-01-20", "reason": "soon over"},
            {"container": "b", "until": "2027-03-01", "reason": "later"},
        ]
    """)
    path = write(tmp_path, "rules/rules.py", text)
    settings = Settings(files=Files(rules=path))
    in_force = PolicyInForce(load_policy(settings, cwd=tmp_path))
    metrics = Metrics("KILL")
    reloader = PolicyReloader(settings, in_force, metrics, cwd=tmp_path)
    with caplog.at_level(logging.WARNING, logger="enforcer.reload"):
        reloader.poll(now=NOW)
        assert caplog.messages == []
        for _ in range(3):
            reloader.poll(now=datetime(2027, 1, 22, tzinfo=UTC))
    assert len(caplog.messages) == 1
    assert "container 'a' until 2027-01-20 (soon over) has run out" in caplog.messages[0]
    assert metrics.exceptions_expired._value.get() == 1


# -- check and the API -------------------------------------------------------------------------------------------
def test_check_lists_exceptions_and_warns_before_they_end(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    now = datetime.now(UTC)
    soon = (now + timedelta(days=3)).isoformat(timespec="seconds")
    later = (now + timedelta(days=60)).date().isoformat()
    gone = (now - timedelta(days=2)).date().isoformat()
    rules = write(workdir, "r.py", RULES + textwrap.dedent(f"""
        exceptions = [
            {{"rule": "mem", "container": "ci-.*", "until": "{soon}", "reason": "new runners", "ticket": "OPS-1"}},
            {{"image": "legacy/.*", "until": "{later}", "reason": "retiring"}},
            {{"rule": "nope", "container": "x", "until": "{gone}", "reason": "old"}},
        ]
    """))  # fmt: skip
    code, out, _ = run(["check", "--rules", str(rules)], capsys)
    assert code == 0
    assert "exceptions (3):" in out
    assert "  - exception from rule 'mem' for container 'ci-.*' until" in out
    assert "(new runners, OPS-1) [3.0 days left]" in out or "(new runners, OPS-1) [2.9 days left]" in out
    warnings = [line for line in out.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 3
    assert "ends in" in warnings[0] and "OPS-1" in warnings[0]
    assert "has run out: it exempts nothing" in warnings[1]
    assert "names no rule of this file" in warnings[2]


def test_check_refuses_an_exception_without_until_or_reason(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = write(workdir, "r.py", RULES + 'exceptions = [{"container": "x"}]\n')
    code, out, err = run(["check", "--rules", str(rules)], capsys)
    assert (code, out) == (2, "")
    assert "exception #1: has no 'reason'" in err or "exception #1: has no 'until'" in err


def test_the_api_lists_exceptions_with_days_left(tmp_path: Path) -> None:
    from enforcer.record.store import DetectionStore
    from enforcer.report.app import create_app
    from enforcer.status import Health

    until = (datetime.now(UTC) + timedelta(days=10)).date().isoformat()
    path = write(
        tmp_path,
        "rules/rules.py",
        RULES + f'exceptions = [{{"image": "x", "until": "{until}", "reason": "r"}}]\n',
    )
    settings = Settings(files=Files(rules=path))
    policy = load_policy(settings, cwd=tmp_path)
    store = DetectionStore(tmp_path / "state.db", max_age_days=30)
    try:
        app = create_app(settings, Health(), PolicyInForce(policy), store, Metrics("WARN"), "host-1")
        client = app.test_client()
        (listed,) = client.get("/rules?structured=1").get_json()["exceptions"]
        assert listed["image"] == "x" and listed["active"] is True
        assert 10 <= listed["days_left"] <= 11
        assert client.get("/config").get_json()["exceptions"] == [listed]
        page = client.get("/", headers={"Accept": "text/html"}).get_data(as_text=True)
        assert 'id="exceptions"' in page and until in page
    finally:
        store.close()
