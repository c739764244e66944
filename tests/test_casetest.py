"""`docker-enforcer test` (rule tests) and `audit --compare` (what-if): both judge without acting."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from support.cli import run, write
from support.engine import Engine, RunContainer

from enforcer.library import CATALOG

pytestmark = pytest.mark.usefixtures("restore_logging")  # main() configures the enforcer logger

REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
LIBRARY_EXAMPLES = Path(__file__).resolve().parent / "library" / "examples"
RULES = """
rules = [
    {"name": "mem", "rule": lambda c: c.params["HostConfig"]["Memory"] == 0},
    {"name": "late", "rule": lambda c: c.position > 1},
    {"name": "hot", "rule": lambda c: c.metrics["cpu_stats"]["online_cpus"] > 1},
]
"""


# -- docker-enforcer test ----------------------------------------------------------------------------------
def cases_file(workdir: Path, *cases: dict[str, Any]) -> Path:
    return write(workdir, "cases.py", f"cases = {cases!r}\n")


def test_passing_cases_exit_0(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = write(workdir, "rules.py", RULES)
    (limits,) = json.loads((DATA / "limits.json").read_text())
    stats = json.loads((DATA / "stats.json").read_text())
    cases = cases_file(
        workdir,
        {"name": "no limit", "container": str(DATA / "plain.json"), "violates": ["mem"]},
        {"name": "limits, inline", "container": limits, "violates": []},
        {"name": "third to start", "container": limits, "violates": ["late"], "position": 2},
        {"name": "busy", "container": limits, "violates": ["hot"], "metrics": stats},
    )
    code, out, err = run(["test", str(cases), "--rules", str(rules)], capsys)
    assert (code, err) == (0, ""), out
    assert out.splitlines() == [
        "PASS no limit",
        "PASS limits, inline",
        "PASS third to start",
        "PASS busy",
        "4 passed, 0 failed",
    ]


def test_a_failing_case_exits_1_naming_expected_and_actual(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = write(workdir, "rules.py", RULES)
    cases = cases_file(
        workdir,
        {"name": "wrong", "container": str(DATA / "plain.json"), "violates": []},
        {"name": "right", "container": str(DATA / "limits.json"), "violates": []},
    )
    code, out, _ = run(["test", str(cases), "--rules", str(rules)], capsys)
    assert code == 1
    assert "FAIL wrong: expected nothing; violated mem" in out
    assert "PASS right" in out  # "hot" reads metrics, which the case does not give: not judged
    assert out.splitlines()[-1] == "1 passed, 1 failed"


def test_a_rule_expected_but_needing_metrics_fails_naming_why(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = write(workdir, "rules.py", RULES)
    cases = cases_file(workdir, {"name": "c", "container": str(DATA / "limits.json"), "violates": ["hot"]})
    code, out, _ = run(["test", str(cases), "--rules", str(rules)], capsys)
    assert code == 1
    assert "FAIL c: expected hot; violated nothing; not judged without 'metrics' or 'image': hot" in out


def test_a_rule_error_fails_the_case(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = write(workdir, "rules.py", 'rules = [{"name": "broken", "rule": lambda c: 1 / 0}]\n')
    cases = cases_file(workdir, {"name": "c", "container": str(DATA / "plain.json"), "violates": []})
    code, out, _ = run(["test", str(cases), "--rules", str(rules)], capsys)
    assert code == 1
    assert "FAIL c: expected nothing; violated nothing; rule error broken: ZeroDivisionError" in out


def test_a_bad_cases_file_exits_2_with_every_problem(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = write(workdir, "rules.py", RULES)
    cases = cases_file(
        workdir,
        {"name": "typo", "container": str(DATA / "plain.json"), "violates": ["memm"]},
        {"name": "no file", "container": "missing.json", "violates": []},
        {"name": "extra", "container": {}, "violates": [], "expect": 1},
    )
    code, out, err = run(["test", str(cases), "--rules", str(rules)], capsys)
    assert (code, out) == (2, "")
    lines = err.splitlines()
    assert len(lines) == 3
    assert lines[0].endswith("case #1 ('typo'): no rule is named 'memm'")
    assert "case #2 ('no file'): cannot read" in lines[1]
    assert "case #3 ('extra'): unknown key(s) expect" in lines[2]


def test_the_demo_rules_pass_their_cases(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)
    code, out, _ = run(["test", "examples/demo-cases.py", "--rules", "examples/demo-rules.py"], capsys)
    assert code == 0, out


def test_the_librarys_fixtures_run_as_cases(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Every captured example, with the exact library rules that flag it (tests/library's expectations)."""
    from library.test_library_examples import EXPECTED

    names = {spec.id: spec.as_rule()["name"] for spec in CATALOG}
    flagged_by: dict[str, list[str]] = {path.stem: [] for path in LIBRARY_EXAMPLES.glob("*.json")}
    for rule_id, examples in EXPECTED.items():
        if rule_id in names:
            for example in examples:
                flagged_by[example].append(names[rule_id])
    rules = write(workdir, "rules.py", "from enforcer.library import all_rules\nrules = all_rules()\n")
    cases = cases_file(
        workdir,
        *(
            {"name": stem, "container": str(LIBRARY_EXAMPLES / f"{stem}.json"), "violates": flagged}
            for stem, flagged in sorted(flagged_by.items())
        ),
    )
    code, out, _ = run(["test", str(cases), "--rules", str(rules)], capsys)
    assert code == 0, out
    assert out.splitlines()[-1] == f"{len(flagged_by)} passed, 0 failed"


