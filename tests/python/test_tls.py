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
from pathlib import Path

import pytest
import redis

from kiwi.testing.processes import ServerProcess, server_command
from kiwitest import HOST, free_port
from pki import Pki, make_pki

pytestmark = pytest.mark.kiwi_only


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path)


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


def _served_certificate(port: int, pki: Pki) -> bytes:
    """The DER certificate the TLS port presents now (its name unchecked)."""
    context = ssl.create_default_context(cafile=str(pki.ca))
    context.check_hostname = False
    context.load_cert_chain(str(pki.client_cert), str(pki.client_key))
    with socket.create_connection((HOST, port), timeout=10) as raw:
        with context.wrap_socket(raw) as tls:
            der = tls.getpeercert(binary_form=True)
            assert der is not None
            return der


def _first_certificate(path: Path) -> bytes:
    pem = path.read_text()
    end = "-----END CERTIFICATE-----"
    return ssl.PEM_cert_to_DER_cert(pem[: pem.index(end) + len(end)] + "\n")


def test_config_set_reloads_the_certificates_for_new_connections(tls_server, pki: Pki) -> None:
    # Rotation as Redis does it: CONFIG SET of the files reads them again
    # (the same paths with new content work too); open connections go on.
    server = tls_server("yes")
    assert _served_certificate(server.tls_port, pki) == _first_certificate(pki.server_cert)
    old = server.client(ssl_ca_certs=str(pki.ca), ssl_certfile=str(pki.client_cert), ssl_keyfile=str(pki.client_key))
    assert old.ping() is True
    admin = redis.Redis(host=HOST, port=server.port, socket_timeout=10)
    assert (
        admin.execute_command(
            "CONFIG", "SET", "tls-cert-file", str(pki.client_cert), "tls-key-file", str(pki.client_key)
        )
        == b"OK"
    )
    assert _served_certificate(server.tls_port, pki) == _first_certificate(pki.client_cert)
    assert admin.config_get("tls-cert-file") == {"tls-cert-file": str(pki.client_cert)}
    assert old.ping() is True
    old.close()
    admin.close()


def test_config_set_of_unusable_tls_files_changes_nothing(tls_server, pki: Pki) -> None:
    server = tls_server("yes")
    admin = redis.Redis(host=HOST, port=server.port, socket_timeout=10)
    for args in (
        ("tls-cert-file", "/nonexistent.pem"),
        # A certificate with another's key.
        ("tls-cert-file", str(pki.client_cert)),
    ):
        with pytest.raises(redis.ResponseError) as refused:
            admin.execute_command("CONFIG", "SET", *args)
        assert str(refused.value) == (
            "CONFIG SET failed (possibly related to argument 'tls-cert-file') - "
            "Unable to update TLS configuration. Check server logs."
        )
    assert admin.config_get("tls-cert-file") == {"tls-cert-file": str(pki.server_cert)}
    assert _served_certificate(server.tls_port, pki) == _first_certificate(pki.server_cert)
    with pytest.raises(redis.ResponseError) as refused:
        admin.execute_command("CONFIG", "SET", "tls-auth-clients", "maybe")
    assert str(refused.value) == (
        "CONFIG SET failed (possibly related to argument 'tls-auth-clients') - "
        "argument(s) must be one of the following: no, yes, optional"
    )
    admin.close()


def test_config_set_tls_auth_clients_applies_to_new_connections(tls_server, pki: Pki) -> None:
    server = tls_server("yes")
    admin = redis.Redis(host=HOST, port=server.port, socket_timeout=10)
    anonymous = server.client(ssl_ca_certs=str(pki.ca))
    with pytest.raises(redis.ConnectionError):
        anonymous.ping()
    assert admin.config_set("tls-auth-clients", "no") is True
    anonymous = server.client(ssl_ca_certs=str(pki.ca))
    assert anonymous.ping() is True
    anonymous.close()
    admin.close()
