#!/bin/bash
# Trial overhead: a whole trial's wall time (result.json started_at..finished_at)
# minus the time spent inside the agent's and the verifier's own commands
# (result.json "timing"), for test-dataset/hello-world with the oracle on an image
# already built. Target: sandbox median <= 20 ms; docker reported beside it.
#   RUNS=20 PROVIDERS="sandbox docker" bench/trial_overhead.sh
set -u
cd "$(dirname "$0")/.."
source tests/lib/fixtures.sh
source tests/lib/tap.sh >/dev/null
source tests/lib/dockerd.sh
ROLLOUT=$PWD/rollout
RUNS=${RUNS:-20}
work=$(mktemp -d)
trap 'rm -rf "$work"; dockerd_stop' EXIT
export ROLLOUT_HOME=$work/home

stats() { # stdin: numbers (ms) -> "median p10 p90"
	sort -n | awk '{ v[NR] = $1 } END {
		if (NR == 0) { print "- - -"; exit }
		hi = int(NR * 0.9); if (hi < 1) hi = 1
		printf "%.1f %.1f %.1f\n", v[int((NR + 1) / 2)], v[int(NR * 0.1) + 1], v[hi] }'
}

printf '%-8s %6s  %-22s %-22s %s\n' provider runs "overhead ms (med p10 p90)" "whole trial ms (med)" "commands ms (med)"
for p in ${PROVIDERS:-sandbox docker}; do
	case $p in
	sandbox)
		"$ROLLOUT" image import "$(fixture_debian_tar)" --tag rollout-test/debian:1 --change 'WORKDIR /app' >/dev/null || continue ;;
	docker)
		dockerd_ensure || { echo "docker: skipped ($DOCKERD_WHY)"; continue; }
		fixture_docker_image debian >/dev/null || continue ;;
	esac
	# The first trial builds the task image; the measured ones reuse it.
	"$ROLLOUT" trial run -q -e "$p" -p test-dataset/hello-world --trials-dir "$work/warm-$p" >/dev/null 2>&1
	for i in $(seq 1 "$RUNS"); do
		"$ROLLOUT" trial run -q -e "$p" -p test-dataset/hello-world --trials-dir "$work/t-$p" >/dev/null 2>&1
	done
	python3 - "$work/t-$p" >"$work/rows" <<'PY'
import datetime, glob, json, sys
for f in glob.glob(sys.argv[1] + "/*/result.json"):
    r = json.load(open(f))
    if (r.get("verifier_result") or {}).get("rewards", {}).get("reward") != 1:
        continue
    t = lambda s: datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
    total = t(r["finished_at"]) - t(r["started_at"])
    cmds = r["timing"]["agent_commands_sec"] + r["timing"]["verifier_commands_sec"]
    print("%.3f %.3f %.3f" % (1000 * (total - cmds), 1000 * total, 1000 * cmds))
PY
	n=$(wc -l <"$work/rows")
	printf '%-8s %6s  %-22s %-22s %s\n' "$p" "$n" "$(cut -d' ' -f1 "$work/rows" | stats)" \
		"$(cut -d' ' -f2 "$work/rows" | stats | cut -d' ' -f1)" "$(cut -d' ' -f3 "$work/rows" | stats | cut -d' ' -f1)"
done
