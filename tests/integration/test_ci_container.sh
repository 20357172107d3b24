#!/bin/bash
# rollout in a CI job's container (issue 14): the built static binary run inside
# `docker run` with Docker's default seccomp profile and capabilities (not
# privileged), as GitLab's docker executor and GitHub's `container:` jobs run it.
# There the default sandbox must fail once, before any trial, with the
# preflight's message; `rollout doctor` must say what is missing; and the demo
# tasks (testdata/job.yaml: the oracle on test-dataset, as `make demo` runs
# them) must get, at --isolation chroot, the rewards the full sandbox gets on
# this host. The provider conformance suite runs there too. On the host
# itself, doctor and the preflight find everything.
source "$(dirname "$0")/../lib/tap.sh"
source "$ROLLOUT_SRCDIR/tests/lib/providers.sh"
tap_tmpdir

PATH_ENV='ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'

# One line per trial of a job: task, rewards, exception type (sorted by task).
outcomes() { # JOB_DIR
	python3 - "$1" <<'EOF'
import glob, json, os, sys
for f in sorted(glob.glob(os.path.join(sys.argv[1], "*", "result.json"))):
    r = json.load(open(f))
    e = r.get("exception_info") or {}
    rw = (r.get("verifier_result") or {}).get("rewards")
    print(r["task_name"], json.dumps(rw, sort_keys=True), e.get("exception_type"))
EOF
}

# ---- this host: everything is there ----

out=$("$ROLLOUT" doctor 2>&1)
rc=$?
check_eq "host: doctor exits 0" "$rc" 0
check "host: doctor says the full sandbox runs here" grep -Eq '^sandbox +yes' <<<"$out"
check "host: doctor says chroot isolation runs here" grep -Eq '^sandbox, chroot isolation +yes' <<<"$out"
check "host: doctor finds the mount namespace" grep -Eq '^mount namespace +ok' <<<"$out"
json=$("$ROLLOUT" doctor --json 2>&1)
check "host: doctor --json is JSON with every probe" python3 -c '
import json, sys
d = json.load(sys.stdin)
assert len(d["probes"]) >= 16 and d["levels"][0]["runs"], d' <<<"$json"

if ! provider_ready sandbox busybox debian; then
	not_ok "host: fixture images for the full sandbox" "$PROVIDER_WHY"
	done_testing
	exit 0
fi
(cd "$ROLLOUT_SRCDIR" && "$ROLLOUT" run testdata/job.yaml -o "$TAP_TMP/jobs" --job-name host-full -q) \
	>"$TAP_TMP/host.log" 2>&1
check_eq "host: the demo job runs with the full sandbox (the preflight passes)" "$?" 0
host=$(outcomes "$TAP_TMP/jobs/host-full")
check_eq "host: every demo task has a result" "$(wc -l <<<"$host")" \
	"$(find "$ROLLOUT_SRCDIR/test-dataset" -mindepth 2 -maxdepth 2 -name task.toml | wc -l)"

# ---- an unprivileged CI container ----

if ! command -v docker >/dev/null 2>&1 || ! dockerd_ensure; then
	skip "CI container" "no docker CLI or daemon here: ${DOCKERD_WHY:-docker CLI missing}"
	done_testing
	exit 0
fi
image=$(fixture_docker_image busybox) || {
	not_ok "CI container: the busybox image for the container" "fixture_docker_image failed"
	done_testing
	exit 0
}
fixtures=$(fixture_dir)
conformance=$ROLLOUT_SRCDIR/build/rel/itests/provider_conformance
mkdir -p "$TAP_TMP/ci"
CI_NAMES=""
at_exit 'for n in $CI_NAMES; do docker rm -f "$n" >/dev/null 2>&1; done'

# ci SCRIPT: sh -c SCRIPT as root in a fresh container with Docker's defaults
# (no --privileged, no --cap-add, no --security-opt): rollout, the tasks and
# the fixture tarballs read-only, /work for its home and jobs.
ci() {
	local name="rollout-ci-$$-${#CI_NAMES}"
	CI_NAMES="$CI_NAMES $name"
	docker run --rm --name "$name" \
		-v "$ROLLOUT:/usr/local/bin/rollout:ro" \
		-v "$conformance:/usr/local/bin/provider_conformance:ro" \
		-v "$ROLLOUT_SRCDIR/test-dataset:/src/test-dataset:ro" \
		-v "$ROLLOUT_SRCDIR/testdata:/src/testdata:ro" \
		-v "$fixtures:/fixtures:ro" -v "$TAP_TMP/ci:/work" \
		-e ROLLOUT_HOME=/work/home -w /src "$image" sh -c "$1" 2>&1
}

