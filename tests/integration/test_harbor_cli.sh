#!/bin/bash
# Harbor's command line as users coming from Harbor use it, end to end: the run flags
# reaching the trial, resume of jobs in the default relative jobs/ (and after
# Ctrl-C: cancelled trials run again, by `jobs resume` and by the same command),
# `tasks init|check|start-env`, `trials start`, skipped dataset children, the live
# display (plain lines, -q, a terminal), and on both providers: image builds with
# the network whatever the task's allow_internet, build errors that name the task
# and carry no terminal colours, and `rollout env exec ... >> file` appending.
source "$(dirname "$0")/../lib/tap.sh"
source "$ROLLOUT_SRCDIR/tests/lib/providers.sh"
tap_tmpdir
W=$TAP_TMP/work
mkdir -p "$W"
cd "$W" || exit 1

# mk_task DIR SOLVE TEST [TOML_EXTRA] [DOCKERFILE]: a task on the busybox fixture.
mk_task() {
	local t=$1
	mkdir -p "$t/environment" "$t/solution" "$t/tests"
	echo "Task $(basename "$t")." >"$t/instruction.md"
	printf '%s\n' "${5:-FROM rollout-test/busybox:1
WORKDIR /app}" >"$t/environment/Dockerfile"
	printf '#!/bin/sh\n%s\n' "$2" >"$t/solution/solve.sh"
	printf '#!/bin/sh\n%s\n' "$3" >"$t/tests/test.sh"
	chmod +x "$t/solution/solve.sh" "$t/tests/test.sh"
	printf 'version = "1.0"\n[agent]\ntimeout_sec = 60.0\n[verifier]\ntimeout_sec = 30.0\n[environment]\nmemory_mb = 256\n%s\n' "${4:-}" >"$t/task.toml"
}
PASS='echo 1 > /logs/verifier/reward.txt'
reward_of() { python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); v=r.get("verifier_result"); print((v or {}).get("rewards",{}).get("reward","none"), (r.get("exception_info") or {}).get("exception_type","-"))' "$1"; }

# ---- both providers ----------------------------------------------------------------
for p in ${ROLLOUT_TEST_PROVIDERS:-sandbox docker}; do
	provider_or_next "$p" "harbor cli" || continue

	# (11) The image build has the network though the task has none at run time.
	mk_task "$W/net-$p/build-net" 'true' \
		'b=$(tr " " "\n" < /net.txt | grep -v "^lo$" | grep -c .); r=$(ls /sys/class/net | grep -v "^lo$" | grep -c .); [ "$b" -gt 0 ] && [ "$r" = 0 ] && echo 1 > /logs/verifier/reward.txt || echo "0 build=$b run=$r" > /logs/verifier/reward.txt' \
		'allow_internet = false' 'FROM rollout-test/busybox:1
RUN ls /sys/class/net | tr "\n" " " > /net.txt
WORKDIR /app'
	"$ROLLOUT" trial run -q -e "$p" -p "$W/net-$p/build-net" --trials-dir "$W/trials-$p" --trial-name net >/dev/null 2>&1
	check_eq "$p: allow_internet = false: RUN steps have the network, the environment has none" \
		"$(reward_of "$W/trials-$p/net/result.json")" "1.0 -"

	# (13, 16) A failing build: the error names the task and keeps no colour codes.
	mk_task "$W/colour-$p/colour-fail" 'true' "$PASS" '' 'FROM rollout-test/busybox:1
