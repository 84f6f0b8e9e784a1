#!/usr/bin/env bash
# Checks that the shared library of a build exports only shk_ symbols (the .so or the .dll).
# Usage: check-exports.sh <build dir>
set -uo pipefail
dir=$1
so=$(find "$dir" -maxdepth 2 -name 'libshmkit.so.*.*' | head -n 1)
dll=$(find "$dir" -maxdepth 2 -name '*shmkit*.dll' | head -n 1)
if [ -n "$so" ]; then
  names=$(nm -D --defined-only "$so" | awk '{print $3}')
elif [ -n "$dll" ]; then
  # The export table of a PE file: the lines after "[Ordinal/Name Pointer] Table".
  names=$(x86_64-w64-mingw32-objdump -p "$dll" | awk '/\[Ordinal\/Name Pointer\] Table/ {on = 1; next}
          on && /^$/ {on = 0} on {sub(/.*\] /, ""); print}')
else
  echo "no shared library in $dir"
  exit 1
fi
count=$(echo "$names" | grep -c .)
bad=$(echo "$names" | grep -v '^shk_' | grep -v '^$' || true)
bad_internal=$(echo "$names" | grep '^shk__' || true)
if [ -n "$bad" ] || [ -n "$bad_internal" ] || [ "$count" -eq 0 ]; then
  echo "unexpected exports in ${so:-$dll}:"
  echo "$bad" "$bad_internal"
  exit 1
fi
echo "${so:-$dll}: $count exported symbols, all shk_"
