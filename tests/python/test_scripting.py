"""Lua scripting through real clients and against Redis.

redis-py's ``Lock`` (its release and extend run Lua through EVALSHA) keeps
a counter exact under many threads, sync and asyncio, standalone and through
a three-node cluster; ``register_script`` falls back from NOSCRIPT to EVAL;
BUSY, SCRIPT KILL and UNKILLABLE behave as Redis's (the same test runs
against Debian's redis-server); shebang flags answer Redis's bytes; a script
that uses randomness and time leaves identical data on every Raft node.
The one-line replies live in tests/redis-diff/scripting.txt.
"""

from __future__ import annotations

import asyncio
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
import redis.asyncio
from redis.exceptions import NoScriptError, ResponseError

import kiwi
from kiwitest import HOST, IO_TIMEOUT, RawConnection, node_client, reference_redis_server, run_threads, wait_until

pytestmark = pytest.mark.kiwi_only

THREADS = 6
ROUNDS = 15


@pytest.fixture(scope="module")
def server() -> Iterator[kiwi.Server]:
    with kiwi.Server() as s:
        yield s


@pytest.fixture(scope="module")
def cluster() -> Iterator[kiwi.Cluster]:
    with kiwi.Cluster(3) as c:
        c.wait_for_leader()
        yield c


@pytest.fixture(scope="module")
def reference_port() -> Iterator[int]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed (scripts/setup-system.sh installs it)")
    with reference_redis_server(binary, "kiwi-script-ref-") as port:
        yield port


def locked_increments(make_client: Callable[[], redis.Redis], key: str) -> int:
    """THREADS threads each add 1 to ``key`` ROUNDS times, read-modify-write
    under a redis-py Lock, with a pause inside the critical section that makes
    an unprotected update lose to another thread. Returns the final count."""
    setup = make_client()
    setup.delete(key, f"lock:{key}")

    def worker() -> None:
        r = make_client()
        try:
            lock = r.lock(f"lock:{key}", timeout=30, blocking_timeout=60)
            for _ in range(ROUNDS):
                with lock:
                    value = int(r.get(key) or 0)
                    time.sleep(0.001)
                    assert lock.extend(5)
                    r.set(key, value + 1)
        finally:
            r.close()

    run_threads([worker] * THREADS, timeout=120)
    try:
        return int(setup.get(key) or 0)
    finally:
        setup.close()


def test_lock_keeps_a_counter_exact_standalone(server: kiwi.Server) -> None:
    def make() -> redis.Redis:
        return server.client(socket_timeout=IO_TIMEOUT)

    assert locked_increments(make, "counter") == THREADS * ROUNDS


def test_lock_keeps_a_counter_exact_through_a_cluster(cluster: kiwi.Cluster) -> None:
    # Clients spread over every node: writes and scripts on followers are
    # forwarded, SCRIPT LOAD reaches every node's cache through the log.
    made = [0]

    def make() -> redis.Redis:
        made[0] += 1
        return node_client(cluster, made[0] % 3, decode_responses=False)

    assert locked_increments(make, "ccounter") == THREADS * ROUNDS


def test_unprotected_updates_do_lose_increments(server: kiwi.Server) -> None:
    """The control for the lock tests: without the lock, the same pause
    inside read-modify-write loses updates, so the tests above can fail."""
    setup = server.client()
    setup.delete("unlocked")

    def worker() -> None:
        r = server.client()
        try:
            for _ in range(ROUNDS):
                value = int(r.get("unlocked") or 0)
                time.sleep(0.001)
                r.set("unlocked", value + 1)
        finally:
            r.close()

    run_threads([worker] * THREADS, timeout=60)
    assert int(setup.get("unlocked") or 0) < THREADS * ROUNDS
    setup.close()


async def async_locked_increments(port: int, key: str) -> int:
    setup = redis.asyncio.Redis(host=HOST, port=port)
    await setup.delete(key)

    async def worker() -> None:
        r = redis.asyncio.Redis(host=HOST, port=port)
        try:
            lock = r.lock(f"lock:{key}", timeout=30, blocking_timeout=60)
            for _ in range(ROUNDS):
                async with lock:
                    value = int(await r.get(key) or 0)
                    await asyncio.sleep(0.001)
                    await r.set(key, value + 1)
        finally:
            await r.aclose()

    await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(THREADS))), 120)
    try:
        return int(await setup.get(key) or 0)
    finally:
        await setup.aclose()


def test_asyncio_lock_keeps_a_counter_exact(server: kiwi.Server) -> None:
    assert asyncio.run(async_locked_increments(server.port, "acounter")) == THREADS * ROUNDS


def test_asyncio_lock_through_a_cluster_follower(cluster: kiwi.Cluster) -> None:
    leader = cluster.wait_for_leader()
    follower = (leader + 1) % 3
    port = cluster.nodes[follower].port
    assert asyncio.run(async_locked_increments(port, "acc")) == THREADS * ROUNDS


