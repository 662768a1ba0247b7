#!/usr/bin/env bash
# make demo: a working virtual lab in under a minute.
# Starts a switch, boots two UML 6.1 guests on it (daemon transport), shows
# them pinging each other and what the switch reports, then shuts everything
# down: guests halted through their management console, every process group
# we started killed by pid, every file removed.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
bin=$root/bin
cache=$(bash internal/testbed/provision.sh)

work=$(mktemp -d /tmp/umlutils-demo.XXXXXX)
pgids=()
cleanup() {
	set +e
	for p in "${pgids[@]}"; do kill -KILL -- "-$p" 2>/dev/null; done
	for u in "${umids[@]:-}"; do [ -n "$u" ] && rm -rf "$HOME/.uml/$u"; done
	rm -rf "$work"
}
trap cleanup EXIT
umids=()

# UML 6.1 needs the ptrace shim on hosts with large XSAVE areas (docs/testbed.md §3);
# provision.sh builds it.
shim=$cache/ptracefix.so

ctl=$work/switch.ctl
mgmt=$work/switch.mgmt
echo "== starting uml_switch -mgmt $mgmt -unix $ctl"
setsid "$bin/uml_switch" -mgmt "$mgmt" -unix "$ctl" </dev/null >"$work/switch.log" 2>&1 &
pgids+=($!); disown
for _ in $(seq 50); do [ -S "$ctl" ] && break; sleep 0.1; done
[ -S "$ctl" ] || { echo "switch did not come up"; cat "$work/switch.log"; exit 1; }

guest() { # name addr peer mac
	local name=$1 addr=$2 peer=$3 mac=$4 umid=demo-$1-$$
	umids+=("$umid")
	cat >"$work/$name.sh" <<SCRIPT
#!/bin/sh
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
grep -q "demo_guest=$umid" /proc/cmdline || exit 1
ip link set lo up
ip addr add $addr/24 dev eth0
ip link set eth0 up
echo "$name is up: eth0 \$(cat /sys/class/net/eth0/address) $addr"
sleep 1
ping -c 4 -i 0.3 -W 5 $peer
sleep 3
echo o > /proc/sysrq-trigger
SCRIPT
	chmod +x "$work/$name.sh"
	LD_PRELOAD=$shim setsid /usr/bin/linux.uml umid="$umid" mem=64M root=/dev/root \
		rootfstype=hostfs rootflags=/ rw init="$work/$name.sh" demo_guest="$umid" \
		con0=fd:0,fd:1 con=null ssl=null "eth0=daemon,$mac,unix,$ctl" \
		</dev/null >"$work/$name.log" 2>&1 &
	pgids+=($!); disown
}
echo "== booting guests alpha (10.0.0.1) and beta (10.0.0.2)"
guest alpha 10.0.0.1 10.0.0.2 fe:fd:0a:00:00:01
guest beta 10.0.0.2 10.0.0.1 fe:fd:0a:00:00:02

deadline=$((SECONDS + 45))
while [ $SECONDS -lt $deadline ]; do
	grep -q 'packets transmitted' "$work/alpha.log" 2>/dev/null &&
		grep -q 'packets transmitted' "$work/beta.log" 2>/dev/null && break
	sleep 0.5
done
for g in alpha beta; do
	echo "== guest $g"
	sed -n '/is up: eth0/,/packets transmitted/p;/rtt min/p' "$work/$g.log" | sed "s/^/  [$g] /"
done
echo "== what the switch printed"
sed 's/^/  [switch] /' "$work/switch.log"
echo "== uml_switchctl $mgmt ports"
"$bin/uml_switchctl" "$mgmt" ports | sed 's/^/  /'
echo "== uml_switchctl $mgmt macs"
"$bin/uml_switchctl" "$mgmt" macs | sed 's/^/  /'

ok=0
grep -q ' 0% packet loss' "$work/alpha.log" && grep -q ' 0% packet loss' "$work/beta.log" && ok=1
echo "== shutting down"
for u in "${umids[@]}"; do "$bin/uml_mconsole" -t 3 "$u" halt >/dev/null 2>&1 || true; done
sleep 0.5
if [ $ok = 1 ]; then
	echo "== demo OK: the two guests pinged each other through the switch"
else
	echo "== demo FAILED: see the output above"; exit 1
fi
