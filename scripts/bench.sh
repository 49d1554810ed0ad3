#!/usr/bin/env bash
# Run the kvx-bench sweeps and plot them.
#
#   usage: scripts/bench.sh [--build DIR] [--out DIR] [--transport T]... [--quick]
#                           [--no-check] [-- KVX_BENCH_ARGS...]
#
# For each transport (default: tcp; tcp, shm or auto; each is passed to both
# processes as KVX_TRANSPORT by kvx-bench):
#   1. a short correctness run (--quick --check: every transfer's bytes are
#      verified), unless --no-check;
#   2. the sweep: engine mode (READ, WRITE, 4K .. 64M, batch 1 and 32) and kv
#      mode (pull, push of 64 and 128 blocks), table in OUT/T.txt, JSON lines
#      in OUT/T.json (--quick: OUT/T-quick.*);
#   3. a plot of GB/s vs block size, OUT/T.png (gnuplot; skipped with a note
#      if gnuplot or jq is missing).
# OUT defaults to BUILD/bench; BUILD to ./build. kvx-bench bounds each run
# itself (--max-seconds); exits non-zero if any run fails.
set -euo pipefail

die() {
    echo "bench: $*" >&2
    exit 1
}

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BUILD=build
OUT=
TRANSPORTS=()
QUICK=0
CHECK=1
EXTRA=()

while (($# > 0)); do
    case $1 in
        --build) BUILD=${2:?--build needs a directory}; shift 2 ;;
        --out) OUT=${2:?--out needs a directory}; shift 2 ;;
        --transport) TRANSPORTS+=("${2:?--transport needs tcp, shm or auto}"); shift 2 ;;
        --quick) QUICK=1; shift ;;
        --no-check) CHECK=0; shift ;;
        --) shift; EXTRA=("$@"); break ;;
        -h | --help) sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
done
((${#TRANSPORTS[@]} > 0)) || TRANSPORTS=(tcp)
OUT=${OUT:-$BUILD/bench}
BENCH=$BUILD/tools/kvx-bench
[[ -x "$BENCH" ]] || die "$BENCH not found (build it: cmake --build $BUILD --target kvx-bench)"
mkdir -p "$OUT"

SWEEP=()
SUFFIX=
if ((QUICK)); then
    SWEEP=(--quick)
    SUFFIX=-quick
fi

# JSON lines -> the four gnuplot blocks of scripts/plot.gp.
to_dat() {
    local json=$1 op batch
    for batch in 1 32; do
        for op in READ WRITE; do
            jq -r --arg op "$op" --argjson batch "$batch" '
                select(.mode == "engine" and .op == $op and .batch == $batch)
                | [.block, .gbps, (.memcpy_gbps // "NaN"), (.rawtcp_gbps // "NaN"),
                   (.pvm_gbps // "NaN")] | @tsv' "$json"
            # an empty block still needs a line, or gnuplot loses the index
            printf 'NaN\tNaN\tNaN\tNaN\tNaN\n\n\n'
        done
    done
}

for t in "${TRANSPORTS[@]}"; do
    case $t in tcp | shm | auto) ;; *) die "transport $t: not tcp, shm or auto" ;; esac
    if ((CHECK)); then
        echo "bench: === $t: correctness run (--quick --check) ==="
        "$BENCH" --transport "$t" --quick --check --json-file "$OUT/$t-check.json" \
            "${EXTRA[@]}" | tee "$OUT/$t-check.txt" || die "$t: the --check run failed"
    fi
    echo "bench: === $t: sweep ${SWEEP[*]} ==="
    "$BENCH" --transport "$t" "${SWEEP[@]}" --json-file "$OUT/$t$SUFFIX.json" "${EXTRA[@]}" |
        tee "$OUT/$t$SUFFIX.txt" || die "$t: the sweep failed"
    if command -v gnuplot >/dev/null && command -v jq >/dev/null; then
        to_dat "$OUT/$t$SUFFIX.json" >"$OUT/$t$SUFFIX.dat"
        gnuplot -e "data='$OUT/$t$SUFFIX.dat'; out='$OUT/$t$SUFFIX.png'" \
            -e "title='kvx-bench engine sweep, transport $t ($(nproc) cpus, $(uname -r))'" \
            "$HERE/plot.gp" || die "gnuplot failed"
        echo "bench: $t: plot in $OUT/$t$SUFFIX.png"
    else
        echo "bench: $t: gnuplot or jq missing, no plot"
    fi
done
echo "bench: results in $OUT/"
