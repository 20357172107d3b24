#!/bin/sh
# A short libFuzzer run of one target over its seed corpus: proves the target
# builds, runs and finds nothing quickly. Long runs: `make fuzz` then run the
# binary by hand (see docs/TESTING.md).
fuzzer=$1
name=$(basename "$fuzzer")
seeds=${ROLLOUT_SRCDIR:-.}/tests/fuzz/corpus/${name#fuzz_}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
[ -d "$seeds" ] && cp -r "$seeds/." "$work/" 2>/dev/null
if "$fuzzer" -max_total_time="${FUZZ_SMOKE_SECONDS:-10}" -rss_limit_mb=2048 "$work" >"$work.log" 2>&1; then
	echo "ok 1 - $name: $(grep -oE 'Done [0-9]+ runs in [0-9]+ second\(s\)' "$work.log" | head -1)"
else
	echo "not ok 1 - $name"
	tail -40 "$work.log" | sed 's/^/# /'
fi
rm -f "$work.log"
echo "1..1"
