"""The command line: `docker-enforcer run | check | audit | test | notify-test | --version`.

Exit status: 0 fine, 1 violations found (audit), a failing case (test) or a trigger that failed or hung
(notify-test), 2 bad settings or files, 3 the engine cannot be reached, 4 nothing violated but some rule
raised (audit).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import socket
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from enforcer import __version__, logs
from enforcer.audit import (
    InspectFileError,
    audit_engine,
    audit_file,
    change_table,
    compare,
    table,
    verdict_json,
)
from enforcer.casetest import load_cases, run_cases
from enforcer.dockerhost.client import connect
from enforcer.dockerhost.errors import EngineUnavailable
from enforcer.dockerhost.peers import PeerFolder
from enforcer.dockerhost.self_id import own_container_id
from enforcer.facts.gather import FactGatherer, GatherOptions
from enforcer.judge import guard
from enforcer.judge.exceptions import ending_soon
from enforcer.judge.judge import JudgeOptions
from enforcer.judge.loader import RulesFileError
from enforcer.judge.policy import Policy, load_policy
from enforcer.judge.probe import reads_exec
from enforcer.judge.rules import Remedy, Rule
from enforcer.judge.verdict import Verdict
from enforcer.settings import IGNORED_VARIABLES, Mode, Settings, SettingsError
from enforcer.tuning import open_files_for
from enforcer.units import text_duration

log = logging.getLogger("enforcer.cli")

EXIT_OK, EXIT_VIOLATIONS, EXIT_USAGE, EXIT_ENGINE, EXIT_RULE_ERRORS = 0, 1, 2, 3, 4


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="docker-enforcer",
        description="Audits and enforces the host owner's rules on every container of a Docker host.",
    )
    top.add_argument("--version", action="version", version=f"docker-enforcer {__version__}")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="watch the engine and enforce the rules, until stopped (the daemon)")
    _file_options(run)

    check = sub.add_parser(
        "check", help="validate the rules, whitelist and triggers files (no Docker needed)"
    )
    _file_options(check)

    audit = sub.add_parser(
        "audit", help="judge every running container once and report; never stops anything"
    )
    _file_options(audit)
    audit.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    audit.add_argument(
        "--compare",
        type=Path,
        metavar="OLD_RULES",
        help="what-if: list only the containers whose verdict differs between OLD_RULES and the rules in "
        "use (--rules), with the rules that newly flag or release each",
    )
    audit.add_argument(
        "--from",
        dest="from_file",
        type=Path,
        metavar="FILE",
        help="judge saved `docker inspect` output (a JSON list) offline, without an engine",
    )
    audit.add_argument(
        "--images",
        dest="images_file",
        type=Path,
        metavar="FILE",
        help="with --from: saved `docker image inspect` output of the containers' images, for the rules that "
        "read c.image_info (without it they are not judged)",
    )

    test = sub.add_parser(
        "test", help="run rule tests: each case a container and the exact rules it violates (no Docker)"
    )
    test.add_argument(
        "cases", type=Path, metavar="CASES", help="cases file (`cases = [...]`, see the README)"
    )
    _file_options(test)

    notify_test = sub.add_parser(
        "notify-test", help="send one test notification through every trigger and say what each answered"
    )
    _file_options(notify_test)
    notify_test.add_argument(
        "--owner", default="[unknown]", help="the test container's owner, to try an owner's route"
    )
    notify_test.add_argument(
        "--timeout", type=float, default=30.0, metavar="S", help="seconds to wait for each trigger (30)"
    )
    return top


def _file_options(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument(
        "--rules",
        type=Path,
        metavar="FILE",
        help="rules file (default: RULES_FILE, then rules/rules.py, then ./rules.py, then the packaged "
        "default, which flags nothing)",
    )
    cmd.add_argument(
        "--whitelist",
        type=Path,
        metavar="FILE",
        help="whitelist rules file (default: WHITELIST_RULES_FILE, then whitelist_rules/whitelist_rules.py, "
        "then none)",
    )
    cmd.add_argument(
        "--triggers",
        type=Path,
        metavar="FILE",
        help="triggers file (default: TRIGGERS_FILE, then triggers/triggers.py, then none)",
    )


def settings_for(args: argparse.Namespace, environ: Mapping[str, str]) -> Settings:
    settings = Settings.from_env(environ)
    files = dataclasses.replace(
        settings.files,
        rules=args.rules or settings.files.rules,
        whitelist_rules=args.whitelist or settings.files.whitelist_rules,
        triggers=args.triggers or settings.files.triggers,
    )
    return dataclasses.replace(settings, files=files)


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    args = parser().parse_args(argv)
    environ = os.environ if environ is None else environ
    try:
        settings = settings_for(args, environ)
    except SettingsError as exc:
        print(f"docker-enforcer: {exc}", file=sys.stderr)
        return EXIT_USAGE
    logs.configure(settings.log_level, settings.log_format)
    for name in settings.ignored_variables:
        log.warning(
            "%s is ignored: docker-enforcer has no authorization-plugin mode (%s)",
            name,
            ", ".join(IGNORED_VARIABLES),
        )
    try:
        policy = load_policy(settings)
    except RulesFileError as exc:
        print_problems(exc)
        return EXIT_USAGE
    if args.command == "check":
        return run_check(policy, settings)
    if args.command == "test":
        return run_tests(args.cases, settings, policy)
    if args.command == "notify-test":
        return run_notify_test(args, settings, policy)
    if args.command == "run":
        log.info("files in use: %s", ", ".join(f"{kind} {path}" for kind, path in policy.paths().items()))
        return run_daemon(settings, policy)
    return run_audit(args, settings, policy)


def print_problems(exc: RulesFileError) -> None:
    """Every problem of a file, one line each (a file is reported whole, not only its first problem)."""
    for line in str(exc).splitlines():
        print(f"docker-enforcer: {line}", file=sys.stderr)


def run_daemon(settings: Settings, policy: Policy) -> int:
    from enforcer.daemon import Daemon, StartupError  # Flask and waitress load only for the daemon

    try:
        return Daemon(settings, policy).run()
    except StartupError as exc:
        print(f"docker-enforcer: {exc}", file=sys.stderr)
        return EXIT_USAGE


def run_notify_test(args: argparse.Namespace, settings: Settings, policy: Policy) -> int:
    """0 when every trigger answered, 1 when one failed or hung (each one's answer printed)."""
    from enforcer.notifytest import send_tests

    if not policy.triggers:
        print(f"no triggers in {policy.sources['triggers'].path}: nothing to send")
        return EXIT_OK
    answers = send_tests(policy, socket.gethostname(), str(settings.mode), args.owner, args.timeout)
    for answer in answers:
        print(answer)
    return EXIT_OK if all(a.ok for a in answers) else EXIT_VIOLATIONS


def run_check(policy: Policy, settings: Settings) -> int:
    print(f"rules ({len(policy.rules)}) from {policy.sources['rules'].path}:")
    for rule in policy.rules:
        on_exec = ["reads c.exec"] if reads_exec(rule) else []
        extra = f" [{', '.join([str(rule.severity), mode_and_origin(rule, settings.mode), *over_time(rule), *on_exec])}]"
        labels = [str(rule.meta["id"])] if "id" in rule.meta else []
        labels += [f"CIS {rule.meta['cis']}"] if rule.meta.get("cis") else []
        ident = f" ({', '.join(labels)})" if labels else ""
        print(f"  - {rule.name}{ident}{extra}")
    now = datetime.now(UTC)
    exceptions = sorted(policy.whitelist.exceptions, key=lambda e: e.until)
    if exceptions:
        print(f"exceptions ({len(exceptions)}):")
    for exception in exceptions:
        left = f"{exception.days_left(now)} days left" if exception.active(now) else "ran out"
        print(f"  - {exception} [{left}]")
    print(f"whitelist rules ({len(policy.whitelist.rules)}) from {policy.sources['whitelist_rules'].path}")
    print(f"triggers ({len(policy.triggers)}) from {policy.sources['triggers'].path}")
    print(f"rules version {policy.version[:12]}")
    print(f"max new stops {guard.limit_of(policy, settings.max_new_stops)}" + (
        " (max_new_stops in the rules file)" if policy.max_new_stops is not None else " (MAX_NEW_STOPS)"
    ))  # fmt: skip
    for warning in check_warnings(policy, settings):
        print(f"warning: {warning}")
    return EXIT_OK


def check_warnings(policy: Policy, settings: Settings) -> list[str]:
    """What loads but cannot be what the author meant: no rules, a rule mode this instance's MODE overrides."""
    out = []
    if not policy.rules:
        out.append(f"{policy.sources['rules'].path} defines no rules: nothing will ever be flagged")
    for rule in policy.rules:
        if rule.mode is Mode.KILL and settings.mode is Mode.WARN:
            out.append(f"rule {rule.name!r} asks for KILL, but MODE is WARN: it only records")
        if 0 < rule.for_s < 2 * settings.sample_interval_s:
            out.append(
                f"rule {rule.name!r} is held 'for' {text_duration(rule.for_s)}, under two samples "
                f"(SAMPLE_INTERVAL_S={settings.sample_interval_s}): one or two samples decide it"
            )
    on_exec = [rule.name for rule in policy.rules if reads_exec(rule)]
    if on_exec and not settings.run_exec_events:
        out.append(
            f"{', '.join(map(repr, on_exec))} read c.exec, which is set only on exec checks: with "
            "RUN_EXEC_EVENTS off they flag nothing"
        )
    now = datetime.now(UTC)
    names = {rule.name for rule in policy.rules}
    for exception in policy.whitelist.exceptions:
        if not exception.active(now):
            out.append(f"{exception} has run out: it exempts nothing; remove it or extend it")
        elif exception in ending_soon([exception], now):
            out.append(f"{exception} ends in {exception.days_left(now)} days")
        if exception.rule is not None and exception.rule not in names:
            out.append(f"{exception} names no rule of this file")
    return out


def run_tests(cases_path: Path, settings: Settings, policy: Policy) -> int:
    try:
        cases = load_cases(cases_path, settings.files.allow_writable, [rule.name for rule in policy.rules])
    except RulesFileError as exc:
        print_problems(exc)
        return EXIT_USAGE
    results = run_cases(cases, policy)
    for result in results:
        print(result)
    failed = sum(not result.passed for result in results)
    print(f"{len(results) - failed} passed, {failed} failed")
    return EXIT_VIOLATIONS if failed else EXIT_OK


def over_time(rule: Rule) -> list[str]:
    """How a rule is held over time and what it does, for `check`: ["for 10m", "grace 1h", "action pause"]."""
    out = [f"{key} {text_duration(s)}" for key, s in (("for", rule.for_s), ("grace", rule.grace_s)) if s]
    if rule.action is not Remedy.KILL or rule.timed:
        out.append(f"action {rule.action}")
    if rule.limits is not None:
        out.append(f"limits {rule.limits}")
    return out


def mode_and_origin(rule: Rule, instance_mode: Mode) -> str:
    """The mode the rule acts in under this MODE, and what decides it (a rule's "mode": "WARN" wins)."""
    mode = rule.effective_mode(instance_mode)
    if rule.mode is None:
        return f"{mode} from MODE"
    if rule.mode is mode:
        return f"{mode} from the rule"
    return f"{mode} from MODE; the rule's {rule.mode} needs MODE=KILL"


def run_audit(args: argparse.Namespace, settings: Settings, policy: Policy) -> int:
    peers = PeerFolder(settings.peers_dir)
    peers.refresh()
    options = JudgeOptions(
        settings.stop_on_first_violation, settings.rule_errors_are_violations, own_container_id(), peers.ids
    )
    if args.images_file is not None and args.from_file is None:
        print("docker-enforcer: --images goes with --from (a live audit asks the engine)", file=sys.stderr)
        return EXIT_USAGE
    if args.from_file is not None:
        try:
            verdicts = audit_file(
                args.from_file, policy, options, settings.owner_label_chain, args.images_file
            )
        except InspectFileError as exc:
            print(f"docker-enforcer: {exc}", file=sys.stderr)
            return EXIT_USAGE
    else:
        open_files_for(settings.engine_concurrency)
        try:
            host = connect(
                settings.docker_socket,
                settings.docker_req_timeout_s,
                settings.docker_tls_verify,
                settings.docker_cert_path,
            )
            gatherer = FactGatherer(
                host,
                GatherOptions(
                    False,
                    settings.disable_params,
                    settings.disable_metrics,
                    settings.owner_label_chain,
                    settings.engine_concurrency,
                ),
            )
            try:
                verdicts = audit_engine(gatherer, policy, options, _progress_bar())
            finally:
                gatherer.close()
                host.close()
        except EngineUnavailable as exc:
            print(
                f"docker-enforcer: cannot reach the Docker engine at {settings.docker_socket} ({exc}); "
                "check DOCKER_SOCKET and that the engine runs",
                file=sys.stderr,
            )
            return EXIT_ENGINE
    if args.compare is not None:
        return _compare(args, settings, policy, options, verdicts)
    if args.json:
        print(json.dumps([verdict_json(v) for v in verdicts], indent=2))
    else:
        print(table(verdicts))
    return audit_status(verdicts)


def audit_status(verdicts: Sequence[Verdict]) -> int:
    """1 when a container violates a rule; else 4 when a rule or whitelist lambda raised (not really checked)."""
    if any(v.verdict for v in verdicts):
        return EXIT_VIOLATIONS
    return EXIT_RULE_ERRORS if any(v.errors or v.whitelist_errors for v in verdicts) else EXIT_OK


def _compare(
    args: argparse.Namespace, settings: Settings, policy: Policy, options: JudgeOptions, new: list[Verdict]
) -> int:
    """What-if: the same containers judged by the old rules (all rules judged on both sides)."""
    old_settings = dataclasses.replace(
        settings, files=dataclasses.replace(settings.files, rules=args.compare)
    )
    try:
        old_policy = load_policy(old_settings)
    except RulesFileError as exc:
        print_problems(exc)
        return EXIT_USAGE
    every_rule = dataclasses.replace(options, stop_on_first_violation=False)
    changes = compare(new, old_policy, policy, every_rule)
    if args.json:
        print(json.dumps([change.json() for change in changes], indent=2))
    else:
        print(change_table(changes, args.compare, policy.sources["rules"].path))
    return EXIT_VIOLATIONS if changes else EXIT_OK


def _progress_bar() -> Callable[[int, int], None] | None:
    """A progress bar on stderr when it is a terminal; stdout stays clean for the report."""
    if not sys.stderr.isatty():
        return None

    def show(done: int, total: int) -> None:
        width = 30
        filled = width * done // max(total, 1)
        end = "\n" if done >= total else ""
        sys.stderr.write(f"\rgathering facts [{'#' * filled}{'.' * (width - filled)}] {done}/{total}{end}")
        sys.stderr.flush()

    return show
