"""``kiwi.bulk``: pipelined bulk loads through any redis-py client, with progress.

The same loads run through an embedded database, a ``kiwi.Server`` client, a
follower of a ``kiwi.Cluster`` (which forwards writes to the leader) and a
plain redis-py client on Debian's redis-server, and must leave exactly the
data given.
"""

from __future__ import annotations

import io
import itertools
import math
import shutil
import sys
import time
import types
from collections.abc import Iterable, Iterator
from typing import Any, Callable, ClassVar

import pytest
import redis

import kiwi
from kiwi import _progress, bulk
from kiwitest import IO_TIMEOUT, no_retry, reference_redis_server

pytestmark = pytest.mark.kiwi_only

TARGETS = ["embedded", "server", "cluster-follower", "redis"]


def client_options() -> dict[str, Any]:
    return {"socket_timeout": IO_TIMEOUT, "socket_connect_timeout": IO_TIMEOUT, "retry": no_retry()}


# -- targets ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def embedded_db() -> Iterator[kiwi.Database]:
    with kiwi.open() as db:
        yield db


@pytest.fixture(scope="module")
def server() -> Iterator[kiwi.Server]:
    with kiwi.Server() as s:
        yield s


@pytest.fixture(scope="module")
def cluster() -> Iterator[kiwi.Cluster]:
    with kiwi.Cluster(3) as c:
        yield c


@pytest.fixture(scope="module")
def redis_port() -> Iterator[int]:
    """Debian's redis-server on a free loopback port, persistence off."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (scripts/setup-system.sh installs it)")
    with reference_redis_server(binary, "kiwi-bulk-redis-") as port:
        yield port


@pytest.fixture(params=TARGETS)
def target(request: pytest.FixtureRequest) -> Iterator[redis.Redis]:
    """A flushed client of each kind ``kiwi.bulk`` must work with."""
    owned: redis.Redis | None = None
    if request.param == "embedded":
        client: redis.Redis = request.getfixturevalue("embedded_db")
    elif request.param == "server":
        client = owned = request.getfixturevalue("server").client(**client_options())
    elif request.param == "cluster-follower":
        c: kiwi.Cluster = request.getfixturevalue("cluster")
        follower = next(i for i in range(3) if i != c.wait_for_leader())
        client = owned = c.nodes[follower].client(**client_options())
    else:
        client = owned = redis.Redis(port=request.getfixturevalue("redis_port"), **client_options())
    client.flushall()
    yield client
    if owned is not None:
        owned.close()


@pytest.fixture
def db(embedded_db: kiwi.Database) -> kiwi.Database:
    """The module's embedded database, flushed."""
    embedded_db.flushall()
    return embedded_db


# -- data ------------------------------------------------------------------------


def sample(n: int) -> list[tuple[Any, Any]]:
    """``n`` pairs mixing str, bytes (not UTF-8), int and float keys and values."""
    pairs: list[tuple[Any, Any]] = []
    for i in range(n):
        kind = i % 4
        if kind == 0:
            pairs.append((f"str:{i}", f"värde {i}"))
        elif kind == 1:
            pairs.append((b"bin:\xff\x00" + str(i).encode(), bytes([i % 256, 0, 255]) * (i % 5)))
        elif kind == 2:
            pairs.append((f"int:{i}", i * 1_000_003))
        else:
            pairs.append((i, i / 7))
    return pairs


