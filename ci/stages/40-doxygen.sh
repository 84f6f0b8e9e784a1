#!/usr/bin/env bash
# Builds the API reference with Doxygen; any warning (an undocumented public declaration, a
# broken reference) fails the stage.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
shk_install_packages doxygen
out=${SHK_BUILD_ROOT:-$SHK_ROOT/build/ci}/doxygen
rm -rf "$out" && mkdir -p "$out"
if (cd "$SHK_ROOT/docs" && SHK_DOXYGEN_OUT="$out" doxygen Doxyfile) >"$out.log" 2>&1 && [ -f "$out/html/index.html" ]; then
  echo "ok: API reference in $out/html/index.html"
  echo "doxygen: 1 passed, 0 failed"
else
  head -n 60 "$out.log"
  echo "doxygen: 0 passed, 1 failed"
  exit 1
fi
