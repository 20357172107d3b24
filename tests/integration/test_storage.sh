#!/bin/bash
# storage_mb on the sandbox (docs/SANDBOX.md "Storage"). On an ext4 made with
# `-O quota,project` and mounted `prjquota` (ROLLOUT_HOME and the jobs on it): an
# agent writing past the limit into / and into /logs/agent gets EDQUOT, the trial
# records the hit and still verifies, a trial within the limit is unaffected, the
# environments' directories go and their projects' limits are cleared (also for a
# kept environment removed by `rollout env rm`). Where this kernel cannot mount
# such a filesystem (no quota format built in), the same scenario runs inside
# user-mode-linux. On the plain temp directory (no project quotas), a job of two
# trials says once that storage_mb is not enforced.
source "$(dirname "$0")/../lib/tap.sh"
source "$ROLLOUT_SRCDIR/tests/lib/providers.sh"
source "$ROLLOUT_SRCDIR/tests/lib/storage.sh"
source "$ROLLOUT_SRCDIR/tests/lib/uml.sh"
cd "$ROLLOUT_SRCDIR" || exit 1
tap_tmpdir

if ! is_root; then
	skip "storage limits" "needs root (quotas, loop devices, the sandbox as root)"
	done_testing
	exit 0
fi

# --- Without project quotas: one warning per job --------------------------------
plain_job() {
	local out
	provider_or_next sandbox "storage_mb not enforced: warning" || return
	storage_dataset "$TAP_TMP/ds"
	out=$("$ROLLOUT" run -p "$TAP_TMP/ds" -t fill -t small -a oracle -e sandbox -o "$TAP_TMP/jobs" \
		--job-name plain -n 2 2>&1)
	if [ "$(storage_result "$(ls -d "$TAP_TMP"/jobs/plain/small__* | head -1)" | cut -d' ' -f1)" = true ]; then
		skip "storage_mb not enforced: warning" "the temp directory enforces project quotas"
		return
	fi
	check_eq "without project quotas: the job says once that storage_mb is not enforced" \
		"$(grep -c 'storage_mb is not enforced' <<<"$out")" 1
	check_contains "without project quotas: the warning says how to enable them" "$out" \
		'`-O quota,project` and mounted with `prjquota`'
	check_eq "without project quotas: the trial records an unenforced limit" \
		"$(storage_result "$(ls -d "$TAP_TMP"/jobs/plain/small__* | head -1)" | cut -d' ' -f1-5)" \
		"false false 52428800 None 1.0"
}
plain_job

# --- With project quotas ----------------------------------------------------------
fixture_apt mkfs.ext4 e2fsprogs || { not_ok "install e2fsprogs"; done_testing; exit 0; }
fixture_busybox_tar >/dev/null || { not_ok "build the busybox fixture"; done_testing; exit 0; }
img=$TAP_TMP/quota.img
mnt=$TAP_TMP/mnt
mkdir -p "$mnt"
truncate -s 512M "$img"
mkfs.ext4 -q -F -O quota,project "$img" || { not_ok "mkfs.ext4 -O quota,project"; done_testing; exit 0; }

loop=$(losetup -f --show "$img" 2>/dev/null)
if [ -z "$loop" ]; then
	skip "storage limits enforced" "no loop device could be set up"
elif mount -o prjquota "$loop" "$mnt" 2>/dev/null; then
	at_exit "umount '$mnt' 2>/dev/null; losetup -d '$loop' 2>/dev/null"
	diag "this kernel mounts ext4 with project quotas: the scenario runs here"
	storage_scenario "$mnt"
else
	losetup -d "$loop"
	# e.g. a kernel built without CONFIG_QFMT_V2: ext4's quota feature cannot
	# be mounted read-write at all.
	diag "this kernel cannot mount ext4 with project quotas ($(dmesg 2>/dev/null | grep -i 'ext4.*quota' | tail -1)); using user-mode-linux"
	if ! uml_ready; then
		skip "storage limits enforced" "$UML_WHY"
	elif uml_run "$img" "$TAP_TMP/uml" \
		"source '$ROLLOUT_SRCDIR/tests/lib/tap.sh'; source '$ROLLOUT_SRCDIR/tests/lib/fixtures.sh'" \
		"source '$ROLLOUT_SRCDIR/tests/lib/storage.sh'" \
		"mkdir -p '$mnt' && mount -o prjquota /dev/ubda '$mnt' || { echo 'not ok 1 - mount ext4 with prjquota in the guest'; exit 1; }" \
		"storage_scenario '$mnt'; umount '$mnt'"; then
		tap_relay "user-mode-linux $(basename "$UML_MODULES")" \
			<"$TAP_TMP/uml/stdout"
		grep -q '^ok\|^not ok' "$TAP_TMP/uml/stdout" ||
			not_ok "user-mode-linux: the scenario ran" "$(tail -20 "$TAP_TMP/uml/stderr")"
	else
		not_ok "user-mode-linux: the guest finished" "$(tail -20 "$TAP_TMP/uml/console")" \
			"$(tail -20 "$TAP_TMP/uml/stderr" 2>/dev/null)"
	fi
fi
done_testing
