#!/usr/bin/env bash
# Every check CI runs: the linters (rustfmt, ruff, mypy, clippy), then every
# test: Rust (unit + integration) and Python (pytest through redis-py against
# the installed package, the stub check included), then the release artifacts
# (scripts/wheel-check.sh: the sdist and the manylinux wheel, installed offline
# into a fresh venv). clippy and the tests use the same release profile and
# target directory as the build, so RocksDB is built once for them (the
# manylinux wheel has a target directory of its own). Each step prints how
# long it took.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/kiwi/target}"

step() {
  local name=$1 start=$SECONDS
  shift
  echo "== $name"
  "$@"
  echo "== $name: $((SECONDS - start))s"
}

python3 -m pip install -q --disable-pip-version-check "pytest>=8" "pytest-timeout>=2" "pytest-asyncio>=0.23" \
  "redis>=5" "pytest-redis>=3" "trustme>=1" "mypy>=2.4,<3" "ruff>=0.17,<0.18"
# The fast, build-free checks first.
step "cargo fmt" cargo fmt --all --check
step "ruff check" python3 -m ruff check --no-cache .
step "ruff format" python3 -m ruff format --no-cache --check .
step "mypy" python3 -m mypy
step "build + install" bash scripts/install.sh
step "cargo clippy" cargo clippy --release --all-targets --workspace --locked -- -D warnings
step "cargo test" cargo test --release --locked --workspace
step "pytest" python3 -m pytest -q -p no:cacheprovider tests/python
step "wheel check" bash scripts/wheel-check.sh
