#!/bin/bash
# The HA cluster lab's lesson: the client writes a numbered, timestamped
# line to the NFS share every 0.5 s and reads it back, while heartbeat
# moves the service (hb_standby) to the other node and back, then while
# the active node crashes. The script prints how long the client's loop
# stalled each time and checks that every line the client was told was
# written is still on the share afterwards.
#
# Usage: failover.sh [-d LABDIR] [--no-restart] [--crash-only]
#   -d LABDIR     the running lab (default: this script's directory)
#   --no-restart  leave the crashed node down at the end
#   --crash-only  skip the two hb_standby moves (each takes 35-65 s)
# The lab must be running: umlab start -d LABDIR. umlab is taken from
# $UMLAB, else from PATH. Exit status: 0 when the crash failover met its
# target and no data was lost, 1 otherwise, 2 on a usage or setup error.
set -u

CRASH_TARGET=${CRASH_TARGET:-30} # seconds, after the active node crashes
SERVICE=192.168.1.100
LOG=/mnt/lesson.log              # on the client; /srv/ha/export on the servers

dir=$(cd "$(dirname "$0")" && pwd)
restart=1
standby=1
while [ $# -gt 0 ]; do
	case $1 in
	-d) dir=${2:?-d needs a directory}; shift 2 ;;
	-d*) dir=${1#-d}; shift ;;
	--no-restart) restart=0; shift ;;
	--crash-only) standby=0; shift ;;
	-h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "failover.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done
UMLAB=${UMLAB:-umlab}
if ! command -v "$UMLAB" >/dev/null 2>&1; then
	echo "failover.sh: $UMLAB not found (put umlab on PATH or set UMLAB)" >&2
	exit 2
