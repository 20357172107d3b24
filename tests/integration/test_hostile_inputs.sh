#!/bin/bash
# Hostile task and job inputs: artifact destinations aimed out of the trial
# directory, task files that are links to host paths (tests/, solution/,
# environment/, instruction.md, task.toml, links inside tests/ pointing out),
# rewards that are no outcome (nan, inf, 1e999, 80,000 keys), and a concurrency
# whose pids limits would add up to the host's whole pid space.
# `rollout tasks check` reports each one; `rollout run` refuses the task before any
# trial, so nothing of the host reaches an environment or an agent. Every host file
# the tasks aim at is a canary under this test's scratch directory, and a positive
# control (a clean task whose test.sh prints what it sees) proves the test would
# see canary content if it were handed over.
source "$(dirname "$0")/../lib/tap.sh"
source "$ROLLOUT_SRCDIR/tests/lib/providers.sh"
source "$ROLLOUT_SRCDIR/tests/lib/jobfixtures.sh"
tap_tmpdir

canary=$TAP_TMP/canary
secret="CANARY-$$-NOT-FOR-TASKS"
mkdir -p "$canary/dir"
echo "$secret" >"$canary/secret"
echo "$secret" >"$canary/dir/secret"
printf '#!/bin/sh\necho "%s"\necho 1 > /logs/verifier/reward.txt\n' "$secret" >"$canary/dir/test.sh"
printf 'version = "1.0"\n# %s\n' "$secret" >"$canary/task.toml"
chmod +x "$canary/dir/test.sh"
canary_state() { (cd "$canary" && find . -printf '%p %y %s\n' | sort && cat secret dir/secret); }
canary_before=$(canary_state)

ds=$TAP_TMP/ds
# mk NAME: a clean task; its test.sh prints every file of /tests and the instruction
# it can see, so the run's test-stdout.txt shows what reached the environment.
mk() {
	busybox_task "$ds" "$1" 'cat /solution/* > /logs/agent/seen.txt 2>&1' \
		'cat /tests/* /solution/* 2>&1
echo 1 > /logs/verifier/reward.txt'
	echo "Instruction of $1." >"$ds/$1/instruction.md"
	echo "VISIBLE-MARKER-$1" >"$ds/$1/tests/marker"
}
relink() { rm -rf "$ds/$1/$2" && ln -s "$3" "$ds/$1/$2"; }

mk good
mk good-inner-link
ln -s ../solution/solve.sh "$ds/good-inner-link/tests/solve-copy"
mk tests-link && relink tests-link tests "$canary/dir"
mk solution-link && relink solution-link solution "$canary/dir"
mk environment-link && relink environment-link environment /
mk instruction-link && relink instruction-link instruction.md "$canary/secret"
mk toml-link && relink toml-link task.toml "$canary/task.toml"
mk inner-abs && ln -s "$canary/secret" "$ds/inner-abs/tests/data"
mk inner-rel && ln -s ../../../canary/secret "$ds/inner-rel/tests/data"
# Top-level keys come before any table in TOML: line 2, after `version`.
mk artifact-climb
sed -i "1a artifacts = [{ source = \"/logs/agent/seen.txt\", destination = \"../../../../../canary/planted\" }]" \
	"$ds/artifact-climb/task.toml"
mk artifact-abs
sed -i "1a artifacts = [{ source = \"/logs/agent/seen.txt\", destination = \"$canary/planted\" }]" \
	"$ds/artifact-abs/task.toml"

# --- rollout tasks check ------------------------------------------------------------
out=$("$ROLLOUT" tasks check "$ds" 2>&1); rc=$?
check_eq "tasks check fails the hostile dataset" "$rc" 1
check_contains "tasks check: the clean task is OK" "$out" "OK    good ($ds/good)"
check_contains "tasks check: a link inside the task that stays inside is OK" "$out" \
	"OK    good-inner-link ($ds/good-inner-link)"
for e in tests solution environment instruction; do
	check_contains "tasks check: FAIL for $e as a link" "$out" "FAIL  $e-link ($ds/$e-link)"
done
check_contains "tasks check: tests -> host dir is reported" "$out" \
	"error: $ds/tests-link/tests: a symbolic link (to \"$canary/dir\"); rollout reads a task's tests only as a real directory, never through a link"
check_contains "tasks check: instruction.md -> host file is reported" "$out" \
	"error: $ds/instruction-link/instruction.md: a symbolic link (to \"$canary/secret\")"
check_contains "tasks check: task.toml -> host file is reported" "$out" \
	"error: $ds/toml-link/task.toml: a symbolic link (to \"$canary/task.toml\")"
check_contains "tasks check: environment -> / is reported" "$out" \
	"error: $ds/environment-link/environment: a symbolic link (to \"/\")"
check_contains "tasks check: solution -> host dir is reported" "$out" \
	"error: $ds/solution-link/solution: a symbolic link (to \"$canary/dir\")"
check_contains "tasks check: an absolute link inside tests/ is reported" "$out" \
	"error: $ds/inner-abs/tests/data: a symbolic link to \"$canary/secret\", out of the task directory"