def encoded(value: Any) -> bytes:
    """What redis-py sends for ``value`` (and so what the server stores)."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, float):
        return repr(value).encode()
    return str(value).encode()


def assert_holds_exactly(client: redis.Redis, pairs: list[tuple[Any, Any]]) -> None:
    expected = {encoded(k): encoded(v) for k, v in pairs}
    assert client.dbsize() == len(expected)
    keys = list(expected)
    for start in range(0, len(keys), 500):
        part = keys[start : start + 500]
        assert client.mget(part) == [expected[k] for k in part]


class Pulled:
    """A generator of ``items`` that records how far it was pulled, and the most
    items it was ahead of what ``written()`` reports at any pull."""

    def __init__(self, items: Iterable[Any], written: Callable[[], int]) -> None:
        self.items = items
        self.written = written
        self.pulled = 0
        self.most_ahead = 0

    def __iter__(self) -> Iterator[Any]:
        for item in self.items:
            self.most_ahead = max(self.most_ahead, self.pulled - self.written())
            self.pulled += 1
            yield item


def count_round_trips(monkeypatch: pytest.MonkeyPatch, client: redis.Redis) -> list[int]:
    """Record the number of commands of every pipeline ``client`` executes."""
    sizes: list[int] = []
    make_pipeline = client.pipeline

    def pipeline(*args: Any, **kwargs: Any) -> Any:
        assert kwargs.get("transaction") is False, "bulk pipelines must not be MULTI/EXEC"
        pipe = make_pipeline(*args, **kwargs)
        run = pipe.execute

        def execute(*a: Any, **kw: Any) -> Any:
            sizes.append(len(pipe.command_stack))
            return run(*a, **kw)

        pipe.execute = execute
        return pipe

    monkeypatch.setattr(client, "pipeline", pipeline)
    return sizes


# -- load ------------------------------------------------------------------------


def test_load_list_gives_exactly_the_data(target: redis.Redis) -> None:
    pairs = sample(2_345)
    assert bulk.load(target, pairs, batch=500, progress=False) == len(pairs)
    assert_holds_exactly(target, pairs)


def test_load_mapping_and_generator(target: redis.Redis) -> None:
    mapping = dict(sample(300))
    assert bulk.load(target, mapping, batch=128, progress=False) == 300
    more = sample(1_000)[300:]
    assert bulk.load(target, (pair for pair in more), batch=128, progress=False) == 700
    assert_holds_exactly(target, list(mapping.items()) + more)


def test_load_later_values_win(target: redis.Redis) -> None:
    pairs = [("k", "first"), ("other", "x"), ("k", "second")]
    assert bulk.load(target, pairs, batch=2, progress=False) == 3
    assert target.mget("k", "other") == [b"second", b"x"]


def test_database_load_and_execute_many_methods(db: kiwi.Database) -> None:
    pairs = sample(1_500)
    assert db.load(pairs, progress=False) == 1_500
    assert_holds_exactly(db, pairs)
    commands = [("HSET", "h", f"f{i}", i) for i in range(50)] + [("DEL", "str:0")]
    assert db.execute_many(iter(commands), batch=16, progress=False) == 51
    assert db.hlen("h") == 50
    assert db.hget("h", "f49") == b"49"
    assert db.exists("str:0") == 0


@pytest.mark.parametrize("n", [0, 1, 7, 8, 14, 15])
def test_load_batch_boundaries(db: kiwi.Database, monkeypatch: pytest.MonkeyPatch, n: int) -> None:
    """0 items, 1, exactly one batch of 7, one more, two batches, one more."""
    trips = count_round_trips(monkeypatch, db)
    pairs = sample(n)
    assert bulk.load(db, iter(pairs), batch=7, progress=False) == n
    assert len(trips) == math.ceil(n / 7)
    assert_holds_exactly(db, pairs)


@pytest.mark.parametrize("n", [bulk.MSET_PAIRS, bulk.MSET_PAIRS + 1, 3 * bulk.MSET_PAIRS + 5])
def test_a_batch_is_one_round_trip_of_msets(db: kiwi.Database, monkeypatch: pytest.MonkeyPatch, n: int) -> None:
    trips = count_round_trips(monkeypatch, db)
    pairs = sample(n)
    assert bulk.load(db, pairs, batch=10_000, progress=False) == n
    assert trips == [math.ceil(n / bulk.MSET_PAIRS)]
    assert_holds_exactly(db, pairs)


def test_load_pulls_a_generator_one_batch_at_a_time(db: kiwi.Database) -> None:
    source = Pulled(sample(1_000), written=db.dbsize)
    assert bulk.load(db, source, batch=64, progress=False) == 1_000
    assert source.pulled == 1_000
    assert 0 < source.most_ahead <= 64


def test_load_reads_an_endless_generator_only_as_far_as_asked(db: kiwi.Database) -> None:
    endless = ((f"n:{i}", i) for i in itertools.count())
    assert bulk.load(db, itertools.islice(endless, 250), batch=100, progress=False) == 250
    assert next(endless) == ("n:250", 250)
    assert db.dbsize() == 250


def test_load_rejects_what_is_not_a_pair(db: kiwi.Database) -> None:
    with pytest.raises(TypeError, match=r"item 3 is not a \(key, value\) pair: 'abc'"):
        bulk.load(db, [("a", 1), ("b", 2), ("c", 3), "abc"], batch=2, progress=False)
    assert db.mget("a", "b", "c") == [b"1", b"2", None]
    with pytest.raises(TypeError, match=r"item 0 is not a \(key, value\) pair: 'kv'"):
        bulk.load(db, ["kv"], progress=False)


@pytest.mark.parametrize("batch", [0, -1, 1.5, True])
def test_batch_must_be_a_positive_int(db: kiwi.Database, batch: Any) -> None:
    with pytest.raises(ValueError, match="batch must be a positive int"):
        bulk.load(db, {"a": 1}, batch=batch, progress=False)
    with pytest.raises(ValueError, match="batch must be a positive int"):
        bulk.execute(db, [("SET", "a", 1)], batch=batch, progress=False)


def test_load_error_names_the_failing_pairs(db: kiwi.Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """A server error reply to one MSET (as CLUSTERDOWN would be) raises with its pair range."""
    make_pipeline = db.pipeline
    batches = 0

    def pipeline(*args: Any, **kwargs: Any) -> Any:
        pipe = make_pipeline(*args, **kwargs)
        run = pipe.execute

        def execute(raise_on_error: bool = True) -> list[Any]:
            nonlocal batches
            batches += 1
            replies = run(raise_on_error=raise_on_error)
            if batches == 2:  # fail the second MSET of the second batch
                replies[1] = redis.exceptions.ResponseError("CLUSTERDOWN no quorum")
            return replies

        pipe.execute = execute
        return pipe

    monkeypatch.setattr(db, "pipeline", pipeline)
    m = bulk.MSET_PAIRS
    pairs = [(f"k{i}", i) for i in range(9 * m)]
    with pytest.raises(redis.exceptions.ResponseError) as caught:
        bulk.load(db, pairs, batch=3 * m, progress=False)
    assert batches == 2, "no batch is sent after the failing one"
    first = 4 * m
    assert (
        str(caught.value) == f"MSET of pairs {first} to {first + m - 1} (counting from 0) failed: CLUSTERDOWN no quorum"
    )


# -- execute ---------------------------------------------------------------------


def test_execute_runs_every_command(target: redis.Redis) -> None:
    commands = [("HSET", "h", f"f{i}", i) for i in range(300)]
    commands += [("RPUSH", "l", i) for i in range(300)]
    commands += [("SADD", "s", i % 10) for i in range(30)]
    commands += [["ZADD", "z", i, f"m{i}"] for i in range(20)]
    assert bulk.execute(target, commands, batch=64, progress=False) == len(commands)
    assert target.hgetall("h") == {f"f{i}".encode(): str(i).encode() for i in range(300)}
    assert target.lrange("l", 0, -1) == [str(i).encode() for i in range(300)]
    assert target.smembers("s") == {str(i).encode() for i in range(10)}
    assert target.zrange("z", 0, -1, withscores=True) == [(f"m{i}".encode(), float(i)) for i in range(20)]


@pytest.mark.parametrize("n", [0, 1, 5, 6, 10, 11])
def test_execute_batch_boundaries(db: kiwi.Database, monkeypatch: pytest.MonkeyPatch, n: int) -> None:
    trips = count_round_trips(monkeypatch, db)
    assert bulk.execute(db, (("RPUSH", "l", i) for i in range(n)), batch=5, progress=False) == n
    assert trips == [min(5, n - start) for start in range(0, n, 5)]
    assert db.lrange("l", 0, -1) == [str(i).encode() for i in range(n)]


def test_execute_pulls_a_generator_one_batch_at_a_time(db: kiwi.Database) -> None:
    source = Pulled((("RPUSH", "l", i) for i in range(500)), written=lambda: db.llen("l"))
    assert bulk.execute(db, source, batch=50, progress=False) == 500
    assert source.pulled == 500
    assert 0 < source.most_ahead <= 50


def test_execute_raises_the_first_error_with_its_position(target: redis.Redis) -> None:
    """WRONGTYPE at command 23 of 40, batches of 10: 0-22 applied, as is the
    rest of its batch (24-29, already pipelined); 30-39 never sent."""
    commands: list[tuple[Any, ...]] = [("SET", "str", "x")]
    commands += [("RPUSH", "l", i) for i in range(1, 23)]
    commands += [("LPUSH", "str", "boom")]
    commands += [("RPUSH", "l", i) for i in range(24, 40)]
    assert commands[23] == ("LPUSH", "str", "boom")
    with pytest.raises(redis.exceptions.ResponseError) as caught:
        bulk.execute(target, iter(commands), batch=10, progress=False)
    message = str(caught.value)
    assert message.startswith("command 23 (LPUSH str boom) failed: WRONGTYPE")
    assert "WRONGTYPE" in str(caught.value.__cause__)
    assert target.get("str") == b"x"
    assert target.lrange("l", 0, -1) == [str(i).encode() for i in [*range(1, 23), *range(24, 30)]]


def test_execute_reports_the_first_of_several_errors(db: kiwi.Database) -> None:
    commands = [("SET", "a", "x"), ("INCR", "a"), ("LPUSH", "a", 1), ("SET", "b", 1)]
    with pytest.raises(redis.exceptions.ResponseError, match=r"^command 1 \(INCR a\) failed: value is not an integer"):
        bulk.execute(db, commands, progress=False)
    assert db.get("b") == b"1"


def test_execute_rejects_what_is_not_a_command(db: kiwi.Database) -> None:
    with pytest.raises(TypeError, match=r"command 1 must be a non-empty tuple like \('SET', 'k', 'v'\), not 'SET b 2'"):
        bulk.execute(db, [("SET", "a", 1), "SET b 2"], progress=False)
    with pytest.raises(TypeError, match=r"command 0 must be a non-empty tuple"):
        bulk.execute(db, [()], progress=False)


# -- progress --------------------------------------------------------------------


@pytest.fixture
def no_tqdm(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``import tqdm`` fail, whether or not tqdm is installed."""
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)


