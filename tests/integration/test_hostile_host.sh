#!/bin/bash
# Host integrity: what an agent plants in /logs (symlinks to host files, FIFOs, a
# terminal device, pre-planted temporary names, setuid copies, 3,000-deep trees,
# sparse giants, a re-planting daemon) never makes rollout write, block on or
# expose anything on the host. Each attack is a task whose "solution" (the oracle
# agent) carries it out; canaries live in this test's own directory. After each
# job: canaries unchanged (content, size, mode), nothing setuid, special or linked
# out in the trial directories, every trial recorded within its timeouts, nothing
# left running. Also: the trial directory is closed to other users while the
# environment runs, and a hostile job directory cannot make `jobs resume` write
# through its links.
source "$(dirname "$0")/../lib/tap.sh"
source "$ROLLOUT_SRCDIR/tests/lib/providers.sh"
source "$ROLLOUT_SRCDIR/tests/lib/jobfixtures.sh"
tap_tmpdir
ds=$TAP_TMP/attacks
C=$TAP_TMP/canary
CD=$TAP_TMP/canary-dir
printf 'canary: the host own content\n' >"$C"
chmod 0644 "$C"
mkdir -p "$CD"
chmod 0755 "$CD"
echo keep >"$CD/keep"
canaries() { stat -c '%n %s %a %h %U' "$C" "$CD" "$CD"/*; sha256sum "$C" "$CD"/*; ls -A "$CD"; }
before=$(canaries)
# NAME SOLVE [TOP_TOML]: the verifier always scores 1 (the attacks are on the host).
# Building the attacks (3,000 mkdirs, thousands of links) is slow on a loaded
# machine: a generous agent timeout, so only a real hang counts.
mk_task() {
	busybox_task "$ds" "$1" "$2" 'echo "verifier says hello"
echo 1 > /logs/verifier/reward.txt' "${4:-900.0}" "${3:-}"
}


# Links to host files at every name rollout writes (exit 3: the oracle then
# writes agent/exit-code.txt).
mk_task links-at-rollout-names \
	"ln -s $C /logs/agent/exit-code.txt; ln -s $C /logs/verifier/test-stdout.txt 2>/dev/null
ln -s $C /logs/artifacts/manifest.json; ln -s $CD /logs/artifacts/out.txt; exit 3" \
	'artifacts = ["/app/out.txt"]'
# FIFOs and a terminal device where rollout writes (and reads).
mk_task fifos-and-tty \
	'mkfifo /logs/agent/exit-code.txt; mkfifo /logs/artifacts/manifest.json
mkfifo /logs/verifier/test-stdout.txt 2>/dev/null; mknod /logs/agent/oracle-tty c 5 0
mknod /logs/verifier/reward.json c 5 0 2>/dev/null; echo x > /app/out.txt; exit 1' \
	'artifacts = ["/app/out.txt"]' 60.0
# Every temporary name the old atomic writer used (NAME.tmp.PID).
mk_task planted-temp-names \
	"i=1; while [ \$i -le 4000 ]; do ln -s $C /logs/artifacts/manifest.json.tmp.\$i; i=\$((i+1)); done
echo x > /app/out.txt" \
	'artifacts = ["/app/out.txt"]'
# An artifact through a planted directory link, with setuid modes.
mk_task artifact-through-links \
	"mkdir -p /app/tree && echo agent > /app/tree/f && chmod 4755 /app/tree/f && chmod 777 /app/tree
ln -s $CD /logs/artifacts/tree" \
	'artifacts = ["/app/tree"]'
# setuid copies, world-writable directories, a file with a planted mode.
mk_task setuid-plants \
	'cp /bin/busybox /logs/agent/rootsh && chmod 4755 /logs/agent/rootsh
mkdir /logs/agent/w && chmod 1777 /logs/agent/w && cp /bin/busybox /logs/agent/w/g && chmod 2777 /logs/agent/w/g'
# A 3,000-deep tree.
mk_task deep-tree \
	'cd /logs/agent && i=0 && while [ $i -lt 3000 ]; do mkdir d && cd d || exit 9; i=$((i+1)); done; echo leaf > leaf'
# Sparse giants: 1 TiB in /logs/agent, a 3 GiB artifact.
mk_task sparse-giants \
	'truncate -s 1099511627776 /logs/agent/huge && truncate -s 3221225472 /app/big && echo tail >> /app/big' \
	'artifacts = ["/app/big"]'
# A daemon that keeps planting setuid files and links after the agent "ends".
mk_task replanting-daemon \
	"setsid sh -c 'trap \"\" TERM; n=0; while :; do n=\$((n+1)); cp /bin/busybox /logs/agent/x\$n 2>/dev/null; chmod 4755 /logs/agent/x\$n 2>/dev/null; ln -sf $C /logs/agent/l\$n 2>/dev/null; done' >/dev/null 2>&1 &
true"


for p in ${ROLLOUT_TEST_PROVIDERS:-sandbox docker}; do
	provider_or_next "$p" "host integrity" || continue
	job=attacks-$p-$$
	t0=$SECONDS
	"$ROLLOUT" run -q -e "$p" -p "$ds" -a oracle -n 4 --job-name "$job" -o "$TAP_TMP/jobs" \
		>"$TAP_TMP/$job.out" 2>&1
	elapsed=$((SECONDS - t0))
	jd=$TAP_TMP/jobs/$job
	check "$p: the job ran within its timeouts (${elapsed}s; no FIFO blocked it)" [ "$elapsed" -lt 900 ]
	check_eq "$p: host canaries unchanged" "$(canaries)" "$before"
	for t in "$ds"/*/; do
		t=$(basename "$t")
		d=$(trial_of "$jd" "$t")
		[ -n "$d" ] && [ -f "$d/result.json" ] || {
			not_ok "$p: $t: the trial has a result" "$(tail -5 "$TAP_TMP/$job.out")"
			continue
		}
		check_eq "$p: $t: verified (reward 1, no error)" \
			"$(reward_of "$d")/$(result_field "$d" '(r.get("exception_info") or {}).get("exception_type")')" \
			"1/None"
	done
	check_eq "$p: nothing setuid, special or linked out is left in the trial directories" \
		"$(find "$jd" \( -perm -4000 -o -perm -2000 -o -perm -1000 -o -perm -0002 -o -type p -o -type b -o -type c -o -type s \
			-o -type l \( -lname '/*' -o -lname '*..*' \) \) -print 2>/dev/null | head -5)" ""
	check_eq "$p: every trial directory is open to read again once clean" \
		"$(find "$jd" -mindepth 1 -maxdepth 1 -type d ! -name '.*' ! -perm 0755 | head -3)" ""
	d=$(trial_of "$jd" links-at-rollout-names)
	check_eq "$p: the verifier's output is in a regular test-stdout.txt" \
		"$(test -L "$d/verifier/test-stdout.txt" || cat "$d/verifier/test-stdout.txt")" "verifier says hello"
	check_eq "$p: the oracle's exit code is in a regular exit-code.txt" \
		"$(test -L "$d/agent/exit-code.txt" || cat "$d/agent/exit-code.txt")" 3
	check "$p: the manifest is a regular file" [ -f "$d/artifacts/manifest.json" -a ! -L "$d/artifacts/manifest.json" ]
	d=$(trial_of "$jd" fifos-and-tty)
	check "$p: the FIFO trial took well under its timeouts' sum (nothing waited on a FIFO)" \
		[ "$(trial_seconds "$d")" -lt 120 ]
	check_eq "$p: FIFOs and the tty node were replaced by regular files" \
		"$(test -f "$d/agent/exit-code.txt" && test -f "$d/artifacts/manifest.json" && echo yes)" yes
	d=$(trial_of "$jd" artifact-through-links)
	check_eq "$p: the artifact landed in the trial, masked" \
		"$(stat -c '%F %a' "$d/artifacts/app/tree" "$d/artifacts/app/tree/f" 2>&1)" "directory 755
regular file 755"
	d=$(trial_of "$jd" deep-tree)
	check "$p: the 3,000-deep tree was cut (and recorded)" \
		[ "$(result_field "$d" 'r["integrity"]["collect"]["deep_trees_removed"]')" -ge 1 ]
	d=$(trial_of "$jd" sparse-giants)
	check_eq "$p: the 1 TiB sparse log was cut to the cap and stays sparse" \
		"$(stat -c '%s %b' "$d/agent/huge" 2>&1 | awk '{print $1 "/" ($2 < 2048)}')" "1073741824/1"
	check_eq "$p: the 3 GiB artifact was cut to the cap, sparse, and that is recorded" \
		"$(stat -c '%s %b' "$d/artifacts/app/big" 2>&1 | awk '{print ($1 > 1073676288 && $1 <= 1073741824) "/" ($2 < 2048)}')/$(result_field "$d" 'r["integrity"]["collect"]["artifacts_truncated"]')" \
		"1/1/True"
	d=$(trial_of "$jd" replanting-daemon)
	check "$p: the re-planting daemon was killed at the end of the agent phase" \
		[ "$(result_field "$d" 'r["integrity"]["agent_processes_killed"] >= 1')" = True ]
	check_eq "$p: no environment of the job left" "$("$ROLLOUT" env ls -e "$p" | grep -c "$job")" 0

	# A user-defined agent whose install plants links where rollout writes the
	# next command's files (command-0/, its stdout.txt) and its own return code.
	cat >"$TAP_TMP/planter-$p.sh" <<EOF
ln -s $CD /logs/agent/command-0
ln -sf $C /logs/agent/setup/return-code.txt
ln -sf $C /logs/agent/setup/stdout.txt
echo planted
EOF
	cat >"$TAP_TMP/planter-$p.yaml" <<EOF
jobs_dir: $TAP_TMP/jobs
job_name: planter-$p-$$
agents:
  - name: planter
    install: $TAP_TMP/planter-$p.sh
    run: "echo ran"
datasets:
  - path: $ds
    task_names: [setuid-plants]
environment:
  type: $p
EOF
	"$ROLLOUT" run -q "$TAP_TMP/planter-$p.yaml" >"$TAP_TMP/planter-$p.out" 2>&1
	d=$(trial_of "$TAP_TMP/jobs/planter-$p-$$" setuid-plants)
	check_eq "$p: an installed agent's planted links: canaries unchanged" "$(canaries)" "$before"
	check_eq "$p: ... command-0 is a real directory with the command's output" \
		"$(test -L "$d/agent/command-0" || cat "$d/agent/command-0/stdout.txt" 2>&1)" "ran"
	check_eq "$p: ... setup/return-code.txt is a regular file" \
		"$(test -L "$d/agent/setup/return-code.txt" || cat "$d/agent/setup/return-code.txt")" 0
done

# While the environment runs, other host users cannot reach the trial's files.
mk_closed=$TAP_TMP/closed
mkdir -p "$mk_closed"
ds=$mk_closed mk_task wait-for-go \
	'touch /logs/agent/running; i=0; while [ ! -e /logs/agent/go ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done'
if provider_ready sandbox; then
	name=closed-$$
	"$ROLLOUT" trial run -q -e sandbox -p "$mk_closed/wait-for-go" --trials-dir "$TAP_TMP/trials" \
		--trial-name "$name" >/dev/null 2>&1 &
	pid=$!
	d=$TAP_TMP/trials/$name
	for _ in $(seq 1 600); do [ -e "$d/agent/running" ] && break; sleep 0.1; done
	check_eq "sandbox: the trial directory is 0700 while the environment runs" "$(stat -c %a "$d")" 700
	if command -v setpriv >/dev/null && is_root; then
		check "sandbox: ... so another user cannot list its agent logs" \
			expect_fail setpriv --reuid 65534 --regid 65534 --clear-groups ls "$d/agent"
	else
		skip "sandbox: another user cannot list the agent logs" "needs root and setpriv"
	fi
	touch "$d/agent/go"
	wait "$pid"
	check_eq "sandbox: ... and 0755 once the trial is done and clean" "$(stat -c %a "$d")" 755
else
	skip "sandbox: trial directory closed while running" "$PROVIDER_WHY"
fi

# A job directory from elsewhere: .lock, job.log and config.json links to host
# files; resume must not write through them.
if provider_ready sandbox; then
	mk_closed2=$TAP_TMP/one
	mkdir -p "$mk_closed2"
	ds=$mk_closed2 mk_task quick 'true'
	job=hostile-resume-$$
	"$ROLLOUT" run -q -e sandbox -p "$mk_closed2" -a oracle --job-name "$job" -o "$TAP_TMP/jobs" >/dev/null 2>&1
	jd=$TAP_TMP/jobs/$job
	rm -f "$jd/.lock" "$jd/job.log"
	ln -s "$C" "$jd/.lock"
	ln -s "$C" "$jd/job.log"
	mkfifo "$jd/result.json.tmp.1" 2>/dev/null
	out=$(timeout 120 "$ROLLOUT" jobs resume "$jd" 2>&1)
	check_eq "resume through planted .lock and job.log links: canaries unchanged" "$(canaries)" "$before"
	check "... the job still resumed" [ -f "$jd/result.json" ]
	check "... .lock and job.log are regular files now" [ -f "$jd/.lock" -a ! -L "$jd/.lock" -a -f "$jd/job.log" -a ! -L "$jd/job.log" ]
else
	skip "hostile job directory resume" "$PROVIDER_WHY"
fi
done_testing
