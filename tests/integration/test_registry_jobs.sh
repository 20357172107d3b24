#!/bin/bash
# Registry datasets and git tasks in jobs: a local git repository of tasks, a
# registry.json pointing at it by file:// URL, then `rollout run -d NAME@VERSION`
# and a job file with a git task. Checks the trials' source and task_id, the dataset's
# own metrics in the stats (also from `jobs summarize`), and the cache reuse.
source "$(dirname "$0")/../lib/tap.sh"
source "$ROLLOUT_SRCDIR/tests/lib/providers.sh"
tap_tmpdir
command -v git >/dev/null || { is_root && DEBIAN_FRONTEND=noninteractive apt-get install -y -q git >/dev/null 2>&1; }
command -v git >/dev/null || { skip "registry jobs" "git is not installed"; done_testing; exit 0; }
export ROLLOUT_TASK_CACHE=$TAP_TMP/cache
p=${ROLLOUT_TEST_PROVIDERS:-sandbox}
p=${p%% *}
provider_or_next "$p" "registry jobs" || { done_testing; exit 0; }

repo=$TAP_TMP/repo
mkdir -p "$repo/tasks"
cp -r "$ROLLOUT_SRCDIR/test-dataset/hello-busybox" "$ROLLOUT_SRCDIR/test-dataset/multi-reward" "$repo/tasks/"
git -C "$repo" init -q -b main
git -C "$repo" -c user.email=t@t -c user.name=t add -A
git -C "$repo" -c user.email=t@t -c user.name=t commit -q -m tasks
sha=$(git -C "$repo" rev-parse HEAD)
cat >"$TAP_TMP/registry.json" <<EOF
[{"name": "demo", "version": "1.0", "description": "two busybox tasks",
  "tasks": [
    {"name": "hello-busybox", "git_url": "file://$repo", "git_commit_id": "$sha", "path": "tasks/hello-busybox"},
    {"name": "multi-reward", "git_url": "file://$repo", "git_commit_id": "$sha", "path": "tasks/multi-reward"}],
  "metrics": [{"type": "max"}]}]
EOF

out=$("$ROLLOUT" run -q -e "$p" -d demo@1.0 --registry-path "$TAP_TMP/registry.json" \
	-o "$TAP_TMP/jobs" --job-name reg -k 2 2>&1)
rc=$?
check_eq "run -d demo@1.0 --registry-path: exit 0" "$rc" 0
[ $rc = 0 ] || diag "$out"
r=$(ls "$TAP_TMP"/jobs/reg/hello-busybox__*/result.json | head -1)
check_contains "trials record the dataset as their source" "$(grep '"source"' "$r" | head -1)" '"demo"'
check_contains "task_id names the git URL" "$(cat "$r")" "\"git_url\": \"file://$repo\""
check_contains "task_id names the commit" "$(cat "$r")" "\"git_commit_id\": \"$sha\""
stats=$("$ROLLOUT" jobs summarize --json "$TAP_TMP/jobs/reg")
check_contains "stats are keyed by the dataset" "$stats" '"oracle__demo"'
# Several reward keys: Harbor's bare {key: value} per metric. "reward" is 1 in two
# of the four trials and missing (0) in the others: max gives 1 where mean gave 0.5.
check_eq "the registry's metric (max) is computed" \
	"$(python3 -c 'import json,sys; print(json.load(sys.stdin)["evals"]["oracle__demo"]["metrics"])' <<<"$stats")" \
	"[{'reward': 1, 'correct': 1, 'style': 0.5}]"
check_contains "4 trials" "$stats" '"n_trials": 4'

# The second job reuses the cache: the repository can even be gone.
mv "$repo" "$repo.away"
out=$("$ROLLOUT" run -q -e "$p" -d demo@1.0 --registry-path "$TAP_TMP/registry.json" \
	-o "$TAP_TMP/jobs" --job-name reg2 -t hello-busybox 2>&1)
rc=$?
check_eq "a second job runs from the cache (repository unreachable)" "$rc" 0
check_eq "... with the filter applied" "$(ls -d "$TAP_TMP"/jobs/reg2/*__*/ | wc -l)" 1
mv "$repo.away" "$repo"

# A git task in the job file.
cat >"$TAP_TMP/git-task.yaml" <<EOF
jobs_dir: $TAP_TMP/jobs
job_name: gittask
agents: [{name: oracle}]
tasks:
  - path: tasks/hello-busybox
    git_url: file://$repo
    git_commit_id: $sha
environment: {type: $p}
EOF
"$ROLLOUT" run -q "$TAP_TMP/git-task.yaml" >/dev/null 2>&1
check_eq "a job file git task runs" "$?" 0
r=$(ls "$TAP_TMP"/jobs/gittask/hello-busybox__*/result.json 2>/dev/null | head -1)
check_contains "... and scores 1" "$(cat "$r" 2>/dev/null)" '"reward": 1'

out=$("$ROLLOUT" run -q -e "$p" -d nosuch@1.0 --registry-path "$TAP_TMP/registry.json" -o "$TAP_TMP/jobs" 2>&1)
check_eq "unknown dataset: exit 1" "$?" 1
check_contains "... naming what the registry has" "$out" "demo"
out=$("$ROLLOUT" run -q -d demo@1.0 -p test-dataset 2>&1)
rc=$?
check_eq "-p and -d together are refused" "$rc" 1
check_contains "... saying why" "$out" "-p and -d"
done_testing
