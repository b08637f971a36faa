"""Clients blocked on the same key are served first come, first served.

Redis serves blocked clients of a key in the order they blocked: a push of
several elements hands them out in that order, and a single element goes to
the oldest waiter while the others keep waiting. Runs against any server
(``KIWI_TEST_EXTERNAL_PORT`` checks the expectations on redis-server).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis

from kiwitest import BlockingCall, blocked_clients, wait_until

ClientFactory = Callable[..., redis.Redis]


def block_in_order(r: redis.Redis, make_client: ClientFactory, *commands: tuple[Any, ...]) -> list[BlockingCall]:
    """Start each command only once the previous one is blocked."""
    before = blocked_clients(r)
    started = []
    for n, command in enumerate(commands, start=1):
        b = BlockingCall(make_client(decode_responses=True), *command)
        b.start()
        wait_until(lambda n=n: blocked_clients(r) == before + n, message=f"{command} did not block")
        started.append(b)
    return started


def test_one_push_of_many_serves_waiters_in_the_order_they_blocked(r: redis.Redis, make_client: ClientFactory) -> None:
    waiters = block_in_order(r, make_client, *[("BLPOP", "q", 0)] * 4)
    assert r.rpush("q", "a", "b", "c", "d") == 4
    assert [list(w.result()) for w in waiters] == [["q", "a"], ["q", "b"], ["q", "c"], ["q", "d"]]
    assert r.exists("q") == 0


def test_single_pushes_go_to_the_oldest_waiter_first(r: redis.Redis, make_client: ClientFactory) -> None:
    first, second, third = block_in_order(r, make_client, ("BRPOP", "q", 0), ("BRPOP", "q", 0), ("BRPOP", "q", 0))
    for n, (waiter, rest) in enumerate([(first, [second, third]), (second, [third]), (third, [])]):
        r.lpush("q", f"e{n}")
        assert list(waiter.result()) == ["q", f"e{n}"]
        # The younger ones are still waiting.
        assert all(w.is_alive() for w in rest)
        wait_until(lambda rest=rest: blocked_clients(r) == len(rest))


def test_waiters_on_several_keys_keep_their_order(r: redis.Redis, make_client: ClientFactory) -> None:
    # The oldest waits on both keys; a push to either serves it first.
    old, young = block_in_order(r, make_client, ("BLPOP", "k1", "k2", 0), ("BLPOP", "k2", 0))
    r.rpush("k2", "x", "y")
    assert list(old.result()) == ["k2", "x"]
    assert list(young.result()) == ["k2", "y"]


def test_sorted_set_waiters_are_served_in_order(r: redis.Redis, make_client: ClientFactory) -> None:
    waiters = block_in_order(r, make_client, *[("BZPOPMIN", "z", 0)] * 3)
    r.zadd("z", {"m1": 1, "m2": 2, "m3": 3})
    assert [w.result()[1] for w in waiters] == ["m1", "m2", "m3"]
