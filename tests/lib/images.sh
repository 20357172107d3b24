# Helpers for the image-store tests: build image archives in the formats rollout
# loads (docker save legacy, Docker >= 25's OCI-inside form, OCI layouts) from
# plain files, and compare directory trees. Source after tap.sh.
#   tree_listing DIR                 one sorted line per entry + sha256 of every file
#   blob_add LAYOUT FILE             copy FILE into LAYOUT/blobs/sha256, print "HEX SIZE"
#   docker_archive OUT.tar REF LAYER.tar...      a legacy docker save archive
#   oci_from_docker_save SAVE.tar OUT_DIR REF [GZIP_MASK] [NESTED]
#                                    an OCI image layout with the same image
#   d25_from_oci OCI_DIR OUT.tar REF Docker >= 25's docker save form (OCI + manifest.json)
#   store_layer_dirs REF             the image's layer dirs, top first, ':'-joined
#   stack_listing REF                tree_listing of the image's layers stacked by overlayfs

# Entries a container runtime adds (docker export includes them) are left out.
TREE_LISTING_SKIP='./proc ./sys ./dev ./.dockerenv ./etc/hostname ./etc/hosts ./etc/mtab ./etc/resolv.conf'

tree_listing() { # DIR
	local prune="" p
	for p in $TREE_LISTING_SKIP; do prune="$prune -o -path $p"; done
	(
		cd "$1" || exit 1
		# shellcheck disable=SC2086
		find . -mindepth 1 \( -false $prune \) -prune -o -printf '%p %y %#m %U:%G %s %Ts %l\n' |
			awk '$2=="d"{$5="-"} $1=="./etc"{$6="-"} {print}' | LC_ALL=C sort
		# shellcheck disable=SC2086
		find . -mindepth 1 \( -false $prune \) -prune -o -type f -print0 | LC_ALL=C sort -z |
			xargs -0 -r sha256sum
	)
}

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

blob_add() { # LAYOUT FILE -> "HEX SIZE"
	local hex size
	hex=$(sha256_of "$2")
	size=$(stat -c %s "$2")
	mkdir -p "$1/blobs/sha256"
	cp "$2" "$1/blobs/sha256/$hex"
	echo "$hex $size"
}

# A minimal image config for the given layer tars (uncompressed).
image_config_json() { # LAYER.tar...
	local ids="" l
	for l in "$@"; do ids="$ids${ids:+,}\"sha256:$(sha256_of "$l")\""; done
	printf '{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/sbin:/usr/bin:/sbin:/bin","FROM_TEST=1"],"Cmd":["sh"],"WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":[%s]},"history":[]}' "$ids"
}

docker_archive() { # OUT.tar REF LAYER.tar...
	local out=$1 ref=$2 d i=0 layers="" cfg hex
	shift 2
	d=$(mktemp -d)
	for l in "$@"; do
		i=$((i + 1))
		mkdir -p "$d/l$i"
		cp "$l" "$d/l$i/layer.tar"
		echo 1.0 >"$d/l$i/VERSION"
		layers="$layers${layers:+,}\"l$i/layer.tar\""
	done
	image_config_json "$@" >"$d/config.tmp"
	hex=$(sha256_of "$d/config.tmp")
	mv "$d/config.tmp" "$d/$hex.json"
	cfg="$hex.json"
	printf '[{"Config":"%s","RepoTags":["%s"],"Layers":[%s]}]\n' "$cfg" "$ref" "$layers" >"$d/manifest.json"
	tar -C "$d" -cf "$out" . && rm -rf "$d"
}

# Layer paths and config of a docker save archive extracted in DIR.
save_config() { sed -n 's/.*"Config":"\([^"]*\)".*/\1/p' "$1/manifest.json"; }
save_layers() { sed -n 's/.*"Layers":\[\([^]]*\)\].*/\1/p' "$1/manifest.json" | tr ',' '\n' | tr -d '"'; }

