#!/bin/bash
# Black-box tests of the rollout command line: the static binary, --help on every
# command, usage errors (exit 2), failures (exit 1) with precise messages.
source "$(dirname "$0")/../lib/tap.sh"
cd "$ROLLOUT_SRCDIR"
tap_tmpdir

# The release binary: static, stripped, small.
info=$(file -L "$ROLLOUT")
check_contains "binary is statically linked" "$info" "statically linked"
check_contains "binary is stripped" "$info" ", stripped"
if ldd "$ROLLOUT" >/dev/null 2>&1; then not_ok "ldd finds no dynamic dependencies"; else ok "ldd finds no dynamic dependencies"; fi
size=$(stat -c %s "$ROLLOUT")
if [ "$size" -le $((2 * 1024 * 1024)) ]; then ok "binary size $size <= 2 MiB"; else not_ok "binary size $size <= 2 MiB"; fi

out=$("$ROLLOUT" version); check_contains "version" "$out" "rollout "

# --help on every command and subcommand: exit 0 and a usage line.
while read -r cmd; do
	out=$($ROLLOUT $cmd --help 2>&1); rc=$?
	if [ $rc = 0 ] && [[ "$out" == *usage:* ]]; then ok "help: rollout $cmd --help"
	else not_ok "help: rollout $cmd --help" "rc=$rc" "$out"; fi
done <<'LIST'
run
jobs
jobs resume
jobs summarize
jobs merge
trial
trial run
trials start
tasks
tasks check
tasks init
tasks start-env
image
env
env ls
env exec
env rm
gc
version
LIST
out=$("$ROLLOUT" --help); check_contains "top-level --help" "$out" "usage: rollout COMMAND"
# Harbor's common run flags are all in `rollout run --help`.
help=$("$ROLLOUT" run --help)
for f in --agent-kwarg --ak --agent-env --ae --environment-kwarg --ek "-r, --max-retries" \
	--retry-include --retry-exclude --force-build --disable-verification --artifact \
	--override-cpus --override-memory-mb --override-storage-mb --override-gpus \
	--agent-timeout-multiplier --verifier-timeout-multiplier --agent-setup-timeout-multiplier \
	--environment-build-timeout-multiplier "-d, --dataset" --registry-path --registry-url; do
	check_contains "run --help lists $f" "$help" "$f"
done

# Usage errors exit 2 and say what is wrong.
usage_case() { # NAME EXPECTED-SUBSTRING ARGS...
	local name=$1 want=$2 out rc; shift 2
	out=$("$ROLLOUT" "$@" 2>&1); rc=$?
	if [ $rc = 2 ] && [[ "$out" == *"$want"* ]]; then ok "usage: $name"
	else not_ok "usage: $name" "rc=$rc (want 2)" "$out"; fi
}
usage_case "no command" "usage: rollout" 
usage_case "unknown command" "unknown command 'frobnicate'" frobnicate
usage_case "run: unknown flag" "unknown option '--frob'" run --frob
usage_case "run: a mistyped flag gets a suggestion" "unknown option '--n-concurent'; did you mean --n-concurrent?" run --n-concurent 3
usage_case "run: Harbor's --agent-kwargs typo" "did you mean --agent-kwarg?" run --agent-kwargs x=1
usage_case "run: an ambiguous prefix lists the candidates" "ambiguous option '--override' (--override-cpus, --override-memory-mb, --override-storage-mb, --override-gpus)" run --override 2
usage_case "trial run: a mistyped flag gets a suggestion" "did you mean --trials-dir?" trial run --trial-dir x
usage_case "jobs resume: a mistyped flag gets a suggestion" "did you mean --filter-error-type?" jobs resume --filter-eror-type X d
usage_case "run: --ak needs key=value" "--ak: expected KEY=VALUE, got 'x'" run -p test-dataset --ak x
usage_case "run: -r is max retries" "-r: expected an integer >= 0, got 'x'" run -p test-dataset -r x
usage_case "tasks init: missing name" "missing NAME" tasks init
usage_case "tasks start-env: missing -p" "missing -p TASK" tasks start-env
usage_case "run: flag without value" "needs a value" run -n
usage_case "run: bad -n" "-n" run -p test-dataset -n zero
usage_case "run: bad --shard" "--shard expects I/N" run -p test-dataset --shard 4/4
usage_case "run: nothing to run" "give a job file, -p PATH or -d DATASET" run
usage_case "run: two job files" "unexpected argument" run a.yaml b.yaml
usage_case "trial run: missing -p" "missing -p TASK" trial run
usage_case "tasks check: missing path" "missing" tasks check
usage_case "jobs resume: missing dir" "missing DIR" jobs resume
usage_case "jobs merge: missing -o" "missing -o OUT" jobs merge x
usage_case "env exec: missing command" "missing command" env exec somename
usage_case "env: unknown subcommand" "unknown subcommand" env frob
usage_case "gc: bad provider" "unknown provider" gc -e podman

