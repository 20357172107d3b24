#!/bin/bash
# Runs every benchmark: each executable bench/*.sh, and each built bench program
# (build/rel/bench/NAME) that has no bench/NAME.sh wrapper of its own.
#   BENCH_ONLY=glob   only benchmarks whose name matches
set -u
cd "$(dirname "$0")/.."
export ROLLOUT_SRCDIR=$PWD ROLLOUT=$PWD/rollout
rc=0
run() { # NAME CMD...
	case "$1" in ${BENCH_ONLY:-*}) ;; *) return ;; esac
	echo "== $1"
	shift
	"$@" || rc=1
}
for s in bench/*.sh; do
	[ -x "$s" ] && [ "$s" != bench/bench.sh ] && run "$(basename "$s" .sh)" "$s"
done
for b in build/rel/bench/*; do
	name=$(basename "$b")
	[ -x "$b" ] && [ ! -e "bench/$name.sh" ] && [ "${name%.d}" = "$name" ] && run "$name" "$b"
done
exit $rc
