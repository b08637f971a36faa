"""Shared helpers for the Kiwi Python test suite.

Plain functions and classes only (fixtures live in ``conftest.py``):

* :func:`wait_until` polls a condition with a deadline instead of sleeping;
* :func:`run_threads` runs workers in threads, joins them with a deadline and
  re-raises the first failure;
* :class:`RawConnection` is a tiny RESP2/RESP3 client over a plain socket, for
  tests that must see the exact bytes the server sends;
* :class:`BlockingCall` runs one blocking command (BLPOP…) in a thread;
* :func:`node_client`, :func:`reset_cluster`, :func:`is_cluster_error` and
  :func:`write_keys` serve the tests of ``kiwi.Cluster``;
* :func:`reference_redis_server` runs a throwaway redis-server to compare with;
* :class:`SingleServerTarget` lets ``kiwi.testing.run`` drive any one server
  (a ``kiwi.Server``, a redis-server) by address.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import redis
from redis.backoff import NoBackoff
from redis.exceptions import ClusterDownError, ResponseError, TryAgainError
from redis.retry import Retry

if TYPE_CHECKING:  # the package is not needed against an external server
    import kiwi

T = TypeVar("T")

HOST = "127.0.0.1"
#: Default bound for any single blocking socket operation in the suite.
IO_TIMEOUT = 10.0


def wait_until(
    predicate: Callable[[], T],
    timeout: float = 5.0,
    interval: float = 0.01,
    message: str = "",
) -> T:
    """Poll ``predicate`` until it returns a truthy value and return that value.

    Raises ``AssertionError`` when ``timeout`` seconds pass first; the
    predicate is always evaluated at least once, and once more at the deadline.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"condition not met within {timeout:.1f}s: {message or predicate!r}")
        time.sleep(interval)


def no_retry() -> Retry:
    """A redis-py retry policy that never retries.

    redis-py retries ConnectionErrors by default, which would silently hide a
    server dropping connections and could apply a non-idempotent command
    (INCR, APPEND) twice; tests want to see the first failure.
    """
    return Retry(NoBackoff(), 0)


def node_client(c: kiwi.Cluster, i: int, **kwargs: Any) -> redis.Redis:
    """A client bound to node ``i``: bounded socket waits, no retries (a write
    is never resent behind the test's back), text replies; ``kwargs`` override."""
    options: dict[str, Any] = {
        "socket_timeout": IO_TIMEOUT,
        "socket_connect_timeout": IO_TIMEOUT,
        "retry": no_retry(),
        "decode_responses": True,
    }
    options.update(kwargs)
    return c.nodes[i].client(**options)


def reset_cluster(c: kiwi.Cluster) -> None:
    """Make a module's shared cluster ready for the next test: links healed,
    every running node following one leader in one term, every database
    empty. (A node cut off by the test before campaigned on in higher terms:
    once healed it unseats the leader, and a test that wrote meanwhile would
    see "leadership changed".)"""
    c.heal()
    c.wait_for_leader()

    def settled() -> bool:
        running = [s for s in c.status() if s["role"] != "stopped"]
        followed = {(s["leader"], s["term"]) for s in running}
        return len(followed) == 1 and None not in next(iter(followed))

    wait_until(settled, timeout=15, message=f"the cluster to settle on one leader: {c.status()}")
    r = c.client(socket_timeout=IO_TIMEOUT, retry=no_retry())
    try:
        r.flushall()
    finally:
        r.close()


def is_cluster_error(e: BaseException) -> bool:
    """A ``CLUSTERDOWN`` or ``TRYAGAIN`` reply."""
    if isinstance(e, (ClusterDownError, TryAgainError)):
        return True
    return isinstance(e, ResponseError) and str(e).startswith(("CLUSTERDOWN", "TRYAGAIN"))


