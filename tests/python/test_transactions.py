"""MULTI/EXEC/DISCARD/WATCH through redis-py, alone and against other clients."""

from __future__ import annotations

import shlex
import threading

import pytest
import redis

from kiwitest import run_threads


def test_exec_runs_queued_commands_in_order(r: redis.Redis) -> None:
    pipe = r.pipeline(transaction=True)
    pipe.set("a", "1").incr("a").incrby("a", 10).get("a")
    assert pipe.execute() == [True, 2, 12, b"12"]


def test_errors_at_run_time_are_returned_in_place(r: redis.Redis) -> None:
    pipe = r.pipeline(transaction=True)
    pipe.set("s", "text").incr("s").set("after", "1")
    results = pipe.execute(raise_on_error=False)
    assert results[0] is True
    assert isinstance(results[1], redis.ResponseError)
    assert str(results[1]) == "value is not an integer or out of range"
    assert results[2] is True
    assert r.get("after") == b"1", "the commands after a failing one still ran"


def test_queue_time_error_aborts_the_whole_transaction(r: redis.Redis) -> None:
    r.execute_command("MULTI")
    r.execute_command("SET", "k", "v")  # +QUEUED (checked byte-exact in redis-diff/transactions.txt)
    with pytest.raises(redis.ResponseError, match="unknown command"):
        r.execute_command("NOSUCH", "x")
    with pytest.raises(redis.ResponseError, match=r"^Transaction discarded because of previous errors"):
        r.execute_command("EXEC")
    assert r.exists("k") == 0


def test_discard_drops_the_queue(r: redis.Redis) -> None:
    r.execute_command("MULTI")
    r.execute_command("SET", "k", "v")
    assert r.execute_command("DISCARD") in (True, b"OK", "OK")
    assert r.exists("k") == 0
    with pytest.raises(redis.ResponseError, match="EXEC without MULTI"):
        r.execute_command("EXEC")


def test_watch_aborts_exec_when_another_client_writes(r: redis.Redis, make_client) -> None:
    other = make_client()
    r.set("balance", 100)
    with r.pipeline(transaction=True) as pipe:
        pipe.watch("balance")
        current = int(pipe.get("balance"))
        other.set("balance", 50)  # a concurrent writer
        pipe.multi()
        pipe.set("balance", current - 10)
        with pytest.raises(redis.WatchError):
            pipe.execute()
    assert r.get("balance") == b"50"


def test_watch_lets_exec_through_when_nothing_changed(r: redis.Redis, make_client) -> None:
    other = make_client()
    r.set("balance", 100)
    other.set("unrelated", 1)
    with r.pipeline(transaction=True) as pipe:
        pipe.watch("balance")
        current = int(pipe.get("balance"))
        pipe.multi()
        pipe.set("balance", current - 10)
        assert pipe.execute() == [True]
    assert r.get("balance") == b"90"


def test_watched_key_deleted_or_flushed_counts_as_changed(r: redis.Redis, make_client) -> None:
    other = make_client()
    for change in (lambda: other.delete("w"), lambda: other.flushdb()):
        r.set("w", 1)
        with r.pipeline(transaction=True) as pipe:
            pipe.watch("w")
            change()
            pipe.multi()
            pipe.set("w", 2)
            with pytest.raises(redis.WatchError):
                pipe.execute()


def test_optimistic_increments_from_many_clients_lose_nothing(r: redis.Redis, make_client) -> None:
    """The classic WATCH/GET/MULTI/SET/EXEC retry loop: every increment lands once."""
    workers, per_worker = 6, 40
    clients = [make_client() for _ in range(workers)]
    r.set("counter", 0)
    conflicts = []
    lock = threading.Lock()

    def work(client: redis.Redis) -> int:
        done = 0
        attempts = 0
        while done < per_worker:
            attempts += 1
            assert attempts < per_worker * 200, "retry loop did not converge"
            with client.pipeline(transaction=True) as pipe:
                try:
                    pipe.watch("counter")
                    value = int(pipe.get("counter"))
                    pipe.multi()
                    pipe.set("counter", value + 1)
                    pipe.execute()
                    done += 1
                except redis.WatchError:
                    with lock:
                        conflicts.append(1)
        return done

    run_threads([lambda c=c: work(c) for c in clients], timeout=60)
    assert int(r.get("counter")) == workers * per_worker


def test_exec_is_atomic_for_other_readers(r: redis.Redis, make_client) -> None:
    """Readers never see the state between two commands of one EXEC."""
    writer, reader = make_client(), make_client()
    r.mset({"x": 0, "y": 0})
    rounds = 300
    stop = threading.Event()
    torn: list[tuple[bytes, bytes]] = []

    def write() -> None:
        try:
            for i in range(1, rounds + 1):
                pipe = writer.pipeline(transaction=True)
                pipe.set("x", i).set("y", i)
                pipe.execute()
        finally:
            stop.set()

    def read() -> None:
        while not stop.is_set():
            x, y = reader.mget("x", "y")
            if x != y:
                torn.append((x, y))

    run_threads([write, read], timeout=60)
    assert not torn, f"saw half of a transaction: {torn[:5]}"
    assert r.mget("x", "y") == [str(rounds).encode()] * 2


