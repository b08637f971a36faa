#!/usr/bin/env bash
# Every test: Rust (unit + integration) and Python (pytest through redis-py
# against the installed package). Uses the same release profile for both,
# so RocksDB is built once.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/kiwi/target}"
bash scripts/install.sh
python3 -m pip install -q --disable-pip-version-check "pytest>=8" "pytest-timeout>=2" "pytest-asyncio>=0.23" "redis>=5" "pytest-redis>=3" "trustme>=1"
echo "== cargo test"
cargo test --release --locked --workspace
echo "== pytest"
python3 -m pytest -q -p no:cacheprovider tests/python
