"""Atomicity of MSET/MSETNX and of read-modify-write string commands under
concurrent clients.

Every thread has its own client (same protocol as the test's ``r``); every
loop is bounded and every thread is joined against a deadline by
:func:`kiwitest.run_threads`.
"""

from __future__ import annotations

import random
import re
import threading
from collections import Counter
from collections.abc import Callable

import redis

from kiwitest import run_threads

ClientFactory = Callable[..., redis.Redis]
BARRIER_TIMEOUT = 15.0
MAX_READS = 5_000


def clients(make_client: ClientFactory, n: int) -> list[redis.Redis]:
    """``n`` independent clients."""
    return [make_client() for _ in range(n)]


# -- MSET vs. MGET ---------------------------------------------------------------


def test_mget_never_sees_a_torn_mset(r: redis.Redis, make_client: ClientFactory) -> None:
    """Writers MSET one generation value to all keys; readers MGET all keys.

    Every MGET must return a single generation: a mix means a reader saw half
    of some MSET. Writers shuffle their key order each time, which also
    catches lock-ordering deadlocks (the join deadline would trip).
    """
    keys = [f"torn:{i}" for i in range(16)]
    r.mset(dict.fromkeys(keys, "init"))
    writers, readers = clients(make_client, 4), clients(make_client, 3)
    done = threading.Event()
    start = threading.Barrier(len(writers) + len(readers), timeout=BARRIER_TIMEOUT)

    def writer(index: int, client: redis.Redis) -> int:
        rng = random.Random(index)
        start.wait()
        order = list(keys)
        for seq in range(150):
            rng.shuffle(order)
            client.mset(dict.fromkeys(order, f"w{index}:{seq}"))
        return 150

    def reader(client: redis.Redis) -> int:
        start.wait()
        reads = 0
        while not done.is_set() and reads < MAX_READS:
            values = client.mget(keys)
            assert len(set(values)) == 1, f"torn MSET observed: {Counter(values)}"
            reads += 1
        return reads

    def writers_then_signal() -> None:
        try:
            run_threads([lambda i=i, c=c: writer(i, c) for i, c in enumerate(writers)])
        finally:
            done.set()

    results = run_threads([writers_then_signal, *[lambda c=c: reader(c) for c in readers]])
    assert all(reads > 0 for reads in results[1:])
    final = r.mget(keys)
    assert len(set(final)) == 1
    assert final[0] != b"init"


def test_partially_overlapping_msets_are_serializable(r: redis.Redis, make_client: ClientFactory) -> None:
    """Group A writes keys 0-9, group B keys 5-14, readers MGET either range.

    In a serial history, each reader's view of its own group's private keys
    is one generation, the shared keys 5-9 are one generation, and if the
    shared keys were last written by the reader's own group, they must hold
    the very same generation as the private keys.
    """
    a_keys = [f"ovl:{i}" for i in range(10)]
    b_keys = [f"ovl:{i}" for i in range(5, 15)]
    r.mset(dict.fromkeys(a_keys, "A:init"))
    r.mset(dict.fromkeys(b_keys[5:], "B:init"))
    n_writers = 4
    writer_clients = clients(make_client, n_writers)
    reader_clients = clients(make_client, 2)
    done = threading.Event()

    def writer(index: int, client: redis.Redis) -> None:
        group, group_keys = ("A", a_keys) if index % 2 == 0 else ("B", b_keys)
        for seq in range(150):
            client.mset(dict.fromkeys(group_keys, f"{group}:{index}:{seq}"))

    def reader(client: redis.Redis, group: str, group_keys: list[str]) -> int:
        private = slice(0, 5) if group == "A" else slice(5, 10)
        shared = slice(5, 10) if group == "A" else slice(0, 5)
        reads = 0
        while not done.is_set() and reads < MAX_READS:
            values = client.mget(group_keys)
            own, common = set(values[private]), set(values[shared])
            assert len(own) == 1, f"group {group} private keys torn: {own}"
            assert len(common) == 1, f"shared keys torn: {common}"
            (own_value,), (common_value,) = own, common
            if common_value.startswith(group.encode()):
                assert common_value == own_value, (group, own_value, common_value)
            reads += 1
        return reads

    def writers_then_signal() -> None:
        try:
            run_threads([lambda i=i, c=c: writer(i, c) for i, c in enumerate(writer_clients)])
        finally:
            done.set()

    results = run_threads(
        [
            writers_then_signal,
            lambda: reader(reader_clients[0], "A", a_keys),
            lambda: reader(reader_clients[1], "B", b_keys),
        ]
    )
    assert results[1] > 0
    assert results[2] > 0


