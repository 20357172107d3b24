#!/bin/bash
# Harbor compatibility of rollout's job directories (issue 21), per provider: jobs
# with single- and multi-key rewards, errors, retries, -p of a task and of a dataset
# and declared artifacts validate against Harbor 0.22's models (tests/harbor/), with
# task_checksum equal to Harbor's dirhash; the forms Harbor needs (environment.type,
# tasks for -p TASK, flat pass_at_k, bare metrics, evals key, floats, lock.json,
# mirrored artifacts); earlier attempts kept inside the trial; and a simulated Harbor
# resume (subdirectories without result.json deleted) after which rollout's resume
# adopts every trial and summarize still works. Every other suite's jobs are
# validated by done_testing (tests/lib/tap.sh).
source "$(dirname "$0")/../lib/tap.sh"
source "$ROLLOUT_SRCDIR/tests/lib/providers.sh"
source "$ROLLOUT_SRCDIR/tests/lib/jobfixtures.sh"
tap_tmpdir
export ROLLOUT_PROGRESS=lines

if ! python3 -c 'import pydantic' 2>/dev/null; then
	skip "harbor compatibility" "no python3 with pydantic"
	done_testing
	exit 0
fi
V=$ROLLOUT_SRCDIR/tests/harbor/validate_jobs.py
ds=$TAP_TMP/ds
busybox_task "$ds" single 'echo ok > /app/out' 'echo 1 > /logs/verifier/reward.txt'
busybox_task "$ds" multi 'true' \
	'echo "{\"correct\": 1, \"style\": 0.5}" > /logs/verifier/reward.json'
busybox_task "$ds" noreward 'true' 'echo no reward'
busybox_task "$ds" artifact 'mkdir -p /app/sub && echo art > /app/sub/out.txt' \
	'echo 0 > /logs/verifier/reward.txt' 30.0 'artifacts = ["/app/sub/out.txt"]'

for p in ${ROLLOUT_TEST_PROVIDERS:-sandbox docker}; do
	provider_or_next "$p" "harbor compatibility" || continue
	jobs=$TAP_TMP/jobs-$p

	# -p DATASET with every outcome, two attempts each.
	"$ROLLOUT" run -p "$ds" -k 2 -e "$p" -o "$jobs" --job-name dataset -q >/dev/null 2>&1
	check_eq "$p: a dataset job runs" "$?" 0
	out=$(python3 "$V" --checksums "$jobs/dataset" 2>&1); rc=$?
	check_eq "$p: it validates against Harbor 0.22's models, checksums are Harbor's" "$rc" 0
	[ $rc = 0 ] || diag "$out"
	cfg=$jobs/dataset/config.json
	check_eq "$p: environment.type is one Harbor knows" \
		"$(python3 -c 'import json,sys; e=json.load(open(sys.argv[1]))["environment"]; print(e["type"], e["import_path"], e["rollout_provider"])' "$cfg")" \
		"$([ "$p" = docker ] && echo "docker None docker" || echo "None rollout.environments.sandbox:SandboxEnvironment sandbox")"
	res=$jobs/dataset/result.json
	check_eq "$p: multi-key metrics are bare, pass_at_k {} (several keys)" \
		"$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))["stats"]["evals"]["oracle__ds"]; print(sorted(s["metrics"][0]), s["pass_at_k"])' "$res")" \
		"['correct', 'reward', 'style'] {}"
	t=$(trial_of "$jobs/dataset" single)
	check_eq "$p: rewards are floats in result.json" \
		"$(grep -o '"reward": [0-9.]*' "$t/result.json")" '"reward": 1.0'
	check_eq "$p: verifier_environment_mode and lock.json" \
		"$(result_field "$t" 'r["verifier_environment_mode"]') $(python3 -c 'import json,sys; l=json.load(open(sys.argv[1])); print(l["schema_version"], l["task"]["digest"][:7], l["verifier"]["environment_mode"])' "$t/lock.json")" \
		"shared 2 sha256: shared"
	check_eq "$p: the job's lock.json lists every trial" \
		"$(python3 -c 'import json,sys; l=json.load(open(sys.argv[1])); print(l["schema_version"], len(l["trials"]))' "$jobs/dataset/lock.json")" "3 8"
	t=$(trial_of "$jobs/dataset" artifact)
	check_eq "$p: a declared artifact mirrors its source path" \
		"$(cat "$t/artifacts/app/sub/out.txt" 2>&1)" art

	# -p TASK: saved as tasks: [{path}], as Harbor's resume needs; single key 0/1.
	"$ROLLOUT" run -p "$ds/single" -k 2 -e "$p" -m openai/gpt-5 -a nop -o "$jobs" --job-name task -q >/dev/null 2>&1
	check_eq "$p: a single-task job runs" "$?" 0
	check_eq "$p: -p TASK is saved as tasks, datasets empty" \
		"$(python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); print(len(c["datasets"]), [t["path"] for t in c["tasks"]])' "$jobs/task/config.json")" \
		"0 ['$ds/single']"
	check_eq "$p: the evals key has the model without its provider; pass_at_k is flat" \
		"$(python3 -c 'import json,sys; e=json.load(open(sys.argv[1]))["stats"]["evals"]; print(list(e), {k: float(v) for k, v in e["nop__gpt-5__adhoc"]["pass_at_k"].items()})' "$jobs/task/result.json")" \
		"['nop__gpt-5__adhoc'] {'2': 1.0}"
	out=$(python3 "$V" --checksums "$jobs/task" 2>&1); rc=$?
	check_eq "$p: the single-task job validates" "$rc" 0
	[ $rc = 0 ] || diag "$out"
	out=$("$ROLLOUT" jobs summarize "$jobs/dataset" 2>&1)
	check_contains "$p: the summary says when pass@k does not apply" "$out" \
		"pass@k: does not apply (3 reward keys; it needs a single 0/1 reward)"

	# Retries: earlier attempts stay inside the trial directory.
	cat >"$TAP_TMP/retry.yaml" <<YAML
