#!/usr/bin/env bash
# Packaging check: install an already-built kvx tree into a temporary prefix,
# then build and run tests/package/main.c twice against it:
#   1. a CMake project using find_package(kvx) and kvx::kvx
#   2. a plain compiler call using `pkg-config --cflags --libs kvx`
#
#   usage: tests/package/check.sh BUILD_DIR
#
# The consumers use the compiler and sanitizers (KVX_SANITIZE) of BUILD_DIR,
# read from its CMakeCache.txt, so the check also works on a sanitized build.
set -euo pipefail

die() {
    echo "package check: $*" >&2
    exit 1
}

[[ $# -eq 1 ]] || die "usage: $0 BUILD_DIR"
BUILD=$(cd "$1" && pwd)
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=$BUILD/CMakeCache.txt
[[ -f "$CACHE" ]] || die "$BUILD is not a configured CMake build tree"

cache_get() {
    sed -n "s/^$1:[A-Z]*=//p" "$CACHE" | head -n1
}
CC_BIN=$(cache_get CMAKE_C_COMPILER)
[[ -n "$CC_BIN" ]] || CC_BIN=${CC:-cc}
SANITIZE=$(cache_get KVX_SANITIZE)
SAN_FLAGS=()
if [[ -n "$SANITIZE" ]]; then
    SAN_FLAGS=("-fsanitize=$SANITIZE" -fno-omit-frame-pointer)
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/kvx-package.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
PREFIX=$TMP/prefix

echo "== install $BUILD into $PREFIX"
cmake --install "$BUILD" --prefix "$PREFIX" >"$TMP/install.log" ||
    { cat "$TMP/install.log" >&2; die "cmake --install failed"; }

# Only the temporary prefix may satisfy the consumers.
unset LD_LIBRARY_PATH
export PKG_CONFIG_PATH=
export CMAKE_PREFIX_PATH=

echo "== consumer 1: find_package(kvx)"
cmake -S "$HERE" -B "$TMP/cmake-consumer" \
    -DCMAKE_BUILD_TYPE=Debug \
    -DCMAKE_C_COMPILER="$CC_BIN" \
    -DCMAKE_C_FLAGS="${SAN_FLAGS[*]}" \
    -DCMAKE_EXE_LINKER_FLAGS="${SAN_FLAGS[*]}" \
    -DCMAKE_PREFIX_PATH="$PREFIX" \
    -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF \
    -DCMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY=OFF
kvx_dir=$(sed -n 's/^kvx_DIR:[A-Z]*=//p' "$TMP/cmake-consumer/CMakeCache.txt")
[[ "$kvx_dir" == "$PREFIX"/* ]] || die "find_package(kvx) found '$kvx_dir', not the package under $PREFIX"
cmake --build "$TMP/cmake-consumer"
"$TMP/cmake-consumer/consumer_cmake" || die "CMake consumer failed"

echo "== consumer 2: pkg-config kvx"
pc_file=$(find "$PREFIX" -name kvx.pc -print -quit)
[[ -n "$pc_file" ]] || die "kvx.pc not installed under $PREFIX"
export PKG_CONFIG_PATH
PKG_CONFIG_PATH=$(dirname "$pc_file")
pkg-config --exists --print-errors kvx || die "pkg-config cannot use $pc_file"
read -r -a PC_FLAGS <<<"$(pkg-config --cflags --libs kvx)"
libdir=$(pkg-config --variable=libdir kvx)
[[ -e "$libdir/libkvx.so" ]] || die "pkg-config libdir '$libdir' holds no libkvx.so"
echo "pkg-config kvx $(pkg-config --modversion kvx): ${PC_FLAGS[*]}"
"$CC_BIN" -std=c11 -Wall -Wextra -Werror -Wstrict-prototypes "${SAN_FLAGS[@]}" \
    "$HERE/main.c" -o "$TMP/consumer_pkgconfig" "${PC_FLAGS[@]}" -Wl,-rpath,"$libdir"
"$TMP/consumer_pkgconfig" || die "pkg-config consumer failed"

echo "package check: OK"
