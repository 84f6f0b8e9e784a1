#!/usr/bin/env bash
# The ABI check: builds libshmkit.so with debug information, describes its ABI with abidw (only
# the types of the installed public headers count) and every public type of the installed headers
# (a generated probe library), and compares both with the newest baselines in abi/ that are not
# newer than this version (ci/abi/compare.sh: removed or changed functions, variables, struct
# fields, enumerator values fail within one ABI generation; additions are printed and pass).
# Then the check's own tests: a build with a changed function signature, and doctored copies of
# the descriptions (a struct field removed, a function removed or added, an options struct grown
# at its end or cut, a wire struct field removed, an error value changed or added), each must get
# the verdict it deserves. Baselines: ci/abi/record.sh. Details: docs/abi.md.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
work=${SHK_BUILD_ROOT:-$SHK_ROOT/build/ci}/abi
rm -rf "$work/doctored" "$work/broken/src"
shk_stage_init "$work"
abi=$SHK_ROOT/ci/abi
cur=$work/current/out/libshmkit.abi types=$work/current/out/public-types.abi

shk_stage_check "install abigail-tools" shk_install_packages abigail-tools
dump_current() { "$abi/dump.sh" "$SHK_ROOT" "$work/current" "$work/current/out" >"$work/version"; }
shk_stage_check "build libshmkit.so with -g -Og and describe its ABI and public types (abidw)" dump_current
version=$(cat "$work/version" 2>/dev/null)
[ -s "$cur" ] && [ -s "$types" ] && [ -n "$version" ] || { echo "FAILED: no ABI description of this build"; shk_stage_finish; }

soname_names_the_generation() {
  local want="libshmkit.so.$("$abi/compare.sh" --generation "$version")"
  grep -o "soname='[^']*'" "$cur"
  grep -q "soname='$want'" "$cur"
}
shk_stage_check "the soname names the ABI generation of $version" soname_names_the_generation

