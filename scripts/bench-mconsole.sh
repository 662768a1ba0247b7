#!/usr/bin/env bash
# Benchmark: one-shot and piped uml_mconsole commands against one real
# UML 6.1 guest, ours and the C original in the same run.
# Run by `make bench` after `make build provision`; prints times and ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
ours=bin/uml_mconsole
[ -x "$ours" ] || { mkdir -p bin; go build -o bin/ ./cmd/uml_mconsole; }
theirs=/usr/bin/uml_mconsole
cache=${UMLUTILS_TESTBED:-${XDG_CACHE_HOME:-$HOME/.cache}/umlutils/testbed}
shim=$cache/ptracefix.so
for f in "$theirs" /usr/bin/linux.uml "$shim"; do
	[ -e "$f" ] || { echo "bench-mconsole: missing $f (run make provision)" >&2; exit 1; }
done
N=${N:-200}

work=$(mktemp -d)
umid=bench$$
pgid=
cleanup() {
	# The kernel leads its own session and process group (setsid); when
	# setsid had to fork, $! is not that group, so take the kernel's pid.
	local k
	k=$(cat "$HOME/.uml/$umid/pid" 2>/dev/null || true)
	[ -n "$k" ] && kill -KILL -- "-$k" 2>/dev/null || true
	[ -n "$pgid" ] && kill -KILL -- "-$pgid" 2>/dev/null || true
	rm -rf "$work" "$HOME/.uml/$umid"
}
trap cleanup EXIT
cat > "$work/init.sh" <<INIT
#!/bin/sh
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
grep -q "bench_guest=$umid" /proc/cmdline && [ "\$(cat /proc/sys/kernel/hostname)" = "(none)" ] || exit 1
echo BENCH-READY
sleep 120
echo o > /proc/sysrq-trigger
INIT
chmod +x "$work/init.sh"
setsid env LD_PRELOAD="$shim" /usr/bin/linux.uml umid=$umid mem=64M root=/dev/root \
	rootfstype=hostfs rootflags=/ rw init="$work/init.sh" con0=fd:0,fd:1 con=null \
	ssl=null bench_guest=$umid </dev/null >"$work/console" 2>&1 &
pgid=$!
disown "$pgid" 2>/dev/null || true  # no "Killed" notice when the trap stops it
for _ in $(seq 300); do grep -q BENCH-READY "$work/console" && break; sleep 0.1; done
grep -q BENCH-READY "$work/console" || { echo "bench-mconsole: guest did not boot" >&2; tail "$work/console" >&2; exit 1; }

now() { date +%s.%N; }
oneshot() { # binary -> seconds for N one-shot `version` commands
	local t0 t1
	t0=$(now)
	for _ in $(seq "$N"); do "$1" "$umid" version >/dev/null; done
	t1=$(now)
	awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }'
}
piped() { # binary -> seconds for N commands piped into one process
	local t0 t1
	t0=$(now)
	yes version | head -n "$N" | "$1" "$umid" >/dev/null
	t1=$(now)
	awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }'
}
c1=$(oneshot "$theirs"); o1=$(oneshot "$ours")
c2=$(piped "$theirs"); o2=$(piped "$ours")
awk -v n="$N" -v c1="$c1" -v o1="$o1" -v c2="$c2" -v o2="$o2" 'BEGIN {
	printf "%-34s %10s %10s %8s\n", "uml_mconsole (" n " commands)", "C ms/cmd", "ours", "ours/C"
	printf "%-34s %10.3f %10.3f %8.2f\n", "one-shot: a process per command", c1*1000/n, o1*1000/n, o1/c1
	printf "%-34s %10.3f %10.3f %8.2f\n", "piped: one process, N commands", c2*1000/n, o2*1000/n, o2/c2
}'
