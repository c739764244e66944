"""Whether a path can be trusted with code run as root: the sudo/ssh walk, on real files.

The tests run as root; uid 65534 (nobody) stands for another user. tmp_path sits in a root-owned 0700 folder
outside /tmp (tests/support/trusted_tmp.py), so a fresh tmp_path is trusted and each test spoils one thing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from enforcer import trust

NOBODY = 65534


def make(path: Path, mode: int = 0o644, text: str = "rules = []\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return path


def folder(path: Path, mode: int = 0o755) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(mode)
    return path


def only(problems: list[trust.Problem]) -> trust.Problem:
    assert len(problems) == 1, problems
    return problems[0]


def test_a_file_in_a_trusted_chain_has_no_problem(tmp_path: Path) -> None:
    assert trust.problems(make(tmp_path / "etc" / "rules.py")) == []


def test_the_walk_goes_from_the_root_down_to_the_file(tmp_path: Path) -> None:
    path = make(tmp_path / "etc" / "rules.py")
    walked = [entry for entry, _ in trust.walk(path)]
    assert walked[0] == Path("/")
    assert walked[-3:] == [tmp_path, tmp_path / "etc", path]
    assert walked == [Path("/"), *reversed(path.parents[:-1]), path]


@pytest.mark.parametrize(("mode", "who"), [(0o664, "group"), (0o646, "others"), (0o666, "group and others")])
def test_a_file_writable_by_group_or_others(tmp_path: Path, mode: int, who: str) -> None:
    path = make(tmp_path / "rules.py", mode)
    problem = only(trust.problems(path))
    assert (problem.path, problem.kind, problem.writable_by) == (path, "file", who)
    assert not problem.foreign_owner
    assert problem.fix == f"chmod go-w {path}"
    assert str(problem) == (
        f"the file {path} is writable by {who}, owner uid 0 (root), mode -rw-{'rw' if mode & 0o020 else 'r-'}-"
        f"{'rw' if mode & 0o002 else 'r-'}- (0{mode:o}): fix with `chmod go-w {path}`"
    )


def test_a_folder_far_above_the_file_that_others_may_write(tmp_path: Path) -> None:
    """The reported attack's shape: the file and its folder are fine, a folder higher up is not."""
    shared = folder(tmp_path / "shared", 0o777)
    path = make(shared / "sub" / "rules.py")
    problem = only(trust.problems(path))
    assert (problem.path, problem.kind, problem.writable_by) == (shared, "folder", "group and others")
    assert problem.fix == f"chmod go-w {shared}"


def test_a_sticky_folder_anyone_may_write_is_no_safe_parent(tmp_path: Path) -> None:
    scratch = folder(tmp_path / "scratch", 0o1777)  # like /tmp
    path = make(scratch / "mine" / "rules.py")
    problem = only(trust.problems(path))
    assert problem.path == scratch
    assert "drwxrwxrwt (1777)" in str(problem)
    assert problem.fix.startswith(f"move the files out of {scratch}")


def test_the_real_tmp_is_refused() -> None:
    assert Path("/tmp") in [p.path for p in trust.problems("/tmp")]


@pytest.mark.parametrize("kind", ["file", "folder"])
def test_owned_by_another_user(tmp_path: Path, kind: str) -> None:
    path = make(tmp_path / "etc" / "rules.py")
    owned = path if kind == "file" else path.parent
    os.chown(owned, NOBODY, NOBODY)
    problem = only(trust.problems(path))
    assert (problem.path, problem.kind, problem.uid, problem.foreign_owner) == (owned, kind, NOBODY, True)
    assert f"is owned by uid {NOBODY}" in str(problem)
    assert problem.fix == f"chown root {owned}"


def test_owned_by_another_user_and_writable_gives_both_fixes(tmp_path: Path) -> None:
    path = make(tmp_path / "rules.py", 0o666)
    os.chown(path, NOBODY, NOBODY)
    problem = only(trust.problems(path))
    assert problem.fix == f"chown root {path} && chmod go-w {path}"
    assert f"is owned by uid {NOBODY} (nobody) and is writable by group and others" in str(problem)


def test_the_daemons_own_user_may_own_the_files(tmp_path: Path) -> None:
    path = make(tmp_path / "etc" / "rules.py")
    os.chown(path, NOBODY, NOBODY)
    os.chown(path.parent, NOBODY, NOBODY)
    assert trust.problems(path, uids={0, NOBODY}) == []
    assert trust.trusted_uids() == {0, os.geteuid()}


def test_a_symlink_in_a_folder_anyone_may_write(tmp_path: Path) -> None:
    real = make(tmp_path / "etc" / "rules.py")
    drop = folder(tmp_path / "drop", 0o777)
    (drop / "rules.py").symlink_to(real)
    problem = only(trust.problems(drop / "rules.py"))
    assert problem.path == drop


def test_a_trusted_symlink_to_a_file_in_a_folder_anyone_may_write(tmp_path: Path) -> None:
    drop = folder(tmp_path / "drop", 0o777)
    real = make(drop / "rules.py")
    link = tmp_path / "etc" / "rules.py"
    folder(link.parent)
    link.symlink_to(real)
    problem = only(trust.problems(link))
    assert problem.path == drop


def test_a_link_met_while_following_a_link_is_checked_too(tmp_path: Path) -> None:
    """etc/rules.py -> hop/next.py -> real/rules.py: `hop` is on neither the given path nor the real one."""
    real = make(tmp_path / "real" / "rules.py")
    hop = folder(tmp_path / "hop", 0o777)
    (hop / "next.py").symlink_to(real)
    link = tmp_path / "etc" / "rules.py"
    folder(link.parent)
    link.symlink_to("../hop/next.py")  # relative, with `..`
    assert [p.path for p in trust.problems(link)] == [hop]
    assert os.path.realpath(link) == str(real)


def test_a_symlink_owned_by_another_user(tmp_path: Path) -> None:
    real = make(tmp_path / "etc" / "rules.py")
    link = tmp_path / "link.py"
    link.symlink_to(real)
    os.lchown(link, NOBODY, NOBODY)
    problem = only(trust.problems(link))
    assert (problem.path, problem.kind) == (link, "symlink")
    assert problem.fix == f"chown -h root {link}"


def test_a_symlinked_folder_on_the_way(tmp_path: Path) -> None:
    shared = folder(tmp_path / "shared", 0o777)
    make(shared / "rules.py")
    (tmp_path / "conf").symlink_to(shared, target_is_directory=True)
    assert [p.path for p in trust.problems(tmp_path / "conf" / "rules.py")] == [shared]


def test_a_relative_path_is_walked_from_the_working_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make(tmp_path / "rules" / "rules.py", 0o666)
    monkeypatch.chdir(tmp_path)
    assert [p.path for p in trust.problems("rules/rules.py")] == [tmp_path / "rules" / "rules.py"]


def test_a_missing_path_or_a_link_loop_cannot_be_checked(tmp_path: Path) -> None:
    with pytest.raises(trust.UntrustedPathError, match="No such file"):
        trust.problems(tmp_path / "missing" / "rules.py")
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    with pytest.raises(trust.UntrustedPathError, match="symbolic links"):
        trust.problems(tmp_path / "a")
