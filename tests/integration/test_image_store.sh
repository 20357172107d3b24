#!/bin/bash
# `rollout image` without a Docker daemon: import of rootfs tarballs, hand-made docker
# save archives and OCI layouts (whiteouts, opaque dirs), every broken-input error
# (truncated archives, bad gzip, bad JSON, missing blobs, more diff IDs than layers,
# digest mismatches, zstd layers) with the store left unchanged, rm/prune/env marks,
# two loads racing, a load killed half-way, and `rollout image save` read back.
source "$(dirname "$0")/../lib/tap.sh"
source "$ROLLOUT_SRCDIR/tests/lib/fixtures.sh"
source "$ROLLOUT_SRCDIR/tests/lib/images.sh"

tap_tmpdir
W=$TAP_TMP
B=$W/box
mkdir -p "$B/canary" "$W/work"
echo canary >"$B/canary/file"
export ROLLOUT_HOME=$B/store

# Every file of the store with its size and mtime (the lock file and tmp/'s own
# mtime aside: failed loads create and remove their work directory there).
store_state() { (cd "$ROLLOUT_HOME" && find . \( -path ./lock -o -path ./tmp \) -prune -o -printf '%p %y %s %T@\n' | LC_ALL=C sort; ls -A tmp); }

# expect_error NAME SUBSTRING CMD...: fails with status 1, says SUBSTRING, store unchanged.
expect_error() {
	local name=$1 want=$2 out rc before after
	shift 2
	before=$(store_state)
	out=$("$@" 2>&1)
	rc=$?
	after=$(store_state)
	if [ $rc -ne 1 ]; then
		not_ok "$name" "exit status $rc, expected 1" "$out"
	elif [[ "$out" != *"$want"* ]]; then
		not_ok "$name" "expected the error to contain: $want" "got: $out"
	elif [ "$before" != "$after" ]; then
		not_ok "$name" "the store changed:" "$(diff <(echo "$before") <(echo "$after") | head -20)"
	else
		ok "$name"
	fi
}

bb_tar=$(fixture_busybox_tar) || { not_ok "busybox rootfs fixture"; done_testing; exit 1; }
mkdir "$W/bb-rootfs"
tar --numeric-owner -xpf "$bb_tar" -C "$W/bb-rootfs"
tree_listing "$W/bb-rootfs" >"$W/bb.txt"

# ---- import ----
id=$("$ROLLOUT" image import "$bb_tar" --tag bb:imported --change 'ENV A=1 B="two words"' \
	--change 'CMD ["sh", "-c", "echo hi"]' --change 'WORKDIR /app' --change 'USER 65534:65534' \
	--change 'LABEL org.example=yes' --change 'ENTRYPOINT /bin/env' --change 'EXPOSE 8080' 2>&1)
check_contains "import prints the image ID" "$id" "sha256:"
inspect=$("$ROLLOUT" image inspect bb:imported)
for want in '"A=1"' '"B=two words"' '"echo hi"' '"WorkingDir": "/app"' '"User": "65534:65534"' \
	'"org.example=yes"' '"/bin/sh",' '"8080/tcp"'; do
	check_contains "import --change: $want" "$inspect" "$want"
done
check "imported layer equals the rootfs" cmp -s "$W/bb.txt" <(stack_listing bb:imported)
gzip -c "$bb_tar" >"$W/work/bb.tar.gz"
layers_before=$(ls "$ROLLOUT_HOME/layers")
out=$("$ROLLOUT" image import - --tag bb:gz <"$W/work/bb.tar.gz" 2>&1)
check_contains "import tar.gz from stdin" "$out" "sha256:"
check_eq "same content, same layer" "$(ls "$ROLLOUT_HOME/layers")" "$layers_before"
check_eq "import without --tag is a usage error (exit 2)" "$("$ROLLOUT" image import "$bb_tar" >/dev/null 2>&1; echo $?)" 2

