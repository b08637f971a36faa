"""A corrupt or foreign data directory at start: ``kiwi-server`` prints a
clear message and exits non-zero (never a panic), ``kiwi.Server`` raises a
Python exception with the same message, and nothing in the directory is
touched.

Each case starts from a copy of a real Kiwi directory (keys in table files
and in the write-ahead log) and damages it: random bytes in CURRENT, in the
MANIFEST, in the table files; CURRENT gone (RocksDB would otherwise start an
empty database and delete the old files as obsolete); another program's
database files; Redis's RDB file; a file where the directory should be; a
directory or a file Kiwi may not read (root ignores permissions, so as root
the server runs without CAP_DAC_OVERRIDE through ``setpriv``).
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from kiwi.testing.processes import server_command
from kiwi.testing.targets import free_ports
from kiwitest import wait_until

pytestmark = pytest.mark.kiwi_only

RUN_TIMEOUT = 60.0
HINT_DAMAGED = "restore it from a backup, or move it aside to start empty"


def unprivileged(command: list[str]) -> list[str]:
    """``command`` without the power to ignore file permissions."""
    if os.geteuid() != 0:
        return command
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search", *command]


@pytest.fixture(scope="module")
def kiwi_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Kiwi data directory with table files and a write-ahead log."""
    import kiwi

    path = tmp_path_factory.mktemp("kiwi-data") / "data"
    with kiwi.Server(dir=path) as server:
        client = server.client()
        try:
            # Over the 8 MB memtable, so RocksDB writes table files.
            value = b"v" * 8192
            for i in range(0, 1400, 100):
                client.mset({f"k{j}": value for j in range(i, i + 100)})
            client.set("last", "in the WAL")
            # The full memtable is flushed in the background: wait for it,
            # or closing (under load) can come first.
            wait_until(lambda: list(path.glob("*.sst")), timeout=60, message="no table file was written")
        finally:
            client.close()
    assert list(path.glob("*.sst")), "no table file was written"
    return path


@pytest.fixture
def damaged(kiwi_dir: Path, tmp_path: Path) -> Iterator[Path]:
    """A fresh copy of ``kiwi_dir`` to damage; made accessible again after."""
    copy = tmp_path / "data"
    shutil.copytree(kiwi_dir, copy)
    yield copy
    for p in [copy, *copy.rglob("*")] if copy.is_dir() else []:
        p.chmod(0o755 if p.is_dir() else 0o644)


def scramble(path: Path) -> None:
    """Overwrite ``path`` with random bytes of the same length."""
    size = path.stat().st_size if path.exists() else 4096
    path.write_bytes(random.Random(str(path)).randbytes(size))


def snapshot(path: Path) -> dict[str, bytes]:
    if not path.is_dir():
        return {"": path.read_bytes()}
    # RocksDB's own info log (LOG, LOG.old.*) and LOCK may change.
    return {
        p.name: p.read_bytes() for p in sorted(path.iterdir()) if p.is_file() and not p.name.startswith(("LOG", "LOCK"))
    }


def start_server(path: Path, *, restricted: bool = False) -> subprocess.CompletedProcess[str]:
    """Run kiwi-server on ``path`` until it exits (it must, on its own)."""
    (port,) = free_ports(1)
    command = server_command() + ["--port", str(port), "--dir", str(path)]
    if restricted:
        command = unprivileged(command)
    return subprocess.run(command, capture_output=True, text=True, timeout=RUN_TIMEOUT, stdin=subprocess.DEVNULL)


def start_in_process(path: Path, *, restricted: bool = False) -> str:
    """``kiwi.Server(dir=path).start()`` in a child interpreter; the text of
    the exception it raised (its type first)."""
    code = (
        "import sys, kiwi\n"
        "try:\n"
        f"    kiwi.Server(dir={str(path)!r}).start().stop()\n"
        "except Exception as e:\n"
        "    print(type(e).__name__ + ': ' + str(e)); sys.exit(3)\n"
        "print('started')\n"
    )
    command = [sys.executable, "-c", code]
    if restricted:
        command = unprivileged(command)
    done = subprocess.run(command, capture_output=True, text=True, timeout=RUN_TIMEOUT)
    assert done.returncode == 3, f"kiwi.Server did not raise: {done.returncode}\n{done.stdout}\n{done.stderr}"
    assert "panicked" not in done.stderr, done.stderr
    return done.stdout.strip()


def assert_refused(path: Path, *phrases: str, restricted: bool = False) -> None:
    """kiwi-server and kiwi.Server both refuse ``path`` with ``phrases`` in
    their message, and leave its files as they were."""
    before = snapshot(path)
    done = start_server(path, restricted=restricted)
    message = done.stderr
    assert done.returncode != 0, f"kiwi-server started on a bad directory:\n{done.stdout}\n{message}"
    assert "panicked" not in message, message
    assert f"kiwi-server: cannot open data directory {path}: " in message, message
    for phrase in phrases:
        assert phrase in message, f"{phrase!r} not in:\n{message}"
    raised = start_in_process(path, restricted=restricted)
    assert raised.startswith(("RuntimeError: ", "OSError: ")), raised
    assert f"cannot open data directory {path}: " in raised
    for phrase in phrases:
        assert phrase in raised, f"{phrase!r} not in {raised!r}"
    assert snapshot(path) == before, "the refused directory was changed"


