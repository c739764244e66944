"""Loading the user's rules, whitelist-rules and triggers files by path, failing loudly and precisely.

The files are plain Python run as root beside the Docker socket, so a file (or its folder) that group or
others may write is refused unless the owner explicitly allows it. Every problem raises RulesFileError with
the file, the line or the item, and what to do.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import logging
import os
import stat
import sys
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

from enforcer.judge.rules import Loaded, Rule, Severity, Trigger, WhitelistRule
from enforcer.settings import Mode

log = logging.getLogger(__name__)

T = TypeVar("T")
DEFAULTS_DIR = Path(__file__).resolve().parent.parent / "defaults"
RULE_KEYS = {"name", "rule", "description", "severity", "mode", "prevent"}
LIBRARY_KEYS = {"id", "cis", "tags", "remediation"}


class RulesFileError(Exception):
    """A user file that cannot be used; the message names the file and what to fix."""


def resolve(kind: str, explicit: Path | None, cwd: Path | None = None) -> Path:
    """The file to load for `kind` (rules, whitelist_rules, triggers): explicit, the original layout, defaults."""
    if explicit is not None:
        if not explicit.is_file():
            raise RulesFileError(f"{explicit}: no such file (given for the {kind} file)")
        return explicit
    base = cwd or Path.cwd()
    candidates = [base / kind / f"{kind}.py"]
    if kind == "rules":
        candidates.append(base / "rules.py")
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    return DEFAULTS_DIR / f"{kind}.py"


def check_permissions(path: Path, allow_writable: bool) -> None:
    """Refuse a file, or its folder, that group or others may write (it runs as root)."""
    for target in (path, path.resolve().parent):
        mode = target.stat().st_mode
        if not mode & (stat.S_IWGRP | stat.S_IWOTH):
            continue
        what = "folder" if target.is_dir() else "file"
        fix = f"chmod go-w {target}"
        if not allow_writable:
            raise RulesFileError(
                f"{path}: the {what} {target} may be written by group or others, and its code runs as root "
                f"beside the Docker socket; fix it with `{fix}` (or set ALLOW_WRITABLE_RULES=True)"
            )
        log.warning(
            "loading %s although the %s %s is writable by group or others (%s)", path, what, target, fix
        )


def load_module(path: Path) -> tuple[ModuleType, str]:
    """Execute a Python file as a fresh module; returns it and its source text."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RulesFileError(f"{path}: cannot be read: {exc}") from None
    try:
        code = compile(text, str(path), "exec")
    except SyntaxError as exc:
        raise RulesFileError(f"{path}:{exc.lineno}: syntax error: {exc.msg}") from None
    name = f"enforcer_user_{path.stem}_{hashlib.sha256(str(path).encode()).hexdigest()[:8]}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    folder = str(path.resolve().parent)
    sys.path.insert(0, folder)  # helpers next to the rules file can be imported
    try:
        exec(code, module.__dict__)
    except Exception as exc:
        raise RulesFileError(f"{_where(path, exc)}: {type(exc).__name__}: {exc}") from None
    finally:
        sys.path.remove(folder)
    return module, text


def _where(path: Path, exc: BaseException) -> str:
    """`file:line` of the innermost frame of the user's file in the traceback."""
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if os.path.abspath(frame.filename) == os.path.abspath(path):
            line = frame.lineno
    return f"{path}:{line}" if line else str(path)


def load_file(
    kind: str, path: Path, allow_writable: bool, parse: Callable[[Path, Iterable[Any]], tuple[Any, ...]]
) -> Loaded:
    if path.parent != DEFAULTS_DIR:
        check_permissions(path, allow_writable)
    module, text = load_module(path)
    if not hasattr(module, kind):
        raise RulesFileError(f"{path}: defines no `{kind}` list (expected `{kind} = [...]`)")
    items = getattr(module, kind)
    if not isinstance(items, (list, tuple)):
        raise RulesFileError(f"{path}: `{kind}` must be a list, not {type(items).__name__}")
    return Loaded(str(path), hashlib.sha256(text.encode()).hexdigest(), text, parse(path, items))


def parse_rules(path: Path, items: Iterable[Any]) -> tuple[Rule, ...]:
    seen: set[str] = set()

    def one(index: int, item: Any) -> Rule:
        where = f"{path}: rule #{index}"
        name = _name(where, item, "rule")
        where = f"{path}: rule #{index} ({name!r})"
        if name in seen:
            raise RulesFileError(f"{where}: another rule has the same name; rule names must be unique")
        seen.add(name)
        unknown = set(item) - RULE_KEYS - LIBRARY_KEYS
        if unknown:
            raise RulesFileError(
                f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}; "
                f"accepted: {', '.join(sorted(RULE_KEYS | LIBRARY_KEYS))}"
            )
        return Rule(
            name=name,
            check=_callable(where, item, "rule", "container"),
            description=_text(where, item, "description"),
            severity=_severity(where, item.get("severity")),
            mode=_mode(where, item.get("mode")),
            prevent=_flag(where, item, "prevent"),
            meta={key: item[key] for key in LIBRARY_KEYS if key in item},
        )

    return _every(items, one)


