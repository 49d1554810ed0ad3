#!/usr/bin/env bash
# Two-process kvx demo on loopback: a server (the "prefill" side) and a
# client (the "decode" side) built as BUILD/tools/kvx-demo.
#
#   usage: scripts/demo.sh BUILD_DIR
#
# The server binds an ephemeral port and writes it to a port file; this
# script waits for that file (a handshake, not a fixed sleep), runs the
# client against it, then waits for the server to exit. Exits non-zero if
# either side fails or the server does not exit in time.
set -euo pipefail

PORT_WAIT_S=10     # deadline for the server to publish its port
SERVER_EXIT_S=30   # deadline for the server to exit after the client is done
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

echo "demo: starting server"
"$DEMO" server 127.0.0.1:0 --port-file "$TMP/port" &
SERVER_PID=$!

# Handshake: wait until the port file holds a port number.
PORT=
deadline=$(($(now_ms) + PORT_WAIT_S * 1000))
while :; do
    if [[ -s "$TMP/port" ]]; then
        content=$(<"$TMP/port")
        if [[ "$content" =~ ^[[:space:]]*([0-9]+)[[:space:]]*$ ]] &&
            ((BASH_REMATCH[1] > 0 && BASH_REMATCH[1] < 65536)); then
            PORT=${BASH_REMATCH[1]}
            break
        fi
    fi
    if ! alive "$SERVER_PID"; then
        rc=0
        wait "$SERVER_PID" || rc=$?
        SERVER_PID=
        die "server exited (status $rc) before publishing its port"
    fi
    (($(now_ms) < deadline)) || die "server did not publish a port within ${PORT_WAIT_S} s"
    sleep "$POLL_S"
done
echo "demo: server listening on 127.0.0.1:$PORT"

client_rc=0
"$DEMO" client 127.0.0.1 "127.0.0.1:$PORT" || client_rc=$?
if ((client_rc != 0)); then
    die "client failed (status $client_rc)"
fi
echo "demo: client done"

# Wait for the server to finish on its own.
deadline=$(($(now_ms) + SERVER_EXIT_S * 1000))
while alive "$SERVER_PID"; do
    (($(now_ms) < deadline)) || die "server still running ${SERVER_EXIT_S} s after the client finished; killing it"
    sleep "$POLL_S"
done
server_rc=0
wait "$SERVER_PID" || server_rc=$?
SERVER_PID=
((server_rc == 0)) || die "server failed (status $server_rc)"

echo "demo: OK (server and client both succeeded)"
