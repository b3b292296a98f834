#!/usr/bin/env bash
# P6 soak: how many bytes the gateway writes to disk per check-in at a busy site's
# rate (200,000 check-ins a day ≈ 2.3/s), read from /proc/PID/io (write_bytes).
# It runs a Mosquitto with firmware-notes/mosquitto.conf (the settings every test and
# site uses; mqtt-broker.md explains them) and the demo
# site pointed at it (check-ins linger only with an external broker).
# Usage: scripts/soak-checkins.sh [seconds=60] [rate-per-second=2.3] [checkin_linger=10s]
# Needs: go, mosquitto, mosquitto_pub. Uses loopback ports 18080 and 11883.
set -euo pipefail
secs=${1:-60}; rate=${2:-2.3}; linger=${3:-10s}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
cleanup() { kill "${gw:-}" "${mq:-}" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
go build -o "$work/gateway" "$root/cmd/gateway"
{ printf 'listener 11883 127.0.0.1\nallow_anonymous true\npersistence_location %s/\n' "$work"
  [ "$(id -u)" = 0 ] && echo "user root"
  cat "$root/firmware-notes/mosquitto.conf"; } > "$work/mosquitto.conf"
mosquitto -c "$work/mosquitto.conf" >"$work/mosquitto.log" 2>&1 & mq=$!
sed -e "s|path: ../../data/vakt.db|path: $work/vakt.db\n  checkin_linger: $linger|" \
    -e "s|127.0.0.1:8080|127.0.0.1:18080|" -e "s|127.0.0.1:1883|127.0.0.1:11883|g" \
    "$root/config/examples/demo.yaml" |
  awk '/^  broker:/ {b=1} b && /enabled: true/ {sub(/true/, "false"); b=0} /^  mqtt:/ {m=1} {print}
       m && /enabled: true/ {print "    url: tcp://127.0.0.1:11883"; m=0}' > "$work/site.yaml"
"$work/gateway" run -config "$work/site.yaml" > "$work/log" 2>&1 & gw=$!
for _ in $(seq 100); do curl -sf 127.0.0.1:18080/readyz >/dev/null && break; sleep 0.1; done
curl -sf 127.0.0.1:18080/readyz >/dev/null || { echo "gateway did not start:"; cat "$work/log"; exit 1; }
before=$(awk '/^write_bytes/ {print $2}' /proc/$gw/io)
n=$(awk -v s="$secs" -v r="$rate" 'BEGIN {printf "%d", s*r}')
pause=$(awk -v r="$rate" 'BEGIN {printf "%.3f", 1/r}')
# QoS 1 like Zigbee2MQTT; a publisher's PUBACK comes when the broker has the message.
for i in $(seq "$n"); do
	mosquitto_pub -h 127.0.0.1 -p 11883 -q 1 -t zigbee2mqtt/room102/sos \
		-m "{\"sos\":false,\"battery\":$((50 + i % 40)),\"linkquality\":$((i % 200))}"
	sleep "$pause"
done
# Every check-in is committed (the gateway acknowledged it) once the broker has no
# message in flight to it; give the last linger time to end.
sleep "$(awk -v l="${linger%s}" 'BEGIN {print l + 2}')"
after=$(awk '/^write_bytes/ {print $2}' /proc/$gw/io)
bytes=$((after - before))
awk -v b="$bytes" -v n="$n" -v l="$linger" 'BEGIN {
	per = b / n
	printf "checkin_linger=%s: %d check-ins, %d bytes written, %.0f bytes per check-in, %.0f MB/day at 200,000 a day\n", l, n, b, per, per * 200000 / 1e6 }'
