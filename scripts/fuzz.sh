#!/usr/bin/env bash
# Build the libFuzzer targets of tests/fuzz with clang (-DKVX_FUZZ=ON) and run
# each for a bounded time, one after the other, on a copy of its corpus
# (tests/fuzz/corpus/<target>/, which this never changes).
#
#   scripts/fuzz.sh [--seconds N] [--build DIR] [--keep DIR] [TARGET...]
#
#   --seconds N  time per target (default: $FUZZ_SECONDS, else 10)
#   --build DIR  clang build tree (default: build-fuzz)
#   --keep DIR   keep each grown corpus copy as DIR/<target> (to pick new
#                inputs from with -merge=1; see tests/fuzz/README.md)
#   TARGET       run only these (names as in tests/fuzz/corpus/)
#
# Prints one line per target and a total. Exits non-zero if any target
# crashed, leaked, hit a timeout or a failed invariant; the input that did it
# stays in DIR/fuzz-artifacts/ and its path is printed with the report.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

usage() { sed -n '2,16s/^# \{0,1\}//p' "$0"; }
die() {
    echo "fuzz.sh: $*" >&2
    exit 2
}

seconds=${FUZZ_SECONDS:-10}
build=build-fuzz
keep=
targets=()
while [[ $# -gt 0 ]]; do
    case $1 in
    --seconds) [[ $# -ge 2 ]] || die "--seconds needs a value"; seconds=$2; shift 2 ;;
    --seconds=*) seconds=${1#*=}; shift ;;
    --build) [[ $# -ge 2 ]] || die "--build needs a value"; build=$2; shift 2 ;;
    --build=*) build=${1#*=}; shift ;;
    --keep) [[ $# -ge 2 ]] || die "--keep needs a value"; keep=$2; shift 2 ;;
    --keep=*) keep=${1#*=}; shift ;;
    -h | --help) usage; exit 0 ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) targets+=("$1"); shift ;;
    esac
done
[[ $seconds =~ ^[1-9][0-9]*$ ]] || die "--seconds wants a whole number > 0, not '$seconds'"
command -v clang >/dev/null || die "clang not found; install it with 'bash scripts/deps.sh'"

if [[ ${#targets[@]} -eq 0 ]]; then
    for src in tests/fuzz/fuzz_*.c; do
        t=${src##*/fuzz_}
        targets+=("${t%.c}")
    done
fi
for t in "${targets[@]}"; do
    [[ -f tests/fuzz/fuzz_$t.c && -d tests/fuzz/corpus/$t ]] || die "no fuzz target '$t'"
done

# Configure and build only the fuzz targets (the rest of the tree is not
# needed here). The compiler is chosen only when the tree is new: changing
# it later would make cmake throw the cache away.
mkdir -p "$build"
log=$build/fuzz-build.log
cc_arg=()
[[ -f $build/CMakeCache.txt ]] || cc_arg=(-DCMAKE_C_COMPILER=clang)
if ! { cmake -S . -B "$build" "${cc_arg[@]}" -DKVX_FUZZ=ON -DKVX_BUILD_EXAMPLES=OFF \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo &&
    cmake --build "$build" -j"${JOBS:-2}" --target kvx_fuzz_all; } >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    die "build failed (log: $log)"
fi

artifacts=$build/fuzz-artifacts
mkdir -p "$artifacts" "$build/fuzz-logs"
work=$(mktemp -d "${TMPDIR:-/tmp}/kvx-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT

# UBSan findings abort (-fno-sanitize-recover), so libFuzzer reports them.
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

total_execs=0
total_secs=0
failed=0
for t in "${targets[@]}"; do
    # Per-target input bound, from the target's "fuzz.sh: -max_len=N" line.
    max_len=$(sed -n 's|^/\* fuzz.sh: -max_len=\([0-9][0-9]*\) \*/$|\1|p' "tests/fuzz/fuzz_$t.c")
    cp -r "tests/fuzz/corpus/$t" "$work/$t"
    tlog=$build/fuzz-logs/$t.log
    start=$(date +%s.%N)
    rc=0
    "$build/tests/fuzz/fuzz_$t" -max_total_time="$seconds" -max_len="${max_len:-4096}" \
        -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
        -artifact_prefix="$artifacts/$t-" "$work/$t" >"$tlog" 2>&1 || rc=$?
    secs=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')
    execs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9][0-9]*\).*/\1/p' "$tlog" | tail -n 1)
    total_secs=$(awk -v a="$total_secs" -v b="$secs" 'BEGIN { printf "%.1f", a + b }')
    total_execs=$((total_execs + ${execs:-0}))
    if [[ $rc -eq 0 ]]; then
        echo "fuzz: $t: ${execs:-?} executions, $secs s, 0 crashes"
    else
        failed=$((failed + 1))
        input=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$tlog" | tail -n 1)
        tail -n 60 "$tlog"
        echo "fuzz: $t: ${execs:-?} executions, $secs s, 1 crash (exit $rc)," \
            "input: ${input:-none written}, log: $tlog"
    fi
    if [[ -n $keep ]]; then
        mkdir -p "$keep"
        rm -rf "${keep:?}/$t"
        mv "$work/$t" "$keep/$t"
    fi
    rm -rf "${work:?}/$t"
done
echo "fuzz: total: $total_execs executions, $total_secs s, $failed crashes" \
    "(${#targets[@]} targets, ${seconds} s each)"
[[ $failed -eq 0 ]]
