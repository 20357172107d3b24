#!/bin/bash
# Every source file's name is unique in the tree (src/, include/, tests/, bench/):
# a name says where the file is (docs/HACKING.md, "Names"). Test data (the fuzz
# corpora) is not source. Prints TAP; lists each shared name with its paths.
cd "${ROLLOUT_SRCDIR:-$(dirname "$0")/../..}" || exit 1
echo "1..1"
dups=$(find src include tests bench -path tests/fuzz/corpus -prune -o -type f \
	\( -name '*.c' -o -name '*.h' -o -name '*.sh' -o -name '*.py' \) -printf '%f\n' |
	sort | uniq -d)
if [ -z "$dups" ]; then
	echo "ok 1 - source file names are unique"
	exit 0
fi
echo "not ok 1 - source file names are unique"
for name in $dups; do
	echo "# $name: $(find src include tests bench -path tests/fuzz/corpus -prune -o \
		-type f -name "$name" -print | sort | tr '\n' ' ')"
done