# ---- a hand-made two-layer docker save archive with whiteouts ----
L2=$W/work/l2
mkdir -p "$L2/tree/etc" "$L2/tree/bin" "$L2/tree/tmp"
: >"$L2/tree/etc/.wh.group"              # delete a file
: >"$L2/tree/bin/.wh.vi"                 # and a symlink
mkdir -p "$L2/tree/app" && : >"$L2/tree/app/.wh..wh..opq" && echo new >"$L2/tree/app/new"
echo hello >"$L2/tree/tmp/hello"
touch -d @1600000000 "$L2/tree/app" "$L2/tree/tmp" "$L2/tree/etc" "$L2/tree/bin" "$L2/tree/app/new" "$L2/tree/tmp/hello"
chmod 1777 "$L2/tree/tmp"
(cd "$L2/tree" && tar --numeric-owner --owner=0 --group=0 -cf "$L2/layer.tar" etc/.wh.group bin/.wh.vi app app/.wh..wh..opq app/new tmp tmp/hello)
# Expected result: the rootfs with the deletions applied and the second layer on top.
cp -a "$W/bb-rootfs" "$W/expected"
rm -f "$W/expected/etc/group" "$W/expected/bin/vi"
rm -rf "$W/expected/app" && mkdir "$W/expected/app" && echo new >"$W/expected/app/new"
echo hello >"$W/expected/tmp/hello"
touch -d @1600000000 "$W/expected/app" "$W/expected/tmp" "$W/expected/app/new" "$W/expected/tmp/hello"
tree_listing "$W/expected" | grep -vE '^\./(etc|bin) d ' >"$W/expected.txt"
docker_archive "$W/work/two.tar" handmade/two:1 "$bb_tar" "$L2/layer.tar"
out=$("$ROLLOUT" image load "$W/work/two.tar" 2>&1)
check_eq "load a hand-made docker save archive" "$out" "Loaded image: handmade/two:1"
if is_root; then
	stack_listing handmade/two:1 | grep -vE '^\./(etc|bin) d ' >"$W/two.txt"
	if diff -u "$W/expected.txt" "$W/two.txt" >"$W/diff.txt"; then
		ok "whiteouts and opaque dir stack as expected"
	else
		not_ok "whiteouts and opaque dir stack as expected" "$(head -20 "$W/diff.txt")"
	fi
else
	skip "whiteouts and opaque dir stack as expected" "overlay mounts need root"
fi
check "the bottom layer is shared with the import" test "$(ls "$ROLLOUT_HOME/layers" | wc -l)" = 2

# `rollout image save`: the image written back as a docker save archive (what the
# docker provider hands a daemon) loads into another store with the same files.
"$ROLLOUT" image save handmade/two:1 --tag handmade/saved:1 -o "$W/work/saved.tar" 2>"$W/save.err"
check_eq "image save -o FILE: the exit status" "$?:$(cat "$W/save.err")" "0:"
check_eq "... leaves no FILE.part" "$(ls "$W/work" | grep -c '\.part$')" 0
out=$(ROLLOUT_HOME=$W/work/store-saved "$ROLLOUT" image load "$W/work/saved.tar" 2>&1)
check_eq "the saved archive loads into another store, under its --tag" "$out" "Loaded image: handmade/saved:1"
if is_root; then
	ROLLOUT_HOME=$W/work/store-saved stack_listing handmade/saved:1 | grep -vE '^\./(etc|bin) d ' >"$W/saved.txt"
	if diff -u "$W/expected.txt" "$W/saved.txt" >"$W/diff.txt"; then
		ok "... with the same files (whiteouts and opaque dir too)"
	else
		not_ok "... with the same files (whiteouts and opaque dir too)" "$(head -20 "$W/diff.txt")"
	fi
else
	skip "... with the same files (whiteouts and opaque dir too)" "overlay mounts need root"
fi
expect_error "save of an unknown image" "nope:1" "$ROLLOUT" image save nope:1 -o "$W/work/nope.tar"
check "... writes no file" test ! -e "$W/work/nope.tar" -a ! -e "$W/work/nope.tar.part"

