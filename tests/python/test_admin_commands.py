"""Redis's replication and migration commands on Kiwi: an error a user can
act on (it names RAFT.NODE, or DUMP/RESTORE), never `unknown command`;
BGREWRITEAOF compacts the database (Redis's reply, data intact)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import kiwi
from kiwitest import HOST, RawConnection, RespError

pytestmark = pytest.mark.kiwi_only


@pytest.fixture(scope="module")
def conn() -> Iterator[RawConnection]:
    with kiwi.Server() as server, RawConnection(HOST, server.port) as c:
        yield c


@pytest.mark.parametrize(
    "args",
    [
        ["REPLICAOF", "127.0.0.1", "6379"],
        ["SLAVEOF", "127.0.0.1", "6379"],
        ["SYNC"],
        ["PSYNC", "?", "-1"],
    ],
)
def test_replication_commands_point_to_raft(conn: RawConnection, args: list[str]) -> None:
    err = conn.call(*args)
    assert isinstance(err, RespError)
    assert "RAFT.NODE ADD" in err and not err.startswith("ERR unknown command")


def test_migrate_points_to_dump_and_restore(conn: RawConnection) -> None:
    err = conn.call("MIGRATE", "127.0.0.1", "6379", "k", "0", "1000")
    assert isinstance(err, RespError) and "DUMP" in err and "RESTORE" in err


def test_bgrewriteaof_compacts_and_keeps_the_data(conn: RawConnection) -> None:
    for i in range(100):
        conn.call("HSET", "h", f"f{i}", "v")
    conn.call("DEL", "h")
    conn.call("SET", "kept", "yes")
    assert conn.call("BGREWRITEAOF") == "Background append only file rewriting started"
    assert conn.call("GET", "kept") == b"yes"
    assert conn.call("EXISTS", "h") == 0
