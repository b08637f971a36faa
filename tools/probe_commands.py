#!/usr/bin/env python3
"""Snapshot redis-server's COMMAND INFO and COMMAND DOCS for Kiwi's commands.

Clients and tools discover commands through COMMAND (flags, ACL categories,
key specs, tips, subcommands, documentation). Kiwi answers them with what
redis-server 7.0 itself answers for each command Kiwi implements: this tool
asks a reference redis-server (RESP3) and a running Kiwi (for its command
list) and writes the raw RESP3 replies to ``src/cmd/redis_commands.resp``:
for each command, its name as a bulk string, then its COMMAND INFO reply,
then its COMMAND DOCS reply. Kiwi parses the file at first use.

Usage: tools/probe_commands.py --ref PORT --kiwi PORT [--out FILE]
"""

from __future__ import annotations

import argparse
import socket
import sys
from pathlib import Path


class Conn:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""

    def send(self, *args: str) -> None:
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            b = a.encode()
            out.append(b"$%d\r\n%s\r\n" % (len(b), b))
        self.sock.sendall(b"".join(out))

    def _fill(self) -> None:
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            raise ConnectionError("closed")
        self.buf += chunk

    def _frame_end(self, pos: int) -> int:
        """The end of the RESP3 frame starting at `pos` (reading more as needed)."""
        while b"\r\n" not in self.buf[pos:]:
            self._fill()
        end = self.buf.index(b"\r\n", pos)
        tag, body = self.buf[pos : pos + 1], self.buf[pos + 1 : end]
        pos = end + 2
        if tag in (b"$", b"=", b"!"):
            n = int(body)
            if n < 0:
                return pos
            while len(self.buf) < pos + n + 2:
                self._fill()
            return pos + n + 2
        if tag in (b"*", b"~", b">", b"%", b"|"):
            n = int(body)
            count = n * 2 if tag in (b"%", b"|") else n
            for _ in range(max(count, 0)):
                pos = self._frame_end(pos)
            return pos
        return pos

    def raw(self, *args: str) -> bytes:
        self.send(*args)
        end = self._frame_end(0)
        frame, self.buf = self.buf[:end], self.buf[end:]
        return frame


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ref", type=int, required=True, help="redis-server port")
    parser.add_argument("--kiwi", type=int, required=True, help="kiwi-server port (for its command list)")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "src/cmd/redis_commands.resp"))
    args = parser.parse_args()
    kiwi = Conn(args.kiwi)
    names_frame = kiwi.raw("COMMAND", "LIST")
    names = sorted(
        line.decode()
        for line in names_frame.split(b"\r\n")
        if line and not line.startswith((b"*", b"$")) and b"." not in line
    )
    ref = Conn(args.ref)
    ref.raw("HELLO", "3")
    out = bytearray()
    kept = 0
    for name in names:
        info = ref.raw("COMMAND", "INFO", name)
        if info.startswith(b"*1\r\n_\r\n"):
            continue  # not a Redis command (Kiwi's own)
        docs = ref.raw("COMMAND", "DOCS", name)
        encoded = name.encode()
        out += b"$%d\r\n%s\r\n" % (len(encoded), encoded) + info + docs
        kept += 1
    Path(args.out).write_bytes(bytes(out))
    print(f"{kept} commands, {len(out)} bytes -> {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
