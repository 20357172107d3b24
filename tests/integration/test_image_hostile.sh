#!/bin/bash
# The hostile-archive suite (test_image_hostile.c) against ./rollout: escapes, planted
# links, bombs; and, as root with the busybox fixture, what an image's setuid files
# and device nodes can reach from the host and from inside an environment.
source "$(dirname "$0")/../lib/tap.sh"
source "$ROLLOUT_SRCDIR/tests/lib/fixtures.sh"
shopt -s lastpipe # tap_relay runs in this shell, so its ok/not_ok count
bin=$ROLLOUT_SRCDIR/build/rel/itests/test_image_hostile
tar=$(fixture_busybox_tar) || tar=
HOSTILE_BUSYBOX_TAR=$tar "$bin" 2>&1 | tap_relay hostile
done_testing
