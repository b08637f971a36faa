#!/usr/bin/env bash
# Build what gets published and check a user can install it: the sdist, then
# from that sdist the manylinux wheel (abi3: one wheel for CPython >= 3.9;
# manylinux_2_28, linked by zig against glibc 2.28's symbols; stripped),
# checked with auditwheel. Then install the wheel into a fresh virtual
# environment with no compiler on its PATH and no package index (redis-py's
# wheel, fetched beforehand, beside it) and use it: `kiwi-server --version`,
# a kiwi.open() and a kiwi.Server() round trip.
#
# The zig build has its own cargo target directory (its C/C++ is compiled by
# zig's clang for an older glibc, so it cannot share the gcc-built RocksDB of
# the other steps); it lives outside the checkout, so after the first run
# (RocksDB's C++ again, ~20 minutes on two cores) only Kiwi recompiles.
# The wheel and sdist are left in $KIWI_DIST (default: ~/.cache/kiwi/dist).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-system.sh
cache="$HOME/.cache/kiwi"
export CARGO_TARGET_DIR="${KIWI_MANYLINUX_TARGET_DIR:-$cache/target-manylinux}"
dist="${KIWI_DIST:-$cache/dist}"
# zig 0.17.1 with maturin 1.16 is the pair this was built and checked with.
python3 -m pip install -q --disable-pip-version-check "maturin>=1.16,<2" "ziglang==0.17.1" "auditwheel>=6.1,<7"
version=$(python3 - <<'PY'
import re
from pathlib import Path

package = re.search(r"^\[package\]\n(.*?)(?=^\[)", Path("Cargo.toml").read_text(), re.MULTILINE | re.DOTALL)
assert package, "Cargo.toml has no [package] table"
version = re.search(r'^version = "([^"]+)"$', package.group(1), re.MULTILINE)
assert version, "Cargo.toml's [package] has no version"
print(version.group(1))
PY
)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

mkdir -p "$dist"
rm -f "$dist"/kiwi_kv-*
python3 -m maturin sdist --out "$dist" 2>&1 | tail -n 1
sdist="$dist/kiwi_kv-$version.tar.gz"
test -f "$sdist"

# Build the wheel from the unpacked sdist (so the sdist is known to build),
# always in the same place, so cargo's incremental cache of Kiwi is reused.
# Not --locked: the sdist's workspace leaves out the fuzz crate, so cargo
# drops the fuzzers' entries from Cargo.lock (and changes nothing else).
src="$cache/sdist-build"
rm -rf "$src"
mkdir -p "$src"
# -m: the sdist's files carry a fixed old mtime (a reproducible archive); stamped
# with the time of unpacking they are newer than any earlier build, so cargo
# never takes a stale artifact for them.
tar -xzmf "$sdist" -C "$src"
if ! (cd "$src/kiwi_kv-$version" &&
  python3 -m maturin build --release --zig --compatibility manylinux_2_28 --strip --out "$dist") \
  >"$work/build.log" 2>&1; then
  tail -n 60 "$work/build.log"
  exit 1
fi
wheel="$dist/kiwi_kv-$version-cp39-abi3-manylinux_2_28_x86_64.whl"
test -f "$wheel"
echo "wheel: $(basename "$wheel"), $(($(stat -c %s "$wheel") / 1024)) KiB; sdist: $(($(stat -c %s "$sdist") / 1024)) KiB"
python3 -m auditwheel show "$wheel" | tee "$work/auditwheel.txt"
# The tag auditwheel finds the wheel's libraries and symbols consistent with
# must need no newer glibc than the 2.28 the file name promises.
python3 - "$work/auditwheel.txt" <<'PY'
import re
import sys

text = " ".join(open(sys.argv[1]).read().split())
found = re.search(r'consistent with the following platform tag: "manylinux_(\d+)_(\d+)_x86_64"', text)
legacy = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}
old = re.search(r'consistent with the following platform tag: "(manylinux\d+)_x86_64"', text)
glibc = (int(found[1]), int(found[2])) if found else legacy.get(old[1], (99, 0)) if old else (99, 0)
assert glibc <= (2, 28), f"auditwheel: the wheel needs glibc {glibc}, more than manylinux_2_28 allows"
PY

# Everything the install needs, fetched while the index is still in reach.
python3 -m pip download -q --disable-pip-version-check --only-binary :all: -d "$dist" "redis>=5"

# A fresh venv; its PATH holds only the venv, so nothing can be compiled.
python3 -m venv "$work/venv"
offline=(env PATH="$work/venv/bin" PIP_NO_INDEX=1 PIP_DISABLE_PIP_VERSION_CHECK=1)
for tool in cc gcc clang c++ g++ rustc cargo zig; do
  if "${offline[@]}" "$work/venv/bin/python" -c "import shutil, sys; sys.exit(shutil.which('$tool') is None)"; then
    echo "$tool is on the test venv's PATH" >&2
    exit 1
  fi
done
"${offline[@]}" "$work/venv/bin/python" -m pip install -q --no-index --only-binary :all: --find-links "$dist" "kiwi-kv==$version"
line=$("${offline[@]}" kiwi-server --version)
echo "kiwi-server --version: $line"
[[ $line == *" build=kiwi-$version" ]]
(cd "$work" && "${offline[@]}" python - "$version" <<'PY')
"""What a user does first with the installed wheel."""

import importlib.metadata
import sys

import kiwi

version = sys.argv[1]
assert kiwi.__version__ == version == importlib.metadata.version("kiwi-kv"), kiwi.__version__
assert kiwi.__file__.startswith(sys.prefix), kiwi.__file__  # the venv's, not the checkout's
assert any(ep.name == "kiwi" for ep in importlib.metadata.entry_points(group="pytest11"))
with kiwi.open() as db:
    db.set("greeting", "hello")
    assert db.get("greeting") == b"hello"
with kiwi.Server() as server, server.client() as client:
    client.rpush("list", "a", "b")
    assert client.lrange("list", 0, -1) == [b"a", b"b"]
    assert client.info("server")["kiwi_version"] == version
print(f"kiwi {version} from the wheel: kiwi.open() and kiwi.Server() round trips passed")
PY
