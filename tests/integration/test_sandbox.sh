#!/bin/bash
# Sandbox-specific integration tests (sandbox_itest.c) on the busybox fixture:
# as root, then the rootless cases and a small job as an unprivileged user (uid
# 65534) with its own ROLLOUT_HOME and its own copy of the layer, with and
# without subordinate ids (uidmap is installed when missing); finally nothing
# may be left behind: no environment directory, no cgroup, no mount.
source "$(dirname "$0")/../lib/tap.sh"
source "$ROLLOUT_SRCDIR/tests/lib/fixtures.sh"
source "$ROLLOUT_SRCDIR/tests/lib/jobfixtures.sh"
bin=$ROLLOUT_SRCDIR/build/rel/itests/sandbox_itest
tap_tmpdir
shopt -s lastpipe # tap_relay runs in this shell, so its ok/not_ok count


leftover_cgroups() {
	find /sys/fs/cgroup -maxdepth 6 -type d -name 'rollout.sbx-*' 2>/dev/null | sort
}

if ! is_root; then
	skip "sandbox" "needs root (the rootless cases are run from the root test)"
	done_testing
	exit 0
fi
tar=$(fixture_busybox_tar) || { not_ok "busybox fixture"; done_testing; exit 0; }
chmod 755 "$TAP_TMP"
mkdir -p "$TAP_TMP/rootfs" && tar -C "$TAP_TMP/rootfs" -xf "$tar"
export ROLLOUT_HOME=$TAP_TMP/home
cg_before=$(leftover_cgroups)

# Each phase runs only its own cases: the rootless ones run below, as a user.
SANDBOX_ITEST_ROOTFS=$TAP_TMP/rootfs "$bin" '!rootless_*' 2>&1 | tap_relay root

# Rootless: an ordinary user (uid 65534) whose store (here: its copy of the
# layer, and for the jobs a store it imported into) it owns, in three modes:
#   without a range   newuidmap installed, no line for the user in /etc/subuid
#   newuidmap hidden  a range, but newuidmap/newgidmap not on PATH
#   with subids       a range and newuidmap: the image's other users exist
# The first two map one id each; SANDBOX_ITEST_SUBIDS makes the cases check
# which mode they got. /etc/subuid and /etc/subgid are restored afterwards.
rl=$TAP_TMP/rootless
as_user() { setpriv --reuid=65534 --regid=65534 --clear-groups env HOME=/nonexistent "$@"; }

# rootless_cases LABEL HOME SUBIDS FILTER [VAR=VALUE...]
rootless_cases() {
	local label=$1 home=$2 subids=$3 filter=$4
	shift 4
	mkdir -p "$home" && chown 65534:65534 "$home"
	as_user SANDBOX_ITEST_ROOTFS="$rl/rootfs" ROLLOUT_HOME="$home" \
		ROLLOUT_SRCDIR="$ROLLOUT_SRCDIR" SANDBOX_ITEST_SUBIDS="$subids" "$@" "$bin" "$filter" 2>&1 |
		tap_relay "$label"
	check_eq "$label: no environment directory left" "$(ls -A "$home/envs" 2>/dev/null)" ""
	check_eq "$label: the reaper removed every destroyed environment before exit" \
		"$(ls -A "$home/trash" 2>/dev/null)" ""
}

# rootless_job LABEL HOME [VAR=VALUE...]: the user imports the busybox image into
# its own store and runs the oracle on two busybox tasks of test-dataset (one
# killed at its 2 s agent timeout with setsid/nohup children), as with `make demo`.
rootless_job() {
	local label=$1 home=$2 jobs=$rl/jobs out got want
	shift 2
	mkdir -p "$home" "$jobs" && chown 65534:65534 "$home" "$jobs"
	out=$(as_user ROLLOUT_HOME="$home" "$@" "$ROLLOUT" image import "$tar" \
		--tag rollout-test/busybox:1 --change 'WORKDIR /app' 2>&1 &&
		as_user ROLLOUT_HOME="$home" "$@" "$ROLLOUT" run -p "$ROLLOUT_SRCDIR/test-dataset" \
			-t hello-busybox -t agent-timeout -a oracle -e sandbox -n 2 -o "$jobs" \
			--job-name "$label" 2>&1)
	got=$(job_outcomes "$jobs/$label" | paste -sd' ')
	want="agent-timeout reward=1 AgentTimeoutError hello-busybox reward=1 -"
	if [ "$got" = "$want" ]; then
		ok "$label: the oracle's rewards on hello-busybox and agent-timeout"
	else
		not_ok "$label: the oracle's rewards on hello-busybox and agent-timeout" \
			"got:  $got" "want: $want" "$out"
	fi
	check_eq "$label: the job leaves no environment" \
		"$({ ls -A "$home/envs"; ls -A "$home/trash"; } 2>/dev/null | grep -vx '.quota.lock')" ""
}

