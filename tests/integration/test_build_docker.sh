#!/bin/bash
# `rollout image build` against the running dockerd's build of the same Dockerfile
# and context: every fixture under testdata/build/ and every test-dataset task's
# environment/. The two root filesystems must be equal file by file (type, mode,
# owner, size, content, link target) and the configs equal (Env, WorkingDir, User,
# Cmd, Entrypoint, StopSignal, Labels, ExposedPorts, Volumes).
#
# Reference builder: BuildKit (POST /build?version=2), the default of current
# Docker. dockerd 20.10's BuildKit frontend predates heredocs, so a fixture with a
# Dockerfile.docker is compared with dockerd's build of that file (the same image
# written without heredocs). Fixtures with a prepare.sh get it run in a copy of
# their directory first (modes, hard links, archives: what git cannot store).
#
# Not compared, and why: mtimes (directories and files made during the build get
# the time of the build); /proc /sys /dev /.dockerenv /etc/hostname /etc/hosts
# /etc/resolv.conf /etc/mtab (docker export adds the runtime's mount points and
# files; tests/lib/images.sh TREE_LISTING_SKIP); directories' sizes (file-system
# dependent).
source "$(dirname "$0")/../lib/tap.sh"
source "$ROLLOUT_SRCDIR/tests/lib/fixtures.sh"
source "$ROLLOUT_SRCDIR/tests/lib/dockerd.sh"
source "$ROLLOUT_SRCDIR/tests/lib/images.sh"
cd "$ROLLOUT_SRCDIR" || exit 1
tap_tmpdir
export ROLLOUT_HOME=$TAP_TMP/home
LABEL_TAG=rollout-build-test/$$

if ! dockerd_ensure; then
	skip "build comparisons with dockerd" "$DOCKERD_WHY"
	done_testing
	exit 0
