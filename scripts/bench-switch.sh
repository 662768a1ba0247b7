#!/usr/bin/env bash
# bench-switch.sh: our uml_switch against the C original (/usr/bin/uml_switch)
# in the same run, driven by the project's load generator (internal/cmd/swload).
#
# UML-like senders (swload perframe: a thread per port, one sendto per frame
# on its own unconnected socket, as a guest's driver sends):
#   - 2 ports, 64-byte frames                       (target: ours >= 1.5x C)
#   - 64 ports, 4096 learned MACs                    (target: ours >= 3x C,
#                                                    CPU per frame <= 0.5x C)
#   - the same with non-blocking sends (EAGAIN counted as lost, as a guest
#     drops when the switch's queue is full)
#   reporting delivered frames/s, frames lost, and the switch process's own
#   CPU time per delivered frame (utime+stime from /proc/PID/stat; unlike
#   frames/s it does not depend on how fast the generator is).
# The one-hop ceiling: the same generator port to port with no switch.
# Batched senders (swload throughput: sendmmsg bursts from one thread): the
#   2- and 64-port rows as before, and 64 ports with a deeper kernel queue.
# Round-trip latency, one 64-byte frame in flight (target: p99 <= 1.2x C).
# Rounds alternate C and ours so machine load hits both alike; the median of
# each is reported. ROUNDS and DURATION override the defaults. Exits 0 unless
# something could not run at all; missed targets are reported, not fatal.
#
# Why a deeper queue: with the C switch every port sends to its one data
# socket, and the kernel holds at most net.unix.max_dgram_qlen (10 by
# default) datagrams there for senders it is not connected to; past that a
# sender sleeps and is woken with all the others for each datagram the switch
# takes. (Ours gives every port a data socket of its own, so each queue has
# one sender.) The third batched row runs both switches and the generator in
# a network namespace of their own (abstract socket names and that sysctl
# are per namespace) with QLEN as the limit, leaving the host alone. Needs
# root and ip(8); without them the row reads n/a.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-5}
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
	local out args=("$@")
	# The generator reads the switch's CPU time: give it the pid.
	[ "$1" = perframe ] && args+=(-pid "$swpid")
	out=$(timeout 60 "${pre[@]}" "$tmp/swload" -ctl "$ctl" "${args[@]}" -duration "$DURATION" 2>&1) || out="error: $out"
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
scenario pf2 fps,lost,cpu_ns_per_frame perframe -ports 2 -hosts 1 -size 64
scenario pf64 fps,lost,cpu_ns_per_frame perframe -ports 64 -hosts 64 -size 64
scenario pf64nb fps,lost,cpu_ns_per_frame perframe -ports 64 -hosts 64 -size 64 -nonblock
# The one-hop ceiling: no switch at all, the same generator port to port.
for r in $(seq "$ROUNDS"); do
	for n in 2 64; do
		out=$(timeout 60 "$tmp/swload" direct -ports "$n" -size 64 -duration "$DURATION" 2>&1) || out="error: $out"
		echo "  direct$n round $r: $out"
		v=$(echo "$out" | field fps)
		[ -n "$v" ] && vals[direct$n.fps/none]+="$v "
	done
done
scenario 2ports fps throughput -ports 2 -hosts 1 -size 64
scenario 64ports fps throughput -ports 64 -hosts 64 -size 64
if [ -n "$netns" ]; then
	IN_NS=1
	scenario 64ports-q fps throughput -ports 64 -hosts 64 -size 64
	IN_NS=
fi
scenario latency p99_us,p50_us latency -size 64

m() { echo "${vals[$1]:-}" | tr ' ' '\n' | grep . | median; }
verdict() { awk -v r="$1" -v t="$2" -v dir="$3" 'BEGIN { if (r == "n/a") { print "n/a"; exit } ok = (dir == "ge") ? (r >= t) : (r <= t); print ok ? "met" : "MISSED" }'; }
# row LABEL KEY TARGET-TEXT [THRESHOLD DIR]: medians of C and ours for KEY
# and their ratio.
row() {
	local label=$1 key=$2 text=$3 thr=${4:-} dir=${5:-}
	local c o r v=""
	c=$(m "$key/c"); o=$(m "$key/ours"); r=$(ratio "$o" "$c")
	[ -n "$thr" ] && v=": $(verdict "$r" "$thr" "$dir")"
	printf '%-44s %12s %12s %7s  %s\n' "$label" "$c" "$o" "$r" "$text$v"
}
echo
printf '%-44s %12s %12s %7s  %s\n' "scenario (median of $ROUNDS)" "C uml_switch" "ours" "ratio" "target"
echo "UML-like senders (one sendto per frame per port):"
row "  2 ports: frames/s" pf2.fps ">= 1.5x" 1.5 ge
row "  2 ports: frames lost" pf2.lost "-"
row "  2 ports: switch CPU ns/frame" pf2.cpu_ns_per_frame "-"
row "  64 ports, 4096 MACs: frames/s" pf64.fps ">= 3x" 3 ge
row "  64 ports: frames lost" pf64.lost "-"
row "  64 ports: switch CPU ns/frame" pf64.cpu_ns_per_frame "<= 0.5x" 0.5 le
row "  64 ports, non-blocking: frames/s" pf64nb.fps "-"
row "  64 ports, non-blocking: lost (incl. EAGAIN)" pf64nb.lost "-"
row "  64 ports, non-blocking: CPU ns/frame" pf64nb.cpu_ns_per_frame "-"
printf '%-44s %12s %12s %7s  %s\n' "  one-hop ceiling, 2 ports: frames/s" "-" "$(m direct2.fps/none)" "-" "no switch"
printf '%-44s %12s %12s %7s  %s\n' "  one-hop ceiling, 64 ports: frames/s" "-" "$(m direct64.fps/none)" "-" "no switch"
echo "Batched senders (sendmmsg bursts from one thread):"
row "  2 ports, 64 B: frames/s" 2ports.fps ">= 1.5x" 1.5 ge
row "  64 ports, 4096 MACs: frames/s" 64ports.fps ">= 4x" 4 ge
if [ -n "$netns" ]; then
	row "  same, kernel queue $QLEN (netns)" 64ports-q.fps ">= 4x" 4 ge
else
	printf '%-44s %12s %12s %7s  %s\n' "  same, kernel queue $QLEN (netns)" n/a n/a n/a "needs root and ip(8)"
fi
row "round trip p99 (us)" latency.p99_us "<= 1.2x" 1.2 le
row "round trip p50 (us)" latency.p50_us "-"
exit 0
