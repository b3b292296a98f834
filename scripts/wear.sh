#!/usr/bin/env bash
# P6 SD-card wear: the bytes the gateway binary writes to disk per check-in and per
# alarm, and what that makes at a busy site (5,000 alarms and 200,000 check-ins a
# day), read from the gateway's /proc/PID/io write_bytes before and after each phase.
#
# The site is cmd/loadgen's (500 Zigbee2MQTT buttons, 200 phones); the buttons
# publish to a Mosquitto with firmware-notes' settings (storage.checkin_linger
# applies only behind an external broker; with the embedded one it is off) or, with
# broker=embedded, to the gateway's own broker. Phases, each on the running gateway:
#   warmup   (VAKT_WEAR_WARMUP only) check-ins at 200/s, not measured
#   idle     nothing published, for min(60 s, the check-in phase) (the floor)
#   checkins check-ins at the busy site's real rate, 200,000/86,400 s ≈ 2.31/s
#   alarms   presses at 0.5/s, each offered to a phone and reset at the button
#            (raised, offered, confirmed, cancelled): no two alarms share a commit,
#            as at 5,000 a day (one every 17 s)
# loadgen reads write_bytes once its phones are logged in and the bridges are up,
# and again once its verdict found every acknowledged message stored (so the last
# linger's commit is in). "other" below is the gateway's log file.
#
# With strace installed the gateway's write(2)/pwrite(2) calls are summed per file
# as well: the WAL's share (the commits) and the main file's (the checkpoints:
# SQLite's autocheckpoint every 1000 WAL pages and the TRUNCATE ones), separately.
#
# A known transmitter's check-in is acknowledged without a commit; its health goes to
# disk (and the cloud) with the health write every 15 minutes (engine/health.go): a
# check-in phase of at least 900 s holds one such write, a shorter one undercounts.
# VAKT_WEAR_CLOUD=1 runs the reference cloud (cmd/cloudsim) on loopback and
# configures the site with cloud sync, so the outbox, its uploads, acknowledgements
# and deletions are in the bytes; without it the site has no cloud and queues
# nothing for one.
#
# Usage: scripts/wear.sh [checkin_linger=10s] [checkin-seconds=300] [alarm-seconds=120]
#                        [mosquitto|embedded] [varying|steady]
#   varying: every check-in reports a new battery and link quality (each is then also
#   a health sample for the cloud); steady: the same values every time.
# Needs go, mosquitto, curl, python3; strace optional. Loopback only; every process
# started here is stopped by its PID.
set -euo pipefail
linger=${1:-10s}; csecs=${2:-300}; asecs=${3:-120}; broker=${4:-mosquitto}; health=${5:-varying}
source "$(dirname "$0")/loadgen-lib.sh"
build
# VAKT_WEAR_GATEWAY=path measures another gateway binary (e.g. main's, for a before/after).
[ -n "${VAKT_WEAR_GATEWAY:-}" ] && cp "$VAKT_WEAR_GATEWAY" "$work/gateway"
api=$(freeport); bport=$(freeport)
ext=(); [ "$broker" = mosquitto ] && { ext=(-external); start_mosquitto "$bport" "$work/mosquitto"; }
"$work/loadgen" site -dir "$work/site" -api "$api" -broker "$bport" "${ext[@]}" >/dev/null
sed -i -E "s|^storage: \{path: (\"[^\"]*\")\}|storage: {path: \1, checkin_linger: $linger}|" "$work/site/site.yaml"
grep -q "checkin_linger: $linger" "$work/site/site.yaml" || { echo "could not set checkin_linger in site.yaml" >&2; exit 1; }
cloud=none
if [ -n "${VAKT_WEAR_CLOUD:-}" ]; then
	(cd "$root" && go build -o "$work/cloudsim" ./cmd/cloudsim)
	cport=$(freeport); cadmin=$(freeport)
	# The load site runs in demo mode: its cloud token is the demo default.
	"$work/cloudsim" -listen "127.0.0.1:$cport" -admin "127.0.0.1:$cadmin" -db "$work/cloud.db" \
		-token loadgen:demo >>"$work/cloudsim.log" 2>&1 &
	pids+=("$!")
	waitport "$cport"
	printf 'cloud: {enabled: true, url: "http://127.0.0.1:%s"}\n' "$cport" >>"$work/site/site.yaml"
	cloud="reference cloud on 127.0.0.1:$cport"
fi
start_gateway "$work/site/site.yaml" "$api" "$work/gateway.log"
db="$work/site/vakt.db"
steady=(); [ "$health" = steady ] && steady=(-steady-health)
echo "wear ($broker broker, checkin_linger $linger, $health health, cloud: $cloud): work folder $work"

