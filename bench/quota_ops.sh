#!/bin/bash
# What a project quota per environment (storage_mb, docs/SANDBOX.md "Storage")
# adds to a start and a destroy. bench/quota_ops.c times the quota calls alone
# (against the same directory work without them) with ROLLOUT_HOME on an ext4
# made with `-O quota,project` and mounted prjquota; where this kernel can mount
# it, bench/sandbox_bench.c's whole cycle (start -> exec /bin/true -> destroy,
# storage_mb 10240) also runs there and on a plain ext4, alternately. Where it
# cannot, quota_ops runs inside user-mode-linux, whose system calls cost far
# more (its null_syscall line gives the scale).
#   bench/quota_ops.sh [N] [ROUNDS]          (root)
set -u
cd "$(dirname "$0")/.."
export ROLLOUT_SRCDIR=$PWD ROLLOUT=$PWD/rollout
cycle_bin=$PWD/build/rel/bench/sandbox_bench ops_bin=$PWD/build/rel/bench/quota_ops
source tests/lib/tap.sh >/dev/null
source tests/lib/fixtures.sh
source tests/lib/uml.sh
n=${1:-200} rounds=${2:-2}
[ "$(id -u)" = 0 ] || { echo "quota_ops: needs root"; exit 0; }
[ -x "$cycle_bin" ] && [ -x "$ops_bin" ] || { echo "quota_ops: build it first (make bench)"; exit 1; }
tar=$(fixture_busybox_tar) || { echo "quota_ops: busybox fixture unavailable"; exit 1; }
tmp=$(mktemp -d /tmp/rollout-qbench.XXXXXX)
trap 'umount "$tmp/q" "$tmp/p" 2>/dev/null; rm -rf "$tmp"' EXIT
mkdir -p "$tmp/q" "$tmp/p" "$tmp/out"
truncate -s 2G "$tmp/q.img" "$tmp/p.img"
mkfs.ext4 -q -F -O quota,project "$tmp/q.img" && mkfs.ext4 -q -F "$tmp/p.img" || exit 1

cycle() { # MOUNT LABEL
	export ROLLOUT_HOME=$1/home
	"$ROLLOUT" image import "$tar" --tag rollout-test/busybox:1 --change 'WORKDIR /app' \
		--change 'ENV PATH=/bin' >/dev/null 2>&1 || echo "import failed"
	"$cycle_bin" cycle "$n" rollout-test/busybox:1 2>/dev/null | sed "s/^/$2 /"
}

if mount -o loop,prjquota "$tmp/q.img" "$tmp/q" 2>/dev/null && mount -o loop "$tmp/p.img" "$tmp/p"; then
	echo "== kernel $(uname -r), $(nproc) CPUs"
	ROLLOUT_HOME=$tmp/q/ops "$ops_bin" "$n"
	for _ in $(seq "$rounds"); do cycle "$tmp/p" plain; cycle "$tmp/q" quota; done
else
	uml_ready || { echo "quota_ops: $UML_WHY"; exit 1; }
	echo "== user-mode-linux $(basename "$UML_MODULES") (this kernel cannot mount ext4 with project quotas)"
	uml_run "$tmp/q.img" "$tmp/out" \
		"mount -o prjquota /dev/ubda '$tmp/q' || exit 1" \
		"for r in \$(seq $rounds); do ROLLOUT_HOME='$tmp/q/ops' '$ops_bin' $n; done" \
		"umount '$tmp/q'" || { tail "$tmp/out/console"; exit 1; }
	cat "$tmp/out/stdout"
fi