out=$(ci 'grep -E "^(CapEff|Seccomp):" /proc/self/status')
check "CI container: Docker's default capabilities and a seccomp filter" \
	grep -Eq 'CapEff:\s+00000000a80425fb' <<<"$out"
check_contains "CI container: seccomp is on" "$out" "Seccomp:	2"

out=$(ci 'rollout doctor; echo "rc=$?"')
check_contains "CI container: doctor runs (exit 0: chroot isolation can)" "$out" "rc=0"
check "CI container: doctor says the mount namespace is missing" \
	grep -Eq '^mount namespace +missing +unshare\(CLONE_NEWNS\): Operation not permitted' <<<"$out"
check "CI container: doctor says the full sandbox cannot run, and why" \
	grep -Eq '^sandbox +no +lacks mount namespace' <<<"$out"
check "CI container: doctor says chroot isolation runs" \
	grep -Eq '^sandbox, chroot isolation +yes +--isolation chroot' <<<"$out"
check "CI container: doctor gives the fix" grep -q 'seccomp=unconfined' <<<"$out"
check "CI container: doctor finds no cgroups to write" grep -Eq '^cgroups +missing' <<<"$out"

out=$(ci "rollout image import /fixtures/busybox-rootfs.tar --tag rollout-test/busybox:1 \
	--change 'WORKDIR /app' --change '$PATH_ENV' &&
	rollout image import /fixtures/debian-bookworm-pytest.tar.gz --tag rollout-test/debian:1 \
	--change 'WORKDIR /app' && echo imported")
check_contains "CI container: the fixture images load into rollout's store" "$out" "imported"

# The provider contract at --isolation chroot, here: what cannot hold is
# skipped by name (no network namespace, no cgroups to write...).
tap_relay "CI container: conformance" < <(ci 'ROLLOUT_TEST_PROVIDER=sandbox-chroot provider_conformance')

# (a) the default: one error before any trial, naming what works.
out=$(ci 'rollout run testdata/job.yaml -o /work/jobs --job-name denied -q; echo "rc=$?"')
check_contains "CI container: the default sandbox fails (exit 1)" "$out" "rc=1"
check_eq "CI container: ... with one error" "$(grep -c 'rollout: error:' <<<"$out")" 1
check_contains "CI container: ... saying what the host forbids" "$out" \
	"this host does not allow the sandbox's isolation: it lacks mount namespace"
check_contains "CI container: ... and what works instead" "$out" \
	"What works here instead: --isolation chroot"
check_eq "CI container: ... before any trial" \
	"$(find "$TAP_TMP/ci/jobs/denied" -mindepth 1 -maxdepth 1 -type d | wc -l)" 0

# (c) the demo tasks at --isolation chroot.
out=$(ci 'rollout run testdata/job.yaml --isolation chroot -o /work/jobs --job-name ci -q
	echo "rc=$?"
	echo "left=$(for f in /proc/[0-9]*/cmdline; do tr "\0" " " <$f; echo; done |
		grep -c "^sleep 100")"
	echo "envs=$(ls /work/home/envs | wc -l)"')
check_contains "CI container: the demo job runs at --isolation chroot" "$out" "rc=0"
check_contains "CI container: no process of agent-timeout's agent survived" "$out" "left=0"
check_contains "CI container: no environment is left" "$out" "envs=0"
ci_outcomes=$(outcomes "$TAP_TMP/ci/jobs/ci")
check_eq "CI container: the same rewards and errors as the full sandbox on the host" \
	"$ci_outcomes" "$host"
diag "host, full sandbox:" "$host"
check "CI container: the job records its isolation" grep -q '"isolation":\s*"chroot"' \
	"$TAP_TMP/ci/jobs/ci/config.json"
done_testing
