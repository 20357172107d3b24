#!/bin/bash
# Trials end to end on each provider: every outcome of test-dataset, agents (oracle,
# nop, an installed-style agent defined in the job file, a host-side agent driving
# the environment with `rollout env exec`), preserve_env policies; each trial
# directory is checked file by file against Harbor's layout.
source "$(dirname "$0")/../lib/tap.sh"
source "$ROLLOUT_SRCDIR/tests/lib/providers.sh"
source "$ROLLOUT_SRCDIR/tests/lib/jobfixtures.sh"
source "$ROLLOUT_SRCDIR/tests/lib/leftovers.sh"
cd "$ROLLOUT_SRCDIR" || exit 1
tap_tmpdir

# check_trial NAME DIR EXPECT...: the trial directory has Harbor's layout and result.
# EXPECT items: reward=X, rewards=JSON, exception=TYPE, noexception, file=REL (must
# exist), nofile=REL (must not exist).
check_trial() {
	local name=$1 dir=$2 problems
	shift 2
	problems=$(python3 - "$dir" "$@" <<'PY'
import json, os, sys
d, expects = sys.argv[1], sys.argv[2:]
bad = []
def need(p):
    if not os.path.exists(os.path.join(d, p)):
        bad.append("missing " + p)
for p in ["config.json", "result.json", "trial.log", "agent", "verifier", "artifacts"]:
    need(p)
try:
    r = json.load(open(os.path.join(d, "result.json")))
except Exception as e:
    print("result.json: %s" % e); sys.exit(0)
for k in ["id", "task_name", "trial_name", "trial_uri", "task_id", "task_checksum", "config",
          "agent_info", "agent_result", "verifier_result", "exception_info", "started_at",
          "finished_at", "environment_setup", "agent_setup", "agent_execution", "verifier"]:
    if k not in r:
        bad.append("result.json lacks " + k)
if r.get("trial_name") != os.path.basename(d.rstrip("/")):
    bad.append("trial_name %r is not the directory name" % r.get("trial_name"))
if not r.get("finished_at"):
    bad.append("no finished_at")
if r.get("environment_setup") and not r["environment_setup"].get("finished_at"):
    bad.append("environment_setup without finished_at")
cfg = json.load(open(os.path.join(d, "config.json")))
if cfg.get("trial_name") != r.get("trial_name"):
    bad.append("config.json trial_name differs")
exc = r.get("exception_info")
if exc and not os.path.exists(os.path.join(d, "exception.txt")):
    bad.append("exception_info without exception.txt")
if not exc and os.path.exists(os.path.join(d, "exception.txt")):
    bad.append("exception.txt without exception_info")
rewards = (r.get("verifier_result") or {}).get("rewards")
for e in expects:
    k, _, v = e.partition("=")
    if k == "reward":
        if not rewards or rewards.get("reward") != float(v):
            bad.append("rewards %r, want reward=%s" % (rewards, v))
    elif k == "rewards":
        if rewards != json.loads(v):
            bad.append("rewards %r, want %s" % (rewards, v))
    elif k == "norewards":
        if rewards is not None:
            bad.append("rewards %r, want none" % rewards)
    elif k == "exception":
        if not exc or exc.get("exception_type") != v:
            bad.append("exception %r, want %s" % (exc and exc.get("exception_type"), v))
    elif k == "noexception":
        if exc:
            bad.append("unexpected exception %s: %s" % (exc.get("exception_type"), exc.get("exception_message")))
    elif k == "file":
        need(v)
    elif k == "nofile":
        if os.path.exists(os.path.join(d, v)):
            bad.append("unexpected " + v)
    elif k == "agent":
        if r["agent_info"]["name"] != v:
            bad.append("agent %r, want %s" % (r["agent_info"]["name"], v))
print("\n".join(bad))
PY
)
	if [ -z "$problems" ]; then ok "$name"; else not_ok "$name" "$dir" "$problems"; fi
}

# trial P TASK AGENT [flags] -> prints the trial directory
trial() {
	local p=$1 task=$2 agent=$3 name
	shift 3
	name=$task-$agent-$p-$RANDOM
	"$ROLLOUT" trial run -q -e "$p" -p "test-dataset/$task" -a "$agent" \
		--trials-dir "$TAP_TMP/trials-$p" --trial-name "$name" "$@" >/dev/null 2>&1
	echo "$TAP_TMP/trials-$p/$name"
}

