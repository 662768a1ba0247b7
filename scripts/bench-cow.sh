#!/usr/bin/env bash
# bench-cow.sh: our uml_moo against the C original (and cp) on the same
# inputs in the same run, with ratios. Targets (issue 3):
#   dense 1 GiB image, 2% dirty:      ours <= 1.5 x `cp --sparse=always`
#   8 GiB mostly-empty image, 1% dirty: ours >= 20 x faster than the C tool
#   -d:                                ours no slower than the C tool
# Inputs are built here: sparse files (truncate) with random data written
# into them, COW files made by the C uml_mkcow and dirtied by a perl script
# in runs of 8 sectors (4 KiB, a guest file system block). Each timed run
# starts with its inputs in the page cache and nothing dirty to flush.
# Exits 0 whether or not a target is met (it is a benchmark, not a test);
# prints MISSED next to a missed target.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
C_MOO=${C_MOO:-/usr/bin/uml_moo}
C_MKCOW=${C_MKCOW:-/usr/bin/uml_mkcow}
for t in "$C_MOO" "$C_MKCOW" perl cmp; do
	command -v "$t" >/dev/null || { echo "bench-cow: $t is missing (Debian packages uml-utilities, perl)" >&2; exit 1; }
done
work=$(mktemp -d "${TMPDIR:-/tmp}/bench-cow.XXXXXX")
trap 'rm -rf "$work"' EXIT
(cd "$root" && go build -o "$work/uml_moo" ./cmd/uml_moo)
OURS=$work/uml_moo

