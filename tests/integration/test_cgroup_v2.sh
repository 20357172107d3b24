#!/bin/bash
# The sandbox on cgroup v2 alone (docs/SANDBOX.md "cgroups"). This machine's
# kernel mounts v1 hierarchies, so the scenario of tests/lib/cgroup_v2.sh runs
# inside a second kernel booted with only cgroup2 mounted: limits, OOM kill,
# pids, cpu quota, timeouts and kill_all through the cgroup, gc, the demo's
# busybox tasks scoring as they do here, an ordinary user with a delegated
# cgroup, nothing left in the tree.
#  - qemu with KVM (tests/lib/qemu.sh): Debian's kernel (linux-image-amd64,
#    6.1) on a debootstrap root, cached; there every case of sandbox_itest and
#    provider_conformance runs too. Skipped without /dev/kvm
#    (ROLLOUT_TEST_QEMU_TCG=1: emulated, the small scenario unless
#    CGV2_FULL=1).
#  - user-mode-linux (tests/lib/uml.sh, also 6.1), wherever it can be
#    installed. System calls are slow there (~100 us each): the scenario is
#    kept small.
source "$(dirname "$0")/../lib/tap.sh"
source "$ROLLOUT_SRCDIR/tests/lib/providers.sh"
source "$ROLLOUT_SRCDIR/tests/lib/jobfixtures.sh"
source "$ROLLOUT_SRCDIR/tests/lib/cgroup_v2.sh"
source "$ROLLOUT_SRCDIR/tests/lib/uml.sh"
source "$ROLLOUT_SRCDIR/tests/lib/qemu.sh"
cd "$ROLLOUT_SRCDIR" || exit 1
tap_tmpdir

if ! is_root; then
	skip "cgroup v2" "needs root (to boot user-mode-linux and run the sandbox as root in it)"
	done_testing
	exit 0
fi
if [ "$(stat -fc %T /sys/fs/cgroup 2>/dev/null)" = cgroup2fs ]; then
	diag "this host has cgroup v2 itself; the scenario runs in user-mode-linux all the same"
fi

# What the demo's busybox tasks score here (the host's cgroups, whatever they are).
provider_or_next sandbox "cgroup v2: the demo's tasks on the host" busybox || { done_testing; exit 0; }
# shellcheck disable=SC2046
out=$("$ROLLOUT" run -p test-dataset $(cgv2_demo_tasks) -a oracle -e sandbox -n 4 \
	-o "$TAP_TMP/jobs" --job-name demo-host 2>&1)
job_outcomes "$TAP_TMP/jobs/demo-host" >"$TAP_TMP/want"
if [ -s "$TAP_TMP/want" ]; then
	ok "the demo's busybox tasks ran on the host"
else
	not_ok "the demo's busybox tasks ran on the host" "$out"
fi

chmod 755 "$TAP_TMP" # the delegated user reaches its home below
fixture_busybox_tar >/dev/null # in the cache before a guest looks for it

if ! qemu_ready; then
	skip "cgroup v2 in a qemu guest" "$QEMU_WHY"
elif ! qemu_image; then
	not_ok "qemu: the guest image (debootstrap, linux-image-amd64)" \
		"$(tail -20 "$(fixture_dir)/qemu-debootstrap.log")"
else
	# Emulated, the small scenario unless CGV2_FULL=1.
	start=$SECONDS full=${CGV2_FULL:-1}
	[ "$QEMU_ACCEL" = kvm ] || full=${CGV2_FULL:-0}
	mkdir -p "$TAP_TMP/qv2"
	if QEMU_CGROUP=v2 qemu_run "$TAP_TMP/qemu" "$ROLLOUT_SRCDIR,$ROLLOUT_TEST_CACHE,$TAP_TMP" \
		"source '$ROLLOUT_SRCDIR/tests/lib/tap.sh'; source '$ROLLOUT_SRCDIR/tests/lib/fixtures.sh'" \
		"source '$ROLLOUT_SRCDIR/tests/lib/jobfixtures.sh'; source '$ROLLOUT_SRCDIR/tests/lib/cgroup_v2.sh'" \
		"echo \"# guest kernel \$(uname -r)\"" \
		"CGV2_FULL=$full cgv2_scenario '$TAP_TMP/qv2/work' '$TAP_TMP/want'"; then
		tap_relay "qemu-$QEMU_ACCEL" <"$TAP_TMP/qemu/stdout"
		grep -q '^ok\|^not ok' "$TAP_TMP/qemu/stdout" ||
			not_ok "qemu: the scenario ran" "$(tail -20 "$TAP_TMP/qemu/stderr")"
	else
		not_ok "qemu: the guest finished" "$(tail -30 "$TAP_TMP/qemu/console")" \
			"$(tail -20 "$TAP_TMP/qemu/stderr" 2>/dev/null)" "$(tail -5 "$TAP_TMP/qemu/qemu.log")"
	fi
	diag "the qemu guest ($QEMU_ACCEL) took $((SECONDS - start)) s"
fi

if ! uml_ready; then
	skip "cgroup v2 in user-mode-linux" "$UML_WHY"
	done_testing
	exit 0
fi
mkdir -p "$TAP_TMP/v2"
start=$SECONDS
if UML_CGROUP=v2 uml_run "" "$TAP_TMP/uml" \
	"source '$ROLLOUT_SRCDIR/tests/lib/tap.sh'; source '$ROLLOUT_SRCDIR/tests/lib/fixtures.sh'" \
	"source '$ROLLOUT_SRCDIR/tests/lib/jobfixtures.sh'; source '$ROLLOUT_SRCDIR/tests/lib/cgroup_v2.sh'" \
	"cgv2_scenario '$TAP_TMP/v2/work' '$TAP_TMP/want'"; then
	tap_relay "user-mode-linux $(basename "$UML_MODULES")" <"$TAP_TMP/uml/stdout"
	grep -q '^ok\|^not ok' "$TAP_TMP/uml/stdout" ||
		not_ok "user-mode-linux: the scenario ran" "$(tail -20 "$TAP_TMP/uml/stderr")"
	diag "the guest took $((SECONDS - start)) s"
else
	not_ok "user-mode-linux: the guest finished" "$(tail -20 "$TAP_TMP/uml/console")" \
		"$(tail -20 "$TAP_TMP/uml/stderr" 2>/dev/null)"
fi
done_testing
