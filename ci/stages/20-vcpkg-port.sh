#!/usr/bin/env bash
# The vcpkg overlay port, exercised with stand-ins for vcpkg's helper functions: a static and a
# shared Linux build and a shared mingw build, each followed by a consumer built against the
# installed tree (CMake package; pkg-config for Linux), run natively or under wine. With the tools
# feature, the worker host is installed in tools/shmkit/ (never in bin/), and a shared build's
# consumer runs a plugin on it in one hosted call: natively with no setting (the library finds
# ../tools/shmkit), under wine through SHK_WORKER_HOST (the consumer runs with its own copy of the DLL).
# Like the real tool (checked against a 2026-08 vcpkg): RUNPATH $ORIGIN fix-up of installed Linux
# libraries and tools (patchelf), quoted -L/-I and a debug includedir one level up in the .pc files,
# tools/shmkit/ with the DLLs its programs import, and the obsolete-CRT check on installed DLLs
# (the port allows msvcrt.dll on MinGW triplets by policy; without it the check must refuse).
# The installed tool runs from its own folder, natively and under wine.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
work=${SHK_BUILD_ROOT:-$SHK_ROOT/build/ci}/vcpkg-port
shk_install_packages patchelf pkg-config binutils
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

port() { # port <triplet name> <linkage> <Linux|MinGW> [extra -D...]
  local name=$1 linkage=$2 system=$3
  shift 3
  cmake -DPORT=shmkit -DVCPKG_CMAKE_SYSTEM_NAME="$system" -DPORT_DIR="$SHK_ROOT/ports/shmkit" -DCURRENT_PACKAGES_DIR="$work/$name/pkg" \
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

worker_host_installed() { # <pkg> <suffix>: in tools/shmkit, not in bin/
  [ -x "$1/tools/shmkit/shmkit-worker$2" ] && [ ! -e "$1/bin/shmkit-worker$2" ]
}

hosted_call() { # <name> <plugin file>: the consumer's hosted call, the host found by the library
  env -u SHK_WORKER_HOST "$work/$1/consumer/hosted" "$work/$1/consumer/$2"
}


runpath() { readelf -d "$1" | sed -n 's/.*(RUNPATH).*\[\(.*\)\]/\1/p'; }
runpaths_fixed_up() { # <pkg> <tools?>: as vcpkg's patchelf step leaves them
  local pkg=$1 lib
  for lib in "$pkg"/lib/libshmkit.so.*.*.* "$pkg"/debug/lib/libshmkit.so.*.*.*; do
    [ -f "$lib" ] || continue
    echo "$lib: $(runpath "$lib")"
    [ "$(runpath "$lib")" = '$ORIGIN' ] || return 1
  done
  [ "$2" = 1 ] || return 0
  for tool in "$pkg"/tools/shmkit/*; do
    echo "$tool: $(runpath "$tool")"
    case $(runpath "$tool") in '$ORIGIN:$ORIGIN/../../lib'*) ;; *) return 1 ;; esac
  done
}

tool_runs_from_its_folder() { # <pkg>: no LD_LIBRARY_PATH, started from elsewhere
  (cd / && env -u LD_LIBRARY_PATH "$1/tools/shmkit/shmkit" --help)
}

pc_files_like_vcpkg() { # <pkg>: quoted -L/-I; the debug .pc points at the one include/
  local pkg=$1
  grep -F 'Libs: -L"${libdir}"' "$pkg/lib/pkgconfig/shmkit.pc" &&
    grep -F 'Cflags: -I"${includedir}"' "$pkg/lib/pkgconfig/shmkit.pc" &&
    grep -Fx 'includedir=${prefix}/../include' "$pkg/debug/lib/pkgconfig/shmkit.pc" &&
    [ -f "$(PKG_CONFIG_PATH="$pkg/debug/lib/pkgconfig" pkg-config --variable=includedir shmkit)/shmkit.h" ]
}

pkgconfig_consumer_in() { # <pkg> <pc folder> <out>: the relocated .pc file, used the static way
  local flags
  flags=$(PKG_CONFIG_PATH="$2" pkg-config --static --cflags --libs shmkit) &&
    echo "$flags" &&
    eval "cc -std=c11 '$SHK_ROOT/ci/consumer/main.c' -o '$3' $flags" && "$3"
}

check linux-static-port port linux-static static Linux
check linux-static-layout layout_is_vcpkg_like "$work/linux-static/pkg"
check linux-static-linkage-recorded linkage_recorded "$work/linux-static/pkg" 0
check linux-static-consumer consumer linux-static "$work/linux-static/pkg"
check linux-static-consumer-runs "$work/linux-static/consumer/consumer"
check linux-static-pkgconfig-consumer pkgconfig_consumer_in "$work/linux-static/pkg" \
  "$work/linux-static/pkg/lib/pkgconfig" "$work/linux-static/pc-consumer"
check linux-static-pc-files-like-vcpkg pc_files_like_vcpkg "$work/linux-static/pkg"
check linux-static-pkgconfig-debug-consumer pkgconfig_consumer_in "$work/linux-static/pkg" \
  "$work/linux-static/pkg/debug/lib/pkgconfig" "$work/linux-static/pc-consumer-debug"
tools=0
case ";$features;" in *";tools;"*) tools=1 ;; esac
check linux-static-runpaths-fixed-up runpaths_fixed_up "$work/linux-static/pkg" $tools
if [ $tools = 1 ]; then
  check linux-static-worker-host-in-tools worker_host_installed "$work/linux-static/pkg" ""
  check linux-static-tool-runs-from-its-folder tool_runs_from_its_folder "$work/linux-static/pkg"
fi

check linux-shared-port port linux-shared dynamic Linux
check linux-shared-runpaths-fixed-up runpaths_fixed_up "$work/linux-shared/pkg" $tools
check linux-shared-layout layout_is_vcpkg_like "$work/linux-shared/pkg"
check linux-shared-linkage-recorded linkage_recorded "$work/linux-shared/pkg" 1
check linux-shared-consumer consumer linux-shared "$work/linux-shared/pkg"
check linux-shared-consumer-runs "$work/linux-shared/consumer/consumer"
if [ $tools = 1 ]; then
  check linux-shared-worker-host-in-tools worker_host_installed "$work/linux-shared/pkg" ""
  check linux-shared-tool-runs-from-its-folder tool_runs_from_its_folder "$work/linux-shared/pkg"
  check linux-shared-hosted-call-finds-the-worker-host hosted_call linux-shared libconsumer_plugin.so
fi

if [ "${SHK_SKIP_WINDOWS:-0}" != 1 ]; then
  shk_wine_setup
  tc="$SHK_ROOT/ci/mingw-w64.cmake"
  check mingw-shared-port port mingw-shared dynamic MinGW -DVCPKG_CHAINLOAD_TOOLCHAIN_FILE="$tc"
  # The port allows msvcrt.dll by policy; the same check without the policy must refuse the DLL.
  crt_check_refuses_msvcrt() {
    ! cmake -DCURRENT_PACKAGES_DIR="$work/mingw-shared/pkg" -P "$SHK_ROOT/ci/vcpkg-standin/check_obsolete_crt.cmake" \
      >"$work/mingw-shared/crt-check.txt" 2>&1 &&
      cat "$work/mingw-shared/crt-check.txt" &&
      grep -q "DLLs that link with obsolete C RunTime (CRT) DLLs were installed" "$work/mingw-shared/crt-check.txt" &&
      grep -q "bin/shmkit.dll (msvcrt.dll)" "$work/mingw-shared/crt-check.txt"
  }
  check mingw-shared-obsolete-crt-check-refuses-msvcrt-without-the-policy crt_check_refuses_msvcrt
  check mingw-shared-layout layout_is_vcpkg_like "$work/mingw-shared/pkg"
  check mingw-shared-linkage-recorded linkage_recorded "$work/mingw-shared/pkg" 1
  check mingw-shared-consumer consumer mingw-shared "$work/mingw-shared/pkg" -DCMAKE_TOOLCHAIN_FILE="$tc" \
    -DCMAKE_FIND_ROOT_PATH="$work/mingw-shared/pkg"
  run_under_wine() {
    cp "$work/mingw-shared/pkg/bin/"*.dll "$work/mingw-shared/consumer/" &&
      wine "$work/mingw-shared/consumer/consumer.exe"
  }
  check mingw-shared-consumer-runs-under-wine run_under_wine
  if [ $tools = 1 ]; then
    check mingw-shared-worker-host-in-tools worker_host_installed "$work/mingw-shared/pkg" .exe
    check mingw-shared-dll-next-to-the-tool test -f "$work/mingw-shared/pkg/tools/shmkit/shmkit.dll"
    tool_under_wine_from_its_folder() { # started from another folder: Windows looks beside the .exe
      (cd / && wine "$work/mingw-shared/pkg/tools/shmkit/shmkit.exe" --help)
    }
    check mingw-shared-tool-runs-from-its-folder-under-wine tool_under_wine_from_its_folder
    hosted_under_wine() {
      SHK_WORKER_HOST=$(winepath -w "$work/mingw-shared/pkg/tools/shmkit/shmkit-worker.exe") \
        wine "$work/mingw-shared/consumer/hosted.exe" \
        "$(winepath -w "$work/mingw-shared/consumer/libconsumer_plugin.dll")"
    }
    check mingw-shared-hosted-call-under-wine hosted_under_wine
  fi
fi
echo "vcpkg-port: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
