#!/usr/bin/env bash
# Two-process kvx demos on loopback, built as BUILD/tools/kvx-demo:
#
#   1. engine demo: a server (the "prefill" side) and a client (the "decode"
#      side) moving 64 MiB with one-sided READ and WRITE (engine.h);
#   2. KV demo: a prompt process with a 64-tensor paged fp16 KV cache and a
#      decoder process that links to it and pulls the scattered 128 blocks of
#      a 2,048-token request, checks every byte and compares with memcpy
#      (kv.h).
#
#   usage: scripts/demo.sh BUILD_DIR
#
# For each demo the listening side binds an ephemeral port and writes it to
# a port file; this script waits for that file (a handshake, not a fixed
# sleep), runs the other side against it, then waits for the listening side
# to exit. Exits non-zero if any process fails or a listening side does not
# exit in time.
set -euo pipefail

PORT_WAIT_S=20     # deadline for the server side to publish its port
SERVER_EXIT_S=30   # deadline for the server side to exit after the client side is done
POLL_S=0.05

die() {
    echo "demo: $*" >&2
    exit 1
}

[[ $# -eq 1 ]] || die "usage: $0 BUILD_DIR"
BUILD=$1
DEMO=$BUILD/tools/kvx-demo
[[ -x "$DEMO" ]] || die "$DEMO not found or not executable (build first: make build)"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/kvx-demo.XXXXXX")
SERVER_PID=

cleanup() {
    local rc=$?
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in 1 2 3 4 5 6 7 8 9 10; do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Monotonic-enough wall clock in milliseconds (bash 5).
now_ms() {
    local us=${EPOCHREALTIME//[.,]/}
    echo $((us / 1000))
}

alive() {
    kill -0 "$1" 2>/dev/null
}

# run_pair TITLE SERVER_MODE CLIENT_MODE: start "kvx-demo SERVER_MODE" on a
# free loopback port, wait for its port file, run "kvx-demo CLIENT_MODE"
# against it, then wait for the server side to exit by itself.
run_pair() {
    local title=$1 server_mode=$2 client_mode=$3
    local port_file="$TMP/$server_mode.port" port='' content deadline rc

    echo "demo: === $title ==="
    echo "demo: starting $server_mode"
    "$DEMO" "$server_mode" 127.0.0.1:0 --port-file "$port_file" &
    SERVER_PID=$!

    # Handshake: wait until the port file holds a port number.
    deadline=$(($(now_ms) + PORT_WAIT_S * 1000))
    while :; do
        if [[ -s "$port_file" ]]; then
            content=$(<"$port_file")
            if [[ "$content" =~ ^[[:space:]]*([0-9]+)[[:space:]]*$ ]] &&
                ((BASH_REMATCH[1] > 0 && BASH_REMATCH[1] < 65536)); then
                port=${BASH_REMATCH[1]}
                break
            fi
        fi
        if ! alive "$SERVER_PID"; then
            rc=0
            wait "$SERVER_PID" || rc=$?
            SERVER_PID=
            die "$server_mode exited (status $rc) before publishing its port"
        fi
        (($(now_ms) < deadline)) || die "$server_mode did not publish a port within ${PORT_WAIT_S} s"
        sleep "$POLL_S"
    done
    echo "demo: $server_mode listening on 127.0.0.1:$port"

    rc=0
    "$DEMO" "$client_mode" 127.0.0.1 "127.0.0.1:$port" || rc=$?
    ((rc == 0)) || die "$client_mode failed (status $rc)"
    echo "demo: $client_mode done"

    # Wait for the server side to finish on its own.
    deadline=$(($(now_ms) + SERVER_EXIT_S * 1000))
    while alive "$SERVER_PID"; do
        (($(now_ms) < deadline)) ||
            die "$server_mode still running ${SERVER_EXIT_S} s after $client_mode finished; killing it"
        sleep "$POLL_S"
    done
    rc=0
    wait "$SERVER_PID" || rc=$?
    SERVER_PID=
    ((rc == 0)) || die "$server_mode failed (status $rc)"
}

run_pair "engine demo: 64 MiB READ/WRITE between two engines" server client
run_pair "KV demo: a 2,048-token request's KV cache, prompt -> decoder" kv-prompt kv-decoder

echo "demo: OK (engine demo and KV demo: every process succeeded)"
