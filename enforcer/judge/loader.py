"""Loading the user's rules, whitelist-rules and triggers files by path, failing loudly and precisely.

The files are plain Python run as root beside the Docker socket, so a file is refused when anything on its
way (see trust.py), or any module it imports from its own folder (see user_imports.py), could be changed by
a user other than root or the daemon's own. ALLOW_WRITABLE_RULES=True turns each such refusal into a
warning, nothing else. Every problem raises RulesFileError with the file, the line or the item, and the fix.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import logging
import os
import sys
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

from enforcer import trust
from enforcer.judge.exceptions import ExceptionError, RuleException, parse_exceptions
from enforcer.judge.rules import Limits, Loaded, Remedy, Rule, Severity, Trigger, WhitelistRule
from enforcer.judge.user_imports import FolderGuard
from enforcer.settings import Mode
from enforcer.units import duration_s, size_bytes

log = logging.getLogger(__name__)

T = TypeVar("T")
DEFAULTS_DIR = Path(__file__).resolve().parent.parent / "defaults"
RULE_KEYS = {"name", "rule", "description", "severity", "mode", "prevent", "for", "grace", "action", "limits"}
LIMIT_KEYS = {"memory", "cpus", "pids"}
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
    """Refuse a user file (or a module it imports) that anyone but root or the daemon's user could change:
    the file, every folder from `/` down to it, and every symlink on the way. With allow_writable, each
    problem is logged as a warning instead."""
    try:
        found = trust.problems(path)
    except trust.UntrustedPathError as exc:
        raise RulesFileError(f"{path}: cannot be checked: {exc}") from None
    if found and not allow_writable:
        raise RulesFileError(
            f"{path}: {'; '.join(map(str, found))}. Its code would run as root beside the Docker socket, so "
            "only root (or the daemon's own user) may be able to change it or any folder above it "
            "(ALLOW_WRITABLE_RULES=True loads it anyway, with a warning)"
        )
    for problem in found:
        log.warning(
            "SECURITY: loading %s although %s; anyone who can change it can run code as root "
            "(ALLOW_WRITABLE_RULES=True)",
            path,
            problem,
        )


# Imports from the user files' folders are checked for the life of the process (rules import lazily too);
# one guard, as sys.meta_path itself is one per process.
GUARD = FolderGuard(check_permissions)


def load_module(path: Path, allow_writable: bool = False) -> tuple[ModuleType, str]:
    """Execute a Python file as a fresh module; returns it and its source text. Helpers it imports from its
    folder are fresh too, and checked before they run."""
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
    folder = path.resolve().parent
    if folder != DEFAULTS_DIR:  # the packaged defaults are part of the enforcer, trusted as it is
        for watched in (path.absolute().parent, folder):
            GUARD.watch(watched, allow_writable)
    GUARD.install()
    GUARD.forget_modules()
    sys.path.insert(0, str(folder))  # helpers next to the rules file can be imported
    try:
        exec(code, module.__dict__)
    except RulesFileError as exc:  # a helper refused by the guard
        raise RulesFileError(f"{_where(path, exc)}: imports {exc}") from None
    except (Exception, SystemExit) as exc:  # sys.exit() in a file is its error, not the daemon's end
        raise RulesFileError(f"{_where(path, exc)}: {type(exc).__name__}: {exc}") from None
    finally:
        sys.path.remove(str(folder))
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
    module, text = load_module(path, allow_writable)
    if not hasattr(module, kind):
        raise RulesFileError(f"{path}: defines no `{kind}` list (expected `{kind} = [...]`)")
    items = getattr(module, kind)
    if not isinstance(items, (list, tuple)):
        raise RulesFileError(f"{path}: `{kind}` must be a list, not {type(items).__name__}")
    problems: list[str] = []
    parsed: tuple[Any, ...] = ()
    exceptions: tuple[RuleException, ...] = ()
    try:
        parsed = parse(path, items)
    except RulesFileError as exc:
        problems.append(str(exc))
    if kind == "rules" and hasattr(module, "exceptions"):
        try:
            exceptions = parse_exceptions(path, module.exceptions)
        except ExceptionError as exc:
            problems.append(str(exc))
    max_new_stops = None
    if kind == "rules" and hasattr(module, "max_new_stops"):
        try:
            max_new_stops = _max_new_stops(path, module.max_new_stops)
        except RulesFileError as exc:
            problems.append(str(exc))
    if problems:
        raise RulesFileError("\n".join(problems))
    sha256 = hashlib.sha256(text.encode()).hexdigest()
    return Loaded(str(path), sha256, text, parsed, exceptions, max_new_stops)


def _max_new_stops(path: Path, value: Any) -> int:
    """A rules file's own limit for the blast-radius guard (instead of MAX_NEW_STOPS)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise RulesFileError(
            f"{path}: `max_new_stops` must be a whole number of at least 0 (how many running containers "
            f"this version may stop that the version in force leaves alone), not {value!r}"
        )
    return value


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
        action = _remedy(where, item.get("action"))
        rule = Rule(
            name=name,
            check=_callable(where, item, "rule", "container"),
            description=_text(where, item, "description"),
            severity=_severity(where, item.get("severity")),
            mode=_mode(where, item.get("mode")),
            prevent=_flag(where, item, "prevent"),
            meta={key: item[key] for key in LIBRARY_KEYS if key in item},
            for_s=_duration(where, item, "for"),
            grace_s=_duration(where, item, "grace"),
            action=action,
            limits=_limits(where, item.get("limits"), action),
        )
        if rule.prevent and rule.timed:
            raise RulesFileError(
                f"{where}: 'prevent' acts at create time, before any sample: it cannot be held 'for' a "
                "time or wait a 'grace'; use one or the other"
            )
        return rule

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
        where = f"{where} ({name!r})"
        target = item.get("target")
        if target is not None and not isinstance(target, str):
            raise RulesFileError(f"{where}: 'target' must be a string")
        return Trigger(
            name,
            _callable(where, item, "trigger", "verdict"),
            once=_flag(where, item, "once"),
            repeat=_flag(where, item, "repeat"),
            target=target,
        )

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


