#!/usr/bin/env bash
# Run two example programs against each other on one host.
#
#   usage: run_pair.sh FIRST_CMD... -- SECOND_CMD...
#
# FIRST_CMD runs in the background with KVX_EXAMPLE_PORT_FILE set; it should
# listen on port 0 and write its bound port to that file once it is ready.
# This script waits for the file (a handshake, not a fixed sleep), replaces
# @PORT@ in SECOND_CMD's arguments with the port, runs SECOND_CMD, then waits
# for FIRST_CMD to exit. Exits 0 only if both exit 0.
#
# Both commands also get KVX_EXAMPLE_PORT_FILE2, a second file in the same
# private directory, for pairs that meet again on a new port after starting
# (switch_roles: the second program listens later and the first reads it).
#
#   run_pair.sh ./client_server_h2d 0 127.0.0.1:0 -- \
#       ./client_server_h2d 0 127.0.0.1 127.0.0.1:@PORT@
set -euo pipefail

PORT_WAIT_S=10   # deadline for FIRST to publish its port
FIRST_EXIT_S=30  # deadline for FIRST to exit once SECOND is done
FAILED_EXIT_S=5  # the same, when SECOND failed (FIRST may never hear from it)
POLL_S=0.02

die() {
    echo "run_pair: $*" >&2
    exit 1
}

first=()
while (($# > 0)) && [[ "$1" != "--" ]]; do
    first+=("$1")
    shift
done
if (($# < 2 || ${#first[@]} == 0)); then
    die "usage: $0 FIRST_CMD... -- SECOND_CMD..."
fi
shift
second=("$@")

TMP=$(mktemp -d "${TMPDIR:-/tmp}/kvx-pair.XXXXXX")
FIRST_PID=

cleanup() {
    local rc=$?
    if [[ -n "$FIRST_PID" ]] && kill -0 "$FIRST_PID" 2>/dev/null; then
        kill -TERM "$FIRST_PID" 2>/dev/null || true
        for _ in 1 2 3 4 5 6 7 8 9 10; do
            kill -0 "$FIRST_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$FIRST_PID" 2>/dev/null || true
        wait "$FIRST_PID" 2>/dev/null || true
    fi
    rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

now_ms() {
    local us=${EPOCHREALTIME//[.,]/}
    echo $((us / 1000))
}

alive() {
    kill -0 "$1" 2>/dev/null
}

# Wait up to $1 seconds for FIRST to exit; its status goes to first_rc.
reap_first() {
    local deadline=$(($(now_ms) + $1 * 1000))
    while alive "$FIRST_PID"; do
        if (($(now_ms) >= deadline)); then
            echo "run_pair: ${first[0]##*/} still running after $1 s; killing it" >&2
            kill -KILL "$FIRST_PID" 2>/dev/null || true
            break
        fi
        sleep "$POLL_S"
    done
    first_rc=0
    wait "$FIRST_PID" || first_rc=$?
    FIRST_PID=
}

export KVX_EXAMPLE_PORT_FILE2=$TMP/port2
KVX_EXAMPLE_PORT_FILE=$TMP/port "${first[@]}" &
FIRST_PID=$!

# Handshake: wait until the port file holds a port number.
port=
deadline=$(($(now_ms) + PORT_WAIT_S * 1000))
while :; do
    if [[ -s "$TMP/port" ]]; then
        content=$(<"$TMP/port")
        if [[ "$content" =~ ^[[:space:]]*([0-9]+)[[:space:]]*$ ]] &&
            ((BASH_REMATCH[1] > 0 && BASH_REMATCH[1] < 65536)); then
            port=${BASH_REMATCH[1]}
            break
        fi
        die "port file holds '$content', not a port"
    fi
    if ! alive "$FIRST_PID"; then
        reap_first 0
        die "${first[0]##*/} exited (status $first_rc) before publishing its port"
    fi
    (($(now_ms) < deadline)) || die "no port published within ${PORT_WAIT_S} s"
    sleep "$POLL_S"
done

second=("${second[@]//@PORT@/$port}")
second_rc=0
"${second[@]}" || second_rc=$?

if ((second_rc == 0)); then
    reap_first "$FIRST_EXIT_S"
else
    reap_first "$FAILED_EXIT_S"
fi

((second_rc == 0)) || die "${second[0]##*/} failed (status $second_rc)"
((first_rc == 0)) || die "${first[0]##*/} failed (status $first_rc)"
echo "run_pair: both sides succeeded (port $port)"
