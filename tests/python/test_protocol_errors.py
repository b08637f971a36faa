"""The RESP parser over raw sockets: malformed input, inline commands,
pipelining and fragmented requests.

Every expected byte string below was measured against redis-server 7.0.15.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest

from kiwitest import RawConnection, encode_command

RawFactory = Callable[[], RawConnection]


def proto_error(detail: str) -> bytes:
    """A protocol error reply as Redis sends it."""
    return b"-ERR Protocol error: " + detail.encode() + b"\r\n"


@pytest.fixture
def sentinel(raw: RawFactory) -> Iterator[tuple[str, bytes]]:
    """A key stored before the test; proves the server and data survive."""
    key = f"sentinel:{uuid.uuid4().hex}"
    value = b"\x00still-here\r\n"
    conn = raw()
    assert conn.call_raw("SET", key, value) == b"+OK\r\n"
    yield key, value
    cleanup = raw()
    cleanup.call("DEL", key)


def assert_server_healthy(raw: RawFactory, sentinel: tuple[str, bytes]) -> None:
    """A fresh connection works and the sentinel value is intact."""
    conn = raw()
    assert conn.call_raw("PING") == b"+PONG\r\n"
    key, value = sentinel
    assert conn.call("GET", key) == value


MALFORMED = [
    pytest.param(b"*abc\r\n", proto_error("invalid multibulk length"), id="multibulk-not-a-number"),
    pytest.param(b"*+1\r\n$4\r\nPING\r\n", proto_error("invalid multibulk length"), id="multibulk-plus-sign"),
    pytest.param(
        b"*01\r\n$4\r\nPING\r\n",
        proto_error("invalid multibulk length"),
        id="multibulk-leading-zero",
    ),
    pytest.param(b"*2147483648\r\n", proto_error("invalid multibulk length"), id="multibulk-over-int-max"),
    pytest.param(b"*1\n$4\r\nPING\r\n", proto_error("invalid multibulk length"), id="multibulk-bare-lf"),
    pytest.param(b"*1\r\n$abc\r\n", proto_error("invalid bulk length"), id="bulk-not-a-number"),
    pytest.param(b"*1\r\n$-1\r\n", proto_error("invalid bulk length"), id="bulk-negative"),
    pytest.param(b"*1\r\n$ 3\r\n", proto_error("invalid bulk length"), id="bulk-space"),
    pytest.param(b"*1\r\n$04\r\nPING\r\n", proto_error("invalid bulk length"), id="bulk-leading-zero"),
    pytest.param(b"*1\r\n$536870913\r\n", proto_error("invalid bulk length"), id="bulk-over-512mb"),
    pytest.param(b"*1\r\nfoo\r\n", proto_error("expected '$', got 'f'"), id="missing-dollar"),
    pytest.param(
        b"*2\r\n$4\r\nPING\r\n:1\r\n",
        proto_error("expected '$', got ':'"),
        id="integer-as-argument",
    ),
    pytest.param(b'"foo\r\n', proto_error("unbalanced quotes in request"), id="inline-open-double-quote"),
    pytest.param(b"'foo\r\n", proto_error("unbalanced quotes in request"), id="inline-open-single-quote"),
    pytest.param(b'"foo"bar\r\n', proto_error("unbalanced quotes in request"), id="inline-text-after-quote"),
    pytest.param(b"x" * 70_000, proto_error("too big inline request"), id="inline-over-64kb"),
    # Once a stack overflow: the header line ends at its first CR, the lone
    # CRs after it are not searched through (one recursion each).
    pytest.param(b"*1\r\n$" + b"\r" * 60_000, proto_error("invalid bulk length"), id="bulk-header-cr-flood"),
    pytest.param(b"*" + b"\r" * 60_000, proto_error("invalid multibulk length"), id="count-header-cr-flood"),
    pytest.param(b"*1\r\r\r\n", proto_error("expected '$', got ' '"), id="cr-in-error-is-a-space"),
    pytest.param(b"*1\r\n\xff\r\n", b"-ERR Protocol error: expected '$', got '\xff'\r\n", id="raw-byte-echoed"),
    pytest.param(
        b"\x00\xff\xfe" * 10 + b"\r\n" + b"x" * 70_000,
        proto_error("too big inline request"),
        id="inline-nul-then-over-64kb",
    ),
    pytest.param(b"*" + b"1" * 70_000, proto_error("too big mbulk count string"), id="count-line-over-64kb"),
]


@pytest.mark.parametrize(("request_bytes", "reply"), MALFORMED)
def test_malformed_request_replies_and_closes(
    raw: RawFactory, sentinel: tuple[str, bytes], request_bytes: bytes, reply: bytes
) -> None:
    """The exact protocol error, then the server closes this connection only."""
    conn = raw()
    conn.send(request_bytes)
    assert conn.read_raw() == reply
    conn.assert_closed()
    assert_server_healthy(raw, sentinel)


def test_commands_before_the_error_are_answered(raw: RawFactory, sentinel: tuple[str, bytes]) -> None:
    """Pipelined commands ahead of the bad one run; nothing after it does."""
    key, _ = sentinel
    conn = raw()
    conn.send(b"PING\r\n" + encode_command("GET", key) + b"*abc\r\n" + encode_command("DEL", key))
    assert conn.read_raw() == b"+PONG\r\n"
    assert conn.read() == sentinel[1]
    assert conn.read_raw() == proto_error("invalid multibulk length")
    conn.assert_closed()
    assert_server_healthy(raw, sentinel)


def test_huge_multibulk_count_waits_for_arguments(raw: RawFactory, sentinel: tuple[str, bytes]) -> None:
    """``*1048577`` alone is accepted (no reply, connection open): Redis 7
    allows counts up to INT_MAX and waits for the arguments. The next byte
    that is not ``$`` is then a protocol error."""
    conn = raw()
    conn.send(b"*1048577\r\n")
    conn.assert_silent(0.3)
    conn.send(b"PING\r\n")
    assert conn.read_raw() == proto_error("expected '$', got 'P'")
    conn.assert_closed()
    assert_server_healthy(raw, sentinel)


@pytest.mark.parametrize(
    "request_bytes",
    [
        # Once a hang then a crash (an endless loop of empty arguments).
        pytest.param(b"\x00\xff\xfe" * 10 + b"\r\n", id="nul-first"),
        pytest.param(b"PI\x00NG\r\n", id="nul-inside"),
        pytest.param(b'"a\x00b"\r\n', id="nul-in-quotes"),
    ],
)
def test_inline_line_with_nul_never_completes(
    raw: RawFactory, sentinel: tuple[str, bytes], request_bytes: bytes
) -> None:
    """Redis finds an inline line's end with strchr, which stops at NUL: the
    line (and whatever follows on that connection) waits for more input, and
    other clients are served."""
    conn = raw()
    conn.send(request_bytes + b"PING\r\n")
    conn.assert_silent(0.3)
    assert_server_healthy(raw, sentinel)


def test_lone_cr_ends_a_bulk_header(raw: RawFactory) -> None:
    """``$3\\rx``: Redis takes the first CR as the header's end and skips the
    byte after it, whatever it is."""
    conn = raw()
    conn.send(b"*1\r\n$3\rxPING\r\n")
    assert conn.read_raw() == b"-ERR unknown command 'PIN', with args beginning with: \r\n"


@pytest.mark.parametrize(
    "request_bytes",
    [
        pytest.param(b"*0\r\n", id="zero-count"),
        pytest.param(b"*-1\r\n", id="negative-count"),
        pytest.param(b"*-5\r\n", id="other-negative-count"),
        pytest.param(b"\r\n", id="empty-line"),
        pytest.param(b"\n\n", id="bare-newlines"),
        pytest.param(b"   \r\n", id="blank-inline"),
    ],
)
def test_empty_requests_are_ignored(raw: RawFactory, request_bytes: bytes) -> None:
    """Empty multibulks and blank lines get no reply and close nothing."""
    conn = raw()
    conn.send(request_bytes + b"PING\r\n")
    assert conn.read_raw() == b"+PONG\r\n"
    conn.assert_silent(0.1)


# -- inline commands ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_bytes", "reply"),
    [
        pytest.param(b"PING\r\n", b"+PONG\r\n", id="ping"),
        pytest.param(b"ping\r\n", b"+PONG\r\n", id="lowercase"),
        pytest.param(b"PING\n", b"+PONG\r\n", id="lf-only"),
        pytest.param(b"  PING  \r\n", b"+PONG\r\n", id="surrounding-spaces"),
        pytest.param(b"PING hello\r\n", b"$5\r\nhello\r\n", id="ping-arg"),
        pytest.param(b'ECHO "hello world"\r\n', b"$11\r\nhello world\r\n", id="double-quotes"),
        pytest.param(b"ECHO 'single q'\r\n", b"$8\r\nsingle q\r\n", id="single-quotes"),
        pytest.param(b'ECHO "\\x41\\n"\r\n', b"$2\r\nA\n\r\n", id="escapes"),
        pytest.param(b'ECHO ""\r\n', b"$0\r\n\r\n", id="empty-quoted"),
        pytest.param(
            b"ECHO a\tb\r\n",
            b"-ERR wrong number of arguments for 'echo' command\r\n",
            id="tab-separates",
        ),
    ],
)
def test_inline_commands(raw: RawFactory, request_bytes: bytes, reply: bytes) -> None:
    """Inline (telnet-style) commands, with quoting rules."""
    conn = raw()
    conn.send(request_bytes)
    assert conn.read_raw() == reply
    assert conn.call_raw("PING") == b"+PONG\r\n"


def test_inline_set_then_multibulk_get(raw: RawFactory) -> None:
    """Inline and multibulk requests share one keyspace and connection."""
    key = f"inline:{uuid.uuid4().hex}"
    conn = raw()
    conn.send(f'SET {key} "two words"\r\n'.encode())
    assert conn.read_raw() == b"+OK\r\n"
    assert conn.call_raw("GET", key) == b"$9\r\ntwo words\r\n"
    conn.send(f"DEL {key}\r\n".encode())
    assert conn.read_raw() == b":1\r\n"


# -- command-level errors keep the connection ---------------------------------------


@pytest.mark.parametrize(
    ("request_bytes", "reply"),
    [
        pytest.param(
            b"foo a b\r\n",
            b"-ERR unknown command 'foo', with args beginning with: 'a' 'b' \r\n",
            id="inline-unknown",
        ),
        pytest.param(
            encode_command("foo", "a", "b"),
            b"-ERR unknown command 'foo', with args beginning with: 'a' 'b' \r\n",
            id="multibulk-unknown",
        ),
        pytest.param(
            encode_command("foo"),
            b"-ERR unknown command 'foo', with args beginning with: \r\n",
            id="unknown-no-args",
        ),
        pytest.param(
            encode_command(""),
            b"-ERR unknown command '', with args beginning with: \r\n",
            id="empty-command-name",
        ),
        pytest.param(
            encode_command("foo", "x" * 200, "y" * 200),
            b"-ERR unknown command 'foo', with args beginning with: '" + b"x" * 128 + b"' \r\n",
            id="unknown-args-truncated-to-128",
        ),
        pytest.param(
            encode_command("GET"),
            b"-ERR wrong number of arguments for 'get' command\r\n",
            id="arity-get",
        ),
        pytest.param(
            encode_command("mset", "a"),
            b"-ERR wrong number of arguments for 'mset' command\r\n",
            id="arity-mset-lowercase",
        ),
        pytest.param(b"SET\r\n", b"-ERR wrong number of arguments for 'set' command\r\n", id="arity-inline"),
    ],
)
def test_command_errors_keep_connection_open(raw: RawFactory, request_bytes: bytes, reply: bytes) -> None:
    """Unknown commands and wrong arity are ordinary errors, not protocol errors."""
    conn = raw()
    conn.send(request_bytes)
    assert conn.read_raw() == reply
    assert conn.call_raw("PING") == b"+PONG\r\n"


# -- pipelining and fragmentation --------------------------------------------------


def test_pipeline_of_1000_commands_in_one_send(raw: RawFactory) -> None:
    """1000 commands in a single write get 1000 replies, in order."""
    conn = raw()
    counter = f"pipe:{uuid.uuid4().hex}"
    requests = []
    for i in range(1000):
        requests.append(encode_command("ECHO", f"msg-{i}") if i % 2 else encode_command("INCR", counter))
    conn.send(b"".join(requests))
    for i in range(1000):
        if i % 2:
            assert conn.read_raw() == b"$%d\r\nmsg-%d\r\n" % (len(f"msg-{i}"), i)
        else:
            assert conn.read_raw() == b":%d\r\n" % (i // 2 + 1)
    assert conn.call("DEL", counter) == 1
    conn.assert_silent(0.05)


def test_pipeline_mixed_inline_and_multibulk(raw: RawFactory) -> None:
    """Inline and multibulk requests can be mixed inside one pipeline."""
    conn = raw()
    conn.send(b"PING\r\n" + encode_command("ECHO", "a") + b"ECHO b\r\n" + encode_command("PING"))
    assert [conn.read_raw() for _ in range(4)] == [
        b"+PONG\r\n",
        b"$1\r\na\r\n",
        b"$1\r\nb\r\n",
        b"+PONG\r\n",
    ]


def test_multibulk_request_sent_byte_by_byte(raw: RawFactory) -> None:
    """A request split into one-byte writes is reassembled correctly."""
    key = f"split:{uuid.uuid4().hex}"
    value = b"va\r\nlue\x00"
    conn = raw()
    for byte in encode_command("SET", key, value):
        conn.send(bytes([byte]))
    assert conn.read_raw() == b"+OK\r\n"
    for byte in encode_command("GET", key):
        conn.send(bytes([byte]))
    assert conn.read() == value
    assert conn.call("DEL", key) == 1


def test_inline_request_sent_byte_by_byte(raw: RawFactory) -> None:
    """Inline requests may arrive in fragments too."""
    conn = raw()
    for byte in b'ECHO "split inline"\r\n':
        conn.send(bytes([byte]))
    assert conn.read_raw() == b"$12\r\nsplit inline\r\n"


def test_request_split_across_writes_at_awkward_points(raw: RawFactory) -> None:
    """Splits inside the CRLF, the length and the payload are all fine."""
    conn = raw()
    frame = encode_command("ECHO", "x" * 1000)
    for cut in (1, 3, 5, 9, 12, 500):
        conn.send(frame[:cut])
        conn.send(frame[cut:])
        assert conn.read() == b"x" * 1000


def test_error_in_second_request_of_a_split_stream(raw: RawFactory, sentinel: tuple[str, bytes]) -> None:
    """A protocol error arriving in a later fragment still closes cleanly."""
    conn = raw()
    conn.send(b"*1\r\n$4\r\nPI")
    conn.send(b"NG\r\n*1\r\n$x")
    conn.send(b"yz\r\n")
    assert conn.read_raw() == b"+PONG\r\n"
    assert conn.read_raw() == proto_error("invalid bulk length")
    conn.assert_closed()
    assert_server_healthy(raw, sentinel)
