# Fixture root filesystems and images, built locally (no registry is reachable)
# and cached between runs in ROLLOUT_TEST_CACHE (default /var/cache/rollout-test).
#   fixture_busybox_tar      -> prints path of a busybox-static rootfs tar
#   fixture_debian_tar       -> prints path of a Debian bookworm minbase rootfs tar.gz
#                               with python3 and pytest (debootstrap, ~45 s once; the
#                               .debs it downloads stay in debs/, its --cache-dir)
#   fixture_docker_image NAME  busybox|debian: imports it into the running dockerd
#                               as rollout-test/NAME:1 (if missing); prints the ref
: "${ROLLOUT_TEST_CACHE:=/var/cache/rollout-test}"
FIXTURE_VERSION=1

fixture_dir() {
	local d="$ROLLOUT_TEST_CACHE/v$FIXTURE_VERSION"
	mkdir -p "$d" && echo "$d"
}

fixture_apt() { # fixture_apt CMD PACKAGE
	command -v "$1" >/dev/null 2>&1 && return 0
	[ "$(id -u)" = 0 ] || return 1
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$2" >/dev/null 2>&1 ||
		{ apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$2" >/dev/null 2>&1; }
}

# A rootfs with busybox-static and its applet links, a passwd/group with root
# and nobody, /tmp (1777), /app as WORKDIR.
fixture_busybox_rootfs() { # DIR
	local r=$1 bb
	[ -x /bin/busybox ] || fixture_apt busybox busybox-static || return 1
	bb=$(command -v busybox)
	file -L "$bb" 2>/dev/null | grep -q 'statically linked' ||
		{ fixture_apt busybox busybox-static; DEBIAN_FRONTEND=noninteractive apt-get install -y -q busybox-static >/dev/null 2>&1; bb=/bin/busybox; }
	mkdir -p "$r/bin" "$r/etc" "$r/tmp" "$r/root" "$r/app" "$r/usr/bin" "$r/var/tmp" || return 1
	cp "$bb" "$r/bin/busybox"
	local c
	for c in $("$r/bin/busybox" --list); do
		[ "$c" = busybox ] || ln -sf busybox "$r/bin/$c"
	done
	chmod 1777 "$r/tmp" "$r/var/tmp"
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$r/etc/passwd"
	printf 'root:x:0:\nnogroup:x:65534:\n' >"$r/etc/group"
}

fixture_busybox_tar() {
	local d out
	d=$(fixture_dir) || return 1
	out="$d/busybox-rootfs.tar"
	if [ ! -s "$out" ]; then
		local tmp
		tmp=$(mktemp -d)
		fixture_busybox_rootfs "$tmp/r" || { rm -rf "$tmp"; return 1; }
		tar --numeric-owner -C "$tmp/r" -cf "$out.part" . && mv "$out.part" "$out"
		rm -rf "$tmp"
	fi
	echo "$out"
}

fixture_debian_tar() {
	local d out
	d=$(fixture_dir) || return 1
	out="$d/debian-bookworm-pytest.tar.gz"
	if [ ! -s "$out" ]; then
		fixture_apt debootstrap debootstrap || return 1
		local tmp
		tmp=$(mktemp -d)
		mkdir -p "$d/debs"
		# flock: two test programs must not debootstrap at once (nor two
		# debootstraps fill the .deb cache at once: its lock is inside it, so
		# that test_fresh_debian.sh's nested one, which has it bound, takes it too).
		(
			flock 8
			[ -s "$out" ] && exit 0
			flock 7
			debootstrap --variant=minbase --include=python3,python3-pytest \
				--cache-dir="$d/debs" bookworm "$tmp/r" http://deb.debian.org/debian \
				>"$d/debootstrap.log" 2>&1 || exit 1
			rm -rf "$tmp/r/var/cache/apt/archives/"*.deb "$tmp/r/var/lib/apt/lists/"*
			mkdir -p "$tmp/r/app"
			tar --numeric-owner --xattrs -C "$tmp/r" -czf "$out.part" . && mv "$out.part" "$out"
		) 8>"$d/debian.lock" 7>"$d/debs/.lock"
		local rc=$?
		rm -rf "$tmp"
		[ $rc = 0 ] || return 1
	fi
	echo "$out"
}

fixture_docker_image() { # busybox|debian (dockerd must be running)
	local name=$1 ref="rollout-test/$1:1" tar
	if docker_api_image_exists "$ref"; then echo "$ref"; return 0; fi
	case "$name" in
	busybox) tar=$(fixture_busybox_tar) || return 1 ;;
	debian) tar=$(fixture_debian_tar) || return 1 ;;
	*) return 1 ;;
	esac
	# POST /images/create?fromSrc=- imports a rootfs tar as a one-layer image.
	curl -sf --unix-socket /var/run/docker.sock -X POST -H 'Content-Type: application/x-tar' \
		--data-binary @"$tar" \
		"http://d/images/create?fromSrc=-&repo=rollout-test/$name&tag=1&changes=WORKDIR%20%2Fapp&changes=CMD%20%5B%22sh%22%5D&changes=ENV%20PATH%3D%2Fusr%2Flocal%2Fsbin%3A%2Fusr%2Flocal%2Fbin%3A%2Fusr%2Fsbin%3A%2Fusr%2Fbin%3A%2Fsbin%3A%2Fbin" >/dev/null || return 1
	echo "$ref"
}

docker_api_image_exists() {
	curl -sf --unix-socket /var/run/docker.sock "http://d/images/$1/json" >/dev/null 2>&1
}
