"""``python/kiwi/_kiwi.pyi`` describes the compiled ``kiwi._kiwi`` exactly, and ships.

mypy's ``stubtest`` compares the stub with the extension both ways: every
public name of one is in the other with the same kind, parameters (names,
order, defaults), class finality and constructor, and module attributes with
the same type; ``__all__`` agrees. It reads the stub in the source tree and
imports the installed extension; the installed stub is that same file
(checked at the end).
"""

from __future__ import annotations

import importlib.metadata
import importlib.resources
import os
import subprocess
import sys
from pathlib import Path

import mypy.stubtest  # noqa: F401 - the tests below run it; a missing mypy fails here, loudly
import pytest

pytestmark = pytest.mark.kiwi_only

ROOT = Path(__file__).resolve().parents[2]
STUB = ROOT / "python" / "kiwi" / "_kiwi.pyi"
#: stubtest builds the stub with mypy (a few seconds) and imports the extension.
STUBTEST_TIMEOUT = 180


def stubtest(stub_root: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -m mypy.stubtest kiwi._kiwi`` with the stub package under ``stub_root``."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy.stubtest",
            "--concise",
            "--mypy-config-file",
            str(ROOT / "pyproject.toml"),
            "kiwi._kiwi",
        ],
        env={**os.environ, "MYPYPATH": str(stub_root)},
        cwd=cwd,  # not the checkout: the runtime side must import the installed package
        capture_output=True,
        text=True,
        timeout=STUBTEST_TIMEOUT,
    )


def test_stub_matches_the_extension_both_ways(tmp_path: Path) -> None:
    result = stubtest(ROOT / "python", tmp_path)
    assert result.returncode == 0, f"stubtest:\n{result.stdout}{result.stderr}"


def test_stubtest_reports_drift(tmp_path: Path) -> None:
    """A renamed, re-parametrised, mis-typed or invented name in the stub fails the check."""
    source = STUB.read_text(encoding="utf-8")
    broken = source
    for old, new in [
        ("def stop(self) -> None: ...", "def halt(self) -> None: ..."),
        ("def recv(self, max: int,", "def recv(self, size: int,"),
        ("REDIS_VERSION: str", "REDIS_VERSION: int"),
    ]:
        assert source.count(old) == 1, f"the stub no longer has {old!r}; update this test"
        broken = broken.replace(old, new)
    broken += "\ndef invented() -> None: ...\n"
    package = tmp_path / "stubs" / "kiwi"
    package.mkdir(parents=True)
    (package / "__init__.pyi").write_text("", encoding="utf-8")
    (package / "_kiwi.pyi").write_text(broken, encoding="utf-8")

    result = stubtest(tmp_path / "stubs", tmp_path)
    assert result.returncode != 0
    reported = {line.split()[0] for line in result.stdout.splitlines() if line.startswith("kiwi._kiwi.")}
    assert reported == {
        "kiwi._kiwi.ServerHandle.halt",
        "kiwi._kiwi.ServerHandle.stop",
        "kiwi._kiwi.EmbeddedConnection.recv",
        "kiwi._kiwi.REDIS_VERSION",
        "kiwi._kiwi.invented",
    }, result.stdout


# -- what ships --------------------------------------------------------------------


def test_py_typed_and_stub_ship_in_the_installed_package() -> None:
    package = importlib.resources.files("kiwi")
    assert package.joinpath("py.typed").is_file()
    assert package.joinpath("_kiwi.pyi").is_file()
    recorded = {str(path).replace("\\", "/") for path in importlib.metadata.files("kiwi-kv") or ()}
    assert "kiwi/py.typed" in recorded
    assert "kiwi/_kiwi.pyi" in recorded
    # The installed stub is the one checked above (a stale install would hide drift).
    assert package.joinpath("_kiwi.pyi").read_text(encoding="utf-8") == STUB.read_text(encoding="utf-8")
