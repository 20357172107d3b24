# A whole second machine for tests that need another kernel than this one with
# its own boot-time settings (cgroup v2 alone): Debian's qemu-system-x86 boots
# Debian's kernel (linux-image-amd64, 6.1) on a debootstrap root. The root is
# a disk image built once and cached in ROLLOUT_TEST_CACHE (with the kernel and
# its initramfs beside it), booted as a snapshot so that it stays as built;
# the host directories a test names are shared with the guest over 9p at the
# same paths. Source after fixtures.sh.
#   qemu_ready                 1 (QEMU_WHY) without /dev/kvm, unless
#                              ROLLOUT_TEST_QEMU_TCG=1 (emulated: far slower);
#                              installs qemu-system-x86 if needed
#   qemu_image                 builds the cached guest if missing (debootstrap,
#                              ~2 min once); QEMU_IMAGE_DIR
#   qemu_run OUT DIRS SCRIPT... boots the guest with DIRS (host directories,
#                              comma separated) shared at the same paths, and
#                              runs SCRIPT (a bash snippet, as root, with /proc,
#                              /sys, /dev and the overlay module ready, no
#                              network device) as init; its stdout goes to
#                              OUT/stdout, status to OUT/status, the console
#                              to OUT/console. QEMU_CGROUP=v2: cgroup2 alone
#                              at /sys/fs/cgroup (cgroup_no_v1=all) with
#                              +memory +pids +cpu in the root's
#                              subtree_control.
QEMU_IMAGE_VERSION=1

qemu_ready() {
	QEMU_WHY=""
	QEMU_ACCEL=kvm
	if ! [ -c /dev/kvm ] || ! { : <>/dev/kvm; } 2>/dev/null; then
		if [ "${ROLLOUT_TEST_QEMU_TCG:-0}" != 1 ]; then
			QEMU_WHY="no usable /dev/kvm on this machine (ROLLOUT_TEST_QEMU_TCG=1 runs the guest emulated, far slower)"
			return 1
		fi
		QEMU_ACCEL=tcg
	fi
	fixture_apt qemu-system-x86_64 qemu-system-x86 ||
		{ QEMU_WHY="qemu-system-x86 is not installed and could not be"; return 1; }
}

qemu_image() {
	local d tmp rc
	d=$(fixture_dir) || return 1
	QEMU_IMAGE_DIR=$d/qemu-bookworm.$QEMU_IMAGE_VERSION
	[ -s "$QEMU_IMAGE_DIR/root.img" ] && return 0
	fixture_apt debootstrap debootstrap && fixture_apt mkfs.ext4 e2fsprogs || return 1
	tmp=$(mktemp -d)
	# flock: two test programs must not build it at once.
	(
		flock 8
		[ -s "$QEMU_IMAGE_DIR/root.img" ] && exit 0
		# python3: job_outcomes; util-linux: setpriv; kmod, udev: the modules.
		debootstrap --variant=minbase \
			--include=linux-image-amd64,initramfs-tools,udev,kmod,util-linux,procps,python3 \
			bookworm "$tmp/r" http://deb.debian.org/debian >"$d/qemu-debootstrap.log" 2>&1 || exit 1
		# An initramfs with the root disk's driver and its filesystem only,
		# loaded whatever udev finds (MODULES=most takes minutes to build).
		echo MODULES=list >"$tmp/r/etc/initramfs-tools/conf.d/rollout-guest"
		printf '%s\n' virtio_pci virtio_blk ext4 >>"$tmp/r/etc/initramfs-tools/modules"
		chroot "$tmp/r" update-initramfs -u -k all >>"$d/qemu-debootstrap.log" 2>&1 || exit 1
		rm -rf "$tmp/r/var/cache/apt/archives/"*.deb "$tmp/r/var/lib/apt/lists/"*
		# The init: mounts the share "ctl" and runs the test's script there.
		cat >"$tmp/r/sbin/rollout-guest-init" <<'EOF'
#!/bin/bash
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
mountpoint -q /proc || mount -t proc proc /proc
mountpoint -q /sys || mount -t sysfs sys /sys
mountpoint -q /dev || mount -t devtmpfs dev /dev
modprobe -a 9pnet_virtio 9p overlay
mkdir -p /mnt/ctl && mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 ctl /mnt/ctl &&
	exec bash /mnt/ctl/init
echo "rollout-guest-init: no share ctl" >&2
echo o >/proc/sysrq-trigger
EOF
		chmod 755 "$tmp/r/sbin/rollout-guest-init"
		mkdir -p "$tmp/out"
		cp "$(ls "$tmp"/r/boot/vmlinuz-* | sort | tail -1)" "$tmp/out/vmlinuz" &&
			cp "$(ls "$tmp"/r/boot/initrd.img-* | sort | tail -1)" "$tmp/out/initrd.img" &&
			mkfs.ext4 -q -L rollout-guest -d "$tmp/r" "$tmp/out/root.img" 3G &&
			rm -rf "$QEMU_IMAGE_DIR" && mv "$tmp/out" "$QEMU_IMAGE_DIR"
	) 8>"$d/qemu.lock"
	rc=$?
	rm -rf "$tmp"
	[ $rc = 0 ] && [ -s "$QEMU_IMAGE_DIR/root.img" ]
}

