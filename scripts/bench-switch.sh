#!/usr/bin/env bash
# bench-switch.sh: our uml_switch against the C original (/usr/bin/uml_switch)
# in the same run, driven by the project's load generator (internal/cmd/swload):
#   - 2 ports, 64-byte frames: frames/s            (target: ours >= 1.5x C)
#   - 64 ports, 4096 learned MACs, 64-byte frames  (target: ours >= 4x C),
#     once on the host as it is and once with a deeper kernel queue (below)
#   - round-trip latency, one 64-byte frame in flight (target: p99 <= 1.2x C)
# Rounds alternate C and ours so machine load hits both alike; the median of
# each is reported. ROUNDS and DURATION override the defaults. Exits 0 unless
# something could not run at all; missed targets are reported, not fatal.
#
# Why a deeper queue: every port sends to the switch's one data socket, and
# the kernel holds at most net.unix.max_dgram_qlen (10 by default) datagrams
# there for senders it is not connected to. Past that the generator's send
# sleeps and is woken once per datagram the switch takes, so on a small
# machine the hand-off, not the switch, sets the rate (our switch then
# delivers every frame sent). The second 64-port row runs both switches and
# the generator in a network namespace of their own (abstract socket names
# and that sysctl are per namespace) with QLEN as the limit, leaving the host
# alone. Needs root and ip(8); without them the row reads n/a.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-2s}
QLEN=${QLEN:-1024}
C_SWITCH=${C_SWITCH:-/usr/bin/uml_switch}
[ -x "$C_SWITCH" ] || { echo "bench-switch: the C uml_switch ($C_SWITCH) is missing: install uml-utilities" >&2; exit 1; }

tmp=$(mktemp -d)
swpid=
netns=
cleanup() {
	if [ -n "$swpid" ]; then kill "$swpid" 2>/dev/null || true; wait "$swpid" 2>/dev/null || true; fi
	if [ -n "$netns" ]; then ip netns delete "$netns" 2>/dev/null || true; fi
	rm -rf "$tmp"
}
trap cleanup EXIT
go build -o "$tmp/uml_switch" ./cmd/uml_switch
go build -o "$tmp/swload" ./internal/cmd/swload

# The namespace for the deep-queue row, if we may make one.
if [ "$(id -u)" = 0 ] && command -v ip >/dev/null &&
	ip netns add "umlbench-$$" 2>/dev/null; then
	netns=umlbench-$$
	ip netns exec "$netns" sysctl -q -w net.unix.max_dgram_qlen="$QLEN" ||
		{ ip netns delete "$netns"; netns=; }
fi

# run IMPL ARGS...: start that switch, run swload ARGS against it, stop it.
# With IN_NS set, both run in the deep-queue namespace.
IN_NS=
run() {
	local impl=$1; shift
	local bin=$C_SWITCH
	[ "$impl" = ours ] && bin=$tmp/uml_switch
	local ctl=$tmp/$impl.ctl
	local pre=()
	[ -n "$IN_NS" ] && pre=(ip netns exec "$netns")
	rm -f "$ctl"
	# ip netns exec execs the command: $! is the switch itself.
	"${pre[@]}" "$bin" -unix "$ctl" </dev/null >/dev/null 2>&1 &
	swpid=$!
	for _ in $(seq 100); do [ -S "$ctl" ] && break; sleep 0.05; done
	local out
	out=$(timeout 60 "${pre[@]}" "$tmp/swload" -ctl "$ctl" "$@" -duration "$DURATION" 2>&1) || out="error: $out"
	kill -INT "$swpid" 2>/dev/null || true
	wait "$swpid" 2>/dev/null || true
	swpid=
	rm -f "$ctl"
	echo "$out"
}

field() { sed -n "s/.*\b$1=\([0-9.]*\).*/\1/p"; }
median() { sort -g | awk '{v[NR]=$1} END {if (NR==0) print 0; else if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a/b; else print "n/a" }'; }

declare -A vals
# scenario NAME KEYS SWLOAD-ARGS...: KEYS (comma-separated) are the values
# kept from each run's output, as vals[NAME.KEY/IMPL].
scenario() {
	local name=$1 keys=$2; shift 2
	for r in $(seq "$ROUNDS"); do
		for impl in c ours; do
			local out v key
			out=$(run "$impl" "$@")
			echo "  $name round $r $impl: $out"
			for key in ${keys//,/ }; do
				v=$(echo "$out" | field "$key")
				[ -n "$v" ] && vals[$name.$key/$impl]+="$v "
			done
		done
	done
}

echo "uml_switch benchmark: C $C_SWITCH vs ours, $ROUNDS rounds of $DURATION, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
scenario 2ports fps throughput -ports 2 -hosts 1 -size 64
scenario 64ports fps throughput -ports 64 -hosts 64 -size 64
if [ -n "$netns" ]; then
	IN_NS=1
	scenario 64ports-q fps throughput -ports 64 -hosts 64 -size 64
	IN_NS=
fi
scenario latency p99_us,p50_us latency -size 64

m() { echo "${vals[$1]:-}" | tr ' ' '\n' | grep . | median; }
c2=$(m 2ports.fps/c); o2=$(m 2ports.fps/ours)
c64=$(m 64ports.fps/c); o64=$(m 64ports.fps/ours)
c64q=$(m 64ports-q.fps/c); o64q=$(m 64ports-q.fps/ours)
cl=$(m latency.p99_us/c); ol=$(m latency.p99_us/ours)
cl50=$(m latency.p50_us/c); ol50=$(m latency.p50_us/ours)
verdict() { awk -v r="$1" -v t="$2" -v dir="$3" 'BEGIN { ok = (dir == "ge") ? (r >= t) : (r <= t); print ok ? "met" : "MISSED" }'; }
r2=$(ratio "$o2" "$c2"); r64=$(ratio "$o64" "$c64"); r64q=$(ratio "$o64q" "$c64q"); rl=$(ratio "$ol" "$cl"); rl50=$(ratio "$ol50" "$cl50")
echo
printf '%-34s %14s %14s %8s  %s\n' "scenario (median)" "C uml_switch" "ours" "ratio" "target"
printf '%-34s %14s %14s %8s  %s\n' "2 ports, 64 B: frames/s" "$c2" "$o2" "$r2" ">= 1.5x: $(verdict "$r2" 1.5 ge)"
printf '%-34s %14s %14s %8s  %s\n' "64 ports, 4096 MACs: frames/s" "$c64" "$o64" "$r64" ">= 4x: $(verdict "$r64" 4 ge)"
if [ -n "$netns" ]; then
	printf '%-34s %14s %14s %8s  %s\n' "  same, kernel queue $QLEN (netns)" "$c64q" "$o64q" "$r64q" ">= 4x: $(verdict "$r64q" 4 ge)"
else
	printf '%-34s %14s %14s %8s  %s\n' "  same, kernel queue $QLEN (netns)" n/a n/a n/a "needs root and ip(8)"
fi
printf '%-34s %14s %14s %8s  %s\n' "round trip p99 (us)" "$cl" "$ol" "$rl" "<= 1.2x: $(verdict "$rl" 1.2 le)"
printf '%-34s %14s %14s %8s  %s\n' "round trip p50 (us)" "$cl50" "$ol50" "$rl50" "-"
exit 0
