#!/usr/bin/env bash
# Records the ABI of this checkout as the baseline of its version, the descriptions
# ci/stages/25-abi.sh compares later builds with:
#   abi/libshmkit-<version>.abi       the library (functions, variables, the types they reach)
#   abi/public-types-<version>.abi    every public type of the installed headers
# Run it once per release, after the version in include/shmkit.h is set, and commit both files:
#   ci/abi/record.sh            (needs abigail-tools, cmake, ninja, gcc; installs what is missing)
# Environment: SHK_BUILD_ROOT (work folder under it: abi-record; default build/ci).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
shk_install_packages abigail-tools cmake ninja-build gcc
work=${SHK_BUILD_ROOT:-$SHK_ROOT/build/ci}/abi-record
version=$("$SHK_ROOT/ci/abi/dump.sh" "$SHK_ROOT" "$work" "$work/out")
mkdir -p "$SHK_ROOT/abi"
cp "$work/out/libshmkit.abi" "$SHK_ROOT/abi/libshmkit-$version.abi"
cp "$work/out/public-types.abi" "$SHK_ROOT/abi/public-types-$version.abi"
lib=$SHK_ROOT/abi/libshmkit-$version.abi
echo "recorded the ABI of shmkit $version ($(grep -o "soname='[^']*'" "$lib")):"
echo "  $lib: $(grep -c '<elf-symbol ' "$lib") exported symbols"
echo "  $SHK_ROOT/abi/public-types-$version.abi: $(grep -c '<elf-symbol ' "$SHK_ROOT/abi/public-types-$version.abi") public types"
echo "commit both files with the release"
