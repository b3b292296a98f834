#!/usr/bin/env bash
# R8: on the load site (500 buttons, 200 phones, embedded broker) a phone with open
# offers drops off the network (TCP closed, no close frame) and reconnects: every open
# offer must come again; a phone that never confirms delivery must be skipped (the
# next staff member offered) within routing.offer_confirm (10 s here). Prints a verdict.
# Usage: scripts/phone-drop.sh
set -euo pipefail
source "$(dirname "$0")/loadgen-lib.sh"
build
api=$(freeport); bport=$(freeport)
"$work/loadgen" site -dir "$work/site" -api "$api" -broker "$bport" >/dev/null
start_gateway "$work/site/site.yaml" "$api" "$work/gateway.log"
set +e
"$work/loadgen" phone-drop -dir "$work/site" -api "http://127.0.0.1:$api" -broker "127.0.0.1:$bport"
rc=$?
set -e
stop_pid "$gw_pid"
[ $rc -eq 0 ] && echo "VERDICT: PASS" || echo "VERDICT: FAIL"
exit $rc
