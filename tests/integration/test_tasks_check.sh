#!/bin/bash
# Black-box tests of `rollout tasks check`: exit codes, output, usage errors.
source "$(dirname "$0")/../lib/tap.sh"
tap_tmpdir
cd "$ROLLOUT_SRCDIR" || exit 1

out=$("$ROLLOUT" tasks check test-dataset 2>&1); rc=$?
check_eq "test-dataset passes" "$rc" 0
check_contains "test-dataset: OK line for hello-world" "$out" "OK    hello-world (test-dataset/hello-world)"
n=$(find test-dataset -mindepth 2 -maxdepth 2 -name task.toml | wc -l)
check_contains "test-dataset: summary" "$out" "$n tasks checked: $n valid, 0 with errors"

out=$("$ROLLOUT" tasks check test-dataset/hello-world 2>&1); rc=$?
check_eq "a single task passes" "$rc" 0

out=$("$ROLLOUT" tasks check testdata/task/invalid/wrong-types 2>&1); rc=$?
check_eq "a broken task exits 1" "$rc" 1
check_contains "broken task: FAIL line" "$out" "FAIL  wrong-types (testdata/task/invalid/wrong-types)"
check_contains "broken task: file:line: key: expected" "$out" \
	"error: testdata/task/invalid/wrong-types/task.toml:8: key 'verifier.timeout_sec': expected a number, got string \"900\""
n=$(printf '%s\n' "$out" | grep -c '^  error: ')
check_eq "broken task: every problem is printed" "$n" 8

# Every problem of every bad task, as the unit tests pin them down.
# A plain file is not a child task of a dataset: name it explicitly.
out=$(ROLLOUT_TEST_TEMPLATE_VAR=x "$ROLLOUT" tasks check testdata/task/invalid \
	testdata/task/invalid/not-a-directory 2>&1); rc=$?
check_eq "the invalid fixtures exit 1" "$rc" 1
want=$(cat testdata/task/invalid/*.expected | grep -c '^error: ')
got=$(printf '%s\n' "$out" | grep -c '^  error: ')
check_eq "the invalid fixtures: one line per expected error" "$got" "$want"

out=$(ROLLOUT_TEST_TEMPLATE_VAR=x "$ROLLOUT" tasks check testdata/task/valid 2>&1); rc=$?
check_eq "the valid fixtures pass (warnings only)" "$rc" 0
check_contains "warnings are shown" "$out" "warning: testdata/task/valid/unknown-keys/task.toml:2: unknown key 'flavour' (ignored)"

# A clean task needs no image from anywhere: FROM scratch.
clean=$TAP_TMP/clean
mkdir -p "$clean/environment" "$clean/tests" "$clean/solution"
printf 'FROM scratch\nCOPY x /x\n' >"$clean/environment/Dockerfile"
echo "Do it." >"$clean/instruction.md"
printf '#!/bin/sh\n' >"$clean/tests/test.sh"
printf '#!/bin/sh\n' >"$clean/solution/solve.sh"
printf 'version = "1.0"\n' >"$clean/task.toml"
out=$("$ROLLOUT" tasks check -q "$clean" 2>&1)
check_eq "-q hides clean tasks" "$out" "1 task checked: 1 valid, 0 with errors"
# A task with warnings is not clean: -q shows it.
out=$("$ROLLOUT" tasks check -q testdata/task/valid/unknown-keys 2>&1)
check_contains "-q shows a task with warnings" "$out" "unknown key 'flavour' (ignored)"

check "--no-verify accepts a task without tests/test.sh" "$ROLLOUT" tasks check --no-verify testdata/task/invalid/no-test-sh

out=$("$ROLLOUT" tasks check 2>&1); rc=$?
check_eq "missing PATH is a usage error" "$rc" 2
check_contains "missing PATH says so" "$out" "missing PATH"
out=$("$ROLLOUT" tasks check --frobnicate test-dataset 2>&1); rc=$?
check_eq "an unknown flag is a usage error" "$rc" 2
out=$("$ROLLOUT" tasks frobnicate 2>&1); rc=$?
check_eq "an unknown subcommand is a usage error" "$rc" 2
out=$("$ROLLOUT" tasks 2>&1); rc=$?
check_eq "no subcommand is a usage error" "$rc" 2
out=$("$ROLLOUT" tasks check --help 2>&1); rc=$?
check_eq "--help exits 0" "$rc" 0
check_contains "--help shows the usage" "$out" "usage: rollout tasks check [--no-verify] [-q] PATH..."
out=$("$ROLLOUT" tasks --help 2>&1); rc=$?
check_eq "tasks --help exits 0" "$rc" 0

out=$("$ROLLOUT" tasks check /nonexistent-rollout-path 2>&1); rc=$?
check_eq "a missing path exits 1" "$rc" 1
check_contains "a missing path is named" "$out" "/nonexistent-rollout-path: No such file or directory"

done_testing
