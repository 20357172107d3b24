#!/bin/bash
# Host environment variables read by task templates (${VAR} in [environment].env,
# [verifier].env, [solution].env): before any trial, rollout lists them (names, never
# values) and needs -y/--yes, the job file's allow_host_env, or a "y" on a terminal;
# otherwise it refuses and starts nothing.
source "$(dirname "$0")/../lib/tap.sh"
source "$ROLLOUT_SRCDIR/tests/lib/providers.sh"
source "$ROLLOUT_SRCDIR/tests/lib/jobfixtures.sh"
tap_tmpdir

export ROLLOUT_TEST_HOST_SECRET="host-secret-$$-value"
unset ROLLOUT_TEST_HOST_OTHER
ds=$TAP_TMP/ds
# The reward says whether the variable arrived: 1 when the environment has it.
for t in reads-secret reads-two; do
	busybox_task "$ds" "$t" true \
		"[ \"\$TOKEN\" = \"$ROLLOUT_TEST_HOST_SECRET\" ] && echo 1 > /logs/verifier/reward.txt || echo 0 > /logs/verifier/reward.txt" \
		60.0 "" '[environment.env]
TOKEN = "${ROLLOUT_TEST_HOST_SECRET}"'
done
printf '[verifier.env]\nOTHER = "${ROLLOUT_TEST_HOST_OTHER:-fallback}"\n' >>"$ds/reads-two/task.toml"
# Only the oracle uses [solution.env].
printf '[solution.env]\nSOL = "${ROLLOUT_TEST_HOST_SOL:-x}"\n' >>"$ds/reads-secret/task.toml"

no_secret() { # no_secret NAME TEXT: the value never appears
	case "$2" in *"$ROLLOUT_TEST_HOST_SECRET"*) not_ok "$1" "$2" ;; *) ok "$1" ;; esac
}
job_file() { # job_file NAME [allow_host_env value]
	{
		echo "jobs_dir: $TAP_TMP/jobs"
		echo "agents: [{name: nop}]"
		echo "datasets: [{path: $ds}]"
		[ $# -gt 1 ] && echo "allow_host_env: $2"
	} >"$TAP_TMP/$1.yaml"
	echo "$TAP_TMP/$1.yaml"
}

# --- refusal: no flag, no terminal ----------------------------------------------------
out=$("$ROLLOUT" run -a nop -p "$ds" -o "$TAP_TMP/jobs" --job-name refused </dev/null 2>&1); rc=$?
check_eq "no -y and no terminal: the job does not run" "$rc" 1
check_contains "the refusal names the variable and the tasks" "$out" \
	"ROLLOUT_TEST_HOST_SECRET (reads-secret [environment.env], reads-two [environment.env])"
check_contains "the refusal names a variable with a default too" "$out" \
	"ROLLOUT_TEST_HOST_OTHER (reads-two [verifier.env])"
check_contains "the refusal says how to allow it" "$out" "-y/--yes"
check_contains "the refusal names the job key" "$out" "allow_host_env: true"
no_secret "the refusal never prints the value" "$out"
check_eq "refused: no job directory, so no trial" "$(ls -A "$TAP_TMP/jobs/refused" 2>/dev/null)" ""

case "$out" in
*ROLLOUT_TEST_HOST_SOL*) not_ok "[solution.env] is not asked about when no agent is the oracle" "$out" ;;
*) ok "[solution.env] is not asked about when no agent is the oracle" ;;
esac
out=$("$ROLLOUT" run -a oracle -p "$ds" -o "$TAP_TMP/jobs" --job-name oracle </dev/null 2>&1)
check_contains "[solution.env] is asked about for the oracle" "$out" \
	"ROLLOUT_TEST_HOST_SOL (reads-secret [solution.env])"
# A task's [environment].env entry that the job file's environment.env replaces reads
# nothing from the host.
printf 'jobs_dir: %s\nagents: [{name: nop}]\ndatasets: [{path: %s}]\nenvironment: {env: {TOKEN: fixed}}\n' \
	"$TAP_TMP/jobs" "$ds" >"$TAP_TMP/replaced.yaml"
out=$("$ROLLOUT" run "$TAP_TMP/replaced.yaml" --job-name replaced </dev/null 2>&1)
check_contains "a variable the job file's environment.env replaces is not asked about" "$out" \
	"environments: ROLLOUT_TEST_HOST_OTHER (reads-two [verifier.env]). No trial"

out=$("$ROLLOUT" run "$(job_file partial '[ROLLOUT_TEST_HOST_SECRET]')" --job-name partial \
	</dev/null 2>&1); rc=$?
check_eq "allow_host_env listing one of two variables: refused" "$rc" 1
check_contains "... naming only the one not allowed" "$out" \
	"environments: ROLLOUT_TEST_HOST_OTHER (reads-two [verifier.env]). No trial"
check_eq "... and no trial" "$(ls -A "$TAP_TMP/jobs/partial" 2>/dev/null)" ""

out=$("$ROLLOUT" trial run -a nop -p "$ds/reads-secret" --trials-dir "$TAP_TMP/trials" \
	</dev/null 2>&1); rc=$?
