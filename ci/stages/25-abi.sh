#!/usr/bin/env bash
# The ABI check: builds libshmkit.so with debug information, describes its ABI with abidw (only
# the types of the installed public headers count) and compares it with the newest baseline in
# abi/ that is not newer than this version (ci/abi/compare.sh: removed or changed functions,
# variables, struct fields fail within one ABI generation; additions are printed and pass).
# Then the check's own tests: a build with a changed function signature, and doctored copies of
# the description (a struct field removed, a function removed or added, an options struct grown
# at its end or cut), each must get the verdict it deserves. Baselines: ci/abi/record.sh.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
work=${SHK_BUILD_ROOT:-$SHK_ROOT/build/ci}/abi
rm -rf "$work/doctored" "$work/broken/src"
shk_stage_init "$work"
abi=$SHK_ROOT/ci/abi
cur=$work/current.abi

shk_stage_check "install abigail-tools" shk_install_packages abigail-tools
dump_current() { "$abi/dump.sh" "$SHK_ROOT" "$work/current" "$cur" >"$work/version"; }
shk_stage_check "build libshmkit.so with -g -Og and describe its ABI (abidw)" dump_current
version=$(cat "$work/version" 2>/dev/null)
[ -s "$cur" ] && [ -n "$version" ] || { echo "FAILED: no ABI description of this build"; shk_stage_finish; }

soname_names_the_generation() {
  local want="libshmkit.so.$("$abi/compare.sh" --generation "$version")"
  grep -o "soname='[^']*'" "$cur"
  grep -q "soname='$want'" "$cur"
}
shk_stage_check "the soname names the ABI generation of $version" soname_names_the_generation

# ---- against the baseline: the newest abi/libshmkit-<version>.abi not newer than this version ----
baseline=""
base_version=""
for f in "$SHK_ROOT"/abi/libshmkit-*.abi; do
  [ -f "$f" ] || continue
  v=$(basename "$f" .abi)
  v=${v#libshmkit-}
  [ "$(printf '%s\n%s\n' "$v" "$version" | sort -V | tail -n 1)" = "$version" ] || continue
  if [ -z "$base_version" ] || [ "$(printf '%s\n%s\n' "$v" "$base_version" | sort -V | tail -n 1)" = "$v" ]; then
    baseline=$f base_version=$v
  fi
done
if [ -z "$baseline" ]; then
  echo "FAILED: no baseline abi/libshmkit-<version>.abi for $version or older (ci/abi/record.sh records one)"
  SHK_STAGE_FAILED=$((SHK_STAGE_FAILED + 1))
else
  # Printed in full, passing or not: additions are reported here.
  if "$abi/compare.sh" "$baseline" "$base_version" "$cur" "$version" 2>&1 | tee "$work/against-baseline.txt"; then
    echo "ok: the ABI of $version against abi/$(basename "$baseline")"
    SHK_STAGE_PASSED=$((SHK_STAGE_PASSED + 1))
  else
    echo "FAILED: the ABI of $version against abi/$(basename "$baseline")"
    SHK_STAGE_FAILED=$((SHK_STAGE_FAILED + 1))
  fi
fi

# ---- the check's own tests: each broken copy must be caught ----
expect() { # expect <exit status> <command...>: the command must end with exactly that status
  local want=$1 got
  shift
  "$@"
  got=$?
  echo "exit status $got, expected $want"
  [ "$got" -eq "$want" ]
}
compare() { "$abi/compare.sh" "$@"; }
next_generation=$(awk -F. '{ if ($1 == 0) print "0." $2 + 1 ".0"; else print $1 + 1 ".0.0" }' <<<"$version")
patch_release=$(awk -F. '{ print $1 "." $2 "." $3 + 1 }' <<<"$version")

# A real build of a changed copy: shk_strerror(int) becomes shk_strerror(long) in header and source.
broken=$work/broken
build_broken_copy() {
  mkdir -p "$broken/src" &&
    (cd "$SHK_ROOT" && git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$broken/src") &&
    sed -i 's/shk_strerror(int code)/shk_strerror(long code)/' "$broken/src/include/shmkit/error.h" \
      "$broken/src/src/common/error.c" &&
    grep -q 'shk_strerror(long code)' "$broken/src/include/shmkit/error.h" &&
    grep -q 'shk_strerror(long code)' "$broken/src/src/common/error.c" &&
    "$abi/dump.sh" "$broken/src" "$broken" "$broken/changed-signature.abi"
}
shk_stage_check "build a copy whose shk_strerror takes a long" build_broken_copy
shk_stage_check "a changed function signature fails" \
  expect 1 compare "$cur" "$version" "$broken/changed-signature.abi" "$patch_release"

doc=$work/doctored
mkdir -p "$doc"
struct=$("$abi/doctor.sh" structs '^shk_' <"$cur" | grep -v '_options$' | head -n 1)
field=$(awk -v s="$struct" 'index($0, "<class-decl name='\''" s "'\''") && index($0, "size-in-bits") { p = 1 }
  p && match($0, /<var-decl name=.[A-Za-z_0-9]+/) { print substr($0, RSTART + 16, RLENGTH - 16); exit }' "$cur")
options=$("$abi/doctor.sh" structs '_options$' <"$cur" | head -n 1)
func=$(grep -o "<elf-symbol name='shk_[a-z_]*'" "$cur" | head -n 1 | cut -d"'" -f2)
echo "doctored copies: field '$field' of $struct, options struct $options, function $func"
"$abi/doctor.sh" drop-member "$struct" "$field" <"$cur" >"$doc/field-removed.abi"
"$abi/doctor.sh" drop-function "$func" <"$cur" >"$doc/function-removed.abi"
"$abi/doctor.sh" drop-last-member "$options" <"$cur" >"$doc/options-shorter.abi"
doctored() { # a doctored copy that equals the original (or is empty) tests nothing
  local f
  for f in field-removed function-removed options-shorter; do
    [ -s "$doc/$f.abi" ] && ! cmp -s "$cur" "$doc/$f.abi" || { echo "$f.abi: not doctored"; return 1; }
  done
}
shk_stage_check "the doctored copies differ from the description" doctored
shk_stage_check "a public struct field removed ($struct.$field) fails" \
  expect 1 compare "$cur" "$version" "$doc/field-removed.abi" "$patch_release"
shk_stage_check "the same removal passes when the ABI generation changes ($version -> $next_generation)" \
  expect 0 compare "$cur" "$version" "$doc/field-removed.abi" "$next_generation"
shk_stage_check "a function removed ($func) fails" \
  expect 1 compare "$cur" "$version" "$doc/function-removed.abi" "$patch_release"
added_is_reported() {
  compare "$doc/function-removed.abi" "$version" "$cur" "$patch_release" | tee "$doc/added.txt" &&
    grep -q "Added function" "$doc/added.txt" && grep -q "$func" "$doc/added.txt"
}
shk_stage_check "a function added ($func) passes and is reported" added_is_reported
shk_stage_check "an options struct grown at its end ($options) passes" \
  expect 0 compare "$doc/options-shorter.abi" "$version" "$cur" "$patch_release"
shk_stage_check "an options struct cut at its end ($options) fails" \
  expect 1 compare "$cur" "$version" "$doc/options-shorter.abi" "$patch_release"
shk_stage_check "a missing description is an error, not a pass" \
  expect 2 compare "$cur" "$version" "$doc/none.abi" "$patch_release"
shk_stage_finish
