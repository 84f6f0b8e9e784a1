#!/usr/bin/env bash
# The HTML report in a real browser: `shmkit lens report` turns traces into pages (one recorded
# from examples/lens_demo, two made by hand, Chromium's own trace of a page, one of 1,000,000
# zones), and headless Chromium (and Firefox, where one is installed), driven by puppeteer-core
# (npm, installed into SHK_CACHE_DIR from ci/lens_report/package-lock.json), opens each from
# disk: zero console errors, zero network requests, the expected tracks, frames, zones and markers
# drawn, a click on a frame zooms, wheel and drag work, hover shows a zone. Also the tool's
# messages and exit codes. Screenshots and logs: $SHK_BUILD_ROOT/lens-report/.
# Needs SHK_BUILD_GCC (or SHK_BUILD_DIR): a built Linux tree with shmkit and lens_demo.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
build=${SHK_BUILD_GCC:-${SHK_BUILD_DIR:-}}
work=${SHK_BUILD_ROOT:-$SHK_ROOT/build/ci}/lens-report
shk_stage_init "$work"
mkdir -p "$SHK_CACHE_DIR"
bin=$build/bin
if [ -z "$build" ] || [ ! -x "$bin/shmkit" ] || [ ! -x "$bin/lens_demo" ]; then
  echo "FAILED: no built shmkit and lens_demo under '$build' (set SHK_BUILD_GCC)"
  SHK_STAGE_FAILED=1
  shk_stage_finish
fi

# ---- the browser and its driver ----
modules=$SHK_CACHE_DIR/lens-report-npm
# Debian's chromium; elsewhere (Ubuntu's chromium is a snap stub) the Chrome a runner already has.
find_browser() {
  local b
  for b in chromium chromium-browser google-chrome-stable google-chrome; do
    command -v "$b" && return 0
  done
  return 1
}
install_driver() {
  command -v node >/dev/null || shk_install_packages nodejs npm || return 1
  find_browser >/dev/null || shk_install_packages chromium || return 1
  "$(find_browser)" --version
  # npm ci from the committed lock; done again only when the lock changes.
  if ! cmp -s "$SHK_ROOT/ci/lens_report/package-lock.json" "$modules/installed-lock.json"; then
    rm -rf "$modules" && mkdir -p "$modules" &&
      cp "$SHK_ROOT/ci/lens_report/package.json" "$SHK_ROOT/ci/lens_report/package-lock.json" "$modules/" &&
      PUPPETEER_SKIP_DOWNLOAD=1 npm ci --silent --no-audit --no-fund --prefix "$modules" \
        --cache "$SHK_CACHE_DIR/npm-cache" &&
      cp "$SHK_ROOT/ci/lens_report/package-lock.json" "$modules/installed-lock.json"
  fi
  [ -f "$modules/node_modules/puppeteer-core/package.json" ]
}
shk_stage_check "install chromium and puppeteer-core" install_driver

browse() { # browse <name>: report the trace, open it in Chromium, check it
  local name=$1
  "$bin/shmkit" lens report "$work/$name.json" -o "$work/$name.html" || return 1
  timeout 900 node "$SHK_ROOT/ci/lens_report/report_check.mjs" "$work/$name.html" \
    "$work/$name.expect.json" "$work" "$name" "$modules" "$(find_browser)"
}

# ---- a recorded trace: lens_demo, 60 frames ----
seg=lens-report-ci-$$
record_demo() {
  rm -f "$work/demo.json" "$work/demo-recorded.html"
  "$bin/shmkit" lens record "$seg" -o "$work/demo.json" --html "$work/demo-recorded.html" \
    --wait 30 --quiet &
  local recorder=$!
  "$bin/lens_demo" "$seg" --frames 60 --wait-reader 30 >/dev/null || { kill $recorder; return 1; }
  wait $recorder
}
shk_stage_check "record lens_demo (with --html)" record_demo
# `record --html` writes the page `lens report` writes from the same trace, byte for byte.
same_page() {
  "$bin/shmkit" lens report "$work/demo.json" -o "$work/demo-reported.html" --quiet &&
    cmp "$work/demo-recorded.html" "$work/demo-reported.html"
}
shk_stage_check "record --html gives the same page as lens report" same_page
# The demo's shape (ci/lens_trace_check.mjs): per frame 4 zones on main, 2 on worker, one frame;
# a plot and two heap samples per frame; a log every 10 frames.
cat >"$work/demo.expect.json" <<'EOF'
{"frames": 60, "zones": 420, "markers": 7, "counterSamples": 180, "hover": "update", "selectFrame": 30}
EOF
shk_stage_check "the lens_demo report in Chromium" browse demo