def parse_whitelist_rules(path: Path, items: Iterable[Any]) -> tuple[WhitelistRule, ...]:
    def one(index: int, item: Any) -> WhitelistRule:
        where = f"{path}: whitelist rule #{index}"
        name = _name(where, item, "whitelist rule")
        return WhitelistRule(name, _callable(f"{where} ({name!r})", item, "rule", "container", "rule_name"))

    return _every(items, one)


def parse_triggers(path: Path, items: Iterable[Any]) -> tuple[Trigger, ...]:
    def one(index: int, item: Any) -> Trigger:
        where = f"{path}: trigger #{index}"
        name = _name(where, item, "trigger")
        return Trigger(name, _callable(f"{where} ({name!r})", item, "trigger", "verdict"))

    return _every(items, one)


def _every(items: Iterable[Any], parse_one: Callable[[int, Any], T]) -> tuple[T, ...]:
    """Parse every item; all problems of the file are reported together, one per line."""
    parsed: list[T] = []
    problems: list[str] = []
    for index, item in enumerate(items, start=1):
        try:
            parsed.append(parse_one(index, item))
        except RulesFileError as exc:
            problems.append(str(exc))
    if problems:
        raise RulesFileError("\n".join(problems))
    return tuple(parsed)


def _name(where: str, item: Any, what: str) -> str:
    if not isinstance(item, dict):
        raise RulesFileError(f"{where}: must be a dict like {{'name': ..., ...}}, not {type(item).__name__}")
    name = item.get("name")
    if not isinstance(name, str) or not name.strip():
        raise RulesFileError(f"{where}: has no 'name' (a non-empty string naming the {what})")
    return name


def _callable(where: str, item: dict[str, Any], key: str, *arguments: str) -> Callable[..., Any]:
    """The item's callable, which must be callable with exactly the given arguments."""
    value = item.get(key)
    if not callable(value):
        raise RulesFileError(
            f"{where}: '{key}' must be a callable such as a lambda, not {type(value).__name__}"
        )
    try:
        signature = inspect.signature(value)
    except (TypeError, ValueError):  # some builtins have none: nothing to check
        return value
    try:
        signature.bind(*arguments)
    except TypeError:
        wanted = f"lambda {', '.join(arguments)}: ..."
        raise RulesFileError(
            f"{where}: '{key}' takes {_parameters(signature)}, but is called with {len(arguments)} "
            f"argument(s) ({', '.join(arguments)}); write it as `{wanted}`"
        ) from None
    return value


def _parameters(signature: inspect.Signature) -> str:
    return (
        str(signature.replace(return_annotation=inspect.Signature.empty))
        if signature.parameters
        else "no arguments"
    )


def _text(where: str, item: dict[str, Any], key: str) -> str:
    value = item.get(key, "")
    if not isinstance(value, str):
        raise RulesFileError(f"{where}: '{key}' must be a string")
    return value


def _flag(where: str, item: dict[str, Any], key: str) -> bool:
    value = item.get(key, False)
    if not isinstance(value, bool):
        raise RulesFileError(f"{where}: '{key}' must be True or False")
    return value


def _severity(where: str, value: Any) -> Severity:
    if value is None:
        return Severity.MEDIUM
    try:
        return Severity(str(value).lower())
    except ValueError:
        accepted = ", ".join(s.value for s in Severity)
        raise RulesFileError(f"{where}: severity {value!r} is not one of {accepted}") from None


def _mode(where: str, value: Any) -> Mode | None:
    if value is None:
        return None
    try:
        return Mode(str(value).upper())
    except ValueError:
        raise RulesFileError(f"{where}: mode {value!r} is not WARN or KILL") from None


def load_rules(path: Path, allow_writable: bool = False) -> Loaded:
    return load_file("rules", path, allow_writable, parse_rules)


def load_whitelist_rules(path: Path, allow_writable: bool = False) -> Loaded:
    return load_file("whitelist_rules", path, allow_writable, parse_whitelist_rules)


def load_triggers(path: Path, allow_writable: bool = False) -> Loaded:
    return load_file("triggers", path, allow_writable, parse_triggers)