# Failures exit 1 with the file and the problem.
fail_case() { # NAME EXPECTED-SUBSTRING ARGS...
	local name=$1 want=$2 out rc; shift 2
	out=$("$ROLLOUT" "$@" 2>&1); rc=$?
	if [ $rc = 1 ] && [[ "$out" == *"$want"* ]]; then ok "fails: $name"
	else not_ok "fails: $name" "rc=$rc (want 1)" "$out"; fi
}
fail_case "missing task path" "no-such-dir" run -p no-such-dir -o "$TAP_TMP/jobs"
fail_case "filter matches nothing" "zzz-none*" run -p test-dataset -t 'zzz-none*' -o "$TAP_TMP/jobs"
printf 'agents:\n  - name: oracle\n datasets: [\n' >"$TAP_TMP/bad.yaml"
fail_case "YAML syntax error names file and line" "bad.yaml:" run "$TAP_TMP/bad.yaml"
printf 'agents:\n  - name: no-such-agent\ndatasets:\n  - path: test-dataset\n' >"$TAP_TMP/agent.yaml"
fail_case "unknown agent lists the known ones" "oracle" run "$TAP_TMP/agent.yaml"
printf '{"n_attempts": "three", "datasets": [{"path": "test-dataset"}]}\n' >"$TAP_TMP/type.json"
fail_case "JSON wrong type names file:line:key" "type.json:1" run "$TAP_TMP/type.json"
fail_case "job file via positional form" "agent.yaml" "$TAP_TMP/agent.yaml"

# tasks check: the shipped dataset is valid; a broken task reports every problem.
out=$("$ROLLOUT" tasks check test-dataset 2>&1); rc=$?
if [ $rc = 0 ]; then ok "tasks check test-dataset passes"; else not_ok "tasks check test-dataset passes" "$out"; fi
mkdir -p "$TAP_TMP/broken/environment"
printf 'version = "1.0"\n[agent]\ntimeout_sec = "soon"\n[environment]\nmemory = "lots"\n' >"$TAP_TMP/broken/task.toml"
out=$("$ROLLOUT" tasks check "$TAP_TMP/broken" 2>&1); rc=$?
check_eq "tasks check broken task exits 1" "$rc" 1
check_contains "tasks check: wrong type with file:line" "$out" "task.toml:3"
check_contains "tasks check: bad memory value" "$out" "task.toml:5"
check_contains "tasks check: missing instruction.md" "$out" "instruction.md"
check_contains "tasks check: missing tests/test.sh" "$out" "test.sh"

# Resume refuses a changed config and shows the difference; nothing runs.
mkdir -p "$TAP_TMP/jobs/j1"
# (a docker socket that does not exist: the job dir is set up, then the run stops)
DOCKER_HOST=unix:///nonexistent/docker.sock "$ROLLOUT" run -p test-dataset -t hello-busybox -o "$TAP_TMP/jobs" --job-name j1 -q -e docker >/dev/null 2>&1
out=$(DOCKER_HOST=unix:///nonexistent/docker.sock "$ROLLOUT" run -p test-dataset -t hello-busybox -o "$TAP_TMP/jobs" --job-name j1 -n 7 -q -e docker 2>&1); rc=$?
check_eq "changed config is refused (exit 1)" "$rc" 1
check_contains "the refusal lists the difference" "$out" "n_concurrent_trials: 4 -> 7"

done_testing