def test_opposite_key_orders_do_not_deadlock(r: redis.Redis, make_client: ClientFactory) -> None:
    """MSET a b and MSET b a hammered from two sides finish, and stay paired."""
    c1, c2 = clients(make_client, 2)

    def forward() -> None:
        for i in range(300):
            c1.mset({"dl:a": f"f{i}", "dl:b": f"f{i}"})

    def backward() -> None:
        for i in range(300):
            c2.mset({"dl:b": f"b{i}", "dl:a": f"b{i}"})

    run_threads([forward, backward])
    a, b = r.mget("dl:a", "dl:b")
    assert a == b
    assert a in (b"f299", b"b299")


# -- MSETNX races --------------------------------------------------------------


def test_msetnx_exactly_one_winner_per_key_group(r: redis.Redis, make_client: ClientFactory) -> None:
    """For each group of keys, exactly one of the racing MSETNX calls wins,
    and every key of the group holds the winner's value."""
    n_threads, n_groups = 6, 40
    thread_clients = clients(make_client, n_threads)
    start = threading.Barrier(n_threads, timeout=BARRIER_TIMEOUT)

    def racer(index: int, client: redis.Redis) -> list[bool]:
        start.wait()
        return [client.msetnx({f"grp:{g}:{k}": f"t{index}" for k in range(3)}) for g in range(n_groups)]

    wins = run_threads([lambda i=i, c=c: racer(i, c) for i, c in enumerate(thread_clients)])
    for g in range(n_groups):
        winners = [t for t in range(n_threads) if wins[t][g]]
        assert len(winners) == 1, f"group {g}: winners {winners}"
        values = r.mget([f"grp:{g}:{k}" for k in range(3)])
        assert values == [f"t{winners[0]}".encode()] * 3


def test_msetnx_with_shared_key_is_all_or_nothing(r: redis.Redis, make_client: ClientFactory) -> None:
    """Each racer MSETNXes the shared key plus a key of its own. One wins;
    no loser's own key may exist (a partial MSETNX would leave it behind)."""
    n_threads, rounds = 6, 30
    thread_clients = clients(make_client, n_threads)
    barrier = threading.Barrier(n_threads, timeout=BARRIER_TIMEOUT)

    def racer(index: int, client: redis.Redis) -> list[bool]:
        results = []
        for rnd in range(rounds):
            barrier.wait()
            results.append(client.msetnx({f"sh:{rnd}": f"t{index}", f"own:{rnd}:{index}": "x"}))
        return results

    wins = run_threads([lambda i=i, c=c: racer(i, c) for i, c in enumerate(thread_clients)])
    for rnd in range(rounds):
        winners = [t for t in range(n_threads) if wins[t][rnd]]
        assert len(winners) == 1, f"round {rnd}: winners {winners}"
        assert r.get(f"sh:{rnd}") == f"t{winners[0]}".encode()
        own = [t for t in range(n_threads) if r.exists(f"own:{rnd}:{t}")]
        assert own == winners


# -- read-modify-write counters and strings ------------------------------------------


