#!/usr/bin/env bash
# Line and branch coverage of the Windows-only code (src/win32/ and the write-watch backend,
# which only Windows selects) by the test suite built with mingw-w64 and run under wine: a
# mingw gcc --coverage build (build/ci/coverage-wine), its tests under wine, whose processes
# write their .gcda files through wine's Z: drive into the build tree, then gcovr with Debian's
# x86_64-w64-mingw32-gcov. Prints the coverage of every such file and the totals; writes
#   build/ci/coverage-wine-report/coverage.txt   lines per file, with the uncovered line numbers
#   build/ci/coverage-wine-report/branches.txt   branches per file, with the lines of those missed
#   build/ci/coverage-wine-report/html/index.html
# Fails only when the totals fall below the floor (what the suite reached when it was set, less a
# little: wine's timing varies), or when the build or the report fails. Tests that fail under
# wine are run once more (as stage (d) does) and are that stage's business: this one reports
# them but measures what ran. See docs/coverage.md. Skipped (saying so) with SHK_SKIP_WINDOWS=1.
# Needs the source tree; SHK_BUILD_ROOT (default build/ci), SHK_JOBS, SHK_MINGW_PREFIX (built
# when missing), WINEPREFIX (a private prefix is set up when missing).
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/../coverage_report.sh"
root=${SHK_BUILD_ROOT:-$SHK_ROOT/build/ci}
build=$root/coverage-wine
work=$root/coverage-wine-report
shk_stage_init "$work"

if [ "${SHK_SKIP_WINDOWS:-0}" = 1 ]; then
  echo "SKIPPED: SHK_SKIP_WINDOWS=1: Windows-only files not measured"
  echo "0 passed, 0 failed, 1 skipped"
  exit 0
fi

# Measured 2026-12-04 (mingw-w64 gcc 12, Debian's wine, gcovr 5.2): 89.6% of lines, 67.7% of
# branches; see docs/coverage.md. The floors leave room for paths that depend on timing.
floor_lines=${SHK_WINE_COVERAGE_FLOOR_LINES:-88.0}
floor_branches=${SHK_WINE_COVERAGE_FLOOR_BRANCHES:-65.0}

shk_install_windows_tools && shk_install_packages gcovr python3 ||
  { echo "FAILED: cannot install mingw-w64, wine or gcovr"; echo "0 passed, 1 failed"; exit 1; }
if [ -z "${SHK_MINGW_PREFIX:-}" ]; then
  SHK_MINGW_PREFIX=$(shk_mingw_cmocka) || { echo "FAILED: no mingw CMocka"; echo "0 passed, 1 failed"; exit 1; }
  export SHK_MINGW_PREFIX
fi
if [ -z "${WINEPREFIX:-}" ]; then
  shk_wine_setup
  stop_wine=1
else
  export WINEDEBUG=${WINEDEBUG:--all} WINEDLLOVERRIDES=${WINEDLLOVERRIDES:-mscoree,mshtml=}
  [ -f "$WINEPREFIX/system.reg" ] || wineboot -i >/dev/null 2>&1 || true
  stop_wine=0
fi

build_tree() {
  if [ -f "$build/CMakeCache.txt" ] &&
     ! grep -q "^CMAKE_HOME_DIRECTORY:INTERNAL=$SHK_ROOT\$" "$build/CMakeCache.txt"; then
    rm -rf "$build"
  fi
  cmake -S "$SHK_ROOT" -B "$build" -G Ninja -DSHK_WERROR=ON -DCMAKE_BUILD_TYPE=Debug \
    -DCMAKE_TOOLCHAIN_FILE="$SHK_ROOT/ci/mingw-w64.cmake" \
    -DCMAKE_C_FLAGS="--coverage -fprofile-update=atomic -O0 -DSHK_COVERAGE_DUMP" \
    -DCMAKE_EXE_LINKER_FLAGS=--coverage -DCMAKE_SHARED_LINKER_FLAGS=--coverage \
    -DCMAKE_MODULE_LINKER_FLAGS=--coverage -DSHK_BUILD_BENCH=OFF -DSHK_BUILD_EXAMPLES=OFF &&
    cmake --build "$build" -j "$SHK_JOBS"
}
shk_stage_check "mingw build with --coverage" build_tree

# Every test of the Windows build under wine; counts start from zero.
run_tests() {
  find "$build" -name '*.gcda' -delete
  local t0=$SECONDS
  ctest --test-dir "$build" --output-on-failure -j "$SHK_JOBS" --repeat until-pass:2
  echo "tests under wine with coverage: $((SECONDS - t0)) s"
  return 0 # failures are stage (d)'s; what ran is measured
}
shk_stage_check "the tests under wine, with coverage" run_tests
grep -E '^tests under wine|tests passed' "$work/the_tests_under_wine__with_coverage.log"

report() {
  coverage_report "$build" "$work" 90 80 --gcov-executable x86_64-w64-mingw32-gcov \
    -f "$SHK_ROOT/src/win32/" -f "$SHK_ROOT/src/common/watch_backend_write_watch.c" \
    -f "$SHK_ROOT/tools/shm_names.c"
}
shk_stage_check "coverage report (gcovr, mingw gcov)" report
cat "$work/summary.txt" 2>/dev/null
echo "reports: $work/coverage.txt, branches.txt, uncalled.txt, html/index.html"

at_least_floor() { coverage_at_least "$work" "$floor_lines" "$floor_branches"; }
shk_stage_check "Windows-only totals at or above the floor ($floor_lines% lines, $floor_branches% branches)" at_least_floor
[ "$stop_wine" = 1 ] && shk_wine_stop
shk_stage_finish