class FakeTqdm:
    """Stands in for ``tqdm.auto.tqdm`` and records how it was driven."""

    made: ClassVar[list[FakeTqdm]] = []

    def __init__(self, total: int | None = None, **kwargs: Any) -> None:
        self.total = total
        self.kwargs = kwargs
        self.n = 0
        self.closed = False
        FakeTqdm.made.append(self)

    def update(self, n: int = 1) -> None:
        self.n += n

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def fake_tqdm(monkeypatch: pytest.MonkeyPatch) -> type[FakeTqdm]:
    package = types.ModuleType("tqdm")
    auto = types.ModuleType("tqdm.auto")
    auto.tqdm = FakeTqdm  # type: ignore[attr-defined]
    package.auto = auto  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tqdm", package)
    monkeypatch.setitem(sys.modules, "tqdm.auto", auto)
    monkeypatch.setattr(FakeTqdm, "made", [])
    return FakeTqdm


def final_line(stderr: str) -> str:
    """The last state of a carriage-return-updated line."""
    assert stderr.endswith("\n"), repr(stderr)
    return stderr[:-1].rsplit("\r", 1)[-1]


def test_forced_progress_without_tqdm_ends_with_the_count(
    db: kiwi.Database, no_tqdm: None, capfd: pytest.CaptureFixture[str]
) -> None:
    assert bulk.load(db, sample(2_500), batch=1_000, progress=True) == 2_500
    err = capfd.readouterr().err
    assert err.count("\n") == 1
    line = final_line(err)
    assert line.startswith("kiwi.bulk.load: 2,500/2,500 (100%) keys, ")
    assert "keys/s" in line and "elapsed" in line


