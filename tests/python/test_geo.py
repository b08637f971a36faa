"""GEO commands against Redis 7.0, over many random points and queries.

A few thousand points (fixed seeds: uniform over the globe, dense clusters,
exact duplicates for ties, rows along the poles' limits, the antimeridian
and the equator) go to Debian's redis-server and to Kiwi, then a few hundred
random GEOSEARCH, GEOSEARCHSTORE, GEORADIUS, GEORADIUSBYMEMBER, GEODIST,
GEOPOS and GEOHASH calls must answer the same bytes on both, under RESP2
and RESP3: same members, same order (ties included), same rounding. The
keyspace events of the writing forms must match too.
"""

from __future__ import annotations

import math
import random
import shutil
from collections.abc import Callable, Iterator

import pytest
import redis

import kiwi
from kiwitest import HOST, RawConnection, reference_redis_server

pytestmark = pytest.mark.kiwi_only

LAT_LIMIT = 85.05112878
UNITS = ["m", "km", "ft", "mi"]
UNIT_METERS = {"m": 1.0, "km": 1000.0, "ft": 0.3048, "mi": 1609.34}


@pytest.fixture(scope="module")
def reference_port() -> Iterator[int]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed (scripts/setup-system.sh installs it)")
    with reference_redis_server(binary, "kiwi-geo-ref-") as port:
        yield port


@pytest.fixture(scope="module")
def server() -> Iterator[kiwi.Server]:
    with kiwi.Server() as s:
        yield s


def coord(value: float) -> str:
    """Seven decimals, kept inside the latitude limits (they have eight)."""
    rounded = round(value, 7)
    if abs(rounded) > LAT_LIMIT and abs(value) <= LAT_LIMIT:
        return repr(math.copysign(LAT_LIMIT, value))
    return repr(rounded)


def random_points(rng: random.Random) -> list[tuple[str, str, str]]:
    """(longitude, latitude, member) triples, some members at one point."""
    points: list[tuple[str, str, str]] = []

    def add(lon: float, lat: float) -> None:
        lon = max(-180.0, min(180.0, lon))
        lat = max(-LAT_LIMIT, min(LAT_LIMIT, lat))
        points.append((coord(lon), coord(lat), f"p{len(points)}"))

    for _ in range(1200):
        add(rng.uniform(-180, 180), rng.uniform(-LAT_LIMIT, LAT_LIMIT))
    centres = [(13.36, 38.11), (-0.12, 51.5), (179.9, -16.5), (-179.95, 65.0), (0.0, 0.0), (151.2, -33.9)]
    for lon, lat in centres:
        for _ in range(250):
            spread = rng.choice([0.001, 0.05, 1.0])
            add(lon + rng.gauss(0, spread), lat + rng.gauss(0, spread))
    # Exact duplicates: equal scores, equal distances.
    for _ in range(30):
        lon, lat = rng.uniform(-180, 180), rng.uniform(-80, 80)
        for _ in range(rng.randint(2, 12)):
            add(lon, lat)
    for _ in range(100):
        add(rng.uniform(-180, 180), rng.choice([LAT_LIMIT, -LAT_LIMIT, 85.0, -85.0, 0.0]))
        add(rng.choice([180.0, -180.0, 179.9999, -179.9999, 0.0]), rng.uniform(-LAT_LIMIT, LAT_LIMIT))
    return points


