#!/usr/bin/env bash
# One run on a many-core machine, with a GPU where there is one (no network needed): builds
# shmkit (Release) with its tests when CMocka is found (the system's, or a static one carried in
# .device/cmocka by the session that sends this tree), runs the whole test suite on this
# machine's cores and limits, the CUDA device tests verbosely, the find_prologues demo, bench_task
# for N = 1, 2, 4, 8, 16 workers (as far as the cores go), bench_lens and bench_watch.
# Everything goes to stdout and to files under $OUT (default build/device-out): device_run.log
# (all of it), ctest.txt, bench_N<n>.txt, bench_overhead.txt, bench_copy.txt, bench_lens.txt,
# bench_watch.txt, bench_buf.txt, summary.txt.
# Keeps to a time budget (default 330 s of its own, build included): a step that would start
# after the budget is skipped and named as skipped.
# Usage: bench/device_run.sh [scan MiB (1024)] [hash MiB (256)] [best of (4)]
#   a small try: SHK_DEVICE_BUDGET_S=120 bench/device_run.sh 64 16 2
#   SHK_DEVICE_QUICK=1: the build, the test suite, the fixed costs (bench_task --parts a) and
#   bench_lens three times; no scan tables, copy, watch or buf figures.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mib=${1:-1024}
hash_mib=${2:-256}
reps=${3:-4}
budget=${SHK_DEVICE_BUDGET_S:-330}
out=${OUT:-$root/build/device-out}
build=${SHK_DEVICE_BUILD:-$root/build/device}
mkdir -p "$out"
# Everything below also goes to device_run.log: the script runs itself again through tee.
if [ -z "${SHK_DEVICE_LOGGED:-}" ]; then
  SHK_DEVICE_LOGGED=1 bash "${BASH_SOURCE[0]}" "$@" 2>&1 | tee "$out/device_run.log"
  exit "${PIPESTATUS[0]}"
fi
SECONDS=0

say() { printf '\n==> [%3ss] %s\n' "$SECONDS" "$*"; }
# Runs a step unless the budget is spent: step SECONDS_IT_MAY_TAKE NAME COMMAND...
step() {
  local need=$1 name=$2
  shift 2
  if [ $((SECONDS + need)) -gt "$budget" ]; then
    say "SKIPPED (time budget): $name"
    echo "SKIPPED: $name" >>"$out/summary.txt"
    return 0
  fi
  say "$name"
  timeout "$need" "$@"
  local rc=$?
  [ $rc -ne 0 ] && echo "FAILED ($rc): $name" | tee -a "$out/summary.txt"
  return 0
}

: >"$out/summary.txt"
say "machine"
uname -srm
nproc
grep -m1 'model name' /proc/cpuinfo || true
free -g | head -2
cmake --version | head -1
gcc --version | head -1
for d in /usr/local/cuda/bin /usr/local/cuda-*/bin; do
  [ -x "$d/nvcc" ] && case ":$PATH:" in *":$d:"*) ;; *) PATH=$PATH:$d ;; esac
done
command -v nvcc >/dev/null && nvcc --version | tail -1
command -v nvidia-smi >/dev/null && nvidia-smi -L
export PATH

say "configure (Release)"
gen=()
command -v ninja >/dev/null && gen=(-G Ninja)
# The CUDA tests need CMocka; without it, only the library, the examples and the benchmarks.
tests=OFF
prefix=()
for inc in /usr/include /usr/local/include; do [ -f "$inc/cmocka.h" ] && tests=ON; done
if [ $tests = OFF ] && [ -f "$root/.device/cmocka/include/cmocka.h" ]; then
  tests=ON
  prefix=(-DCMAKE_PREFIX_PATH="$root/.device/cmocka")
fi
targets=(all)
cmake -S "$root" -B "$build" "${gen[@]}" "${prefix[@]}" -DCMAKE_BUILD_TYPE=Release -DSHK_BUILD_TESTS=$tests \
  -DSHK_BUILD_EXAMPLES=ON -DSHK_BUILD_BENCH=ON >"$out/configure.log" 2>&1 ||
  { tail -n 30 "$out/configure.log"; echo "FAILED: configure" | tee -a "$out/summary.txt"; exit 1; }
grep -E 'Device mapping|CMocka' "$out/configure.log"
echo "tests: $tests"

say "build ${targets[*]}"
cmake --build "$build" -j "$(nproc)" --target "${targets[@]}" >"$out/build.log" 2>&1 ||
  { tail -n 40 "$out/build.log"; echo "FAILED: build" | tee -a "$out/summary.txt"; exit 1; }
bin=$build/bin