check_contains "tasks check: a relative link climbing out of tests/ is reported" "$out" \
	"error: $ds/inner-rel/tests/data: a symbolic link to \"../../../canary/secret\", out of the task directory"
check_contains "tasks check: an artifact destination climbing out is reported" "$out" \
	"error: $ds/artifact-climb/task.toml:2: key 'artifacts[0].destination': \"../../../../../canary/planted\" has a '..' component"
check_contains "tasks check: an absolute artifact destination is reported" "$out" \
	"error: $ds/artifact-abs/task.toml:2: key 'artifacts[0].destination': \"$canary/planted\" is an absolute path"
case "$out" in
*"$secret"*) not_ok "tasks check never prints canary content" "$out" ;;
*) ok "tasks check never prints canary content" ;;
esac

# A job file's artifacts follow the same rule.
cat >"$TAP_TMP/job.yaml" <<EOF
datasets:
  - path: $ds/good
artifacts:
  - source: /logs/agent/seen.txt
    destination: ../../../canary/planted
EOF
out=$(cd "$TAP_TMP" && "$ROLLOUT" run job.yaml -o "$TAP_TMP/jobs" --job-name artifact-job 2>&1); rc=$?
check_eq "a job file with an escaping artifact destination does not run" "$rc" 1
check_contains "the job file error names file, line and key" "$out" \
	"job.yaml:5: key 'artifacts[0].destination': \"../../../canary/planted\" has a '..' component"
check_eq "... and creates no job directory" "$(ls "$TAP_TMP/jobs" 2>/dev/null)" ""

# --- a registry git task with links to host paths ----------------------------------
if command -v git >/dev/null 2>&1; then
	repo=$TAP_TMP/repo
	mkdir -p "$repo"
	cp -a "$ds/tests-link" "$repo/tests-link"
	cp -a "$ds/inner-abs" "$repo/inner-abs"
	(cd "$repo" && git init -q && git add -A && git -c user.name=t -c user.email=t@t \
		commit -qm tasks) >/dev/null 2>&1
	commit=$(git -C "$repo" rev-parse HEAD)
	cat >"$TAP_TMP/registry.json" <<EOF
[{"name": "links", "version": "1.0", "tasks": [
  {"name": "tests-link", "git_url": "file://$repo", "git_commit_id": "$commit", "path": "tests-link"},
  {"name": "inner-abs", "git_url": "file://$repo", "git_commit_id": "$commit", "path": "inner-abs"}]}]
EOF
	export ROLLOUT_TASK_CACHE=$TAP_TMP/cache
	out=$("$ROLLOUT" run -q -a oracle -d links@1.0 --registry-path "$TAP_TMP/registry.json" \
		-o "$TAP_TMP/jobs-registry" --job-name links 2>&1); rc=$?
	check_eq "registry git task with links: the job does not run" "$rc" 1
	check_contains "registry git task: tests -> host dir is named" "$out" \
		"tests-link/tests: a symbolic link (to \"$canary/dir\")"
	check_eq "registry git task: no trial" "$(ls -A "$TAP_TMP/jobs-registry/links" 2>/dev/null)" ""
	fetched=$(find "$ROLLOUT_TASK_CACHE" -path '*/inner-abs/tests/data' 2>/dev/null | head -1)
	check_eq "registry git task: the fetch kept the link as a link" \
		"$(readlink "$fetched" 2>/dev/null)" "$canary/secret"
	out=$("$ROLLOUT" tasks check "${fetched%/tests/data}" 2>&1)
	check_contains "registry git task: tasks check reports the fetched link" "$out" \
		"inner-abs/tests/data: a symbolic link to \"$canary/secret\", out of the task directory"
else
	skip "registry git task with links" "git is not installed"
fi

