#!/usr/bin/env bash
# Runs every test of shmkit on this machine, installing what is missing (Debian 12):
#   (a) gcc build + tests        (b) clang ASan+UBSan build + tests   (c) clang TSan (label tsan)
#   (d) mingw-w64 build + tests under wine        (e) install + consumer projects (Linux, mingw)
#   (f) exported symbols of the .so and the .dll  (g) extra stages: ci/stages/*.sh, in name order
# Ends with one line "N passed, N failed, N skipped" and exits non-zero on any failure.
#
# Extra stage scripts get: SHK_ROOT (source), SHK_CACHE_DIR (kept between runs),
# SHK_BUILD_GCC / SHK_BUILD_ASAN / SHK_BUILD_MINGW (built trees), SHK_MINGW_PREFIX (mingw CMocka),
# WINEPREFIX/WINEDEBUG set; they print their own last line "N passed, N failed[, N skipped]".
# Environment: SHK_BUILD_ROOT (default build/ci), SHK_CACHE_DIR, SHK_JOBS, SHK_SKIP_WINDOWS=1.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$SHK_ROOT"
start=$(date +%s)

BUILD_ROOT=${SHK_BUILD_ROOT:-$SHK_ROOT/build/ci}
export SHK_BUILD_GCC=$BUILD_ROOT/gcc SHK_BUILD_ASAN=$BUILD_ROOT/asan SHK_BUILD_TSAN=$BUILD_ROOT/tsan
export SHK_BUILD_MINGW=$BUILD_ROOT/mingw
mkdir -p "$BUILD_ROOT" "$SHK_CACHE_DIR"

shk_say "installing what is missing"
shk_install_native_tools || { echo "cannot install the native tools"; exit 2; }
windows=1
[ "${SHK_SKIP_WINDOWS:-0}" = 1 ] && windows=0
if [ $windows = 1 ]; then
  shk_install_windows_tools || { echo "cannot install mingw-w64 / wine"; exit 2; }
  SHK_MINGW_PREFIX=$(shk_mingw_cmocka) || { echo "cannot build CMocka for mingw"; exit 2; }
  export SHK_MINGW_PREFIX
fi

configure_and_build() { # <stage> <dir> [cmake args...]
  local stage=$1 dir=$2
  shift 2
  if cmake -S "$SHK_ROOT" -B "$dir" -G Ninja -DSHK_WERROR=ON "$@" >"$dir.configure.log" 2>&1 &&
     cmake --build "$dir" -j "$SHK_JOBS" >"$dir.build.log" 2>&1; then
    return 0
  fi
  cat "$dir.configure.log" "$dir.build.log" 2>/dev/null | tail -n 60
  shk_count "$stage (build)" 0 1
  return 1
}

shk_say "(a) gcc build + tests"
configure_and_build gcc "$SHK_BUILD_GCC" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=gcc &&
  shk_ctest gcc "$SHK_BUILD_GCC"

shk_say "(b) clang AddressSanitizer + UndefinedBehaviorSanitizer build + tests"
san="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
configure_and_build asan "$SHK_BUILD_ASAN" -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang \
  -DCMAKE_C_FLAGS="$san" -DSHK_BUILD_BENCH=OFF &&
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 shk_ctest asan "$SHK_BUILD_ASAN"

shk_say "(c) clang ThreadSanitizer build + the tests labelled tsan (rings, locks, pools)"
configure_and_build tsan "$SHK_BUILD_TSAN" -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang \
  -DCMAKE_C_FLAGS="-fsanitize=thread" -DSHK_BUILD_BENCH=OFF -DSHK_BUILD_EXAMPLES=OFF &&
  TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" shk_ctest tsan "$SHK_BUILD_TSAN" -L tsan

if [ $windows = 1 ]; then
  shk_say "(d) mingw-w64 build + tests under wine"
  shk_wine_setup
  configure_and_build mingw "$SHK_BUILD_MINGW" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_TOOLCHAIN_FILE="$SHK_ROOT/ci/mingw-w64.cmake" &&
    # Under wine a test process now and then never ends after its last line (session 9:
    # example_timeline_demo in 3 of 5 CI runs, ending with the stage, 106-111 s; examples get 600 s
    # under wine); earlier (in three full runs on a 2-core machine: device_driver,
    # example_watch_demo, example_timeline_demo after printing everything, and buf_recycle's
    # exit-with-busy-threads child, 1 in 5); not reproduced in 25-30 runs of each on an idle
    # machine; cause unknown (session 3 saw 0 in 140).
    # A test that fails or times out runs once more; the stage says how many did, and the log keeps
    # every run. A test that fails twice still fails the stage.
    shk_ctest mingw "$SHK_BUILD_MINGW" --repeat until-pass:2
  retried=$(grep -cE '\*\*\*(Failed|Timeout|Exception)' "$SHK_BUILD_MINGW/ctest-output.log" 2>/dev/null || true)
  [ "${retried:-0}" = 0 ] ||
    echo "mingw: $retried test run(s) failed or timed out under wine and ran again (see ctest-output.log)"
fi

shk_say "(e) install + consumer projects"
bash "$SHK_ROOT/ci/consumer.sh" "$BUILD_ROOT/consumer" "$windows"
read -r c_pass c_fail < "$BUILD_ROOT/consumer/counts" || { c_pass=0; c_fail=1; }
shk_count consumers "$c_pass" "$c_fail"

shk_say "(f) exported symbols"
shk_check "symbols (.so)" bash "$SHK_ROOT/ci/check-exports.sh" "$SHK_BUILD_GCC"
[ $windows = 1 ] && shk_check "symbols (.dll)" bash "$SHK_ROOT/ci/check-exports.sh" "$SHK_BUILD_MINGW"
shk_check "no _WIN32 in src/common" bash -c "! grep -rnE '^\s*#\s*if.*(_WIN32|__linux__|__APPLE__)' '$SHK_ROOT/src/common'"

for stage in "$SHK_ROOT"/ci/stages/*.sh; do
  [ -f "$stage" ] || continue
  name=$(basename "$stage" .sh)
  shk_say "(g) $name"
  log="$BUILD_ROOT/$name.log"
  bash "$stage" 2>&1 | tee "$log"
  line=$(grep -E '^([A-Za-z-]+: )?[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
  if [ -n "$line" ]; then
    p=$(echo "$line" | sed -E 's/^([A-Za-z-]+: )?([0-9]+) passed.*/\2/')
    f=$(echo "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')
    s=0
    [[ $line =~ ([0-9]+)\ skipped ]] && s=${BASH_REMATCH[1]}
    shk_count "$name" "$p" "$f" "$s"
  else
    shk_count "$name" 0 1
  fi
done

[ $windows = 1 ] && shk_wine_stop
echo "wall time: $(( $(date +%s) - start )) s"
shk_summary
