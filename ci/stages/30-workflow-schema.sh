#!/usr/bin/env bash
# Validates the hosted-runner workflow against the GitHub workflow schema, offline, with the npm
# package @action-validator/cli (installed once into the cache).
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
tool_dir="$SHK_CACHE_DIR/npm-action-validator"
validator="$tool_dir/node_modules/.bin/action-validator"
if [ ! -x "$validator" ]; then
  command -v npm >/dev/null 2>&1 || shk_install_packages nodejs npm
  mkdir -p "$tool_dir"
  (cd "$tool_dir" && npm install --no-audit --no-fund --silent @action-validator/cli@0.6.0 >/dev/null 2>&1)
fi
passed=0 failed=0
for wf in "$SHK_ROOT"/.github/workflows/*.yml; do
  if "$validator" "$wf"; then echo "ok: $(basename "$wf") matches the workflow schema"; passed=$((passed + 1))
  else echo "FAILED: $(basename "$wf")"; failed=$((failed + 1)); fi
done
# A broken copy must be refused, or the check proves nothing.
broken="$SHK_CACHE_DIR/broken-workflow.yml"
sed 's/runs-on:/runs-onn:/' "$SHK_ROOT/.github/workflows/ci.yml" > "$broken"
if "$validator" "$broken" >/dev/null 2>&1; then echo "FAILED: a broken workflow was accepted"; failed=$((failed + 1))
else echo "ok: a broken workflow is refused"; passed=$((passed + 1)); fi
echo "workflow-schema: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
