"""What in a container's `docker inspect` data is secret, and keeping it out of everything the daemon shows.

Secret: env entries (`--env`, `--env-file`), the command line (`Path`, `Args`, `Cmd`, `Entrypoint`), the
healthcheck command, log driver options (`--log-opt splunk-token=...`), volume driver options (a CIFS
volume's password) and whatever sits under a key that names a credential (`auth`, `password`, `token`,
`secret`, ...), labels included. Two uses, both on the raw values, before any formatting:

- `redact(message, params)`: user code (a rule, a whitelist lambda, a trigger) that raises may quote those
  values in its exception, and Python quotes them in many forms: `str()` as they are, `repr()` with either
  quote and `\\`, `\\xa0`, `\\u200b` escapes (a KeyError's text is the repr of its key), `ascii()`, the repr
  of their UTF-8 bytes, JSON, percent-encoding, and a repr or JSON form quoted again (the str of a list
  inside a KeyError). Every form of every value, and of its pieces of 4 characters or more (an error may
  quote a part), is blanked out, and so is any stretch of 8 characters of a longer form (Python cuts some
  quotes short: `int()` shows 200 characters of its argument).
- `scrub(params)`: a copy of the inspect data with every secret value replaced, for what is recorded.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import cached_property
from typing import Any
from urllib.parse import quote, quote_plus

REDACTED = "***"
ANY = "*"  # in a path: every item of a list
# Where secrets sit in `docker inspect` data (keys match without regard to case).
SECRET_PATHS: tuple[tuple[str, ...], ...] = (
    ("Path",),
    ("Args",),
    ("Config", "Env"),
    ("Config", "Cmd"),
    ("Config", "Entrypoint"),
    ("Config", "Healthcheck", "Test"),
    ("HostConfig", "LogConfig", "Config"),
    ("HostConfig", "Mounts", ANY, "VolumeOptions", "DriverConfig", "Options"),
)
# A key that names a credential: everything under it is secret, wherever it is (`author` is no `auth`).
CREDENTIAL_KEY = re.compile(r"passw(or)?d|secret|token|credential|api.?key|private.?key|auth(?!or)", re.I)
_PIECES = re.compile(r"[\s=,;:&|'\"]+")
WHOLE_MIN = 3  # a whole value this long or longer is blanked out
PIECE_MIN = 4  # and so is each of its pieces this long or longer
GRAM = 8  # of a longer form, any part this long is blanked out
LABEL_SHOWN = 1024  # of a label's value, what is recorded


def redact(message: str, params: Mapping[str, Any], also: Sequence[str] = ()) -> str:
    """`message` with every form of the container's secret values (and of `also`) blanked out."""
    return Redactor(params, also).redact(message)


class Redactor:
    """The redaction of one container's messages; its secrets and their forms are worked out on first use.
    `also`: more secret values than the inspect data holds (the arguments of the exec being judged)."""

    def __init__(self, params: Mapping[str, Any], also: Sequence[str] = ()) -> None:
        self._params = params
        self._also = tuple(also)

    @cached_property
    def _patterns(self) -> tuple[frozenset[str], tuple[str, ...]]:
        """Every stretch of GRAM characters of the long forms, and the short forms whole."""
        grams: set[str] = set()
        short: set[str] = set()
        for secret in secrets(self._params, self._also):
            for form in forms(secret):
                if len(form) < GRAM:
                    short.add(form)
                else:
                    grams.update(form[i : i + GRAM] for i in range(len(form) - GRAM + 1))
        return frozenset(grams), tuple(short)

    def redact(self, message: str) -> str:
        """Every stretch of `message` that a short form covers, or that GRAM or more characters of a long
        form cover (so a form cut short, as `int()` cuts its argument at 200 characters, still matches),
        becomes `***`."""
        grams, short = self._patterns
        covered = bytearray(len(message))
        for start in range(len(message) - GRAM + 1):
            if message[start : start + GRAM] in grams:
                covered[start : start + GRAM] = b"\x01" * GRAM
        for form in short:
            start = message.find(form)
            while start >= 0:
                covered[start : start + len(form)] = b"\x01" * len(form)
                start = message.find(form, start + 1)
        if not any(covered):
            return message
        out: list[str] = []
        for i, char in enumerate(message):
            if not covered[i]:
                out.append(char)
            elif i == 0 or not covered[i - 1]:
                out.append(REDACTED)
        return "".join(out)

    def error(self, exc: BaseException) -> str:
        """`Type: message` of an exception raised by user code, redacted."""
        return self.redact(describe(exc))


def describe(exc: BaseException) -> str:
    """`Type: message`; an exception whose `str()` itself raises is named by its type alone."""
    try:
        text = str(exc)
    except Exception:  # noqa: BLE001 - user code's exception, user code's __str__
        text = "<str() failed>"
    return f"{type(exc).__name__}: {text}"


