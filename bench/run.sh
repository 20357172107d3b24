#!/bin/bash
# Runs every benchmark: executable bench/*.sh scripts and the C programs built into
# build/rel/bench/ (a program driven by its own script, bench/NAME.sh, runs from
# that script only). Each prints its own figures.
cd "$(dirname "$0")/.." || exit 1
export ROLLOUT_SRCDIR=$PWD ROLLOUT=$PWD/rollout
rc=0
for b in bench/*.sh build/rel/bench/*; do
	[ -x "$b" ] && [ "$b" != bench/run.sh ] || continue
	case "$b" in build/rel/bench/*) [ -e "bench/$(basename "$b").sh" ] && continue ;; esac
	echo "== $b"
	"$b" || rc=1
done
exit $rc
