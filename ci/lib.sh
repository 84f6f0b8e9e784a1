# Shared by ci/test.sh and ci/demo.sh: installing what is missing, the mingw CMocka cache,
# wine set-up, and the tally of passed and failed checks. Source it; it defines functions only.

SHK_ROOT=${SHK_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
# CI may start us with a bare environment: wine, npm and the cache all want a home folder.
export HOME=${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}
SHK_CACHE_DIR=${SHK_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/shmkit-ci}
SHK_JOBS=${SHK_JOBS:-$(nproc 2>/dev/null || echo 2)}
export SHK_ROOT SHK_CACHE_DIR

shk_say() { printf '\n==> %s\n' "$*"; }

# Installs the Debian packages whose commands or files are missing (as root, or through sudo).
shk_install_packages() {
  local missing=() want
  for want in "$@"; do
    dpkg-query -W -f='${Status}' "$want" 2>/dev/null | grep -q "install ok installed" || missing+=("$want")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  shk_say "installing ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

shk_install_native_tools() {
  shk_install_packages cmake ninja-build gcc libc6-dev pkg-config libcmocka-dev clang libclang-rt-14-dev openmpi-bin libopenmpi-dev
}

shk_install_windows_tools() {
  shk_install_packages gcc-mingw-w64-x86-64 wine64 wine xz-utils
}

# CMocka for mingw has no Debian binary: build it once from Debian's source package, using a
# private apt configuration (the system's sources stay as they are), and keep the result.
shk_mingw_cmocka() {
  local prefix="$SHK_CACHE_DIR/mingw-cmocka"
  if [ -f "$prefix/include/cmocka.h" ] && ls "$prefix"/lib/libcmocka-static.a >/dev/null 2>&1; then
    echo "$prefix"
    return 0
  fi
  local work="$SHK_CACHE_DIR/cmocka-src" apt_dir
  apt_dir="$work/apt"
  rm -rf "$work" && mkdir -p "$apt_dir/parts" "$apt_dir/lists/partial"
  : > "$apt_dir/empty.list"
  sed 's/^Types: deb$/Types: deb deb-src/' /etc/apt/sources.list.d/debian.sources > "$apt_dir/parts/debian.sources"
  local opts=(-o "Dir::Etc::SourceList=$apt_dir/empty.list" -o "Dir::Etc::SourceParts=$apt_dir/parts"
              -o "Dir::State::Lists=$apt_dir/lists" -o "APT::Sandbox::User=root")
  apt-get -qq "${opts[@]}" update >&2
  (cd "$work" && apt-get -qq "${opts[@]}" source --download-only cmocka >&2 2>/dev/null) || return 1
  local tarball
  tarball=$(find "$work" -maxdepth 1 -name 'cmocka_*.orig.tar.*' ! -name '*.asc' | head -n 1)
  tar -C "$work" -xf "$tarball" >&2 || return 1
  local src
  src=$(find "$work" -mindepth 1 -maxdepth 1 -type d -name 'cmocka-*' | head -n 1)
  cmake -S "$src" -B "$work/build" -G Ninja -DCMAKE_TOOLCHAIN_FILE="$SHK_ROOT/ci/mingw-w64.cmake" \
    -DWITH_STATIC_LIB=ON -DWITH_EXAMPLES=OFF -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_INSTALL_PREFIX="$prefix" >&2 &&
    cmake --build "$work/build" >&2 && cmake --install "$work/build" >&2 || return 1
  echo "$prefix"
}

# A private, warmed-up wine prefix (a cold one makes every test start slowly).
shk_wine_setup() {
  export WINEDEBUG=-all WINEPREFIX="$SHK_CACHE_DIR/wine"
  export WINEDLLOVERRIDES="mscoree,mshtml="
  if [ ! -f "$WINEPREFIX/system.reg" ]; then
    mkdir -p "$WINEPREFIX"
    wineboot -i >/dev/null 2>&1 || true
  fi
}

shk_wine_stop() {
  command -v wineserver >/dev/null 2>&1 || return 0
  wineserver -k >/dev/null 2>&1 || true
  wineserver -w >/dev/null 2>&1 || true
}

# ---- tally -----------------------------------------------------------------------------------
SHK_PASSED=0
SHK_FAILED=0
SHK_SKIPPED=0
SHK_STAGES=()

# Skipped tests (nothing exercised: no GPU, a missing tool) count neither as passed nor as failed.
shk_count() { # shk_count <stage> <passed> <failed> [skipped]
  local skipped=${4:-0} extra=""
  SHK_PASSED=$((SHK_PASSED + $2))
  SHK_FAILED=$((SHK_FAILED + $3))
  SHK_SKIPPED=$((SHK_SKIPPED + skipped))
  [ "$skipped" -gt 0 ] && extra=", $skipped skipped"
  SHK_STAGES+=("$(printf '%-28s %4d passed, %d failed%s' "$1" "$2" "$3" "$extra")")
}

# Runs ctest in a build folder and adds its counts; a run that cannot even start counts as a failure.
shk_ctest() { # shk_ctest <stage> <build dir> [ctest args...]
  local stage=$1 dir=$2 log
  shift 2
  log="$dir/ctest-output.log"
  ctest --test-dir "$dir" --output-on-failure -j "$SHK_JOBS" "$@" 2>&1 | tee "$log"
  local line total failed skipped
  line=$(grep -E 'tests passed, [0-9]+ tests failed out of [0-9]+' "$log" | tail -n 1)
  if [ -z "$line" ]; then
    if grep -q 'No tests were found' "$log"; then shk_count "$stage" 0 0; else shk_count "$stage" 0 1; fi
    return
  fi
  failed=$(echo "$line" | sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\1/')
  total=$(echo "$line" | sed -E 's/.* out of ([0-9]+).*/\1/')
  # CTest counts a skipped test (SKIP_RETURN_CODE, SKIP_REGULAR_EXPRESSION) in "passed" and lists
  # it under "The following tests did not run" with "(Skipped)".
  skipped=$(grep -cE '^[[:space:]]*[0-9]+ - .*\(Skipped\)$' "$log")
  shk_count "$stage" $((total - failed - skipped)) "$failed" "$skipped"
}

# Runs a step that is one check: passes when the command exits 0.
shk_check() { # shk_check <stage> <command...>
  local stage=$1
  shift
  if "$@"; then shk_count "$stage" 1 0; else echo "FAILED: $stage"; shk_count "$stage" 0 1; fi
}

shk_summary() {
  printf '\n==> summary\n'
  local s
  for s in "${SHK_STAGES[@]}"; do echo "  $s"; done
  echo "$SHK_PASSED passed, $SHK_FAILED failed, $SHK_SKIPPED skipped"
  [ "$SHK_FAILED" -eq 0 ]
}

# ---- for ci/stages/*.sh: checks that each keep a log, and the stage's closing line ---------------
# shk_stage_init <work dir>; shk_stage_check <title> <command...> (passes when it exits 0; on
# failure prints the log's tail); shk_stage_finish (prints "N passed, N failed" and exits).
shk_stage_init() {
  SHK_STAGE_WORK=$1 SHK_STAGE_PASSED=0 SHK_STAGE_FAILED=0
  mkdir -p "$SHK_STAGE_WORK"
}

shk_stage_check() {
  local title=$1 log
  shift
  log="$SHK_STAGE_WORK/$(echo "$title" | tr -c 'A-Za-z0-9\n' _).log"
  if "$@" >"$log" 2>&1; then echo "ok: $title"; SHK_STAGE_PASSED=$((SHK_STAGE_PASSED + 1))
  else echo "FAILED: $title"; tail -n 40 "$log"; SHK_STAGE_FAILED=$((SHK_STAGE_FAILED + 1)); fi
}

shk_stage_finish() {
  echo "$SHK_STAGE_PASSED passed, $SHK_STAGE_FAILED failed"
  [ "$SHK_STAGE_FAILED" -eq 0 ]
  exit $?
}
