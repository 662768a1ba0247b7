#!/bin/bash
# The OSPF lab's lesson: node01 pings node03's service address every 0.2 s
# while node04 - the only router on node01's best path to node03 - first
# loses its link to node03 (eth0 down), then crashes. The script shows the
# path before and after, measures how long the ping got no answer each time
# and checks it against the targets.
#
# Usage: failover.sh [-d LABDIR] [-n RUNS] [--no-restart]
#   -d LABDIR     the running lab (default: this script's directory)
#   -n RUNS       repeat the link-down and crash experiments RUNS times
#   --no-restart  leave node04 crashed at the end
# The lab must be running: umlab start -d LABDIR. umlab is taken from
# $UMLAB, else from PATH. Exit status: 0 when every outage met its target,
# 1 when one did not, 2 on a usage or setup error.
set -u

LINK_TARGET=${LINK_TARGET:-6}   # seconds, after node04's eth0 goes down
CRASH_TARGET=${CRASH_TARGET:-8} # seconds, after node04 is crashed
INTERVAL=0.2
TARGET_ADDR=192.168.100.3       # node03's service address
VIA=192.168.4.4                 # node04-eth1: node01's next hop when all is well

dir=$(cd "$(dirname "$0")" && pwd)
runs=1
restart=1
while [ $# -gt 0 ]; do
	case $1 in
	-d) dir=${2:?-d needs a directory}; shift 2 ;;
	-d*) dir=${1#-d}; shift ;;
	-n) runs=${2:?-n needs a number}; shift 2 ;;
	--no-restart) restart=0; shift ;;
	-h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "failover.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done
case $runs in ''|*[!0-9]*|0) echo "failover.sh: -n: $runs is not a positive number" >&2; exit 2 ;; esac
UMLAB=${UMLAB:-umlab}
if ! command -v "$UMLAB" >/dev/null 2>&1; then
	echo "failover.sh: $UMLAB not found (put umlab on PATH or set UMLAB)" >&2
	exit 2
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