# The same image as an OCI layout: directory, with gzip layers.
oci_from_docker_save "$W/work/two.tar" "$W/work/oci" handmade/two:oci 11 0
out=$("$ROLLOUT" image load "$W/work/oci" 2>&1)
check_eq "load an OCI layout directory" "$out" "Loaded image: handmade/two:oci"
check_eq "same image, same ID" "$("$ROLLOUT" image inspect handmade/two:oci | grep '"Id"')" \
	"$("$ROLLOUT" image inspect handmade/two:1 | grep '"Id"')"

# ---- broken inputs: each a named error and an unchanged store ----
export ROLLOUT_HOME=$B/store-errors
"$ROLLOUT" image ls >/dev/null
E=$W/work/errors
mkdir -p "$E"
# Cut inside the first layer's data, and inside the (small) second layer.
blk=$(tar -R -tf "$W/work/two.tar" | sed -n 's/^block \([0-9]*\): .*l1\/layer.tar$/\1/p')
head -c $(((blk + 1) * 512 + 100000)) "$W/work/two.tar" >"$E/truncated.tar"
expect_error "truncated docker save archive" "truncated" "$ROLLOUT" image load "$E/truncated.tar"
blk=$(tar -R -tf "$W/work/two.tar" | sed -n 's/^block \([0-9]*\): .*l2\/layer.tar$/\1/p')
head -c $(((blk + 1) * 512 + 1000)) "$W/work/two.tar" >"$E/truncated-l2.tar"
expect_error "archive cut in a later layer" "truncated" "$ROLLOUT" image load "$E/truncated-l2.tar"

cp -r "$W/work/oci" "$E/oci-trunc"
blob=$(ls -S "$E/oci-trunc/blobs/sha256" | head -1) # the biggest: the busybox layer
truncate -s 100000 "$E/oci-trunc/blobs/sha256/$blob"
expect_error "truncated gzip layer" "layer 1" "$ROLLOUT" image load "$E/oci-trunc"

cp -r "$W/work/oci" "$E/oci-badgz"
# A wrong CRC in the gzip trailer: only the end of the stream can tell.
printf 'bad!' | dd of="$E/oci-badgz/blobs/sha256/$blob" bs=1 seek=$(($(stat -c %s "$E/oci-badgz/blobs/sha256/$blob") - 8)) \
	conv=notrunc status=none
expect_error "bad gzip data (CRC)" "bad gzip data: incorrect data check" "$ROLLOUT" image load "$E/oci-badgz"
cp -r "$W/work/oci" "$E/oci-badgz2"
printf '\007' | dd of="$E/oci-badgz2/blobs/sha256/$blob" bs=1 seek=2 conv=notrunc status=none
expect_error "bad gzip data (header)" "bad gzip data: unknown compression method" "$ROLLOUT" image load "$E/oci-badgz2"

cp -r "$W/work/oci" "$E/oci-missing"
rm "$E/oci-missing/blobs/sha256/$blob"
expect_error "missing blob" "blobs/sha256/$blob is missing" "$ROLLOUT" image load "$E/oci-missing"

cp -r "$W/work/oci" "$E/oci-badjson"
echo '{"schemaVersion": 2, "manifests": [' >"$E/oci-badjson/index.json"
expect_error "bad JSON (index.json)" "index.json:1:36: invalid JSON" "$ROLLOUT" image load "$E/oci-badjson"

mkdir -p "$E/save" && tar -xf "$W/work/two.tar" -C "$E/save"
cp -r "$E/save" "$E/save-badjson"
echo '[{"Config": "x.json", "Layers": [}]' >"$E/save-badjson/manifest.json"
expect_error "bad JSON (manifest.json)" "manifest.json:1:" "$ROLLOUT" image load "$E/save-badjson"

