"""A user file's text as /rules, /triggers and the page show it: without the secrets people write in it.

Notifier URLs carry tokens (Slack's and most webhooks' in the path) and headers carry credentials. The text
keeps its shape so the owner still recognises the file; blanked out are:
- every URL's user info, path, query and fragment (`https://hooks.slack.com/***`: scheme and host stay);
- a string given to a name that says secret (`token`, `password`, `secret`, `api_key`, `auth...`, `cookie`,
  `signature`, or ending in `key`: `hmac_key`), as a dict value, a keyword argument or an assignment:
  `"Authorization": "***"`;
- what follows `Bearer` or `Basic` in a string, and `token` when a long word follows it.
Safer still is to keep them out of the file: `os.environ["SLACK_URL"]` shows as written.
"""

from __future__ import annotations

import re

BLANK = "***"
_URL = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?:[^\s/'\"@]*@)?(?P<host>[^\s/'\"?#]*)(?P<rest>[^\s'\"]*)"
)
_SECRET_NAME = r"(?:\w*(?:token|secret|passw(?:or)?d|api[_-]?key|auth\w*|cookie|signature)\w*|\w*key)"
_SECRET_VALUE = re.compile(
    rf"(?i)(?P<head>\b{_SECRET_NAME}['\"]?\s*[:=]\s*[rRbBuUfF]{{0,2}})(?P<quote>['\"])(?P<value>(?:\\.|(?!(?P=quote)).)*)(?P=quote)"
)
_CREDENTIAL = re.compile(
    r"(?i)\b(?:(?P<scheme>bearer|basic)\s+[A-Za-z0-9._~+/=:-]+|(?P<word>token)\s+[A-Za-z0-9._~+/=:-]{12,})"
)


def without_secrets(text: str) -> str:
    """The text with URLs cut to scheme and host and credential values blanked out (see the module)."""
    text = _URL.sub(_url, text)
    text = _SECRET_VALUE.sub(lambda m: f"{m['head']}{m['quote']}{BLANK}{m['quote']}", text)
    return _CREDENTIAL.sub(lambda m: f"{m['scheme'] or m['word']} {BLANK}", text)


def _url(match: re.Match[str]) -> str:
    rest = match["rest"]
    return f"{match['scheme']}{match['host']}" + (f"/{BLANK}" if rest.strip("/") else rest)
