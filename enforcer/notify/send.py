"""Sending a notification: the receiver chosen by owner, an HTTP POST of JSON, retries with backoff.

URLs and headers are secrets (Slack and webhook URLs carry their token in the path): nothing here ever logs,
raises or returns more of a URL than its scheme and host (`safe_url`).
"""

from __future__ import annotations

import http.client
import json
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from enforcer.retry import Backoff, retry

BACKOFF = Backoff(0.5, 8.0)
USER_AGENT = "docker-enforcer"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is answered as it came (an HTTPError): urllib would send the request again, headers and
    credentials included, wherever the Location points."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


class NotifyError(Exception):
    """A notification that could not be delivered; the message names the receiver by scheme and host only."""


class _Retryable(NotifyError):
    """A failure worth another attempt: no answer, a timeout, a 5xx or a 429."""


def safe_url(url: str) -> str:
    """`https://hooks.slack.com/services/T0/B0/XXX` -> `https://hooks.slack.com`: what logs and the API show."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(an invalid URL)"
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme or '?'}://{host}{port}"


def check_url(url: Any, what: str) -> str:
    """The URL when it is http(s) with a host; a ValueError naming it by scheme and host otherwise."""
    if not isinstance(url, str):
        raise ValueError(f"{what}: the URL must be a string, not {type(url).__name__}")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{what}: {safe_url(url)} is not an http:// or https:// URL with a host")
    return url


@dataclass(frozen=True)
class Routes:
    """Receivers by owner (`owners`), with `default` for every other owner (None: those are not sent)."""

    default: str | None
    owners: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, what: str, url: str | None, owners: Mapping[str, str] | None) -> Routes:
        if owners is not None and not isinstance(owners, Mapping):
            raise ValueError(f"{what}: owners must be a dict of owner -> URL")
        checked = {
            str(owner): check_url(u, f"{what} (owner {owner!r})") for owner, u in (owners or {}).items()
        }
        if url is None and not checked:
            raise ValueError(f"{what}: give a URL, owners={{...}}, or both")
        return cls(None if url is None else check_url(url, what), checked)

    def url_for(self, owner: str) -> str | None:
        return self.owners.get(owner, self.default)

    def describe(self) -> str:
        """Where it sends, without secrets: `https://hooks.slack.com (+2 owners)`."""
        shown = safe_url(self.default) if self.default else "owners only"
        return f"{shown} (+{len(self.owners)} owners)" if self.owners else shown


@dataclass(frozen=True)
class Post:
    """How a notifier posts: its headers (secrets), timeout and retries (after the first attempt)."""

    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    timeout_s: float = 5.0
    retries: int = 3

    def send(self, url: str, body: Any, stop: threading.Event) -> str:
        """POST `body` as JSON, retried with backoff on failures worth it; returns the receiver's answer
        ("200 OK ok"), raises NotifyError once it gives up (or at once on a 4xx other than 429)."""
        try:
            return retry(lambda: self._once(url, body), (_Retryable,), stop, self.retries + 1, BACKOFF)
        except _Retryable as exc:
            raise NotifyError(f"{exc} (gave up after {self.retries + 1} attempts)") from None

    def _once(self, url: str, body: Any) -> str:
        data = json.dumps(body, default=str).encode()
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, **self.headers}
        request = urllib.request.Request(url, data=data, headers=headers, method="POST")
        where = safe_url(url)
        try:
            with _OPENER.open(request, timeout=self.timeout_s) as response:  # http(s) checked
                return _answer(response.status, response.reason, response.read(200))
        except urllib.error.HTTPError as exc:
            answer = _answer(exc.code, exc.reason, _head(exc))
            if exc.code >= 500 or exc.code == 429:
                raise _Retryable(f"{where} answered {answer}") from None
            raise NotifyError(f"{where} refused it: {answer}") from None
        except TimeoutError:
            raise _Retryable(f"{where} did not answer within {self.timeout_s:g} s") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise _Retryable(f"{where} could not be reached: {_reason(reason)}") from None
        except (http.client.InvalidURL, ValueError):  # its message quotes the path: never shown
            raise NotifyError(f"{where}: the URL has characters a request cannot carry (spaces?)") from None
        except http.client.HTTPException as exc:  # a broken answer: its text may quote the request
            raise _Retryable(f"{where} answered something that is not HTTP ({type(exc).__name__})") from None


def _answer(status: int, reason: Any, head: bytes) -> str:
    text = head.decode(errors="replace").strip().replace("\n", " ")
    return f"{status} {reason or ''}".strip() + (f": {text[:120]}" if text else "")


def _head(error: urllib.error.HTTPError) -> bytes:
    """The start of an error answer's body; nothing when it cannot be read (the answer still counts)."""
    try:
        return error.read(200) if error.fp else b""
    except (OSError, http.client.HTTPException):
        return b""


def _reason(reason: Any) -> str:
    """An OS error's reason without anything of the URL (its strerror, or its type)."""
    if isinstance(reason, OSError) and reason.strerror:
        return str(reason.strerror)
    if isinstance(reason, TimeoutError):
        return "timed out"
    return type(reason).__name__
