#!/bin/bash
# Runs the provider conformance program (provider_conformance.c) against every
# provider on the same busybox image: the sandbox from a temp image store, docker
# on a real daemon (started here when none runs, and stopped again).
source "$(dirname "$0")/../lib/tap.sh"
source "$ROLLOUT_SRCDIR/tests/lib/fixtures.sh"
source "$ROLLOUT_SRCDIR/tests/lib/dockerd.sh"
bin=$ROLLOUT_SRCDIR/build/rel/itests/provider_conformance
tap_tmpdir

# Re-number the program's TAP lines into ours, prefixed with the provider name.
relay() { # relay PREFIX < tap
	local line
	while IFS= read -r line; do
		case "$line" in
		"ok "*" # SKIP"*)
			local rest=${line#ok * - }
			skip "$1: ${rest%% # SKIP*}" "${rest#* # SKIP}" ;;
		"ok "*) ok "$1: ${line#ok * - }" ;;
		"not ok "*) not_ok "$1: ${line#not ok * - }" ;;
		"1.."*) ;;
		*) echo "$line" ;;
		esac
	done
}

for p in ${ROLLOUT_TEST_PROVIDERS:-sandbox docker}; do
	case $p in
	sandbox)
		export ROLLOUT_HOME=$TAP_TMP/home
		tar=$(fixture_busybox_tar) || { not_ok "sandbox: busybox fixture"; continue; }
		out=$("$ROLLOUT" image import "$tar" --tag rollout-test/busybox:1 \
			--change 'WORKDIR /app' \
			--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' 2>&1)
		case "$out" in *"not available yet"*)
			skip "sandbox: conformance" "image store not available in this build"; continue ;;
		esac
		;;
	docker)
		if ! dockerd_ensure; then skip "docker: conformance" "$DOCKERD_WHY"; continue; fi
		fixture_docker_image busybox >/dev/null || { not_ok "docker: busybox fixture image"; continue; }
		;;
	esac
	relay "$p" < <(ROLLOUT_TEST_PROVIDER=$p "$bin" 2>&1)
done
done_testing
