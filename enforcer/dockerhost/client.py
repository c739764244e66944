"""The only code that talks to the Docker engine: list, inspect, stats, kill, stop, update, remove, events.

Returns raw JSON (dicts) and raises only the errors of `enforcer.dockerhost.errors`.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.tls

from enforcer.dockerhost.answer import Answer
from enforcer.dockerhost.errors import EngineUnavailable, translated
from enforcer.dockerhost.fastpath import FastPath

Json = dict[str, Any]


@dataclass(frozen=True)
class Connection:
    """How to reach the engine: URL, request timeout and optional TLS client certificates."""

    url: str
    timeout_s: float = 30
    tls_verify: bool = False
    cert_path: Path | None = None
    pool_size: int = 64


def _tls(conn: Connection) -> docker.tls.TLSConfig | bool:
    if not conn.tls_verify and conn.cert_path is None:
        return False
    path = conn.cert_path or Path(os.path.expanduser("~/.docker"))
    return docker.tls.TLSConfig(
        client_cert=(str(path / "cert.pem"), str(path / "key.pem")),
        ca_cert=str(path / "ca.pem") if conn.tls_verify else None,
        verify=conn.tls_verify,
    )


def _probe_unix_socket(url: str, timeout_s: float) -> None:
    """Raise EngineUnavailable when nothing listens on the socket.

    docker-py leaves its socket unclosed when the connect fails (a ResourceWarning at garbage collection), so
    a missing or dead socket is found out here first, cleanly, with the reason in plain words.
    """
    path = url[len("unix://") :]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout_s)
            sock.connect(path)
    except PermissionError as exc:
        raise EngineUnavailable(f"connecting to {url}: {exc.strerror}; {_access_hint(path)}") from None
    except OSError as exc:
        raise EngineUnavailable(f"connecting to {url}: {exc.strerror or exc}") from None


def _access_hint(path: str) -> str:
    """What to change when the socket refuses us: the image runs as a user, not root."""
    try:
        gid = os.stat(path).st_gid
    except OSError:
        return f"uid {os.getuid()} may not use it"
    return (
        f"uid {os.getuid()} is not in the socket's group {gid}: run the container with `--group-add {gid}` "
        "(`--group-add $(stat -c %g /var/run/docker.sock)`; compose: `group_add`)"
    )


_PLACEHOLDER_VERSION = "1.24"


class DockerHost:
    """A thread-safe handle on one engine, with a connection pool sized for concurrent fan-out."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        if conn.url.startswith("unix://"):
            _probe_unix_socket(conn.url, conn.timeout_s)
        with translated(f"connecting to {conn.url}"):
            self._api = docker.APIClient(
                base_url=conn.url,
                timeout=conn.timeout_s,
                tls=_tls(conn),
                max_pool_size=conn.pool_size,
                version=_PLACEHOLDER_VERSION,  # negotiated below, once the session is set up
            )
            # Not the environment's REQUESTS_CA_BUNDLE (it would replace DOCKER_CERT_PATH's ca.pem, a
            # requests quirk), proxies or netrc: the engine connection is configured by our settings only.
            self._api.trust_env = False
            # Ask the engine for its API version, as version="auto" does; fails fast when it is down.
            self._api._version = self._api._retrieve_server_version()
        tls = bool(_tls(conn))
        self._fast = (
            FastPath(conn.url, self._api.api_version, conn.timeout_s)
            if FastPath.supports(conn.url, tls)
            else None
        )

    def close(self) -> None:
        self._api.close()
        if self._fast is not None:
            self._fast.close()

    def ping(self) -> None:
        """Raises EngineUnavailable when the engine does not answer."""
        with translated(f"ping {self.conn.url}"):
            self._api.ping()

    def info(self) -> Json:
        with translated("info"):
            return self._api.info()

    def list_running(self) -> list[Json]:
        """Summaries of running containers (`docker ps`): Id, Names, Image, ImageID, Labels, Created, State."""
        with translated("list containers"):
            return self._api.containers()

    def list_created(self) -> list[Json]:
        """Summaries of containers created and never started (`docker create`, `compose create`)."""
        with translated("list containers"):
            return self._api.containers(all=True, filters={"status": "created"})

    def inspect(self, cid: str) -> Json:
        if self._fast is not None:
            return self._fast.inspect(cid)
        with translated(f"inspect {cid[:12]}"):
            return self._api.inspect_container(cid)

    def inspect_soon(self, cid: str) -> Answer[Json]:
        """Send the inspect request now (over docker-py, as with TLS: when the answer is asked for)."""
        if self._fast is not None:
            return self._fast.inspect_soon(cid)
        return Answer(lambda: self.inspect(cid))

    def stats(self, cid: str) -> Json:
        """One stats sample; `one_shot` answers on the engine's next 1 s tick instead of waiting for two.

        Over the fast path when there is one: a sweep asks for the stats of every container at once, beyond
        the pool docker-py keeps."""
        if self._fast is not None:
            return self._fast.stats(cid)
        with translated(f"stats {cid[:12]}"):
            return self._api.stats(cid, stream=False, one_shot=True)

    def image_tags(self, image_id: str) -> list[str]:
        return list(self.inspect_image(image_id).get("RepoTags") or [])

    def inspect_image(self, image_id: str) -> Json:
        """`docker image inspect`; ContainerGone when the image is gone."""
        if self._fast is not None:
            return self._fast.inspect_image(image_id)
        with translated(f"inspect image {image_id[:19]}"):
            return self._api.inspect_image(image_id)

    def inspect_exec_with_container(self, exec_id: str, cid: str) -> tuple[Json, Json]:
        """The exec's inspect and its container's: the container's request is sent first, so with the fast
        path both are on their way before either answer is read (one round trip on the exec check's path)."""
        container = self.inspect_soon(cid)
        try:
            exec_info = self.inspect_exec(exec_id)
        except BaseException:
            # The answer sent ahead is read all the same: unread, it would hold its connection and its slot
            # ahead for good (after MAX_AHEAD such failures, nothing would be sent ahead any more).
            with suppress(Exception):
                container()
            raise
        return exec_info, container()

    def inspect_exec(self, exec_id: str) -> Json:
        """`GET /exec/{id}/json`: ProcessConfig (entrypoint, arguments, user, privileged, tty), ContainerID."""
        if self._fast is not None:
            return self._fast.inspect_exec(exec_id)
        with translated(f"inspect exec {exec_id[:12]}"):
            return self._api.exec_inspect(exec_id)

    def kill(self, cid: str) -> None:
        if self._fast is not None:
            return self._fast.kill(cid)
        with translated(f"kill {cid[:12]}"):
            self._api.kill(cid)

    def stop(self, cid: str, timeout_s: int) -> None:
        with translated(f"stop {cid[:12]}"):
            self._api.stop(cid, timeout=timeout_s)

    def remove(self, cid: str, force: bool = True) -> None:
        """Remove a container; without force the engine refuses a running one (an EngineError)."""
        if self._fast is not None:
            return self._fast.remove(cid, force)
        with translated(f"remove {cid[:12]}"):
            self._api.remove_container(cid, force=force)

    def remove_soon(self, cid: str, force: bool = True) -> Answer[None]:
        """Send the removal now (over docker-py, as with TLS: when the answer is asked for)."""
        if self._fast is not None:
            return self._fast.remove_soon(cid, force)
        return Answer(lambda: self.remove(cid, force))

    def pause(self, cid: str) -> None:
        """Freeze every process of the container; a paused one is refused with a 409 (an EngineError)."""
        with translated(f"pause {cid[:12]}"):
            self._api.pause(cid)

    def update_limits(
        self,
        cid: str,
        memory: int | None = None,
        memory_swap: int | None = None,
        nano_cpus: int | None = None,
        pids: int | None = None,
    ) -> None:
        """`POST /containers/{id}/update` with the limits given (docker-py's update_container lacks NanoCpus
        and PidsLimit); the engine refuses a memory above a set MemorySwap, so send both."""
        body = {"Memory": memory, "MemorySwap": memory_swap, "NanoCpus": nano_cpus, "PidsLimit": pids}
        with translated(f"update {cid[:12]}"):
            url = self._api._url("/containers/{0}/update", cid)
            self._api._result(
                self._api._post_json(url, data={k: v for k, v in body.items() if v is not None})
            )

    def set_restart_policy(self, cid: str, policy: str = "no") -> None:
        with translated(f"update {cid[:12]}"):
            self._api.update_container(cid, restart_policy={"Name": policy})

    def events(self, since: float | None = None, filters: dict[str, Any] | None = None) -> EventStream:
        """Open the event stream now (the request is sent before this returns); iterate it for events."""
        if self._fast is not None:
            return EventStream(self._fast.events(since, filters))
        with translated("events"):
            stream = self._api.events(since=since, filters=filters, decode=True)
        return EventStream(stream)


class EventStream:
    """Decoded event objects; iteration ends or raises EngineUnavailable when the stream does."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def __iter__(self) -> Iterator[Json]:
        with translated("events"):
            yield from self._stream

    def close(self) -> None:
        """Unblocks a reader waiting for the next event (called from another thread on shutdown)."""
        self._stream.close()


def connect(
    url: str, timeout_s: float = 30, tls_verify: bool = False, cert_path: Path | None = None
) -> DockerHost:
    """A DockerHost for `url`; raises EngineUnavailable with the socket named when it cannot be used."""
    return DockerHost(Connection(url, timeout_s, tls_verify, cert_path))


__all__ = ["Connection", "DockerHost", "EngineUnavailable", "connect"]
