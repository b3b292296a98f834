#!/usr/bin/env bash
# SIGKILL campaign against the embedded broker listening on 0.0.0.0 (the documented
# setting for Zigbee2MQTT on another box): four raw MQTT publishers send presses
# without pause, each with a unique sequence number, and record every PUBACK; the
# gateway child process is SIGKILLed after a random number of PUBACKs (presses in
# flight) and started again. Afterwards every PUBACKed press must be an event in the
# database. Then the same with SIGTERM restarts. Traffic stays on 127.0.0.1.
# Usage: scripts/crash-campaign.sh [sigkill-cycles=50] [max-acks-per-cycle=20000] [sigterm-cycles=5]
# Needs: go. Prints the figures (published, PUBACKed, stored, lost) of each campaign.
set -euo pipefail
cycles=${1:-50}; acks=${2:-20000}; term=${3:-5}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
VAKT_CAMPAIGN_CYCLES=$cycles VAKT_CAMPAIGN_MAX_ACKS=$acks VAKT_CAMPAIGN_TERM_CYCLES=$term \
  go test ./cmd/gateway -count=1 -timeout 60m -v \
    -run '^(TestEmbeddedBrokerCrashCampaign|TestEmbeddedBrokerCleanRestartUnderLoad)$' 2>&1 |
  grep -E '^(=== RUN|--- |ok |FAIL|PASS)|campaign \(|lost'
