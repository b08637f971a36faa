"""Certificates for the TLS tests, made per test with trustme: one CA for
the server, its clients and the cluster's members, and another CA whose
certificates must be refused."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import trustme


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


def make_pki(directory: Path) -> Pki:
    """Write the CAs, certificate chains and keys under ``directory``.

    trustme's leaf certificates are good for both ends of a connection
    (serverAuth and clientAuth), so a cluster member uses one pair for both.
    """
    ca = trustme.CA()
    other = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    client = ca.issue_cert("client.example")
    stranger = other.issue_cert("127.0.0.1", "stranger.example")
    paths = Pki(*(directory / name for name in (
        "ca.pem", "server.pem", "server.key", "client.pem", "client.key", "other-ca.pem",
        "stranger.pem", "stranger.key",
    )))  # fmt: skip
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
