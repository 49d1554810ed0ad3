#!/usr/bin/env bash
# Runs the fault suite (ctest -L fault) in BUILD_DIR (default: build), with
# its output, then prints a markdown table of what each test program reported
# on its FAULT-SUMMARY line (tests/fault/fault.h) and the totals: the figures
# of docs/reliability.md.
#
#   scripts/fault-report.sh [BUILD_DIR]
#
# Exits with ctest's status: non-zero if any fault test failed.
set -uo pipefail

build=${1:-build}
if [[ ! -f "$build/CTestTestfile.cmake" ]]; then
    echo "fault-report: $build is not a configured build directory (cmake -S . -B $build)" >&2
    exit 2
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT

start=$(date +%s)
# -V: every test's output, so that passing tests show their summary line too.
ctest --test-dir "$build" -L fault -V 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
elapsed=$(($(date +%s) - start))

echo
echo "## Fault suite: $(date -u +%Y-%m-%d), $(uname -srm), ${elapsed} s"
echo
awk -v status="$status" '
    # ctest result lines: "1/12 Test #27: fault.kill_target.tcp ....   Passed  2.51 sec"
    / Test +#[0-9]+: fault\./ {
        for (i = 1; i <= NF; i++) {
            if ($i ~ /^fault\./) {
                name = $i
            }
        }
        split(name, part, ".")
        key = part[2] " " part[3]
        res = ($0 ~ /Passed/) ? "passed" : ($0 ~ /Timeout/) ? "TIMEOUT" : "FAILED"
        result[key] = res
        if (!(key in seen)) {
            seen[key] = 1
            order[n++] = key
        }
    }
    /FAULT-SUMMARY / {
        sub(/^.*FAULT-SUMMARY /, "")
        delete kv
        for (i = 1; i <= NF; i++) {
            split($i, a, "=")
            kv[a[1]] = a[2]
        }
        key = kv["test"] " " kv["transport"]
        for (f in kv) {
            val[key, f] = kv[f]
        }
        have[key] = 1
        if (!(key in seen)) {
            seen[key] = 1
            order[n++] = key
        }
    }
    END {
        print "| test | transport | result | faults injected | requests | bytes verified | hangs | corrupted |"
        print "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |"
        split("faults requests bytes hangs corrupted", fields, " ")
        for (k = 0; k < n; k++) {
            key = order[k]
            split(key, t, " ")
            res = (key in result) ? result[key] : "?"
            line = "| " t[1] " | " t[2] " | " res
            for (j = 1; j <= 5; j++) {
                f = fields[j]
                if (key in have) {
                    v = val[key, f]
                    total[f] += v
                    line = line " | " (f == "bytes" ? sprintf("%.0f (%.1f MiB)", v, v / 1048576) : v)
                } else {
                    line = line " | -"
                }
            }
            print line " |"
            runs++
            passed += (res == "passed")
        }
        line = "| **total** | | " passed "/" runs " passed"
        for (j = 1; j <= 5; j++) {
            f = fields[j]
            v = total[f] + 0
            line = line " | " (f == "bytes" ? sprintf("%.0f (%.1f GiB)", v, v / 1073741824) : v)
        }
        print line " |"
        if (status != 0) {
            print ""
            print "ctest exited " status ": at least one fault test failed (see its output above)."
        }
    }
' "$log"
exit "$status"
