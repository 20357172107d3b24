# Raising the limits or leaving the cgroups.
for f in /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/memory/memory.limit_in_bytes \
	/sys/fs/cgroup/pids.max /sys/fs/cgroup/memory.max; do
	[ -e "$f" ] || continue
	if echo max >"$f" 2>/dev/null || echo -1 >"$f" 2>/dev/null; then
		echo "ALLOWED cgroup: wrote $f"
		exit 0
	fi
done
for d in /sys/fs/cgroup/memory /sys/fs/cgroup; do
	# A directory in a container-private tmpfs is harmless; a new cgroup is not.
	if [ -d "$d" ] && mkdir "$d/attack" 2>/dev/null; then
		if [ -e "$d/attack/cgroup.procs" ]; then
			echo "ALLOWED cgroup: created the cgroup $d/attack"
			exit 0
		fi
		rmdir "$d/attack" 2>/dev/null
	fi
done
if echo $$ >/sys/fs/cgroup/memory/cgroup.procs 2>/dev/null; then
	echo "ALLOWED cgroup: moved into another cgroup"
	exit 0
fi
echo "DENIED cgroup: cgroup files are read-only"
