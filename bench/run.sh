#!/bin/bash
# `make bench`: runs every bench/*.sh, then every built bench program that no
# script drives (build/rel/bench/NAME without bench/NAME.sh).
cd "$(dirname "$0")/.."
rc=0
for s in bench/*.sh; do
	[ "$s" = bench/run.sh ] && continue
	echo "### $s"
	"$s" || rc=1
done
for b in build/rel/bench/*; do
	[ -x "$b" ] && [ ! -e "bench/$(basename "$b").sh" ] || continue
	echo "### $b"
	"$b" || rc=1
done
exit $rc
