"""HyperLogLog against redis-server 7.0: the same elements give the same
counts and the same bytes, values copied between the two servers (GET from
one, SET into the other) keep counting alike, and damaged values answer
Redis's replies. Random seeds, printed on failure; a few seconds in all."""

from __future__ import annotations

import random
import shutil
from collections.abc import Iterator

import pytest
import redis
from redis.exceptions import ResponseError

import kiwi
from kiwitest import HOST, reference_redis_server

pytestmark = pytest.mark.kiwi_only


@pytest.fixture(scope="module")
def reference() -> Iterator[redis.Redis]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed (scripts/setup-system.sh installs it)")
    with reference_redis_server(binary, "kiwi-hll-ref-") as port:
        client = redis.Redis(host=HOST, port=port, socket_timeout=30)
        yield client
        client.close()


@pytest.fixture(scope="module")
def kiwi_client() -> Iterator[redis.Redis]:
    with kiwi.Server() as server:
        client = redis.Redis(host=HOST, port=server.port, socket_timeout=30)
        yield client
        client.close()


@pytest.fixture
def both(reference: redis.Redis, kiwi_client: redis.Redis) -> tuple[redis.Redis, redis.Redis]:
    for client in (reference, kiwi_client):
        client.flushall()
        client.config_set("hll-sparse-max-bytes", 3000)
    return reference, kiwi_client


def outcome(client: redis.Redis, *args: object) -> object:
    """The reply, or the error text."""
    try:
        return client.execute_command(*args)
    except ResponseError as e:
        return f"error: {e}"


def same(both: tuple[redis.Redis, redis.Redis], *args: object, context: str = "") -> object:
    ref, kw = (outcome(client, *args) for client in both)
    assert kw == ref, f"{context} {args[:3]}: redis {ref!r}, kiwi {kw!r}"
    return ref


def test_counts_and_bytes_match_redis(both: tuple[redis.Redis, redis.Redis]) -> None:
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    keys = [f"hll:{i}" for i in range(4)]
    total = 0
    while total < 200_000:
        batch = rng.choice([1, 7, 100, 1000, 5000])
        key = rng.choice(keys)
        elements = [f"{rng.randrange(1 << 40)}" for _ in range(batch)]
        if rng.random() < 0.2:
            # Elements already seen, and binary ones.
            elements += [bytes([rng.randrange(256) for _ in range(rng.randrange(1, 12))])]
        same(both, "PFADD", key, *elements, context=f"seed {seed}")
        total += batch
        if rng.random() < 0.3:
            same(both, "PFCOUNT", key, context=f"seed {seed}")
        if rng.random() < 0.3:
            same(both, "GET", key, context=f"seed {seed}")
        if rng.random() < 0.1:
            same(both, "PFCOUNT", *rng.sample(keys, rng.randrange(2, 5)), context=f"seed {seed}")
    for key in keys:
        same(both, "PFCOUNT", key, context=f"seed {seed}")
        same(both, "GET", key, context=f"seed {seed}")
    same(both, "PFCOUNT", *keys, context=f"seed {seed}")
    same(both, "PFMERGE", "merged", *keys, context=f"seed {seed}")
    same(both, "GET", "merged", context=f"seed {seed}")
    same(both, "PFCOUNT", "merged", context=f"seed {seed}")


