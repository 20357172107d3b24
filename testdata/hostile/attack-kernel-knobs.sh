# Host kernel settings: core_pattern (a classic escape), sysfs, hostname.
if echo '|/tmp/pwn' >/proc/sys/kernel/core_pattern 2>/dev/null; then
	echo "ALLOWED kernel-knobs: wrote core_pattern"
	exit 0
fi
if echo 1 >/proc/sys/vm/drop_caches 2>/dev/null; then
	echo "ALLOWED kernel-knobs: wrote /proc/sys/vm/drop_caches"
	exit 0
fi
if echo 1 >/sys/kernel/profiling 2>/dev/null || touch /sys/attack 2>/dev/null; then
	echo "ALLOWED kernel-knobs: wrote to /sys"
	exit 0
fi
if hostname attack-host 2>/dev/null; then
	echo "ALLOWED kernel-knobs: changed the hostname"
	exit 0
fi
echo "DENIED kernel-knobs: /proc/sys, /sys and the hostname are read-only"