if [ "$tests" = ON ]; then
  step 90 "device tests (CUDA when found) and the parallel copy-in's tests" \
    ctest --test-dir "$build" -R '^(buf_device|device_driver|task_copy)$' -V
  # Every test on this machine's cores and limits (vm.max_map_count, userfaultfd sysctl, ...).
  sysctl vm.max_map_count vm.unprivileged_userfaultfd kernel.yama.ptrace_scope 2>/dev/null
  step 240 "the whole test suite, ctest -j $(nproc)" \
    bash -c "ctest --test-dir '$build' -j '$(nproc)' --output-on-failure --timeout 200 > '$out/ctest.txt' 2>&1; rc=\$?; tail -n 40 '$out/ctest.txt'; exit \$rc"
else
  say "device tests not built: CMocka (cmocka.h) not found"
  echo "NOT RUN: device tests (no CMocka)" >>"$out/summary.txt"
fi

# The demo's input: the largest installed binary among a few usual places (as ci/demo.sh).
input=$(ls -SL /usr/lib/x86_64-linux-gnu/libLLVM*.so* /usr/lib/jvm/*/lib/server/libjvm.so \
  /usr/libexec/gcc/x86_64-linux-gnu/*/cc1* /usr/lib/x86_64-linux-gnu/libclang-*.so* \
  /usr/local/bin/* /usr/bin/* 2>/dev/null | head -n 1 || true)
[ -n "$input" ] && step 30 "find_prologues $input" "$bin/find_prologues" "$input"
step 30 "find_prologues --generate 512" "$bin/find_prologues" --generate 512

# The scan and hash table, one N at a time (each its own process and files): 16 and 1 first,
# where the copy-in goals are (>= 0.7 of bare threads at 16, >= 1.0x one thread at 1).
cpus=$(nproc)
ns=()
for n in 16 1 2 4 8; do [ "$n" -le "$cpus" ] && ns+=("$n"); done
quick=${SHK_DEVICE_QUICK:-0}
scan_table() { # scan_table N
  step 120 "bench_task --workers $1 --parts b ($mib MiB scan, $hash_mib MiB hash, best of $reps)" \
    bash -c "'$bin/bench_task' --workers $1 --parts b --mib $mib --hash-mib $hash_mib --reps $reps | tee '$out/bench_N$1.txt'"
}
# The two N of the copy-in goals first, then the lens figures (one run, default 1 MiB rings) and
# the fixed costs, then the other N, so that a tight budget drops the least wanted.
[ "$quick" = 1 ] || for n in "${ns[@]:0:2}"; do scan_table "$n"; done
lens_runs=1
[ "$quick" = 1 ] && lens_runs=3
for ((run = 1; run <= lens_runs; run++)); do
  step 45 "bench_lens (1 M zones per run), run $run of $lens_runs" \
    bash -c "'$bin/bench_lens' 1000000 | tee -a '$out/bench_lens.txt'"
done
step 90 "bench_task --parts a (fixed overhead per call, N = 1, 2, 4, 8, 16)" \
  bash -c "'$bin/bench_task' --parts a | tee '$out/bench_overhead.txt'"
if [ "$quick" = 1 ]; then
  ns=()
  budget=$SECONDS # nothing more: the steps below say they were skipped
fi
for n in "${ns[@]:2}"; do scan_table "$n"; done
step 60 "bench_task --parts c (copy-in vs memcpy, 64 MiB)" \
  bash -c "'$bin/bench_task' --parts c --workers ${ns[0]:-$cpus} | tee '$out/bench_copy.txt'"
step 45 "bench_watch" bash -c "'$bin/bench_watch' | tee '$out/bench_watch.txt'"
step 45 "bench_buf" bash -c "'$bin/bench_buf' | tee '$out/bench_buf.txt'"

say "summary"
{
  echo "scan/hash rows (N, work, one thread, bare, pool in segment, pool copy-in, thread pool, first copy-in call):"
  for n in "${ns[@]}"; do grep -E '^ +[0-9]+ (prologue|byte)' "$out/bench_N$n.txt" 2>/dev/null; done
  grep -E '^ +[0-9]+ +[0-9.]+ us' "$out/bench_overhead.txt" 2>/dev/null
  grep -E 'repeated calls|fresh pages' "$out/bench_copy.txt" 2>/dev/null
  grep -E 'tests passed|tests failed' "$out/ctest.txt" 2>/dev/null
  grep -E 'ring|lost|reader' "$out/bench_lens.txt" 2>/dev/null
  echo "total ${SECONDS}s"
} >>"$out/summary.txt"
cat "$out/summary.txt"
