# Get a provider ready to run the fixture images (source after tap.sh; needs
# fixtures.sh and dockerd.sh, sourced here).
#   provider_ready P [busybox] [debian]
#     sandbox, sandbox-chroot (--isolation chroot): a private image store in
#              $TAP_TMP/home (exports ROLLOUT_HOME) with the images imported as
#              rollout-test/NAME:1 (WORKDIR /app, PATH set)
#     docker:  a daemon (dockerd_ensure) with the same images imported
#   Returns 0 when ready; 1 when the provider cannot exist here (skip, with the
#   reason in PROVIDER_WHY); 2 when setting it up failed (a test failure).
source "$ROLLOUT_SRCDIR/tests/lib/fixtures.sh"
source "$ROLLOUT_SRCDIR/tests/lib/dockerd.sh"

provider_ready() {
	local p=$1 img tar ref
	shift
	[ $# -gt 0 ] || set -- busybox
	PROVIDER_WHY=""
	case $p in
	sandbox | sandbox-chroot | sandbox-copied-logs)
		export ROLLOUT_HOME=$TAP_TMP/home
		for img in "$@"; do
			ref=rollout-test/$img:1
			"$ROLLOUT" image inspect "$ref" >/dev/null 2>&1 && continue
			case $img in
			busybox) tar=$(fixture_busybox_tar) ;;
			debian) tar=$(fixture_debian_tar) ;;
			esac || { PROVIDER_WHY="the $img fixture could not be built"; return 2; }
			"$ROLLOUT" image import "$tar" --tag "$ref" --change 'WORKDIR /app' \
				--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
				>/dev/null 2>&1 || { PROVIDER_WHY="rollout image import $ref failed"; return 2; }
		done
		;;
	docker)
		dockerd_ensure || { PROVIDER_WHY=$DOCKERD_WHY; return 1; }
		for img in "$@"; do
			fixture_docker_image "$img" >/dev/null ||
				{ PROVIDER_WHY="the $img fixture image could not be imported"; return 2; }
		done
		;;
	*) PROVIDER_WHY="unknown provider $p"; return 2 ;;
	esac
}

# The usual loop body: `provider_or_next P WHAT [images]` inside a for loop over
# providers: skips or fails the provider's tests, then `continue`s the loop.
#   for p in ...; do provider_or_next "$p" conformance || continue; ...; done
provider_or_next() {
	local p=$1 what=$2
	shift 2
	provider_ready "$p" "$@"
	case $? in
	0) return 0 ;;
	1) skip "$p: $what" "$PROVIDER_WHY" ;;
	*) not_ok "$p: $what: setup" "$PROVIDER_WHY" ;;
	esac
	return 1
}
