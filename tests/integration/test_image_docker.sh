#!/bin/bash
# `rollout image load` of images built by a real dockerd: a multi-layer busybox image
# (whiteouts, an opaque directory, hardlinks, long names, setuid, a FIFO) exported with
# docker save (legacy layout), as an OCI layout (directory, tar, gzip layers, a
# multi-platform index) and in Docker >= 25's form (made by the test: our dockerd is
# 20.10), and the Debian minbase + python3 + pytest image. The layers stacked by
# overlayfs must equal `docker export` of a container of the image, file by file
# (content, type, mode, owner, mtime, link target); the Debian layer must equal the
# rootfs tarball it was built from.
source "$(dirname "$0")/../lib/tap.sh"
source "$ROLLOUT_SRCDIR/tests/lib/dockerd.sh"
source "$ROLLOUT_SRCDIR/tests/lib/fixtures.sh"
source "$ROLLOUT_SRCDIR/tests/lib/images.sh"

tap_tmpdir
W=$TAP_TMP
# The stores live in $B next to a canary; test artifacts go to $W.
B=$W/box
mkdir -p "$B/canary"
echo canary >"$B/canary/file"

if ! is_root; then
	skip "docker fixtures" "needs root (dockerd, overlay mounts)"
	done_testing
	exit 0
fi
if ! dockerd_ensure; then
	skip "docker fixtures" "$DOCKERD_WHY"
	done_testing
	exit 0
fi
export ROLLOUT_HOME=$B/store

# ---- the multi-layer busybox image ----
IMG=rollout-test/layers:itest-$$
check "fixture busybox image" fixture_docker_image busybox
if ! docker build -q -t "$IMG" --label rollout-test=1 "$ROLLOUT_SRCDIR/testdata/image/layers" >"$W/build.log" 2>&1; then
	not_ok "docker build of testdata/image/layers" "$(cat "$W/build.log")"
	done_testing
	exit 1
fi
at_exit "docker rmi -f $IMG >/dev/null 2>&1"
ok "docker build of testdata/image/layers"
docker save "$IMG" -o "$W/layers.tar"
cid=$(docker create --label rollout-test=1 "$IMG")
docker export "$cid" | tar --numeric-owner -xpf - -C "$(mkdir -p "$W/export" && echo "$W/export")"
docker rm "$cid" >/dev/null
tree_listing "$W/export" >"$W/export.txt"

