#!/usr/bin/env bash
# make demo: the seed's OSPF failover lesson, run by umlab.
# Starts labs/ospf (four FRR routers in a ring, one hub per segment) from a
# copy of the lab, runs its lesson (labs/ospf/failover.sh: node01 pings
# node03's service address while node04's link goes down, then node04
# crashes) and prints the measured outages, then removes everything the lab
# left. The first run builds the root image (a few minutes, as root).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export PATH=$root/bin:$PATH

work=$(mktemp -d /tmp/umlutils-demo.XXXXXX)
lab=$work/ospf
cleanup() {
	set +e
	umlab clean -d "$lab" >/dev/null 2>&1
	rm -rf "$work"
}
trap cleanup EXIT
cp -r labs/ospf "$lab"

echo "== umlab start -d $lab   (4 routers: node01..node04 in a ring)"
t0=$SECONDS
umlab start -d "$lab"
echo "== the lab is up after $((SECONDS - t0)) s"
umlab info -d "$lab"
echo
echo "== the lesson: labs/ospf/failover.sh"
status=0
UMLAB=umlab bash "$lab/failover.sh" -d "$lab" || status=$?
echo
if [ $status = 0 ]; then
	echo "== demo OK: traffic rerouted within the targets, both times"
else
	echo "== demo FAILED (failover.sh exited $status): see above"
fi
exit $status