def test_values_copied_between_servers(both: tuple[redis.Redis, redis.Redis]) -> None:
    ref, kw = both
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    sizes = [0, 3, 50, 400, 1500, 4000, 30_000]
    for i, size in enumerate(sizes):
        elements = [f"e{rng.randrange(1 << 32)}" for _ in range(size)]
        # Built in Redis, copied into Kiwi; and built in Kiwi, copied into Redis.
        source, target = (ref, kw) if i % 2 == 0 else (kw, ref)
        source.pfadd("src", *elements) if elements else source.execute_command("PFADD", "src")
        if rng.random() < 0.5:
            source.pfcount("src")  # with its cached count, or without
        value = source.get("src")
        assert value is not None
        target.set("src", value)
        assert target.get("src") == value
        context = f"seed {seed} size {size}"
        same(both, "PFCOUNT", "src", context=context)
        same(both, "GET", "src", context=context)
        more = [f"m{rng.randrange(1 << 32)}" for _ in range(rng.randrange(1, 3000))]
        same(both, "PFADD", "src", *more, context=context)
        same(both, "GET", "src", context=context)
        same(both, "PFADD", "other", *more[: len(more) // 2], context=context)
        same(both, "PFMERGE", "dest", "other", "src", context=context)
        same(both, "GET", "dest", context=context)
        same(both, "PFCOUNT", "dest", "src", "other", context=context)
        same(both, "PFDEBUG", "ENCODING", "dest", context=context)
        for client in both:
            client.delete("src", "other", "dest")


def damaged(rng: random.Random, value: bytes) -> bytes:
    """`value` with a few bytes changed, cut or added after the header."""
    data = bytearray(value)
    for _ in range(rng.randrange(1, 4)):
        action = rng.randrange(4)
        if action == 0 and len(data) > 16:
            data[rng.randrange(16, len(data))] = rng.randrange(256)
        elif action == 1 and len(data) > 16:
            del data[rng.randrange(16, len(data)) :]
        elif action == 2:
            data += bytes(rng.randrange(256) for _ in range(rng.randrange(1, 4)))
        else:
            data[15] |= 0x80  # stale cache: the registers are read
    return bytes(data)


def test_damaged_values_answer_as_redis(both: tuple[redis.Redis, redis.Redis]) -> None:
    ref, _ = both
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    ref.pfadd("sparse", *[f"s{i}" for i in range(300)])
    ref.pfadd("dense", *[f"d{i}" for i in range(5000)])
    ref.pfadd("valid", *[f"v{i}" for i in range(100)])
    originals = [ref.get("sparse"), ref.get("dense")]
    for round_ in range(300):
        base = rng.choice(originals)
        assert base is not None
        value = damaged(rng, base)
        context = f"seed {seed} round {round_} value {value.hex()}"
        for client in both:
            client.set("bad", value)
            if round_ == 0:
                client.set("valid", ref.get("valid") or b"")
        command = rng.choice(
            [
                ["PFCOUNT", "bad"],
                ["PFCOUNT", "bad", "valid"],
                ["PFADD", "bad", *[f"x{rng.randrange(1000)}" for _ in range(rng.randrange(1, 20))]],
                ["PFMERGE", "out", "valid", "bad"],
                ["PFMERGE", "bad", "valid"],
                ["PFDEBUG", "DECODE", "bad"],
                ["PFDEBUG", "TODENSE", "bad"],
            ]
        )
        same(both, *command, context=context)
        same(both, "GET", "bad", context=context)


def test_keyspace_events_match_redis(both: tuple[redis.Redis, redis.Redis]) -> None:
    events = []
    for client in both:
        client.config_set("notify-keyspace-events", "KEA")
        pubsub = client.pubsub()
        try:
            pubsub.psubscribe("__key*__:*")
            assert pubsub.get_message(timeout=5) is not None
            client.pfadd("e1", "a", "b")
            client.pfadd("e1", "a")
            client.pfadd("e1", "c")
            client.pfcount("e1")
            client.pfmerge("e2", "e1")
            client.pfmerge("e2", "e1")
            client.execute_command("PFDEBUG", "TODENSE", "e2")
            client.set("end", "1")
            seen = []
            while True:
                message = pubsub.get_message(timeout=5)
                assert message is not None, f"no end event after {seen}"
                seen.append((message["channel"], message["data"]))
                if message["data"] == b"end":
                    break
            events.append(seen)
        finally:
            pubsub.close()
            client.config_set("notify-keyspace-events", "")
    assert events[1] == events[0]
    assert (b"__keyevent@0__:pfadd", b"e2") in events[0]


def test_pfcount_storing_its_count_touches_watch_as_redis(both: tuple[redis.Redis, redis.Redis]) -> None:
    """PFCOUNT of a value whose cached count is stale stores the count (a
    change to the value, as in Redis: a WATCH on it fails); with the count
    cached, it changes nothing and the transaction runs."""
    results = []
    for client in both:
        client.pfadd("w", "a", "b", "c")
        outcomes = []
        for _ in range(2):
            with client.pipeline(transaction=True) as pipe:
                pipe.watch("w")
                other = redis.Redis(connection_pool=client.connection_pool)
                other.pfcount("w")
                pipe.multi()
                pipe.set("done", "1")
                try:
                    outcomes.append(pipe.execute())
                except redis.WatchError:
                    outcomes.append("aborted")
        results.append((outcomes, client.get("w")))
    assert results[0][0] == ["aborted", [True]]
    assert results[1] == results[0]
