#!/usr/bin/env bash
# Installs shmkit into temporary prefixes and builds consumer projects against them:
# CMake package and pkg-config on Linux (shared and static), the MPI component's CMake package
# where MPI is found, CMake package with mingw under wine.
# Usage: consumer.sh <work dir> <windows 0|1>. Writes "<passed> <failed>" to <work dir>/counts.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
work=$1
windows=${2:-1}
rm -rf "$work" && mkdir -p "$work"
passed=0
failed=0
step() { # step <name> <command...>
  local name=$1
  shift
  if "$@" >"$work/$name.log" 2>&1; then
    echo "ok: $name"
    passed=$((passed + 1))
  else
    echo "FAILED: $name"
    tail -n 30 "$work/$name.log"
    failed=$((failed + 1))
  fi
}

install_shmkit() { # <name> <prefix> [cmake args]
  local name=$1 prefix=$2
  shift 2
  cmake -S "$SHK_ROOT" -B "$work/$name-build" -G Ninja -DSHK_BUILD_TESTS=OFF -DSHK_BUILD_EXAMPLES=OFF \
    -DSHK_BUILD_BENCH=OFF -DCMAKE_INSTALL_PREFIX="$prefix" "$@" &&
    cmake --build "$work/$name-build" -j "$SHK_JOBS" && cmake --install "$work/$name-build"
}

cmake_consumer() { # <name> <prefix> [cmake args]
  local name=$1 prefix=$2
  shift 2
  cmake -S "$SHK_ROOT/ci/consumer" -B "$work/$name" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" "$@" &&
    cmake --build "$work/$name"
}

pkgconfig_consumer() { # <prefix> <static 0|1>
  local prefix=$1 static=$2 flags
  local libdir
  libdir=$(dirname "$(find "$prefix" -name shmkit.pc | head -n 1)")
  if [ "$static" = 1 ]; then flags=$(PKG_CONFIG_PATH=$libdir pkg-config --static --cflags --libs shmkit)
  else flags=$(PKG_CONFIG_PATH=$libdir pkg-config --cflags --libs shmkit); fi
  # shellcheck disable=SC2086
  cc -std=c11 "$SHK_ROOT/ci/consumer/main.c" -o "$work/pc-consumer-$static" $flags &&
    LD_LIBRARY_PATH="$(dirname "$(find "$prefix" -name 'libshmkit.so*' | head -n 1)" 2>/dev/null)" \
      "$work/pc-consumer-$static"
}

# A project that builds shmkit inside its own tree (add_subdirectory, as FetchContent does).
subdir_consumer() {
  mkdir -p "$work/subdir-src"
  cp "$SHK_ROOT/ci/consumer/main.c" "$work/subdir-src/"
  cat >"$work/subdir-src/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.20)
project(subdir_consumer LANGUAGES C)
add_subdirectory("$SHK_ROOT" shmkit)
add_executable(consumer main.c)
target_link_libraries(consumer PRIVATE shmkit::shmkit)
CMAKE
  cmake -S "$work/subdir-src" -B "$work/subdir" -G Ninja && cmake --build "$work/subdir" &&
    [ ! -e "$work/subdir/shmkit/tests" ] && "$work/subdir/consumer"
}
step linux-add-subdirectory-consumer subdir_consumer

step linux-shared-install install_shmkit shared "$work/prefix-shared"
step linux-shared-cmake-consumer cmake_consumer cmake-shared "$work/prefix-shared"
step linux-shared-cmake-consumer-runs "$work/cmake-shared/consumer"
step linux-shared-pkgconfig-consumer pkgconfig_consumer "$work/prefix-shared" 0

# The MPI component (find_package(shmkit COMPONENTS mpi) + shmkit::mpi), built and run under
# mpiexec with 2 ranks, where the installed package has it (MPI was found when shmkit was
# built) and mpiexec exists; skipped visibly otherwise.
mpi_consumer() { # <prefix>
  cmake -S "$SHK_ROOT/ci/consumer/mpi" -B "$work/cmake-mpi" -G Ninja -DCMAKE_PREFIX_PATH="$1" &&
    cmake --build "$work/cmake-mpi" &&
    mpiexec -n 2 --allow-run-as-root --oversubscribe --timeout 120 "$work/cmake-mpi/mpi_consumer"
}
if [ -e "$work/prefix-shared/include/shmkit/mpi.h" ] && command -v mpiexec >/dev/null; then
  step linux-shared-mpi-cmake-consumer mpi_consumer "$work/prefix-shared"
else
  echo "SKIPPED: linux-shared-mpi-cmake-consumer (shmkit was built without shmkit::mpi, or no mpiexec)"
fi
step linux-static-install install_shmkit static "$work/prefix-static" -DBUILD_SHARED_LIBS=OFF
step linux-static-cmake-consumer cmake_consumer cmake-static "$work/prefix-static"
step linux-static-cmake-consumer-runs "$work/cmake-static/consumer"
step linux-static-pkgconfig-consumer pkgconfig_consumer "$work/prefix-static" 1

if [ "$windows" = 1 ]; then
  shk_wine_setup
  tc="$SHK_ROOT/ci/mingw-w64.cmake"
  step mingw-shared-install install_shmkit mingw "$work/prefix-mingw" -DCMAKE_TOOLCHAIN_FILE="$tc"
  step mingw-cmake-consumer cmake_consumer cmake-mingw "$work/prefix-mingw" -DCMAKE_TOOLCHAIN_FILE="$tc" \
    -DCMAKE_FIND_ROOT_PATH="$work/prefix-mingw"
  # The DLL goes beside the program, as a user would ship it.
  run_mingw_consumer() {
    cp "$work/prefix-mingw/bin/"*.dll "$work/cmake-mingw/" && wine "$work/cmake-mingw/consumer.exe"
  }
  step mingw-cmake-consumer-runs-under-wine run_mingw_consumer
fi
echo "$passed $failed" > "$work/counts"
echo "consumers: $passed passed, $failed failed"
