#!/usr/bin/env bash
# bench-vxlan.sh: frames/s one way through switch -> VXLAN -> switch, ours
# against the Linux kernel's vxlan + bridge doing the same, in the same run.
#
# Two network namespaces (created here, deleted on exit) joined by a veth
# underlay (MTU 1500). In each:
#   ours:   uml_switch -vxlan vni=42,local=...:4789,remote=...
#           load: a synthetic UML port (daemon protocol) on each switch
#   kernel: bridge br0 + vxlan0 (id 42, dstport 4790) + a veth whose other
#           end is the generator's (AF_PACKET)
# The generator (internal/cmd/oneway send/recv) sends one-way unicast after
# both ends have announced their addresses; the receiver counts frames that
# arrive. Rounds alternate kernel and ours; medians are reported. ROUNDS,
# DURATION and SIZES override the defaults. Needs root and ip(8); without
# them it says so and exits 0. Nothing is configured outside the two
# namespaces.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-2s}
SIZES=${SIZES:-64 1400}
QLEN=${QLEN:-1024}

if [ "$(id -u)" != 0 ] || ! command -v ip >/dev/null; then
	echo "bench-vxlan: needs root and ip(8) for network namespaces; skipped"
	exit 0
fi

tmp=$(mktemp -d)
nsA=umlvxA-$$
nsB=umlvxB-$$
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
	ip netns delete "$nsA" 2>/dev/null || true
	ip netns delete "$nsB" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
go build -o "$tmp/uml_switch" ./cmd/uml_switch
go build -o "$tmp/oneway" ./internal/cmd/oneway

ip netns add "$nsA"
ip netns add "$nsB"
for ns in "$nsA" "$nsB"; do
	ip -n "$ns" link set lo up
	# The generator's UML port talks to the switch's unix datagram socket.
	ip netns exec "$ns" sysctl -q -w net.unix.max_dgram_qlen="$QLEN"
done
ip -n "$nsA" link add uA type veth peer name uB netns "$nsB"
ip -n "$nsA" addr add 192.168.90.1/24 dev uA
ip -n "$nsB" addr add 192.168.90.2/24 dev uB
ip -n "$nsA" link set uA up
ip -n "$nsB" link set uB up
# The kernel's segment.
for side in A:1:2 B:2:1; do
	IFS=: read -r s me peer <<<"$side"
	ns=ns$s
	ns=${!ns}
	ip -n "$ns" link add vxlan0 type vxlan id 42 local 192.168.90.$me remote 192.168.90.$peer dstport 4790 dev u$s
	ip -n "$ns" link add br0 type bridge
	ip -n "$ns" link set vxlan0 master br0
	ip -n "$ns" link add t$s type veth peer name g$s
	ip -n "$ns" link set t$s master br0
	for l in vxlan0 br0 t$s g$s; do ip -n "$ns" link set "$l" up; done
done
sleep 1

# oneway IMPL SIZE: one run; prints the receiver's line.
oneway() {
	local impl=$1 size=$2 rx tx
	if [ "$impl" = ours ]; then
		local ctlA=$tmp/a.ctl ctlB=$tmp/b.ctl
		rm -f "$ctlA" "$ctlB"
		ip netns exec "$nsA" "$tmp/uml_switch" -q -unix "$ctlA" -vxlan vni=42,local=192.168.90.1,remote=192.168.90.2 </dev/null >/dev/null 2>&1 &
		pids+=($!)
		ip netns exec "$nsB" "$tmp/uml_switch" -q -unix "$ctlB" -vxlan vni=42,local=192.168.90.2,remote=192.168.90.1 </dev/null >/dev/null 2>&1 &
		pids+=($!)
		for _ in $(seq 100); do [ -S "$ctlA" ] && [ -S "$ctlB" ] && break; sleep 0.05; done
		rx=(-ctl "$ctlB")
		tx=(-ctl "$ctlA")
	else
		rx=(-if gB)
		tx=(-if gA)
	fi
	ip netns exec "$nsB" timeout 60 "$tmp/oneway" "${rx[@]}" recv -duration "$DURATION" >"$tmp/rx" 2>&1 &
	local rxpid=$!
	sleep 0.3
	ip netns exec "$nsA" timeout 60 "$tmp/oneway" "${tx[@]}" send -size "$size" -duration "$DURATION" >"$tmp/tx" 2>&1 || true
	wait "$rxpid" || true
	if [ "$impl" = ours ]; then
		for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
		pids=()
	fi
	echo "$(cat "$tmp/rx") $(cat "$tmp/tx")"
}

field() { sed -n "s/.*\b$1=\([0-9.]*\).*/\1/p"; }
median() { sort -g | awk '{v[NR]=$1} END {if (NR==0) print 0; else if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a/b; else print "n/a" }'; }

echo "VXLAN benchmark: switch -> VXLAN -> switch, ours vs kernel vxlan+bridge, $ROUNDS rounds of $DURATION, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
declare -A vals
for size in $SIZES; do
	for r in $(seq "$ROUNDS"); do
		for impl in kernel ours; do
			out=$(oneway "$impl" "$size")
			echo "  ${size}B round $r $impl: $out"
			v=$(echo "$out" | field fps)
			[ -n "$v" ] && vals[$size/$impl]+="$v "
		done
	done
done
echo
printf '%-40s %14s %14s %8s\n' "one way, frames/s delivered (median)" "kernel" "ours" "ratio"
for size in $SIZES; do
	k=$(echo "${vals[$size/kernel]:-}" | tr ' ' '\n' | grep . | median)
	o=$(echo "${vals[$size/ours]:-}" | tr ' ' '\n' | grep . | median)
	printf '%-40s %14s %14s %8s\n' "$size-byte frames" "$k" "$o" "$(ratio "$o" "$k")"
done
