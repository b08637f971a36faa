"""Raft peer links over mutual TLS (``tls-cluster yes``, Redis's name for its
cluster bus): a cluster of kiwi-server processes forms, replicates and fails
over with every link encrypted; what travels between nodes is unreadable on
the wire (the same wire without TLS shows the value, so the check can fail);
the raft port completes a handshake only with a certificate the cluster's CA
signed, and a node dialing a peer refuses one the CA did not sign.
Certificates are made per test with trustme.
"""

from __future__ import annotations

import secrets
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Optional

import pytest
import redis

from kiwi.testing.processes import ProcessCluster, ServerProcess, server_command, write_node_config
from kiwitest import HOST, free_port, wait_until
from pki import Pki, make_pki

pytestmark = pytest.mark.kiwi_only


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path)


def tls_args(pki: Pki, cert: Optional[Path] = None, key: Optional[Path] = None) -> list[str]:
    return [
        "--tls-cluster", "yes",
        "--tls-cert-file", str(cert or pki.server_cert),
        "--tls-key-file", str(key or pki.server_key),
        "--tls-ca-cert-file", str(pki.ca),
    ]  # fmt: skip


def test_a_cluster_over_tls_replicates_and_elects_a_new_leader(pki: Pki) -> None:
    with ProcessCluster(3, extra_args=tls_args(pki), raft_timeout_ms=2000) as cluster:
        leader = cluster.leader()
        assert leader is not None
        assert cluster.client(leader).config_get("tls-cluster") == {"tls-cluster": "yes"}
        assert cluster.client(leader).set("k", "over tls") is True
        cluster.wait_settled(timeout=30)
        for node in range(3):
            assert cluster.client(node).get("k") == b"over tls"
        # The leader goes away: the other two elect one over TLS and go on.
        cluster.pause(leader)
        survivor = next(n for n in range(3) if n != leader)

        def written() -> bool:
            try:
                return cluster.client(survivor).set("after", "failover") is True
            except redis.RedisError:
                return False

        wait_until(written, timeout=30, interval=0.05, message="write after the leader paused")
        cluster.resume(leader)
        cluster.wait_settled(timeout=30)
        assert cluster.client(leader).get("after") == b"failover"


