#!/bin/sh
# Writes the format-1 directories beside this script, which
# tests/rust/check_dir_tests.rs opens and reads back exactly:
#   standalone/   a standalone server's directory
#   raft-node-1/  node 1 of a one-node Raft cluster
# Each holds a few keys of every type (see `commands` below), written by
# kiwi-server through redis-cli, the server then stopped cleanly (SIGTERM).
# Run it only to remake them for disk format 1 with the binary of that
# format: KIWI_SERVER=target/release/kiwi-server tests/data/disk-format-1/make.sh
set -eu
here=$(cd "$(dirname "$0")" && pwd)
kiwi=${KIWI_SERVER:-kiwi-server}
port=${PORT:-22341}
raft_port=${RAFT_PORT:-22342}

commands() {
    cat <<'REDIS'
SET s v
SET ttl t PXAT 4102444800000
HSET h f1 a f2 b f3 c
RPUSH l x y z
SADD set m1 m2 m3
ZADD z 1 a 2.5 b -3 c
XADD st 1-1 k v1
XADD st 2-1 k v2
XGROUP CREATE st g 0
SELECT 1
SET in-db-1 one
REDIS
}

make() {
    out=$here/$1
    shift
    rm -rf "$out"
    "$kiwi" --dir "$out" --port "$port" --loglevel warning "$@" &
    pid=$!
    tries=0
    until [ "$(redis-cli -p "$port" set ready 1 2>/dev/null)" = OK ]; do
        tries=$((tries + 1))
        [ "$tries" -lt 200 ] || { kill "$pid"; echo "kiwi-server did not start" >&2; exit 1; }
        sleep 0.1
    done
    redis-cli -p "$port" del ready >/dev/null
    commands | redis-cli -p "$port" >/dev/null
    kill -TERM "$pid"
    wait "$pid"
    # RocksDB's info logs are not data.
    rm -f "$out"/LOG "$out"/LOG.old.*
}

make standalone
make raft-node-1 --node-id 1 --raft-addr "127.0.0.1:$raft_port" --raft-init
