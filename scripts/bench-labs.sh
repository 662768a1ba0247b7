#!/usr/bin/env bash
# Benchmark: the shipped labs' lessons, timed. labs/ospf: traffic recovery
# after node04's link goes down (target 6 s) and after node04 crashes
# (target 8 s), RUNS times each; labs/ha-cluster: how long the NFS client's
# loop stalls when the active node crashes (target 30 s), data checked.
# Run by `make bench` after `make build provision`; each lesson prints its
# own table and verdict.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PWD/bin:$PATH UMLAB=umlab
RUNS=${RUNS:-3}
work=$(mktemp -d /tmp/umlab-bench-labs.XXXXXX)
cleanup() {
	for l in ospf ha-cluster; do [ -d "$work/$l" ] && umlab clean -d "$work/$l" >/dev/null 2>&1; done
	rm -rf "$work"
}
trap cleanup EXIT
status=0
for l in ospf ha-cluster; do
	cp -r "labs/$l" "$work/$l"
	echo "-- labs/$l"
	t0=$SECONDS
	umlab start -d "$work/$l" >/dev/null
	echo "   started in $((SECONDS - t0)) s"
	case $l in
	ospf) args=(-n "$RUNS") ;;
	ha-cluster) args=(--no-restart) ;;
	esac
	bash "$work/$l/failover.sh" -d "$work/$l" "${args[@]}" >"$work/$l.out" 2>&1 || status=1
	sed -n '/^== result/,$p' "$work/$l.out" | sed 's/^/   /'
	umlab clean -d "$work/$l" >/dev/null
done
exit $status
