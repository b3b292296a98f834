#!/usr/bin/env bash
# R5: the gateway on a clock whose wall reading is stepped +1 h and -1 h while an
# escalation timer runs (it must fire neither early nor an hour late), and a boot at
# 1970 (alarms still routed; what was recorded before NTP reaches the cloud flagged
# clock_synced=false). In-process on internal/fakeclock.Wall: libfaketime cannot step
# a Go binary's clock (Go reads it through the vDSO). Prints the figures and a VERDICT.
# Usage: scripts/clock-jump.sh [repeats=5]
set -euo pipefail
n=${1:-5}
cd "$(dirname "$0")/.."
set +e
go test ./cmd/gateway -count="$n" -timeout 20m -v \
	-run '^(TestSuiteClockJump|TestSuiteClockBoot1970)$' 2>&1 | grep -E '^(--- |ok |FAIL|PASS)|clock-jump:|_test.go'
rc=${PIPESTATUS[0]}
set -e
[ "$rc" -eq 0 ] && echo "VERDICT: PASS" || echo "VERDICT: FAIL"
exit "$rc"
