#!/bin/bash
# Honest rewards: an agent that does not solve its task cannot score. Each forgery
# below is a task whose "solution" (run by the oracle agent) is the attack and
# whose verifier writes 0, crashes, or checks what the agent could fake; every one
# must end with reward 0 or the right named error, on both providers. A control
# task that really solves its problem must still score 1.
source "$(dirname "$0")/../lib/tap.sh"
source "$ROLLOUT_SRCDIR/tests/lib/providers.sh"
source "$ROLLOUT_SRCDIR/tests/lib/jobfixtures.sh"
tap_tmpdir
ds=$TAP_TMP/forgeries
mk_task() { busybox_task "$ds" "$1" "$2" "$3"; } # NAME SOLVE TEST


# The honest verifier of every task: 1 only when /app/out says ok.
verdict='if [ "$(cat /app/out 2>/dev/null)" = ok ]; then echo 1; else echo 0; fi > /logs/verifier/reward.txt'

mk_task control-solved 'echo ok > /app/out' "$verdict"
# The agent writes the reward itself; the verifier then writes reward.json.
mk_task forge-reward-files \
	'echo 1 > /logs/verifier/reward.txt; echo "{\"reward\": 1}" > /logs/verifier/reward.json; true' \
	'if [ "$(cat /app/out 2>/dev/null)" = ok ]; then r=1; else r=0; fi; echo "{\"reward\": $r}" > /logs/verifier/reward.json'
# ... and the verifier crashes before writing anything.
mk_task forge-crashing-verifier \
	'echo 1 > /logs/verifier/reward.txt; echo "{\"reward\": 1}" > /logs/verifier/reward.json; true' \
	'echo "verifier crashed" >&2; exit 3'
# A writer that outlives the agent phase: setsid, SIGTERM ignored.
mk_task forge-writer-daemon \
	"setsid sh -c 'trap \"\" TERM; while :; do echo 1 > /logs/verifier/reward.txt; echo \"{\\\"reward\\\": 1}\" > /logs/verifier/reward.json; done' >/dev/null 2>&1 &
true" \
	"sleep 1; $verdict"
# The agent's own sh and chmod earlier on PATH.
mk_task forge-path-shell \
	'mkdir -p /usr/local/bin
for c in sh chmod; do printf "#!/bin/busybox sh\necho 1 > /logs/verifier/reward.txt\n" > /usr/local/bin/$c; chmod +x /usr/local/bin/$c; done' \
	"$verdict"
# A planted /tests/conftest.py that "makes every test pass" (the stand-in test
# runner below passes when it finds one, as pytest would load it).
mk_task forge-conftest \
	'mkdir -p /tests && echo "def pytest_runtest_makereport(): pass" > /tests/conftest.py' \
	"if [ -e /tests/conftest.py ]; then echo 1 > /logs/verifier/reward.txt; else $verdict; fi"
# /tests as a link to the agent's own tests.
mk_task forge-tests-link \
	'mkdir -p /app/fake && printf "#!/bin/sh\necho 1 > /logs/verifier/reward.txt\n" > /app/fake/test.sh && chmod +x /app/fake/test.sh && rm -rf /tests && ln -s /app/fake /tests' \
	"$verdict"
# /logs/verifier replaced by a link, or a FIFO planted in it.
mk_task forge-verifier-link \
	'mkdir -p /tmp/v && echo 1 > /tmp/v/reward.txt; rm -rf /logs/verifier 2>/dev/null; ln -s /tmp/v /logs/verifier 2>/dev/null; mkfifo /logs/verifier/reward.txt 2>/dev/null; true' \
	"$verdict"
# Reward files with future times.
mk_task forge-future-mtime \
	'echo "{\"reward\": 1}" > /logs/verifier/reward.json; touch -d "2035-01-01 00:00:00" /logs/verifier/reward.json; true' \
	"$verdict"
# A verifier that copies results the agent prepared, keeping their (old) times.
mk_task forge-old-copy \
	'mkdir -p /app/results && echo "{\"reward\": 1}" > /app/results/reward.json && touch -d "2001-01-01 00:00:00" /app/results/reward.json' \
	"cp -p /app/results/reward.json /logs/verifier/ 2>/dev/null; $verdict"


for p in ${ROLLOUT_TEST_PROVIDERS:-sandbox docker}; do
	provider_or_next "$p" "honest rewards" || continue
	job=forgeries-$p-$$
	"$ROLLOUT" run -q -e "$p" -p "$ds" -a oracle -n 4 --job-name "$job" -o "$TAP_TMP/jobs" \
		>"$TAP_TMP/$job.out" 2>&1
	jd=$TAP_TMP/jobs/$job
	for t in "$ds"/*/; do
		t=$(basename "$t")
		d=$(trial_of "$jd" "$t")
		if [ -z "$d" ]; then
			not_ok "$p: $t: has a trial directory" "$(tail -5 "$TAP_TMP/$job.out")"
			continue
		fi
		reward=$(reward_of "$d")
		error=$(result_field "$d" '(r.get("exception_info") or {}).get("exception_type")')
		case $t in
		control-solved) check_eq "$p: $t: an honest solution scores 1" "$reward/$error" "1/None" ;;
		forge-crashing-verifier)
			check_eq "$p: $t: the agent's files do not stand in for a crashed verifier" \
				"$reward/$error" "None/RewardFileNotFoundError" ;;
		*)
			case $reward in
			0 | 0.0) ok "$p: $t: scores 0" ;;
			*) not_ok "$p: $t: scores 0" "reward=$reward error=$error" ;;
			esac
			;;
		esac
	done
	d=$(trial_of "$jd" forge-writer-daemon)
	check "$p: the writer daemon was killed at the end of the agent phase" \
		[ "$(result_field "$d" 'r["integrity"]["agent_processes_killed"] >= 1')" = True ]
	check_contains "$p: ... and the trial is flagged" \
		"$(result_field "$d" 'r["integrity"]["tampering"]')" agent_processes_killed
	d=$(trial_of "$jd" forge-old-copy)
	check_eq "$p: a reward file older than the verification is not read (and is reported)" \
		"$(result_field "$d" 'r["integrity"]["reward_file"]["name"] + " " + r["integrity"]["reward_file_ignored"]')" \
		"reward.txt reward.json"
	d=$(trial_of "$jd" control-solved)
	check_eq "$p: an honest trial carries no tampering flag" \
		"$(result_field "$d" 'r["integrity"]["tampering"]')" "[]"
	check_eq "$p: the result records which reward file was read" \
		"$(result_field "$d" 'r["integrity"]["reward_file"]["name"]')" reward.txt
	if [ "$p" = docker ]; then
		d=$(trial_of "$jd" forge-reward-files)
		check_contains "$p: a reward file planted before verification is flagged" \
			"$(result_field "$d" 'r["integrity"]["tampering"]')" reward_file_planted
	fi
	summary=$("$ROLLOUT" jobs summarize "$jd" 2>&1)
	check_contains "$p: jobs summarize points at the tampered trials" "$summary" "tamper"
	check_eq "$p: no environment of the job left" "$("$ROLLOUT" env ls -e "$p" | grep -c "$job")" 0
done
done_testing
