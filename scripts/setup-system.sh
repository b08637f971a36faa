#!/usr/bin/env bash
# Install the system packages Kiwi's build and tests need, if missing:
# libclang/clang (the rocksdb crate's bindgen and C++ build) and Debian's
# redis-server/redis-tools (the reference the tests compare against);
# strace (the appendfsync test counts fsync calls).
set -euo pipefail
need=()
for pkg in libclang-dev clang redis-server redis-tools strace; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "installing system packages: ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
