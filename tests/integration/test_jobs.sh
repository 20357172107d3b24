#!/bin/bash
# Jobs under stress, per provider: the same stats at every concurrency level; Ctrl-C
# at random moments always gives exit 130, a result for every started trial, nothing
# left behind, and a resume that ends with the uninterrupted stats; the same after
# kill -9 + rollout gc; shards merged equal the unsharded job.
source "$(dirname "$0")/../lib/tap.sh"
source "$ROLLOUT_SRCDIR/tests/lib/providers.sh"
source "$ROLLOUT_SRCDIR/tests/lib/leftovers.sh"
source "$ROLLOUT_SRCDIR/tests/lib/jobfixtures.sh"
tap_tmpdir
export ROLLOUT_PROGRESS=lines
make_mixed_dataset "$TAP_TMP/mixed"

# Every started trial (a directory with config.json) has a finished result.json.
all_results_finished() { # JOB_DIR
	local d missing=""
	for d in "$1"/*/; do
		[ -f "$d/config.json" ] || continue
		grep -q '"finished_at": "' "$d/result.json" 2>/dev/null || missing="$missing $(basename "$d")"
	done
	[ -z "$missing" ] || { echo "no finished result:$missing"; return 1; }
}

no_workers_of() { ! pgrep -f -- "--job-name $1" >/dev/null; }

run_job() { # PROVIDER JOB_NAME EXTRA...
	local p=$1 name=$2; shift 2
	"$ROLLOUT" run -p "$TAP_TMP/mixed" -k 2 -e "$p" -o "$TAP_TMP/jobs-$p" --job-name "$name" -q "$@"
}
# In the background, with exec: $! is then rollout itself, not a subshell.
run_job_bg() { # PROVIDER JOB_NAME EXTRA...
	local p=$1 name=$2; shift 2
	exec "$ROLLOUT" run -p "$TAP_TMP/mixed" -k 2 -e "$p" -o "$TAP_TMP/jobs-$p" --job-name "$name" -q "$@"
}

for p in ${ROLLOUT_TEST_PROVIDERS:-sandbox docker}; do
	provider_or_next "$p" jobs || continue
	# Docker trials take ~1 s each: fewer interrupted runs keep the suite short.
	interrupts=${ROLLOUT_TEST_INTERRUPTS:-20}
	[ "$p" = docker ] && interrupts=${ROLLOUT_TEST_INTERRUPTS_DOCKER:-6}
	jobs=$TAP_TMP/jobs-$p

	# 1. Same stats at several concurrency levels.
	run_job "$p" base -n 4; rc=$?
	check_eq "$p: job runs (exit 0)" "$rc" 0
	base=$(normalized_stats "$jobs/base")
	check_contains "$p: mixed outcomes: 18 trials" "$base" '"n_trials": 18'
	check_contains "$p: mixed outcomes: errors counted" "$base" '"n_errors": 8'
	check_contains "$p: mixed outcomes: timeouts recorded" "$base" '"AgentTimeoutError": 4'
	check_contains "$p: mixed outcomes: missing rewards recorded" "$base" '"RewardFileNotFoundError": 4'
	for n in 1 16; do
		run_job "$p" conc-$n -n $n
		check_eq "$p: stats at -n $n equal -n 4" "$(normalized_stats "$jobs/conc-$n")" "$base"
	done
	check_eq "$p: nothing left after the runs" "$(leftovers "$jobs/base" "$p")" ""
	# One rollout per job directory.
	run_job_bg "$p" locked -n 1 &
	pid=$!
	sleep 0.3
	out=$(run_job "$p" locked -n 1 2>&1); rc=$?
	check_eq "$p: a second rollout on a running job is refused" "$rc" 1
	check_contains "$p: ... saying which process runs it" "$out" "being run by another rollout process (pid $pid)"
	kill -INT $pid; wait $pid

	# 2. Ctrl-C at random moments, then resume.
	for i in $(seq 1 "$interrupts"); do
		name=int-$i
		delay=$(awk -v s="$i$RANDOM" 'BEGIN{srand(s); printf "%.2f", 0.05 + rand()*2.5}')
		run_job_bg "$p" "$name" -n 4 &
		pid=$!
		sleep "$delay"
		kill -INT $pid
		wait $pid; rc=$?
		if [ $rc = 0 ]; then
			ok "$p: interrupt $i after ${delay}s: the job had already finished"
		else
			check_eq "$p: interrupt $i after ${delay}s: exit 130" "$rc" 130
		fi
		check "$p: interrupt $i: every started trial has a result" all_results_finished "$jobs/$name"
		check_eq "$p: interrupt $i: nothing left behind" "$(leftovers "$jobs/$name" "$p")" ""
		"$ROLLOUT" jobs resume "$jobs/$name" -q; rc=$?
		check_eq "$p: interrupt $i: resume completes" "$rc" 0
		check_eq "$p: interrupt $i: resumed stats equal the uninterrupted job" \
			"$(normalized_stats "$jobs/$name")" "$base"
	done

	# 3. kill -9 of rollout: its workers stop with it; gc finds the rest; resume completes.
	run_job_bg "$p" killed -n 4 &
	pid=$!
	sleep 1.5
	kill -9 $pid
	wait $pid 2>/dev/null
	# The workers notice (parent-death signal) and tear down: gc leaves an
	# environment alone while its worker lives, so wait for them (a condition).
	check "$p: the workers end after kill -9 of rollout" wait_until 120 no_workers_of killed
	"$ROLLOUT" gc -e "$p" >/dev/null; rc=$?
	check_eq "$p: gc after kill -9 succeeds" "$rc" 0
	check_eq "$p: nothing left after kill -9 and gc" "$(leftovers "$jobs/killed" "$p")" ""
	"$ROLLOUT" jobs resume "$jobs/killed" -q; rc=$?
	check_eq "$p: resume after kill -9 completes" "$rc" 0
	check_eq "$p: stats after kill -9 and resume equal the uninterrupted job" \
		"$(normalized_stats "$jobs/killed")" "$base"

	# 4. Shards merged equal the unsharded job.
	for s in 0 1 2; do run_job "$p" shard-$s -n 4 --shard $s/3; done
	"$ROLLOUT" jobs merge -o "$jobs/merged" "$jobs/shard-0" "$jobs/shard-1" "$jobs/shard-2" >/dev/null; rc=$?
	check_eq "$p: merge succeeds" "$rc" 0
	check_eq "$p: merged shards equal the unsharded job" "$(normalized_stats "$jobs/merged")" "$base"
	n0=$(ls -d "$jobs"/shard-0/*/ | wc -l); n1=$(ls -d "$jobs"/shard-1/*/ | wc -l)
	check "$p: shards split the trials (6 + 6 + 6)" test "$n0" = 6 -a "$n1" = 6
done
done_testing