# --- rollout run --------------------------------------------------------------------
for p in ${ROLLOUT_TEST_PROVIDERS:-sandbox}; do
	provider_or_next "$p" "hostile inputs" || continue
	jobs=$TAP_TMP/jobs-$p
	# Positive control: what a clean task's test.sh sees shows up in test-stdout.txt.
	"$ROLLOUT" run -q -e "$p" -a oracle -p "$ds/good-inner-link" -o "$jobs" --job-name control \
		>/dev/null 2>&1
	seen=$(cat "$jobs"/control/*/verifier/test-stdout.txt 2>/dev/null)
	check_contains "$p: control: test.sh output reaches test-stdout.txt" "$seen" \
		"VISIBLE-MARKER-good-inner-link"
	for t in tests-link solution-link environment-link instruction-link toml-link inner-abs \
		inner-rel artifact-climb artifact-abs; do
		out=$("$ROLLOUT" run -q -e "$p" -a oracle -p "$ds/$t" -o "$jobs" --job-name "$t" 2>&1)
		rc=$?
		check_eq "$p: $t: the job does not run" "$rc" 1
		check_contains "$p: $t: the error names the task" "$out" "$ds/$t"
		check_eq "$p: $t: no job directory, so no trial" "$(ls -A "$jobs/$t" 2>/dev/null)" ""
	done
	# A dataset with one hostile task refuses as a whole, before any trial.
	out=$("$ROLLOUT" run -q -e "$p" -a oracle -p "$ds" -o "$jobs" --job-name all 2>&1); rc=$?
	check_eq "$p: a dataset holding hostile tasks does not run" "$rc" 1
	check_eq "$p: ... and starts no trial" "$(ls -A "$jobs/all" 2>/dev/null)" ""
	# Rewards that are no outcome: parse errors, recorded once (not retried).
	rds=$TAP_TMP/rewards
	for spec in "txt-nan:echo nan > /logs/verifier/reward.txt" \
		"txt-inf:echo inf > /logs/verifier/reward.txt" \
		"txt-big:echo 1e999 > /logs/verifier/reward.txt" \
		"json-big:echo '{\"reward\": 1e999}' > /logs/verifier/reward.json" \
		"json-neg:echo '{\"a\": 1, \"b\": -1e999}' > /logs/verifier/reward.json" \
		"json-nan:echo '{\"reward\": NaN}' > /logs/verifier/reward.json" \
		"json-80000-keys:i=0; { printf '{'; while [ \$i -lt 80000 ]; do printf '\"k%d\": 1, ' \$i; i=\$((i+1)); done; printf '\"last\": 0}'; } > /logs/verifier/reward.json"; do
		name=${spec%%:*}
		mkdir -p "$rds/$name/environment" "$rds/$name/tests"
		echo "Nothing to do." >"$rds/$name/instruction.md"
		cp "$ds/good/task.toml" "$rds/$name/task.toml"
		printf 'FROM rollout-test/busybox:1\n' >"$rds/$name/environment/Dockerfile"
		printf '#!/bin/sh\n%s\n' "${spec#*:}" >"$rds/$name/tests/test.sh"
		chmod +x "$rds/$name/tests/test.sh"
	done
	"$ROLLOUT" run -q -e "$p" -a nop -p "$rds" -o "$jobs" --job-name rewards --max-retries 2 \
		>/dev/null 2>&1
	check_eq "$p: non-finite rewards: the job ran" "$?" 0
	for d in "$jobs"/rewards/*/; do
		[ -f "$d/result.json" ] || continue
		t=$(basename "$d"); t=${t%__*}
		got=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))
e=r.get("exception_info") or {}
print(e.get("exception_type"), r.get("verifier_result"))' "$d/result.json")
		check_eq "$p: $t: VerifierOutputParseError, no rewards" "$got" "VerifierOutputParseError None"
	done
	check_eq "$p: non-finite rewards: every task has its trial" \
		"$(ls -d "$jobs"/rewards/*/ 2>/dev/null | wc -l | tr -d ' ')" 7
	check_eq "$p: non-finite rewards: nothing was retried" "$(ls -A "$jobs/rewards/.retried" 2>/dev/null)" ""
	check_eq "$p: non-finite rewards: the job counts no retry" \
		"$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["stats"]["n_retries"])' \
			"$jobs/rewards/result.json" 2>&1)" 0
	# pids headroom: with 8 trials at once each gets at most its share of what the
	# host's reserve leaves (a quarter of min(pid_max, threads-max), at least 2048).
	cap=$(cat /proc/sys/kernel/pid_max); thr=$(cat /proc/sys/kernel/threads-max)
	[ "$thr" -lt "$cap" ] && cap=$thr
	reserve=$((cap / 4)); [ $reserve -lt 2048 ] && reserve=2048
	[ $reserve -gt $((cap / 2)) ] && reserve=$((cap / 2))
	want=$(((cap - reserve) / 8)); [ $want -gt 4096 ] && want=4096; [ $want -lt 64 ] && want=64
	pt=$TAP_TMP/pids-task
	mkdir -p "$pt"
	cp -a "$ds/good/." "$pt/"
	printf '#!/bin/sh\ncat /sys/fs/cgroup/pids.max /sys/fs/cgroup/pids/pids.max > /logs/verifier/pids.txt 2>/dev/null\necho 1 > /logs/verifier/reward.txt\n' \
		>"$pt/tests/test.sh"
	out=$("$ROLLOUT" run -e "$p" -a nop -p "$pt" -n 8 -o "$jobs" --job-name pids 2>&1)
	check_eq "$p: -n 8: the environment's pids.max is the host's share" \
		"$(head -1 "$jobs"/pids/*/verifier/pids.txt 2>/dev/null)" "$want"
	if [ "$want" -lt 4096 ]; then
		check_contains "$p: -n 8: the lowered limit is logged" "$out" \
			"pids limit per trial: $want instead of 4096"
	fi
	leaked=$(grep -rl -- "$secret" "$jobs" 2>/dev/null)
	check_eq "$p: no canary content anywhere under the jobs directory" "$leaked" ""
done

check_eq "the canary files are unchanged (nothing planted or removed)" "$(canary_state)" \
	"$canary_before"
done_testing