# ---- against the baselines: the newest abi/<kind>-<version>.abi not newer than this version ----
against_baseline() { # <kind: libshmkit | public-types> <current description>
  local kind=$1 current=$2 f v baseline="" base_version=""
  for f in "$SHK_ROOT/abi/$kind"-*.abi; do
    [ -f "$f" ] || continue
    v=$(basename "$f" .abi)
    v=${v#"$kind"-}
    [ "$(printf '%s\n%s\n' "$v" "$version" | sort -V | tail -n 1)" = "$version" ] || continue
    if [ -z "$base_version" ] || [ "$(printf '%s\n%s\n' "$v" "$base_version" | sort -V | tail -n 1)" = "$v" ]; then
      baseline=$f base_version=$v
    fi
  done
  if [ -z "$baseline" ]; then
    echo "FAILED: no baseline abi/$kind-<version>.abi for $version or older (ci/abi/record.sh records one)"
    SHK_STAGE_FAILED=$((SHK_STAGE_FAILED + 1))
  # Printed in full, passing or not: additions are reported here.
  elif "$abi/compare.sh" "$baseline" "$base_version" "$current" "$version" 2>&1 | tee "$work/against-$kind.txt"; then
    echo "ok: $kind of $version against abi/$(basename "$baseline")"
    SHK_STAGE_PASSED=$((SHK_STAGE_PASSED + 1))
  else
    echo "FAILED: $kind of $version against abi/$(basename "$baseline")"
    SHK_STAGE_FAILED=$((SHK_STAGE_FAILED + 1))
  fi
}
against_baseline libshmkit "$cur"
against_baseline public-types "$types"

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
    "$abi/dump.sh" "$broken/src" "$broken" "$broken/out"
}
shk_stage_check "build a copy whose shk_strerror takes a long" build_broken_copy
# The library's own description may leave a function unlinked (ci/abi/types_probe.sh says why):
# the probes' description must catch the change whatever the library's shows.
shk_stage_check "a changed function signature fails (through the signature probes)" \
  expect 1 compare "$types" "$version" "$broken/out/public-types.abi" "$patch_release"

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
# Public types no function reaches (the lens wire records), and the error values.
wire=$("$abi/doctor.sh" structs '^shk_lens_wire_' <"$types" | grep -vxF -f <("$abi/doctor.sh" structs '^shk_' <"$cur") | head -n 1)
[ -n "$wire" ] || wire=$("$abi/doctor.sh" structs '^shk_' <"$types" | head -n 1) # every wire struct reached
wire_field=$(awk -v s="$wire" 'index($0, "<class-decl name='\''" s "'\''") && index($0, "size-in-bits") { p = 1 }
  p && match($0, /<var-decl name=.[A-Za-z_0-9]+/) { print substr($0, RSTART + 16, RLENGTH - 16); exit }' "$types")
error=$(grep -o "<enumerator name='SHK_E[A-Z_0-9]*' value='-[0-9]*'" "$types" | tail -n 1 | cut -d"'" -f2)
echo "public types: field '$wire_field' of $wire (reached by no library function), error value $error"
"$abi/doctor.sh" drop-member "$wire" "$wire_field" <"$types" >"$doc/wire-field-removed.abi"
"$abi/doctor.sh" set-enumerator "$error" 999 <"$types" >"$doc/error-value-changed.abi"
"$abi/doctor.sh" drop-enumerator "$error" <"$types" >"$doc/error-value-missing.abi"
doctored() { # a doctored copy that equals the original (or is empty) tests nothing
  local f
  for f in field-removed function-removed options-shorter wire-field-removed error-value-changed error-value-missing; do
    [ -s "$doc/$f.abi" ] && ! cmp -s "$cur" "$doc/$f.abi" && ! cmp -s "$types" "$doc/$f.abi" ||
      { echo "$f.abi: not doctored"; return 1; }
  done
}
shk_stage_check "the doctored copies differ from the description" doctored
shk_stage_check "a public struct field removed ($struct.$field) fails" \
  expect 1 compare "$cur" "$version" "$doc/field-removed.abi" "$patch_release"
shk_stage_check "the same removal passes when the ABI generation changes ($version -> $next_generation)" \
  expect 0 compare "$cur" "$version" "$doc/field-removed.abi" "$next_generation"
shk_stage_check "a function removed ($func) fails" \
  expect 1 compare "$cur" "$version" "$doc/function-removed.abi" "$patch_release"
addition_is_reported() { # <older description> <newer> <what the report says> <name>: passes, listed
  compare "$1" "$version" "$2" "$patch_release" | tee "$doc/added.txt" &&
    grep -q "$3" "$doc/added.txt" && grep -q "$4" "$doc/added.txt"
}
shk_stage_check "a function added ($func) passes and is reported" \
  addition_is_reported "$doc/function-removed.abi" "$cur" "Added function" "$func"
shk_stage_check "an options struct grown at its end ($options) passes" \
  expect 0 compare "$doc/options-shorter.abi" "$version" "$cur" "$patch_release"
shk_stage_check "an options struct cut at its end ($options) fails" \
  expect 1 compare "$cur" "$version" "$doc/options-shorter.abi" "$patch_release"
shk_stage_check "a public type's field removed ($wire.$wire_field) fails" \
  expect 1 compare "$types" "$version" "$doc/wire-field-removed.abi" "$patch_release"
shk_stage_check "an error value changed ($error) fails" \
  expect 1 compare "$types" "$version" "$doc/error-value-changed.abi" "$patch_release"
shk_stage_check "an error value added ($error) passes and is reported" \
  addition_is_reported "$doc/error-value-missing.abi" "$types" "enumerator insertion" "$error"
shk_stage_check "a missing description is an error, not a pass" \
  expect 2 compare "$cur" "$version" "$doc/none.abi" "$patch_release"
shk_stage_finish
