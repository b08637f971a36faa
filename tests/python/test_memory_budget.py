"""RocksDB's memory: one block cache shared by all data (``block-cache-size``)
and one budget for all memtables (``memtable-budget``), both set by CONFIG
SET on a running server and shown by INFO memory (storage/memory.rs)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

import kiwi
from kiwitest import free_port, wait_until

pytestmark = pytest.mark.kiwi_only

MB = 1 << 20


@pytest.fixture
def r() -> Iterator[redis.Redis]:
    with kiwi.Server() as server, redis.Redis(port=server.port) as client:
        yield client


def used(r: redis.Redis) -> tuple[int, int]:
    memory = r.info("memory")
    return memory["kiwi_block_cache_bytes"], memory["kiwi_memtable_bytes"]


def test_the_budgets_are_parameters_with_redis_style_checks(r: redis.Redis) -> None:
    assert r.config_get("block-cache-size") == {"block-cache-size": str(128 * MB)}
    assert r.config_get("memtable-budget") == {"memtable-budget": str(128 * MB)}
    assert r.config_set("block-cache-size", "8mb") is True
    assert r.config_get("block-cache-size") == {"block-cache-size": str(8 * MB)}
    with pytest.raises(redis.ResponseError) as err:
        r.config_set("memtable-budget", "lots")
    assert str(err.value) == (
        "CONFIG SET failed (possibly related to argument 'memtable-budget') - argument must be a memory value"
    )
    with pytest.raises(redis.ResponseError) as err:
        r.config_set("block-cache-size", "1000")
    assert str(err.value) == (
        "CONFIG SET failed (possibly related to argument 'block-cache-size') - "
        "argument must be between 1048576 and 9223372036854775807 inclusive"
    )
    assert r.config_get("memtable-budget") == {"memtable-budget": str(128 * MB)}


@pytest.fixture
def small(tmp_path: Path) -> Iterator[redis.Redis]:
    """A kiwi-server process started with a 2 MB cache and memtable budget
    (as directives: memtables sized at open are small from the start)."""
    binary = shutil.which("kiwi-server") or str(Path(sys.executable).with_name("kiwi-server"))
    port = free_port()
    command = [binary, "--port", str(port), "--dir", str(tmp_path / "data"), "--loglevel", "warning"]
    proc = subprocess.Popen(
        [*command, "--block-cache-size", "2mb", "--memtable-budget", "2mb"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port, socket_timeout=10)
    try:

        def answers() -> bool:
            try:
                return bool(client.ping())
            except redis.ConnectionError:
                return False

        wait_until(answers, timeout=30, message="kiwi-server did not start")
        yield client
    finally:
        client.close()
        proc.terminate()
        proc.wait(timeout=30)


def test_the_block_cache_and_memtables_hold_what_they_are_given(small: redis.Redis) -> None:
    """12 MB of values, read twice: the memtables stay near their 2 MB (they
    flush), a 2 MB cache within 2 MB; grown to 64 MB at run time, the cache
    takes the values read."""
    r = small
    assert r.config_get("memtable-budget") == {"memtable-budget": str(2 * MB)}
    keys = [f"k{i}" for i in range(12_000)]
    for start in range(0, len(keys), 1_000):
        r.mset({k: os.urandom(1024) for k in keys[start : start + 1_000]})
    wait_until(lambda: used(r)[1] <= 3 * MB, timeout=30, message=f"memtables hold {used(r)[1]} bytes")

    def read_all() -> None:
        for start in range(0, len(keys), 1_000):
            assert all(v is not None for v in r.mget(keys[start : start + 1_000]))

    read_all()
    read_all()
    cache, _ = used(r)
    assert 0 < cache <= 2 * MB + 64 * 1024, cache
    assert r.config_set("block-cache-size", "64mb") is True
    read_all()
    read_all()
    assert used(r)[0] > 6 * MB
