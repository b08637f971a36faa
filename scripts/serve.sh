#!/usr/bin/env bash
# Quick start: build and install Kiwi, then run the standalone server
# (default: port 7379, data in ./kiwi-data). Extra arguments go to kiwi-server.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
exec kiwi-server "$@"