cp -r "$E/save" "$E/save-badconfig"
cfg=$(save_config "$E/save-badconfig")
echo '{"rootfs": {"type": "layers", "diff_ids": ["sha256:12"]}}' >"$E/save-badconfig/$cfg"
expect_error "malformed diff ID in the config" "rootfs.diff_ids[0]: unsupported or malformed digest" \
	"$ROLLOUT" image load "$E/save-badconfig"

cp -r "$E/save" "$E/save-fewer"
sed -i 's/,"l2\/layer.tar"//' "$E/save-fewer/manifest.json"
expect_error "config lists more diff IDs than layers" "lists 2 diff IDs but the manifest has 1 layers" \
	"$ROLLOUT" image load "$E/save-fewer"

cp -r "$E/save" "$E/save-missing"
rm "$E/save-missing/l2/layer.tar"
expect_error "missing layer of a docker archive" "l2/layer.tar is missing" "$ROLLOUT" image load "$E/save-missing"

cp -r "$E/save" "$E/save-diff"
(cd "$E/save-diff/l2" && mkdir x && echo extra >x/extra && tar -rf layer.tar x/extra && rm -r x)
expect_error "diff ID mismatch" "diff ID mismatch" "$ROLLOUT" image load "$E/save-diff"
tar -C "$E/save-diff" -cf "$E/save-diff.tar" .
expect_error "diff ID mismatch (tar form)" "layer 2 (l2/layer.tar)" "$ROLLOUT" image load "$E/save-diff.tar"

cp -r "$W/work/oci" "$E/oci-digest"
# Same size, same uncompressed content, other bytes: the gzip header's mtime.
printf '\001\002\003\004' | dd of="$E/oci-digest/blobs/sha256/$blob" bs=1 seek=4 conv=notrunc status=none
expect_error "compressed digest mismatch" "layer 1 (blobs/sha256/$blob): digest mismatch" "$ROLLOUT" image load "$E/oci-digest"
cp -r "$W/work/oci" "$E/oci-size"
gzip -dc "$E/oci-size/blobs/sha256/$blob" | gzip -1 -n >"$E/resized" && mv "$E/resized" "$E/oci-size/blobs/sha256/$blob"
expect_error "blob size differs from the manifest" "the manifest says" "$ROLLOUT" image load "$E/oci-size"

if command -v zstd >/dev/null; then
	cp -r "$W/work/oci" "$E/oci-zstd"
	m=$(sed -n 's/.*"digest":"sha256:\([0-9a-f]*\)".*/\1/p' "$E/oci-zstd/index.json")
	zstd -q -c "$L2/layer.tar" >"$E/l2.zst"
	read -r zhex zsize < <(blob_add "$E/oci-zstd" "$E/l2.zst")
	sed -E -i "s/(.*)\{\"mediaType\":\"[^\"]*\",\"digest\":\"sha256:[0-9a-f]*\",\"size\":[0-9]*\}\]\}/\1{\"mediaType\":\"application\/vnd.oci.image.layer.v1.tar+zstd\",\"digest\":\"sha256:$zhex\",\"size\":$zsize}]}/" \
		"$E/oci-zstd/blobs/sha256/$m"
	read -r mhex msize < <(blob_add "$E/oci-zstd" "$E/oci-zstd/blobs/sha256/$m")
	sed -i "s/$m\",\"size\":[0-9]*/$mhex\",\"size\":$msize/" "$E/oci-zstd/index.json"
	# zstd layers load (into a store of their own: this section keeps its store unchanged).
	zs=$W/work/store-zstd
	out=$(ROLLOUT_HOME=$zs "$ROLLOUT" image load "$E/oci-zstd" 2>&1)
	check_eq "an OCI layout with a +zstd layer loads" "$out" "Loaded image: handmade/two:oci"
	check_eq "... as the same image as its gzip twin" \
		"$(ROLLOUT_HOME=$zs "$ROLLOUT" image inspect handmade/two:oci | grep '"Id"')" \
		"$("$ROLLOUT" -q image ls >/dev/null 2>&1; ROLLOUT_HOME=$B/store "$ROLLOUT" image inspect handmade/two:oci 2>/dev/null | grep '"Id"' || ROLLOUT_HOME=$zs "$ROLLOUT" image inspect handmade/two:oci | grep '"Id"')"
	cp -r "$E/save" "$E/save-zstd"
	zstd -q -c "$E/save-zstd/l2/layer.tar" >"$E/save-zstd/l2/layer.tar.zst" && mv "$E/save-zstd/l2/layer.tar.zst" "$E/save-zstd/l2/layer.tar"
	out=$(ROLLOUT_HOME=$zs "$ROLLOUT" image load "$E/save-zstd" 2>&1)
	check_eq "a docker save archive with zstd content (found by its magic) loads" "$out" "Loaded image: handmade/two:1"
	# A corrupted zstd layer: a named error, nothing stored.
	cp -r "$E/save" "$E/save-zstd-bad"
	zstd -q -c "$E/save/l2/layer.tar" >"$E/l2-cut.zst"
	head -c $(($(stat -c %s "$E/l2-cut.zst") - 8)) "$E/l2-cut.zst" >"$E/save-zstd-bad/l2/layer.tar"
	expect_error "a truncated zstd layer: a named error" "bad zstd data" "$ROLLOUT" image load "$E/save-zstd-bad"