def write_keys(c: kiwi.Cluster, i: int, prefix: str, n: int) -> dict[str, str]:
    """SET ``n`` keys through node ``i``; every one must be acknowledged."""
    r = node_client(c, i)
    try:
        data = {f"{prefix}{j}": f"v:{prefix}{j}" for j in range(n)}
        for k, v in data.items():
            assert r.set(k, v) is True, f"SET {k} through node {i}"
        return data
    finally:
        r.close()


class BlockingCall(threading.Thread):
    """One blocking command on its own connection, run in a thread; keeps its
    reply (or error) and how long it took."""

    def __init__(self, client: redis.Redis, *command: Any) -> None:
        super().__init__(daemon=True)
        self.client = client
        self.command = command
        self.reply: Any = None
        self.error: BaseException | None = None
        self.elapsed = 0.0

    def run(self) -> None:
        started = time.monotonic()
        try:
            self.reply = self.client.execute_command(*self.command)
        except BaseException as e:  # handed to the test thread
            self.error = e
        self.elapsed = time.monotonic() - started

    def result(self, timeout: float = IO_TIMEOUT) -> Any:
        """The reply, once the command returned within ``timeout``."""
        self.join(timeout)
        assert not self.is_alive(), f"{self.command} is still blocked"
        if self.error is not None:
            raise self.error
        return self.reply


def zero_timeout_popper_race(
    victims: Sequence[redis.Redis],
    feeder: redis.Redis,
    key: str,
    *,
    period: float,
    take_back_after: float | None = None,
    contest: float = 0.0,
    timeout: float = 60.0,
) -> tuple[list[Any], list[str]]:
    """Many ``BLPOP key 0`` callers racing for one element at a time.

    The victims start one after another early in the time the first element
    is there to see (the first ``take_back_after``, or ``period``, seconds).
    The feeder
    pushes an element (``e0``, ``e1``, ...) every ``period`` seconds; for the
    first ``contest`` seconds it takes each one back (LPOP) ``take_back_after``
    seconds after pushing it, if no victim got it first. Then it pushes what
    the victims still waiting need. Returns each victim's reply (in order) and
    what was left in the list, once every thread ended.
    """
    stop = threading.Event()
    counts = {"pushed": 0, "taken_back": 0}
    started = time.monotonic()

    def push(n: int = 1) -> None:
        feeder.rpush(key, *[f"e{counts['pushed'] + i}" for i in range(n)])
        counts["pushed"] += n

    def feed() -> None:
        tick = started
        while not stop.is_set() and time.monotonic() - started < contest:
            push()
            if take_back_after is not None:
                time.sleep(max(0.0, tick + take_back_after - time.monotonic()))
                counts["taken_back"] += len(feeder.lpop(key, 10) or [])
            tick += period
            time.sleep(max(0.0, tick - time.monotonic()))
        while not stop.is_set():
            waiting = sum(1 for call in calls if call.is_alive())
            if waiting and feeder.llen(key) < waiting:
                push(waiting)
            time.sleep(period)

    calls = [BlockingCall(v, "BLPOP", key, 0) for v in victims]
    thread = threading.Thread(target=feed, daemon=True)
    thread.start()
    try:
        # Early in the time the first element is there to see.
        window = take_back_after or period
        for i, call in enumerate(calls):
            time.sleep(max(0.0, started + 0.4 * window * (i + 1) / len(calls) - time.monotonic()))
            call.start()
        replies = [call.result(timeout) for call in calls]
    finally:
        stop.set()
        thread.join(IO_TIMEOUT)
    assert not thread.is_alive(), "the feeder is stuck"
    left = [x.decode() if isinstance(x, bytes) else x for x in feeder.lrange(key, 0, -1)]
    served = sum(1 for reply in replies if reply is not None)
    assert counts["pushed"] == len(left) + served + counts["taken_back"], "every pushed element is popped once or left"
    return replies, left


def blocked_clients(r: redis.Redis) -> int:
    """INFO's count of clients blocked in a blocking command."""
    return int(r.info("clients")["blocked_clients"])