def random_query(rng: random.Random, members: list[str]) -> list[list[str]]:
    """One random query (plus a read of what it stored, for the STORE forms)."""

    def center_lonlat() -> list[str]:
        if rng.random() < 0.2:
            return [coord(rng.choice([180, -180, 0])), coord(rng.uniform(-LAT_LIMIT, LAT_LIMIT))]
        return [coord(rng.uniform(-180, 180)), coord(rng.uniform(-LAT_LIMIT, LAT_LIMIT))]

    def length() -> tuple[str, str]:
        unit = rng.choice(UNITS)
        meters = 10 ** rng.uniform(0, 7.3)
        return repr(round(meters / UNIT_METERS[unit], 3)), unit

    def member() -> str:
        return rng.choice(members) if rng.random() < 0.95 else "missing"

    def options(store_ok: bool) -> tuple[list[str], bool]:
        opts: list[str] = []
        stored = False
        if rng.random() < 0.5:
            opts.append(rng.choice(["ASC", "DESC"]))
        if rng.random() < 0.4:
            opts += ["COUNT", str(rng.choice([1, 2, 3, 5, 10, 50, rng.randint(1, 400)]))]
            if rng.random() < 0.25:
                opts.append("ANY")
        if store_ok and rng.random() < 0.25:
            opts += [rng.choice(["STORE", "STOREDIST"]), "dst"]
            stored = True
        else:
            for flag in ("WITHDIST", "WITHCOORD", "WITHHASH"):
                if rng.random() < 0.5:
                    opts.append(flag)
        return opts, stored

    kind = rng.randrange(8)
    if kind == 0:
        cmd = ["GEOSEARCH", "geo"]
        cmd += ["FROMMEMBER", member()] if rng.random() < 0.5 else ["FROMLONLAT", *center_lonlat()]
        if rng.random() < 0.5:
            cmd += ["BYRADIUS", *length()]
        else:
            w, unit = length()
            h = repr(round(float(w) * rng.uniform(0.2, 3), 3))
            cmd += ["BYBOX", w, h, unit]
        opts, _ = options(False)
        return [cmd + opts]
    if kind == 1:
        cmd = ["GEOSEARCHSTORE", "dst", "geo", "FROMMEMBER", member(), "BYRADIUS", *length()]
        if rng.random() < 0.5:
            cmd.append("STOREDIST")
        if rng.random() < 0.5:
            cmd += [rng.choice(["ASC", "DESC"]), "COUNT", str(rng.randint(1, 30))]
        return [cmd, ["ZRANGE", "dst", "0", "-1", "WITHSCORES"]]
    if kind == 2:
        name = rng.choice(["GEORADIUS", "GEORADIUS_RO"])
        opts, stored = options(name == "GEORADIUS")
        calls = [[name, "geo", *center_lonlat(), *length(), *opts]]
        return calls + ([["ZRANGE", "dst", "0", "-1", "WITHSCORES"]] if stored else [])
    if kind == 3:
        name = rng.choice(["GEORADIUSBYMEMBER", "GEORADIUSBYMEMBER_RO"])
        opts, stored = options(name == "GEORADIUSBYMEMBER")
        calls = [[name, "geo", member(), *length(), *opts]]
        return calls + ([["ZRANGE", "dst", "0", "-1", "WITHSCORES"]] if stored else [])
    if kind == 4:
        unit = [rng.choice(UNITS)] if rng.random() < 0.7 else []
        return [["GEODIST", "geo", member(), member(), *unit]]
    if kind == 5:
        return [["GEOPOS", "geo", *[member() for _ in range(rng.randint(1, 8))]]]
    if kind == 6:
        return [["GEOHASH", "geo", *[member() for _ in range(rng.randint(1, 8))]]]
    # A small search around a member: mostly its duplicates and near neighbours.
    return [["GEOSEARCH", "geo", "FROMMEMBER", member(), "BYRADIUS", "50", "m", "WITHDIST", "COUNT", "4"]]


def load(conn: RawConnection, points: list[tuple[str, str, str]]) -> None:
    for i in range(0, len(points), 400):
        args = ["GEOADD", "geo"]
        for lon, lat, name in points[i : i + 400]:
            args += [lon, lat, name]
        reply = conn.call_raw(*args)
        assert reply.startswith(b":"), reply


@pytest.mark.parametrize("protocol", [2, 3])
def test_random_queries_match_redis(server: kiwi.Server, reference_port: int, protocol: int) -> None:
    rng = random.Random(20260 + protocol)
    points = random_points(rng)
    members = [name for _, _, name in points]
    calls = [call for _ in range(350) for call in random_query(rng, members)]
    replies = []
    for port in (reference_port, server.port):
        with RawConnection(HOST, port) as conn:
            conn.call("HELLO", str(protocol))
            conn.call("FLUSHALL")
            load(conn, points)
            replies.append([conn.call_raw(*args) for args in calls])
    differences = [
        f"{args!r}\n  redis: {want[:300]!r}\n  kiwi:  {got[:300]!r}"
        for args, want, got in zip(calls, replies[0], replies[1])
        if want != got
    ]
    assert not differences, f"{len(differences)} differing replies:\n" + "\n".join(differences[:10])
    # The queries found things: most replies are not empty.
    empty = sum(r in (b"*0\r\n", b":0\r\n") for r in replies[0])
    assert empty < len(calls) // 2


