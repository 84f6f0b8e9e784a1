#!/usr/bin/env bash
# Records the ABI of this checkout as the baseline of its version: abi/libshmkit-<version>.abi,
# the description ci/stages/25-abi.sh compares later builds with. Run it once per release, after
# the version in include/shmkit.h is set, and commit the file:
#   ci/abi/record.sh            (needs abigail-tools, cmake, ninja, gcc; installs what is missing)
# Environment: SHK_BUILD_ROOT (work folder under it: abi-record; default build/ci).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
shk_install_packages abigail-tools cmake ninja-build gcc
work=${SHK_BUILD_ROOT:-$SHK_ROOT/build/ci}/abi-record
tmp=$work/recorded.abi
version=$("$SHK_ROOT/ci/abi/dump.sh" "$SHK_ROOT" "$work" "$tmp")
out=$SHK_ROOT/abi/libshmkit-$version.abi
mkdir -p "$SHK_ROOT/abi"
cp "$tmp" "$out"
echo "recorded the ABI of shmkit $version ($(grep -o "soname='[^']*'" "$out")): $out"
echo "$(grep -c '<elf-symbol ' "$out") exported symbols; commit the file with the release"
