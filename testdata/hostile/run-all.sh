#!/bin/sh
# Hostile-agent suite: every attack-*.sh next to this file tries one way out of
# the environment and prints one line: "DENIED name: ..." or "ALLOWED name: ...".
# (Some attacks only plant something for the host side to check: "PLANTED".)
# Exit status: 0 when nothing was ALLOWED. Plain POSIX sh, busybox is enough.
dir=$(cd "$(dirname "$0")" && pwd)
allowed=0
for a in "$dir"/attack-*.sh; do
	out=$(sh "$a" 2>&1 | tail -n 1)
	case "$out" in
	DENIED* | PLANTED*) echo "$out" ;;
	*) echo "ALLOWED $(basename "$a" .sh): ${out:-no verdict}"; allowed=$((allowed + 1)) ;;
	esac
done
echo "hostile: $allowed allowed"
[ "$allowed" -eq 0 ]
