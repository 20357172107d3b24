# A second kernel for tests that need what this machine's kernel lacks (project
# quotas: its ext4 has no quota format, its XFS no quota support): Debian's
# user-mode-linux runs as a process, its root the host's / through hostfs, so
# the guest sees the work tree, the built binary and the fixture cache as they
# are. A disk image is attached as /dev/ubda.
#   uml_ready                  installs user-mode-linux if needed; 1 (UML_WHY)
#                              when it cannot be had here
#   uml_run DISKS OUT SCRIPT... boots with DISKS (image files, comma separated) as
#                              /dev/ubda, /dev/ubdb, ... and runs SCRIPT (a
#                              bash snippet, with /proc, /sys, v1 cgroups and the
#                              quota and overlay modules ready) as init; its
#                              stdout goes to OUT/stdout, status to OUT/status;
#                              the console to OUT/console. DISKS may be empty.
#                              UML_CGROUP=v2: cgroup2 alone at /sys/fs/cgroup
#                              (no v1 hierarchy) with +memory +pids +cpu in the
#                              root's subtree_control, instead of v1.

uml_ready() {
	UML_WHY=""
	fixture_apt linux.uml user-mode-linux ||
		{ UML_WHY="user-mode-linux is not installed and could not be"; return 1; }
	fixture_apt insmod kmod || { UML_WHY="insmod (kmod) could not be installed"; return 1; }
	UML_KERNEL=$(command -v linux.uml)
	UML_MODULES=$(find /usr/lib/uml/modules -maxdepth 1 -mindepth 1 -type d 2>/dev/null | sort | tail -1)
	[ -n "$UML_MODULES" ] || { UML_WHY="user-mode-linux has no modules directory"; return 1; }
}

uml_run() {
	local disks=$1 out=$2 init d n=0 ubd=() args=()
	shift 2
	IFS=, read -ra d <<<"$disks"
	for disks in "${d[@]}"; do ubd+=("ubd$n=$disks"); n=$((n + 1)); done
	mkdir -p "$out"
	init=$out/init.sh
	{
		cat <<EOF
#!/bin/bash
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
export ROLLOUT='$ROLLOUT' ROLLOUT_SRCDIR='$ROLLOUT_SRCDIR' ROLLOUT_TEST_CACHE='${ROLLOUT_TEST_CACHE:-/var/cache/rollout-test}'
exec >'$out/stdout' 2>'$out/stderr'
mount -t proc proc /proc && mount -t sysfs sys /sys
if [ '${UML_CGROUP:-v1}' = v2 ]; then
	mount -t cgroup2 cgroup2 /sys/fs/cgroup &&
		echo '+memory +pids +cpu' >/sys/fs/cgroup/cgroup.subtree_control
else
	mount -t tmpfs -o mode=755 cgroup /sys/fs/cgroup
	for c in cpu,cpuacct memory pids freezer devices; do
		mkdir -p /sys/fs/cgroup/\$c && mount -t cgroup -o \$c cgroup /sys/fs/cgroup/\$c
	done
fi
mount -t tmpfs tmpfs /dev/shm 2>/dev/null
for m in fs/quota/quota_tree fs/quota/quota_v2 fs/overlayfs/overlay; do
	f=\$(ls '$UML_MODULES'/kernel/\$m.ko* 2>/dev/null | head -1)
	[ -n "\$f" ] && insmod "\$f"
done
EOF
		printf '%s\n' "$@"
		cat <<EOF
echo \$? >'$out/status'
sync
poweroff -f
EOF
	} >"$init"
	chmod +x "$init"
	rm -f "$out/status"
	[ "${UML_CGROUP:-v1}" = v2 ] && args+=(cgroup_no_v1=all)
	# The guest's memory is a file in TMPDIR; its console is not needed.
	# pty.legacy_count=0: making the 256 legacy BSD ptys took 8 of the 12 s
	# of a boot.
	timeout 900 "$UML_KERNEL" mem=1536M root=/dev/root rootfstype=hostfs rootflags=/ rw \
		pty.legacy_count=0 \
		"${ubd[@]}" "${args[@]}" init="$init" con=null con0=fd:0,fd:1 </dev/null >"$out/console" 2>&1
	[ -s "$out/status" ]
}
