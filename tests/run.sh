#!/bin/bash
# Runs rollout's test programs and prints one summary line:
#   N passed, N failed, N skipped
# Every program speaks TAP ("ok N - name", "not ok N - name", "... # SKIP why").
#   tests/run.sh            all: lint, unit (musl + ASan/UBSan), fuzz smoke, integration
#   tests/run.sh --unit     lint and unit tests only
#   TEST_ONLY=glob          only test programs whose name matches
set -u
cd "$(dirname "$0")/.."
root=$PWD
export ROLLOUT_SRCDIR=$root
export ROLLOUT="$root/rollout"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
mode=${1:-all}
pass=0 fail=0 skip=0
failures=()
logdir=$root/build/test-logs
mkdir -p "$logdir"

run_prog() { # run_prog LABEL CMD...
	local label=$1; shift
	case "$label" in ${TEST_ONLY:-*}) ;; *) return ;; esac
	local log="$logdir/$(echo "$label" | tr '/ :' '___').log"
	local start=$SECONDS
	"$@" >"$log" 2>&1
	local rc=$?
	local p f s
	p=$(grep -cE '^ok [0-9]+' "$log" | tr -d ' ')
	s=$(grep -cE '^ok [0-9]+.*# SKIP' "$log" | tr -d ' ')
	f=$(grep -cE '^not ok [0-9]+' "$log" | tr -d ' ')
	p=$((p - s))
	if ! grep -qE '^1\.\.[0-9]+' "$log" || [ $rc -ne 0 ]; then
		# A crash or a missing plan is a failure of the program itself.
		f=$((f + 1))
		failures+=("$label: exited with status $rc (see $log)")
	fi
	# Each failure with the first diagnostic lines under it (what a CI log shows).
	while IFS= read -r line; do
		case "$line" in " "*) failures+=("$line") ;; *) failures+=("$label: $line") ;; esac
	done < <(awk '
		/^not ok/ { print; n = 6; next }
		/^#/ && n > 0 { print "    " substr($0, 1, 400); n--; next }
		{ n = 0 }' "$log")
	pass=$((pass + p)) fail=$((fail + f)) skip=$((skip + s))
	printf '%-44s %4d passed %3d failed %3d skipped  %4ds\n' "$label" "$p" "$f" "$s" $((SECONDS - start))
}

for t in tests/lint/*.sh; do
	[ -x "$t" ] && run_prog "lint/$(basename "$t" .sh)" "$t"
done
for t in build/rel/tests/test_*; do
	[ -x "$t" ] && run_prog "unit/$(basename "$t")" "$t"
done
for t in build/asan/tests/test_*; do
	[ -x "$t" ] && run_prog "asan/$(basename "$t")" "$t"
done
if [ "$mode" != --unit ]; then
	for f in build/fuzz/fuzz_*; do
		[ -x "$f" ] || continue
		run_prog "fuzz/$(basename "$f")" tests/fuzz/smoke.sh "$f"
	done
	for t in tests/integration/test_*.sh; do
		[ -x "$t" ] && run_prog "integration/$(basename "$t" .sh)" "$t"
	done
fi

if [ ${#failures[@]} -gt 0 ]; then
	echo
	echo "Failures:"
	printf '  %s\n' "${failures[@]}"
fi
echo
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
