# Device nodes for the host's disk or memory, in /tmp (the root overlay) and in
# /dev (a tmpfs): where no device cgroup stands in the way (cgroup v2 without an
# eBPF filter), only nodev mounts do.
for dir in /tmp /dev; do
	for dev in "b 8 0" "b 253 0" "c 1 1" "c 10 229"; do
		if mknod $dir/attack-dev $dev 2>/dev/null; then
			if head -c 1 $dir/attack-dev >/dev/null 2>&1 ||
				echo x 2>/dev/null >$dir/attack-dev; then
				echo "ALLOWED mknod: created and opened device $dev in $dir"
				rm -f $dir/attack-dev
				exit 0
			fi
			rm -f $dir/attack-dev
		fi
	done
done
echo "DENIED mknod: device nodes refused or unusable"
