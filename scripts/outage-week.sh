#!/usr/bin/env bash
# R3: the cloud unreachable for a simulated week. The gateway (in-process, real
# engine, SQLite outbox, uploader) takes a week of presses, cancels and check-ins at
# its maximum rate with the wall clock stepped across seven days, its outbox capped
# at half of it (health samples compacted, alarms and audit never dropped); then
# cloudsim returns on loopback and the backlog drains. Every entry held must reach
# the cloud exactly once. Prints entries made, what the cap did, drain time and
# entries/s, and a VERDICT line.
# Usage: scripts/outage-week.sh [entries=1000000]
set -euo pipefail
n=${1:-1000000}
cd "$(dirname "$0")/.."
set +e
VAKT_SUITE_OUTAGE_ENTRIES=$n go test ./cmd/gateway -count=1 -timeout 60m -v \
	-run '^TestSuiteOutageWeek$' 2>&1 | grep -E '^(--- |ok |FAIL|PASS)|outage-week:|_test.go'
rc=${PIPESTATUS[0]}
set -e
[ "$rc" -eq 0 ] && echo "VERDICT: PASS" || echo "VERDICT: FAIL"
exit "$rc"