def test_incr_from_many_threads_loses_nothing(r: redis.Redis, make_client: ClientFactory) -> None:
    """8 threads x 250 INCR = 2000, and every reply value is distinct."""
    n_threads, per_thread = 8, 250
    thread_clients = clients(make_client, n_threads)

    def worker(client: redis.Redis) -> list[int]:
        return [client.incr("counter") for _ in range(per_thread)]

    replies = run_threads([lambda c=c: worker(c) for c in thread_clients])
    seen = sorted(v for per in replies for v in per)
    assert seen == list(range(1, n_threads * per_thread + 1))
    assert r.get("counter") == str(n_threads * per_thread).encode()


def test_incrby_decrby_mix_sums_exactly(r: redis.Redis, make_client: ClientFactory) -> None:
    """Random INCRBY/DECRBY/INCR/DECR from 6 threads add up exactly."""
    n_threads, per_thread = 6, 200
    thread_clients = clients(make_client, n_threads)
    r.set("mix", "1000")

    def worker(index: int, client: redis.Redis) -> int:
        rng = random.Random(1000 + index)
        total = 0
        for _ in range(per_thread):
            amount = rng.randint(1, 10_000)
            op = rng.randrange(4)
            if op == 0:
                client.incrby("mix", amount)
                total += amount
            elif op == 1:
                client.decrby("mix", amount)
                total -= amount
            elif op == 2:
                client.incr("mix")
                total += 1
            else:
                client.decr("mix")
                total -= 1
        return total

    totals = run_threads([lambda i=i, c=c: worker(i, c) for i, c in enumerate(thread_clients)])
    assert int(r.get("mix")) == 1000 + sum(totals)


def test_incrbyfloat_from_many_threads_sums_exactly(r: redis.Redis, make_client: ClientFactory) -> None:
    """Binary fractions add without rounding, so the float total is exact."""
    n_threads, per_thread = 6, 100
    steps = [0.5, 0.25, -0.125, 2.0]
    thread_clients = clients(make_client, n_threads)

    def worker(index: int, client: redis.Redis) -> float:
        step = steps[index % len(steps)]
        for _ in range(per_thread):
            client.incrbyfloat("fsum", step)
        return step * per_thread

    contributions = run_threads([lambda i=i, c=c: worker(i, c) for i, c in enumerate(thread_clients)])
    assert float(r.get("fsum")) == sum(contributions)


def test_append_from_many_threads_keeps_every_chunk(r: redis.Redis, make_client: ClientFactory) -> None:
    """Concurrent APPENDs: total length is the sum, chunks never interleave,
    and each thread's chunks appear in the order it sent them."""
    n_threads, per_thread = 6, 150
    thread_clients = clients(make_client, n_threads)

    def worker(index: int, client: redis.Redis) -> list[int]:
        return [client.append("log", f"[{index:02d}:{i:04d}]") for i in range(per_thread)]

    lengths = run_threads([lambda i=i, c=c: worker(i, c) for i, c in enumerate(thread_clients)])
    chunk = len("[00:0000]")
    value = r.get("log").decode()
    assert len(value) == n_threads * per_thread * chunk
    assert sorted(n for per in lengths for n in per) == [chunk * k for k in range(1, n_threads * per_thread + 1)]
    tokens = re.findall(r"\[(\d\d):(\d{4})\]", value)
    assert len(tokens) * chunk == len(value), "chunks interleaved"
    for t in range(n_threads):
        assert [int(i) for th, i in tokens if int(th) == t] == list(range(per_thread))