else
	skip "zstd layers" "zstd not installed"
fi

cp -r "$W/work/oci" "$E/oci-mediatype"
m=$(sed -n 's/.*"digest":"sha256:\([0-9a-f]*\)".*/\1/p' "$E/oci-mediatype/index.json")
sed -i 's/layer.v1.tar+gzip/layer.v1.tar+lz4/' "$E/oci-mediatype/blobs/sha256/$m"
read -r mhex msize < <(blob_add "$E/oci-mediatype" "$E/oci-mediatype/blobs/sha256/$m")
sed -i "s/$m\",\"size\":[0-9]*/$mhex\",\"size\":$msize/" "$E/oci-mediatype/index.json"
check_eq "the error store is still empty" "$(find "$ROLLOUT_HOME/layers" "$ROLLOUT_HOME/images" -mindepth 1 | wc -l)" 0
expect_error "unknown layer media type" "unsupported layer media type 'application/vnd.oci.image.layer.v1.tar+lz4'" \
	"$ROLLOUT" image load "$E/oci-mediatype"
cp -r "$W/work/oci" "$E/oci-manifest"
m=$(sed -n 's/.*"digest":"sha256:\([0-9a-f]*\)".*/\1/p' "$E/oci-manifest/index.json")
sed -i 's/"schemaVersion":2/"schemaVersion":2 /' "$E/oci-manifest/blobs/sha256/$m"
expect_error "manifest blob does not match its digest" "blobs/sha256/$m: size is" "$ROLLOUT" image load "$E/oci-manifest"
head -c 5000 /dev/urandom >"$E/random.bin"
expect_error "not an archive" "checksum mismatch" "$ROLLOUT" image load "$E/random.bin"
expect_error "import of something that is not a tar" "checksum mismatch" "$ROLLOUT" image import "$E/random.bin" --tag r:1
printf '\037\213\010\000\000\000\000\000\000\003garbage' >"$E/bad.gz"
expect_error "import of bad gzip" "bad gzip data" "$ROLLOUT" image import "$E/bad.gz" --tag r:1
gzip -c "$bb_tar" | head -c 300000 >"$E/cut.tar.gz"
expect_error "import of a truncated tar.gz" "truncated" "$ROLLOUT" image import "$E/cut.tar.gz" --tag r:1
expect_error "empty directory" "neither a docker save archive" "$ROLLOUT" image load "$W/work/l2/tree/etc"
check_eq "no work directories left after errors" "$(ls -A "$ROLLOUT_HOME/tmp")" ""