if ! fixture_apt newuidmap uidmap || ! command -v newgidmap >/dev/null; then
	not_ok "install uidmap (newuidmap, newgidmap)"
elif ! as_user unshare -U true 2>/dev/null; then
	skip "rootless" "unprivileged user namespaces are not available here"
else
	mkdir -p "$rl" && cp -a "$TAP_TMP/rootfs" "$rl/rootfs" &&
		chown -R 65534:65534 "$rl" && chmod 755 "$rl"
	for f in /etc/subuid /etc/subgid; do
		if [ -e "$f" ]; then cp -p "$f" "$TAP_TMP/$(basename "$f").orig"; fi
	done
	restore_subids() {
		local f
		for f in /etc/subuid /etc/subgid; do
			if [ -e "$TAP_TMP/$(basename "$f").orig" ]; then
				cp -p "$TAP_TMP/$(basename "$f").orig" "$f"
			else
				rm -f "$f"
			fi
		done
	}
	at_exit restore_subids
	sed -i '/^65534:/d; /^nobody:/d' /etc/subuid /etc/subgid 2>/dev/null
	rootless_cases rootless "$rl/home" 0 'rootless_* !rootless_subordinate_*'
	rootless_job "rootless-job" "$rl/home-job"

	echo "65534:3000000:65536" >>/etc/subuid
	echo "65534:3000000:65536" >>/etc/subgid
	# An empty directory as PATH: rollout finds no newuidmap (nothing else it
	# runs on the host needs PATH).
	mkdir -p "$TAP_TMP/empty-path"
	rootless_cases "rootless, newuidmap hidden" "$rl/home-nomap" 0 \
		'rootless_* !rootless_subordinate_*' PATH="$TAP_TMP/empty-path"
	rootless_cases "rootless+subids" "$rl/home-subids" 1 'rootless_*'
	rootless_job "rootless-subids-job" "$rl/home-subids-job"
	restore_subids
	check_eq "subuid/subgid restored" \
		"$(cat /etc/subuid /etc/subgid 2>/dev/null | grep -c '^65534:3000000:')" "0"
fi

# In a chroot (schroot/sbuild-style CI; test_fresh_debian.sh's fresh root) the
# root of the mount namespace is not rollout's root: nothing may assume it is
# (setns into an environment's mount namespace lands at the former, not at the
# environment's root). A trial from a chroot of / in a mount namespace of its own
# runs through all its phases to its reward.
"$ROLLOUT" image import "$tar" --tag rollout-test/busybox:1 --change 'WORKDIR /app' >/dev/null 2>&1
mkdir -p "$TAP_TMP/chroot"
unshare --mount --propagation private sh -c 'mount --rbind / "$1" && cd / &&
	exec chroot "$1" /usr/bin/env ROLLOUT_HOME="$2" "$3" run -p "$4" -t hello-busybox -a oracle \
	-e sandbox -o "$5" --job-name chroot -q' sh "$TAP_TMP/chroot" "$ROLLOUT_HOME" "$ROLLOUT" \
	"$ROLLOUT_SRCDIR/test-dataset" "$TAP_TMP/jobs" >"$TAP_TMP/chroot.log" 2>&1
if [ "$(cat "$TAP_TMP"/jobs/chroot/hello-busybox__*/verifier/reward.txt 2>/dev/null)" = 1 ]; then
	ok "from a chroot: the trial ends with its reward"
else
	not_ok "from a chroot: the trial ends with its reward" "$(cat "$TAP_TMP/chroot.log")" \
		"$(grep -h exception_message "$TAP_TMP"/jobs/chroot/*/result.json 2>/dev/null)"
fi

check_eq "no environment directory left" "$(ls -A "$ROLLOUT_HOME/envs" 2>/dev/null)" ""
check_eq "the reaper removed every destroyed environment before exit" \
	"$(ls -A "$ROLLOUT_HOME/trash" 2>/dev/null)" ""
# gc removes what the reaper of a dead rollout left in trash/, and nothing of a
# live one (the shell's own pid stands for a rollout still removing its trash).
sh -c 'exit 0' &
dead=$!
wait "$dead"
mkdir -p "$ROLLOUT_HOME/trash/$dead.0.gone/upper/d" "$ROLLOUT_HOME/trash/$$.0.busy/upper"
chmod 000 "$ROLLOUT_HOME/trash/$dead.0.gone/upper/d"
"$ROLLOUT" gc -e sandbox >/dev/null 2>&1
check_eq "gc: trash of a dead owner removed, of a live one kept" \
	"$(ls -A "$ROLLOUT_HOME/trash")" "$$.0.busy"
rm -rf "$ROLLOUT_HOME/trash"
check_eq "no cgroup left" "$(leftover_cgroups)" "$cg_before"
check_eq "no mount left" "$(grep -c "$TAP_TMP" /proc/self/mountinfo)" "0"
done_testing
