#!/bin/bash
# Image store benchmarks on the Debian minbase + python3 + pytest fixture (~68 MB
# tar.gz, ~185 MB of files):
#  1. unpacking its layer: `rollout image import` (decompress, hash both digests,
#     extract, commit) against `tar -xzf` of the same file into an empty directory,
#     alternately in the same run; the ratio of the medians (target <= 1.0);
#  2. loading the same image a second time from a docker save archive: median wall
#     time (target <= 50 ms), and that no layer was unpacked again.
# BENCH_RUNS (default 5) sets the number of runs of each.
set -u
cd "$(dirname "$0")/.." || exit 1
ROLLOUT=${ROLLOUT:-$PWD/rollout}
source tests/lib/fixtures.sh
source tests/lib/images.sh
runs=${BENCH_RUNS:-5}
deb=$(fixture_debian_tar) || { echo "cannot build the Debian fixture" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/var/tmp}/rollout-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT

now_ns() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "fixture: $deb ($(du -m "$deb" | cut -f1) MB), $runs runs each, $(nproc) CPUs"
cat "$deb" >/dev/null # both read it from the page cache
: >"$work/tar.times"
: >"$work/rollout.times"
# Nothing is deleted between runs (with ext4's "discard", extracting right after
# deleting a big tree is several times slower), and each run starts after a sync so
# the previous run's writeback does not land on it.
for i in $(seq 1 "$runs"); do
	mkdir "$work/x$i"
	sync
	t0=$(now_ns)
	tar -xzf "$deb" -C "$work/x$i" || exit 1
	t1=$(now_ns)
	echo $(((t1 - t0) / 1000)) >>"$work/tar.times"
	sync
	t0=$(now_ns)
	ROLLOUT_HOME=$work/store$i "$ROLLOUT" image import "$deb" --tag bench/debian:1 >/dev/null || exit 1
	t1=$(now_ns)
	echo $(((t1 - t0) / 1000)) >>"$work/rollout.times"
done
rm -rf "$work"/x* "$work"/store*
sync
tar_us=$(median <"$work/tar.times")
rollout_us=$(median <"$work/rollout.times")
div() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
printf 'unpack: rollout image import %s s, tar -xzf %s s (medians; all: rollout %s / tar %s us)\n' \
	"$(div "$rollout_us" 1000000)" "$(div "$tar_us" 1000000)" \
	"$(paste -sd' ' "$work/rollout.times")" "$(paste -sd' ' "$work/tar.times")"
printf 'unpack ratio rollout/tar: %.2f (target <= 1.0)\n' "$(div "$rollout_us" "$tar_us")"

# Second load of the same docker save archive.
gzip -dc "$deb" >"$work/layer.tar"
docker_archive "$work/debian-save.tar" bench/debian:1 "$work/layer.tar"
rm -f "$work/layer.tar"
export ROLLOUT_HOME=$work/store
"$ROLLOUT" image load "$work/debian-save.tar" >/dev/null || exit 1
before=$(ls -l --time-style=+%s.%N "$ROLLOUT_HOME/layers")
: >"$work/load.times"
for i in $(seq 1 "$runs"); do
	t0=$(now_ns)
	"$ROLLOUT" image load "$work/debian-save.tar" >/dev/null || exit 1
	t1=$(now_ns)
	echo $(((t1 - t0) / 1000)) >>"$work/load.times"
done
after=$(ls -l --time-style=+%s.%N "$ROLLOUT_HOME/layers")
load_us=$(median <"$work/load.times")
[ "$before" = "$after" ] && again=0 || again="some (layers/ changed)"
printf 'second load: %s ms (median; all: %s us; target <= 50 ms), layers unpacked again: %s\n' \
	"$(div "$load_us" 1000)" "$(paste -sd' ' "$work/load.times")" "$again"
