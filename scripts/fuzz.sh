#!/usr/bin/env bash
# Fuzzes every target in fuzz/ (or the ones named) for a number of
# executions each with cargo-fuzz and libFuzzer, and prints one line per
# target: executions, time, rate, inputs kept for new coverage, crashes.
# Exits non-zero when a target crashed; the crashing input is in
# fuzz/artifacts/<target>/.
#
#   scripts/fuzz.sh                          # every target, 1 000 000 runs each
#   scripts/fuzz.sh --runs 20000 event_message user_register
#
# Needs Rust >= 1.94 and a C++ compiler (libFuzzer is built from source).
# cargo-fuzz is installed into the git-ignored .tools/ when missing. Not run
# in CI: see fuzz/README.md.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

runs=1000000
targets=()
while [ $# -gt 0 ]; do
    case "$1" in
        -r | --runs)
            runs="${2:?--runs needs a number}"
            shift 2
            ;;
        --runs=*)
            runs="${1#--runs=}"
            shift
            ;;
        -h | --help)
            sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        -*)
            echo "fuzz.sh: unknown option $1 (see --help)" >&2
            exit 2
            ;;
        *)
            targets+=("$1")
            shift
            ;;
    esac
done
if ! [[ "$runs" =~ ^[1-9][0-9]*$ ]]; then
    echo "fuzz.sh: --runs must be a positive whole number, got $runs" >&2
    exit 2
fi

cargo_fuzz=.tools/bin/cargo-fuzz
if ! [ -x "$cargo_fuzz" ]; then
    echo "fuzz.sh: installing cargo-fuzz into .tools/ (about a minute)" >&2
    cargo install cargo-fuzz --locked --root .tools --quiet
fi
# cargo-fuzz passes nightly-only flags (-Z sanitizer=address, ...); this lets
# a stable toolchain accept them instead of requiring a nightly one.
export RUSTC_BOOTSTRAP=1

if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <("$cargo_fuzz" list --fuzz-dir fuzz)
fi

echo "fuzz.sh: building the fuzz targets (the first build takes several minutes)" >&2
"$cargo_fuzz" build --fuzz-dir fuzz >&2
# The binaries are run directly (what `cargo fuzz run` does after building),
# so that the times below are fuzzing only, never a rebuild.
bin_dir=fuzz/target/x86_64-unknown-linux-gnu/release
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_odr_violation=0}"

logs=fuzz/target/fuzz-logs
mkdir -p "$logs"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

printf '%-20s %12s %9s %10s %9s %8s\n' target executions seconds 'exec/s' 'new units' crashes
failed=0
for target in "${targets[@]}"; do
    if ! [ -d "fuzz/corpus/$target" ]; then
        echo "fuzz.sh: no target $target (no fuzz/corpus/$target)" >&2
        exit 2
    fi
    # libFuzzer adds what it finds to the first corpus folder: a scratch
    # one, so that fuzz/corpus/ keeps only the committed seeds.
    mkdir -p "$scratch/$target" "fuzz/artifacts/$target"
    log="$logs/$target.log"
    start=$(date +%s.%N)
    status=0
    "$bin_dir/$target" -artifact_prefix="fuzz/artifacts/$target/" -runs="$runs" \
        -print_final_stats=1 "$scratch/$target" "fuzz/corpus/$target" >"$log" 2>&1 || status=$?
    end=$(date +%s.%N)
    seconds=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
    executed=$(awk '/stat::number_of_executed_units:/ { print $2 }' "$log" | tail -n 1)
    rate=$(awk -v n="${executed:-0}" -v s="$seconds" 'BEGIN { if (s > 0) printf "%d", n / s }')
    added=$(awk '/stat::new_units_added:/ { print $2 }' "$log" | tail -n 1)
    crashes=0
    if [ "$status" -ne 0 ]; then
        crashes=1
        failed=1
    fi
    printf '%-20s %12s %9s %10s %9s %8s\n' "$target" "${executed:-?}" "$seconds" "${rate:-?}" \
        "${added:-?}" "$crashes"
    if [ "$status" -ne 0 ]; then
        echo "  $target failed (exit $status); the input is in fuzz/artifacts/$target/, the log in $log:" >&2
        grep -E 'panicked at|ERROR: |SUMMARY: |Test unit written to' "$log" | head -n 8 | sed 's/^/    /' >&2
    fi
done
exit "$failed"
