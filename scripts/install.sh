#!/usr/bin/env bash
# Build Kiwi's wheel (Rust extension + Python package) from this checkout and
# install it (distribution kiwi-kv, import name kiwi). The cargo target
# directory lives outside the checkout so repeat builds are incremental:
# RocksDB's C++ is compiled once per machine.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-system.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/kiwi/target}"
python3 -m pip install -q --disable-pip-version-check "maturin>=1.7,<2"
# Before the rename to kiwi-kv the distribution was called kiwi: remove such
# an install of ours (never PyPI's unrelated kiwi), or its files and pytest
# plugin entry point would linger next to kiwi-kv's.
python3 - <<'PY'
import importlib.metadata
import subprocess
import sys

try:
    summary = importlib.metadata.metadata("kiwi")["Summary"] or ""
except importlib.metadata.PackageNotFoundError:
    summary = ""
if "Redis-compatible" in summary:
    subprocess.run([sys.executable, "-m", "pip", "uninstall", "-q", "-y", "kiwi"], check=True)
PY
wheels="$CARGO_TARGET_DIR/wheels"
rm -f "$wheels"/kiwi-*.whl "$wheels"/kiwi_kv-*.whl
python3 -m maturin build --release --out "$wheels" -q
python3 -m pip install -q --disable-pip-version-check --force-reinstall --no-deps "$wheels"/kiwi_kv-*.whl
python3 -m pip install -q --disable-pip-version-check "redis>=5"