# ---- hand-made traces: every kind of event, both JSON forms, names with markup ----
shk_stage_check "make the test traces" node "$SHK_ROOT/ci/lens_report/make_traces.mjs" "$work" mixed array big
shk_stage_check "the mixed report in Chromium" browse mixed
shk_stage_check "the unclosed array-form report in Chromium" browse array

# ---- another producer: Chromium's own trace of a report loading (X, B/E, I, R, async, flows) ----
shk_stage_check "record a Chrome trace" node "$SHK_ROOT/ci/lens_report/record_chrome_trace.mjs" \
  "$work/mixed.html" "$work/chrome.json" "$modules" "$(find_browser)"
echo '{"atLeast": {"processes": 2, "threads": 3, "zones": 1000}}' >"$work/chrome.expect.json"
shk_stage_check "the Chrome trace's report in Chromium" browse chrome

# ---- one million zones ----
big_report() {
  local start end
  start=$(date +%s%N)
  "$bin/shmkit" lens report "$work/big.json" -o "$work/big.html" || return 1
  end=$(date +%s%N)
  echo "shmkit lens report: $(( (end - start) / 1000000 )) ms for $(stat -c %s "$work/big.json") bytes"
  timeout 900 node "$SHK_ROOT/ci/lens_report/report_check.mjs" "$work/big.html" \
    "$work/big.expect.json" "$work" big "$modules" "$(find_browser)"
}
shk_stage_check "the 1,000,000-zone report in Chromium" big_report
grep -hE "interactive .* after navigation|a wheel zoom|shmkit lens report:|JavaScript heap" "$work"/the_1_000_000*.log

# ---- the same pages in Firefox, where one is installed (not installed by this stage) ----
firefox=$(command -v firefox-esr || command -v firefox || true)
in_firefox() { # in_firefox <name>
  timeout 900 node "$SHK_ROOT/ci/lens_report/report_check.mjs" "$work/$1.html" "$work/$1.expect.json" \
    "$work" "firefox-$1" "$modules" "$firefox"
}
if [ -n "$firefox" ]; then
  shk_stage_check "the mixed report in Firefox" in_firefox mixed
  shk_stage_check "the 1,000,000-zone report in Firefox" in_firefox big
  grep -hE "interactive .* after navigation" "$work"/the_1_000_000_zone_report_in_Firefox.log
else
  echo "skipped: no Firefox here (firefox-esr or firefox), the Firefox checks did not run"
fi
rm -f "$work/big.json" "$work/big.html" # 115 MB and 115 MB: the log and screenshots stay

# ---- the tool's messages and exit codes ----
expect_exit() { # expect_exit <code> <grep pattern for stderr> <args...>
  local want=$1 pattern=$2 got
  shift 2
  "$bin/shmkit" lens report "$@" 2>"$work/stderr.txt" >/dev/null
  got=$?
  cat "$work/stderr.txt"
  [ "$got" -eq "$want" ] && grep -q -- "$pattern" "$work/stderr.txt"
}
printf '[{"ph":"X","ts":1},\n{"ph": oops}]' >"$work/garbage.json"
shk_stage_check "a missing trace: exit 1 and a message" expect_exit 1 "cannot open" "$work/none.json" -o "$work/none.html"
shk_stage_check "garbage: exit 1, where and why" expect_exit 1 "garbage.json:2:8: expected" "$work/garbage.json" -o "$work/garbage.html"
shk_stage_check "no output named: exit 2 and the usage" expect_exit 2 "usage: shmkit lens report" "$work/mixed.json"
shk_stage_check "help" bash -c "'$bin/shmkit' lens report --help | grep -q 'from disk' && '$bin/shmkit' --help | grep -q 'lens report'"
echo "screenshots: $work/*.png"
shk_stage_finish
