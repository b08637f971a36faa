#!/usr/bin/env python3
"""Ask a real redis-server what each of its CONFIG parameters accepts.

Starts a throwaway ``redis-server`` (Debian's, the reference), reads every
parameter ``CONFIG GET *`` lists with its default, and probes ``CONFIG SET``
with values chosen so that the error texts name the kind of each parameter
(bool, integer or memory with its bounds, enum with its choices, free text,
immutable) and which names are aliases of each other. It writes the result
as ``src/config/redis_params.rs``, the table Kiwi validates CONFIG SET and
redis.conf directives with, so that Kiwi accepts and refuses exactly what
Redis does.

Usage: tools/probe_config.py [--redis-server PATH] [--out FILE]
"""

from __future__ import annotations

import argparse
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional, Union

Reply = Union[bytes, int, None, list["Reply"], Exception]

RANGE = re.compile(rb"argument must be between (-?\d+) and (-?\d+) inclusive")
CHOICES = re.compile(rb"argument\(s\) must be one of the following: (.*)$")


class Conn:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.file = self.sock.makefile("rb")

    def call(self, *args: Union[str, bytes]) -> Reply:
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            b = a.encode() if isinstance(a, str) else a
            out.append(b"$%d\r\n%s\r\n" % (len(b), b))
        self.sock.sendall(b"".join(out))
        return self.read()

    def read(self) -> Reply:
        line = self.file.readline().rstrip(b"\r\n")
        tag, body = line[:1], line[1:]
        if tag == b"+":
            return body
        if tag == b"-":
            return Exception(body)
        if tag == b":":
            return int(body)
        if tag == b"$":
            n = int(body)
            if n < 0:
                return None
            data = self.file.read(n + 2)
            return data[:-2]
        if tag == b"*":
            return [self.read() for _ in range(int(body))]
        raise ValueError(f"unexpected reply {line!r}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def config_map(conn: Conn) -> dict[str, bytes]:
    flat = conn.call("CONFIG", "GET", "*")
    assert isinstance(flat, list)
    return {str(k, "ascii"): v for k, v in zip(flat[0::2], flat[1::2])}  # type: ignore[arg-type,misc]


def error_text(reply: Reply) -> Optional[bytes]:
    return reply.args[0] if isinstance(reply, Exception) else None


def probe(conn: Conn, name: str, default: bytes) -> dict[str, object]:
    """The kind of one parameter, from what CONFIG SET says to odd values."""
    err = error_text(conn.call("CONFIG", "SET", name, default))
    if err is not None and b"immutable" in err:
        return {"kind": "immutable"}
    err = error_text(conn.call("CONFIG", "SET", name, "kiwi-probe"))
    if err is None:
        conn.call("CONFIG", "SET", name, default)
        return {"kind": "text"}
    if b"'yes' or 'no'" in err:
        return {"kind": "bool"}
    if m := CHOICES.search(err):
        return {"kind": "enum", "choices": [c.strip().decode() for c in m.group(1).split(b",")]}
    memory = b"memory value" in err
    if memory or b"parsed into an integer" in err:
        bounds: Optional[tuple[int, int]] = None
        accepted: list[int] = []
        for attempt in (-(2**63), -1, 0, 2**63 - 1, 2**64 - 1):
            text = error_text(conn.call("CONFIG", "SET", name, str(attempt)))
            if text is None:
                accepted.append(attempt)
            elif m := RANGE.search(text):
                bounds = (int(m.group(1)), int(m.group(2)))
                break
        if bounds is None and accepted:
            # No range error: the bounds are what parses at all.
            bounds = (min(accepted), max(accepted))
        conn.call("CONFIG", "SET", name, default)
        percent = error_text(conn.call("CONFIG", "SET", name, "1%")) is None
        conn.call("CONFIG", "SET", name, default)
        return {"kind": "memory" if memory else "int", "bounds": bounds, "percent": percent}
    return {"kind": "special", "error": err.decode("utf-8", "replace")}


def legacy(name: str) -> bool:
    """Whether `name` is the older spelling of a renamed parameter."""
    return any(word in name for word in ("ziplist", "slave", "lua-time-limit"))


def aliases(conn: Conn, names: dict[str, dict[str, object]], defaults: dict[str, bytes]) -> dict[str, str]:
    """alias -> canonical name, found by changing one and watching the other."""
    found: dict[str, str] = {}
    for name, info in names.items():
        if name in found or info["kind"] not in ("int", "memory", "bool", "text", "enum"):
            continue
        if info["kind"] == "bool":
            value = b"no" if defaults[name] == b"yes" else b"yes"
        elif info["kind"] == "text":
            value = b"kiwi-alias-probe"
        elif info["kind"] == "enum":
            choices = [c.encode() for c in info["choices"]]  # type: ignore[attr-defined]
            value = next(c for c in choices if c != defaults[name])
        else:
            bounds = info.get("bounds") or (0, 2**31)
            lo, hi = bounds  # type: ignore[misc]
            value = str(min(hi, max(lo, int(defaults[name] or 0) + 1))).encode()
        if error_text(conn.call("CONFIG", "SET", name, value)) is not None:
            continue
        after = config_map(conn)
        for other, v in after.items():
            if other != name and v != defaults[other] and v == after[name]:
                # The current name is canonical, the legacy one the alias
                # (as Redis's CONFIG REWRITE writes it).
                if legacy(name):
                    found[name] = other
                else:
                    found[other] = name
        conn.call("CONFIG", "SET", name, defaults[name])
    return found


def rust_string(value: Union[str, bytes]) -> str:
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render(params: dict[str, dict[str, object]], defaults: dict[str, bytes], alias_of: dict[str, str]) -> str:
    lines = [
        "//! Redis 7.0's CONFIG parameters as redis-server itself answers them:",
        "//! generated by `tools/probe_config.py` (do not edit by hand; run it",
        "//! again against a newer redis-server instead).",
        "",
        "use super::compat::{Kind, Param};",
        "",
        "pub static PARAMS: &[Param] = &[",
    ]
    for name in sorted(params):
        if name in alias_of:
            continue
        info = params[name]
        kind = info["kind"]
        if kind in ("int", "memory"):
            bounds = info.get("bounds") or (-(2**63), 2**64 - 1)
            lo, hi = bounds  # type: ignore[misc]
            ctor = "Memory" if kind == "memory" else "Int"
            kind_text = f"Kind::{ctor} {{ min: {lo}, max: {hi}, percent: {str(info['percent']).lower()} }}"
        elif kind == "enum":
            choices = ", ".join(rust_string(c) for c in info["choices"])  # type: ignore[union-attr]
            kind_text = f"Kind::Enum(&[{choices}])"
        elif kind == "special":
            kind_text = f"Kind::Special({rust_string(str(info['error']))})"
        else:
            kind_text = {"bool": "Kind::Bool", "text": "Kind::Text", "immutable": "Kind::Immutable"}[str(kind)]
        alias = next((a for a, c in alias_of.items() if c == name), None)
        alias_text = f"Some({rust_string(alias)})" if alias else "None"
        lines.append(
            f"    Param {{ name: {rust_string(name)}, alias: {alias_text}, "
            f"default: {rust_string(defaults[name])}, kind: {kind_text} }},"
        )
    lines.append("];")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--redis-server", default=shutil.which("redis-server") or "redis-server")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "src/config/redis_params.rs"))
    args = parser.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        server = subprocess.Popen(
            [args.redis_server, "--port", str(port), "--save", "", "--dir", tmp],
            stdout=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    conn = Conn(port)
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            defaults = config_map(conn)
            # This throwaway server's own port and directory are not defaults.
            defaults["port"], defaults["dir"] = b"6379", b"./"
            params = {name: probe(conn, name, value) for name, value in defaults.items()}
            alias_of = aliases(conn, params, defaults)
        finally:
            server.terminate()
            server.wait(10)
    Path(args.out).write_text(render(params, defaults, alias_of))
    kinds: dict[str, int] = {}
    for info in params.values():
        kinds[str(info["kind"])] = kinds.get(str(info["kind"]), 0) + 1
    print(f"{len(params)} parameters ({len(alias_of)} aliases): {kinds} -> {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
