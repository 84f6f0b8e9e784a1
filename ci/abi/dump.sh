#!/usr/bin/env bash
# Builds the shared library of a source tree with debug information, installs it and writes two
# ABI descriptions (libabigail's abidw XML) into an output folder:
#   libshmkit.abi      the library: exported functions and variables and the types they reach,
#                      limited to the types the installed public headers define;
#   public-types.abi   every complete public type of the installed headers, reached or not
#                      (through a generated probe library: ci/abi/types_probe.sh).
#   ci/abi/dump.sh <source dir> <work dir> <output folder>
# Prints the project version (project() in CMakeLists.txt, from the configured cache) on stdout.
set -euo pipefail
src=$1 work=$2 out=$3
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
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
  -DSHK_BUILD_TOOLS=OFF -DSHK_WITH_MPI=OFF >&2 # the MPI component is a library of its own
cmake --build "$build" -j "${SHK_JOBS:-2}" --target shmkit >&2
cmake --install "$build" >&2
lib=$(find "$prefix/lib" -maxdepth 1 -type f -name 'libshmkit.so.*' | head -n 1)
[ -n "$lib" ] || { echo "no libshmkit.so.* installed under $prefix/lib" >&2; exit 1; }
"$here/types_probe.sh" "$prefix/include" "$lib" >"$work/types_probe.c"
"${CC:-gcc}" -std=c11 -g -Og -shared -fPIC -Werror=implicit-function-declaration -I"$prefix/include" "$work/types_probe.c" \
  -o "$work/libshmkit_public_types.so"
mkdir -p "$out"
# --headers-dir + --drop-private-types: only types declared in the installed headers count; the
# insides of opaque handles (defined in src/) stay out. Short locations and hashed type ids keep
# the files free of this machine's paths and stable between runs.
describe() { # <elf file> <output>
  abidw --headers-dir "$prefix/include" --drop-private-types --no-corpus-path --short-locs \
    --no-comp-dir-path --type-id-style hash --out-file "$2" "$1"
}
describe "$lib" "$out/libshmkit.abi"
describe "$work/libshmkit_public_types.so" "$out/public-types.abi"
sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$build/CMakeCache.txt"