def test_the_intact_copy_starts(damaged: Path, kiwi_mod: ModuleType) -> None:
    """The baseline every case damages: it opens and holds its keys."""
    with kiwi_mod.Server(dir=damaged) as server:
        client = server.client()
        try:
            assert client.get("last") == b"in the WAL"
            assert client.strlen("k0") == 8192
            assert client.dbsize() == 1401
        finally:
            client.close()


def test_random_bytes_in_current(damaged: Path) -> None:
    scramble(damaged / "CURRENT")
    assert_refused(damaged, "Corruption", HINT_DAMAGED)


def test_random_bytes_in_manifest(damaged: Path) -> None:
    for manifest in damaged.glob("MANIFEST-*"):
        scramble(manifest)
    assert_refused(damaged, "Corruption", HINT_DAMAGED)


def test_random_bytes_in_table_files(damaged: Path) -> None:
    for table in damaged.glob("*.sst"):
        scramble(table)
    assert_refused(damaged, "Corruption", HINT_DAMAGED)


def test_current_missing(damaged: Path) -> None:
    """Without CURRENT, RocksDB would create an empty database over the
    table files and delete them as obsolete: every key silently gone."""
    (damaged / "CURRENT").unlink()
    assert_refused(damaged, "holds database files", "but no CURRENT file", HINT_DAMAGED)


def test_another_programs_database_files(tmp_path: Path) -> None:
    other = tmp_path / "leveldb"
    other.mkdir()
    for name in ("000005.ldb", "000006.log", "MANIFEST-000004", "LOG"):
        scramble(other / name)
    assert_refused(other, "holds database files (000005.ldb, 000006.log", "another program's")


def test_a_redis_data_directory(tmp_path: Path) -> None:
    """Kiwi does not read RDB files: starting empty over one would look like
    lost data to someone moving from Redis."""
    redis_dir = tmp_path / "redis"
    redis_dir.mkdir()
    (redis_dir / "dump.rdb").write_bytes(b"REDIS0010\xfa\x09redis-ver\x057.0.15\xff" + bytes(8))
    assert_refused(redis_dir, "it holds Redis's data (dump.rdb), which Kiwi does not read")


def test_unrelated_files_are_accepted_as_redis_accepts_them(tmp_path: Path, kiwi_mod: ModuleType) -> None:
    """A directory shared with logs, a pid file and a config (pytest-redis and
    redis.conf's ``dir ./`` do that) is fine, as it is for Redis."""
    shared = tmp_path / "shared"
    shared.mkdir()
    for name in ("redis-server.7000.log", "redis-server.7000.pid", "redis.conf", "notes.txt"):
        (shared / name).write_text("not Kiwi's\n")
    with kiwi_mod.Server(dir=shared) as server:
        client = server.client()
        try:
            assert client.set("k", "v") is True
        finally:
            client.close()
    assert (shared / "notes.txt").read_text() == "not Kiwi's\n"


def test_a_file_where_the_directory_should_be(tmp_path: Path) -> None:
    path = tmp_path / "data"
    path.write_text("I am a file\n")
    assert_refused(path, "it is a file, not a directory")


def test_an_unreadable_directory(damaged: Path) -> None:
    damaged.chmod(0o000)
    assert_refused(damaged, "cannot read it: Permission denied", restricted=True)


def test_an_unreadable_current_file(damaged: Path) -> None:
    (damaged / "CURRENT").chmod(0o000)
    assert_refused(damaged, "Permission denied", "check the permissions", restricted=True)


def test_refusal_exits_with_status_1(tmp_path: Path) -> None:
    """A directory Kiwi cannot use exits 1, as any failed start (2 is for
    bad arguments)."""
    path = tmp_path / "file"
    path.write_text("x")
    assert start_server(path).returncode == 1


def check_dir(path: Path) -> subprocess.CompletedProcess[str]:
    """``kiwi-server --check-dir path`` run to completion."""
    command = [*server_command(), "--check-dir", str(path)]
    return subprocess.run(command, capture_output=True, text=True, timeout=RUN_TIMEOUT, stdin=subprocess.DEVNULL)


def test_check_dir_passes_a_real_directory_and_leaves_it_alone(damaged: Path) -> None:
    """The intact copy (keys in table files and in the WAL) checks clean,
    every record read, and --check-dir changes none of its files."""
    before = snapshot(damaged)
    done = check_dir(damaged)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "standalone directory, disk format 2\n" in done.stdout, done.stdout
    assert "keyspace: 1401 keys (string 1401)" in done.stdout, done.stdout
    assert done.stdout.rstrip().endswith("no problems"), done.stdout
    assert snapshot(damaged) == before, "--check-dir changed the directory"


def test_check_dir_reports_damaged_table_files(damaged: Path) -> None:
    """Bytes flipped inside table files' data blocks: named as checksum
    problems, exit status 1, the directory untouched."""
    tables = [t for t in damaged.glob("*.sst") if t.stat().st_size > 16 * 1024]
    assert tables, "no table file holds several blocks"
    for table in tables:
        data = bytearray(table.read_bytes())
        # Inside the first data block (4 KiB), which starts the file: far
        # from the index and footer, so RocksDB opens the file.
        for i in range(16, 48):
            data[i] ^= 0xFF
        table.write_bytes(bytes(data))
    before = snapshot(damaged)
    done = check_dir(damaged)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "PROBLEM [checksum] column family " in done.stdout, done.stdout
    assert "Corruption" in done.stdout, done.stdout
    assert "\nsummary: " in done.stdout and " problem" in done.stdout.splitlines()[-1], done.stdout
    assert snapshot(damaged) == before, "--check-dir changed the directory"