RUN printf "\033[31mboom\033[0m\n"; exit 1'
	"$ROLLOUT" trial run -q -e "$p" -p "$W/colour-$p/colour-fail" --trials-dir "$W/trials-$p" --trial-name colour >/dev/null 2>&1
	exc=$(cat "$W/trials-$p/colour/exception.txt" 2>/dev/null)
	check_contains "$p: a build error names the task" "$exc" "task colour-fail"
	check_eq "$p: ... with no escape sequence in exception.txt" "$(grep -c $'\e' "$W/trials-$p/colour/exception.txt")" 0
	check_eq "$p: ... nor in result.json" "$(grep -c $'\e' "$W/trials-$p/colour/result.json")" 0

	# (10) `rollout env exec NAME -- CMD >> file` appends: never reopens our stdout.
	mk_task "$W/keep-$p/keep" 'true' "$PASS" 'docker_image = "rollout-test/busybox:1"'
	"$ROLLOUT" trial run -q -e "$p" -p "$W/keep-$p/keep" --trials-dir "$W/trials-$p" \
		--trial-name "keep-$p-$$" --preserve-env always >/dev/null 2>&1
	echo one >"$W/append-$p.txt"
	"$ROLLOUT" env exec -e "$p" "keep-$p-$$" -- echo two >>"$W/append-$p.txt"
	"$ROLLOUT" env exec -e "$p" "keep-$p-$$" -- sh -c 'echo three' >>"$W/append-$p.txt"
	"$ROLLOUT" env exec -e "$p" "keep-$p-$$" -- sh -c 'echo four >&2' 2>>"$W/append-$p.txt"
	check_eq "$p: env exec >> file keeps the earlier lines" "$(cat "$W/append-$p.txt")" "one
two
three
four"
	check_eq "$p: ... and writes no NUL bytes" "$(tr -d '\0' <"$W/append-$p.txt" | cmp - "$W/append-$p.txt" && echo same)" same
	"$ROLLOUT" env rm -e "$p" "keep-$p-$$" >/dev/null 2>&1
done

# ---- the sandbox: the rest is provider-independent CLI work --------------------------
if ! provider_or_next sandbox "harbor cli: sandbox part"; then
	done_testing
	exit 0
fi
export ROLLOUT_PROGRESS=lines

# (15) tasks init writes a task that tasks check accepts and the oracle solves.
"$ROLLOUT" tasks init hello --base rollout-test/busybox:1 -p "$W/tasks" >/dev/null; rc=$?
check_eq "tasks init exits 0" "$rc" 0
for f in task.toml instruction.md environment/Dockerfile solution/solve.sh tests/test.sh; do
	check "tasks init wrote $f" test -s "$W/tasks/hello/$f"
done
out=$("$ROLLOUT" tasks check "$W/tasks/hello" 2>&1); rc=$?
check_eq "tasks check accepts the skeleton" "$rc" 0
check_contains "... and finds its base image in rollout's store" "$out" "image rollout-test/busybox:1 ($W/tasks/hello/environment/Dockerfile:5): in rollout's image store"
out=$("$ROLLOUT" trials start -p "$W/tasks/hello" -a oracle --trials-dir "$W/trials" --trial-name hello 2>&1); rc=$?
check_eq "trials start (Harbor's spelling) runs the oracle" "$rc" 0
check_eq "... which solves the skeleton" "$(reward_of "$W/trials/hello/result.json")" "1.0 -"
out=$("$ROLLOUT" tasks init hello -p "$W/tasks" 2>&1); rc=$?
check_eq "tasks init refuses an existing task" "$rc" 1
check_contains "tasks init: Harbor's template base by default" "$("$ROLLOUT" tasks init plain -p "$W/tasks" >/dev/null; cat "$W/tasks/plain/environment/Dockerfile")" "FROM ubuntu:24.04"

