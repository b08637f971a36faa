#!/usr/bin/env bash
# Build Kiwi's wheel (Rust extension + Python package) and install it.
# The cargo target directory lives outside the checkout so repeat builds
# are incremental: RocksDB's C++ is compiled once per machine.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-system.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/kiwi/target}"
python3 -m pip install -q --disable-pip-version-check "maturin>=1.7,<2"
wheels="$CARGO_TARGET_DIR/wheels"
rm -f "$wheels"/kiwi-*.whl
python3 -m maturin build --release --out "$wheels" -q
python3 -m pip install -q --disable-pip-version-check --force-reinstall --no-deps "$wheels"/kiwi-*.whl
python3 -m pip install -q --disable-pip-version-check "redis>=5"