def keyspace_events(port: int) -> list[tuple[bytes, bytes]]:
    """The keyspace events of a series of GEO writes, up to a marker."""
    client = redis.Redis(host=HOST, port=port, socket_timeout=10)
    try:
        client.flushall()
        client.config_set("notify-keyspace-events", "KEAn")
        pubsub = client.pubsub()
        pubsub.psubscribe("__key*__:*", "geo-test-done")
        subscribed = 0
        while subscribed < 2:
            message = pubsub.get_message(timeout=10)
            assert message is not None, "no psubscribe confirmation"
            subscribed += message["type"] == "psubscribe"
        calls = [
            ["GEOADD", "g", "1", "1", "a", "2", "2", "b"],
            ["GEOADD", "g", "1", "1", "a"],
            ["GEOADD", "g", "CH", "1.5", "1", "a"],
            ["GEOADD", "g", "XX", "9", "9", "zz"],
            ["GEORADIUS", "g", "1", "1", "500", "km", "STORE", "d1"],
            ["GEORADIUS", "g", "1", "1", "1", "m", "STORE", "d1"],
            ["GEORADIUSBYMEMBER", "g", "a", "500", "km", "STOREDIST", "d2"],
            ["GEOSEARCHSTORE", "d3", "g", "FROMMEMBER", "a", "BYRADIUS", "500", "km"],
            ["GEOSEARCHSTORE", "d3", "nokey", "FROMMEMBER", "a", "BYRADIUS", "500", "km"],
            ["GEOSEARCHSTORE", "d2", "g", "FROMLONLAT", "50", "50", "BYRADIUS", "1", "km"],
            ["GEORADIUS", "nokey", "1", "1", "500", "km", "STORE", "g"],
        ]
        for args in calls:
            client.execute_command(*args)
        client.publish("geo-test-done", "1")
        events = []
        while True:
            message = pubsub.get_message(timeout=10)
            assert message is not None, "the marker never arrived"
            if message["type"] != "pmessage":
                continue
            if message["channel"] == b"geo-test-done":
                break
            events.append((message["channel"], message["data"]))
        pubsub.close()
        client.config_set("notify-keyspace-events", "")
        return events
    finally:
        client.close()


def test_keyspace_events_match_redis(server: kiwi.Server, reference_port: int) -> None:
    want = keyspace_events(reference_port)
    assert (b"__keyevent@0__:georadiusstore", b"d1") in want
    assert keyspace_events(server.port) == want


#: Writes and reads whose replies carry coordinates and distances, for the
#: run through a cluster's leader and a follower.
RAFT_CALLS = [
    ["GEOADD", "g", "13.361389", "38.115556", "Palermo", "15.087269", "37.502669", "Catania"],
    ["GEOADD", "g", "CH", "13.583333", "37.316667", "Agrigento", "15.087269", "37.6", "Catania"],
    ["GEOPOS", "g", "Palermo", "Catania", "nope"],
    ["GEOSEARCH", "g", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km", "ASC", "WITHCOORD", "WITHDIST", "WITHHASH"],
    ["GEORADIUS", "g", "15", "37", "200", "km", "DESC", "WITHCOORD", "WITHDIST"],
    ["GEORADIUS", "g", "15", "37", "200", "km", "STOREDIST", "d1"],
    ["ZRANGE", "d1", "0", "-1", "WITHSCORES"],
    ["GEOSEARCHSTORE", "d2", "g", "FROMMEMBER", "Palermo", "BYBOX", "400", "400", "km", "COUNT", "2"],
    ["ZRANGE", "d2", "0", "-1", "WITHSCORES"],
    ["GEORADIUSBYMEMBER", "g", "Agrigento", "100", "km", "WITHDIST", "WITHCOORD"],
    ["GEODIST", "g", "Palermo", "Catania", "mi"],
    ["GEOHASH", "g", "Palermo", "Catania"],
    ["GEOADD", "g", "200", "1", "x"],
]


@pytest.mark.cluster_targets
@pytest.mark.parametrize("resp", [2, 3])
def test_geo_replies_through_raft_match_redis(raw: Callable[[], RawConnection], reference_port: int, resp: int) -> None:
    """The writes go through the log (GEORADIUS is a write even without
    STORE); a follower forwards them and answers the leader's replies."""
    conn = raw()
    conn.call("HELLO", str(resp))
    conn.call("FLUSHALL")
    got = [conn.call_raw(*args) for args in RAFT_CALLS]
    with RawConnection(HOST, reference_port) as ref:
        ref.call("HELLO", str(resp))
        ref.call("FLUSHALL")
        want = [ref.call_raw(*args) for args in RAFT_CALLS]
    assert got == want
