#!/bin/bash
# Job throughput on the sandbox: TRIALS (default 1000) trials of a trivial task
# (the oracle writes a file, test.sh checks it with `test` and writes the reward)
# at -n 1, 4, 16, 64. Prints trials/s and rollout's peak RSS (the largest of the
# orchestrator and its trial workers, from wait4's rusage). Targets at -n 16:
# >= 100 trials/s, peak RSS <= 32 MB.
set -eu
cd "$(dirname "$0")/.."
source tests/lib/fixtures.sh
ROLLOUT=$PWD/rollout
TRIALS=${TRIALS:-1000}
LEVELS=${LEVELS:-1 4 16 64}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export ROLLOUT_HOME=$work/home
command -v /usr/bin/time >/dev/null || apt-get install -y -q time >/dev/null
"$ROLLOUT" image import "$(fixture_busybox_tar)" --tag rollout-test/busybox:1 --change 'WORKDIR /app' >/dev/null

t=$work/trivial
mkdir -p "$t/environment" "$t/solution" "$t/tests"
echo "Write ok to /app/out." >"$t/instruction.md"
printf 'FROM rollout-test/busybox:1\n' >"$t/environment/Dockerfile"
printf '#!/bin/sh\necho ok > /app/out\n' >"$t/solution/solve.sh"
printf '#!/bin/sh\nif test -s /app/out; then echo 1; else echo 0; fi > /logs/verifier/reward.txt\n' >"$t/tests/test.sh"
chmod +x "$t/solution/solve.sh" "$t/tests/test.sh"
printf '[environment]\ndocker_image = "rollout-test/busybox:1"\nmemory_mb = 128\nallow_internet = false\n' >"$t/task.toml"

printf '%-6s %8s %10s %10s %12s %8s\n' "-n" trials "seconds" "trials/s" "peak RSS MB" "mean"
for n in $LEVELS; do
	name=bench-n$n
	/usr/bin/time -f '%e %M' -o "$work/time" "$ROLLOUT" run -q -p "$t" -k "$TRIALS" -n "$n" \
		-o "$work/jobs" --job-name "$name" >/dev/null 2>"$work/err" || { cat "$work/err"; exit 1; }
	read -r secs rss_kb <"$work/time"
	mean=$("$ROLLOUT" jobs summarize --json "$work/jobs/$name" | grep -m1 '"mean"' | tr -dc '0-9.')
	awk -v n="$n" -v t="$TRIALS" -v s="$secs" -v r="$rss_kb" -v m="$mean" \
		'BEGIN { printf "%-6s %8d %10.2f %10.1f %12.1f %8s\n", n, t, s, t / s, r / 1024, m }'
	rm -rf "$work/jobs/$name"
done
