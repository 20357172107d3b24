#!/bin/bash
# The docker trial cycle benchmark (docker_cycle.c): rollout's provider against
# the docker CLI on the same daemon and image. Ensures a daemon and the busybox
# fixture image, then runs build/rel/bench/docker_cycle.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/tests/lib/tap.sh"
source "$root/tests/lib/fixtures.sh"
source "$root/tests/lib/dockerd.sh"
if ! dockerd_ensure; then echo "docker_cycle: skipped: $DOCKERD_WHY"; exit 0; fi
command -v "${BENCH_DOCKER:-docker}" >/dev/null || { echo "docker_cycle: skipped: no docker CLI"; exit 0; }
fixture_docker_image busybox >/dev/null || { echo "docker_cycle: busybox fixture image failed"; exit 1; }
export ROLLOUT_HOME=$(mktemp -d)
at_exit "rm -rf '$ROLLOUT_HOME'"
"$root/build/rel/bench/docker_cycle" "$@"