def test_getset_chain_hands_out_every_token_once(r: redis.Redis, make_client: ClientFactory) -> None:
    """GETSET with unique tokens: every token is returned at most once, and
    returned tokens plus the final value are exactly the tokens written."""
    n_threads, per_thread = 6, 100
    thread_clients = clients(make_client, n_threads)
    r.set("baton", "start")

    def worker(index: int, client: redis.Redis) -> list[bytes]:
        return [client.getset("baton", f"{index}:{i}") for i in range(per_thread)]

    per_thread_returns = run_threads([lambda i=i, c=c: worker(i, c) for i, c in enumerate(thread_clients)])
    returned = [v for per in per_thread_returns for v in per]
    written = {f"{t}:{i}".encode() for t in range(n_threads) for i in range(per_thread)}
    assert len(returned) == len(set(returned)), "a token was handed out twice"
    assert set(returned) | {r.get("baton")} == written | {b"start"}


def test_mixed_read_write_load(r: redis.Redis, make_client: ClientFactory) -> None:
    """Each thread reads its own writes on private keys while all threads
    hammer a shared counter and a shared MSET pair."""
    n_threads, iterations = 6, 150
    thread_clients = clients(make_client, n_threads)
    r.mset({"pair:a": "0", "pair:b": "0"})

    def worker(index: int, client: redis.Redis) -> None:
        own = f"own:{index}"
        for i in range(iterations):
            client.set(own, i)
            assert client.get(own) == str(i).encode()
            assert client.append(f"app:{index}", "x") == i + 1
            client.incr("shared")
            client.mset({"pair:a": f"{index}:{i}", "pair:b": f"{index}:{i}"})
            a, b = client.mget("pair:a", "pair:b")
            assert a == b, (a, b)
            client.set(f"tmp:{index}", "1", px=60_000)
            assert client.delete(f"tmp:{index}") == 1

    run_threads([lambda i=i, c=c: worker(i, c) for i, c in enumerate(thread_clients)])
    assert r.get("shared") == str(n_threads * iterations).encode()
    assert r.mget([f"own:{i}" for i in range(n_threads)]) == [str(iterations - 1).encode()] * n_threads
    assert r.dbsize() == 2 * n_threads + 3


# -- single winners ----------------------------------------------------------------


def test_set_nx_race_has_exactly_one_winner(r: redis.Redis, make_client: ClientFactory) -> None:
    """In each round, of 6 simultaneous SET NX calls exactly one succeeds."""
    n_threads, rounds = 6, 40
    thread_clients = clients(make_client, n_threads)
    barrier = threading.Barrier(n_threads, timeout=BARRIER_TIMEOUT)

    def racer(index: int, client: redis.Redis) -> list[bool]:
        results = []
        for rnd in range(rounds):
            barrier.wait()
            results.append(client.set(f"lock:{rnd}", f"t{index}", nx=True) is True)
        return results

    wins = run_threads([lambda i=i, c=c: racer(i, c) for i, c in enumerate(thread_clients)])
    for rnd in range(rounds):
        winners = [t for t in range(n_threads) if wins[t][rnd]]
        assert len(winners) == 1, f"round {rnd}: winners {winners}"
        assert r.get(f"lock:{rnd}") == f"t{winners[0]}".encode()


def test_getdel_race_hands_value_to_exactly_one_client(r: redis.Redis, make_client: ClientFactory) -> None:
    """In each round, of 6 simultaneous GETDEL calls exactly one gets the value."""
    n_threads, rounds = 6, 40
    thread_clients = clients(make_client, n_threads)
    barrier = threading.Barrier(n_threads, timeout=BARRIER_TIMEOUT)

    def racer(index: int, client: redis.Redis) -> list[bytes | None]:
        got = []
        for rnd in range(rounds):
            if index == 0:
                client.set(f"prize:{rnd}", f"prize-{rnd}")
            barrier.wait()
            got.append(client.getdel(f"prize:{rnd}"))
        return got

    got = run_threads([lambda i=i, c=c: racer(i, c) for i, c in enumerate(thread_clients)])
    for rnd in range(rounds):
        values = [got[t][rnd] for t in range(n_threads)]
        assert sorted(values, key=lambda v: v is None) == [f"prize-{rnd}".encode()] + [None] * (n_threads - 1)
    assert r.dbsize() == 0
