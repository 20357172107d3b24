# The sandbox on a host with cgroup v2 alone (docs/SANDBOX.md "cgroups"), run
# inside a second kernel booted for it by test_cgroup_v2.sh: a qemu guest
# (tests/lib/qemu.sh) or user-mode-linux (tests/lib/uml.sh). Source after
# tap.sh, fixtures.sh and jobfixtures.sh.
#   cgv2_demo_tasks            the `-t` options of the demo's busybox tasks
#   cgv2_scenario WORK WANT    TAP lines (no plan), as root in the guest: the
#                              layout; environments with limits (memory.max,
#                              pids.max, cpu.max seen inside); a memory hog
#                              OOM-killed and reported; a fork bomb held by
#                              pids.max; the cpu quota held; an exec timeout
#                              and kill_all killing through the cgroup; gc; the
#                              demo's busybox tasks scoring as WANT (a file of
#                              job_outcomes lines, from the host); an ordinary
#                              user in a delegated cgroup getting the limits;
#                              nothing left in the cgroup tree (nor by gc's
#                              hand: it is not run). WORK becomes a
#                              tmpfs (ROLLOUT_HOME, layers, jobs): overlayfs
#                              takes no upper layer on hostfs or 9p.
#   CGV2_FULL=1                also every case of sandbox_itest (root) and of
#                              provider_conformance (the qemu guest has the time)

cgv2_demo_tasks() {
	local t
	for t in "$ROLLOUT_SRCDIR"/test-dataset/*/task.toml; do
		if grep -q '^docker_image = "rollout-test/busybox:1"' "$t" ||
			grep -q '^FROM rollout-test/busybox:1' "$(dirname "$t")/environment/Dockerfile" 2>/dev/null; then
			printf -- '-t %s ' "$(basename "$(dirname "$t")")"
		fi
	done
}

# rollout.* cgroups anywhere in the tree but the supervisor leaf.
cgv2_leftovers() {
	find /sys/fs/cgroup -mindepth 1 -type d -name 'rollout.*' ! -name rollout.supervisor | sort
}

cgv2_scenario() {
	local work=$1 want=$2 self scope bb itest=$ROLLOUT_SRCDIR/build/rel/itests
	local filter got out deleg
	# tap_relay in this shell (its counts), without process substitution: the
	# guest may have no /dev/fd.
	shopt -s lastpipe

	check_eq "v2: /sys/fs/cgroup is cgroup2" "$(stat -fc %T /sys/fs/cgroup)" cgroup2fs
	check_eq "v2: no v1 hierarchy is mounted" "$(grep -c ' - cgroup ' /proc/self/mountinfo)" 0
	# As under systemd (a login scope, a CI service), rollout is not alone in a
	# cgroup below the root: this shell shares it.
	self=$(sed -n 's/^0:://p' /proc/self/cgroup)
	if [ "$self" = / ]; then
		mkdir -p /sys/fs/cgroup/test.scope && echo $$ >/sys/fs/cgroup/test.scope/cgroup.procs
		self=/test.scope
	fi
	scope=/sys/fs/cgroup${self%/}

	mkdir -p "$work" && mount -t tmpfs -o mode=755 tmpfs "$work" ||
		{ not_ok "v2: a tmpfs at $work"; return; }
	# The tests' scratch directories too (TMPDIR): bind mounts of hostfs
	# directories fail in a user namespace, and hostfs is slow.
	export ROLLOUT_HOME=$work/home TMPDIR=$work/tmp
	mkdir -p -m 1777 "$TMPDIR"
	bb=$(fixture_busybox_tar) || { not_ok "v2: the busybox fixture"; return; }
	mkdir -p "$work/rootfs" && tar -C "$work/rootfs" -xf "$bb"

	# sandbox_itest: teardown (nothing left, cgroup included), the cpu quota.
	filter='teardown_leaves_* cpu_limit_*'
	[ "${CGV2_FULL:-0}" = 1 ] && filter='!rootless_*'
	SANDBOX_ITEST_ROOTFS=$work/rootfs "$itest/sandbox_itest" "$filter" 2>&1 | tap_relay "v2 sandbox"
	check_eq "v2: our cgroup's processes moved into its rollout.supervisor leaf" \
		"$(cat "$scope/cgroup.procs"; test -d "$scope/rollout.supervisor" && echo leaf)" leaf
	check_contains "v2: the controllers are handed down from our cgroup" \
		"$(cat "$scope/cgroup.subtree_control")" memory

	"$ROLLOUT" image import "$bb" --tag rollout-test/busybox:1 --change 'WORKDIR /app' \
		--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
		>/dev/null 2>&1 || { not_ok "v2: import the busybox fixture"; return; }
	filter='limits_are_visible_inside memory_hog_* fork_bomb_* exec_timeout_* kill_all_*'
	# (the user-mode kernel has no nf_tables inet family for the NAT)
	[ "${CGV2_FULL:-0}" = 1 ] && filter='*'
	ROLLOUT_TEST_PROVIDER=sandbox "$itest/provider_conformance" "$filter" 2>&1 |
		tap_relay "v2 conformance"

	# The demo's busybox tasks, as on the host.
	# shellcheck disable=SC2046
	out=$(cd "$ROLLOUT_SRCDIR" && "$ROLLOUT" run -p test-dataset $(cgv2_demo_tasks) -a oracle \
		-e sandbox -n 8 -o "$work/jobs" --job-name demo-v2 2>&1)
	got=$(job_outcomes "$work/jobs/demo-v2")
	if [ -n "$got" ] && [ "$got" = "$(cat "$want")" ]; then
		ok "v2: the demo's busybox tasks score as on the host"
	else
		not_ok "v2: the demo's busybox tasks score as on the host" \
			"got:" "$got" "on the host:" "$(cat "$want")" "$out"
	fi

	# An ordinary user whose cgroup was delegated to it (the directory and the
	# files /sys/kernel/cgroup/delegate lists, as systemd's Delegate=yes does):
	# its environments get the limits.
	deleg=/sys/fs/cgroup/rollout-test-user
	mkdir -p "$deleg" "$work/user/home" && cp -a "$work/rootfs" "$work/user/rootfs" &&
		chown -R 65534:65534 "$work/user" && chown 65534:65534 "$deleg" &&
		for f in $(cat /sys/kernel/cgroup/delegate); do
			[ ! -e "$deleg/$f" ] || chown 65534:65534 "$deleg/$f"
		done
	bash -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' - "$deleg" \
		setpriv --reuid=65534 --regid=65534 --clear-groups env HOME=/nonexistent \
		SANDBOX_ITEST_ROOTFS="$work/user/rootfs" ROLLOUT_HOME="$work/user/home" \
		SANDBOX_ITEST_CGROUP=v2 "$itest/sandbox_itest" \
		'rootless_environment_maps_* rootless_timeout_*' 2>&1 | tap_relay "v2 delegated to uid 65534"

	check_eq "v2: no environment left" \
		"$({ ls -A "$ROLLOUT_HOME/envs"; ls -A "$ROLLOUT_HOME/trash"; ls -A "$work/user/home/envs"; } \
			2>/dev/null | grep -vx '.quota.lock')" ""
	check_eq "v2: nothing left in the cgroup tree" "$(cgv2_leftovers)" ""
	rmdir "$deleg/rollout.supervisor" "$deleg" 2>/dev/null
	umount "$work"
}