fi
tmp=$(mktemp -d)
loop_pid=
cleanup() {
	[ -n "$loop_pid" ] && "$UMLAB" exec -d "$dir" client -- touch /run/lesson.stop >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT

x() { "$UMLAB" exec -d "$dir" "$@"; }
say() { printf '\n== %s\n' "$*"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# active: the node holding the service address (empty if none does).
active() {
	local n
	for n in one two; do
		if x $n -- ip -4 -o address show dev eth0 2>/dev/null | grep -q " $SERVICE/"; then
			echo $n
			return
		fi
	done
}
other() { [ "$1" = one ] && echo two || echo one; }

# wait_for SECONDS CMD...: poll CMD every 0.5 s.
wait_for() {
	local end=$(( $(date +%s) + $1 ))
	shift
	until "$@"; do
		[ "$(date +%s)" -ge $end ] && return 1
		sleep 0.5
	done
}
is_active() { [ "$(active)" = "$1" ]; }
mounted() { x client -- mountpoint -q /mnt; }

# The client's loop: append "PHASE SEQ TIME" to the share, read the last
# line back, and only then print "ok PHASE SEQ TIME" (the write is on the
# server: the NFS client flushes on close and the export is sync). It runs
# until /run/lesson.stop appears (or 300 s pass).
loop_start() { # PHASE
	x client -- sh -c '
		rm -f /run/lesson.stop; i=0; end=$(( $(date +%s) + 300 ))
		while [ ! -e /run/lesson.stop ] && [ $(date +%s) -lt $end ]; do
			i=$((i + 1)); t=$(date +%s.%N)
			printf "%s %d %s\n" "$1" $i $t >>'$LOG' &&
				tail -n 1 '$LOG' | grep -q "^$1 $i " &&
				echo "ok $1 $i $(date +%s.%N)"
			sleep 0.5
		done' lesson "$1" >"$tmp/$1.log" 2>&1 &
	loop_pid=$!
}
loop_count() {
	local c
	c=$(grep -c '^ok ' "$tmp/$1.log" 2>/dev/null)
	echo "${c:-0}"
}
loop_stop() {
	x client -- touch /run/lesson.stop
	wait "$loop_pid"
	loop_pid=
}
# gap PHASE: the longest time between two successful iterations.
gap() {
	awk '$1 == "ok" { if (n++ && $4 - last > g) g = $4 - last; last = $4 }
		END { printf "%.1f\n", g }' "$tmp/$1.log"
}
# resumed PHASE COUNT: the loop has done 4 more iterations since COUNT.
resumed() { [ "$(loop_count "$1")" -ge $(( $2 + 4 )) ]; }

fail=0
results=()

# move PHASE TITLE CMD...: run the loop, do CMD, wait for the service to
# come up on the other node and the loop to resume, report the stall.
move() {
	local phase=$1 title=$2 from to c t0 g
	shift 2
	from=$(active) to=$(other "$from")
	say "$title"
	loop_start "$phase"
	wait_for 10 resumed "$phase" 0 || { echo "the client's loop does not run:"; cat "$tmp/$phase.log"; exit 1; }
	c=$(loop_count "$phase")
	t0=$(now)
	"$@"
	echo "$(date +%T) $* (service was on $from)"
	if ! wait_for 120 is_active "$to"; then
		echo "the service did not move to $to within 120 s" >&2
		fail=1
	else
		echo "service address up on $to $(since "$t0") s later"
	fi
	if ! wait_for 120 resumed "$phase" "$c"; then
		echo "the client's loop did not resume within 120 s" >&2
		fail=1
	fi
	loop_stop
	g=$(gap "$phase")
	results+=("$phase $g")
	echo "   the client's loop stalled for $g s"
}

say "waiting for the cluster: the service address on one node, the share mounted on the client"
wait_for 180 eval '[ -n "$(active)" ]' || { echo "no node holds $SERVICE after 180 s" >&2; exit 1; }
wait_for 120 mounted || { echo "the client has not mounted the share" >&2; exit 1; }
a=$(active)
echo "service on $a:"
x "$a" -- ip -4 -o address show dev eth0
x "$a" -- df -h /srv/ha
x client -- sh -c 'mount | grep " /mnt "'

if [ $standby = 1 ]; then
	move standby1 "hb_standby on the active node: heartbeat moves the service to the other" \
		x "$(active)" -- /usr/share/heartbeat/hb_standby
	move standby2 "hb_standby again: the service moves back" \
		x "$(active)" -- /usr/share/heartbeat/hb_standby
fi
crashed=$(active)
move crash "crash of the active node ($crashed): its peer declares it dead and takes over" \
	"$UMLAB" crash -d "$dir" -F "$crashed"

say "checking the data: every line the client saw written must be on the share"
x client -- sh -c 'echo 3 >/proc/sys/vm/drop_caches'
x client -- cat $LOG >"$tmp/client-view" || fail=1
x "$(active)" -- cat /srv/ha/export/lesson.log >"$tmp/server-view" || fail=1
cat "$tmp"/standby*.log "$tmp"/crash.log 2>/dev/null | awk '$1 == "ok" { print $2, $3 }' | sort >"$tmp/acked"
missing=0
for view in client-view server-view; do
	awk '{ print $1, $2 }' "$tmp/$view" | sort -u >"$tmp/$view.keys"
	m=$(comm -23 "$tmp/acked" "$tmp/$view.keys" | wc -l)
	echo "   $(wc -l <"$tmp/acked") acknowledged writes, $m missing in the ${view%-view}'s view"
	missing=$((missing + m))
done
[ $missing = 0 ] || fail=1

if [ $restart = 1 ]; then
	say "restarting $crashed: it rejoins as standby (auto_failback off)"
	"$UMLAB" start -d "$dir" "$crashed" || fail=1
	sleep 5
	echo "service on $(active)"
fi

say "result"
for r in "${results[@]}"; do
	read -r phase g <<<"$r"
	case $phase in
	crash)
		if awk -v g="$g" -v t="$CRASH_TARGET" 'BEGIN { exit !(g <= t) }'; then v=ok; else v=MISSED; fail=1; fi
		printf '   %-10s client stalled %5s s (target %s s): %s\n' "$phase" "$g" "$CRASH_TARGET" $v ;;
	*) printf '   %-10s client stalled %5s s\n' "$phase" "$g" ;;
	esac
done
echo "   data: $missing acknowledged writes missing"
if [ $fail = 0 ]; then echo "RESULT: PASS"; else echo "RESULT: FAIL"; fi
exit $fail