orchestrator:
  retry:
    max_retries: 2
    exclude_exceptions: []
datasets:
  - path: $ds
    task_names: [noreward]
YAML
	"$ROLLOUT" run "$TAP_TMP/retry.yaml" -e "$p" -o "$jobs" --job-name retry -q >/dev/null 2>&1
	t=$(trial_of "$jobs/retry" noreward)
	check_eq "$p: retried attempts are kept inside the trial, nothing at the job's top" \
		"$(ls -A "$t/.attempts" 2>&1 | tr '\n' ' ')$(ls -A "$jobs/retry" | grep -c '^\.\(retried\|superseded\)')" "1 2 0"
	out=$(python3 "$V" "$jobs/retry" 2>&1); rc=$?
	check_eq "$p: the retried job validates (and survives Harbor's resume)" "$rc" 0
	[ $rc = 0 ] || diag "$out"

	# A simulated Harbor resume: an unfinished trial and a trial ending with a rerun
	# type are there; Harbor deletes every subdirectory without result.json.
	cp -a "$jobs/dataset" "$jobs/hresume"
	python3 - "$jobs/hresume" <<'PY'
import json, os, shutil, sys
job = sys.argv[1]
c = json.load(open(os.path.join(job, "config.json")))
c["job_name"] = "hresume"
json.dump(c, open(os.path.join(job, "config.json"), "w"), indent=4)
trials = sorted(d for d in os.listdir(job) if os.path.isfile(os.path.join(job, d, "config.json")))
os.remove(os.path.join(job, trials[0], "result.json"))  # unfinished
for d in os.listdir(job):  # what Harbor's Job._maybe_init_existing_job does
    p = os.path.join(job, d)
    if os.path.isdir(p) and not os.path.exists(os.path.join(p, "result.json")):
        shutil.rmtree(p)
PY
	before=$(ls "$jobs/hresume" | grep -c __)
	out=$("$ROLLOUT" run -p "$ds" -k 2 -e "$p" -o "$jobs" --job-name hresume -q 2>&1)
	check_eq "$p: rollout resumes a job Harbor's resume went through" "$?" 0
	check_eq "$p: ... adopting every trial left and rerunning the deleted one" \
		"$before $(ls "$jobs/hresume" | grep -c __) $(grep -c 'did not finish' <<<"$out")" "7 8 0"
	check_eq "$p: ... with the same stats" "$(normalized_stats "$jobs/hresume")" "$(normalized_stats "$jobs/dataset")"
	out=$(python3 "$V" --checksums "$jobs/hresume" 2>&1); rc=$?
	check_eq "$p: the resumed job validates" "$rc" 0
	[ $rc = 0 ] || diag "$out"
done
done_testing
