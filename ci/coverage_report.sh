# For the coverage stages (ci/stages/45-coverage.sh, 46-coverage-wine.sh): gcovr's reports and
# the summary from one coverage build, and the floor check. Source it; it defines functions only.

# coverage_report <build dir> <report dir> <goal lines %> <goal branches %> [gcovr args...]
# Collects the counters of <build dir> only (as gcovr's search path: by default it searches the
# whole source tree, other build folders included) with the extra gcovr args (filters, a gcov
# executable), then writes in <report dir>: coverage.json, coverage.txt (lines per file with the
# uncovered ones), branches.txt, html/index.html, uncalled.txt and summary.txt. No -j: gcovr 5.2
# hangs when a parallel gcov run fails. --gcov-ignore-parse-errors: a process that ends inside a
# function (a worker's _exit, a fork) can leave a count that gcov computes as negative (seen: one
# branch of process_state.c, "taken -2"); gcovr 5.2 would refuse the whole report for it.
coverage_report() {
  local build=$1 work=$2 goal_lines=$3 goal_branches=$4
  shift 4
  rm -rf "$work/html" && mkdir -p "$work/html"
  gcovr -r "$SHK_ROOT" "$@" --exclude-unreachable-branches --exclude-throw-branches \
    --gcov-ignore-parse-errors --object-directory "$build" --json "$work/coverage.json" "$build" &&
    gcovr -r "$SHK_ROOT" -a "$work/coverage.json" --txt "$work/coverage.txt" \
      --html-details "$work/html/index.html" &&
    gcovr -r "$SHK_ROOT" -a "$work/coverage.json" -b --txt "$work/branches.txt" &&
    python3 "$SHK_ROOT/ci/coverage_summary.py" "$work/coverage.json" --goal-lines "$goal_lines" \
      --goal-branches "$goal_branches" --uncalled "$work/uncalled.txt" >"$work/summary.txt"
}

# coverage_at_least <report dir> <floor lines %> <floor branches %>: the totals reach the floor.
coverage_at_least() {
  python3 "$SHK_ROOT/ci/coverage_summary.py" "$1/coverage.json" --quiet --floor-lines "$2" \
    --floor-branches "$3"
}