now() { date +%s%N; }
# timed NAME CMD...: runs CMD, stores its wall time (ns) in T_NAME.
timed() {
	local name=$1 s e
	shift
	sync
	s=$(now)
	"$@" >/dev/null
	e=$(now)
	printf -v "T_$name" '%s' $((e - s))
}
# best3 NAME OUT CMD...: the best of three runs of CMD (which writes OUT),
# for the fast commands whose times the machine's other load can blur.
best3() {
	local name=$1 out=$2 best=0 i v
	shift 2
	for i in 1 2 3; do
		rm -f "$out"
		timed one "$@"
		v=$T_one
		if [ "$best" = 0 ] || [ "$v" -lt "$best" ]; then best=$v; fi
	done
	printf -v "T_$name" '%s' "$best"
}
secs() { awk -v n="$1" 'BEGIN { printf "%.3f s", n / 1e9 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
verdict() { awk -v v="$1" -v op="$2" -v lim="$3" 'BEGIN { ok = (op == "<=") ? v <= lim : v >= lim; print ok ? "ok" : "MISSED" }'; }

# dirty COW IMAGE_SECTORS FRACTION SEED: marks runs of 8 sectors dirty in
# the v3 COW file (bitmap at 8192, data after it) with random data.
dirty() {
	perl -e '
		use strict;
		my ($cow, $sectors, $frac, $seed) = @ARGV;
		srand($seed);
		open(my $f, "+<", $cow) or die "$cow: $!";
		binmode $f;
		my $bitmap_len = int(($sectors + 7) / 8);
		my $data = 8192 + $bitmap_len;
		$data = int(($data + 4095) / 4096) * 4096;
		my $runs = int($sectors * $frac / 8);
		my $groups = int($sectors / 8);
		my %seen;
		open(my $r, "<", "/dev/urandom") or die;
		binmode $r;
		while (keys %seen < $runs) {
			my $g = int(rand($groups));
			next if $seen{$g}++;
			seek($f, 8192 + $g, 0); print $f "\xff";
			read($r, my $buf, 4096) == 4096 or die;
			seek($f, $data + $g * 4096, 0); print $f $buf;
		}
		close($f) or die;
	' "$@"
}

# same A B: byte-equal, reading only the data segments of either file
# (SEEK_DATA/SEEK_HOLE): cmp would read 8 GiB of holes twice.
same() {
	perl -e '
		use strict;
		use Fcntl qw(SEEK_SET);
		my ($SEEK_DATA, $SEEK_HOLE) = (3, 4);
		my ($a, $b) = @ARGV;
		open(my $fa, "<", $a) or die "$a: $!";
		open(my $fb, "<", $b) or die "$b: $!";
		binmode $fa; binmode $fb;
		exit 1 if -s $fa != -s $fb;
		my $size = -s $fa;
		for my $f ($fa, $fb) {
			my $pos = 0;
			while ($pos < $size) {
				my $d = sysseek($f, $pos, $SEEK_DATA) or last;
				my $h = sysseek($f, $d, $SEEK_HOLE);
				for (my $o = $d; $o < $h; $o += 1 << 20) {
					my $n = $h - $o < (1 << 20) ? $h - $o : 1 << 20;
					sysseek($fa, $o, SEEK_SET); sysread($fa, my $x, $n);
					sysseek($fb, $o, SEEK_SET); sysread($fb, my $y, $n);
					exit 1 if $x ne $y;
				}
				$pos = $h;
			}
		}
	' "$1" "$2" || { echo "bench-cow: $1 and $2 differ" >&2; return 1; }
}

# random_at FILE OFFSET_MIB MIB: writes random data into a sparse file.
random_at() { dd if=/dev/urandom of="$1" bs=1M seek="$2" count="$3" conv=notrunc status=none; }

cd "$work"
echo "bench-cow: building inputs in $work"; SECONDS=0
truncate -s 1G dense.img
random_at dense.img 0 1024
touch -d @1700000000 dense.img
"$C_MKCOW" dense.cow dense.img >/dev/null
dirty dense.cow $((1 << 21)) 0.02 1

truncate -s 8G sparse.img
for at in 0 1024 3000 5000 8000; do random_at sparse.img "$at" 12; done
touch -d @1700000000 sparse.img
"$C_MKCOW" sparse.cow sparse.img >/dev/null
dirty sparse.cow $((1 << 24)) 0.01 2
cat dense.img >/dev/null

echo
echo "== dense 1 GiB image, 2% of sectors dirty [t=${SECONDS}s]"
best3 cp cp.out cp --sparse=always dense.img cp.out
rm -f cp.out
best3 go go.out "$OURS" dense.cow go.out
timed c "$C_MOO" dense.cow c.out
cmp go.out c.out || { echo "bench-cow: our merge differs from the C tool's" >&2; exit 1; }
rm -f go.out c.out
r=$(ratio "$T_go" "$T_cp")
echo "cp --sparse=always (best of 3): $(secs "$T_cp")   ours (best of 3): $(secs "$T_go")   C uml_moo: $(secs "$T_c")"
echo "ours / cp = $r (target <= 1.5: $(verdict "$r" "<=" 1.5))   C / ours = $(ratio "$T_c" "$T_go")"

echo
echo "== 8 GiB mostly-empty image (60 MiB of data), 1% of sectors dirty [t=${SECONDS}s]"
timed go "$OURS" sparse.cow go.out
timed c "$C_MOO" sparse.cow c.out
same go.out c.out
echo "ours: $(secs "$T_go") ($(du -k go.out | cut -f1) KiB allocated)   C uml_moo: $(secs "$T_c") ($(du -k c.out | cut -f1) KiB allocated)"
rm -f go.out c.out
r=$(ratio "$T_c" "$T_go")
echo "C / ours = $r (target >= 20: $(verdict "$r" ">=" 20))"

echo
echo "== -d (in place) on the 8 GiB image, best of 3; ours includes its fsync, the C tool's run is followed by sync FILE [t=${SECONDS}s]"
cp --sparse=always --preserve=timestamps sparse.img go.img
cp --sparse=always --preserve=timestamps sparse.img c.img
best_go=0 best_c=0
for i in 1 2 3; do
	# Each merge changes the file's mtime; put back the one the COW header
	# records so the next run is accepted (it writes the same sectors again).
	touch -d @1700000000 go.img c.img
	timed go "$OURS" -d -b go.img sparse.cow
	timed c sh -c "$C_MOO -d -b c.img sparse.cow && sync c.img"
	if [ "$best_go" = 0 ] || [ "$T_go" -lt "$best_go" ]; then best_go=$T_go; fi
	if [ "$best_c" = 0 ] || [ "$T_c" -lt "$best_c" ]; then best_c=$T_c; fi
done
same go.img c.img
rm -f go.img c.img
r=$(ratio "$best_c" "$best_go")
echo "ours: $(secs "$best_go")   C uml_moo + sync: $(secs "$best_c")"
echo "C / ours = $r (target >= 1: $(verdict "$r" ">=" 1))"
echo "total: ${SECONDS}s"