E = TypeVar("E", Severity, Remedy)


def _choice(where: str, key: str, value: Any, kind: type[E], default: E) -> E:
    """One of an enum's values, in any case; `default` when not given."""
    if value is None:
        return default
    try:
        return kind(str(value).lower())
    except ValueError:
        accepted = ", ".join(choice.value for choice in kind)
        raise RulesFileError(f"{where}: {key} {value!r} is not one of {accepted}") from None


def _severity(where: str, value: Any) -> Severity:
    return _choice(where, "severity", value, Severity, Severity.MEDIUM)


def _duration(where: str, item: dict[str, Any], key: str) -> float:
    if item.get(key) is None:
        return 0.0
    try:
        return duration_s(item[key])
    except ValueError as exc:
        raise RulesFileError(f"{where}: '{key}' {exc}") from None


def _remedy(where: str, value: Any) -> Remedy:
    return _choice(where, "action", value, Remedy, Remedy.KILL)


def _limits(where: str, value: Any, action: Remedy) -> Limits | None:
    """The "limits" of a rule whose action is "limit" (required there, refused elsewhere)."""
    if value is None:
        if action is Remedy.LIMIT:
            raise RulesFileError(
                f'{where}: "action": "limit" needs "limits", such as '
                '{"memory": "2g", "cpus": 1.5, "pids": 512}'
            )
        return None
    if action is not Remedy.LIMIT:
        raise RulesFileError(f'{where}: \'limits\' is used only with "action": "limit"')
    if not isinstance(value, dict) or not value:
        raise RulesFileError(f"{where}: 'limits' must be a dict with one or more of memory, cpus, pids")
    unknown = set(value) - LIMIT_KEYS
    if unknown:
        raise RulesFileError(
            f"{where}: unknown limit(s) {', '.join(sorted(map(str, unknown)))}; accepted: cpus, memory, pids"
        )
    try:
        memory = None if value.get("memory") is None else size_bytes(value["memory"])
    except ValueError as exc:
        raise RulesFileError(f"{where}: limits 'memory' {exc}") from None
    cpus, pids = value.get("cpus"), value.get("pids")
    if cpus is not None and (isinstance(cpus, bool) or not isinstance(cpus, (int, float)) or not cpus > 0):
        raise RulesFileError(f"{where}: limits 'cpus' {cpus!r} must be a number of CPUs above 0, such as 1.5")
    if pids is not None and (isinstance(pids, bool) or not isinstance(pids, int) or pids < 1):
        raise RulesFileError(f"{where}: limits 'pids' {pids!r} must be a whole number of at least 1")
    if memory is not None and memory < 6 * 1024 * 1024:
        raise RulesFileError(f"{where}: limits 'memory' must be at least 6m (the engine's minimum)")
    return Limits(memory, None if cpus is None else int(cpus * 1e9), pids)


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
