#!/usr/bin/env bash
# The long form of tests/python/test_kill9.py: N kills (default 500) of a
# standalone kiwi-server and N of random nodes of a three-node cluster, under
# load from four writers; every acknowledged write checked by content at the
# end. Prints one summary line per run (kills, operations acknowledged,
# unknown, lost). Usage: bash bench/kill9.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
KIWI_KILL9_KILLS="${1:-500}" exec python3 -m pytest -q -s -p no:cacheprovider tests/python/test_kill9.py