qemu_run() {
	local out=$1 dirs=$2 d n=0 virtfs=() mounts="" cpu=host append
	shift 2
	mkdir -p "$out"
	IFS=, read -ra d <<<"$dirs"
	for dirs in "${d[@]}"; do
		virtfs+=(-virtfs "local,path=$dirs,mount_tag=s$n,security_model=passthrough,id=s$n")
		mounts+="mkdir -p '$dirs' && mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 s$n '$dirs' || echo 'no share $dirs' >&2"$'\n'
		n=$((n + 1))
	done
	{
		cat <<EOF
#!/bin/bash
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
export ROLLOUT='$ROLLOUT' ROLLOUT_SRCDIR='$ROLLOUT_SRCDIR' ROLLOUT_TEST_CACHE='${ROLLOUT_TEST_CACHE:-/var/cache/rollout-test}'
exec >/mnt/ctl/stdout 2>/mnt/ctl/stderr
mount -t tmpfs tmpfs /tmp
$mounts
mkdir -p /dev/shm && mount -t tmpfs tmpfs /dev/shm
if [ '${QEMU_CGROUP:-v1}' = v2 ]; then
	mount -t cgroup2 cgroup2 /sys/fs/cgroup &&
		echo '+memory +pids +cpu' >/sys/fs/cgroup/cgroup.subtree_control
fi
EOF
		printf '%s\n' "$@"
		cat <<EOF
echo \$? >/mnt/ctl/status
sync
echo o >/proc/sysrq-trigger
EOF
	} >"$out/init"
	rm -f "$out/status"
	append="root=/dev/vda rw console=ttyS0 panic=-1 init=/sbin/rollout-guest-init"
	[ "${QEMU_CGROUP:-v1}" = v2 ] && append+=" cgroup_no_v1=all"
	[ "$QEMU_ACCEL" = kvm ] || cpu=max
	timeout "${QEMU_TIMEOUT:-1800}" qemu-system-x86_64 -accel "$QEMU_ACCEL" -cpu "$cpu" -smp 2 -m 3072 \
		-display none -monitor none -serial "file:$out/console" -nic none -no-reboot \
		-kernel "$QEMU_IMAGE_DIR/vmlinuz" -initrd "$QEMU_IMAGE_DIR/initrd.img" -append "$append" \
		-drive "file=$QEMU_IMAGE_DIR/root.img,if=virtio,format=raw,snapshot=on" \
		-virtfs "local,path=$out,mount_tag=ctl,security_model=passthrough,id=ctl" "${virtfs[@]}" \
		</dev/null >"$out/qemu.log" 2>&1
	[ -s "$out/status" ]
}
