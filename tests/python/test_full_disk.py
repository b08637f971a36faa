"""A full disk: writes are refused with Redis's MISCONF text, reads go on,
nothing acknowledged is lost or corrupted, and writes resume by themselves
once there is room again.

The data directory of a ``kiwi-server`` process lives on a 64 MB tmpfs
(``mount -t tmpfs -o size=64m``, which needs root; the test unmounts it in a
``finally``). A filler file takes part of it; ``acklog`` writers with large
values fill the rest through Kiwi until writes fail; deleting the filler
gives the room back. Redis 7.0 answers ``MISCONF Errors writing to the AOF
file: No space left on device`` to every write command and to PING once its
AOF write failed with ENOSPC (checked against Debian's redis-server on such a
tmpfs), and keeps serving reads; Kiwi answers the same.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from typing import Optional

import pytest
import redis

from acklog import OK, REFUSED, Writer, all_violations, check_writers, stop_writers, total
from kiwi.testing.processes import ProcessCluster, ServerProcess, server_command
from kiwi.testing.targets import free_ports
from kiwitest import HOST, RawConnection, no_retry, wait_until

pytestmark = pytest.mark.kiwi_only

MISCONF = "MISCONF Errors writing to the AOF file: No space left on device"
FS_SIZE_MB = 64
#: Taken by a file before Kiwi fills the rest; deleting it must free more
#: than Kiwi's memtable size (8 MB), which RocksDB waits for before resuming.
FILLER_MB = 24
VALUE_SIZE = 32 * 1024
START_TIMEOUT = 30.0
#: RocksDB looks at the free space every 5 s, then flushes its memtables.
RESUME_TIMEOUT = 60.0


@contextlib.contextmanager
def small_filesystem(size_mb: int) -> Iterator[str]:
    """A tmpfs of ``size_mb`` MB mounted on a new directory; unmounted and
    removed afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a size-limited tmpfs needs root")
    mountpoint = tempfile.mkdtemp(prefix="kiwi-fulldisk-")
    try:
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", mountpoint],
            check=True,
            capture_output=True,
            timeout=30,
        )
        try:
            yield mountpoint
        finally:
            subprocess.run(["umount", mountpoint], check=True, capture_output=True, timeout=30)
    finally:
        shutil.rmtree(mountpoint, ignore_errors=True)


def client(port: int) -> redis.Redis:
    return redis.Redis(host=HOST, port=port, socket_timeout=10, socket_connect_timeout=1, retry=no_retry())


def reply(r: redis.Redis, *command: object) -> object:
    """The reply, or the error's text."""
    try:
        return r.execute_command(*command)
    except redis.ResponseError as e:
        return str(e)


def test_full_disk_refuses_writes_keeps_reads_and_recovers() -> None:
    rng = random.Random("full-disk")
    with small_filesystem(FS_SIZE_MB) as fs:
        logdir = tempfile.mkdtemp(prefix="kiwi-fulldisk-log-")
        (port,) = free_ports(1)
        args = ["--port", str(port), "--bind", HOST, "--dir", os.path.join(fs, "data")]
        proc = ServerProcess(server_command(), args, os.path.join(logdir, "server.log"))
        filler = os.path.join(fs, "filler")
        writers: list[Writer] = []
        try:
            proc.start()
            proc.wait_ready(HOST, port, START_TIMEOUT)
            with open(filler, "wb") as f:
                f.write(b"\0" * (FILLER_MB << 20))

            def connect(attempt: int) -> Optional[redis.Redis]:
                return client(port)

            def writing(first: int) -> list[Writer]:
                started = [Writer(w, connect, rng.getrandbits(32), value_size=VALUE_SIZE) for w in (first, first + 1)]
                for w in started:
                    w.start()
                writers.extend(started)
                return started

            def refused(group: list[Writer], at_least: int) -> None:
                wait_until(
                    lambda: (check_writers(group), total(group, REFUSED) >= at_least)[1],
                    timeout=120,
                    interval=0.05,
                    message="writes refused while the disk is full",
                )

            # Fill the disk through Kiwi until writes are refused.
            filling = writing(0)
            refused(filling, 20)
            stop_writers(filling)
            r = client(port)
            try:
                assert reply(r, "SET", "one-more", "x") == MISCONF
                assert reply(r, "DEL", "no-such-key") == MISCONF  # a write, even when it changes nothing
                assert reply(r, "PING") == MISCONF  # as Redis: health checks notice
                # Reads go on, and show every acknowledged write intact and
                # no refused one.
                assert reply(r, "DBSIZE") == len(r.keys("*"))
                assert reply(r, "EXISTS", "one-more") == 0
                bad = all_violations(filling, r)
                assert not bad, f"while the disk is full: {bad[:10]}"
            finally:
                r.close()
            assert total(filling, OK) > 100

            # Room again: writes resume by themselves.
            waiting = writing(2)
            refused(waiting, 1)
            os.remove(filler)
            wait_until(
                lambda: (check_writers(waiting), total(waiting, OK) >= 100)[1],
                timeout=RESUME_TIMEOUT,
                interval=0.1,
                message="writes acknowledged again after the filler was deleted",
            )
            stop_writers(waiting)
            r = client(port)
            try:
                assert reply(r, "PING") is True
                assert reply(r, "SET", "after", "1") is True
                bad = all_violations(writers, r)
                assert not bad, f"after recovering: {bad[:10]}"
            finally:
                r.close()

            # Nothing acknowledged before, during or after is lost in a crash.
            proc.kill()
            proc.start()
            proc.wait_ready(HOST, port, START_TIMEOUT)
            r = client(port)
            try:
                assert reply(r, "GET", "after") == b"1"
                bad = all_violations(writers, r)
                assert not bad, f"after kill -9 and restart: {bad[:10]}\n{proc.log_tail(30)}"
            finally:
                r.close()
            unknown = [e for w in writers for e in w.log.unknown_errors]
            assert not unknown, f"outcomes left unknown on a server that never went down: {unknown}"
            assert "panicked" not in proc.log_tail(10_000)
        finally:
            for w in writers:
                w.stop.set()
            proc.kill()  # before unmounting: its files keep the tmpfs busy
            shutil.rmtree(logdir, ignore_errors=True)


