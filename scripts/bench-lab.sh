#!/usr/bin/env bash
# Benchmark: umlab start on generated labs of 1, 4 and 12 routers in a line
# (Kathará style: startup files add addresses, ip_forward on), UML 6.1 at
# mem=128M. For each size: the time from `umlab start` to every startup
# file done, and the host memory of each idle guest (PSS, each address space
# counted once, as `umlab info` reports it). Then, for one guest, where its
# boot time goes (kernel, systemd, startup files).
# Run by `make bench` after `make build provision`. Targets (issue 11, on
# 2 cores): 4 machines <= 30 s, 12 <= 90 s, <= 80 MB per idle guest.
set -euo pipefail
cd "$(dirname "$0")/.."
umlab=$PWD/bin/umlab
[ -x "$umlab" ] || { echo "bench-lab: build first (make build)" >&2; exit 1; }
SIZES=${SIZES:-1 4 12}
work=$(mktemp -d /tmp/umlab-bench.XXXXXX)
labs=()
cleanup() {
	for d in "${labs[@]}"; do "$umlab" clean -d "$d" >/dev/null 2>&1 || true; done
	rm -rf "$work"
}
trap cleanup EXIT

# The image is built on first use; build it outside the timed runs.
"$umlab" image list | grep -q . || "$umlab" image build >/dev/null

mklab() { # N DIR: routers r1..rN, r_i on domains d(i-1) and d(i)
	local n=$1 dir=$2 i
	mkdir -p "$dir"
	for i in $(seq 1 "$n"); do
		echo "r$i[0]=d$((i - 1))" >> "$dir/lab.conf"
		echo "r$i[1]=d$i" >> "$dir/lab.conf"
		echo "r$i[image]=kathara/frr" >> "$dir/lab.conf"
		{
			echo "ip address add 10.$((i - 1)).0.2/24 dev eth0"
			echo "ip address add 10.$i.0.1/24 dev eth1"
		} > "$dir/r$i.startup"
	done
}

printf '%-9s %10s %14s %14s %8s\n' machines "start (s)" "PSS/guest MB" "max MB" verdict
for n in $SIZES; do
	dir=$work/line$n
	mklab "$n" "$dir"
	labs+=("$dir")
	t0=$(date +%s.%N)
	"$umlab" start -d "$dir" >/dev/null
	t1=$(date +%s.%N)
	sleep 5 # idle
	read -r avg max < <("$umlab" info -d "$dir" --json | python3 -c '
import json, sys
m = [x["host_pss_bytes"] / 2**20 for x in json.load(sys.stdin)["machines"] if x.get("host_pss_bytes")]
print("%.1f %.1f" % (sum(m) / len(m), max(m)))')
	secs=$(echo "$t1 - $t0" | bc)
	verdict=ok
	case $n in
	4) (($(echo "$secs > 30" | bc))) && verdict=SLOW ;;
	12) (($(echo "$secs > 90" | bc))) && verdict=SLOW ;;
	esac
	(($(echo "$avg > 80" | bc))) && verdict="$verdict,MEM"
	printf '%-9s %10.1f %14s %14s %8s\n' "$n" "$secs" "$avg" "$max" "$verdict"
	if [ "$n" = 1 ]; then
		breakdown=$("$umlab" exec -d "$dir" r1 -- sh -c 'systemd-analyze | head -1; systemd-analyze blame | head -5; sed -n "s/^== umlab startup done after/startup files:/p" /var/log/umlab/startup.log')
	fi
	"$umlab" clean -d "$dir" >/dev/null
done
echo "-- where one guest's boot goes (systemd-analyze in the guest):"
echo "${breakdown:-}" | sed 's/^/   /'
