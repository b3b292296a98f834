#!/usr/bin/env bash
# R6: the real gateway binary with its database on a 2 MB tmpfs that is filled: a
# press still reaches the nearest phone from memory, the technician gets the storage
# alarm, the press is not acknowledged; space returns, the bridge resends, the press
# is acknowledged and committed (still there after a restart). Prints the figures and
# a VERDICT line. Mounting needs root: as root a failed mount is an error; otherwise
# the test falls back to an injected write failure and says "mode injected".
# Usage: scripts/disk-full.sh [tmpfs|injected]
set -euo pipefail
mode=${1:-}
if [ -z "$mode" ]; then [ "$(id -u)" -eq 0 ] && mode=tmpfs || mode=auto; fi
cd "$(dirname "$0")/.."
set +e
VAKT_SUITE_DISKFULL_MODE=$mode go test ./cmd/gateway -count=1 -timeout 10m -v \
	-run '^TestSuiteDiskFull$' 2>&1 | grep -E '^(--- |ok |FAIL|PASS)|disk-full:|_test.go'
rc=${PIPESTATUS[0]}
set -e
[ "$rc" -eq 0 ] && echo "VERDICT: PASS" || echo "VERDICT: FAIL"
exit "$rc"