for p in ${ROLLOUT_TEST_PROVIDERS:-sandbox docker}; do
	provider_or_next "$p" trials busybox debian || continue

	d=$(trial "$p" hello-world oracle)
	check_trial "$p: hello-world (Debian, pytest) with oracle scores 1.0" "$d" reward=1 noexception \
		file=agent/oracle.txt file=verifier/test-stdout.txt file=verifier/reward.txt nofile=exception.txt
	check_contains "$p: pytest ran offline in the verifier" "$(cat "$d/verifier/test-stdout.txt" 2>/dev/null)" "2 passed"
	d=$(trial "$p" hello-busybox nop)
	check_trial "$p: hello-busybox with nop scores 0.0" "$d" reward=0 noexception agent=nop nofile=agent/oracle.txt
	d=$(trial "$p" hello-busybox oracle)
	check_trial "$p: hello-busybox with oracle scores 1.0" "$d" reward=1 noexception
	d=$(trial "$p" agent-timeout oracle)
	check_trial "$p: agent past its timeout: AgentTimeoutError, still verified, its processes gone" \
		"$d" exception=AgentTimeoutError reward=1
	d=$(trial "$p" no-reward oracle)
	check_trial "$p: no reward file: RewardFileNotFoundError" "$d" exception=RewardFileNotFoundError norewards
	d=$(trial "$p" empty-reward oracle)
	check_trial "$p: empty reward.txt: RewardFileEmptyError" "$d" exception=RewardFileEmptyError norewards
	d=$(trial "$p" bad-reward oracle)
	check_trial "$p: non-numeric reward: VerifierOutputParseError" "$d" exception=VerifierOutputParseError norewards
	d=$(trial "$p" multi-reward oracle)
	check_trial "$p: multi-key reward.json" "$d" 'rewards={"correct": 1, "style": 0.5}' noexception file=verifier/reward.json
	d=$(trial "$p" verifier-timeout oracle)
	check_trial "$p: verifier past its timeout: VerifierTimeoutError" "$d" exception=VerifierTimeoutError
	d=$(trial "$p" missing-solution oracle)
	check_trial "$p: oracle without solve.sh: FileNotFoundError" "$d" exception=FileNotFoundError
	d=$(trial "$p" failing-build oracle --timeout-multiplier 1)
	check_trial "$p: failing Dockerfile: the build error is the exception" "$d" exception=RuntimeError norewards
	check_contains "$p: ... naming the failing step" "$(cat "$d/exception.txt" 2>/dev/null)" "exit 3"

	# preserve_env: always keeps, on_failure keeps failures only, never removes.
	d=$(trial "$p" hello-busybox oracle --preserve-env always)
	kept=$(basename "$d")
	out=$("$ROLLOUT" env ls -e "$p" 2>&1)
	check_contains "$p: preserve_env always: the environment is listed" "$out" "$kept"
	out=$("$ROLLOUT" env exec -e "$p" "$kept" -- cat /app/hello.txt 2>&1)
	check_eq "$p: ... and can be entered with env exec" "$out" "Hello, world!"
	"$ROLLOUT" env rm -e "$p" "$kept" >/dev/null 2>&1
	check_eq "$p: ... and removed with env rm" "$("$ROLLOUT" env ls -e "$p" | grep -c "$kept")" 0
	d=$(trial "$p" hello-busybox oracle --preserve-env on_failure)
	check_eq "$p: preserve_env on_failure: a passing trial's environment is removed" \
		"$("$ROLLOUT" env ls -e "$p" | grep -c "$(basename "$d")")" 0
	d=$(trial "$p" hello-busybox nop --preserve-env on_failure)
	failed=$(basename "$d")
	check_eq "$p: preserve_env on_failure: a failed trial's environment is kept" \
		"$("$ROLLOUT" env ls -e "$p" | grep -c "$failed")" 1
	"$ROLLOUT" env rm -e "$p" "$failed" >/dev/null 2>&1
	d=$(trial "$p" hello-busybox nop --preserve-env never)
	check_eq "$p: preserve_env never: removed" "$("$ROLLOUT" env ls -e "$p" | grep -c "$(basename "$d")")" 0

	# An installed-style agent defined in the job file: installs from the task image,
	# then its run template writes the answer.
	mkdir -p "$TAP_TMP/agent-$p"
	cat >"$TAP_TMP/agent-$p/install.sh" <<'EOF'
#!/bin/sh
set -e
mkdir -p /usr/local/bin
cat > /usr/local/bin/fake-agent <<'AGENT'
#!/bin/sh
# A stand-in for a real agent CLI: reads its instruction, solves hello-world.
echo "instruction: $1"
echo "Hello, world!" > /app/hello.txt
AGENT
chmod +x /usr/local/bin/fake-agent
echo installed
EOF
	cat >"$TAP_TMP/agent-$p/job.yaml" <<EOF
jobs_dir: $TAP_TMP/jobs-$p
job_name: fake-agent
agents:
  - name: fake-agent
    install: $TAP_TMP/agent-$p/install.sh
    run: "fake-agent {{instruction}}"
datasets:
  - path: test-dataset
    task_names: [hello-busybox]
environment:
  type: $p
EOF
	"$ROLLOUT" run -q "$TAP_TMP/agent-$p/job.yaml" >/dev/null 2>&1
	d=$(ls -d "$TAP_TMP/jobs-$p/fake-agent"/hello-busybox__*/ 2>/dev/null | head -1)
	check_trial "$p: job-file agent with install script and run template scores 1.0" "${d:-/none}" \
		reward=1 noexception agent=fake-agent file=agent/install.sh file=agent/setup/stdout.txt \
		file=agent/setup/return-code.txt file=agent/command-0/command.txt \
		file=agent/command-0/stdout.txt file=agent/command-0/return-code.txt
	check_contains "$p: ... its command got the instruction" \
		"$(cat "$d/agent/command-0/stdout.txt" 2>/dev/null)" "instruction: Create /app/hello.txt"

	# A host-side agent: a program on the host driving the environment.
	cat >"$TAP_TMP/agent-$p/host.yaml" <<EOF
