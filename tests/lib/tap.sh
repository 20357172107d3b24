# TAP helpers for rollout's shell integration tests. Source it; call done_testing last.
#   ok NAME | not_ok NAME [DETAIL...] | skip NAME REASON | check NAME CMD... 
#   expect_fail NAME CMD...   (the command must fail)
#   wait_until SECONDS CMD... (polls CMD until it succeeds; fails at the deadline)
# ROLLOUT (the binary) and ROLLOUT_SRCDIR are set by tests/run.sh.
set -u
: "${ROLLOUT_SRCDIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${ROLLOUT:=$ROLLOUT_SRCDIR/rollout}"
export ROLLOUT ROLLOUT_SRCDIR
TAP_N=0
TAP_FAILED=0

ok() { TAP_N=$((TAP_N + 1)); echo "ok $TAP_N - $1"; }
not_ok() {
	TAP_N=$((TAP_N + 1)); TAP_FAILED=1
	echo "not ok $TAP_N - $1"
	shift
	local line
	for line in "$@"; do printf '%s\n' "$line" | sed 's/^/#   /'; done
}
skip() { TAP_N=$((TAP_N + 1)); echo "ok $TAP_N - $1 # SKIP $2"; }
diag() { printf '%s\n' "$*" | sed 's/^/# /'; }

# check NAME CMD...: passes when CMD exits 0; shows its output otherwise.
check() {
	local name=$1 out; shift
	if out=$("$@" 2>&1); then ok "$name"; else not_ok "$name" "command: $*" "$out"; fi
}
# expect_fail NAME CMD...: passes when CMD exits non-zero.
expect_fail() {
	local name=$1 out; shift
	if out=$("$@" 2>&1); then not_ok "$name" "expected failure: $*" "$out"; else ok "$name"; fi
}
# check_eq NAME GOT WANT
check_eq() {
	if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1" "got:  $2" "want: $3"; fi
}
# check_contains NAME HAYSTACK NEEDLE
check_contains() {
	case "$2" in *"$3"*) ok "$1" ;; *) not_ok "$1" "expected to contain: $3" "got: $2" ;; esac
}

# Every job directory the suite made (under $TAP_TMP and $HARBOR_CHECK_DIRS) must
# read as Harbor's (tests/harbor/validate_jobs.py): one test line per suite.
harbor_check() {
	local dirs=() out n
	[ -n "${TAP_TMP:-}" ] && [ -d "$TAP_TMP" ] && dirs+=("$TAP_TMP")
	for n in ${HARBOR_CHECK_DIRS:-}; do [ -d "$n" ] && dirs+=("$n"); done
	[ ${#dirs[@]} -gt 0 ] || return 0
	if ! python3 -c 'import pydantic' 2>/dev/null; then
		skip "harbor: the job directories validate against Harbor's models" "no python3 with pydantic"
		return 0
	fi
	if out=$(python3 "$ROLLOUT_SRCDIR/tests/harbor/validate_jobs.py" "${dirs[@]}" 2>&1); then
		case "$out" in "checked: 0 jobs, 0 trials") return 0 ;; esac
		ok "harbor: ${out#checked: } validate against Harbor 0.22's models"
	else
		not_ok "harbor: the job directories validate against Harbor 0.22's models" "$out"
	fi
}

done_testing() { harbor_check; echo "1..$TAP_N"; }

# wait_until SECONDS CMD...: a condition polled every 50 ms, never a fixed sleep;
# returns 1 when it still fails at the deadline.
wait_until() {
	local end=$((SECONDS + $1))
	shift
	until "$@" >/dev/null 2>&1; do
		[ "$SECONDS" -ge "$end" ] && return 1
		sleep 0.05
	done
}

# Re-number a test program's TAP lines into ours, prefixed: tap_relay PREFIX < tap
# (use `tap_relay P < <(program)` so the counts stay in this shell).
tap_relay() {
	local line rest
	while IFS= read -r line; do
		case "$line" in
		"ok "*" # SKIP"*)
			rest=${line#ok * - }
			skip "$1: ${rest%% # SKIP*}" "${rest#* # SKIP}" ;;
		"ok "*) ok "$1: ${line#ok * - }" ;;
		"not ok "*) not_ok "$1: ${line#not ok * - }" ;;
		"1.."*) ;;
		*) echo "# $line" ;;
		esac
	done
}

# A scratch directory removed at exit (EXIT traps added by callers run too).
tap_tmpdir() {
	TAP_TMP=$(mktemp -d "${TMPDIR:-/tmp}/rollout-itest.XXXXXX")
	TAP_CLEANUP="${TAP_CLEANUP:-} rm -rf '$TAP_TMP';"
	trap 'eval "$TAP_CLEANUP"' EXIT
}
# Register a command to run at exit (after earlier ones).
at_exit() {
	TAP_CLEANUP="$1; ${TAP_CLEANUP:-}"
	trap 'eval "$TAP_CLEANUP"' EXIT
}
is_root() { [ "$(id -u)" = 0 ]; }
