#!/bin/bash
# Sandbox-specific integration tests (sandbox_itest.c) on the busybox fixture:
# as root, then the rootless cases as an unprivileged user (uid 65534) with its
# own ROLLOUT_HOME and its own copy of the layer; finally nothing may be left
# behind: no environment directory, no cgroup, no mount.
source "$(dirname "$0")/../lib/tap.sh"
source "$ROLLOUT_SRCDIR/tests/lib/fixtures.sh"
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

# Rootless: an ordinary user whose store (here: its copy of the layer) it owns.
rl=$TAP_TMP/rootless
if setpriv --reuid=65534 --regid=65534 --clear-groups unshare -U true 2>/dev/null; then
	mkdir -p "$rl/home" && cp -a "$TAP_TMP/rootfs" "$rl/rootfs" &&
		chown -R 65534:65534 "$rl" && chmod 755 "$rl"
	setpriv --reuid=65534 --regid=65534 --clear-groups \
		env SANDBOX_ITEST_ROOTFS="$rl/rootfs" ROLLOUT_HOME="$rl/home" \
		ROLLOUT_SRCDIR="$ROLLOUT_SRCDIR" "$bin" 'rootless_* !rootless_subordinate_*' 2>&1 |
		tap_relay rootless
	check_eq "rootless: no environment directory left" \
		"$(ls -A "$rl/home/envs" 2>/dev/null)" ""
	check_eq "rootless: the reaper removed every destroyed environment before exit" \
		"$(ls -A "$rl/home/trash" 2>/dev/null)" ""
	# Subordinate ids through newuidmap: a range for uid 65534 in /etc/subuid and
	# /etc/subgid while the cases run (the files are restored afterwards).
	if command -v newuidmap >/dev/null 2>&1 && command -v newgidmap >/dev/null 2>&1; then
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
		echo "65534:3000000:65536" >>/etc/subuid
		echo "65534:3000000:65536" >>/etc/subgid
		mkdir -p "$rl/home2" && chown 65534:65534 "$rl/home2"
		setpriv --reuid=65534 --regid=65534 --clear-groups \
			env SANDBOX_ITEST_ROOTFS="$rl/rootfs" ROLLOUT_HOME="$rl/home2" \
			ROLLOUT_SRCDIR="$ROLLOUT_SRCDIR" "$bin" 'rootless_*' 2>&1 | tap_relay "rootless+subids"
		restore_subids
		check_eq "rootless+subids: no environment directory left" \
			"$(ls -A "$rl/home2/envs" 2>/dev/null)" ""
		check_eq "subuid/subgid restored" \
			"$(cat /etc/subuid /etc/subgid 2>/dev/null | grep -c '^65534:3000000:')" "0"
	else
		skip "rootless+subids" "newuidmap/newgidmap not installed"
	fi
else
	skip "rootless" "unprivileged user namespaces are not available here"
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