# ---- rm, prune and environment marks ----
export ROLLOUT_HOME=$B/store
check "tag" "$ROLLOUT" image tag handmade/two:1 handmade/two:extra
two_id=$("$ROLLOUT" image inspect handmade/two:1 | sed -n 's/.*"Id": "\(.*\)".*/\1/p')
mkdir -p "$ROLLOUT_HOME/envs/trial-1" && echo "$two_id" >"$ROLLOUT_HOME/envs/trial-1/image"
expect_error "rm by ID of an image an environment uses" "used by environment 'trial-1'" "$ROLLOUT" image rm "$two_id"
check "rm references" "$ROLLOUT" image rm handmade/two:1 handmade/two:extra handmade/two:oci
check "prune" "$ROLLOUT" image prune
check_eq "prune keeps the image an environment uses" "$("$ROLLOUT" image ls -q | grep -c "$two_id")" 1
check_contains "ls marks it in use" "$("$ROLLOUT" image ls)" "(in use)"
rm -r "$ROLLOUT_HOME/envs/trial-1"
out=$("$ROLLOUT" image prune)
check_contains "prune after the environment is gone" "$out" "Deleted 1 images, 1 layers"
check_eq "the shared bottom layer stays" "$(ls "$ROLLOUT_HOME/layers" | wc -l)" 1
check "rm by ID prefix" "$ROLLOUT" image rm "$(echo "$id" | cut -c8-19)"
"$ROLLOUT" image rm bb:gz >/dev/null 2>&1
check_eq "store empty" "$(find "$ROLLOUT_HOME/layers" "$ROLLOUT_HOME/images" "$ROLLOUT_HOME/blobs" -mindepth 1 ! -path '*/blobs/sha256' | wc -l)" 0
# An image whose config cannot be read (an older rollout stored one too large,
# or the blob is damaged): not listed, a clear error, removable.
cid=$("$ROLLOUT" image import "$bb_tar" --tag broken:1 --change 'ENV B=1' 2>/dev/null)
head -c 5000000 /dev/zero | tr '\0' x >"$ROLLOUT_HOME/blobs/sha256/${cid#sha256:}"
out=$("$ROLLOUT" image ls 2>&1)
check "an unreadable image is not listed" bash -c '! grep -q "^broken:1" <<<"$1"' _ "$out"
check_contains "... ls says why and how to remove it" "$out" "cannot be read"
out=$("$ROLLOUT" image inspect broken:1 2>&1)
check_contains "... inspect: a clear error" "$out" "file larger than 4194304 bytes"
check "... rm removes it" "$ROLLOUT" image rm broken:1
check_eq "... and its config" "$(ls "$ROLLOUT_HOME/blobs/sha256" | grep -c "${cid#sha256:}")" 0
cid=$("$ROLLOUT" image import "$bb_tar" --tag broken:2 --change 'ENV B=2' 2>/dev/null)
echo '{not json' >"$ROLLOUT_HOME/blobs/sha256/${cid#sha256:}"
check_contains "prune removes an unreadable image, referenced or not" "$("$ROLLOUT" image prune 2>&1)" "Deleted 1 images"
check_eq "... and its reference" "$("$ROLLOUT" image ls -a 2>&1 | grep -c 'broken')" 0
expect_error "inspect of an unknown image" "no image 'nope:1'" "$ROLLOUT" image inspect nope:1
expect_error "build of a context without a Dockerfile" "read the Dockerfile" "$ROLLOUT" image build "$W"
expect_error "pull from an unreachable registry fails, naming it" "127.0.0.1:1" "$ROLLOUT" image pull 127.0.0.1:1/x:1

# ---- concurrency and interruption ----
"$ROLLOUT" image load "$W/work/two.tar" >"$W/r1" 2>&1 &
p1=$!
"$ROLLOUT" image load "$W/work/two.tar" >"$W/r2" 2>&1 &
p2=$!
wait $p1; r1=$?
wait $p2; r2=$?
check_eq "two loads at once both succeed" "$r1 $r2" "0 0"
check_eq "each layer unpacked into the store once" "$(ls "$ROLLOUT_HOME/layers" | wc -l)" 2
check_eq "no work directories left" "$(ls -A "$ROLLOUT_HOME/tmp")" ""

if deb_tar=$(fixture_debian_tar); then
	"$ROLLOUT" image import "$deb_tar" --tag deb:killed >/dev/null 2>&1 &
	pid=$!
	for _ in $(seq 1 200); do
		[ -n "$(find "$ROLLOUT_HOME/tmp" -path '*/diff/usr' 2>/dev/null | head -1)" ] && break
		sleep 0.02
	done
	kill -9 $pid 2>/dev/null
	wait $pid 2>/dev/null
	check_eq "a killed import leaves no layer" "$(ls "$ROLLOUT_HOME/layers" | wc -l)" 2
	check_eq "and no image" "$("$ROLLOUT" image inspect deb:killed >/dev/null 2>&1; echo $?)" 1
	out=$("$ROLLOUT" image prune)
	check_contains "prune removes its work directory" "$out" "1 work directories"
	check_eq "tmp is empty" "$(ls -A "$ROLLOUT_HOME/tmp")" ""
	# The full import, compared with the rootfs: the path the benchmark measures.
	"$ROLLOUT" image import "$deb_tar" --tag deb:1 >/dev/null
	mkdir "$W/deb-rootfs" && tar --numeric-owner --xattrs --xattrs-include='*' -xpzf "$deb_tar" -C "$W/deb-rootfs"
	if cmp -s <(tree_listing "$W/deb-rootfs") <(stack_listing deb:1); then
		ok "imported Debian layer equals its rootfs"
	else
		not_ok "imported Debian layer equals its rootfs" "$(diff <(tree_listing "$W/deb-rootfs") <(stack_listing deb:1) | head -20)"
	fi
	rm -rf "$W/deb-rootfs"
else
	skip "a killed import leaves no layer" "Debian fixture unavailable"
fi

# ---- an unprivileged user's store: whiteouts in the "userxattr" form ----
if is_root && command -v setpriv >/dev/null && command -v unshare >/dev/null; then
	as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups env ROLLOUT_HOME="$B/store-user" HOME=/nonexistent "$@"; }
	chmod 0711 "$W" "$W/work"
	chmod 0777 "$B"
	out=$(as_nobody "$ROLLOUT" image load "$W/work/two.tar" 2>&1)
	check_eq "load as an unprivileged user" "$out" "Loaded image: handmade/two:1"
	check_contains "the store records the user xattr form" "$(cat "$B/store-user/store.json")" '"whiteouts": "user"'
	dirs=$(as_nobody "$ROLLOUT" image inspect handmade/two:1 | sed -n 's/.*"Dir": "\(.*\)".*/\1/p' | tac | paste -sd:)
	top=${dirs%%:*}
	check_eq "whiteout is a char device 0/0" "$(stat -c '%F %t:%T' "$top/etc/group")" "character special file 0:0"
	check_eq "opaque dir marked with user.overlay.opaque" \
		"$(getfattr --absolute-names --only-values -n user.overlay.opaque "$top/app" 2>/dev/null)" y
	mkdir -m 0777 "$W/mnt"
	out=$(as_nobody unshare -Urm sh -c "mount -t overlay overlay -o ro,userxattr,lowerdir=$dirs $W/mnt && ls $W/mnt/app && ls $W/mnt/etc" 2>&1)
	check_eq "stacked with userxattr in a user namespace" "$(echo $out)" "new passwd"
	chmod 0700 "$B"
else
	skip "load as an unprivileged user" "needs root, setpriv and unshare"
	mkdir "$B/store-user"
fi

check_eq "no overlay mounts left" "$(grep -c " $W" /proc/mounts)" 0
check_eq "nothing appeared next to the stores" "$(ls "$B" | paste -sd' ')" "canary store store-errors store-user"
check_eq "canary untouched" "$(ls -A "$B/canary"):$(cat "$B/canary/file")" "file:canary"
done_testing
