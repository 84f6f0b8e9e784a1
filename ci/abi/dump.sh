#!/usr/bin/env bash
# Builds the shared library of a source tree with debug information, installs it and writes its
# ABI description (libabigail's abidw XML), limited to the types of the installed public headers.
#   ci/abi/dump.sh <source dir> <work dir> <output .abi>
# Prints the project version (project() in CMakeLists.txt, from the configured cache) on stdout.
set -euo pipefail
src=$1 work=$2 out=$3
build=$work/build prefix=$work/install
rm -rf "$prefix"
# A build folder configured from another source tree cannot be reused.
if [ -f "$build/CMakeCache.txt" ] &&
   ! grep -q "^CMAKE_HOME_DIRECTORY:INTERNAL=$(cd "$src" && pwd)\$" "$build/CMakeCache.txt"; then
  rm -rf "$build"
fi
# -Og -g: full DWARF for every public type, quicker to build than -O2.
cmake -S "$src" -B "$build" -G Ninja -DCMAKE_C_COMPILER="${CC:-gcc}" -DCMAKE_BUILD_TYPE=Debug \
  -DCMAKE_C_FLAGS_DEBUG="-g -Og" -DBUILD_SHARED_LIBS=ON -DCMAKE_INSTALL_PREFIX="$prefix" \
  -DCMAKE_INSTALL_LIBDIR=lib -DSHK_BUILD_TESTS=OFF -DSHK_BUILD_EXAMPLES=OFF -DSHK_BUILD_BENCH=OFF \
  -DSHK_BUILD_TOOLS=OFF >&2
cmake --build "$build" -j "${SHK_JOBS:-2}" --target shmkit >&2
cmake --install "$build" >&2
lib=$(find "$prefix/lib" -maxdepth 1 -type f -name 'libshmkit.so.*' | head -n 1)
[ -n "$lib" ] || { echo "no libshmkit.so.* installed under $prefix/lib" >&2; exit 1; }
mkdir -p "$(dirname "$out")"
# --headers-dir + --drop-private-types: only types declared in the installed headers count; the
# insides of opaque handles (defined in src/) stay out. Short locations and hashed type ids keep
# the file free of this machine's paths and stable between runs.
abidw --headers-dir "$prefix/include" --drop-private-types --no-corpus-path --short-locs \
  --no-comp-dir-path --type-id-style hash --out-file "$out" "$lib"
sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$build/CMakeCache.txt"
