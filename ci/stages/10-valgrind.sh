#!/usr/bin/env bash
# Every test binary of the gcc build under valgrind's memcheck: no invalid access, no definite or
# indirect leak. Children started by a test (exec) run natively (no --trace-children). Left out:
# test_watch, whose mprotect backend works by taking real write faults, which memcheck reports
# as invalid writes (and valgrind does not know the userfaultfd system call); test_buf_fork,
# whose forked children stay under valgrind, are slow there, and rightly hold unreachable
# objects of the threads a fork leaves behind; test_mpi, where Open MPI 4.1 keeps thousands of
# its own allocations at exit (its leaks are suppressed by name in the ASan run instead, which
# runs it under mpiexec with tests/mpi/lsan-openmpi.supp and still checks shmkit's).
# Needs SHK_BUILD_GCC (or SHK_BUILD_DIR): a built Linux gcc tree.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
shk_install_packages valgrind
build=${SHK_BUILD_GCC:-${SHK_BUILD_DIR:-}}
work=${SHK_BUILD_ROOT:-$SHK_ROOT/build/ci}/valgrind
rm -rf "$work" && mkdir -p "$work"
passed=0 failed=0 skipped=0
for test in "$build"/bin/test_*; do
  name=$(basename "$test")
  case $name in test_watch | test_buf_fork | test_mpi) continue ;; esac
  timeout 600 valgrind -q --error-exitcode=99 --leak-check=full \
    --errors-for-leak-kinds=definite,indirect "$test" >"$work/$name.log" 2>&1
  rc=$?
  if [ "$rc" -eq 0 ]; then
    passed=$((passed + 1))
  elif [ "$rc" -eq 77 ]; then
    # Every test of the binary skipped (SHK_TEST_SKIPPED in tests/support/shk_test.h), saying
    # why: nothing of it ran under valgrind (test_buf_slab_sanitizer, which needs ASan's runtime).
    echo "skipped: $name under valgrind ($(grep -m1 -v '^\[' "$work/$name.log"))"
    skipped=$((skipped + 1))
  else
    echo "FAILED: $name under valgrind"
    grep -v '^\[' "$work/$name.log" | head -n 40
    failed=$((failed + 1))
  fi
done
if [ $((passed + failed)) -eq 0 ]; then
  echo "FAILED: no test binaries under '$build/bin' (set SHK_BUILD_GCC)"
  failed=1
fi
echo "valgrind: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
