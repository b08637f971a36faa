"""Clients over TLS as Redis serves them (`tls-port`, `tls-cert-file`,
`tls-key-file`, `tls-ca-cert-file`, `tls-auth-clients`): redis-py with
``ssl=True`` and ``redis-cli --tls`` work; a client without an accepted
certificate, or speaking plain RESP to the TLS port, gets nowhere and the
server goes on. Certificates are made per test with trustme.
"""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
import trustme

from kiwi.testing.processes import ServerProcess, server_command
from kiwitest import HOST, free_port

pytestmark = pytest.mark.kiwi_only


@dataclass
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path
    stranger_cert: Path
    stranger_key: Path


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    ca = trustme.CA()
    other = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    client = ca.issue_cert("client.example")
    stranger = other.issue_cert("stranger.example")
    paths = Pki(
        *(
            tmp_path / name
            for name in (
                "ca.pem",
                "server.pem",
                "server.key",
                "client.pem",
                "client.key",
                "other-ca.pem",
                "stranger.pem",
                "stranger.key",
            )
        )
    )
    ca.cert_pem.write_to_path(str(paths.ca))
    other.cert_pem.write_to_path(str(paths.other_ca))
    for cert, chain, key in (
        (server, paths.server_cert, paths.server_key),
        (client, paths.client_cert, paths.client_key),
        (stranger, paths.stranger_cert, paths.stranger_key),
    ):
        chain.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
        cert.private_key_pem.write_to_path(str(key))
    return paths


class TlsServer:
    def __init__(self, tmp: Path, pki: Pki, auth_clients: str) -> None:
        self.port = free_port()
        self.tls_port = free_port()
        self.proc = ServerProcess(
            server_command(),
            [
                "--port",
                str(self.port),
                "--dir",
                str(tmp / "data"),
                "--tls-port",
                str(self.tls_port),
                "--tls-cert-file",
                str(pki.server_cert),
                "--tls-key-file",
                str(pki.server_key),
                "--tls-ca-cert-file",
                str(pki.ca),
                "--tls-auth-clients",
                auth_clients,
            ],
            str(tmp / "log"),
        )
        self.proc.start()
        self.proc.wait_ready(HOST, self.port, timeout=30)

    def client(self, **kwargs: object) -> redis.Redis:
        return redis.Redis(host=HOST, port=self.tls_port, ssl=True, socket_timeout=10, **kwargs)


@pytest.fixture
def tls_server(tmp_path: Path, pki: Pki) -> Iterator:
    servers: list[TlsServer] = []

    def start(auth_clients: str = "yes") -> TlsServer:
        home = tmp_path / f"s{len(servers)}"
        home.mkdir()
        server = TlsServer(home, pki, auth_clients)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.proc.stop(grace=10)


def test_redis_py_over_tls_with_a_client_certificate(tls_server, pki: Pki) -> None:
    server = tls_server("yes")
    client = server.client(ssl_ca_certs=str(pki.ca), ssl_certfile=str(pki.client_cert), ssl_keyfile=str(pki.client_key))
    assert client.set("k", b"over tls") is True
    assert client.get("k") == b"over tls"
    # The same data on the plain port: one server, two doors.
    assert redis.Redis(host=HOST, port=server.port).get("k") == b"over tls"
    info = client.client_info()
    assert info["laddr"].endswith(f":{server.tls_port}")
    client.close()


@pytest.mark.parametrize(
    "certificate",
    [pytest.param(None, id="no-certificate"), pytest.param("stranger", id="certificate-of-another-ca")],
)
def test_a_client_certificate_is_required_when_auth_clients_is_yes(
    tls_server, pki: Pki, certificate: str | None
) -> None:
    server = tls_server("yes")
    extra: dict[str, str] = {}
    if certificate == "stranger":
        extra = {"ssl_certfile": str(pki.stranger_cert), "ssl_keyfile": str(pki.stranger_key)}
    client = server.client(ssl_ca_certs=str(pki.ca), **extra)
    with pytest.raises(redis.ConnectionError):
        client.ping()
    # The refused handshake cost the server nothing.
    good = server.client(ssl_ca_certs=str(pki.ca), ssl_certfile=str(pki.client_cert), ssl_keyfile=str(pki.client_key))
    assert good.ping() is True
    good.close()


def test_optional_and_no_client_authentication(tls_server, pki: Pki) -> None:
    for mode in ("optional", "no"):
        server = tls_server(mode)
        anonymous = server.client(ssl_ca_certs=str(pki.ca))
        assert anonymous.ping() is True
        anonymous.close()
    # optional still checks a certificate that is shown.
    optional = tls_server("optional")
    stranger = optional.client(
        ssl_ca_certs=str(pki.ca), ssl_certfile=str(pki.stranger_cert), ssl_keyfile=str(pki.stranger_key)
    )
    with pytest.raises(redis.ConnectionError):
        stranger.ping()


def test_the_client_checks_the_server_certificate(tls_server, pki: Pki) -> None:
    server = tls_server("no")
    client = server.client(ssl_ca_certs=str(pki.other_ca))
    with pytest.raises(redis.ConnectionError):
        client.ping()


def test_plain_resp_on_the_tls_port_gets_no_reply_and_the_server_lives(tls_server, pki: Pki) -> None:
    server = tls_server("no")
    with socket.create_connection((HOST, server.tls_port), timeout=10) as plain:
        plain.sendall(b"*1\r\n$4\r\nPING\r\n")
        data = b""
        try:
            while True:
                chunk = plain.recv(4096)
                if not chunk:
                    break
                data += chunk
        except (ConnectionResetError, socket.timeout):
            pass
        assert b"PONG" not in data
    context = ssl.create_default_context(cafile=str(pki.ca))
    with socket.create_connection((HOST, server.tls_port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            tls.sendall(b"PING\r\n")
            assert tls.recv(100) == b"+PONG\r\n"


@pytest.mark.skipif(shutil.which("redis-cli") is None, reason="redis-cli is not installed")
def test_redis_cli_tls(tls_server, pki: Pki) -> None:
    server = tls_server("yes")
    out = subprocess.run(
        [
            "redis-cli",
            "--tls",
            "-h",
            HOST,
            "-p",
            str(server.tls_port),
            "--cacert",
            str(pki.ca),
            "--cert",
            str(pki.client_cert),
            "--key",
            str(pki.client_key),
            "ECHO",
            "hello tls",
        ],
        capture_output=True,
        timeout=30,
        check=True,
    )
    assert out.stdout == b"hello tls\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param([], "tls-cert-file and tls-key-file", id="no-files"),
        pytest.param(
            ["--tls-cert-file", "/nonexistent.pem", "--tls-key-file", "/nonexistent.key"],
            "cannot read tls-cert-file /nonexistent.pem",
            id="missing-file",
        ),
        pytest.param(["CERTS", "--tls-auth-clients", "yes"], "tls-auth-clients yes needs tls-ca-cert-file", id="no-ca"),
    ],
)
def test_a_bad_tls_setup_stops_the_start_with_a_message(
    tmp_path: Path, pki: Pki, args: list[str], message: str
) -> None:
    if args and args[0] == "CERTS":
        args = ["--tls-cert-file", str(pki.server_cert), "--tls-key-file", str(pki.server_key), *args[1:]]
    out = subprocess.run(
        [
            *server_command(),
            "--port",
            str(free_port()),
            "--dir",
            str(tmp_path / "data"),
            "--tls-port",
            str(free_port()),
            *args,
        ],
        capture_output=True,
        timeout=60,
    )
    assert out.returncode != 0
    assert message in out.stderr.decode(), out.stderr.decode()
