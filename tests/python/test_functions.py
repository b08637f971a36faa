"""FUNCTION libraries and FCALL, against Redis and through a cluster.

Every case is sent to Debian's redis-server and to Kiwi and the reply bytes
must be equal, RESP2 and RESP3 (libraries need a line feed after their
``#!lua name=`` line, which the one-line redis-diff files cannot hold).
Libraries survive a restart, and under Raft a FUNCTION LOAD on any node
makes FCALL work on every node with identical results.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.exceptions import ResponseError

import kiwi
from kiwitest import HOST, RawConnection, node_client, reference_redis_server, wait_until

pytestmark = pytest.mark.kiwi_only

LIB = """#!lua name=mylib
redis.register_function('incr_by', function(keys, args) return redis.call('incrby', keys[1], args[1]) end)
redis.register_function{function_name='reader', callback=function(keys) return redis.call('get', keys[1]) end, flags={'no-writes'}, description='reads one key'}
"""

CASES: list[list[str]] = [
    ["FUNCTION", "FLUSH"],
    ["FUNCTION", "LOAD", LIB],
    ["FUNCTION", "LOAD", LIB],
    ["FCALL", "incr_by", "1", "n", "5"],
    ["FCALL", "incr_by", "1", "n", "x"],
    ["FCALL_RO", "reader", "1", "n"],
    ["FCALL_RO", "incr_by", "1", "n", "1"],
    ["FCALL", "reader", "1", "n"],
    ["FCALL", "nosuch", "0"],
    ["FCALL", "incr_by", "-1"],
    ["FCALL", "incr_by", "x"],
    ["FCALL", "incr_by", "3", "a"],
    ["FCALL"],
    ["FUNCTION", "LOAD", "#!lua name=single\nredis.register_function('one', function() return {1, 'two', {3}} end)"],
    ["FCALL", "one", "0"],
    ["FUNCTION", "LIST", "LIBRARYNAME", "sing*"],
    ["FUNCTION", "LIST", "WITHCODE", "LIBRARYNAME", "single"],
    ["FUNCTION", "LIST", "LIBRARYNAME"],
    ["FUNCTION", "LIST", "bad"],
    ["FUNCTION", "LIST", "WITHCODE", "WITHCODE"],
    [
        "FUNCTION",
        "LOAD",
        "REPLACE",
        "#!lua name=single\nredis.register_function('one', function() return 'replaced' end)",
    ],
    ["FCALL", "one", "0"],
    ["FUNCTION", "LOAD", "#!lua name=other\nredis.register_function('one', function() end)"],
    ["FUNCTION", "LOAD", "return 1"],
    ["FUNCTION", "LOAD", "#!lua\n"],
    ["FUNCTION", "LOAD", "#!luaa name=x\n"],
    ["FUNCTION", "LOAD", "#!lua name=x foo=bar\n"],
    ["FUNCTION", "LOAD", "#!lua name=x name=y\n"],
    ["FUNCTION", "LOAD", "#!lua name=bad-name\n"],
    ["FUNCTION", "LOAD", "#!lua name=x\nlocal y = 1"],
    ["FUNCTION", "LOAD", "#!lua name=x\nreturn +"],
    ["FUNCTION", "LOAD", "#!lua name=x\nlocal m = math"],
    ["FUNCTION", "LOAD", "#!lua name=x\nredis.call('ping')"],
    ["FUNCTION", "LOAD", "#!lua name=x\nredis.register_function()"],
    ["FUNCTION", "LOAD", "#!lua name=x\nredis.register_function('a')"],
    ["FUNCTION", "LOAD", "#!lua name=x\nredis.register_function('a', 'notfn')"],
    ["FUNCTION", "LOAD", "#!lua name=x\nredis.register_function('a b', function() end)"],
    ["FUNCTION", "LOAD", "#!lua name=x\nredis.register_function{callback=function() end}"],
    ["FUNCTION", "LOAD", "#!lua name=x\nredis.register_function{function_name='a'}"],
    [
        "FUNCTION",
        "LOAD",
        "#!lua name=x\nredis.register_function{function_name='a', callback=function() end, flags='no-writes'}",
    ],
    [
        "FUNCTION",
        "LOAD",
        "#!lua name=x\nredis.register_function{function_name='a', callback=function() end, flags={'bad'}}",
    ],
    ["FUNCTION", "LOAD", "#!lua name=x\nredis.register_function{function_name='a', callback=function() end, other=1}"],
    [
        "FUNCTION",
        "LOAD",
        "#!lua name=x\nredis.register_function('a', function() end)\nredis.register_function('a', function() end)",
    ],
    ["FUNCTION", "LOAD", "#!lua name=x\nredis.register_function('a', function(k, a) error('bad') end)"],
    ["FCALL", "a", "0"],
    [
        "FUNCTION",
        "LOAD",
        "REPLACE",
        "#!lua name=x\nredis.register_function('a', function() return redis.call('nosuch') end)",
    ],
    ["FCALL", "a", "0"],
    [
        "FUNCTION",
        "LOAD",
        "REPLACE",
        "#!lua name=x\nredis.register_function('a', function() return math.random(10) <= 10 end)",
    ],
    ["FCALL", "a", "0"],
    ["FUNCTION", "LOAD", "rep", "x"],
    ["FUNCTION", "DELETE", "x"],
    ["FUNCTION", "DELETE", "x"],
    ["FUNCTION", "DELETE"],
    ["FCALL", "a", "0"],
    ["FUNCTION", "STATS"],
    ["FUNCTION", "KILL"],
    ["FUNCTION", "FLUSH", "bad"],
    ["FUNCTION", "FLUSH", "ASYNC"],
    ["FUNCTION", "LIST"],
    ["FUNCTION", "STATS"],
    ["FUNCTION", "NOSUCH"],
    ["FUNCTION", "HELP"],
    ["EVAL", "return redis.call('function', 'list')", "0"],
    ["EVAL", "return redis.call('fcall', 'a', '0')", "0"],
]


@pytest.fixture(scope="module")
def reference_port() -> Iterator[int]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed (scripts/setup-system.sh installs it)")
    with reference_redis_server(binary, "kiwi-function-ref-") as port:
        yield port


@pytest.fixture(scope="module")
def server() -> Iterator[kiwi.Server]:
    with kiwi.Server() as s:
        yield s


@pytest.mark.parametrize("protocol", [2, 3])
def test_function_replies_match_redis(server: kiwi.Server, reference_port: int, protocol: int) -> None:
    replies = []
    for port in (reference_port, server.port):
        conn = RawConnection(HOST, port)
        try:
            conn.call("HELLO", str(protocol))
            conn.call("FLUSHALL")
            replies.append([conn.call_raw(*args) for args in CASES])
        finally:
            conn.close()
    differences = [
        f"{args!r}\n  redis: {want!r}\n  kiwi:  {got!r}"
        for args, want, got in zip(CASES, replies[0], replies[1])
        if want != got
    ]
    assert not differences, "\n".join(differences)


def test_libraries_survive_a_restart(tmp_path: Path) -> None:
    with kiwi.Server(dir=tmp_path) as s:
        r = s.client(decode_responses=True)
        assert r.function_load(LIB) == "mylib"
        r.function_load("#!lua name=gone\nredis.register_function('gone', function() return 1 end)")
        r.function_delete("gone")
        r.close()
    with kiwi.Server(dir=tmp_path) as s:
        r = s.client(decode_responses=True)
        assert r.fcall("incr_by", 1, "n", 3) == 3
        assert r.fcall_ro("reader", 1, "n") == "3"
        with pytest.raises(ResponseError, match="Function not found"):
            r.fcall("gone", 0)
        r.function_flush()
        r.close()
    with kiwi.Server(dir=tmp_path) as s:
        r = s.client(decode_responses=True)
        assert r.function_list() == []
        r.close()


def test_functions_through_a_cluster() -> None:
    with kiwi.Cluster(3) as c:
        leader = c.wait_for_leader()
        clients = [node_client(c, i) for i in range(3)]
        try:
            follower = (leader + 1) % 3
            assert clients[follower].function_load(LIB) == "mylib"
            for n, r in enumerate(clients):
                assert r.fcall("incr_by", 1, "n", 1) == n + 1
            for r in clients:
                assert r.fcall_ro("reader", 1, "n") == "3"
                # RESP2: each library is a flat list of names and values.
                assert [lib[1] for lib in r.function_list()] == ["mylib"]
            clients[leader].function_delete("mylib")
            for r in clients:
                with pytest.raises(ResponseError, match="Function not found"):
                    r.fcall("incr_by", 1, "n", 1)

            def same_value() -> bool:
                values = set()
                for i in range(3):
                    local = node_client(c, i)
                    try:
                        local.readonly()
                        values.add(local.get("n"))
                    except redis.RedisError:
                        return False
                    finally:
                        local.close()
                return values == {"3"}

            wait_until(same_value, timeout=10, message="every node holds the functions' writes")
        finally:
            for r in clients:
                r.close()


def test_dump_and_restore_across_redis_and_kiwi(server: kiwi.Server, reference_port: int) -> None:
    """A FUNCTION DUMP of either server restores in the other, and the
    refusals (garbage, collisions, policies) answer the same bytes."""
    ref = RawConnection(HOST, reference_port)
    mine = RawConnection(HOST, server.port)
    try:
        for conn in (ref, mine):
            conn.call("FUNCTION", "FLUSH")
        big = "#!lua name=big\n" + "".join(
            f"redis.register_function('f{i}', function() return {i} end)\n" for i in range(40)
        )
        assert ref.call("FUNCTION", "LOAD", big) == b"big"
        assert ref.call("FUNCTION", "LOAD", LIB) == b"mylib"
        from_redis = ref.call("FUNCTION", "DUMP")
        assert isinstance(from_redis, bytes)
        assert mine.call("FUNCTION", "RESTORE", from_redis) == "OK"
        assert mine.call("FCALL", "f39", "0") == 39
        assert mine.call("FCALL", "incr_by", "1", "dn", "2") == 2
        from_kiwi = mine.call("FUNCTION", "DUMP")
        assert isinstance(from_kiwi, bytes)
        replies = []
        for conn, payload in ((ref, from_redis), (mine, from_kiwi)):
            # One colliding library: which of several Redis names first
            # follows its hash table's order.
            conn.call("FUNCTION", "DELETE", "mylib")
            replies.append(
                [
                    conn.call_raw("FUNCTION", "RESTORE", payload),
                    conn.call_raw("FUNCTION", "RESTORE", payload, "APPEND"),
                    conn.call_raw("FUNCTION", "RESTORE", payload, "REPLACE"),
                    conn.call_raw("FUNCTION", "RESTORE", payload, "BAD"),
                    conn.call_raw("FUNCTION", "RESTORE", payload, "FLUSH", "X"),
                    conn.call_raw("FUNCTION", "RESTORE", b"garbage"),
                    conn.call_raw("FUNCTION", "RESTORE", payload[:-1] + bytes([payload[-1] ^ 1])),
                    conn.call_raw("FUNCTION", "RESTORE", payload, "FLUSH"),
                    conn.call_raw("FCALL", "f7", "0"),
                    conn.call_raw("FUNCTION", "DELETE", "big"),
                    conn.call_raw("FUNCTION", "RESTORE", payload),
                    conn.call_raw("FUNCTION", "STATS"),
                ]
            )
        assert replies[1] == replies[0]
        # Kiwi's payload restores in Redis.
        assert ref.call("FUNCTION", "RESTORE", from_kiwi, "FLUSH") == "OK"
        assert ref.call("FCALL", "f3", "0") == 3
    finally:
        ref.close()
        mine.close()


def function_busy_behaviour(port: int) -> list[object]:
    """What a server answers around a long function: BUSY naming FUNCTION
    KILL, SCRIPT KILL refused, FUNCTION STATS showing it, FUNCTION KILL
    stopping it."""
    seen: list[object] = []
    admin = RawConnection(HOST, port)
    admin.call("CONFIG", "SET", "busy-reply-threshold", "100")
    admin.call(
        "FUNCTION",
        "LOAD",
        "REPLACE",
        "#!lua name=spin\nredis.register_function{function_name='spin', callback=function() while true do end end, flags={'no-writes'}}",
    )
    try:
        looper = RawConnection(HOST, port, timeout=30)
        looper.send_command("FCALL", "spin", "0")
        other = RawConnection(HOST, port)

        def busy() -> bool:
            reply = other.call("GET", "x")
            return isinstance(reply, str) and reply.startswith("BUSY")

        wait_until(busy, timeout=10, interval=0.05, message="BUSY while the function runs")
        seen.append(other.call("GET", "x"))
        seen.append(admin.call("SCRIPT", "KILL"))
        stats = admin.call("FUNCTION", "STATS")
        assert isinstance(stats, list)
        running = stats[1]
        assert isinstance(running, list)
        seen.append(running[:4])
        seen.append(admin.call("FUNCTION", "KILL"))
        seen.append(looper.read().split(" script:")[0])
        seen.append(admin.call("FUNCTION", "KILL"))
        looper.close()
        other.close()
    finally:
        admin.call("CONFIG", "SET", "busy-reply-threshold", "5000")
        admin.call("FUNCTION", "DELETE", "spin")
        admin.close()
    return seen


def test_function_kill_as_redis(server: kiwi.Server, reference_port: int) -> None:
    expected = function_busy_behaviour(reference_port)
    assert str(expected[0]).startswith("BUSY")
    assert function_busy_behaviour(server.port) == expected