def test_nested_multi_and_watch_inside_multi_are_refused(r: redis.Redis) -> None:
    r.execute_command("MULTI")
    with pytest.raises(redis.ResponseError, match="MULTI calls can not be nested"):
        r.execute_command("MULTI")
    with pytest.raises(redis.ResponseError, match="WATCH inside MULTI is not allowed"):
        r.execute_command("WATCH", "k")
    r.execute_command("SET", "k", "v")
    assert r.execute_command("EXEC") in ([b"OK"], ["OK"], [True])


def exec_after(r: redis.Redis, other_client: redis.Redis, *command: str) -> list | None:
    """WATCH ``k``, let ``other_client`` run ``command``, then MULTI/PING/EXEC:
    the EXEC reply (``None`` when the WATCH was invalidated)."""
    with r.pipeline(transaction=True) as pipe:
        pipe.watch("k")
        try:
            other_client.execute_command(*command)
        except redis.ResponseError:
            pass
        pipe.multi()
        pipe.ping()
        try:
            return pipe.execute()
        except redis.WatchError:
            return None


def test_a_blocked_client_timing_out_does_not_invalidate_a_watch(r: redis.Redis, make_client) -> None:
    with r.pipeline(transaction=True) as pipe:
        pipe.watch("k")
        assert make_client().blpop(["k"], timeout=0.1) is None
        pipe.multi()
        pipe.set("k", "mine")
        assert pipe.execute() == [True]
    assert r.get("k") == b"mine"


# (setup, the other client's command, whether EXEC fails) — as redis-server
# 7.0 answers: a WATCH fails only when Redis counts the key as modified.
WATCH_CASES = [
    # Writes nothing: the WATCH holds.
    (["ZADD k 1 a 2 b"], "ZPOPMIN k 0", False),
    (["ZADD k 1 a 2 b"], "ZPOPMAX k 0", False),
    ([], "ZPOPMIN k 0", False),
    (["RPUSH k a b c"], "LPOP k 0", False),
    (["RPUSH k a b c"], "RPOP k 0", False),
    (["SADD k a b"], "SPOP k 0", False),
    (["ZADD k 1 a 2 b"], "ZREM k nosuch", False),
    (["ZADD k 1 a 2 b"], "ZREMRANGEBYRANK k 5 6", False),
    (["RPUSH k a b c"], "LREM k 0 nosuch", False),
    (["SADD k a b"], "SREM k nosuch", False),
    (["HSET k f v"], "HDEL k nosuch", False),
    (["SET k 5"], "SETBIT k 0 0", False),
    ([], "BITOP AND k nosuch", False),
    (["SET k 5"], "PERSIST k", False),
    (["SET k 5"], "RENAME k k", False),
    ([], "FLUSHDB", False),
    ([], "FLUSHALL", False),
    (["SET other 1"], "FLUSHALL", False),
    (["SET k 5"], "FLUSHALL", True),
    # Counted as modified even when the value stays the same.
    (["RPUSH k a b c"], "LTRIM k 0 -1", True),
    (["RPUSH k a b c"], "LSET k 0 a", True),
    (["SET k 5"], "SET k 5", True),
    (["HSET k f v"], "HSET k f v", True),
    (["SET k 5"], "SETBIT k 100 0", True),
    ([], "APPEND k ''", True),
    (["ZADD k 1 a 2 b"], "ZPOPMIN k 1", True),
]


@pytest.mark.parametrize(
    ("setup", "command", "fails"),
    WATCH_CASES,
    ids=[f"{c}{' after ' + s[0] if s else ''}" for s, c, _ in WATCH_CASES],
)
def test_watch_fails_exactly_when_redis_counts_the_key_modified(
    r: redis.Redis, make_client, setup: list[str], command: str, fails: bool
) -> None:
    for line in setup:
        r.execute_command(*shlex.split(line))
    reply = exec_after(r, make_client(), *shlex.split(command))
    assert (reply is None) == fails, f"EXEC answered {reply!r}"


def test_a_key_written_then_flushed_in_one_transaction_counts_as_modified(r: redis.Redis, make_client) -> None:
    """Nothing of ``k`` is left, but it was written: the WATCH fails."""
    other = make_client()
    with r.pipeline(transaction=True) as pipe:
        pipe.watch("k")
        with other.pipeline(transaction=True) as theirs:
            theirs.set("k", "v").flushall()
            assert theirs.execute() == [True, True]
        pipe.multi()
        pipe.ping()
        with pytest.raises(redis.WatchError):
            pipe.execute()
