#!/usr/bin/env bash
# The ABI policy: compares two ABI descriptions (abidw XML) with abidiff and decides.
#   ci/abi/compare.sh <baseline .abi> <baseline version> <current .abi> <current version>
# Prints abidiff's full report (additions included), then one verdict line. Exit status:
#   0  no change, or additions only (new functions, variables, enumerators, options fields
#      appended as the options rule allows: see shmkit.abignore), or an incompatible change across
#      an ABI generation change (allowed, reported);
#   1  an incompatible change (anything removed or changed) within one ABI generation;
#   2  abidiff could not compare (a missing or unreadable file, a usage error).
# The ABI generation is the major version, or 0.MINOR before 1.0 (semantic versioning lets every
# 0.x minor release break); it is also the soname's version (CMakeLists.txt).
#   ci/abi/compare.sh --generation <version>   prints the ABI generation of a version.
set -uo pipefail
generation() { # <major.minor.patch> -> the major version, or 0.MINOR before 1.0
  local major minor
  IFS=. read -r major minor _ <<<"$1"
  if [ "${major:-0}" = 0 ]; then echo "0.${minor:-0}"; else echo "$major"; fi
}
if [ "${1:-}" = --generation ] && [ $# -eq 2 ]; then generation "$2"; exit 0; fi
[ $# -eq 4 ] || { echo "usage: $0 <baseline.abi> <baseline version> <current.abi> <current version>" >&2; exit 2; }
base=$1 base_version=$2 cur=$3 cur_version=$4
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
suppr=(--suppressions "$here/shmkit.abignore")

echo "abidiff: $base ($base_version) -> $cur ($cur_version)"
abidiff "${suppr[@]}" "$base" "$cur"
report=$?
if [ $((report & 3)) -ne 0 ]; then echo "ABI: abidiff failed (exit $report)"; exit 2; fi
# Changes abidiff calls harmless (an enumerator added, ...) are left out above: list them too.
if ! abidiff "${suppr[@]}" --harmless "$base" "$cur" >"${TMPDIR:-/tmp}/shk-abi-harmless.$$" 2>&1; then
  echo "harmless changes (compatible):"
  cat "${TMPDIR:-/tmp}/shk-abi-harmless.$$"
  [ "$report" -eq 0 ] && report=4
fi
rm -f "${TMPDIR:-/tmp}/shk-abi-harmless.$$"
# Verdict with additions filtered out: what is left is removed or changed.
abidiff "${suppr[@]}" --no-added-syms "$base" "$cur" >/dev/null 2>&1
verdict=$?
if [ $((verdict & 3)) -ne 0 ]; then echo "ABI: abidiff failed (exit $verdict)"; exit 2; fi
if [ "$verdict" -eq 0 ]; then
  if [ "$report" -eq 0 ]; then echo "ABI: unchanged (beyond what shmkit.abignore allows)"; else echo "ABI: compatible (additions or harmless changes only, listed above)"; fi
  exit 0
fi
from=$(generation "$base_version") to=$(generation "$cur_version")
if [ "$from" != "$to" ]; then
  echo "ABI: incompatible changes (above), allowed: the ABI generation changed from $from to $to"
  exit 0
fi
echo "ABI: INCOMPATIBLE changes (above) within ABI generation $to ($base_version -> $cur_version):"
echo "     undo them, or raise the version (major, or minor before 1.0) and re-record (ci/abi/record.sh)"
exit 1
