#!/bin/bash
# Runs the provider conformance program (provider_conformance.c) against every
# provider on the same busybox image: the sandbox (full isolation, and
# --isolation chroot, which skips by name what cannot hold there, and the
# test-only sandbox-copied-logs, whose /logs are copied out, not mounted) from a temp
# image store, docker on a real daemon (started here when none runs, and
# stopped again).
source "$(dirname "$0")/../lib/tap.sh"
source "$ROLLOUT_SRCDIR/tests/lib/providers.sh"
bin=$ROLLOUT_SRCDIR/build/rel/itests/provider_conformance
tap_tmpdir

for p in ${ROLLOUT_TEST_PROVIDERS:-sandbox sandbox-chroot sandbox-copied-logs docker}; do
	provider_or_next "$p" conformance || continue
	tap_relay "$p" < <(ROLLOUT_TEST_PROVIDER=$p "$bin" 2>&1)
done
done_testing
