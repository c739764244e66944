"""Log lines: one record is one line in text format, whatever a container's owner put in what is logged."""

from __future__ import annotations

import json
import logging
import sys

from enforcer.logs import JsonFormatter, TextFormatter, configure

FORGED = "sh\n2026-12-01 12:00:00,000 INFO enforcer.pipeline: all clear\r\x1b[2Kok\u2028x"


def record(message: str, *args: object, exc: bool = False) -> logging.LogRecord:
    info = sys.exc_info() if exc else None
    return logging.LogRecord("enforcer.pipeline", logging.INFO, __file__, 1, message, args, info)


def test_a_value_with_line_breaks_cannot_forge_a_log_line() -> None:
    """An exec's executable, a label quoted in a rule error: chosen by whoever uses the Docker socket."""
    line = TextFormatter("%(levelname)s %(name)s: %(message)s").format(record("violation: exec=%s", FORGED))
    assert "\n" not in line and "\r" not in line and "\x1b" not in line and "\u2028" not in line
    assert line == (
        "INFO enforcer.pipeline: violation: exec=sh\\n2026-12-01 12:00:00,000 INFO enforcer.pipeline: "
        "all clear\\r\\x1b[2Kok\\u2028x"
    )


def test_a_traceback_stays_on_its_own_lines() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        line = TextFormatter("%(message)s").format(record("failed", exc=True))
    first, *rest = line.split("\n")
    assert first == "failed" and rest[0].startswith("Traceback") and rest[-1] == "ValueError: boom"


def test_json_lines_carry_the_value_as_it_is() -> None:
    line = JsonFormatter().format(record("violation: exec=%s", FORGED))
    assert "\n" not in line and json.loads(line)["message"] == f"violation: exec={FORGED}"


def test_the_text_format_configured_is_the_escaping_one(restore_logging: None) -> None:
    configure("INFO", "text")
    (handler,) = logging.getLogger("enforcer").handlers
    assert isinstance(handler.formatter, TextFormatter)
