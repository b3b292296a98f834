#!/bin/sh
# grep-person.sh DB MARKER... — after an erasure (gateway erase-person, or
# DELETE /api/v1/admin/staff/ID), look for what must be gone in the raw bytes of a
# Vakt database: the main file DB, its write-ahead log DB-wal, its shared memory
# DB-shm and a rollback journal DB-journal, whichever exist.
#
# A MARKER is searched as bytes (a name, an e-mail address, a phone number). A
# MARKER of the form float:NUMBER (a latitude, say float:59.91390012) is searched as
# text and as the 8-byte IEEE 754 double SQLite stores, in both byte orders; that
# form needs python3.
#
# Exit status: 0 when no marker is in any file, 1 when one is (each hit is printed
# as "MARKER in FILE"), 2 on a usage error. Run it on a copy or with the gateway
# stopped, so the files do not change under it.
set -u
if [ $# -lt 2 ]; then
	echo "usage: $0 DB MARKER... (MARKER: text, or float:NUMBER)" >&2
	exit 2
fi
db=$1
shift
if [ ! -e "$db" ]; then
	echo "$0: $db: no such file" >&2
	exit 2
fi
found=0
tmp=$(mktemp) || exit 2
trap 'rm -f "$tmp"' EXIT
for f in "$db" "$db-wal" "$db-shm" "$db-journal"; do
	[ -e "$f" ] || continue
	for m in "$@"; do
		case $m in
		float:*)
			v=${m#float:}
			if grep -q -F -a -e "$v" "$f"; then
				echo "$m (text) in $f"
				found=1
			fi
			if ! command -v python3 >/dev/null 2>&1; then
				echo "$0: python3 is needed to search $m as binary; searched as text only" >&2
				continue
			fi
			for order in '>d' '<d'; do
				python3 -c 'import struct,sys; sys.stdout.buffer.write(struct.pack(sys.argv[1], float(sys.argv[2])))' "$order" "$v" >"$tmp" || exit 2
				if python3 -c 'import sys; sys.exit(0 if open(sys.argv[1],"rb").read() in open(sys.argv[2],"rb").read() else 1)' "$tmp" "$f"; then
					echo "$m (binary $order) in $f"
					found=1
				fi
			done
			;;
		*)
			if grep -q -F -a -e "$m" "$f"; then
				echo "\"$m\" in $f"
				found=1
			fi
			;;
		esac
	done
done
exit $found
