#!/bin/bash
# `make demo`: import the fixture base images into rollout's image store (built
# locally: busybox-static, and Debian bookworm with python3 + pytest from
# debootstrap, cached in /var/cache/rollout-test), then run the demo job
# (testdata/job.yaml: the oracle on every task of test-dataset) with the sandbox
# provider. Results land in jobs/<job-name>/.
set -eu
cd "$(dirname "$0")/.."
source tests/lib/fixtures.sh
ROLLOUT=$PWD/rollout

echo "demo: building fixture root filesystems (the Debian one takes about a minute once)"
# Both need root on a machine that lacks busybox-static or debootstrap: they are
# installed with apt-get then.
bb=$(fixture_busybox_tar) || {
	echo "demo: cannot make the busybox root filesystem: it needs busybox-static" \
		"(installed with apt-get when run as root)" >&2
	exit 1
}
deb=$(fixture_debian_tar) || {
	echo "demo: cannot make the Debian root filesystem: it needs debootstrap (installed" \
		"with apt-get when run as root) and deb.debian.org; see" \
		"${ROLLOUT_TEST_CACHE:-/var/cache/rollout-test}/v1/debootstrap.log" >&2
	exit 1
}
import_once() { # REF TARBALL
	if "$ROLLOUT" image inspect "$1" >/dev/null 2>&1; then
		echo "demo: image $1 already in the store"
	else
		"$ROLLOUT" image import "$2" --tag "$1" --change 'WORKDIR /app'
	fi
}
import_once rollout-test/busybox:1 "$bb"
import_once rollout-test/debian:1 "$deb"
name=demo-$(date +%Y%m%d-%H%M%S)
echo "demo: running testdata/job.yaml as job $name"
"$ROLLOUT" run testdata/job.yaml --job-name "$name" "$@"
echo
echo "demo: results in jobs/$name; summary again with: ./rollout jobs summarize jobs/$name"