def secrets(params: Mapping[str, Any], also: Sequence[str] = ()) -> set[str]:
    """The container's secret values (env entries and their values) and `also`, and their pieces, that are
    long enough to blank out without blanking out everything."""
    whole: set[str] = set()
    for value in (*_secret_values(params), *also):
        text = str(value)
        whole.add(text)
        whole.add(text.partition("=")[2])  # an env entry's value, a `key=value` word's value
    pieces = {piece for text in whole for piece in _PIECES.split(text)}
    return {s for s in whole if len(s) >= WHOLE_MIN} | {p for p in pieces if len(p) >= PIECE_MIN}


def forms(secret: str) -> set[str]:
    """The texts `secret` becomes when quoted by str, repr, ascii, bytes repr, JSON or URLs, and when a repr or
    JSON form is quoted again by repr or JSON (a KeyError of a list's str, JSON of a repr)."""
    once = _quoted(secret, thorough=True)
    return once | {form for text in once - {secret} for form in _quoted(text, thorough=False)}


def _quoted(text: str, thorough: bool) -> set[str]:
    if _PLAIN.fullmatch(text):
        return {text}
    found = {text, json.dumps(text)[1:-1], json.dumps(text, ensure_ascii=False)[1:-1]}
    found |= {_escaped(text, "'", ascii_only=False), _escaped(text, "", ascii_only=False)}  # repr()
    if thorough:
        found |= {quote(text), quote(text, safe=""), quote_plus(text)}
        utf8 = text.encode("utf-8", "surrogatepass").decode("latin-1")  # one character per byte
        for quote_char in ("'", ""):  # repr() escapes a quote only when the text holds both
            found.add(_escaped(text, quote_char, ascii_only=True))  # ascii(), unicode-escape
            found.add(_escaped(utf8, quote_char, ascii_only=True))  # repr() of the UTF-8 bytes
    return found


_PLAIN = re.compile(r"[A-Za-z0-9_.~-]*")  # what no quoting changes: letters, digits and URL-safe marks
_SHORT_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escaped(text: str, quote_char: str, ascii_only: bool) -> str:
    """The body of Python's repr (or ascii) of `text` when `quote_char` is the quote it escapes."""
    table = {ord(char): _escape(char, quote_char, ascii_only) for char in set(text)}
    return text.translate(table)


def _escape(char: str, quote_char: str, ascii_only: bool) -> str:
    if char in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[char]
    if char == quote_char:
        return "\\" + char
    if char.isprintable() and not (ascii_only and ord(char) > 0x7E):
        return char
    if ord(char) <= 0xFF:
        return f"\\x{ord(char):02x}"
    if ord(char) <= 0xFFFF:
        return f"\\u{ord(char):04x}"
    return f"\\U{ord(char):08x}"


def scrub(params: Mapping[str, Any]) -> dict[str, Any]:
    """A plain copy of inspect data with every secret value replaced by `***` (keys and list lengths kept)."""
    copied = _walk(params, _PATHS, _blanked)
    assert isinstance(copied, dict)
    return copied


def scrub_labels(labels: Mapping[str, Any]) -> dict[str, str]:
    """Labels as plain strings, those whose key names a credential blanked out, each value cut to LABEL_SHOWN
    characters (whoever creates a container chooses its labels, of any size)."""
    return {str(k): REDACTED if CREDENTIAL_KEY.search(str(k)) else _cut(str(v)) for k, v in _items(labels)}


def _cut(text: str) -> str:
    return text if len(text) <= LABEL_SHOWN else text[: LABEL_SHOWN - 1] + "…"


def _secret_values(params: Mapping[str, Any]) -> list[Any]:
    """Every scalar that `scrub` blanks out."""
    found: list[Any] = []
    _walk(params, _PATHS, lambda secret: found.extend(_leaves(secret)))
    return found


_PATHS = tuple(tuple(key.casefold() for key in path) for path in SECRET_PATHS)


def _walk(value: Any, paths: Sequence[tuple[str, ...]], secret: Callable[[Any], Any]) -> Any:
    """A plain copy of `value` in which each secret part is replaced by `secret(part)`; `paths` are the rest
    of SECRET_PATHS from here."""
    if isinstance(value, Mapping):
        return {
            str(key): _step(child, str(key).casefold(), paths, secret, bool(CREDENTIAL_KEY.search(str(key))))
            for key, child in _items(value)
        }
    if isinstance(value, (list, tuple)):
        return [_step(item, ANY, paths, secret, False) for item in value]
    return value


def _step(
    value: Any, step: str, paths: Sequence[tuple[str, ...]], secret: Callable[[Any], Any], credential: bool
) -> Any:
    below = [path[1:] for path in paths if path[0] == step]
    if credential or () in below:
        return secret(value)
    return _walk(value, [path for path in below if path], secret)


def _blanked(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _blanked(v) for k, v in _items(value)}
    if isinstance(value, (list, tuple)):
        return [_blanked(item) for item in value]
    return None if value is None else REDACTED


def _leaves(value: Any) -> Iterator[Any]:
    if isinstance(value, Mapping):
        for _, child in _items(value):
            yield from _leaves(child)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _leaves(item)
    elif value is not None:
        yield value


def _items(mapping: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    """The raw items: a CaseInsensitiveMap's unwrapped children, any other mapping's items."""
    return iter(dict.items(mapping) if isinstance(mapping, dict) else mapping.items())