fi
fixture_docker_image busybox >/dev/null || not_ok "docker: busybox fixture image"
fixture_docker_image debian >/dev/null || not_ok "docker: debian fixture image"
# The same images in rollout's store, with the config docker's import gave them.
changes=(--change 'WORKDIR /app' --change 'CMD ["sh"]'
	--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin')
"$ROLLOUT" image import "$(fixture_busybox_tar)" --tag rollout-test/busybox:1 "${changes[@]}" >/dev/null ||
	not_ok "rollout: busybox fixture image"
"$ROLLOUT" image import "$(fixture_debian_tar)" --tag rollout-test/debian:1 "${changes[@]}" >/dev/null ||
	not_ok "rollout: debian fixture image"

# docker_build CONTEXT DOCKERFILE TAG VERSION [KEY=VALUE...]: dockerd builds through
# the Engine API (the context as a tar, .dockerignore applied like the CLI does).
docker_build() {
	python3 - "$@" <<'PY'
import fnmatch, http.client, io, json, os, socket, sys, tarfile, urllib.parse
ctx, dockerfile, tag, version = sys.argv[1:5]
args = dict(a.split("=", 1) for a in sys.argv[5:])
pats = []
if os.path.exists(os.path.join(ctx, ".dockerignore")):
    for l in open(os.path.join(ctx, ".dockerignore")):
        l = l.strip()
        if l and not l.startswith("#"):
            neg = l.startswith("!")
            pats.append((neg, l.lstrip("!").strip("/")))
def ignored(rel):
    out = False
    parts = rel.split("/")
    for neg, p in pats:
        if any(fnmatch.fnmatchcase("/".join(parts[:i]), p) for i in range(1, len(parts) + 1)):
            out = not neg
    return out
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as t:
    for root, dirs, files in os.walk(ctx):
        dirs.sort()
        for n in sorted(dirs) + sorted(files):
            full = os.path.join(root, n)
            rel = os.path.relpath(full, ctx)
            if ignored(rel) and rel not in ("Dockerfile", ".dockerignore", dockerfile):
                if not (os.path.isdir(full) and any(neg for neg, _ in pats)):
                    continue
            t.add(full, arcname=rel, recursive=False)
class Conn(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect("/var/run/docker.sock")
q = {"t": tag, "version": version, "rm": "1", "forcerm": "1", "dockerfile": dockerfile,
     "labels": json.dumps({"rollout.test": "build"})}
if args:
    q["buildargs"] = json.dumps(args)
c = Conn("localhost", timeout=600)
c.request("POST", "/v1.41/build?" + urllib.parse.urlencode(q), body=buf.getvalue(),
          headers={"Content-Type": "application/x-tar"})
r = c.getresponse()
body = r.read().decode(errors="replace")
if r.status != 200:
    print(body); sys.exit(1)
for line in body.splitlines():
    try:
        o = json.loads(line)
    except ValueError:
        continue
    if "error" in o:
        print(o["error"]); sys.exit(1)
PY
}

# Listing without mtimes (see above).
listing() { awk '{ if (NF >= 6 && $2 != "") $6 = "-"; print }'; }

docker_listing() { # IMAGE
	local cid dir rc
	dir=$(mktemp -d "$TAP_TMP/export.XXXXXX")
	cid=$(docker create "$1" sh) || return 1
	docker export "$cid" | tar -C "$dir" -xf - 2>/dev/null
	rc=$?
	docker rm -f "$cid" >/dev/null 2>&1
	tree_listing "$dir" | listing
	rm -rf "$dir"
	return $rc
}

configs_equal() { # ROLLOUT_REF DOCKER_REF -> prints differences
	python3 - <("$ROLLOUT" image inspect "$1") <(docker image inspect "$2") <<'PY'
import json, sys
ours = json.load(open(sys.argv[1]))["Config"]
theirs = json.load(open(sys.argv[2]))[0]["Config"]
def norm(k, v, docker):
    if v in (None, [], {}, ""):
        return None
    v = norm2(k, v, docker)
    return v or None
def norm2(k, v, docker):
    if k == "Labels":  # the label the test gives docker's images is not compared
        return sorted("%s=%s" % kv for kv in v.items() if kv[0] != "rollout.test") \
            if docker else sorted(v)
    if k in ("ExposedPorts", "Volumes"):
        return sorted(v.keys()) if docker else sorted(v)
    return v
for k in ["Env", "WorkingDir", "User", "Cmd", "Entrypoint", "StopSignal", "Labels",
          "ExposedPorts", "Volumes"]:
    a, b = norm(k, ours.get(k), False), norm(k, theirs.get(k), True)
    if a != b:
        print("%s: rollout %r, docker %r" % (k, a, b))
PY
}

# compare NAME DIR [KEY=VALUE...]: build DIR both ways and compare.
compare() {
	local name=$1 src=$2 ctx dockerfile=Dockerfile out d r diffs
	shift 2
	ctx=$TAP_TMP/ctx/$name
	mkdir -p "$(dirname "$ctx")" && cp -a "$src" "$ctx" || { not_ok "$name: copy the context"; return; }
	if [ -f "$ctx/prepare.sh" ]; then (cd "$ctx" && sh prepare.sh) && rm -f "$ctx/prepare.sh"; fi
	[ -f "$ctx/Dockerfile.docker" ] && dockerfile=Dockerfile.docker
	local bargs=() a
	for a in "$@"; do bargs+=(--build-arg "$a"); done
	if ! out=$("$ROLLOUT" image build -t "rb-$name" "${bargs[@]}" "$ctx" 2>&1); then
		not_ok "$name: rollout image build" "$out"
		return
	fi
	if ! out=$(docker_build "$ctx" "$dockerfile" "$LABEL_TAG-$name:1" 2 "$@" 2>&1); then
		not_ok "$name: docker build (BuildKit)" "$out"
		return
	fi
	r=$(stack_listing "rb-$name" | listing)
	d=$(docker_listing "$LABEL_TAG-$name:1")
	if [ -n "$r" ] && [ "$r" = "$d" ]; then
		ok "$name: same filesystem as docker's build ($(echo "$r" | grep -c .) lines)"
	else
		diffs=$(diff <(echo "$r") <(echo "$d") | head -40)
		not_ok "$name: same filesystem as docker's build" "< rollout, > docker" "$diffs"
	fi
	diffs=$(configs_equal "rb-$name" "$LABEL_TAG-$name:1")
	if [ -z "$diffs" ]; then ok "$name: same config"; else not_ok "$name: same config" "$diffs"; fi
}

for f in testdata/build/*/; do
	name=$(basename "$f")
	case $name in
	basic) compare "$name" "$f" FROM_CLI=from-the-command-line ;;
	*) compare "$name" "$f" ;;
	esac
done
for t in test-dataset/*/; do
	[ -f "$t/environment/Dockerfile" ] || continue
	name=task-$(basename "$t")
	if [ "$name" = task-failing-build ]; then
		out=$("$ROLLOUT" image build -t rb-failing "$t/environment" 2>&1)
		check_contains "$name: fails like docker's build, naming the step and exit code" \
			"$out" "step 2/2: RUN echo \"about to fail\" && exit 3: the command exited with code 3"
		continue
	fi
	compare "$name" "$t/environment"
done

# Nothing left behind: docker images of this run, rollout environments.
docker images -q --filter "label=rollout.test=build" --filter "reference=$LABEL_TAG-*" |
	sort -u | xargs -r docker rmi -f >/dev/null 2>&1
check_eq "docker: this run's images removed" \
	"$(docker images -q --filter "reference=$LABEL_TAG-*" | wc -l)" 0
check_eq "rollout: no environment or build left" "$(ls "$ROLLOUT_HOME/envs" 2>/dev/null | wc -l)" 0
done_testing
