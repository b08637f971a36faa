"""Redis's replication and migration commands on Kiwi: an error a user can
act on (it names RAFT.NODE, or DUMP/RESTORE), never `unknown command`;
BGREWRITEAOF compacts the database (Redis's reply, data intact)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

import kiwi
from kiwitest import HOST, RawConnection, RespError, reference_redis_server

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


# Redis Cluster's own commands (Kiwi is not a Redis Cluster: it replicates
# with Raft) and what Kiwi adds: Redis 7.2's CLIENT subcommands that
# redis-py sends, and RAFT.*.
NOT_IN_KIWI = {"asking", "cluster", "replconf", "restore-asking"}
ONLY_IN_KIWI = {"client|no-touch", "client|setinfo", "raft.cluster", "raft.fault", "raft.info", "raft.node"}


def test_command_list_names_every_command_and_subcommand_redis_does(conn: RawConnection) -> None:
    binary = shutil.which("redis-server")
    assert binary is not None, "redis-server is not installed (scripts/setup-system.sh installs it)"
    with reference_redis_server(binary, "kiwi-list-") as port, RawConnection(HOST, port) as ref:
        theirs = {name.decode() for name in ref.call("COMMAND", "LIST")}
    mine = {name.decode() for name in conn.call("COMMAND", "LIST")}
    assert "client|kill" in mine and "config|get" in mine
    missing = {name for name in theirs - mine if name.split("|")[0] not in NOT_IN_KIWI}
    assert missing == set()
    assert mine - theirs == ONLY_IN_KIWI
    # COUNT counts the commands without their subcommands, as Redis does.
    assert conn.call("COMMAND", "COUNT") == len({n for n in mine if "|" not in n})
