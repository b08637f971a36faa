"""Stopping a cluster node cleanly (SIGTERM, SHUTDOWN): a leader hands
leadership to an up-to-date follower before it exits, so the cluster does
not wait out an election timeout and the followers' leader lease; writes
sent meanwhile (to the stopping leader or forwarded to it) go to the new
leader. A whole rolling restart under writes is in test_testing_matrix.py
(nemesis ``rolling-restart``); bench/rolling_restart.py measures it."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest
import redis

from kiwi.testing.processes import ProcessCluster
from kiwi.testing.targets import no_retry

pytestmark = pytest.mark.kiwi_only


def test_a_stopping_leader_hands_leadership_over() -> None:
    with ProcessCluster(3) as target:
        target.wait_settled(timeout=30)
        old = target.leader()
        assert old is not None
        target.client(old).set("before", "1")
        target.stop(old)
        log = Path(target.log_path(old)).read_text(errors="replace")
        handed = re.search(r"leadership handed over.*to=(\d+)", log)
        assert handed is not None, log[-2000:]
        new_id = int(handed.group(1))
        assert new_id != old + 1
        target.wait_settled(timeout=30)
        assert target.leader() == new_id - 1
        assert target.client(new_id - 1).get("before") == b"1"
        target.restart(old)
        target.wait_settled(timeout=30)
        assert target.client(old).get("before") == b"1"


def test_writes_through_a_follower_wait_for_the_next_leader() -> None:
    """A follower's clients see no error while the leader stops cleanly:
    their writes are forwarded to the new leader."""
    with ProcessCluster(3, raft_timeout_ms=5000) as target:
        target.wait_settled(timeout=30)
        old = target.leader()
        assert old is not None
        follower = next(i for i in range(3) if i != old)
        errors: list[str] = []
        written: list[int] = []
        done = threading.Event()

        def write() -> None:
            client = redis.Redis(host=target.host, port=target.port(follower), socket_timeout=10, retry=no_retry())
            n = 0
            while not done.is_set():
                try:
                    client.set(f"k{n}", n)
                    written.append(n)
                except redis.RedisError as e:
                    errors.append(repr(e))
                n += 1
            client.close()

        thread = threading.Thread(target=write)
        thread.start()
        try:
            target.stop(old)
            target.wait_settled(timeout=30)
            target.client(target.leader() or follower).set("after", "1")
        finally:
            done.set()
            thread.join(timeout=30)
        assert errors == []
        assert written, "no write went through"
        check = target.client(target.leader() or follower)
        assert all(check.get(f"k{n}") == str(n).encode() for n in written)
        check.close()
