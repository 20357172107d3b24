#!/bin/bash
# The demo on a fresh Docker daemon: a private dockerd started here, with no
# images at all. After `make demo` (tests/demo.sh: it imports the fixture images
# into rollout's store), the README's `rollout run testdata/job.yaml -e docker`
# works: the docker provider loads what the tasks need (docker_image and FROM
# alike) from rollout's store into the daemon, once per image however many
# trials want it at once, and the trials end as on the sandbox. An image that
# neither the daemon nor the store has (and no registry: none is reachable here)
# fails its trial with an error naming the task, the image and the commands that
# provide it, without making a store. The shared daemon is not touched.
source "$(dirname "$0")/../lib/tap.sh"
source "$ROLLOUT_SRCDIR/tests/lib/dockerd.sh"
source "$ROLLOUT_SRCDIR/tests/lib/demojob.sh"
cd "$ROLLOUT_SRCDIR" || exit 1
tap_tmpdir
trap 'exit 143' TERM INT # so that the EXIT cleanup stops the private daemon

if ! is_root; then
	skip "docker on a fresh daemon" "needs root to run a private dockerd"
	done_testing
	exit 0
fi
had_docker0=$(ip link show docker0 >/dev/null 2>&1 && echo yes || echo no)
if ! dockerd_private "$TAP_TMP/dockerd"; then
	not_ok "a private dockerd starts" "$DOCKERD_WHY"
	done_testing
	exit 0
fi
api() { curl -sf --unix-socket "$TAP_TMP/dockerd/sock" "http://d$1"; }
check_eq "the private daemon starts without images" "$(api /images/json)" "[]"

# `make demo` (its job runs on the sandbox), with a store of the test's own.
export ROLLOUT_HOME=$TAP_TMP/home
if tests/demo.sh -o "$TAP_TMP/jobs" -q >"$TAP_TMP/demo.log" 2>&1; then
	ok "make demo (tests/demo.sh) fills rollout's store"
else
	not_ok "make demo (tests/demo.sh) fills rollout's store" "$(tail -20 "$TAP_TMP/demo.log")"
fi

# The README's example, on the fresh daemon.
export DOCKER_HOST=$DOCKERD_PRIVATE_HOST
"$ROLLOUT" run testdata/job.yaml -e docker -o "$TAP_TMP/jobs" --job-name docker -q \
	>"$TAP_TMP/docker.log" 2>&1
check_eq "rollout run testdata/job.yaml -e docker: the exit status" "$?" 0
got=$(demo_outcomes "$TAP_TMP/jobs/docker")
if [ "$got" = "$DEMO_EXPECTED" ]; then
	ok "-e docker on a fresh daemon: the trials end as on the sandbox"
else
	not_ok "-e docker on a fresh daemon: the trials end as on the sandbox" \
		"got:" "$(demo_outcomes "$TAP_TMP/jobs/docker" why)" "want:" "$DEMO_EXPECTED"
fi
for img in busybox debian; do
	check "rollout-test/$img:1 is on the daemon now" api "/images/rollout-test/$img:1/json"
	check_eq "rollout-test/$img:1 was loaded from the store once, by one of the trials" \
		"$(grep -l "loaded rollout-test/$img:1 into the daemon from rollout's image store" \
			"$TAP_TMP"/jobs/docker/*/trial.log 2>/dev/null | wc -l)" 1
done
check_eq "the loaded busybox image keeps its config (WorkingDir)" \
	"$(api /images/rollout-test/busybox:1/json | python3 -c 'import json,sys; print(json.load(sys.stdin)["Config"]["WorkingDir"])' 2>/dev/null)" /app

# Missing everywhere: named, with the commands that provide it.
mkdir -p "$TAP_TMP/ds/absent-prebuilt/environment" "$TAP_TMP/ds/absent-from/environment"
for t in absent-prebuilt absent-from; do
	echo "Nothing." >"$TAP_TMP/ds/$t/instruction.md"
	mkdir -p "$TAP_TMP/ds/$t/tests"
	printf '#!/bin/sh\necho 1 > /logs/verifier/reward.txt\n' >"$TAP_TMP/ds/$t/tests/test.sh"
done
printf 'version = "1.0"\n[environment]\ndocker_image = "rollout-test/absent:1"\n' \
	>"$TAP_TMP/ds/absent-prebuilt/task.toml"
printf 'version = "1.0"\n' >"$TAP_TMP/ds/absent-from/task.toml"
printf 'ARG BASE=rollout-test/absent:1\nFROM $BASE AS base\nFROM base\nWORKDIR /app\n' \
	>"$TAP_TMP/ds/absent-from/environment/Dockerfile"
ROLLOUT_HOME=$TAP_TMP/nostore "$ROLLOUT" run -p "$TAP_TMP/ds" -a nop -e docker \
	-o "$TAP_TMP/jobs" --job-name absent -q >"$TAP_TMP/absent.log" 2>&1
for t in absent-prebuilt absent-from; do
	msg=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["exception_info"]["exception_message"])' \
		"$(ls "$TAP_TMP"/jobs/absent/${t}__*/result.json 2>/dev/null | head -1)" 2>&1)
	check_contains "$t: the error names the task and the image" "$msg" \
		"task $t: image rollout-test/absent:1 is not on the Docker daemon and not in rollout's image store"
	check_contains "$t: the error says which rollout command provides it" "$msg" \
		'`rollout image import ROOTFS.tar --tag rollout-test/absent:1`'
	check_contains "$t: the error says which docker command provides it" "$msg" \
		'`docker pull rollout-test/absent:1`'
done
check "looking for an image in rollout's store makes no store" test ! -e "$TAP_TMP/nostore/store.json"

unset DOCKER_HOST
check_eq "the shared daemon's docker0 bridge is untouched" \
	"$(ip link show docker0 >/dev/null 2>&1 && echo yes || echo no)" "$had_docker0"
check "the shared daemon has no rollout-test/absent image" \
	test -z "$(curl -s --unix-socket /var/run/docker.sock http://d/images/json | grep absent)"
done_testing
