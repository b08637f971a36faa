"""Client-side caching (CLIENT TRACKING) against Redis.

Each scenario is a list of steps on named connections, replayed on Debian's
redis-server and on Kiwi; after every step each connection sends PING and
everything it received before the PONG (invalidation pushes, redirected
messages) is recorded. The transcripts must be equal byte for byte.
``{id:NAME}`` in a step is the client id of connection NAME on that server.

(redis-py's own client-side cache refuses servers older than 7.4, Redis
7.0.15 included, so the wire is tested directly.)
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

import kiwi
from kiwitest import HOST, RawConnection, reference_redis_server

pytestmark = pytest.mark.kiwi_only

Step = tuple[str, list[str]]

SCENARIOS: dict[str, tuple[dict[str, int], list[Step]]] = {
    "default-mode": (
        {"t": 3, "w": 2},
        [
            ("t", ["CLIENT", "TRACKING", "ON"]),
            ("t", ["GET", "k"]),
            ("t", ["MGET", "k", "k2", "k3"]),
            ("w", ["SET", "k", "1"]),
            ("w", ["SET", "k", "2"]),
            ("t", ["GET", "k"]),
            ("t", ["SET", "k", "3"]),
            ("t", ["HGETALL", "h"]),
            ("w", ["HSET", "h", "f", "v"]),
            ("t", ["EXISTS", "k2"]),
            ("w", ["MSET", "k2", "a", "k3", "b"]),
            ("t", ["GET", "k"]),
            ("w", ["RENAME", "k", "k4"]),
            ("t", ["GET", "k4"]),
            ("w", ["FLUSHALL"]),
            ("t", ["GET", "k5"]),
            ("w", ["MULTI"]),
            ("w", ["SET", "k5", "1"]),
            ("w", ["EXEC"]),
            ("t", ["CLIENT", "TRACKINGINFO"]),
            ("t", ["CLIENT", "GETREDIR"]),
            ("t", ["CLIENT", "TRACKING", "OFF"]),
            ("t", ["GET", "k6"]),
            ("w", ["SET", "k6", "1"]),
            ("t", ["CLIENT", "TRACKINGINFO"]),
            ("t", ["CLIENT", "GETREDIR"]),
        ],
    ),
    "bcast": (
        {"t": 3, "w": 2},
        [
            ("t", ["CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "us", "PREFIX", "or"]),
            ("w", ["SET", "user1", "x"]),
            ("w", ["SET", "other", "x"]),
            ("w", ["SET", "nothing", "x"]),
            ("w", ["MSET", "us2", "y", "us3", "z", "x", "1"]),
            ("t", ["CLIENT", "TRACKINGINFO"]),
            ("t", ["CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "o"]),
            ("t", ["CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "new"]),
            ("t", ["CLIENT", "TRACKING", "ON"]),
            ("t", ["CLIENT", "TRACKINGINFO"]),
            ("t", ["CLIENT", "TRACKING", "OFF"]),
            ("t", ["CLIENT", "TRACKING", "ON", "BCAST"]),
            ("w", ["SET", "anything", "1"]),
            ("t", ["CLIENT", "TRACKINGINFO"]),
        ],
    ),
    "optin-optout-noloop": (
        {"t": 3, "w": 2},
        [
            ("t", ["CLIENT", "TRACKING", "ON", "OPTIN"]),
            ("t", ["GET", "a"]),
            ("w", ["SET", "a", "1"]),
            ("t", ["CLIENT", "CACHING", "YES"]),
            ("t", ["CLIENT", "TRACKINGINFO"]),
            ("t", ["GET", "a"]),
            ("t", ["GET", "b"]),
            ("w", ["SET", "a", "2"]),
            ("w", ["SET", "b", "2"]),
            ("t", ["CLIENT", "CACHING", "NO"]),
            ("t", ["CLIENT", "TRACKING", "ON", "OPTOUT"]),
            ("t", ["CLIENT", "TRACKING", "OFF"]),
            ("t", ["CLIENT", "TRACKING", "ON", "OPTOUT", "NOLOOP"]),
            ("t", ["CLIENT", "CACHING", "NO"]),
            ("t", ["GET", "c"]),
            ("t", ["GET", "d"]),
            ("w", ["SET", "c", "1"]),
            ("w", ["SET", "d", "1"]),
            ("t", ["GET", "e"]),
            ("t", ["SET", "e", "own"]),
            ("t", ["CLIENT", "TRACKINGINFO"]),
        ],
    ),
    "redirect": (
        {"t": 2, "r2": 2, "r3": 3, "w": 2},
        [
            ("r2", ["SUBSCRIBE", "__redis__:invalidate"]),
            ("t", ["CLIENT", "TRACKING", "ON", "REDIRECT", "{id:r2}"]),
            ("t", ["GET", "a"]),
            ("w", ["SET", "a", "1"]),
            ("w", ["FLUSHALL"]),
            ("t", ["CLIENT", "GETREDIR"]),
            ("t", ["CLIENT", "TRACKING", "OFF"]),
            ("t", ["CLIENT", "TRACKING", "ON", "REDIRECT", "{id:r3}", "BCAST"]),
            ("w", ["SET", "b", "1"]),
            ("t", ["CLIENT", "TRACKINGINFO"]),
        ],
    ),
    "errors": (
        {"t": 3},
        [
            ("t", ["CLIENT", "TRACKING", "MAYBE"]),
            ("t", ["CLIENT", "TRACKING", "ON", "BOGUS"]),
            ("t", ["CLIENT", "TRACKING", "ON", "REDIRECT"]),
            ("t", ["CLIENT", "TRACKING", "ON", "REDIRECT", "999999"]),
            ("t", ["CLIENT", "TRACKING", "ON", "REDIRECT", "x"]),
            ("t", ["CLIENT", "TRACKING", "ON", "REDIRECT", "{id:t}", "REDIRECT", "{id:t}"]),
            ("t", ["CLIENT", "TRACKING", "ON", "PREFIX", "a"]),
            ("t", ["CLIENT", "TRACKING", "ON", "OPTIN", "OPTOUT"]),
            ("t", ["CLIENT", "TRACKING", "ON", "BCAST", "OPTIN"]),
            ("t", ["CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "a", "PREFIX", "ab"]),
            ("t", ["CLIENT", "CACHING", "YES"]),
            ("t", ["CLIENT", "TRACKING", "ON"]),
            ("t", ["CLIENT", "CACHING", "YES"]),
            ("t", ["CLIENT", "CACHING", "NO"]),
            ("t", ["CLIENT", "CACHING", "MAYBE"]),
            ("t", ["CLIENT", "TRACKING", "ON", "BCAST"]),
            ("t", ["CLIENT", "TRACKING", "ON", "OPTIN"]),
            ("t", ["CLIENT", "TRACKING"]),
            ("t", ["CLIENT", "GETREDIR", "x"]),
            ("t", ["CLIENT", "TRACKINGINFO", "x"]),
            ("t", ["RESET"]),
            ("t", ["CLIENT", "TRACKINGINFO"]),
        ],
    ),
}


@pytest.fixture(scope="module")
def reference_port() -> Iterator[int]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed (scripts/setup-system.sh installs it)")
    with reference_redis_server(binary, "kiwi-tracking-ref-") as port:
        yield port


@pytest.fixture(scope="module")
def server() -> Iterator[kiwi.Server]:
    with kiwi.Server() as s:
        yield s


def received(conn: RawConnection, pong: bytes) -> list[bytes]:
    """Everything that arrives on ``conn`` before the answer to a PING."""
    conn.send_command("PING")
    frames = []
    while True:
        frame = conn.read_raw()
        if frame == pong:
            return frames
        frames.append(frame)


def transcript(port: int, protocols: dict[str, int], steps: list[Step]) -> list[object]:
    conns = {name: RawConnection(HOST, port) for name in protocols}
    try:
        ids = {}
        subscribed = set()
        for name, conn in conns.items():
            conn.call("HELLO", str(protocols[name]))
            ids[name] = str(conn.call("CLIENT", "ID"))
        conns["t"].call("FLUSHALL")
        out: list[object] = []
        for name, args in steps:
            for other, cid in ids.items():
                args = [a.replace("{id:" + other + "}", cid) for a in args]
            conn = conns[name]
            reply = conn.call_raw(*args)
            # Client ids differ between servers: name them where CLIENT shows one.
            for other, cid in ids.items() if args[0] == "CLIENT" else ():
                reply = reply.replace(b":%s\r\n" % cid.encode(), b":{id:%s}\r\n" % other.encode())
            out.append((name, args[0:3], reply))
            if args[0] == "SUBSCRIBE":
                subscribed.add(name)
            if args[0] == "MULTI" or (args[0] != "EXEC" and out and b"QUEUED" in out[-1][2]):
                continue
            for other, c in conns.items():
                if protocols[other] == 2 and other in subscribed:
                    pong = b"*2\r\n$4\r\npong\r\n$0\r\n\r\n"
                else:
                    pong = b"+PONG\r\n"
                out.append((other, received(c, pong)))
        return out
    finally:
        for conn in conns.values():
            conn.close()


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_tracking_matches_redis(server: kiwi.Server, reference_port: int, name: str) -> None:
    protocols, steps = SCENARIOS[name]
    want = transcript(reference_port, protocols, steps)
    got = transcript(server.port, protocols, steps)
    differences = [f"{w!r}\n  kiwi: {g!r}" for w, g in zip(want, got) if w != g]
    assert not differences, "\n".join(differences)


def test_redirect_client_going_away_breaks_the_redirect(server: kiwi.Server) -> None:
    tracker = RawConnection(HOST, server.port)
    target = RawConnection(HOST, server.port)
    try:
        tracker.call("HELLO", "3")
        target_id = target.call("CLIENT", "ID")
        assert tracker.call("CLIENT", "TRACKING", "ON", "REDIRECT", str(target_id)) == "OK"
        target.close()
        tracker.call("GET", "a")
        writer = RawConnection(HOST, server.port)
        writer.call("SET", "a", "1")
        writer.close()
        assert tracker.read() == [b"tracking-redir-broken", target_id]
        info = tracker.call("CLIENT", "TRACKINGINFO")
        assert isinstance(info, dict)
        assert b"broken_redirect" in info[b"flags"]
    finally:
        tracker.close()


def client_flags(port: int) -> dict[str, tuple[str, str]]:
    """CLIENT LIST's flags and redir of a monitor, a subscriber, broadcast
    and plain tracking clients, and one whose redirect went away."""
    names = ["m", "s", "b", "t", "gone", "r", "admin"]
    conns = {n: RawConnection(HOST, port) for n in names}
    try:
        ids = {n: str(c.call("CLIENT", "ID")) for n, c in conns.items()}
        conns["m"].send_command("MONITOR")
        conns["m"].read()
        conns["s"].call("SUBSCRIBE", "x")
        conns["b"].call("HELLO", "3")
        conns["b"].call("CLIENT", "TRACKING", "ON", "BCAST")
        conns["t"].call("CLIENT", "TRACKING", "ON", "REDIRECT", ids["r"])
        conns["gone"].call("HELLO", "3")
        conns["gone"].call("CLIENT", "TRACKING", "ON", "REDIRECT", ids["r"])
        conns["r"].close()
        # The broken redirect shows once an invalidation cannot go.
        conns["gone"].call("GET", "k")
        conns["admin"].call("SET", "k", "1")
        assert conns["gone"].read()[0] == b"tracking-redir-broken"
        listing = conns["admin"].call("CLIENT", "LIST")
        assert isinstance(listing, bytes)
        out = {}
        for line in listing.decode().splitlines():
            fields = dict(f.split("=", 1) for f in line.split(" ") if "=" in f)
            for n, cid in ids.items():
                if fields.get("id") == cid:
                    redir = fields["redir"]
                    out[n] = (fields["flags"], "r" if redir == ids["r"] else redir)
        return out
    finally:
        for c in conns.values():
            c.close()


def test_client_list_flags_as_redis(server: kiwi.Server, reference_port: int) -> None:
    assert client_flags(server.port) == client_flags(reference_port)


def test_a_full_tracking_table_invalidates_what_it_forgets(server: kiwi.Server, reference_port: int) -> None:
    """tracking-table-max-keys 2: reading a third key makes the server
    forget one and invalidate it, on both servers."""
    seen = []
    for port in (reference_port, server.port):
        conn = RawConnection(HOST, port)
        try:
            conn.call("HELLO", "3")
            conn.call("CONFIG", "SET", "tracking-table-max-keys", "2")
            conn.call("CLIENT", "TRACKING", "ON")
            for key in ["a", "b", "c"]:
                conn.call("GET", key)
            # Redis evicts in its cron; wait for the one invalidation.
            push = conn.read()
            assert isinstance(push, list)
            seen.append((push[0], len(push[1])))
            assert push[1][0] in (b"a", b"b", b"c")
        finally:
            conn.call("CONFIG", "SET", "tracking-table-max-keys", "1000000")
            conn.close()
    assert seen[0] == seen[1] == (b"invalidate", 1)


def test_redis_py_client_side_cache(server: kiwi.Server, reference_port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """redis-py's own cache (RESP3, cache_config) serves repeated reads
    locally and drops a key when another client writes it, on Kiwi as on
    Redis 7.0. redis-py refuses servers older than 7.4 by version alone; the
    test lowers that gate (the wire behaviour is Redis 7.0's either way)."""
    import redis
    from redis.cache import CacheConfig
    from redis.connection import CacheProxyConnection

    monkeypatch.setattr(CacheProxyConnection, "MIN_ALLOWED_VERSION", "7.0.0")
    for port in (reference_port, server.port):
        cached = redis.Redis(host=HOST, port=port, protocol=3, cache_config=CacheConfig())
        writer = redis.Redis(host=HOST, port=port)
        try:
            writer.set("cc", "1")
            assert cached.get("cc") == b"1"
            cache = cached.get_cache()
            assert cache is not None and cache.size == 1
            assert cached.get("cc") == b"1"
            writer.set("cc", "2")
            # The invalidation is read before the next command is answered.
            value = None
            for _ in range(50):
                value = cached.get("cc")
                if value == b"2":
                    break
            assert value == b"2", f"port {port}: the cached value was not invalidated"
        finally:
            cached.close()
            writer.close()
