#!/usr/bin/env bash
# A coverage-guided fuzzing campaign: every target (or those named) under
# AFL++ through cargo-afl, one after another, SECONDS each; then a summary
# of executions, paths and crashes per target. --minimize replaces each
# committed corpus (fuzz/corpus/<target>) with the campaign's queue,
# minimized (afl-cmin), so CI replays what the campaign reached.
#
#   cargo install cargo-afl          # once; builds AFL++ as well
#   fuzz/campaign.sh 600             # 10 minutes per target
#   fuzz/campaign.sh 3600 request reply --minimize
#
# Crashes land in $FUZZ_WORK/out/<target>/default/crashes; replay one with
#   KIWI_FUZZ_TARGET=<target> $AFL_TARGET_DIR/release/kiwi-afl < FILE
# and keep it as a regression (fuzz/tests/regressions.rs or the corpus).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:?usage: fuzz/campaign.sh SECONDS [TARGET...] [--minimize]}
shift
minimize=0
targets=()
for arg in "$@"; do
    case $arg in
        --minimize) minimize=1 ;;
        *) targets+=("$arg") ;;
    esac
done
[ ${#targets[@]} -gt 0 ] || targets=(request inline reply raft_frame raft_reply snapshot records hll dump)

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/kiwi/target}
afl_target_dir=${AFL_TARGET_DIR:-$CARGO_TARGET_DIR-afl}
work=${FUZZ_WORK:-/tmp/kiwi-fuzz}

# RocksDB's C++ is never reached by the decoders and needs no
# instrumentation: link the library the ordinary release build made
# instead of compiling it again for the instrumented one.
cargo build --release -p kiwi-fuzz --bin kiwi-fuzz-seeds
lib=$(ls "$CARGO_TARGET_DIR"/release/build/librocksdb-sys-*/out/librocksdb.a | head -n 1)
ROCKSDB_LIB_DIR=$(dirname "$lib") ROCKSDB_STATIC=1 CARGO_TARGET_DIR=$afl_target_dir \
    cargo afl build --release -p kiwi-fuzz --features afl --bin kiwi-afl
driver=$afl_target_dir/release/kiwi-afl
afl_bin=$(dirname "$(ls -d "$HOME"/.local/share/afl.rs/rustc-*/afl.rs-*/afl/bin/afl-fuzz | tail -n 1)")

rm -rf "$work/seeds"
"$CARGO_TARGET_DIR/release/kiwi-fuzz-seeds" "$work/seeds"

export AFL_SKIP_CPUFREQ=1 AFL_NO_UI=1 AFL_NO_AFFINITY=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1
for target in "${targets[@]}"; do
    input=$work/in/$target
    rm -rf "$input" "$work/out/$target"
    mkdir -p "$input" "$work/out"
    cp "$work/seeds/$target"/* "$input"/
    if [ -d "fuzz/corpus/$target" ]; then
        cp "fuzz/corpus/$target"/* "$input"/ 2>/dev/null || true
    fi
    echo "== $target: ${seconds}s"
    KIWI_FUZZ_TARGET=$target cargo afl fuzz -V "$seconds" -t 2000 \
        -i "$input" -o "$work/out/$target" "$driver" > "$work/$target.log" 2>&1 || true
    if [ "$minimize" = 1 ]; then
        # afl-cmin.bash: the python afl-cmin of AFL++ 4.3x keeps no file of
        # a persistent-mode Rust driver.
        rm -rf "fuzz/corpus/$target" "$work/cmin/$target"
        mkdir -p "$work/cmin"
        KIWI_FUZZ_TARGET=$target "$afl_bin/afl-cmin.bash" -i "$work/out/$target/default/queue" \
            -o "$work/cmin/$target" -- "$driver" > "$work/$target.cmin.log" 2>&1
        # Inputs over 16 KB stay out of the repository (the seeds cover large ones).
        mkdir -p "fuzz/corpus/$target"
        find "$work/cmin/$target" -type f -size -16k -exec cp {} "fuzz/corpus/$target/" \;
    fi
done

printf '%-12s %12s %10s %8s %8s %7s\n' target executions execs/s corpus crashes hangs
for target in "${targets[@]}"; do
    stats=$work/out/$target/default/fuzzer_stats
    [ -f "$stats" ] || { echo "$target: no stats (see $work/$target.log)"; continue; }
    get() { awk -F' *: *' -v k="$1" '$1 == k { print $2 }' "$stats"; }
    printf '%-12s %12s %10s %8s %8s %7s\n' "$target" "$(get execs_done)" \
        "$(get execs_per_sec)" "$(get corpus_count)" "$(get saved_crashes)" "$(get saved_hangs)"
done
