#!/bin/bash
# Job throughput on the sandbox: TRIALS (default 1000) trials of a trivial task
# (the oracle writes a file, test.sh checks it with `test` and writes the reward)
# at -n 1, 4, 16, 64. Prints trials/s and rollout's peak RSS (the largest of the
# orchestrator and its trial workers, from wait4's rusage). Targets at -n 16:
# >= 100 trials/s, peak RSS <= 32 MB.
# The work directory (under TMPDIR) holds ROLLOUT_HOME and the job directories;
# each trial creates and deletes some thirty inodes there. On an ext4 without a
# journal (this project's VMs) the inode allocator steps over every inode of the
# block group deleted in the last minutes, reading its inode block, so crowding
# one group is quadratic; rollout marks envs/, layers/ and the job directory
# "top of hierarchy" (chattr +T) so their trees spread over the groups. When
# TMPDIR is such a filesystem and we are root, the levels are run a second time
# on a loop-mounted ext4 with the default journal, for comparison (BENCH_LOOP=0:
# not).
set -eu
cd "$(dirname "$0")/.."
source tests/lib/fixtures.sh
ROLLOUT=$PWD/rollout
TRIALS=${TRIALS:-1000}
LEVELS=${LEVELS:-1 4 16 64}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
command -v /usr/bin/time >/dev/null || apt-get install -y -q time >/dev/null

t=$work/trivial
mkdir -p "$t/environment" "$t/solution" "$t/tests"
echo "Write ok to /app/out." >"$t/instruction.md"
printf 'FROM rollout-test/busybox:1\n' >"$t/environment/Dockerfile"
printf '#!/bin/sh\necho ok > /app/out\n' >"$t/solution/solve.sh"
printf '#!/bin/sh\nif test -s /app/out; then echo 1; else echo 0; fi > /logs/verifier/reward.txt\n' >"$t/tests/test.sh"
chmod +x "$t/solution/solve.sh" "$t/tests/test.sh"
printf '[environment]\ndocker_image = "rollout-test/busybox:1"\nmemory_mb = 128\nallow_internet = false\n' >"$t/task.toml"

fs_line() { # DIR -> "FSTYPE SOURCE journal|no-journal"
	local src fstype dev
	read -r src fstype < <(findmnt -n -o SOURCE,FSTYPE -T "$1")
	dev=$(basename "$src")
	if [ "$fstype" = ext4 ]; then
		if compgen -G "/proc/fs/jbd2/$dev-*" >/dev/null; then
			echo "$fstype $src journal"
		else
			echo "$fstype $src no-journal"
		fi
	else
		echo "$fstype $src"
	fi
}

run_levels() { # DIR (ROLLOUT_HOME and jobs under it)
	local dir=$1 n name secs rss_kb mean
	export ROLLOUT_HOME=$dir/home
	"$ROLLOUT" image import "$(fixture_busybox_tar)" --tag rollout-test/busybox:1 \
		--change 'WORKDIR /app' >/dev/null
	echo "filesystem: $(fs_line "$dir")"
	printf '%-6s %8s %10s %10s %12s %8s\n' "-n" trials "seconds" "trials/s" "peak RSS MB" "mean"
	for n in $LEVELS; do
		name=bench-n$n
		/usr/bin/time -f '%e %M' -o "$work/time" "$ROLLOUT" run -q -p "$t" -k "$TRIALS" -n "$n" \
			-o "$dir/jobs" --job-name "$name" >/dev/null 2>"$work/err" || { cat "$work/err"; exit 1; }
		read -r secs rss_kb <"$work/time"
		mean=$("$ROLLOUT" jobs summarize --json "$dir/jobs/$name" | grep -m1 '"mean"' | tr -dc '0-9.')
		awk -v n="$n" -v t="$TRIALS" -v s="$secs" -v r="$rss_kb" -v m="$mean" \
			'BEGIN { printf "%-6s %8d %10.2f %10.1f %12.1f %8s\n", n, t, s, t / s, r / 1024, m }'
		rm -rf "$dir/jobs/$name"
	done
}

run_levels "$work"
case "$(fs_line "$work")" in
*no-journal)
	[ "$(id -u)" = 0 ] && [ "${BENCH_LOOP:-1}" = 1 ] || exit 0
	img=$(mktemp /var/tmp/rollout-bench-ext4.XXXXXX)
	mnt=$work/loop
	mkdir -p "$mnt"
	trap 'umount "$mnt" 2>/dev/null; rm -f "$img"; rm -rf "$work"' EXIT
	truncate -s 8G "$img" && mkfs.ext4 -q -F "$img" && mount -o loop "$img" "$mnt" || exit 1
	echo
	echo "again on a loop-mounted ext4 with a journal (mkfs.ext4 defaults), same disk:"
	run_levels "$mnt"
	;;
esac