def test_full_disk_refuses_transactions_whole() -> None:
    """A transaction whose writes cannot be stored is refused whole, as Redis
    words it, and none of its writes shows up later: queued before the disk
    filled, EXEC answers ``EXECABORT Transaction discarded because of:
    MISCONF …``; queued after, each write answers MISCONF and EXEC
    ``EXECABORT Transaction discarded because of previous errors.``"""
    with small_filesystem(16) as fs:
        logdir = tempfile.mkdtemp(prefix="kiwi-fulldisk-log-")
        (port,) = free_ports(1)
        args = ["--port", str(port), "--bind", HOST, "--dir", os.path.join(fs, "data")]
        proc = ServerProcess(server_command(), args, os.path.join(logdir, "server.log"))
        try:
            proc.start()
            proc.wait_ready(HOST, port, START_TIMEOUT)
            r = client(port)
            try:
                with RawConnection(HOST, port) as tx:
                    assert tx.call_raw("MULTI") == b"+OK\r\n"
                    assert tx.call_raw("SET", "tx:a", "1") == b"+QUEUED\r\n"
                    assert tx.call_raw("INCR", "tx:n") == b"+QUEUED\r\n"
                    big = "x" * (256 * 1024)
                    filled = 0
                    while reply(r, "SET", f"fill:{filled}", big) is True:
                        filled += 1
                        assert filled < 1000, "the 16 MB disk never filled"
                    assert tx.call_raw("EXEC") == f"-EXECABORT Transaction discarded because of: {MISCONF}\r\n".encode()
                    assert tx.call_raw("MULTI") == b"+OK\r\n"
                    assert tx.call_raw("SET", "tx:b", "1") == f"-{MISCONF}\r\n".encode()
                    assert tx.call_raw("GET", "tx:b") == b"+QUEUED\r\n"
                    assert tx.call_raw("EXEC") == b"-EXECABORT Transaction discarded because of previous errors.\r\n"
                assert r.exists("tx:a", "tx:b", "tx:n") == 0
                assert r.exists(*[f"fill:{i}" for i in range(filled)]) == filled
            finally:
                r.close()
        finally:
            proc.kill()
            shutil.rmtree(logdir, ignore_errors=True)


def test_full_disk_on_a_raft_node() -> None:
    """A node whose disk fills stops taking part (its log cannot grow): it
    answers writes and PING with MISCONF and reads with CLUSTERDOWN, never
    panics; the two others go on acknowledging writes. With room again, a
    restart brings it back with every acknowledged write."""
    with small_filesystem(FS_SIZE_MB) as fs, tempfile.TemporaryDirectory(prefix="kiwi-fulldisk-raft-") as base:
        # ProcessCluster keeps node i's data in <dir>/node<i+1>/data: node 1's is the tmpfs.
        full = 1
        os.makedirs(os.path.join(base, f"node{full + 1}"))
        os.symlink(fs, os.path.join(base, f"node{full + 1}", "data"))
        with open(os.path.join(fs, "filler"), "wb") as f:
            f.write(b"\0" * (FILLER_MB << 20))
        with ProcessCluster(3, dir=base, raft_timeout_ms=1000) as cluster:
            r = cluster.client(0, socket_timeout=10, retry=no_retry())
            acked: dict[str, str] = {}
            rng = random.Random("raft-full-disk")
            try:

                def write_until_the_node_stops() -> bool:
                    for _ in range(50):
                        key, value = f"k{rng.getrandbits(64):016x}", "v".ljust(VALUE_SIZE, "x")
                        try:
                            assert r.set(key, value) is True
                            acked[key] = value
                        except redis.RedisError:
                            pass  # outcome unknown (an election if the leader's disk filled)
                    return (cluster.raft_info(full) or {}).get("role") == "shutdown"

                wait_until(write_until_the_node_stops, timeout=120, interval=0, message="node 1's disk filled")
                node = cluster.client(full, socket_timeout=10, retry=no_retry())
                try:
                    assert reply(node, "SET", "x", "1") == MISCONF
                    assert reply(node, "PING") == MISCONF
                    with pytest.raises(redis.exceptions.ClusterDownError):
                        node.get("after")
                finally:
                    node.close()
                # The other two are a majority: writes go on.
                wait_until(lambda: reply(r, "SET", "after", "1") is True, timeout=30, interval=0.1)
                acked["after"] = "1"
            finally:
                r.close()
            os.remove(os.path.join(fs, "filler"))
            cluster.kill(full)
            cluster.restart(full)
            cluster.wait_settled(60)
            local = cluster.client(full, single_connection_client=True, socket_timeout=30, retry=no_retry())
            try:
                local.execute_command("READONLY")  # its own copy
                missing = [k for k, v in acked.items() if local.get(k) != v.encode()]
            finally:
                local.close()
            assert not missing, f"{len(missing)} of {len(acked)} acknowledged writes missing on the restarted node"
            for i in range(cluster.nodes):
                with open(cluster.log_path(i), errors="replace") as log:
                    assert "panicked" not in log.read(), f"node {i} panicked"
