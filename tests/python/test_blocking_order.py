"""Clients blocked on the same key are served first come, first served.

Redis serves blocked clients of a key in the order they blocked: a push of
several elements hands them out in that order, and a single element goes to
the oldest waiter while the others keep waiting. Runs against any server
(``KIWI_TEST_EXTERNAL_PORT`` checks the expectations on redis-server).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import redis
from kiwitest import IO_TIMEOUT, wait_until

ClientFactory = Callable[..., redis.Redis]


class Blocked(threading.Thread):
    """One blocking command on its own connection; keeps the reply."""

    def __init__(self, client: redis.Redis, *command: Any) -> None:
        super().__init__(daemon=True)
        self.client = client
        self.command = command
        self.reply: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.reply = self.client.execute_command(*self.command)
        except BaseException as e:  # handed to the test thread
            self.error = e

    def result(self) -> Any:
        self.join(IO_TIMEOUT)
        assert not self.is_alive(), f"{self.command} is still blocked"
        if self.error is not None:
            raise self.error
        return self.reply


def blocked_clients(r: redis.Redis) -> int:
    return int(r.info("clients")["blocked_clients"])


def block_in_order(r: redis.Redis, make_client: ClientFactory, *commands: tuple[Any, ...]) -> list[Blocked]:
    """Start each command only once the previous one is blocked."""
    before = blocked_clients(r)
    started = []
    for n, command in enumerate(commands, start=1):
        b = Blocked(make_client(decode_responses=True), *command)
        b.start()
        wait_until(lambda: blocked_clients(r) == before + n, message=f"{command} did not block")
        started.append(b)
    return started


def test_one_push_of_many_serves_waiters_in_the_order_they_blocked(
    r: redis.Redis, make_client: ClientFactory
) -> None:
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
        wait_until(lambda: blocked_clients(r) == len(rest))


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
