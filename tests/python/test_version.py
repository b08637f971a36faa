"""One version, Cargo.toml's, everywhere Kiwi reports one.

``kiwi.__version__`` (compiled into the extension), the installed
distribution's metadata (maturin takes it from Cargo.toml), ``kiwi-server
--version`` and ``INFO server``'s ``kiwi_version`` all say the same; the
Redis-facing fields keep the Redis version Kiwi is compatible with, so tools
that gate on ``redis_version`` keep working.
"""

from __future__ import annotations

import importlib.metadata
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import kiwi

pytestmark = pytest.mark.kiwi_only

CARGO_TOML = Path(__file__).resolve().parents[2] / "Cargo.toml"


def cargo_version() -> str:
    """The `version` of Cargo.toml's `[package]` table."""
    text = CARGO_TOML.read_text()
    package = re.search(r"^\[package\]\n(.*?)(?=^\[)", text, re.MULTILINE | re.DOTALL)
    assert package, "Cargo.toml has no [package] table"
    version = re.search(r'^version = "([^"]+)"$', package.group(1), re.MULTILINE)
    assert version, "Cargo.toml's [package] has no version"
    return version.group(1)


def test_package_version_is_cargo_version() -> None:
    assert kiwi.__version__ == cargo_version()
    assert importlib.metadata.version("kiwi-kv") == cargo_version()


def test_server_version_line_names_kiwi_version() -> None:
    exe = shutil.which("kiwi-server")
    assert exe, "the kiwi-server console script is not installed"
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30, check=True).stdout
    fields = dict(part.split("=", 1) for part in out.split() if "=" in part)
    assert fields["v"] == kiwi.REDIS_VERSION
    assert fields["build"] == f"kiwi-{cargo_version()}"


def test_info_server_reports_both_versions() -> None:
    with kiwi.Server() as server, server.client() as client:
        info = client.info("server")
    assert info["kiwi_version"] == cargo_version()
    assert info["redis_version"] == kiwi.REDIS_VERSION