out=$("$ROLLOUT" image load "$W/layers.tar" 2>&1)
check_eq "load docker save (legacy layout)" "$out" "Loaded image: $IMG"
inspect=$("$ROLLOUT" image inspect "$IMG")
check_contains "inspect: Env" "$inspect" '"FIXTURE=layers"'
check_contains "inspect: WorkingDir" "$inspect" '"WorkingDir": "/data"'
check_contains "inspect: Cmd" "$inspect" '"echo hello"'
check_eq "inspect: 4 layers" "$(grep -c '"Dir"' <<<"$inspect")" 4
check_eq "image ID is Docker's" "$(grep -o '"Id": "[^"]*"' <<<"$inspect" | cut -d'"' -f4)" \
	"$(docker image inspect -f '{{.Id}}' "$IMG")"

stack_listing "$IMG" >"$W/stack.txt"
if diff -u "$W/export.txt" "$W/stack.txt" >"$W/diff.txt"; then
	ok "stacked layers equal docker export ($(wc -l <"$W/export.txt") lines)"
else
	not_ok "stacked layers equal docker export" "$(head -40 "$W/diff.txt")"
fi
# The comparison would notice whiteouts not taking effect: make sure the cases exist.
check "whited-out paths are absent" bash -c "! grep -qE '^\./(data/gone|opq/old|bin/vi|data/keep/file|tree/a) ' '$W/stack.txt'"
check "opaque dir holds only the new file" bash -c "grep -q '^\./opq/new ' '$W/stack.txt' && ! grep -q '^\./opq/sub' '$W/stack.txt'"
top3=$(store_layer_dirs "$IMG" | cut -d: -f2)
check "whiteout is a char device 0/0" test "$(stat -c '%F %t:%T' "$top3/data/gone")" = "character special file 0:0"
if fixture_apt getfattr attr; then
	check "opaque xattr on the replaced dir" test "$(getfattr --absolute-names --only-values -n trusted.overlay.opaque "$top3/opq" 2>/dev/null)" = y
else
	skip "opaque xattr on the replaced dir" "getfattr (package attr) is not available"
fi
layer_parent=$(dirname "$top3")
check_eq "layer directory is read-only" "$(stat -c %a "$layer_parent")" 555
check_eq "no work directories left" "$(ls -A "$ROLLOUT_HOME/tmp")" ""

# A second load unpacks nothing.
ls -l --time-style=+%s.%N "$ROLLOUT_HOME/layers" >"$W/layers.before"
out=$("$ROLLOUT" image load "$W/layers.tar" 2>&1)
check_eq "second load" "$out" "Loaded image: $IMG"
ls -l --time-style=+%s.%N "$ROLLOUT_HOME/layers" >"$W/layers.after"
check "second load unpacked nothing" cmp -s "$W/layers.before" "$W/layers.after"

# ---- the same image in the OCI forms, each into a fresh store ----
oci_from_docker_save "$W/layers.tar" "$W/oci" rollout-test/layers:oci 1010 1
oci_from_docker_save "$W/layers.tar" "$W/oci-flat" rollout-test/layers:flat 0110 0
tar -C "$W/oci" -cf "$W/oci.tar" .
d25_from_oci "$W/oci-flat" "$W/d25.tar" rollout-test/layers:d25
for form in "oci-dir:$W/oci:rollout-test/layers:oci" "oci-tar:$W/oci.tar:rollout-test/layers:oci" \
	"docker25:$W/d25.tar:rollout-test/layers:d25"; do
	name=${form%%:*} rest=${form#*:}
	file=${rest%%:*} ref=${rest#*:}
	export ROLLOUT_HOME=$B/store-$name
	out=$("$ROLLOUT" image load "$file" 2>&1)
	check_eq "load $name" "$out" "Loaded image: $ref"
	stack_listing "$ref" >"$W/stack-$name.txt"
	if diff -u "$W/export.txt" "$W/stack-$name.txt" >"$W/diff.txt"; then
		ok "$name: stacked layers equal docker export"
	else
		not_ok "$name: stacked layers equal docker export" "$(head -30 "$W/diff.txt")"
	fi
	check_eq "$name: same image ID" "$("$ROLLOUT" image ls -q)" "$(docker image inspect -f '{{.Id}}' "$IMG")"
done
export ROLLOUT_HOME=$B/store-gz
out=$(gzip -c "$W/layers.tar" | "$ROLLOUT" image load - --tag extra/name:2 2>&1)
check_contains "gzip-compressed docker save from stdin" "$out" "Loaded image: $IMG"
check_contains "--tag adds a reference" "$out" "Loaded image: extra/name:2"
stack_listing extra/name:2 >"$W/stack-gz.txt"
check "stdin load: stacked layers equal docker export" cmp -s "$W/export.txt" "$W/stack-gz.txt"

# ---- Debian minbase with python3 and pytest ----
export ROLLOUT_HOME=$B/store
if deb_tar=$(fixture_debian_tar) && deb_ref=$(fixture_docker_image debian); then
	docker save "$deb_ref" -o "$W/debian.tar"
	out=$("$ROLLOUT" image load "$W/debian.tar" 2>&1)
	check_eq "load the Debian image" "$out" "Loaded image: $deb_ref"
	mkdir "$W/debian-rootfs"
	tar --numeric-owner --xattrs --xattrs-include='*' -xpzf "$deb_tar" -C "$W/debian-rootfs"
	tree_listing "$W/debian-rootfs" >"$W/debian-ref.txt"
	stack_listing "$deb_ref" >"$W/debian-stack.txt"
	if diff -u "$W/debian-ref.txt" "$W/debian-stack.txt" >"$W/diff.txt"; then
		ok "Debian layer equals its rootfs tarball ($(wc -l <"$W/debian-ref.txt") lines)"
	else
		not_ok "Debian layer equals its rootfs tarball" "$(head -30 "$W/diff.txt")"
	fi
	check "Debian image has python3 and pytest" test -x "$(store_layer_dirs "$deb_ref")/usr/bin/python3" -a \
		-d "$(store_layer_dirs "$deb_ref")/usr/lib/python3/dist-packages/pytest"
	rm -rf "$W/debian-rootfs" "$W/debian.tar"
else
	skip "Debian image" "fixture could not be built"
fi

# ---- ls, rm, prune ----
ls_out=$("$ROLLOUT" image ls)
check_contains "ls shows the image" "$ls_out" "$IMG"
check "rm the reference" "$ROLLOUT" image rm "$IMG"
check "prune" "$ROLLOUT" image prune
if [ -n "${deb_ref:-}" ]; then
	"$ROLLOUT" image rm "$deb_ref" >/dev/null
fi
check_eq "nothing left after rm + prune" "$(find "$ROLLOUT_HOME/layers" "$ROLLOUT_HOME/images" -mindepth 1 | wc -l)" 0

docker rmi -f "$IMG" >/dev/null 2>&1
check "the test image is gone from dockerd" bash -c "! docker image inspect '$IMG' >/dev/null 2>&1"
check_eq "no containers of the test image left" "$(docker ps -aq --filter "ancestor=$IMG" | wc -l)" 0
check_eq "no overlay mounts left" "$(grep -c " $W" /proc/mounts)" 0
check_eq "nothing appeared next to the stores" "$(ls "$B" | paste -sd' ')" \
	"canary store store-docker25 store-gz store-oci-dir store-oci-tar"
check_eq "canary untouched" "$(ls -A "$B/canary"):$(cat "$B/canary/file")" "file:canary"
done_testing
