# Mounting filesystems (a new proc, tmpfs, remounting /proc/sys read-write).
mkdir -p /tmp/mnt-attack
for try in "mount -t tmpfs none /tmp/mnt-attack" "mount -t proc proc /tmp/mnt-attack" \
	"mount -o remount,rw /proc/sys" "mount -o remount,rw /sys"; do
	if $try 2>/dev/null; then
		echo "ALLOWED mount: $try"
		exit 0
	fi
done
echo "DENIED mount: mount and remount refused"
