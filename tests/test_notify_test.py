"""`docker-enforcer notify-test`: one test notification through every trigger, each receiver's answer printed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.cli import run, write
from support.receiver import TOKEN, Receiver

from enforcer import retry

pytestmark = pytest.mark.usefixtures("restore_logging")


@pytest.fixture(autouse=True)
def instant_retries() -> Iterator[None]:
    retry.set_testing(True)
    yield
    retry.set_testing(False)


def test_every_trigger_gets_one_test_and_each_answer_is_printed(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with (
        Receiver() as good,
        Receiver(fail_first=100) as broken,
        Receiver(hang=True) as hung,
        Receiver() as team,
    ):
        triggers = write(
            workdir, "triggers/triggers.py",
            f"""
            from enforcer import notify

            seen = []
            triggers = [
                notify.webhook({good.url!r}, name="good", owners={{"team-a": {team.url!r}}}),
                notify.slack({broken.url!r}, name="broken", retries=1),
                notify.falcosidekick({hung.url!r}, name="hangs"),
                {{"name": "plain", "trigger": lambda v: "plain saw " + v.subject.name + " " + ",".join(v.reasons)}},
            ]
            """,
        )  # fmt: skip
        code, out, _ = run(["notify-test", "--triggers", str(triggers), "--timeout", "1"], capsys)
        assert code == 1
        lines = out.splitlines()
        assert lines[0].startswith("good: answered: http://127.0.0.1:") and lines[0].endswith("200 OK: ok")
        assert lines[1].startswith("broken: FAILED: NotifyError: http://127.0.0.1:")
        assert "answered 500" in lines[1] and "gave up after 2 attempts" in lines[1]
        assert lines[2] == "hangs: FAILED: no answer within 1 s"
        assert (
            lines[3] == "plain: answered: plain saw docker-enforcer-notify-test docker-enforcer notify-test"
        )
        assert TOKEN not in out
        (body,) = good.bodies
        assert (body["test"], body["container"], body["rules"][0]["name"]) == (
            True, "docker-enforcer-notify-test", "docker-enforcer notify-test",
        )  # fmt: skip
        assert len(broken.posts) == 2 and team.bodies == []

        code, out, _ = run(
            ["notify-test", "--triggers", str(triggers), "--owner", "team-a", "--timeout", "1"], capsys
        )
        assert [b["owner"] for b in team.bodies] == ["team-a"] and len(good.bodies) == 1


def test_no_triggers_nothing_to_send(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["notify-test"], capsys)
    assert code == 0 and out.startswith("no triggers in ")