trace=""
if command -v strace >/dev/null; then
	trace="$work/strace.out"
	# -xx -s 24: each WAL frame's 24-byte header (SQLite writes it apart from the page)
	# shows its page number and whether it ends a commit, for the per-table breakdown.
	strace -f -qq -ttt -y -xx -s 24 -e trace=write,pwrite64,fsync,fdatasync -e signal=none -o "$trace" -p "$gw_pid" &
	st_pid=$!
	pids+=("$st_pid")
	for _ in $(seq 500); do # strace -p has attached once the gateway shows a tracer
		[ "$(awk '/^TracerPid/ {print $2}' "/proc/$gw_pid/status")" != 0 ] && break
		sleep 0.01
	done
fi

wb() { awk '/^write_bytes/ {print $2}' "/proc/$gw_pid/io"; }
run_load() { # phase rate duration checkins [flags]: loadgen reports the window's write_bytes
	local phase=$1 rate=$2 dur=$3 ci=$4; shift 4
	"$work/loadgen" run -dir "$work/site" -api "http://127.0.0.1:$api" -broker "127.0.0.1:$bport" \
		-rate "$rate" -duration "$dur" -checkins "$ci" "${steady[@]}" -conns 4 -verify-db "$db" -drain 30s \
		-io-pid "$gw_pid" -label "$phase" "$@" | tee -a "$work/loadgen.out" | grep -E 'published|PASS|FAIL|disk'
}

# VAKT_WEAR_WARMUP=20s first sends check-ins at 200/s for that long (not measured),
# so every button has its health row, as at a site that has run for a day: without
# it most check-ins of a short run insert a transmitter's first row (a table page
# and an index page more than the update a running site's check-in is).
if [ -n "${VAKT_WEAR_WARMUP:-}" ]; then
	run_load warmup 0 "$VAKT_WEAR_WARMUP" 200 -no-phones -blind
fi
idle=$(( csecs < 60 ? csecs : 60 ))
t0=$(date +%s%N); w0=$(wb)
sleep "$idle" # the gateway alone: its timers, nothing published
echo "idle: disk: pid $gw_pid wrote $(( $(wb) - w0 )) bytes (write_bytes) from $t0 to $(date +%s%N) (Unix ns)" | tee -a "$work/loadgen.out"
# Check-ins alone at the busy site's rate; no phones (their logins would count).
run_load checkins 0 "${csecs}s" 2.3148 -no-phones -blind
run_load alarms 0.5 "${asecs}s" 0
[ -n "$trace" ] && stop_pid "$st_pid" -INT
# Which table or index each page belongs to (dbstat), for the breakdown below; read
# while the gateway runs (WAL: a reader sees the last commit).
python3 - "$db" >"$work/pages.txt" <<'PY' || true
import sqlite3, sys
c = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
print("pagesize", c.execute("PRAGMA page_size").fetchone()[0])
for name, page in c.execute("SELECT name, pageno FROM dbstat"):
    print(page, name)
PY
ls -l "$db" "$db-wal" 2>/dev/null | awk '{print "file " $NF ": " $5 " bytes"}' | tee -a "$work/loadgen.out"

python3 - "$work/loadgen.out" "$trace" "$linger" "$broker" "$health" "$work/pages.txt" <<'PY'
import re, sys, collections
out_path, trace, linger, broker, health, pages_path = sys.argv[1:7]
out = open(out_path).read()
disk = {m[0]: (int(m[1]), int(m[2]), int(m[3])) for m in
        re.findall(r'^(\w+): disk: pid \d+ wrote (\d+) bytes \(write_bytes\) from (\d+) to (\d+)', out, re.M)}
pub = {m[0]: (int(m[1]), int(m[3])) for m in
       re.findall(r'^(\w+): offered .*?: (\d+) presses, \d+ cancels, (\d+) check-ins published; (\d+) acknowledged', out, re.M)}
n = {'idle': 0, 'checkins': pub['checkins'][1], 'alarms': pub['alarms'][0]}
# strace -f -ttt -y: "PID SECONDS.MICROS call(FD<path>, ...) = RET", or split over an
# "<unfinished ...>" line and a "<... call resumed>" line of the same PID.
calls = []
frames = [] # (ts, 'wal' page header | 'main' page write, page number, commit?)
page_size = 0
owner = {}
try:
    for l in open(pages_path):
        a, b = l.split()
        if a == 'pagesize':
            page_size = int(b)
        else:
            owner[int(a)] = b
except (OSError, ValueError):
    pass
hdr = re.compile(r'pwrite64\(\d+<([^>]*)>, "((?:\\x[0-9a-f]{2})*)"(?:\.\.\.)?, (\d+), (\d+)\)')
def unhex(p): # -xx prints the -y paths in hex too
    return re.sub(r'\\x([0-9a-f]{2})', lambda m: chr(int(m.group(1), 16)), p)
