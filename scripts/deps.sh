#!/usr/bin/env bash
# Install the Debian 12 packages kvx needs to build, test and run its demo.
# Idempotent: does nothing (and says so) when every package is installed.
# Run as root; as another user it uses sudo when available.
set -euo pipefail

PACKAGES=(
    build-essential
    cmake
    pkg-config
    libcmocka-dev
    libssl-dev
    libxxhash-dev
    clang
    libclang-rt-14-dev
    clang-format
    gnuplot-nox
    doxygen
    iproute2
    procps
)

missing=()
for pkg in "${PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    if [[ "$status" != "install ok installed" ]]; then
        missing+=("$pkg")
    fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
    echo "deps.sh: all ${#PACKAGES[@]} packages already installed, nothing to do"
    exit 0
fi

echo "deps.sh: installing missing packages: ${missing[*]}"

sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1; then
        sudo_cmd=(sudo)
    else
        echo "deps.sh: not root and sudo is not available; as root, run:" >&2
        echo "  apt-get update && apt-get install -y --no-install-recommends ${missing[*]}" >&2
        exit 1
    fi
fi

"${sudo_cmd[@]}" apt-get update
"${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends "${missing[@]}"
echo "deps.sh: done"