# -- audit --compare -----------------------------------------------------------------------------------------
OLD = 'rules = [{"name": "binds", "rule": lambda c: bool(c.params["HostConfig"]["Binds"])}]\n'
NEW = """
rules = [
    {"name": "binds", "rule": lambda c: bool(c.params["HostConfig"]["Binds"])},
    {"name": "mem", "rule": lambda c: c.params["HostConfig"]["Memory"] == 0},
]
"""


def test_compare_lists_the_containers_whose_verdict_changes(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old, new = write(workdir, "old.py", OLD), write(workdir, "new.py", NEW)
    argv = ["audit", "--json", "--rules", str(new), "--compare", str(old), "--from", str(DATA / "all.json")]
    code, out, _ = run(argv, capsys)
    assert code == 1
    changes = {item["name"]: item for item in json.loads(out)}
    # plain: newly flagged; binds_labels: flagged by both, now by one more rule; limits: unchanged, absent
    assert set(changes) == {"plain", "binds_labels"}
    assert changes["plain"]["newly_flagged"] == ["mem"] and changes["plain"]["before"] == []
    assert changes["binds_labels"]["before"] == ["binds"]
    assert changes["binds_labels"]["after"] == ["binds", "mem"]
    code, out, _ = run(argv[:1] + argv[2:], capsys)
    assert "2 container(s) change from" in out
    assert out.splitlines()[2].split()[:4] == ["plain", "busybox", "flagged", "mem"]


def test_compare_with_the_same_rules_changes_nothing(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    new = write(workdir, "new.py", NEW)
    code, out, _ = run(
        ["audit", "--rules", str(new), "--compare", str(new), "--from", str(DATA / "all.json")], capsys
    )
    assert code == 0
    assert out.startswith("no container's verdict changes")


def test_compare_against_the_engine(
    workdir: Path, capsys: pytest.CaptureFixture[str], clean_engine: Engine, run_container: RunContainer
) -> None:
    limited = run_container("limited", mem_limit="64m")
    unlimited = run_container("unlimited")
    old, new = write(workdir, "old.py", OLD), write(workdir, "new.py", NEW)
    code, out, _ = run(
        ["audit", "--json", "--rules", str(new), "--compare", str(old)],
        capsys,
        DOCKER_SOCKET=clean_engine.url,
    )
    assert code == 1
    assert [(item["id"], item["newly_flagged"]) for item in json.loads(out)] == [(unlimited, ["mem"])]
    with clean_engine.api() as api:
        assert {c["Id"] for c in api.containers()} == {limited, unlimited}  # nothing stopped


# -- image facts in rule tests and in audit --from --images ---------------------------------------------------
IMAGE_RULES = """
from enforcer.library import images
rules = [images.older_than(2000), images.require_label()]  # 2000: the 2019 image only, until 2032
"""


def image_example(workdir: Path, name: str) -> tuple[Path, Path, dict[str, Any]]:
    """The container's and the image's saved inspect output as files in `workdir`; the image data too."""
    data = json.loads((LIBRARY_EXAMPLES / "image" / f"{name}.json").read_text())
    container = write(workdir, f"saved/{name}.json", json.dumps([data["container"]]))
    image = write(workdir, f"saved/{name}-image.json", json.dumps([data["image"]]))
    return container, image, data["image"]


def test_cases_may_give_the_image(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = write(workdir, "rules.py", IMAGE_RULES)
    old, old_image, _ = image_example(workdir, "old")
    committed, _, committed_image = image_example(workdir, "committed")
    old_rule, label_rule = (
        "image at most 2000 days old",
        "image label org.opencontainers.image.source required",
    )
    cases = cases_file(
        workdir,
        {"name": "old", "container": "saved/old.json", "image": "saved/old-image.json",
         "violates": [old_rule, label_rule]},
        {"name": "labelled, inline", "container": str(committed), "image": committed_image, "violates": []},
        {"name": "no image given", "container": str(old), "violates": [old_rule]},
    )  # fmt: skip
    code, out, _ = run(["test", str(cases), "--rules", str(rules)], capsys)
    assert code == 1
    assert out.splitlines() == [
        "PASS old",
        "PASS labelled, inline",
        f"FAIL no image given: expected {old_rule}; violated nothing; not judged without 'metrics' or "
        f"'image': {old_rule}, {label_rule}",
        "2 passed, 1 failed",
    ]
    assert old_image.exists()


def test_audit_from_a_file_with_the_images(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = write(workdir, "rules.py", IMAGE_RULES)
    names = ("old", "committed", "imported")
    saved = [image_example(workdir, name) for name in names]
    containers = write(
        workdir, "containers.json", json.dumps([json.loads(c.read_text())[0] for c, _, _ in saved])
    )
    images = write(workdir, "images.json", json.dumps([image for _, _, image in saved[:2]]))  # not imported's
    code, out, _ = run(["audit", "--json", "--from", str(containers), "--images", str(images),
                        "--rules", str(rules)], capsys)  # fmt: skip
    assert code == 1
    flagged = {item["name"]: item["violated_rules"] for item in json.loads(out)}
    assert flagged == {
        "old": ["image at most 2000 days old"],  # STOP_ON_FIRST_VIOLATION
        "committed": [],
        "imported": [],  # its image is not in the file: not judged
    }
    code, _, err = run(["audit", "--images", str(images), "--rules", str(rules)], capsys)
    assert code == 2 and "--images goes with --from" in err