# GZIP_MASK: one character per layer, 1 = gzip the blob (e.g. 1010). NESTED=1 wraps the
# manifest in a multi-platform index (linux/arm64, linux/amd64 and an attestation).
oci_from_docker_save() { # SAVE.tar OUT_DIR REF [GZIP_MASK] [NESTED]
	local save=$1 out=$2 ref=$3 mask=${4:-} nested=${5:-0}
	local x i=0 l f mt hex size cfg_hex cfg_size layers="" m_hex m_size top
	x=$(mktemp -d)
	tar -xf "$save" -C "$x"
	mkdir -p "$out/blobs/sha256"
	read -r cfg_hex cfg_size < <(blob_add "$out" "$x/$(save_config "$x")")
	for l in $(save_layers "$x"); do
		i=$((i + 1))
		f="$x/$l" mt=application/vnd.oci.image.layer.v1.tar
		if [ "${mask:i-1:1}" = 1 ]; then
			gzip -n -c "$x/$l" >"$x/layer$i.gz"
			f="$x/layer$i.gz" mt=application/vnd.oci.image.layer.v1.tar+gzip
		fi
		read -r hex size < <(blob_add "$out" "$f")
		layers="$layers${layers:+,}{\"mediaType\":\"$mt\",\"digest\":\"sha256:$hex\",\"size\":$size}"
	done
	printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[%s]}' \
		"$cfg_hex" "$cfg_size" "$layers" >"$x/manifest.json.oci"
	read -r m_hex m_size < <(blob_add "$out" "$x/manifest.json.oci")
	top="{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"sha256:$m_hex\",\"size\":$m_size"
	if [ "$nested" = 1 ]; then
		printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[%s,%s,%s]}' \
			"{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"sha256:$m_hex\",\"size\":$m_size,\"platform\":{\"architecture\":\"arm64\",\"os\":\"linux\",\"variant\":\"v8\"}}" \
			"{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"sha256:$m_hex\",\"size\":$m_size,\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"}}" \
			"{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"sha256:$cfg_hex\",\"size\":$cfg_size,\"annotations\":{\"vnd.docker.reference.type\":\"attestation-manifest\"},\"platform\":{\"architecture\":\"unknown\",\"os\":\"unknown\"}}" \
			>"$x/index.nested"
		read -r hex size < <(blob_add "$out" "$x/index.nested")
		top="{\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"digest\":\"sha256:$hex\",\"size\":$size"
	fi
	printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[%s,"annotations":{"org.opencontainers.image.ref.name":"%s"}}]}\n' \
		"$top" "$ref" >"$out/index.json"
	printf '{"imageLayoutVersion":"1.0.0"}' >"$out/oci-layout"
	rm -rf "$x"
}

# Docker >= 25 writes the OCI layout into docker save archives, plus a manifest.json
# whose paths point into blobs/. Our dockerd (20.10) cannot, so the tests make it.
d25_from_oci() { # OCI_DIR OUT.tar REF (OCI_DIR from oci_from_docker_save without NESTED)
	local oci=$1 out=$2 ref=$3 d m cfg layers
	d=$(mktemp -d)
	cp -r "$oci/." "$d/"
	m=$(sed -n 's/.*"digest":"sha256:\([0-9a-f]*\)".*/\1/p' "$oci/index.json")
	cfg=$(sed -n 's/.*"config":{[^}]*"digest":"sha256:\([0-9a-f]*\)".*/\1/p' "$d/blobs/sha256/$m")
	layers=$(sed -n 's/.*"layers":\[\(.*\)\]}/\1/p' "$d/blobs/sha256/$m" | grep -o 'sha256:[0-9a-f]*' |
		sed 's,sha256:,"blobs/sha256/,;s,$,",' | paste -sd,)
	printf '[{"Config":"blobs/sha256/%s","RepoTags":["%s"],"Layers":[%s]}]\n' "$cfg" "$ref" "$layers" >"$d/manifest.json"
	sed -i "s|\"annotations\":{|\"annotations\":{\"io.containerd.image.name\":\"docker.io/$ref\",|" "$d/index.json"
	tar -C "$d" -cf "$out" . && rm -rf "$d"
}

store_layer_dirs() { # REF -> top-first, ':'-joined
	"$ROLLOUT" image inspect "$1" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p' | tac | paste -sd:
}

stack_listing() { # REF
	local dirs mnt rc
	dirs=$(store_layer_dirs "$1") || return 1
	[ -n "$dirs" ] || return 1
	case "$dirs" in
	*:*)
		mnt=$(mktemp -d)
		mount -t overlay overlay -o "ro,lowerdir=$dirs" "$mnt" || { rmdir "$mnt"; return 1; }
		tree_listing "$mnt"
		rc=$?
		umount "$mnt"
		rmdir "$mnt"
		return $rc
		;;
	*) tree_listing "$dirs" ;;
	esac
}

# Everything under DIR except the store itself: a canary listing.
outside_listing() { # DIR STORE_NAME
	(cd "$1" && find . -mindepth 1 -path "./$2" -prune -o -printf '%p %y %#m %s %T@\n' | LC_ALL=C sort)
}