def note_frame(ts, l):
    m = hdr.search(l)
    if not m:
        return
    path, data, count, off = unhex(m.group(1)), m.group(2), int(m.group(3)), int(m.group(4))
    if path.endswith('.db-wal') and count == 24:
        b = bytes(int(x, 16) for x in data.split('\\x')[1:])
        if len(b) >= 8:
            frames.append((ts, 'wal', int.from_bytes(b[0:4], 'big'), int.from_bytes(b[4:8], 'big') != 0))
    elif path.endswith('.db') and page_size and count == page_size:
        frames.append((ts, 'main', off // page_size + 1, False))
if trace:
    start = re.compile(r'^(\d+)\s+(\d+\.\d+) (write|pwrite64|fsync|fdatasync)\(\d+<([^>]*)>')
    ret = re.compile(r'= (-?\d+)')
    pending = {}
    for l in open(trace):
        m = start.match(l)
        if m:
            pid, ts, name, path = m.group(1), float(m.group(2)), m.group(3), unhex(m.group(4))
            if l.rstrip().endswith('<unfinished ...>'):
                pending[pid] = (ts, name, path)
                continue
            r = ret.search(l.rsplit(')', 1)[-1])
            calls.append((ts, name, path, int(r.group(1)) if r else 0))
            if name == 'pwrite64':
                note_frame(ts, l)
            continue
        m = re.match(r'^(\d+)\s+\d+\.\d+ <\.\.\. (\w+) resumed>.*= (-?\d+)', l)
        if m and m.group(1) in pending:
            ts, name, path = pending.pop(m.group(1))
            calls.append((ts, name, path, int(m.group(3))))
def split(a, b):
    r = {'wal': 0, 'main': 0, 'other': 0, 'fsync': 0}
    for ts, name, path, rv in calls:
        if not (a <= ts * 1e9 <= b):
            continue
        if name in ('fsync', 'fdatasync'):
            r['fsync'] += 1
        elif rv > 0:
            r['wal' if path.endswith('.db-wal') else 'main' if path.endswith('.db') else 'other'] += rv
    return r
per, ck = {}, {}
print(f"wear: {broker} broker, checkin_linger {linger}, {health} health")
for ph in ('idle', 'checkins', 'alarms'):
    wb, a, b = disk[ph]
    line = f"{ph}: write_bytes {wb:,}"
    if n[ph]:
        per[ph] = wb / n[ph]
        line += f" for {n[ph]} {'check-ins' if ph == 'checkins' else 'alarms'} = {per[ph]:,.0f} B each"
    if trace:
        s = split(a, b)
        tot = s['wal'] + s['main'] + s['other']
        ck[ph] = s['main'] / tot if tot else 0
        line += (f"; write(2) bytes: WAL {s['wal']:,}, main file {s['main']:,} (checkpoints, {100*ck[ph]:.0f} %),"
                 f" other {s['other']:,}; {s['fsync']} fsyncs")
        if n[ph]:
            line += f" = {s['fsync']/n[ph]:.2f} per message"
    print(line)
c, a = per['checkins'], per['alarms']
print(f"busy site: 200,000 check-ins x {c:,.0f} B = {200000*c/1e6:.0f} MB + 5,000 alarms x {a:,.0f} B = {5000*a/1e6:.0f} MB"
      f" -> {(200000*c + 5000*a)/1e6:.0f} MB/day (P6: <= 200 MB/day)")
def breakdown(ph, a, b, count):
    # Per commit (WAL frames up to one with the commit flag): the tables it wrote.
    sig, tables, ckpt, commits, cur = collections.Counter(), collections.Counter(), collections.Counter(), 0, []
    for ts, where, page, commit in frames:
        if not (a <= ts * 1e9 <= b):
            continue
        t = 'page1' if page == 1 else owner.get(page, 'free/new')
        if where == 'main':
            ckpt[t] += 1
            continue
        tables[t] += 1
        cur.append(t)
        if commit:
            commits += 1
            sig[' '.join(sorted(set(cur)))] += 1
            cur = []
    if not commits:
        return
    per = f" per {'check-in' if ph == 'checkins' else 'alarm'}" if count else ''
    print(f"{ph}: {commits} commits ({commits/count:.2f}{per}), {sum(tables.values())} WAL frames"
          f" ({sum(tables.values())/commits:.1f} per commit), checkpoint page writes {sum(ckpt.values())}")
    print(f"  WAL frames by table: " + ', '.join(f"{k} {v}" for k, v in tables.most_common()))
    print(f"  checkpoint pages by table: " + ', '.join(f"{k} {v}" for k, v in ckpt.most_common()))
    for k, v in sig.most_common(12):
        print(f"  {v:5d} commits writing: {k}")
if trace and frames:
    for ph in ('checkins', 'alarms'):
        breakdown(ph, disk[ph][1], disk[ph][2], n[ph])
if trace:
    print(f"checkpoints' share of the bytes written: check-ins {100*ck['checkins']:.0f} %, alarms {100*ck['alarms']:.0f} %")
PY
grep -q FAIL "$work/loadgen.out" && { echo "VERDICT: FAIL (an acknowledged message is missing)"; exit 1; }
echo "VERDICT: PASS (every acknowledged message stored)"
