#!/bin/bash
# Docker-specific tests of the docker provider (docker_provider.c) on a real
# daemon, started here when none runs. Checks that nothing it created is left.
source "$(dirname "$0")/../lib/tap.sh"
source "$ROLLOUT_SRCDIR/tests/lib/fixtures.sh"
source "$ROLLOUT_SRCDIR/tests/lib/dockerd.sh"
bin=$ROLLOUT_SRCDIR/build/rel/itests/docker_provider
tap_tmpdir


api() { curl -sf --unix-socket /var/run/docker.sock "http://d/v1.41$1"; }

if ! dockerd_ensure; then
	skip "docker provider" "$DOCKERD_WHY"
	done_testing
	exit 0
fi
fixture_docker_image busybox >/dev/null || { not_ok "busybox fixture image"; done_testing; exit 0; }
# The Debian fixture (debootstrap, cached) for the Terminal-Bench-shaped task.
if fixture_docker_image debian >/dev/null 2>&1; then export ROLLOUT_TEST_DEBIAN=1; fi
export ROLLOUT_HOME=$TAP_TMP/home
chmod 755 "$TAP_TMP"
dangling() { api '/images/json?filters=%7B%22dangling%22%3A%5B%22true%22%5D%7D' | grep -o '"Id":"[^"]*"' | cut -d'"' -f4 | sort; }
dangling_before=$(dangling)
tap_relay docker < <("$bin" 2>&1)
# Failed legacy builds keep their finished steps as untagged images (build
# cache, as with the docker CLI): remove the ones this run made.
for id in $(comm -13 <(echo "$dangling_before") <(dangling)); do
	curl -sf --unix-socket /var/run/docker.sock -X DELETE "http://d/v1.41/images/$id" >/dev/null
done

# Nothing of ours may remain: containers labelled with the test job, built images.
left=$(api '/containers/json?all=1&filters=%7B%22label%22%3A%5B%22rollout.job%3Ddocker-itest%22%5D%7D' | grep -o '"Id"' | wc -l)
check_eq "no test container left behind" "$left" 0
imgs=$(api '/images/json' | grep -o '"rollout/ditest-[^"]*"' | sort -u | tr '\n' ' ')
check_eq "no test image left behind" "$imgs" ""
done_testing
