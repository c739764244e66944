"""The few errors the rest of docker-enforcer sees from the engine; SDK exceptions stop at this boundary."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import docker.errors
import requests.exceptions
import urllib3.exceptions


class EngineError(Exception):
    """The engine refused or failed a request."""


class EngineUnavailable(EngineError):
    """The engine cannot be reached (socket missing, connection refused, timeout): retry later."""


class ContainerGone(EngineError):
    """The container no longer exists: normal on a busy host, never an alarm."""


@contextlib.contextmanager
def translated(what: str) -> Iterator[None]:
    """Run a Docker SDK call, turning its exceptions into EngineUnavailable, ContainerGone or EngineError."""
    try:
        yield
    except docker.errors.NotFound as exc:
        raise ContainerGone(f"{what}: {_explanation(exc)}") from None
    except docker.errors.APIError as exc:
        raise EngineError(f"{what}: {_explanation(exc)}") from None
    except (
        requests.exceptions.ConnectionError,
        requests.exceptions.Timeout,
        urllib3.exceptions.HTTPError,
        docker.errors.DockerException,
        ConnectionError,
        FileNotFoundError,
    ) as exc:
        raise EngineUnavailable(f"{what}: {exc}") from None


def _explanation(exc: docker.errors.APIError) -> str:
    return str(exc.explanation or exc)