def test_register_script_falls_back_from_noscript(server: kiwi.Server) -> None:
    r = server.client(decode_responses=True)
    r.script_flush()
    add = r.register_script("return redis.call('incrby', KEYS[1], ARGV[1])")
    assert not r.script_exists(add.sha)[0]
    with pytest.raises(NoScriptError):
        r.evalsha(add.sha, 1, "sc", 1)
    assert add(keys=["sc"], args=[5]) == 5
    assert r.script_exists(add.sha) == [True]
    assert add(keys=["sc"], args=[2]) == 7
    pipe = r.pipeline()
    add(keys=["sc"], args=[1], client=pipe)
    add(keys=["sc"], args=[1], client=pipe)
    assert pipe.execute() == [8, 9]
    r.close()


def test_script_in_multi_runs_inside_the_transaction(server: kiwi.Server) -> None:
    r = server.client(decode_responses=True)
    r.delete("tx")
    sha = r.script_load("return redis.call('incr', KEYS[1])")
    pipe = r.pipeline(transaction=True)
    pipe.eval("return redis.call('incr', KEYS[1])", 1, "tx")
    pipe.evalsha(sha, 1, "tx")
    pipe.get("tx")
    assert pipe.execute() == [1, 2, "2"]
    r.close()


def busy_behaviour(port: int) -> list[Any]:
    """What a server answers around a long script: others get BUSY past the
    threshold, SCRIPT KILL stops a script that did not write, and refuses
    (UNKILLABLE) one that did, which then runs to its end."""
    seen: list[Any] = []
    with (
        RawConnection(HOST, port) as admin,
        RawConnection(HOST, port, timeout=30) as looper,
        RawConnection(HOST, port) as other,
    ):
        admin.call("CONFIG", "SET", "busy-reply-threshold", "100")
        try:
            looper.send_command("EVAL", "while true do end", "0")

            def busy() -> bool:
                reply = other.call("GET", "x")
                return isinstance(reply, str) and reply.startswith("BUSY")

            wait_until(busy, timeout=10, interval=0.05, message="BUSY while the script runs")
            seen.append(other.call("PING"))
            seen.append(other.call("SCRIPT", "EXISTS", "x"))
            seen.append(admin.call("SCRIPT", "KILL"))
            killed = looper.read()
            seen.append(killed.split(" script:")[0])
            seen.append(other.call("PING"))
            seen.append(admin.call("SCRIPT", "KILL"))

            # A script that wrote runs for 4 s of its own clock, then ends
            # (long enough to be seen busy on a loaded machine).
            looper.send_command(
                "EVAL",
                "redis.call('set', KEYS[1], 'v') "
                "local t = redis.call('time') local stop = t[1] * 1000000 + t[2] + 4000000 "
                "repeat local n = redis.call('time') until n[1] * 1000000 + n[2] >= stop "
                "return 'done'",
                "1",
                "written",
            )
            wait_until(busy, timeout=10, interval=0.05, message="BUSY while the writing script runs")
            seen.append(admin.call("SCRIPT", "KILL"))
            seen.append(looper.read())
            seen.append(other.call("GET", "written"))
        finally:
            admin.call("CONFIG", "SET", "busy-reply-threshold", "5000")
            admin.call("DEL", "written")
    return seen


def test_busy_and_script_kill_as_redis(server: kiwi.Server, reference_port: int) -> None:
    expected = busy_behaviour(reference_port)
    assert expected[0].startswith("BUSY Redis is busy running a script.")
    assert busy_behaviour(server.port) == expected


SHEBANG_SCRIPTS = [
    ["EVAL", "#!lua\nreturn redis.call('set', KEYS[1], 'x')", "1", "k"],
    ["EVAL", "#!lua flags=no-writes\nreturn redis.call('set', KEYS[1], 'x')", "1", "k"],
    ["EVAL", "#!lua flags=no-writes\nreturn redis.call('get', KEYS[1])", "1", "k"],
    ["EVAL_RO", "#!lua\nreturn 1", "0"],
    ["EVAL_RO", "#!lua flags=no-writes\nreturn 2", "0"],
    ["EVAL", "#!lua flags=bad\nreturn 1", "0"],
    ["EVAL", "#!lua name=x\nreturn 1", "0"],
    ["EVAL", "#!python\nreturn 1", "0"],
    ["EVAL", "#!lua", "0"],
    ["EVAL", "#!lua flags=allow-oom,allow-stale,no-cluster\nreturn 3", "0"],
    ["EVAL", "#!lua\nerror('on line two')", "0"],
    ["EVAL", "\nreturn 4", "0"],
    ["SCRIPT", "LOAD", "#!lua flags=bad\nreturn 1"],
    ["SCRIPT", "LOAD", "#!lua flags=no-writes\nreturn 5"],
    ["EVALSHA_RO", "bacb0fa9e0511ae36561f3fbe6a4b9d07a79e1a4", "0"],
    ["EVAL", "local t = {}\nfor i = 1, 3 do t[i] = i * i end\nreturn t", "0"],
    ["EVAL", "return redis.call('lpush', KEYS[1], unpack(ARGV))", "1", "list", "a", "b", "c"],
    ["EVAL", "return redis.call('lrange', KEYS[1], 0, -1)", "1", "list"],
]


