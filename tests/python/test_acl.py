"""ACL flows that need several connections, compared with redis-server 7.0.

Both servers start with an ``aclfile``; every test runs the same steps
against each and compares what they answer: AUTH as a user, NOPERM on
commands, keys and channels, ACL LOG entries, ACL SAVE / LOAD, scripts,
MULTI/EXEC, clients closed when their user goes or loses channels. The
last test checks a write a follower of a ``kiwi.Cluster`` forwards is
judged on the follower with its client's user (ACL users are node-local).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import redis

import kiwi
from kiwitest import HOST, IO_TIMEOUT, free_port, no_retry, node_client, reference_redis_server, wait_until

pytestmark = pytest.mark.kiwi_only


def kiwi_server_command() -> list[str]:
    """The server of the kiwi package under test (not another on PATH)."""
    return [sys.executable, "-m", "kiwi"]


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, tuple[int, Path]]]:
    """A redis-server and a kiwi-server, each with its own empty ACL file."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed (scripts/setup-system.sh installs it)")
    workdir = Path(tempfile.mkdtemp(prefix="kiwi-acl-"))
    ref_acl, kiwi_acl = workdir / "ref.acl", workdir / "kiwi.acl"
    ref_acl.write_text("")
    kiwi_acl.write_text("")
    port = free_port()
    with open(workdir / "kiwi.log", "wb") as log:
        proc = subprocess.Popen(
            [*kiwi_server_command(), "--port", str(port), "--bind", HOST, "--dir", str(workdir / "data")]
            + ["--aclfile", str(kiwi_acl)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:

        def answers() -> bool:
            assert proc.poll() is None, (workdir / "kiwi.log").read_text()
            try:
                return bool(redis.Redis(host=HOST, port=port, socket_timeout=1, retry=no_retry()).ping())
            except redis.ConnectionError:
                return False

        wait_until(answers, timeout=30, message="kiwi-server answers")
        with reference_redis_server(binary, "kiwi-acl-ref-", "--aclfile", str(ref_acl)) as ref_port:
            yield {"redis": (ref_port, ref_acl), "kiwi": (port, kiwi_acl)}
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        shutil.rmtree(workdir, ignore_errors=True)


def client(port: int, **kwargs: Any) -> redis.Redis:
    options: dict[str, Any] = {"socket_timeout": IO_TIMEOUT, "retry": no_retry(), "decode_responses": True}
    options.update(kwargs)
    return redis.Redis(host=HOST, port=port, **options)


def outcome(call: Callable[[], Any]) -> Any:
    """A call's reply, or its error as text (what is compared)."""
    try:
        reply = call()
    except redis.RedisError as e:
        return f"{type(e).__name__}: {e}"
    if isinstance(reply, list):  # EXEC's replies hold errors as objects
        return [f"{type(r).__name__}: {r}" if isinstance(r, Exception) else r for r in reply]
    return reply


def on_both(servers: dict[str, tuple[int, Path]], steps: Callable[[int], list[Any]]) -> None:
    """Run `steps` against each server and compare what they gave."""
    got = {name: steps(port) for name, (port, _) in servers.items()}
    assert got["kiwi"] == got["redis"]


@pytest.fixture(autouse=True)
def clean(servers: dict[str, tuple[int, Path]]) -> Iterator[None]:
    """Every test starts with only the default user and an empty ACL log."""
    yield
    for port, _ in servers.values():
        admin = client(port)
        users = [u for u in admin.execute_command("ACL", "USERS") if u != "default"]
        if users:
            admin.execute_command("ACL", "DELUSER", *users)
        admin.execute_command("ACL", "SETUSER", "default", "reset", "on", "nopass", "~*", "&*", "+@all")
        admin.execute_command("ACL", "LOG", "RESET")
        admin.flushall()
        admin.close()


def test_a_user_runs_only_what_its_rules_allow(servers: dict[str, tuple[int, Path]]) -> None:
    def steps(port: int) -> list[Any]:
        admin = client(port)
        admin.execute_command("ACL", "SETUSER", "alice", "on", ">pw", "~k*", "%R~ro*", "&news*", "+@read")
        admin.execute_command("ACL", "SETUSER", "alice", "+set", "+publish", "+subscribe", "-keys")
        alice = client(port, username="alice", password="pw")
        out = [
            outcome(lambda: alice.set("k1", "v")),
            outcome(lambda: alice.get("k1")),
            outcome(lambda: alice.get("other")),
            outcome(lambda: alice.set("ro1", "v")),
            outcome(lambda: alice.get("ro1")),
            outcome(lambda: alice.delete("k1")),
            outcome(lambda: alice.keys("*")),
            outcome(lambda: alice.publish("news.1", "m")),
            outcome(lambda: alice.publish("sport", "m")),
            outcome(lambda: alice.execute_command("ACL", "WHOAMI")),
            outcome(lambda: client(port, username="alice", password="bad").ping()),
            outcome(lambda: client(port, username="nobody", password="pw").ping()),
        ]
        sub = client(port, username="alice", password="pw").pubsub()
        out.append(outcome(lambda: sub.subscribe("sport")))
        sub.close()
        alice.close()
        admin.close()
        return out

    on_both(servers, steps)


def test_acl_log_records_refusals(servers: dict[str, tuple[int, Path]]) -> None:
    def steps(port: int) -> list[Any]:
        admin = client(port)
        admin.execute_command("ACL", "SETUSER", "bob", "on", "nopass", "~b*", "+get", "+multi", "+exec")
        bob = client(port, username="bob", password="x")
        for _ in range(3):
            outcome(lambda: bob.set("b", "1"))
        outcome(lambda: bob.get("nope"))
        outcome(lambda: client(port, username="bob", password="x").execute_command("AUTH", "bob2", "y"))
        entries = admin.execute_command("ACL", "LOG")
        shown = [
            {k: v for k, v in e.items() if k not in ("age-seconds", "client-info")}
            | {"user=bob": "user=bob" in e["client-info"] or e["reason"] == "auth"}
            for e in entries
        ]
        two = len(admin.execute_command("ACL", "LOG", "2"))
        admin.execute_command("ACL", "LOG", "RESET")
        empty = admin.execute_command("ACL", "LOG")
        # acllog-max-len bounds the log (the oldest entries go).
        admin.config_set("acllog-max-len", "2")
        for key in ("x1", "x2", "x3"):
            outcome(partial(bob.get, key))
        bounded = [e["object"] for e in admin.execute_command("ACL", "LOG")]
        admin.config_set("acllog-max-len", "128")
        bob.close()
        admin.close()
        return [shown, two, empty, bounded]

    on_both(servers, steps)


def test_save_and_load_round_trip(servers: dict[str, tuple[int, Path]]) -> None:
    def steps(port: int) -> list[Any]:
        path = next(p for q, p in servers.values() if q == port)
        admin = client(port)
        admin.execute_command("ACL", "SETUSER", "carol", "on", ">secret", "~c*", "&c*", "+get", "(~d* +set)")
        saved = [
            admin.execute_command("ACL", "SAVE"),
            path.read_text(),
        ]
        carol = client(port, username="carol", password="secret", single_connection_client=True)
        carol.get("c")
        admin.execute_command("ACL", "DELUSER", "carol")
        gone = outcome(lambda: carol.get("c"))
        loaded = [
            admin.execute_command("ACL", "LOAD"),
            admin.execute_command("ACL", "LIST"),
            client(port, username="carol", password="secret").get("c1"),
        ]
        path.write_text("user carol on nopass +nosuch\nbad line\n")
        broken = outcome(lambda: admin.execute_command("ACL", "LOAD"))
        still = admin.execute_command("ACL", "USERS")
        path.write_text("")
        admin.close()
        carol.close()
        return [saved, gone, loaded, broken.replace(str(path), "FILE"), still]

    on_both(servers, steps)


def test_scripts_and_transactions_are_checked(servers: dict[str, tuple[int, Path]]) -> None:
    def steps(port: int) -> list[Any]:
        admin = client(port)
        admin.execute_command("ACL", "SETUSER", "dan", "on", "nopass", "~d*", "+@all", "-flushall")
        dan = client(port, username="dan", password="x", single_connection_client=True)
        out = [
            outcome(lambda: dan.eval("return redis.call('set', 'e', '1')", 0)),
            outcome(lambda: dan.eval("return redis.pcall('get', 'e')", 0)),
            outcome(lambda: dan.eval("return redis.call('flushall')", 0)),
            outcome(lambda: dan.eval("return redis.call('set', KEYS[1], '1')", 1, "e")),
            outcome(lambda: dan.eval("return redis.call('set', KEYS[1], '1')", 1, "d1")),
        ]
        # Queued commands are checked at once (EXEC then aborts) ...
        dan.execute_command("MULTI")
        out.append(outcome(lambda: dan.execute_command("SET", "x", "1")))
        out.append(outcome(lambda: dan.execute_command("EXEC")))
        # ... and again at EXEC, in case the rules changed meanwhile.
        dan.execute_command("MULTI")
        dan.execute_command("SET", "d2", "1")
        dan.execute_command("GET", "d2")
        admin.execute_command("ACL", "SETUSER", "dan", "-get")
        out.append(outcome(lambda: dan.execute_command("EXEC")))
        out.append([(e["reason"], e["context"], e["object"]) for e in admin.execute_command("ACL", "LOG")])
        dan.close()
        admin.close()
        return out

    on_both(servers, steps)


def test_clients_go_with_their_user_and_revoked_channels(servers: dict[str, tuple[int, Path]]) -> None:
    def steps(port: int) -> list[Any]:
        admin = client(port)
        admin.execute_command("ACL", "SETUSER", "eve", "on", "nopass", "+@all", "~*", "&news", "&sport")
        eve = client(port, username="eve", password="x", single_connection_client=True)
        listener = client(port, username="eve", password="x").pubsub()
        listener.subscribe("news")
        wait_until(lambda: admin.execute_command("PUBSUB", "NUMSUB", "news")[1] == 1)
        users = sorted(
            line.split(" user=")[1].split(" ")[0] for line in admin.execute_command("CLIENT", "LIST").splitlines()
        )
        # Taking away a channel nobody listens to closes nobody ...
        admin.execute_command("ACL", "SETUSER", "eve", "resetchannels", "&news")
        kept = admin.execute_command("PUBSUB", "NUMSUB", "news")[1]
        # ... taking away one a client listens to closes it.
        admin.execute_command("ACL", "SETUSER", "eve", "resetchannels", "&sport")
        wait_until(lambda: admin.execute_command("PUBSUB", "NUMSUB", "news")[1] == 0)
        killed_by_user = admin.execute_command("CLIENT", "KILL", "USER", "eve")
        no_user = outcome(lambda: admin.execute_command("CLIENT", "KILL", "USER", "nobody"))
        eve2 = client(port, username="eve", password="x", single_connection_client=True)
        eve2.ping()
        deleted = admin.execute_command("ACL", "DELUSER", "eve")
        after = outcome(lambda: eve2.ping())
        listener.close()
        eve.close()
        admin.close()
        return [users, kept, killed_by_user, no_user, deleted, after]

    on_both(servers, steps)


def test_requirepass_is_the_default_users_password(servers: dict[str, tuple[int, Path]]) -> None:
    def steps(port: int) -> list[Any]:
        admin = client(port, single_connection_client=True)
        admin.config_set("requirepass", "hunter2")
        out = [
            admin.execute_command("ACL", "GETUSER", "default")["flags"],
            len(admin.execute_command("ACL", "GETUSER", "default")["passwords"]),
            outcome(lambda: client(port).ping()),
            outcome(lambda: client(port, password="hunter2").ping()),
            outcome(lambda: client(port, username="default", password="hunter2").ping()),
        ]
        admin.config_set("requirepass", "")
        out.append(admin.execute_command("ACL", "GETUSER", "default")["flags"])
        out.append(outcome(lambda: client(port).ping()))
        admin.close()
        return out

    on_both(servers, steps)


def test_a_forwarded_write_is_judged_where_the_client_is(cluster_session: kiwi.Cluster) -> None:
    cluster = cluster_session
    leader = cluster.wait_for_leader()
    follower = next(i for i in range(3) if i != leader)
    admin = node_client(cluster, follower)
    try:
        # Users are node-local: made on the follower only.
        admin.execute_command("ACL", "SETUSER", "reader", "on", ">pw", "~*", "+@read", "+@connection")
        admin.execute_command("ACL", "SETUSER", "writer", "on", ">pw", "~w*", "+@all")
        reader = node_client(cluster, follower, username="reader", password="pw")
        writer = node_client(cluster, follower, username="writer", password="pw")
        with pytest.raises(redis.exceptions.NoPermissionError, match="no permissions to run the 'set' command"):
            reader.set("w1", "v")
        with pytest.raises(redis.exceptions.NoPermissionError, match="one of the keys"):
            writer.set("other", "v")
        assert writer.set("w1", "v")
        # A script runs at apply on every node, with its caller's rules.
        script = "return redis.call('set', KEYS[1], 'x')"
        assert writer.eval(script, 1, "w2") == "OK"
        with pytest.raises(redis.ResponseError, match="The user executing the script can't access at least one"):
            writer.eval("return redis.call('set', 'other', 'x')", 0)
        pipe = writer.pipeline(transaction=True)
        pipe.eval("return redis.call('set', 'other', 'x')", 0)
        pipe.eval(script, 1, "w3")
        replies = pipe.execute(raise_on_error=False)
        assert "can't access at least one of the keys" in str(replies[0])
        assert replies[1] == "OK"
        # So does SORT … STORE, whose GET needs every key readable.
        writer.rpush("wl", "1")
        with pytest.raises(redis.ResponseError, match="GET option of SORT denied"):
            writer.sort("wl", get=["w*"], store="w4")
        assert reader.get("w1") == "v"
        assert node_client(cluster, leader).get("other") is None
        assert node_client(cluster, leader).mget("w2", "w3") == ["x", "x"]
        with pytest.raises(redis.AuthenticationError):
            node_client(cluster, leader, username="reader", password="pw").ping()
        reader.close()
        writer.close()
    finally:
        admin.execute_command("ACL", "DELUSER", "reader", "writer")
        admin.delete("w1", "w2", "w3", "wl")
        admin.close()


def test_user_lines_in_the_configuration(tmp_path: Path) -> None:
    """`user` directives (here as command-line flags) define users at start;
    with an `aclfile` too the server refuses to start, as Redis does."""
    users = ["--user", "alice", "on", "nopass", "~a*", "+get", "--user", "default", "on", "nopass"]
    users += ["~*", "&*", "+@all", "-flushall"]
    binary = shutil.which("redis-server")
    assert binary is not None
    with reference_redis_server(binary, "kiwi-acl-conf-", *users) as ref_port:
        expected = client(ref_port).execute_command("ACL", "LIST")
    port = free_port()
    base = [*kiwi_server_command(), "--port", str(port), "--bind", HOST, "--dir", str(tmp_path / "data")]
    proc = subprocess.Popen(base + users, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:

        def listed() -> Any:
            assert proc.poll() is None, "kiwi-server exited"
            try:
                return client(port, socket_timeout=1).execute_command("ACL", "LIST")
            except redis.ConnectionError:
                return None

        assert wait_until(listed, timeout=30, message="kiwi-server answers") == expected
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    (tmp_path / "users.acl").write_text("")
    both = subprocess.run(
        base + ["--aclfile", str(tmp_path / "users.acl")] + users, capture_output=True, timeout=30, check=False
    )
    assert both.returncode != 0
    assert b"ACL file" in both.stderr + both.stdout


def test_config_rewrite_writes_the_users(tmp_path: Path) -> None:
    """Without an ACL file, CONFIG REWRITE writes every user as a `user`
    line (Redis's rewriteConfigUserOption) and a restart has them back."""
    conf = tmp_path / "kiwi.conf"
    conf.write_text(f"dir {tmp_path / 'data'}\nuser alice on nopass ~a* +get\nuser alice2 off\n")
    (tmp_path / "data").mkdir()

    def start() -> tuple[subprocess.Popen[bytes], int]:
        port = free_port()
        proc = subprocess.Popen(
            [*kiwi_server_command(), str(conf), "--port", str(port), "--bind", HOST],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

        def answers() -> bool:
            assert proc.poll() is None, "kiwi-server exited"
            try:
                return bool(client(port, socket_timeout=1).ping())
            except redis.ConnectionError:
                return False

        wait_until(answers, timeout=30, message="kiwi-server answers")
        return proc, port

    proc, port = start()
    try:
        admin = client(port)
        admin.execute_command("ACL", "DELUSER", "alice2")
        admin.execute_command("ACL", "SETUSER", "bob", "on", ">pw", "~b*", "+set")
        listed = admin.execute_command("ACL", "LIST")
        assert admin.config_rewrite()
        admin.close()
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    assert [line for line in conf.read_text().splitlines() if line.startswith("user ")] == listed
    # As Redis, a `user default` line starts from `reset` (sanitize-payload).
    expected = [line.replace("default on nopass", "default on nopass sanitize-payload") for line in listed]
    proc, port = start()
    try:
        assert client(port).execute_command("ACL", "LIST") == expected
    finally:
        proc.terminate()
        proc.wait(timeout=20)
