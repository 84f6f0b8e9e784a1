#!/usr/bin/env bash
# The vcpkg overlay port, exercised with stand-ins for vcpkg's helper functions: a static and a
# shared Linux build and a shared mingw build, each followed by a consumer built against the
# installed tree (CMake package; pkg-config for Linux), run natively or under wine.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
work=${SHK_BUILD_ROOT:-$SHK_ROOT/build/ci}/vcpkg-port
rm -rf "$work" && mkdir -p "$work"
passed=0 failed=0
check() { # check <name> <command...>
  local name=$1
  shift
  if "$@" >"$work/$name.log" 2>&1; then echo "ok: $name"; passed=$((passed + 1))
  else echo "FAILED: $name"; tail -n 25 "$work/$name.log"; failed=$((failed + 1)); fi
}

features=core
[ -f "$SHK_ROOT/tools/CMakeLists.txt" ] && features="core;tools"

port() { # port <triplet name> <linkage> [extra -D...]
  local name=$1 linkage=$2
  shift 2
  cmake -DPORT=shmkit -DPORT_DIR="$SHK_ROOT/ports/shmkit" -DCURRENT_PACKAGES_DIR="$work/$name/pkg" \
    -DCURRENT_BUILDTREES_DIR="$work/$name/buildtrees" -DVCPKG_LIBRARY_LINKAGE="$linkage" \
    -DFEATURES="$features" "$@" -P "$SHK_ROOT/ci/vcpkg-standin/run_port.cmake"
}

layout_is_vcpkg_like() { # the files vcpkg's post-build checks look at
  local pkg=$1
  [ -f "$pkg/share/shmkit/shmkitConfig.cmake" ] && [ -f "$pkg/share/shmkit/copyright" ] &&
    [ -f "$pkg/share/shmkit/usage" ] && [ -f "$pkg/include/shmkit.h" ] &&
    [ -f "$pkg/include/shmkit/config.h" ] && [ ! -e "$pkg/debug/include" ] && [ ! -e "$pkg/lib/cmake" ]
}

linkage_recorded() { # <pkg> <0|1>: the installed config.h tells consumers how to link
  grep -q "define SHK_SHARED_LIBRARY $2" "$1/include/shmkit/config.h"
}

consumer() { # consumer <name> <pkg> [cmake args]
  local name=$1 pkg=$2
  shift 2
  cmake -S "$SHK_ROOT/ci/consumer" -B "$work/$name/consumer" -G Ninja -DCMAKE_PREFIX_PATH="$pkg" "$@" &&
    cmake --build "$work/$name/consumer"
}

pkgconfig_consumer() { # <pkg>: the relocated .pc file, used the static way
  local flags
  flags=$(PKG_CONFIG_PATH="$1/lib/pkgconfig" pkg-config --static --cflags --libs shmkit) &&
    # shellcheck disable=SC2086
    cc -std=c11 "$SHK_ROOT/ci/consumer/main.c" -o "$work/linux-static/pc-consumer" $flags &&
    "$work/linux-static/pc-consumer"
}

check linux-static-port port linux-static static
check linux-static-layout layout_is_vcpkg_like "$work/linux-static/pkg"
check linux-static-linkage-recorded linkage_recorded "$work/linux-static/pkg" 0
check linux-static-consumer consumer linux-static "$work/linux-static/pkg"
check linux-static-consumer-runs "$work/linux-static/consumer/consumer"
check linux-static-pkgconfig-consumer pkgconfig_consumer "$work/linux-static/pkg"

check linux-shared-port port linux-shared dynamic
check linux-shared-layout layout_is_vcpkg_like "$work/linux-shared/pkg"
check linux-shared-linkage-recorded linkage_recorded "$work/linux-shared/pkg" 1
check linux-shared-consumer consumer linux-shared "$work/linux-shared/pkg"
check linux-shared-consumer-runs "$work/linux-shared/consumer/consumer"

if [ "${SHK_SKIP_WINDOWS:-0}" != 1 ]; then
  shk_wine_setup
  tc="$SHK_ROOT/ci/mingw-w64.cmake"
  check mingw-shared-port port mingw-shared dynamic -DVCPKG_CHAINLOAD_TOOLCHAIN_FILE="$tc"
  check mingw-shared-layout layout_is_vcpkg_like "$work/mingw-shared/pkg"
  check mingw-shared-linkage-recorded linkage_recorded "$work/mingw-shared/pkg" 1
  check mingw-shared-consumer consumer mingw-shared "$work/mingw-shared/pkg" -DCMAKE_TOOLCHAIN_FILE="$tc" \
    -DCMAKE_FIND_ROOT_PATH="$work/mingw-shared/pkg"
  run_under_wine() {
    cp "$work/mingw-shared/pkg/bin/"*.dll "$work/mingw-shared/consumer/" &&
      wine "$work/mingw-shared/consumer/consumer.exe"
  }
  check mingw-shared-consumer-runs-under-wine run_under_wine
fi
echo "vcpkg-port: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