x() { "$UMLAB" exec -d "$dir" "$@"; }
say() { printf '\n== %s\n' "$*"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# converged: every node has a /32 route to every other node's service
# address, and node01 reaches node03 through node04 (the lab's costs).
converged() {
	local m n routes
	for m in 1 2 3 4; do
		routes=$(x node0$m -- ip -4 route show proto ospf 2>/dev/null) || return 1
		for n in 1 2 3 4; do
			[ $m = $n ] && continue
			grep -q "^192\.168\.100\.$n " <<<"$routes" || return 1
		done
	done
	x node01 -- ip -4 route get $TARGET_ADDR 2>/dev/null | grep -q "via $VIA "
}

wait_converged() { # $1: seconds
	local t0 end
	t0=$(now)
	end=$(( $(date +%s) + $1 ))
	until converged; do
		if [ "$(date +%s)" -ge $end ]; then
			echo "routes did not converge within $1 s" >&2
			return 1
		fi
		sleep 0.5
	done
	echo "all four routers have all routes (waited $(since "$t0") s)"
}

path() {
	x node01 -- traceroute -q 1 -w 1 -m 5 $TARGET_ADDR
	x node01 -- ping -c 1 -R $TARGET_ADDR | sed -n '/RR:/,/^$/p'
}

# ping_during SECONDS LOG: node01 pings node03 for SECONDS in the background,
# with a receive timestamp (-D) per reply.
ping_during() {
	x node01 -- ping -D -n -i $INTERVAL -W 1 -w "$1" $TARGET_ADDR >"$2" 2>&1 &
	ping_pid=$!
}

# outage LOG: the longest time node01 got no reply: from the last reply
# before a gap to the first one after it (at least one interval, so a clean
# run shows ~0.2). Prints "SECONDS LOST" or "never LOST" when the replies
# did not come back before the end of the log.
outage() {
	awk -v iv=$INTERVAL '
	/bytes from/ && match($0, /^\[[0-9.]+\]/) {
		ts = substr($0, 2, RLENGTH - 2)
		match($0, /icmp_seq=[0-9]+/); seq = substr($0, RSTART + 9, RLENGTH - 9) + 0
		if (seq in seen) next
		seen[seq] = 1
		if (n > 0 && ts - last > gap) { gap = ts - last; lost = seq - lastseq - 1 }
		last = ts; lastseq = seq; n++
	}
	/packets transmitted/ { sent = $1 + 0 }
	END {
		if (n == 0) { print "never", sent; exit }
		if (sent > lastseq + 3) { print "never", sent - lastseq; exit }
		if (gap < iv) gap = iv
		printf "%.1f %d\n", gap, lost
	}' "$1"
}

fail=0
link_results=() crash_results=()

check() { # NAME SECONDS LOST TARGET
	if [ "$2" = never ]; then
		printf '   %-28s no reply came back (%s packets lost): target %s s MISSED\n' "$1" "$3" "$4"
		fail=1
	elif awk -v o="$2" -v t="$4" 'BEGIN { exit !(o <= t) }'; then
		printf '   %-28s %5s s without replies (%s packets lost), target %s s: ok\n' "$1" "$2" "$3" "$4"
	else
		printf '   %-28s %5s s without replies (%s packets lost), target %s s: MISSED\n' "$1" "$2" "$3" "$4"
		fail=1
	fi
}

say "waiting for OSPF to converge in $dir"
wait_converged 60 || exit 1
say "node01 -> node03 goes through node04 (node04-eth1, then node04-eth0 on the way back)"
path

for run in $(seq 1 "$runs"); do
	[ "$runs" -gt 1 ] && say "run $run of $runs"

	say "link failure: node04's eth0 (towards node03) goes down while node01 pings node03"
	ping_during 12 "$tmp/link.log"
	sleep 3
	x node04 -- ip link set eth0 down
	echo "$(date +%T.%N | cut -c1-12) node04: ip link set eth0 down"
	sleep 2
	echo "-- node01's route to node03 now:"
	x node01 -- ip -4 route get $TARGET_ADDR | head -1
	wait $ping_pid
	read -r o lost < <(outage "$tmp/link.log")
	link_results+=("$o $lost")
	path
	check "link down (run $run):" "$o" "$lost" "$LINK_TARGET"

	say "bringing node04's eth0 back; traffic returns to the path through node04"
	ping_during 10 "$tmp/back.log"
	sleep 1
	x node04 -- ip link set eth0 up
	t0=$(now)
	until x node01 -- ip -4 route get $TARGET_ADDR | grep -q "via $VIA "; do
		sleep 0.5
		if [ "$(since "$t0" | cut -d. -f1)" -ge 30 ]; then echo "node01 did not move back to node04 in 30 s" >&2; fail=1; break; fi
	done
	echo "node01 routes through node04 again $(since "$t0") s after eth0 came up"
	wait $ping_pid
	read -r o lost < <(outage "$tmp/back.log")
	echo "   (while the link came back: $o s without replies, $lost packets lost)"

	say "node crash: node04 dies at once (umlab crash -F: its disk is kept)"
	ping_during 14 "$tmp/crash.log"
	sleep 3
	"$UMLAB" crash -d "$dir" -F node04
	echo "$(date +%T.%N | cut -c1-12) node04 crashed"
	sleep 6
	echo "-- node01's route to node03 now:"
	x node01 -- ip -4 route get $TARGET_ADDR | head -1
	wait $ping_pid
	read -r o lost < <(outage "$tmp/crash.log")
	crash_results+=("$o $lost")
	check "node04 crash (run $run):" "$o" "$lost" "$CRASH_TARGET"

	if [ $restart = 1 ] || [ "$run" -lt "$runs" ]; then
		say "restarting node04"
		"$UMLAB" start -d "$dir" node04 || { echo "node04 did not restart" >&2; exit 1; }
		wait_converged 60 || exit 1
	fi
done

say "result"
for i in "${!link_results[@]}"; do
	read -r o lost <<<"${link_results[$i]}"; check "link down (run $((i + 1))):" "$o" "$lost" "$LINK_TARGET"
	read -r o lost <<<"${crash_results[$i]}"; check "node04 crash (run $((i + 1))):" "$o" "$lost" "$CRASH_TARGET"
done
if [ $fail = 0 ]; then
	echo "RESULT: PASS (targets: link down <= $LINK_TARGET s, crash <= $CRASH_TARGET s)"
else
	echo "RESULT: FAIL (targets: link down <= $LINK_TARGET s, crash <= $CRASH_TARGET s)"
fi
exit $fail
