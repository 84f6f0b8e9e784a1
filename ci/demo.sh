#!/usr/bin/env bash
# Builds shmkit (installing what is missing on Debian 12) and runs the examples.
# Usage: ci/demo.sh   (ci/test.sh also runs the examples as tests, natively and under wine)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$SHK_ROOT"
shk_install_packages cmake ninja-build gcc libc6-dev
build=${SHK_DEMO_BUILD:-$SHK_ROOT/build/demo}
cmake -S "$SHK_ROOT" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSHK_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" -j "$SHK_JOBS" >/dev/null
bin="$build/bin"

shk_say "shm_hello: a child process fills a named segment, the parent reads it"
"$bin/shm_hello"

# ---- later parts add their demos below this line, one block each ----

shk_say "buf_tour: allocators, a view that keeps its buffer alive, consume with overlap refusal, delayed free"
"$bin/buf_tour"

shk_say "lens_demo: an instrumented program streams zones, frames, plots, heap events and logs; shmkit lens record writes a trace"
lens_trace="$build/lens_demo.json"
"$bin/shmkit" lens record lens-demo -o "$lens_trace" --wait 30 &
lens_recorder=$!
"$bin/lens_demo" lens-demo --frames 120 --wait-reader 30
wait "$lens_recorder"
echo "trace file: $lens_trace (open it at https://ui.perfetto.dev or chrome://tracing)"

shk_say "watch_demo: a struct and a 1 MiB pages buffer changed from two threads; change events with old -> new, store keys, previews, stats"
"$bin/watch_demo"
shk_say "watch_demo mprotect: the same through page protection, which also names the writing thread and instruction"
"$bin/watch_demo" mprotect

shk_say "find_prologues: shmkit's own library scanned for 55 48 89 E5 in 16 chunks on worker processes, checked against one thread"
"$bin/find_prologues"
