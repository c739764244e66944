"""Whether a file may be trusted with code that runs as root beside the Docker socket.

The check `sudo` and `ssh` (StrictModes) make: every folder from `/` down to the file, and the file itself,
is owned by root (or by the user the daemon runs as) and writable by neither its group nor others. A folder
anyone may write (even a sticky one such as /tmp) lets them swap a whole subtree, so it is no safe parent.

Symlinks are followed the way the kernel follows them, one component at a time: each link must itself be
owned by root or the daemon's user and sit in a trusted folder, and the chain of its target is checked in
turn. So both the path as given and the path it resolves to are checked, and every link on the way.
"""

from __future__ import annotations

import os
import pwd
import stat
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path

MAX_LINKS = 40  # as the kernel's ELOOP limit
GROUP_OR_OTHERS_WRITE = stat.S_IWGRP | stat.S_IWOTH


class UntrustedPathError(Exception):
    """The path cannot be walked at all (missing component, too many links)."""


@dataclass(frozen=True)
class Problem:
    """One file, folder or link on the way to a user file that someone else could change."""

    path: Path
    kind: str  # "file", "folder" or "symlink"
    uid: int
    mode: int
    foreign_owner: bool
    writable_by: str  # "", "group", "others" or "group and others"

    def __str__(self) -> str:
        why = []
        if self.foreign_owner:
            why.append(f"is owned by {owner_name(self.uid)}")
        if self.writable_by:
            why.append(f"is writable by {self.writable_by}")
        mode = f"mode {stat.filemode(self.mode)} ({stat.S_IMODE(self.mode):04o})"
        found = mode if self.foreign_owner else f"owner {owner_name(self.uid)}, {mode}"
        return f"the {self.kind} {self.path} {' and '.join(why)}, {found}: fix with `{self.fix}`"

    @property
    def fix(self) -> str:
        if self.kind == "folder" and self.mode & stat.S_ISVTX and self.writable_by:
            return f"move the files out of {self.path} (shared by everyone) to a folder only root can write"
        steps = []
        if self.foreign_owner:
            steps.append(f"chown {'-h ' if self.kind == 'symlink' else ''}root {self.path}")
        if self.writable_by:
            steps.append(f"chmod go-w {self.path}")
        return " && ".join(steps)


def owner_name(uid: int) -> str:
    try:
        return f"uid {uid} ({pwd.getpwuid(uid).pw_name})"
    except KeyError:
        return f"uid {uid}"


def trusted_uids() -> frozenset[int]:
    """Root, and the user the daemon runs as (a non-root image user may own its rules)."""
    return frozenset({0, os.geteuid()})


def walk(path: Path | str) -> Iterator[tuple[Path, os.stat_result]]:
    """Every entry whose content decides what opening `path` reads, in order: `/`, each folder, each
    symlink met on the way (then the chain of its target), and the final file; with its lstat."""
    start = os.fspath(path)
    if not os.path.isabs(start):
        start = os.path.join(os.getcwd(), start)  # getcwd is already free of links
    current = Path("/")
    yield current, os.lstat(current)
    todo = list(reversed(Path(start).parts[1:]))
    links = 0
    while todo:
        part = todo.pop()
        if part == ".":
            continue
        if part == "..":
            current = current.parent  # current never holds a link, so this is the kernel's `..`
            continue
        entry = current / part
        try:
            info = os.lstat(entry)
        except OSError as exc:
            raise UntrustedPathError(f"{entry}: {exc.strerror}") from None
        yield entry, info
        if not stat.S_ISLNK(info.st_mode):
            current = entry
            continue
        links += 1
        if links > MAX_LINKS:
            raise UntrustedPathError(f"{path}: more than {MAX_LINKS} symbolic links on the way")
        target = Path(os.readlink(entry))
        if target.is_absolute():
            current = Path("/")
        todo.extend(reversed(target.parts[1:] if target.is_absolute() else target.parts))


def problem_of(path: Path, info: os.stat_result, uids: Collection[int]) -> Problem | None:
    """What is wrong with one entry, if anything. A link's own mode means nothing; its owner does."""
    is_link = stat.S_ISLNK(info.st_mode)
    kind = "symlink" if is_link else "folder" if stat.S_ISDIR(info.st_mode) else "file"
    foreign = info.st_uid not in uids
    bits = 0 if is_link else info.st_mode & GROUP_OR_OTHERS_WRITE
    writable_by = {stat.S_IWGRP: "group", stat.S_IWOTH: "others", GROUP_OR_OTHERS_WRITE: "group and others"}
    if not foreign and not bits:
        return None
    return Problem(path, kind, info.st_uid, info.st_mode, foreign, writable_by.get(bits, ""))


def problems(path: Path | str, uids: Collection[int] | None = None) -> list[Problem]:
    """Everything on the way to `path` that a user other than root (or the daemon's) could change;
    empty when the file can be trusted. Raises UntrustedPathError when the path cannot be walked."""
    allowed = trusted_uids() if uids is None else uids
    found = (problem_of(entry, info, allowed) for entry, info in walk(path))
    return [problem for problem in found if problem is not None]
