# Generated tasks on the busybox fixture image, and readers of their results.
#   busybox_task ROOT NAME SOLVE TEST [AGENT_TIMEOUT] [TOP_TOML] [END_TOML]
#                                one task: SOLVE and TEST are the bodies of
#                                solution/solve.sh and tests/test.sh; TOP_TOML goes
#                                before the first table (e.g. artifacts = [...]),
#                                END_TOML after [environment] (e.g. [environment.env])
#   make_mixed_dataset DIR       pass-1..3 (reward 1), fail-1..2 (reward 0),
#                                error-1..2 (no reward file), slow-1..2 (agent timeout
#                                after 1 s, still verified: reward 1 + AgentTimeoutError)
#   trial_of JOB_DIR TASK        the trial directory of TASK in the job
#   result_field TRIAL_DIR EXPR  a Python expression over r, the trial's result.json
#   reward_of TRIAL_DIR          its "reward" as %g, or None
#   trial_seconds TRIAL_DIR      whole seconds from started_at to finished_at
#   normalized_stats JOB_DIR     `rollout jobs summarize --json`, distributions as counts
busybox_task() {
	local t=$1/$2
	mkdir -p "$t/environment" "$t/solution" "$t/tests"
	echo "Task $2." >"$t/instruction.md"
	printf 'FROM rollout-test/busybox:1\n' >"$t/environment/Dockerfile"
	printf '#!/bin/sh\n%s\n' "$3" >"$t/solution/solve.sh"
	printf '#!/bin/sh\n%s\n' "$4" >"$t/tests/test.sh"
	chmod +x "$t/solution/solve.sh" "$t/tests/test.sh"
	cat >"$t/task.toml" <<TOML
version = "1.0"
${6:-}
[agent]
timeout_sec = ${5:-60.0}
[verifier]
timeout_sec = 30.0
[environment]
docker_image = "rollout-test/busybox:1"
memory_mb = 256
allow_internet = false
${7:-}
TOML
}

trial_of() {
	local d
	for d in "$1"/"$2"__*; do [ -d "$d" ] && { echo "$d"; return; }; done
}

result_field() {
	python3 -c 'import json,sys; r=json.load(open(sys.argv[1]+"/result.json")); print(eval(sys.argv[2]))' "$1" "$2" 2>/dev/null
}

trial_seconds() {
	result_field "$1" '(lambda t: int(t(r["finished_at"]) - t(r["started_at"])))(lambda s: __import__("datetime").datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp())'
}

reward_of() {
	result_field "$1" '(lambda v: v if v is None else "%g" % v)((r.get("verifier_result") or {}).get("rewards",{}).get("reward"))'
}

make_mixed_dataset() {
	local root=$1 n
	mk_task() { busybox_task "$root" "$@"; }
	for n in 1 2 3; do
		mk_task pass-$n 'echo ok > /app/out' '[ "$(cat /app/out)" = ok ] && echo 1 > /logs/verifier/reward.txt || echo 0 > /logs/verifier/reward.txt' 30.0
	done
	for n in 1 2; do
		mk_task fail-$n 'echo wrong > /app/out' '[ "$(cat /app/out)" = ok ] && echo 1 > /logs/verifier/reward.txt || echo 0 > /logs/verifier/reward.txt' 30.0
		mk_task error-$n 'true' 'echo no reward written' 30.0
		mk_task slow-$n 'sleep 30' 'echo 1 > /logs/verifier/reward.txt' 1.0
	done
}

normalized_stats() {
	"$ROLLOUT" jobs summarize --json "$1" | python3 -c '
import json, sys
s = json.load(sys.stdin)
out = {"n_trials": s["n_trials"], "n_errors": s["n_errors"], "evals": {}}
for k, e in s["evals"].items():
    out["evals"][k] = {
        "n_trials": e["n_trials"], "n_errors": e["n_errors"], "metrics": e["metrics"],
        "pass_at_k": e.get("pass_at_k"),
        "reward_stats": {rk: {v: len(n) for v, n in d.items()} for rk, d in e["reward_stats"].items()},
        "exception_stats": {t: len(n) for t, n in e["exception_stats"].items()},
    }
print(json.dumps(out, sort_keys=True))'
}
