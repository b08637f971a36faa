"""Hundreds of concurrent clients, each pipelining: all served, every reply in order."""

from __future__ import annotations

import threading

from kiwitest import RawConnection, encode_command, run_threads

CLIENTS = 300
PER_CLIENT = 50


def test_hundreds_of_pipelining_clients_are_all_served(r, server_addr) -> None:
    host, port = server_addr
    connected = threading.Barrier(CLIENTS, timeout=60)

    def client(n: int) -> int:
        conn = RawConnection(host, port)
        try:
            # Everyone is connected at once before anyone sends.
            connected.wait()
            key = f"client:{n}"
            batch = b"".join(encode_command("INCR", key) for _ in range(PER_CLIENT))
            batch += encode_command("GET", key)
            conn.send(batch)
            replies = [conn.read() for _ in range(PER_CLIENT + 1)]
            assert replies[:PER_CLIENT] == list(range(1, PER_CLIENT + 1)), f"client {n} got out-of-order replies"
            assert replies[-1] == str(PER_CLIENT).encode()
            return 1
        finally:
            conn.close()

    assert sum(run_threads([lambda n=n: client(n) for n in range(CLIENTS)], timeout=120)) == CLIENTS
    values = r.mget([f"client:{n}" for n in range(CLIENTS)])
    assert values == [str(PER_CLIENT).encode()] * CLIENTS