def test_forced_progress_of_a_generator_shows_the_count_alone(
    db: kiwi.Database, no_tqdm: None, capsys: pytest.CaptureFixture[str]
) -> None:
    commands = (("SET", f"k{i}", i) for i in range(1_234))
    assert bulk.execute(db, commands, batch=100, progress=True) == 1_234
    captured = capsys.readouterr()
    assert captured.out == ""
    line = final_line(captured.err)
    assert line.startswith("kiwi.bulk.execute: 1,234 commands, ")
    assert "%" not in line


def test_progress_line_is_ended_when_execute_fails(
    db: kiwi.Database, no_tqdm: None, capsys: pytest.CaptureFixture[str]
) -> None:
    commands = [("SET", "a", 1)] * 10 + [("LPUSH", "a", 1)]
    with pytest.raises(redis.exceptions.ResponseError):
        bulk.execute(db, commands, batch=5, progress=True)
    assert final_line(capsys.readouterr().err).startswith("kiwi.bulk.execute: 10/11 (91%) commands")


def test_forced_off_shows_nothing_even_on_a_terminal(
    db: kiwi.Database, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(_progress, "stderr_is_terminal", lambda: True)
    bulk.load(db, sample(100), batch=10, progress=False)
    bulk.execute(db, [("SET", "a", 1)], progress=False)
    assert capsys.readouterr() == ("", "")


def test_auto_with_stderr_not_a_terminal_shows_nothing(
    db: kiwi.Database, no_tqdm: None, capfd: pytest.CaptureFixture[str]
) -> None:
    assert not sys.stderr.isatty()
    bulk.load(db, sample(100), batch=10)
    db.execute_many([("SET", "a", 1)])
    assert capfd.readouterr() == ("", "")


class TerminalStream(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_auto_on_a_terminal_shows_progress(db: kiwi.Database, no_tqdm: None, monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = TerminalStream()
    monkeypatch.setattr(sys, "stderr", terminal)
    bulk.load(db, sample(30), batch=10)
    assert final_line(terminal.getvalue()).startswith("kiwi.bulk.load: 30/30 (100%) keys")


def test_auto_in_a_jupyter_kernel_shows_progress(
    db: kiwi.Database, fake_tqdm: type[FakeTqdm], monkeypatch: pytest.MonkeyPatch
) -> None:
    shell = types.SimpleNamespace(config={"IPKernelApp": {}})
    ipython = types.ModuleType("IPython")
    ipython.get_ipython = lambda: shell  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "IPython", ipython)
    bulk.load(db, sample(30), batch=10)
    assert [bar.n for bar in fake_tqdm.made] == [30]


def test_auto_in_a_plain_ipython_terminal_follows_stderr(
    db: kiwi.Database, fake_tqdm: type[FakeTqdm], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An IPython shell that is not a kernel (e.g. pytest run from IPython) is no reason to show."""
    ipython = types.ModuleType("IPython")
    ipython.get_ipython = lambda: types.SimpleNamespace(config={})  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "IPython", ipython)
    monkeypatch.setattr(_progress, "stderr_is_terminal", lambda: False)
    bulk.load(db, sample(30), batch=10)
    assert fake_tqdm.made == []


def test_tqdm_is_used_when_installed(
    db: kiwi.Database, fake_tqdm: type[FakeTqdm], capsys: pytest.CaptureFixture[str]
) -> None:
    bulk.load(db, dict(sample(25)), batch=10, progress=True)
    bulk.execute(db, (("SET", "k", i) for i in range(7)), batch=3, progress=True)
    load_bar, execute_bar = fake_tqdm.made
    assert (load_bar.total, load_bar.n, load_bar.closed, load_bar.kwargs["unit"]) == (25, 25, True, "keys")
    assert (execute_bar.total, execute_bar.n, execute_bar.closed) == (None, 7, True)
    assert capsys.readouterr() == ("", "")


def test_line_progress_redraws_at_most_ten_times_a_second() -> None:
    out = io.StringIO()
    started = time.monotonic()
    bar = _progress.LineProgress(total=100_000, desc="x", unit="keys", file=out)
    for _ in range(100_000):
        bar.update(1)
    bar.close()
    elapsed = time.monotonic() - started
    draws = out.getvalue().count("\r")
    # the first draw, one per elapsed 0.1 s, and the final one
    assert draws <= 2 + int(elapsed / _progress.MIN_INTERVAL) + 1
    assert final_line(out.getvalue()).startswith("x: 100,000/100,000 (100%) keys")


def test_a_shorter_line_wipes_a_longer_one() -> None:
    out = io.StringIO()
    bar = _progress.LineProgress(total=None, desc="x", unit="keys", file=out, min_interval=0.0)
    bar.update(10**9)
    long = out.getvalue().rsplit("\r", 1)[-1]
    bar.count = 0
    bar.update(1)
    short = out.getvalue().rsplit("\r", 1)[-1]
    assert len(short) >= len(long)
    assert short.rstrip().startswith("x: 1 keys")