jobs_dir: $TAP_TMP/jobs-$p
job_name: host-agent
agents:
  - name: driver
    host_command: 'grep -q hello.txt "\$ROLLOUT_INSTRUCTION_PATH" && rollout env exec "\$ROLLOUT_ENV_NAME" -- sh -c "echo Hello, world! > /app/hello.txt" && echo drove "\$ROLLOUT_ENV_NAME"'
datasets:
  - path: test-dataset
    task_names: [hello-busybox]
environment:
  type: $p
EOF
	"$ROLLOUT" run -q "$TAP_TMP/agent-$p/host.yaml" >/dev/null 2>&1
	d=$(ls -d "$TAP_TMP/jobs-$p/host-agent"/hello-busybox__*/ 2>/dev/null | head -1)
	check_trial "$p: host-side agent solves hello-busybox through rollout env exec" "${d:-/none}" \
		reward=1 noexception file=agent/host-agent/stdout.txt file=agent/host-agent/return-code.txt
	check_contains "$p: ... it ran on the host with the environment's name" \
		"$(cat "$d/agent/host-agent/stdout.txt" 2>/dev/null)" "drove hello-busybox__"

	# A trial run again under the name of one whose rollout was killed (resume reruns
	# unfinished trials under their names): the dead run's environment is removed,
	# not a name conflict.
	busybox_task "$TAP_TMP/ns-$p" t 'sleep 3' 'echo 1 > /logs/verifier/reward.txt'
	setsid "$ROLLOUT" trial run -e "$p" -p "$TAP_TMP/ns-$p/t" --trial-name "dup-$p-x" \
		--trials-dir "$TAP_TMP/ns-$p/a" -q >/dev/null 2>&1 &
	pid=$!
	check "$p: killed run: its environment exists" \
		wait_until 120 sh -c "'$ROLLOUT' env ls -e $p | grep -q dup-$p-x"
	kill -9 -- -"$pid"
	wait "$pid" 2>/dev/null
	"$ROLLOUT" trial run -e "$p" -p "$TAP_TMP/ns-$p/t" --trial-name "dup-$p-x" \
		--trials-dir "$TAP_TMP/ns-$p/b" -q >/dev/null 2>&1
	check_eq "$p: the same trial name runs again after kill -9" \
		"$(reward_of "$TAP_TMP/ns-$p/b/dup-$p-x") $(result_field "$TAP_TMP/ns-$p/b/dup-$p-x" '(r.get("exception_info") or {}).get("exception_type")')" "1 None"

	check_eq "$p: no environment left by these trials" "$("$ROLLOUT" env ls -e "$p" | grep -c -- "-$p-")" 0
done
# The trial's collect-by-copy path (logs_mounted false) at full isolation: the
# test-only provider sandbox-copied-logs (ROLLOUT_TEST_LOGS_COPIED=1 swaps it in
# for -e sandbox) mounts nothing at /logs; the trial copies them out, and
# rewards and logs arrive as they do through the mounts.
if [[ " ${ROLLOUT_TEST_PROVIDERS:-sandbox docker} " == *" sandbox "* ]] &&
	provider_ready sandbox busybox debian; then
	for task in hello-busybox multi-reward hello-world; do
		m=$(trial sandbox "$task" oracle)
		c=$(ROLLOUT_TEST_LOGS_COPIED=1 trial sandbox "$task" oracle)
		check_eq "copied /logs: $task: the rewards of mounted /logs" \
			"$(result_field "$c" "__import__('json').dumps((r.get('verifier_result') or {}).get('rewards'), sort_keys=True)")" \
			"$(result_field "$m" "__import__('json').dumps((r.get('verifier_result') or {}).get('rewards'), sort_keys=True)")"
		check_eq "copied /logs: $task: the same files in agent/, verifier/, artifacts/" \
			"$(cd "$c" && find agent verifier artifacts -type f | sort | xargs md5sum 2>&1)" \
			"$(cd "$m" && find agent verifier artifacts -type f | sort | xargs md5sum 2>&1)"
	done
	# ... and it is that provider: nothing is mounted at /logs (three mounts otherwise).
	for how in mounted copied; do
		d=$(if [ $how = copied ]; then export ROLLOUT_TEST_LOGS_COPIED=1; fi
			trial sandbox hello-busybox oracle --preserve-env always)
		n=$("$ROLLOUT" env exec -e sandbox "$(basename "$d")" -- grep -c ' /logs/' /proc/mounts 2>&1)
		"$ROLLOUT" env rm -e sandbox "$(basename "$d")" >/dev/null 2>&1
		check_eq "copied /logs: $how: mounts at /logs" "$n" "$([ $how = copied ] && echo 0 || echo 3)"
	done
fi
done_testing
