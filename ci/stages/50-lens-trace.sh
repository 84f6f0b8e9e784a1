#!/usr/bin/env bash
# lens end to end: `shmkit lens record` records examples/lens_demo, and a real importer (Chrome
# DevTools' trace engine, npm @paulirish/trace_engine, in Node) must find the expected zones,
# threads and nesting; the tool's error paths; then the reader's libFuzzer target runs 20 s.
# Needs SHK_BUILD_GCC (or SHK_BUILD_DIR): a built Linux gcc tree; SHK_CACHE_DIR for npm.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
build=${SHK_BUILD_GCC:-${SHK_BUILD_DIR:-}}
work=${SHK_BUILD_ROOT:-$SHK_ROOT/build/ci}/lens-trace
mkdir -p "$work" "$SHK_CACHE_DIR"
passed=0 failed=0
check() { # check <title> <command...>
  local title=$1 log
  shift
  log="$work/$(echo "$title" | tr -c 'A-Za-z0-9\n' _).log"
  if "$@" >"$log" 2>&1; then echo "ok: $title"; passed=$((passed + 1))
  else echo "FAILED: $title"; tail -n 30 "$log"; failed=$((failed + 1)); fi
}
finish() { echo "$passed passed, $failed failed"; [ "$failed" -eq 0 ]; exit $?; }

bin=$build/bin
if [ -z "$build" ] || [ ! -x "$bin/shmkit" ] || [ ! -x "$bin/lens_demo" ]; then
  echo "FAILED: no built shmkit and lens_demo under '$build' (set SHK_BUILD_GCC)"
  failed=1
  finish
fi

# ---- the importer ----
engine_prefix=$SHK_CACHE_DIR/lens-trace-engine
engine=$engine_prefix/node_modules/@paulirish/trace_engine
install_engine() {
  command -v node >/dev/null || shk_install_packages nodejs npm
  [ -f "$engine/analyze-trace.mjs" ] && return 0
  npm install --silent --no-audit --no-fund --prefix "$engine_prefix" \
    --cache "$SHK_CACHE_DIR/npm-cache" @paulirish/trace_engine
}
check "install trace_engine" install_engine

# ---- record the demo and check the trace ----
seg=lens-ci-$$
trace=$work/lens_demo.json
record_demo() {
  rm -f "$trace"
  "$bin/shmkit" lens record "$seg" -o "$trace" --wait 30 &
  local recorder=$!
  "$bin/lens_demo" "$seg" --frames 60 --wait-reader 30 || { kill $recorder; return 1; }
  wait $recorder
}
check "record lens_demo" record_demo
check "trace parses with the expected zones, threads and nesting" \
  node "$SHK_ROOT/ci/lens_trace_check.mjs" "$trace" 60 "$engine"
echo "trace: $trace"

# Two producer processes on one lens: the recorder follows both, and each is its own process.
trace2=$work/lens_demo_two.json
record_two() {
  rm -f "$trace2"
  "$bin/shmkit" lens record "$seg-2" -o "$trace2" --wait 30 &
  local recorder=$!
  "$bin/lens_demo" "$seg-2" --frames 40 --wait-reader 30 >/dev/null &
  local first=$!
  "$bin/lens_demo" "$seg-2" --frames 40 --wait-reader 30 >/dev/null || { kill $recorder $first; return 1; }
  wait $first || { kill $recorder; return 1; }
  wait $recorder
}
check "record two lens_demo processes on one lens" record_two
check "two processes, each with its own tracks" \
  node "$SHK_ROOT/ci/lens_trace_check.mjs" "$trace2" 40 "$engine" 2

# One timeline (issue 14): examples/timeline_demo's own zones beside shmkit's tasks (chunks on
# the worker processes' tracks), watch events and buffers.
trace3=$work/timeline_demo.json
record_timeline() {
  rm -f "$trace3"
  "$bin/shmkit" lens record "$seg-t" -o "$trace3" --wait 30 --quiet &
  local recorder=$!
  "$bin/timeline_demo" "$seg-t" --wait-reader 30 || { kill $recorder; return 1; }
  wait $recorder
}
if [ -x "$bin/timeline_demo" ]; then
  check "record timeline_demo" record_timeline
  check "tasks, watch and buffers on one timeline beside the program's zones" \
    node "$SHK_ROOT/ci/lens_timeline_check.mjs" "$trace3" "$engine"
  echo "trace: $trace3"
else
  echo "FAILED: no timeline_demo under '$bin'"
  failed=$((failed + 1))
fi

# ---- the tool's other commands and its messages ----
summary_demo() {
  local out=$work/summary.txt
  "$bin/shmkit" lens summary "$seg-s" --wait 30 --duration 30 >"$out" &
  local reader=$!
  "$bin/lens_demo" "$seg-s" --frames 20 --wait-reader 30 >/dev/null || return 1
  wait $reader || return 1
  cat "$out"
  grep -q "top zones by total time" "$out" && grep -q "physics" "$out" && grep -q "120 zones" "$out"
}
check "summary lists the top zones" summary_demo
list_demo() {
  "$bin/lens_demo" "$seg-l" --frames 200 --wait-reader 30 >/dev/null &
  local demo=$!
  local tries=0
  until "$bin/shmkit" lens list | tee "$work/list.txt" | grep -q "$seg-l"; do
    tries=$((tries + 1))
    [ $tries -gt 100 ] && { kill $demo; return 1; }
    sleep 0.05
  done
  "$bin/shmkit" lens record "$seg-l" -o "$work/list.json" --quiet
  wait $demo
}
check "list shows a live lens segment" list_demo
missing_name() {
  ! "$bin/shmkit" lens record "no-such-lens-$$" -o "$work/none.json" 2>"$work/missing.err" &&
    grep -q "no lens segment named" "$work/missing.err"
}
check "a missing name gets a clear message" missing_name
check "help" bash -c "'$bin/shmkit' --help && '$bin/shmkit' lens record --help && '$bin/shmkit' lens summary --help && '$bin/shmkit' lens list --help"

# ---- the reader's fuzzer ----
fuzz_build=$work/fuzz
build_fuzzer() {
  command -v clang >/dev/null || return 1
  # A tree configured from another checkout cannot be reused.
  if [ -f "$fuzz_build/CMakeCache.txt" ] &&
     ! grep -q "^CMAKE_HOME_DIRECTORY:INTERNAL=$SHK_ROOT\$" "$fuzz_build/CMakeCache.txt"; then
    rm -rf "$fuzz_build"
  fi
  cmake -S "$SHK_ROOT" -B "$fuzz_build" -G Ninja -DCMAKE_C_COMPILER=clang -DSHK_BUILD_FUZZ=ON \
    -DSHK_BUILD_TESTS=OFF -DSHK_BUILD_EXAMPLES=OFF -DSHK_BUILD_BENCH=OFF &&
    cmake --build "$fuzz_build" -j "$SHK_JOBS" --target fuzz_lens_reader
}
check "build the lens reader fuzzer (clang)" build_fuzzer
run_fuzzer() {
  [ -x "$fuzz_build/bin/fuzz_lens_reader" ] || return 1
  mkdir -p "$SHK_CACHE_DIR/lens-fuzz-corpus"
  "$fuzz_build/bin/fuzz_lens_reader" -max_total_time=20 -max_len=6000 -timeout=10 \
    "$SHK_CACHE_DIR/lens-fuzz-corpus"
}
check "fuzz the lens reader for 20 s" run_fuzzer
finish
