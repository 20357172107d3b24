# Host files through pid 1's root and cwd links.
for p in /proc/1/root/etc/hostname /proc/1/root/etc/passwd /proc/1/cwd/etc/passwd; do
	if cat "$p" >/dev/null 2>&1; then
		echo "ALLOWED proc-root: read $p"
		exit 0
	fi
done
if ls /proc/1/root/ >/dev/null 2>&1; then
	echo "ALLOWED proc-root: listed /proc/1/root"
	exit 0
fi
echo "DENIED proc-root: /proc/1/root and cwd are out of reach"