# (16) tasks check parses the Dockerfile and says which images are missing.
mkdir -p "$W/bad" && cp -r "$W/tasks/hello" "$W/bad/syntax" && cp -r "$W/tasks/hello" "$W/bad/noimage"
printf 'FROM rollout-test/busybox:1\nRUN --bogus=1 true\n' >"$W/bad/syntax/environment/Dockerfile"
printf 'ARG BASE=nosuch/base\nFROM $BASE:7 AS build\nFROM build\nCOPY --from=other/tool:2 /x /x\n' >"$W/bad/noimage/environment/Dockerfile"
out=$(DOCKER_HOST=unix:///nonexistent/docker.sock "$ROLLOUT" tasks check "$W/bad/syntax" 2>&1); rc=$?
check_eq "tasks check: a Dockerfile error fails the task" "$rc" 1
check_contains "... naming file and line" "$out" "$W/bad/syntax/environment/Dockerfile:2: RUN: unknown flag: --bogus"
out=$(DOCKER_HOST=unix:///nonexistent/docker.sock "$ROLLOUT" tasks check "$W/bad/noimage" 2>&1); rc=$?
check_eq "tasks check: a missing image is a warning, not a failure" "$rc" 0
check_contains "... FROM with a global ARG, named with the command that provides it" "$out" \
	"Dockerfile:2: image nosuch/base:7 is not in rollout's image store; get it with \`rollout image load ARCHIVE\` or \`rollout image import ROOTFS.tar --tag nosuch/base:7\`"
check_contains "... COPY --from an image too" "$out" "Dockerfile:4: image other/tool:2 is not in rollout's image store"
check "... a stage is no image" bash -c '! grep -q "image build " <<<"$1"' _ "$out"
check_contains "... and no daemon is only a note" "$out" "note: no Docker daemon answered"

# (15) tasks start-env: the environment with solution/ and tests/, reachable, removable.
name=$("$ROLLOUT" tasks start-env -p "$W/tasks/hello" -a -o "$W/envs" 2>"$W/start-env.err"); rc=$?
check_eq "tasks start-env exits 0" "$rc" 0
check_contains "... and says how to reach and remove it" "$(cat "$W/start-env.err")" "rollout env rm -e sandbox $name"
check_eq "... with /solution and /tests uploaded (-a)" \
	"$("$ROLLOUT" env exec "$name" -- sh -c 'ls /solution /tests; pwd' 2>&1 | tr '\n' ' ')" \
	"/solution: solve.sh  /tests: test.sh /app "
"$ROLLOUT" env rm "$name" >/dev/null 2>&1
check_eq "... and gone after env rm" "$("$ROLLOUT" env ls -e sandbox | grep -c "$name")" 0
out=$(printf 'echo inside-$((40+2))\nexit\n' | "$ROLLOUT" tasks start-env -p "$W/tasks/hello" -i -o "$W/envs" --name shell-env 2>&1)
check_contains "tasks start-env -i: a shell in the environment" "$out" "inside-42"
check_contains "... removed when the shell ends" "$out" "removed environment shell-env"
check_eq "... (not listed)" "$("$ROLLOUT" env ls -e sandbox | grep -c shell-env)" 0

# (15) The run flags reach the trial and its saved config.
mk_task "$W/flags/flagged" 'echo out > /app/out; sleep 3' "$PASS" 'docker_image = "rollout-test/busybox:1"'
"$ROLLOUT" run -p "$W/flags" --job-name flags -q --artifact /app/out --disable-verification \
	--ak max_turns=3 --ae HELLO=there --ek pids_limit=300 --agent-timeout-multiplier 0.02 \
	--override-memory-mb 300 -r 1 --retry-include RuntimeError >/dev/null 2>&1
t=$(ls -d jobs/flags/flagged__*/ | head -1)
check_eq "--disable-verification: no rewards; --agent-timeout-multiplier: 60 s x 0.02 timed out" \
	"$(reward_of "$t/result.json")" "none AgentTimeoutError"
check "--artifact: the path is collected where Harbor mirrors it (artifacts/app/out)" test -f "$t/artifacts/app/out"
cfg=$(python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); print(c["agent"]["kwargs"], c["agent"]["env"], c["environment"]["kwargs"], c["environment"]["override_memory_mb"], c["verifier"]["disable"], c["artifacts"], c["agent_timeout_multiplier"])' "$t/config.json")
check_eq "... and each flag is in the trial's config.json as Harbor saves it" "$cfg" \
	"{'max_turns': 3} {'HELLO': 'there'} {'pids_limit': 300} 300 True ['/app/out'] 0.02"
check_eq "... and the job's" "$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["orchestrator"]["retry"]; print(r["max_retries"], r["include_exceptions"])' jobs/flags/config.json)" "1 ['RuntimeError']"

# (14) Children of -p DIR that are not tasks are named, with the reason.
mkdir -p "$W/flags/notes" "$W/flags/half/environment" && touch "$W/flags/half/task.toml"
out=$("$ROLLOUT" run -p "$W/flags" -t nomatch 2>&1)
check_contains "run -p DIR: a child that is not a task is named, and why" "$out" "skipped half: not a task (no instruction.md, tests/test.sh)"
check_contains "... one line each" "$out" "skipped notes: not a task (no task.toml, instruction.md, environment/, tests/test.sh)"
rm -rf "$W/flags/notes" "$W/flags/half"

# (8) A job in the default relative jobs/ resumes with `jobs resume` (both spellings).
mkdir -p "$W/ds"
mk_task "$W/ds/a1" 'true' "$PASS" 'docker_image = "rollout-test/busybox:1"'
mk_task "$W/ds/a2" 'true' "$PASS" 'docker_image = "rollout-test/busybox:1"'
mk_task "$W/ds/b1" 'sleep 2' "$PASS" 'docker_image = "rollout-test/busybox:1"'
mk_task "$W/ds/b2" 'sleep 2' "$PASS" 'docker_image = "rollout-test/busybox:1"'
mk_task "$W/ds/c1" 'true' "$PASS" 'docker_image = "rollout-test/busybox:1"'
"$ROLLOUT" run -p ds --job-name rel -n 5 -q >/dev/null 2>&1
out=$("$ROLLOUT" jobs resume jobs/rel 2>&1); rc=$?
check_eq "jobs resume jobs/NAME of a job in the default jobs/ (exit 0)" "$rc" 0
check_contains "... keeps every finished trial" "$out" "resuming jobs/rel: 5 trials kept, 0 not started"
out=$("$ROLLOUT" jobs resume -p "$W/jobs/rel" 2>&1); rc=$?
check_eq "jobs resume -p ABSOLUTE (Harbor's spelling) too" "$rc" 0
out=$("$ROLLOUT" run -p ./ds/ --job-name rel -n 5 2>&1); rc=$?
check_eq "the same run spelled -p ./ds/ is the same job" "$rc" 0
check_contains "... every trial kept" "$out" "5 trials kept"

# (9) Ctrl-C, then the same command: cancelled trials run again; the header counts.
(exec "$ROLLOUT" run -p ds --job-name cancel -n 2 -q >/dev/null 2>&1) &
pid=$!
both_running() { ls jobs/cancel/b1__*/config.json jobs/cancel/b2__*/config.json >/dev/null 2>&1; }
wait_until 60 both_running || not_ok "the slow trials started"
kill -INT $pid
wait $pid; rc=$?
check_eq "Ctrl-C: exit 130" "$rc" 130
out=$("$ROLLOUT" run -p ds --job-name cancel -n 2 2>&1); rc=$?
check_eq "the same command again finishes the job" "$rc" 0
check_contains "... its header counts kept, cancelled and not started trials" "$out" \
	"resuming jobs/cancel: 2 trials kept, 2 cancelled will run again, 1 not started"
check_contains "... the cancelled trials ran again: every trial scored" "$out" "mean 1.000"
check "... and none is left CancelledError" bash -c '! grep -l CancelledError jobs/cancel/*/result.json'
# jobs resume: a crashed trial runs again; -f replaces the set (Harbor's -f).
t=$(ls -d jobs/cancel/c1__*/ | head -1)
python3 - "$t/result.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
r["exception_info"] = {"exception_type": "RolloutWorkerCrashError", "exception_message": "x",
                       "exception_traceback": "x", "occurred_at": r["finished_at"]}
json.dump(r, open(sys.argv[1], "w"))
PY
out=$("$ROLLOUT" jobs resume jobs/cancel -f AgentTimeoutError 2>&1)
check_contains "jobs resume -f TYPE: only that type runs again" "$out" "5 trials kept, 0 not started"
out=$("$ROLLOUT" jobs resume jobs/cancel 2>&1)
check_contains "jobs resume: a crashed trial runs again" "$out" "4 trials kept, 1 crashed will run again, 0 not started"

# (17) The display: plain lines, -q, and a terminal.
out=$("$ROLLOUT" run -p ds --job-name lines -n 2 2>&1)
check_contains "plain lines: each finished trial with its reward, the mean so far and an ETA" "$out" '[1/5] '
check "... e.g." bash -c 'grep -E "\[[1-5]/5\] [abc][12]__[A-Za-z0-9]{7} rewards \{\"reward\":1\} \([0-9.]+ s\); mean 1\.000, ETA [0-9]+s$" <<<"$1"' _ "$out"
check_contains "... the final line of the display has the final mean" "$(grep '\[5/5\]' <<<"$out")" "mean 1.000, ETA 0s"
# Mixed outcomes: the display's mean as each trial ends follows the final rule (an
# errored trial counts as 0), so its last value is the summary's.
mk_task "$W/mix/m-pass" 'true' "$PASS" 'docker_image = "rollout-test/busybox:1"'
mk_task "$W/mix/m-fail" 'true' 'echo 0 > /logs/verifier/reward.txt' 'docker_image = "rollout-test/busybox:1"'
mk_task "$W/mix/m-half" 'true' 'echo 0.5 > /logs/verifier/reward.txt' 'docker_image = "rollout-test/busybox:1"'
mk_task "$W/mix/m-err" 'true' 'echo no reward' 'docker_image = "rollout-test/busybox:1"'
out=$("$ROLLOUT" run -p mix --job-name mix -n 2 2>&1)
check "mixed outcomes: the error is a line of its own" \
	bash -c 'grep -qE "\[[1-4]/4\] m-err__[A-Za-z0-9]{7} RewardFileNotFoundError" <<<"$1"' _ "$out"
check_contains "... the display's last mean" "$(grep '\[4/4\]' <<<"$out")" "mean 0.375, ETA 0s"
check_eq "... is the job's" "$("$ROLLOUT" jobs summarize --json jobs/mix | python3 -c 'import json,sys; e=json.load(sys.stdin)["evals"]; print(["%.3f" % v["metrics"][0]["mean"] for v in e.values()])')" "['0.375']"
out=$("$ROLLOUT" run -p ds --job-name quiet -n 5 -q 2>&1 | grep -v warning)
check_eq "-q: the mean, the summary line and the results path only" "$out" "mean 1.000; total: 5 trials, 0 errors, 0 retries
results: jobs/quiet"
if command -v script >/dev/null; then
	unset ROLLOUT_PROGRESS
	script -qec "$ROLLOUT run -p ds --job-name tty -n 2" "$W/tty.out" >/dev/null 2>&1
	tty=$(cat "$W/tty.out")
	check_contains "a terminal: the block is redrawn in place" "$tty" $'\e[J'
	check "... listing running trials with their phase and time" \
		bash -c 'grep -qE "  b[12]__[A-Za-z0-9]{7} +(setup|install|agent|verify|collect|teardown|starting) +[0-9]+s  \([0-9]+s in all\)" <<<"$1"' _ "$tty"
	check_contains "... a line per finished trial" "$tty" 'rewards {"reward":1}'
	check_contains "... and the summary" "$tty" "total: 5 trials, 0 errors, 0 retries"
	export ROLLOUT_PROGRESS=lines
else
	skip "terminal display" "script(1) is not installed"
fi
done_testing
