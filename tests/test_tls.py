"""A remote engine behind TLS with client certificates: DOCKER_TLS_VERIFY and DOCKER_CERT_PATH.

The isolated engine listens on a unix socket only, so the test puts a TLS front of its own before it: a
relay on 127.0.0.1 that demands a client certificate signed by the test's CA (as `dockerd --tlsverify`
does) and passes the bytes on to the engine's socket.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.engine import Engine, RunContainer

from enforcer.cli import main

pytestmark = pytest.mark.external  # openssl

RULES = (
    'rules = [{"name": "must have memory limit", "rule": lambda c: c.params["HostConfig"]["Memory"] == 0}]\n'
)


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_certs(folder: Path) -> None:
    """ca.pem; server-cert.pem/server-key.pem for 127.0.0.1; cert.pem/key.pem for the client (Docker's names)."""
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=test-ca",
            "-keyout", "ca-key.pem", "-out", "ca.pem", cwd=folder)  # fmt: skip
    for name, subject, usage in (
        ("server", "/CN=127.0.0.1", "serverAuth"),
        ("client", "/CN=client", "clientAuth"),
    ):
        (folder / f"{name}.ext").write_text(f"subjectAltName=IP:127.0.0.1\nextendedKeyUsage={usage}\n")
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", subject, "-keyout", f"{name}-key.pem",
                "-out", f"{name}.csr", cwd=folder)  # fmt: skip
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem",
                "-CAcreateserial", "-days", "1", "-extfile", f"{name}.ext", "-out", f"{name}-cert.pem",
                cwd=folder)  # fmt: skip
    (folder / "client-cert.pem").rename(folder / "cert.pem")
    (folder / "client-key.pem").rename(folder / "key.pem")


def _pump(source: socket.socket, target: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            target.sendall(data)
    with contextlib.suppress(OSError):
        target.shutdown(socket.SHUT_WR)


@contextlib.contextmanager
def tls_front(engine: Engine, certs: Path) -> Iterator[int]:
    """A TLS listener on 127.0.0.1 requiring a client certificate, relaying to the engine; yields its port."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certs / "server-cert.pem", certs / "server-key.pem")
    context.load_verify_locations(certs / "ca.pem")
    context.verify_mode = ssl.CERT_REQUIRED
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                raw, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=relay, args=(raw,), daemon=True).start()

    def relay(raw: socket.socket) -> None:
        try:
            client = context.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError):
            raw.close()  # no or a wrong client certificate: refused, as dockerd --tlsverify does
            return
        with client, socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as upstream:
            upstream.connect(str(engine.socket))
            back = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
            back.start()
            _pump(client, upstream)
            back.join(10)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        listener.close()


@pytest.fixture
def certs(tmp_path: Path) -> Path:
    folder = tmp_path / "certs"
    folder.mkdir()
    make_certs(folder)
    return folder


def audit(capsys: pytest.CaptureFixture[str], workdir: Path, **environ: str) -> tuple[int, str, str]:
    rules = workdir / "rules.py"
    rules.write_text(RULES)
    rules.chmod(0o644)
    code = main(["audit", "--json", "--rules", str(rules)], environ)
    out, err = capsys.readouterr()
    return code, out, err


def test_audit_of_a_remote_engine_with_client_certificates(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    certs: Path,
    clean_engine: Engine,
    run_container: RunContainer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    tmp_path.chmod(0o755)
    # requests would let this replace DOCKER_CERT_PATH's ca.pem (and fail): the engine connection ignores it.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certs / "cert.pem"))
    violator = run_container("remote-violator")
    with tls_front(clean_engine, certs) as port:
        code, out, err = audit(
            capsys,
            tmp_path,
            DOCKER_SOCKET=f"127.0.0.1:{port}",
            DOCKER_TLS_VERIFY="1",
            DOCKER_CERT_PATH=str(certs),
        )
        assert code == 1, err
        [item] = json.loads(out)
        assert (item["id"], item["violated_rules"]) == (violator, ["must have memory limit"])

        # Without the client certificate the engine cannot be reached: exit 3, the socket named.
        code, _, err = audit(capsys, tmp_path, DOCKER_SOCKET=f"tcp://127.0.0.1:{port}")
        assert code == 3
        assert f"127.0.0.1:{port}" in err
