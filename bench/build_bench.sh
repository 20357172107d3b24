#!/bin/bash
# Dockerfile builds: the same Dockerfile (FROM the Debian fixture, COPY a few
# files, two RUN steps) and context, built by `rollout image build` and by the
# running dockerd (BuildKit and the legacy builder, through the Engine API), in the
# same run, alternately:
#  1. cold: nothing cached (--no-cache / nocache=1); medians and the ratio
#     rollout/docker (target <= 1.0 against each docker builder);
#  2. fully cached rebuild: median wall time of `rollout image build` (target
#     <= 20 ms), and docker's for the ratio.
# BENCH_RUNS (default 5) sets the number of runs of each.
set -u
cd "$(dirname "$0")/.." || exit 1
ROLLOUT=${ROLLOUT:-$PWD/rollout}
export ROLLOUT_SRCDIR=$PWD
source tests/lib/tap.sh >/dev/null
source tests/lib/fixtures.sh
source tests/lib/dockerd.sh
runs=${BENCH_RUNS:-5}
work=$(mktemp -d "${TMPDIR:-/var/tmp}/rollout-build-bench.XXXXXX")
tag=rollout-bench-build/$$
at_exit "rm -rf '$work'"
dockerd_ensure || { echo "no docker daemon: $DOCKERD_WHY" >&2; exit 1; }
# Registered after dockerd_ensure, so it runs before the daemon we started stops.
at_exit "docker images -q --filter 'reference=$tag-*' | sort -u | xargs -r docker rmi -f >/dev/null 2>&1"
deb=$(fixture_debian_tar) || { echo "cannot build the Debian fixture" >&2; exit 1; }
fixture_docker_image debian >/dev/null || { echo "cannot import the Debian fixture into docker" >&2; exit 1; }
export ROLLOUT_HOME=$work/home
"$ROLLOUT" image import "$deb" --tag rollout-test/debian:1 --change 'WORKDIR /app' \
	--change 'CMD ["sh"]' >/dev/null || exit 1

ctx=$work/ctx
mkdir -p "$ctx/app/lib"
cat >"$ctx/Dockerfile" <<'EOF'
FROM rollout-test/debian:1
COPY app/ /srv/app/
RUN python3 -m compileall -q /srv/app && useradd -m -u 1500 runner
RUN cd /srv/app && python3 main.py > /srv/app/out.txt && chown -R runner: /srv/app
EOF
cat >"$ctx/app/main.py" <<'EOF'
import lib.util
print(lib.util.greet("bench"))
EOF
printf 'def greet(who):\n    return "hello " + who\n' >"$ctx/app/lib/util.py"
touch "$ctx/app/lib/__init__.py"
printf 'name: bench\nversion: 1\n' >"$ctx/app/config.yaml"

now_ns() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
div() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

# docker_build VERSION NOCACHE TAG -> prints the request's wall time in microseconds
docker_build() {
	python3 - "$ctx" "$1" "$2" "$3" <<'PY'
import http.client, io, json, os, socket, sys, tarfile, time, urllib.parse
ctx, version, nocache, tag = sys.argv[1:5]
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as t:
    t.add(ctx, arcname=".")
class Conn(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect("/var/run/docker.sock")
q = {"t": tag, "version": version, "rm": "1", "forcerm": "1", "nocache": nocache}
body = buf.getvalue()
t0 = time.monotonic()
c = Conn("localhost", timeout=600)
c.request("POST", "/v1.41/build?" + urllib.parse.urlencode(q), body=body,
          headers={"Content-Type": "application/x-tar"})
r = c.getresponse()
out = r.read().decode(errors="replace")
t1 = time.monotonic()
if r.status != 200 or '"error"' in out:
    sys.stderr.write(out); sys.exit(1)
print(int((t1 - t0) * 1e6))
PY
}

rollout_build() { # ARGS... -> microseconds
	local t0 t1
	t0=$(now_ns)
	"$ROLLOUT" image build -q -t bench/build:1 "$@" "$ctx" >/dev/null 2>"$work/rollout.err" ||
		{ cat "$work/rollout.err" >&2; return 1; }
	t1=$(now_ns)
	echo $(((t1 - t0) / 1000))
}

echo "Dockerfile: FROM the Debian fixture, COPY a directory, two RUN steps; $runs runs each, $(nproc) CPUs"
for f in rollout_cold bk_cold legacy_cold rollout_cached bk_cached legacy_cached; do : >"$work/$f"; done
# Warm-up: page cache, docker's base image layers.
rollout_build --no-cache >/dev/null && docker_build 2 1 "$tag-bk:1" >/dev/null &&
	docker_build 1 1 "$tag-legacy:1" >/dev/null || exit 1
for i in $(seq 1 "$runs"); do
	sync
	rollout_build --no-cache >>"$work/rollout_cold" || exit 1
	sync
	docker_build 2 1 "$tag-bk:1" >>"$work/bk_cold" || exit 1
	sync
	docker_build 1 1 "$tag-legacy:1" >>"$work/legacy_cold" || exit 1
done
for i in $(seq 1 "$runs"); do
	rollout_build >>"$work/rollout_cached" || exit 1
	docker_build 2 0 "$tag-bk:1" >>"$work/bk_cached" || exit 1
	docker_build 1 0 "$tag-legacy:1" >>"$work/legacy_cached" || exit 1
done
for f in rollout_cold bk_cold legacy_cold rollout_cached bk_cached legacy_cached; do
	eval "$f=$(median <"$work/$f")"
done
# shellcheck disable=SC2154
{
	printf 'cold build:   rollout %s s, docker BuildKit %s s, docker legacy %s s (medians)\n' \
		"$(div "$rollout_cold" 1000000)" "$(div "$bk_cold" 1000000)" "$(div "$legacy_cold" 1000000)"
	printf 'cold ratio rollout/docker: %s against BuildKit, %s against legacy (target <= 1.0)\n' \
		"$(div "$rollout_cold" "$bk_cold")" "$(div "$rollout_cold" "$legacy_cold")"
	printf 'cached rebuild: rollout %s ms (target <= 20 ms), docker BuildKit %s ms, legacy %s ms\n' \
		"$(div "$rollout_cached" 1000)" "$(div "$bk_cached" 1000)" "$(div "$legacy_cached" 1000)"
	printf 'cached ratio rollout/docker: %s against BuildKit, %s against legacy\n' \
		"$(div "$rollout_cached" "$bk_cached")" "$(div "$rollout_cached" "$legacy_cached")"
	printf 'all (us): rollout cold %s | BuildKit cold %s | legacy cold %s | rollout cached %s\n' \
		"$(paste -sd' ' "$work/rollout_cold")" "$(paste -sd' ' "$work/bk_cold")" \
		"$(paste -sd' ' "$work/legacy_cold")" "$(paste -sd' ' "$work/rollout_cached")"
}
