#!/bin/bash
# Sandbox provider benchmark: start an environment from a stored image, exec
# /bin/true, destroy — repeated (target: median ≤ 5 ms); exec into a running
# environment (target: median ≤ 2 ms); the same cycle with Debian's `runc run`
# and with `docker run --rm` when a daemon answers, printed as ratios.
#   bench/sandbox_bench.sh [CYCLES] [EXECS]        (root; a quiet machine helps)
set -u
cd "$(dirname "$0")/.."
export ROLLOUT_SRCDIR=$PWD ROLLOUT=$PWD/rollout
bin=$PWD/build/rel/bench/sandbox_bench
source tests/lib/fixtures.sh
cycles=${1:-200} execs=${2:-500}
image=rollout-test/busybox:1

[ "$(id -u)" = 0 ] || { echo "sandbox_bench: needs root (cgroups, runc)"; exit 0; }
[ -x "$bin" ] || { echo "sandbox_bench: build it first (make bench)"; exit 1; }
tmp=$(mktemp -d /tmp/rollout-bench.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
export ROLLOUT_HOME=$tmp/home
tar=$(fixture_busybox_tar) || { echo "sandbox_bench: busybox fixture unavailable"; exit 1; }

median() { sed -n 's/.*median=\([0-9.]*\).*/\1/p'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1fx", a / b; else print "n/a" }'; }

echo "== sandbox provider ($(uname -r), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg))"
if ! out=$("$ROLLOUT" image import "$tar" --tag "$image" --change 'WORKDIR /app' \
	--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' 2>&1); then
	echo "sandbox_bench: cannot import the busybox image into the store: $out"
	exit 1
fi
# The network modes take turns: none (allow_internet = false), host (the host's
# network: allow_internet = true before it got a network of its own) and nat
# (allow_internet = true as root: a veth pair and rollout's NAT).
cycle=$("$bin" cycle "$cycles" "$image" none,host,nat 2>/dev/null) || exit 1
exec_=$("$bin" exec "$execs" "$image") || exit 1
echo "$cycle" | sed '1s/$/   # start -> exec \/bin\/true -> destroy (target median <= 5 ms)/'
echo "$exec_   # exec /bin/true in a running environment (target median <= 2 ms)"
sb=$(echo "$cycle" | grep 'net=none' | median)
nat=$(echo "$cycle" | grep 'net=nat' | median)
host=$(echo "$cycle" | grep 'net=host' | median)
"$bin" netns 300 | grep wall | sed 's/$/   # the network work of a start alone: lo only, and NAT/'
awk -v n="$nat" -v h="$host" -v z="$sb" 'BEGIN {
	printf "allow_internet = true costs %+.2f ms per cycle against the host network, %+.2f ms against no internet\n", n - h, n - z }'

if command -v runc >/dev/null 2>&1; then
	b=$tmp/bundle
	mkdir -p "$b/rootfs" && tar -C "$b/rootfs" -xf "$tar"
	(cd "$b" && runc spec) &&
		sed -i -e 's/"terminal": true/"terminal": false/' \
			-e 's|^\(\s*\)"sh"$|\1"/bin/true"|' "$b/config.json"
	r=$("$bin" command 50 runc run --bundle "$b" "rollout-bench-$$") &&
		echo "$r   # runc run ($(runc --version | head -1)); sandbox is $(ratio "$(echo "$r" | median)" "$sb") faster"
else
	echo "runc: not installed, skipped"
fi

if curl -sf --max-time 2 --unix-socket /var/run/docker.sock http://d/_ping >/dev/null 2>&1 &&
	fixture_docker_image busybox >/dev/null 2>&1; then
	d=$("$bin" command 20 docker run --rm --label rollout-bench=1 --network none "$image" true) &&
		echo "$d   # docker run --rm; sandbox is $(ratio "$(echo "$d" | median)" "$sb") faster"
else
	echo "docker: no daemon answering, skipped"
fi