check_eq "trial run without -y: refused" "$rc" 1
check_eq "... and no trial directory" "$(ls -A "$TAP_TMP/trials" 2>/dev/null)" ""

# --- on a terminal: asked, [y/N] ------------------------------------------------------
# on_tty ANSWER ARGS...: run rollout on a pseudo-terminal, answer the question, print
# what the terminal showed and then "exit=N".
on_tty() {
	python3 - "$@" <<'PY'
import os, pty, sys
answer, args = sys.argv[1], sys.argv[2:]
pid, fd = pty.fork()
if pid == 0:
    os.execv(os.environ["ROLLOUT"], [os.environ["ROLLOUT"]] + args)
seen, sent = b"", False
while True:
    try:
        chunk = os.read(fd, 4096)
    except OSError:
        break
    if not chunk:
        break
    seen += chunk
    if not sent and b"Proceed? [y/N]" in seen:
        os.write(fd, answer.encode() + b"\n")
        sent = True
_, status = os.waitpid(pid, 0)
sys.stdout.write(seen.decode(errors="replace"))
print("\nexit=%d" % os.waitstatus_to_exitcode(status))
PY
}
out=$(on_tty n run -a nop -p "$ds" -o "$TAP_TMP/jobs" --job-name declined)
check_contains "terminal: the question lists the variables" "$out" \
	"ROLLOUT_TEST_HOST_SECRET (reads-secret [environment.env], reads-two [environment.env])"
check_contains "terminal: answering n refuses" "$out" "exit=1"
check_contains "terminal: ... saying so" "$out" "not confirmed; no trial was started"
no_secret "terminal: the value is never shown" "$out"
check_eq "terminal: declined: no trial" "$(ls -A "$TAP_TMP/jobs/declined" 2>/dev/null)" ""

# --- allowed ------------------------------------------------------------------------
for p in ${ROLLOUT_TEST_PROVIDERS:-sandbox}; do
	provider_or_next "$p" "host variables" || continue
	rewards() { # rewards JOB_DIR: the rewards of its trials, sorted
		cat "$1"/*/verifier/reward.txt 2>/dev/null | sort | tr '\n' ' '
	}
	out=$("$ROLLOUT" run -e "$p" -a nop -p "$ds" -o "$TAP_TMP/jobs" --job-name with-yes -y \
		</dev/null 2>&1); rc=$?
	check_eq "$p: -y: the job runs" "$rc" 0
	check_eq "$p: -y: the variable reached both environments" "$(rewards "$TAP_TMP/jobs/with-yes")" "1 1 "
	no_secret "$p: -y: rollout's output never shows the value" "$out"
	check_contains "$p: -y: the variables are named in the log" "$out" "(allowed by --yes)"
	leaked=$(grep -rl -- "$ROLLOUT_TEST_HOST_SECRET" "$TAP_TMP/jobs/with-yes" 2>/dev/null)
	check_eq "$p: -y: the value is in no file of the job directory" "$leaked" ""

	out=$("$ROLLOUT" run -e "$p" "$(job_file keyed true)" --job-name keyed </dev/null 2>&1); rc=$?
	check_eq "$p: allow_host_env: true: the job runs" "$rc" 0
	check_eq "$p: allow_host_env: true: the variable arrived" "$(rewards "$TAP_TMP/jobs/keyed")" "1 1 "

	out=$("$ROLLOUT" run -e "$p" \
		"$(job_file named '[ROLLOUT_TEST_HOST_SECRET, ROLLOUT_TEST_HOST_OTHER]')" \
		--job-name named </dev/null 2>&1); rc=$?
	check_eq "$p: allow_host_env listing every variable: the job runs" "$rc" 0

	out=$(on_tty y run -e "$p" -a nop -p "$ds" -o "$TAP_TMP/jobs" --job-name confirmed)
	check_contains "$p: terminal: answering y runs the job" "$out" "exit=0"
	check_eq "$p: terminal: the variable arrived" "$(rewards "$TAP_TMP/jobs/confirmed")" "1 1 "

	# Resuming asks again (-y is not saved); allow_host_env is, with the config.
	rm -f "$TAP_TMP"/jobs/with-yes/*/result.json
	out=$("$ROLLOUT" jobs resume "$TAP_TMP/jobs/with-yes" </dev/null 2>&1); rc=$?
	check_eq "$p: resume without -y: refused" "$rc" 1
	check_contains "$p: resume without -y: says why" "$out" "ROLLOUT_TEST_HOST_SECRET"
	out=$("$ROLLOUT" jobs resume -y "$TAP_TMP/jobs/with-yes" </dev/null 2>&1); rc=$?
	check_eq "$p: resume -y: runs" "$rc" 0
	rm -f "$TAP_TMP"/jobs/keyed/*/result.json
	out=$("$ROLLOUT" jobs resume "$TAP_TMP/jobs/keyed" </dev/null 2>&1); rc=$?
	check_eq "$p: resume of a job with allow_host_env: runs" "$rc" 0
done
done_testing