@pytest.mark.parametrize("protocol", [2, 3])
def test_multiline_scripts_answer_redis_bytes(server: kiwi.Server, reference_port: int, protocol: int) -> None:
    replies = []
    for port in (reference_port, server.port):
        conn = RawConnection(HOST, port)
        try:
            conn.call("HELLO", str(protocol))
            conn.call("FLUSHALL")
            replies.append([conn.call_raw(*args) for args in SHEBANG_SCRIPTS])
        finally:
            conn.close()
    assert replies[1] == replies[0]


def keyspace(r: redis.Redis) -> dict[str, Any]:
    """Every key of database 0 with its type and whole value."""
    out: dict[str, Any] = {}
    for key in r.scan_iter(count=1000):
        kind = r.type(key)
        value: Any
        if kind == "string":
            value = r.get(key)
        elif kind == "list":
            value = r.lrange(key, 0, -1)
        elif kind == "set":
            value = sorted(r.smembers(key))
        elif kind == "hash":
            value = r.hgetall(key)
        elif kind == "zset":
            value = r.zrange(key, 0, -1, withscores=True)
        else:
            value = None
        out[key] = (kind, value, r.pttl(key) > 0)
    return out


RANDOM_SCRIPT = """
local picks = {}
for i = 1, 5 do picks[i] = math.random(1000000) end
local t = redis.call('time')
redis.call('hset', KEYS[1], 'picks', table.concat(picks, ','), 'time', t[1] .. '.' .. t[2])
redis.call('sadd', KEYS[2], 'a', 'b', 'c', 'd', 'e', 'f', 'g')
local popped = redis.call('spop', KEYS[2])
redis.call('rpush', KEYS[3], popped, redis.call('srandmember', KEYS[2]))
redis.call('set', KEYS[4], math.random(), 'px', 600000)
return popped
"""


def test_scripts_leave_identical_data_on_every_node(cluster: kiwi.Cluster) -> None:
    leader = cluster.wait_for_leader()
    clients = [node_client(cluster, i) for i in range(3)]
    try:
        clients[leader].flushall()
        sha = clients[(leader + 1) % 3].script_load(RANDOM_SCRIPT)
        for n in range(12):
            r = clients[n % 3]
            keys = [f"h{n}", f"s{n}", f"l{n}", f"f{n}"]
            if n % 2:
                r.evalsha(sha, 4, *keys)
            else:
                r.eval(RANDOM_SCRIPT, 4, *keys)
        # Each node's EVALSHA works: SCRIPT LOAD went through the log.
        for r in clients:
            assert r.script_exists(sha) == [True]
            assert r.eval_ro("return redis.call('exists', KEYS[1])", 1, "h0") == 1
        want = keyspace(clients[leader])
        assert len(want) == 48

        def same_everywhere() -> bool:
            return all(keyspace(r) == want for r in clients)

        wait_until(same_everywhere, timeout=10, message="every node holds what the leader holds")
        picks = {want[f"h{n}"][1]["picks"] for n in range(12)}
        assert len(picks) > 1, "math.random is seeded per entry, not reset for every script"
        with pytest.raises(ResponseError, match="cannot run in a replicated entry"):
            clients[leader].eval("return redis.call('info')", 0)
    finally:
        for r in clients:
            r.close()


def test_read_only_scripts_refuse_writes_on_a_follower(cluster: kiwi.Cluster) -> None:
    leader = cluster.wait_for_leader()
    follower = node_client(cluster, (leader + 1) % 3)
    try:
        follower.set("ro", "1")
        assert follower.eval_ro("return redis.call('get', KEYS[1])", 1, "ro") == "1"
        with pytest.raises(ResponseError, match="Write commands are not allowed from read-only scripts"):
            follower.eval_ro("return redis.call('set', KEYS[1], '2')", 1, "ro")
        assert follower.get("ro") == "1"
    finally:
        follower.close()


def test_a_script_is_atomic_against_concurrent_readers(server: kiwi.Server) -> None:
    """A script moves units between two keys while another client reads
    both at once: the reader never sees the move half done."""
    r = server.client(decode_responses=True)
    r.mset({"ka": 1000, "kb": 1000})
    move = r.register_script("redis.call('decrby', KEYS[1], 1) return redis.call('incrby', KEYS[2], 1)")
    stop = threading.Event()
    sums: list[int] = []

    def mover() -> None:
        c = server.client(decode_responses=True)
        try:
            for _ in range(300):
                move(keys=["ka", "kb"], client=c)
        finally:
            stop.set()
            c.close()

    def reader() -> None:
        c = server.client(decode_responses=True)
        try:
            while not stop.is_set():
                a, b = c.mget("ka", "kb")
                sums.append(int(a) + int(b))
        finally:
            c.close()

    run_threads([mover, reader], timeout=60)
    assert sums and set(sums) == {2000}
    assert r.mget("ka", "kb") == ["700", "1300"]
    r.close()