@contextlib.contextmanager
def reference_redis_server(binary: str, prefix: str, *extra: str) -> Iterator[int]:
    """Run ``binary`` (Debian's redis-server) on a free loopback port with
    persistence off and a temporary directory named after ``prefix`` (and
    ``extra`` arguments); yield the port once it accepts connections; stop it
    and remove the directory."""
    port = free_port()
    workdir = tempfile.mkdtemp(prefix=prefix)
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no", "--dir", workdir, *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def accepts() -> bool:
            assert proc.poll() is None, "redis-server exited"
            try:
                socket.create_connection((HOST, port), timeout=IO_TIMEOUT).close()
                return True
            except OSError:
                return False

        wait_until(accepts, timeout=10, interval=0.02, message="redis-server accepts connections")
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def run_threads(workers: Sequence[Callable[[], T]], timeout: float = 30.0) -> list[T]:
    """Run every worker in its own thread and return their results in order.

    All threads are joined against one shared deadline. The first exception a
    worker raised is re-raised here; a thread still running at the deadline
    fails the test (threads are daemons so a hung one cannot block exit).
    """
    results: list[Any] = [None] * len(workers)
    errors: list[BaseException] = []
    lock = threading.Lock()

    def runner(index: int, work: Callable[[], T]) -> None:
        try:
            results[index] = work()
        except BaseException as exc:  # re-raised in the caller
            with lock:
                errors.append(exc)

    threads = [
        threading.Thread(target=runner, args=(i, w), name=f"kiwi-test-{i}", daemon=True) for i, w in enumerate(workers)
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    if errors:
        raise errors[0]
    hung = [t.name for t in threads if t.is_alive()]
    assert not hung, f"threads still running after {timeout}s: {hung}"
    return results


class RespError(str):
    """An error reply; the string is the message without the leading ``-``."""


class ConnectionClosed(Exception):
    """The peer closed the connection while a reply was expected."""


def encode_command(*args: bytes | str | int) -> bytes:
    """Encode a command as a RESP multibulk request."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, int):
            data = str(arg).encode()
        elif isinstance(arg, str):
            data = arg.encode()
        else:
            data = bytes(arg)
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


class RawConnection:
    """A minimal blocking RESP client that exposes the exact reply bytes.

    Every read is bounded by ``timeout``. Parsed values: simple strings are
    ``str``, bulk and verbatim strings ``bytes`` (verbatim without the
    ``txt:`` prefix), errors :class:`RespError`, nulls ``None``, arrays
    ``list``, maps ``dict``, sets ``set``, doubles ``float``, booleans ``bool``.
    """

    def __init__(self, host: str, port: int, timeout: float = IO_TIMEOUT) -> None:
        self.timeout = timeout
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buf = bytearray()
        self._pos = 0

    # -- lifecycle -----------------------------------------------------------
    def close(self) -> None:
        """Close the socket (idempotent)."""
        with contextlib.suppress(OSError):
            self.sock.close()

    def __enter__(self) -> RawConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing -------------------------------------------------------------
    def send(self, data: bytes) -> None:
        """Send raw bytes."""
        self.sock.sendall(data)

    def send_command(self, *args: bytes | str | int) -> None:
        """Send one command encoded as a multibulk request."""
        self.send(encode_command(*args))

    def call(self, *args: bytes | str | int) -> Any:
        """Send one command and return its parsed reply."""
        self.send_command(*args)
        return self.read()

    def call_raw(self, *args: bytes | str | int) -> bytes:
        """Send one command and return the exact bytes of its reply."""
        self.send_command(*args)
        return self.read_raw()

    # -- reading -------------------------------------------------------------
    def _fill(self) -> None:
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError as exc:
            raise ConnectionClosed("connection reset by peer") from exc
        if not chunk:
            raise ConnectionClosed("connection closed by peer")
        self._buf += chunk

    def _compact(self) -> None:
        """Drop consumed bytes; only called between replies."""
        if self._pos:
            del self._buf[: self._pos]
            self._pos = 0

    def _line(self) -> bytes:
        while True:
            end = self._buf.find(b"\r\n", self._pos)
            if end >= 0:
                line = bytes(self._buf[self._pos : end])
                self._pos = end + 2
                return line
            self._fill()

    def _exact(self, n: int) -> bytes:
        while len(self._buf) - self._pos < n:
            self._fill()
        data = bytes(self._buf[self._pos : self._pos + n])
        self._pos += n
        return data

    def _parse(self) -> Any:
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            return RespError(rest.decode(errors="surrogateescape"))
        if kind == b":":
            return int(rest)
        if kind in (b"$", b"=", b"!"):
            length = int(rest)
            if length < 0:
                return None
            data = self._exact(length)
            if self._exact(2) != b"\r\n":
                raise AssertionError("bulk payload not followed by CRLF")
            if kind == b"=":
                return data[4:]
            if kind == b"!":
                return RespError(data.decode())
            return data
        if kind in (b"*", b"~", b">"):
            count = int(rest)
            if count < 0:
                return None
            items = [self._parse() for _ in range(count)]
            return set(items) if kind == b"~" else items
        if kind == b"%":
            return {self._parse(): self._parse() for _ in range(int(rest))}
        if kind == b"|":
            for _ in range(2 * int(rest)):
                self._parse()
            return self._parse()
        if kind == b"_":
            return None
        if kind == b",":
            return float(rest)
        if kind == b"#":
            return rest == b"t"
        if kind == b"(":
            return int(rest)
        raise AssertionError(f"unexpected RESP line {line!r}")

    def read(self) -> Any:
        """Read and parse one complete reply."""
        self._compact()
        return self._parse()

    def read_raw(self) -> bytes:
        """Read one complete reply and return its exact bytes."""
        self._compact()
        self._parse()
        return bytes(self._buf[: self._pos])

    # -- connection state checks --------------------------------------------
    def assert_closed(self, timeout: float = 5.0) -> None:
        """Assert the server closes the connection without sending more data."""
        leftover = bytes(self._buf[self._pos :])
        assert not leftover, f"unexpected extra data before close: {leftover!r}"
        self.sock.settimeout(timeout)
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            return
        except socket.timeout:
            raise AssertionError(f"connection still open after {timeout}s") from None
        finally:
            self.sock.settimeout(self.timeout)
        assert chunk == b"", f"expected close, got data {chunk!r}"

    def assert_silent(self, wait: float = 0.3) -> None:
        """Assert nothing arrives for ``wait`` seconds and the link stays open."""
        leftover = bytes(self._buf[self._pos :])
        assert not leftover, f"unexpected data: {leftover!r}"
        self.sock.settimeout(wait)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            return
        except ConnectionResetError:
            raise AssertionError("connection was reset") from None
        finally:
            self.sock.settimeout(self.timeout)
        if chunk == b"":
            raise AssertionError("connection was closed")
        raise AssertionError(f"unexpected data: {chunk!r}")


class SingleServerTarget:
    """The part of ``kiwi.testing``'s Target protocol a run needs, for one
    server at ``host:port`` (a ``kiwi.Server`` or a reference redis-server):
    clients with bounded waits and no retries; nothing to heal or settle."""

    nodes = 1
    capabilities: frozenset[str] = frozenset()

    def __init__(self, port: int, host: str = HOST) -> None:
        self.host = host
        self.port = port

    def client(self, node: int, **kwargs: Any) -> redis.Redis:
        assert node == 0, f"a single server has no node {node}"
        options: dict[str, Any] = {
            "socket_timeout": IO_TIMEOUT,
            "socket_connect_timeout": IO_TIMEOUT,
            "retry": no_retry(),
        }
        options.update(kwargs)
        return redis.Redis(host=self.host, port=self.port, **options)

    def leader(self) -> int:
        return 0

    def heal(self) -> None:
        pass

    def wait_settled(self, timeout: float) -> None:
        pass

    def close(self) -> None:
        pass
