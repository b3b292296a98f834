#!/usr/bin/env bash
# R4: the real gateway binary on a pty-backed, symlinked ESPA device path that
# disappears and returns N times; line noise, a half frame and a bad-BCC frame between
# good call blocks. Every good block must be acknowledged and counted once; prints the
# reopen times (path back -> first answered selection) and a VERDICT line.
# Usage: scripts/serial-unplug.sh [cycles=50]
# Needs: go. Everything stays on 127.0.0.1 and ptys; the test stops what it starts.
set -euo pipefail
cycles=${1:-50}
cd "$(dirname "$0")/.."
set +e
VAKT_SUITE_UNPLUG_CYCLES=$cycles go test ./cmd/gateway -count=1 -timeout 30m -v \
	-run '^TestSuiteSerialUnplug$' 2>&1 | grep -E '^(--- |ok |FAIL|PASS)|serial-unplug:|_test.go'
rc=${PIPESTATUS[0]}
set -e
[ "$rc" -eq 0 ] && echo "VERDICT: PASS" || echo "VERDICT: FAIL"
exit "$rc"