class RecordingProxy:
    """Forwards TCP connections to ``target`` and keeps every byte sent
    towards it."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.seen = bytearray()
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.listener = socket.create_server((HOST, 0))
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                client, _ = self.listener.accept()
            except (socket.timeout, OSError):
                continue
            try:
                upstream = socket.create_connection((HOST, self.target), timeout=5)
            except OSError:
                client.close()
                continue
            self.sockets += [client, upstream]
            for src, dst, record in ((client, upstream, True), (upstream, client, False)):
                t = threading.Thread(target=self._pump, args=(src, dst, record), daemon=True)
                self.threads.append(t)
                t.start()

    def _pump(self, src: socket.socket, dst: socket.socket, record: bool) -> None:
        src.settimeout(0.2)
        while not self.stopping.is_set():
            try:
                data = src.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                break
            if not data:
                break
            if record:
                with self.lock:
                    self.seen += data
            try:
                dst.sendall(data)
            except OSError:
                break
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def bytes_seen(self) -> bytes:
        with self.lock:
            return bytes(self.seen)

    def close(self) -> None:
        self.stopping.set()
        self.listener.close()
        for t in self.threads:
            t.join(timeout=5)
        for s in self.sockets:
            s.close()


@pytest.mark.parametrize("tls", [True, False], ids=["tls", "plain-control"])
def test_what_travels_between_nodes_is_unreadable_on_the_wire(tmp_path: Path, pki: Pki, tls: bool) -> None:
    # Node 1 reaches node 2 only through a proxy that records the bytes:
    # replicated entries (node 1 leading) or forwarded writes (node 2
    # leading) pass through it either way.
    ports, raft_ports = [free_port(), free_port()], [free_port(), free_port()]
    proxy = RecordingProxy(raft_ports[1])
    procs: list[ServerProcess] = []
    try:
        secret = secrets.token_hex(16)
        for i in range(2):
            home = tmp_path / f"n{i + 1}"
            home.mkdir()
            config = home / "kiwi.conf"
            write_node_config(str(config), secret)
            args = [
                str(config), "--port", str(ports[i]), "--dir", str(home / "data"),
                "--node-id", str(i + 1), "--raft-addr", f"{HOST}:{raft_ports[i]}",
            ]  # fmt: skip
            procs.append(ServerProcess(server_command(), args, str(home / "log")))
        extra = tls_args(pki) if tls else []
        procs[0].start(["--raft-init", "--raft-peer", f"2={HOST}:{proxy.port}", *extra])
        procs[1].start(extra)
        for i, proc in enumerate(procs):
            proc.wait_ready(HOST, ports[i], timeout=30)
        marker = b"MARKER-" + secrets.token_hex(8).encode()
        node1 = redis.Redis(host=HOST, port=ports[0], socket_timeout=10)
        node2 = redis.Redis(host=HOST, port=ports[1], socket_timeout=10)

        def written() -> bool:
            try:
                return node1.set("secret", marker) is True
            except redis.RedisError:
                return False

        wait_until(written, timeout=30, interval=0.05, message="write through node 1")

        def replicated() -> bool:
            try:
                return node2.get("secret") == marker
            except redis.RedisError:
                return False

        wait_until(replicated, timeout=30, interval=0.05, message="replica of the write on node 2")
        seen = proxy.bytes_seen()
        assert seen, "the proxy saw no traffic: the test would show nothing"
        if tls:
            assert marker not in seen
            assert seen[:1] == b"\x16", "the first bytes are a TLS handshake record"
        else:
            assert marker in seen
        node1.close()
        node2.close()
    finally:
        for proc in procs:
            proc.stop(grace=10)
        proxy.close()


@pytest.fixture
def tls_node(tmp_path: Path, pki: Pki) -> Iterator[tuple[int, int]]:
    """A one-node cluster with ``tls-cluster yes``: (port, raft port)."""
    port, raft_port = free_port(), free_port()
    config = tmp_path / "kiwi.conf"
    write_node_config(str(config), "")
    proc = ServerProcess(
        server_command(),
        [
            str(config), "--port", str(port), "--dir", str(tmp_path / "data"),
            "--node-id", "1", "--raft-addr", f"{HOST}:{raft_port}", "--raft-init", *tls_args(pki),
        ],
        str(tmp_path / "log"),
    )  # fmt: skip
    proc.start()
    try:
        proc.wait_ready(HOST, port, timeout=30)
        yield port, raft_port
    finally:
        proc.stop(grace=10)


def tls_handshake(raft_port: int, pki: Pki, cert: Optional[Path], key: Optional[Path]) -> bool:
    """Whether a TLS handshake with the raft port completes (and the node
    keeps the connection open afterwards) with this client certificate."""
    context = ssl.create_default_context(cafile=str(pki.ca))
    context.check_hostname = False
    if cert is not None and key is not None:
        context.load_cert_chain(str(cert), str(key))
    with socket.create_connection((HOST, raft_port), timeout=10) as raw:
        try:
            with context.wrap_socket(raw) as tls:
                # TLS 1.3 finishes the client's side before the server has
                # judged the client's certificate: its verdict comes next.
                tls.settimeout(0.5)
                try:
                    return tls.recv(1) != b""
                except socket.timeout:
                    return True
        except (ssl.SSLError, ConnectionError):
            return False


def test_the_raft_port_completes_tls_only_with_a_member_certificate(tls_node: tuple[int, int], pki: Pki) -> None:
    port, raft_port = tls_node
    assert tls_handshake(raft_port, pki, pki.client_cert, pki.client_key) is True
    assert tls_handshake(raft_port, pki, None, None) is False
    assert tls_handshake(raft_port, pki, pki.stranger_cert, pki.stranger_key) is False
    # Plain bytes (a raft handshake without TLS) get at most a TLS alert
    # back, then the connection closes.
    with socket.create_connection((HOST, raft_port), timeout=10) as raw:
        raw.sendall(b"\x00\x00\x00\x10kiwi-raft-hello!")
        raw.settimeout(10)
        answer = b""
        try:
            while chunk := raw.recv(4096):
                answer += chunk
        except ConnectionError:
            pass
        assert answer == b"" or answer[:1] == b"\x15", f"not a TLS alert: {answer[:16]!r}"
    # The node serves on.
    assert redis.Redis(host=HOST, port=port, socket_timeout=10).ping() is True


@pytest.mark.parametrize("member", [True, False], ids=["member-certificate", "stranger-certificate"])
def test_a_node_dialing_a_peer_checks_the_peers_certificate(tmp_path: Path, pki: Pki, member: bool) -> None:
    # A TLS server stands where node 1 believes its peer 2 is; node 1 dials
    # it to ask for votes. It must finish the handshake only if the server's
    # certificate is the CA's, and it must present its own.
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if member:
        server.load_cert_chain(str(pki.server_cert), str(pki.server_key))
    else:
        server.load_cert_chain(str(pki.stranger_cert), str(pki.stranger_key))
    server.load_verify_locations(str(pki.ca))
    server.verify_mode = ssl.CERT_REQUIRED
    listener = socket.create_server((HOST, 0))
    listener.settimeout(30)
    peer_port = listener.getsockname()[1]
    port, raft_port = free_port(), free_port()
    config = tmp_path / "kiwi.conf"
    write_node_config(str(config), "")
    proc = ServerProcess(
        server_command(),
        [
            str(config), "--port", str(port), "--dir", str(tmp_path / "data"), "--node-id", "1",
            "--raft-addr", f"{HOST}:{raft_port}", "--raft-peer", f"2={HOST}:{peer_port}", "--raft-init",
            *tls_args(pki),
        ],
        str(tmp_path / "log"),
    )  # fmt: skip
    proc.start()
    try:
        proc.wait_ready(HOST, port, timeout=30)
        raw, _ = listener.accept()
        with raw:
            raw.settimeout(10)
            try:
                with server.wrap_socket(raw, server_side=True) as tls:
                    client_cert = tls.getpeercert()
                    # The node judges the certificate during the handshake;
                    # a refusal arrives as an alert on the next read.
                    try:
                        first = tls.recv(1)
                        accepted = first != b""
                    except (ssl.SSLError, ConnectionError):
                        accepted = False
            except (ssl.SSLError, ConnectionError):
                accepted, client_cert = False, None
        if member:
            assert accepted, "the node refused a peer certified by the cluster's CA"
            assert client_cert, "the node presented no certificate of its own"
        else:
            assert not accepted, "the node talked to a peer the cluster's CA did not certify"
    finally:
        proc.stop(grace=10)
        listener.close()


def test_tls_cluster_needs_its_files(tmp_path: Path, pki: Pki) -> None:
    proc = ServerProcess(
        server_command(),
        [
            "--port", str(free_port()), "--dir", str(tmp_path / "data"), "--node-id", "1",
            "--raft-addr", f"{HOST}:{free_port()}", "--raft-init", "--tls-cluster", "yes",
            "--tls-cert-file", str(pki.server_cert), "--tls-key-file", str(pki.server_key),
        ],
        str(tmp_path / "log"),
    )  # fmt: skip
    proc.start()
    try:
        wait_until(lambda: not proc.running, timeout=30, interval=0.05, message="the server exits")
        assert proc.popen is not None and proc.popen.returncode != 0
        assert "tls-cluster yes needs tls-cert-file, tls-key-file and tls-ca-cert-file" in proc.log_tail(20)
    finally:
        proc.stop(grace=5)
