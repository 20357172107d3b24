#!/bin/bash
# rollout image build and the sandbox provider's setup-phase build: errors (each
# naming its Dockerfile line), the layer cache, prune and the build cache, stages,
# build args, network, timeouts, limits, and trials of one task building once.
source "$(dirname "$0")/../lib/tap.sh"
source "$ROLLOUT_SRCDIR/tests/lib/fixtures.sh"
cd "$ROLLOUT_SRCDIR" || exit 1
tap_tmpdir
export ROLLOUT_HOME=$TAP_TMP/home

tar=$(fixture_busybox_tar) || { not_ok "busybox fixture"; done_testing; exit 0; }
"$ROLLOUT" image import "$tar" --tag rollout-test/busybox:1 --change 'WORKDIR /app' >/dev/null ||
	not_ok "import the busybox fixture"

# ctx NAME 'DOCKERFILE TEXT': a build context in TAP_TMP; prints its path.
ctx() {
	local d=$TAP_TMP/ctx/$1
	mkdir -p "$d"
	printf '%s\n' "$2" >"$d/Dockerfile"
	echo "$d"
}
build() { "$ROLLOUT" image build "$@" 2>&1; }
no_envs() { [ -z "$(ls "$ROLLOUT_HOME/envs" 2>/dev/null)" ]; }

# ---- errors ----
d=$(ctx unknown 'FROM rollout-test/busybox:1
# comment

FROBNICATE x')
out=$(build -t bad:1 "$d"); rc=$?
check_eq "unknown instruction: exit status 1" "$rc" 1
check_contains "... names the line and the instruction" "$out" "Dockerfile:4: unknown instruction 'FROBNICATE'"

d=$(ctx nobase 'FROM example.com/not/loaded:3
RUN true')
out=$(build "$d")
check_contains "missing base image: names the line and the image" "$out" "Dockerfile:1: FROM: base image example.com/not/loaded:3 is not in the image store"
check_contains "... and says how to load or import it" "$out" "rollout image load FILE"
check_contains "... (import too)" "$out" "rollout image import ROOTFS.tar --tag example.com/not/loaded:3"

d=$(ctx outside 'FROM rollout-test/busybox:1
COPY ../secret /x')
echo secret >"$TAP_TMP/ctx/secret"
out=$(build "$d")
check_contains "COPY ../x: an error naming the line" "$out" "Dockerfile:2: COPY: ../secret: outside the build context"
ln -s /etc/passwd "$d/abs-link"
ln -s ../secret "$d/rel-link"
printf 'FROM rollout-test/busybox:1\nCOPY rel-link /x\n' >"$d/Dockerfile"
out=$(build "$d")
check_contains "COPY of a link out of the context: refused" "$out" "Dockerfile:2: COPY: rel-link: a link in it points outside the build context"
printf 'FROM rollout-test/busybox:1\nCOPY abs-link /x\n' >"$d/Dockerfile"
out=$(build "$d")
check_contains "... an absolute link too" "$out" "abs-link: a link in it points outside the build context"
printf 'FROM rollout-test/busybox:1\nCOPY . /all/\n' >"$d/Dockerfile"
out=$(build -t links:1 "$d")
check_eq "links inside a copied directory are copied as links" \
	"$(ROLLOUT_HOME=$ROLLOUT_HOME "$ROLLOUT" image ls | grep -c '^links:1')" 1

d=$(ctx url 'FROM rollout-test/busybox:1
ADD https://example.com/file.tar.gz /x/')
out=$(build "$d")
check_contains "ADD of a URL: an error naming the line" "$out" "Dockerfile:2: ADD: https://example.com/file.tar.gz: downloading is not supported"
d=$(ctx nomatch 'FROM rollout-test/busybox:1
COPY *.nothing /x/')
check_contains "COPY of a pattern matching nothing" "$(build "$d")" "Dockerfile:2: COPY: no source files match *.nothing"
d=$(ctx missing 'FROM rollout-test/busybox:1
COPY absent.txt /x')
check_contains "COPY of a missing file" "$(build "$d")" "Dockerfile:2: COPY: absent.txt: not found in the build context"

d=$(ctx failing 'FROM rollout-test/busybox:1
RUN echo one > /one
RUN echo line-a; echo line-b; echo to-stderr >&2; exit 7
RUN echo never')
out=$(build -t failing:1 "$d"); rc=$?
check_eq "failing RUN: exit status 1" "$rc" 1
check_contains "... names step, line, instruction and exit code" "$out" \
	"Dockerfile:3: step 3/4: RUN echo line-a; echo line-b; echo to-stderr >&2; exit 7: the command exited with code 7"
check_contains "... with the last lines of its output" "$out" "last output:
  line-a
  line-b
  to-stderr"
check_eq "... nothing is tagged" "$("$ROLLOUT" image ls | grep -c '^failing:')" 0
check "... no environment or build is left" no_envs

# ENV A=$A$A doubles per line: 24 of them took a gigabyte and stored a config the
# store could not read (listed forever). Now: one word 1 MiB, a config 4 MiB.
store_files() { (cd "$ROLLOUT_HOME" && find images blobs layers refs.json -printf '%p %s\n' 2>/dev/null | LC_ALL=C sort); }
before=$(store_files)
d=$TAP_TMP/ctx/envbomb
mkdir -p "$d"
{ echo 'FROM rollout-test/busybox:1'; echo 'ENV A=0123456789abcdef'
  for _ in $(seq 24); do echo 'ENV A=$A$A'; done; } >"$d/Dockerfile"
timed=(); [ -x /usr/bin/time ] && timed=(/usr/bin/time -f 'maxrss-kb %M')
out=$("${timed[@]}" "$ROLLOUT" image build -t envbomb:1 "$d" 2>&1); rc=$?
check_eq "ENV A=\$A\$A x24: fails (exit 1)" "$rc" 1
check_contains "... at the line that goes past 1 MiB, saying so" "$out" "Dockerfile:19: ENV: the value expands to more than 1048576 bytes"
rss=$(sed -n 's/^maxrss-kb //p' <<<"$out")
if [ -n "$rss" ]; then
	check "... small ($rss KB of memory, not a gigabyte)" test "$rss" -lt 65536
else
	skip "... small" "no /usr/bin/time to measure it"
fi
check_eq "... and stores nothing" "$(store_files)" "$before"
{ echo 'FROM rollout-test/busybox:1'; echo 'ENV A=0123456789abcdef'
  for _ in $(seq 15); do echo 'ENV A=$A$A'; done
  for i in $(seq 10); do echo "LABEL l$i=\$A m$i=\$A"; done; } >"$d/Dockerfile"
out=$("$ROLLOUT" image build -t labelbomb:1 "$d" 2>&1)
check_contains "a config growing past 4 MiB: refused at the line that does it" "$out" "Dockerfile:21: LABEL: the image config would be"
check_eq "... and nothing stored" "$(store_files)" "$before"
check_eq "... nothing listed" "$("$ROLLOUT" image ls -a 2>&1 | grep -c -E 'bomb|cannot be read')" 0

# ---- the cache ----
d=$(ctx cache 'FROM rollout-test/busybox:1
ARG WHO=nobody
COPY data.txt /data.txt
RUN echo "step-$((0+1))-ran for $WHO" && cat /data.txt > /copy.txt
ENV STAGE=two
RUN echo "step-$((1+1))-ran" && echo $STAGE > /stage.txt')
echo v1 >"$d/data.txt"
out1=$(build -t cached:1 "$d")
id1=$(echo "$out1" | tail -1)
check_contains "cold build runs every RUN" "$out1" "step-1-ran for nobody"
out2=$(build -t cached:1 "$d")
id2=$(echo "$out2" | tail -1)
check_eq "rebuild of an unchanged Dockerfile: the same image" "$id2" "$id1"
check "... runs nothing" bash -c '! grep -q "step-.-ran" <<<"$1"' _ "$out2"
check_eq "... every layer step from the cache" "$(grep -c 'Using cache' <<<"$out2")" 3
echo v2 >"$d/data.txt"
out3=$(build -t cached:1 "$d")
check_contains "a changed COPY source: that step and the next run again" "$out3" "step-1-ran"
check_contains "... (the later RUN too)" "$out3" "step-2-ran"
check_eq "... the steps before come from the cache" "$(grep -c 'Using cache' <<<"$out3")" 0
out4=$(build -t cached:1 --build-arg WHO=alice "$d")
check_contains "a changed build arg re-runs the RUN that sees it" "$out4" "step-1-ran for alice"
out5=$(build -t cached:1 --no-cache --build-arg WHO=alice "$d")
check_contains "--no-cache runs everything" "$out5" "step-2-ran"
check_eq "the build steps' images are not listed" "$("$ROLLOUT" image ls | grep -c '<none>')" 0
check "... unless -a" bash -c '"$ROLLOUT" image ls -a | grep -q "<none>"'
"$ROLLOUT" image prune >/dev/null
out6=$(build -t cached:1 --build-arg WHO=alice "$d")
check "prune keeps the build cache of a kept image" bash -c '! grep -q "step-.-ran" <<<"$1"' _ "$out6"
"$ROLLOUT" image rm cached:1 >/dev/null
"$ROLLOUT" image prune >/dev/null
check_eq "... and removes it with the image" "$("$ROLLOUT" image ls -a | grep -c '<none>')" 0

# ---- stages, args, network, timeout ----
d=$(ctx stages 'ARG GREETING=hi
FROM rollout-test/busybox:1 AS one
ARG GREETING
RUN echo "$GREETING from one" > /one.txt
FROM rollout-test/busybox:1 AS broken
RUN exit 1
FROM one AS two
RUN cat /one.txt > /two.txt
FROM rollout-test/busybox:1
COPY --from=two /two.txt /final.txt')
out=$(build -t stages:1 --build-arg GREETING=hello "$d")
check_contains "a stage the target does not need is not built" "$out" "Successfully built"
out=$(build -t stages:two --target two "$d")
check "--target builds that stage" bash -c '"$ROLLOUT" image inspect stages:two >/dev/null'
check_contains "--target of an unknown stage" "$(build --target nope "$d")" "target stage 'nope' could not be found"

d=$(ctx net 'FROM rollout-test/busybox:1
RUN ls /sys/class/net | tr "\n" " "; echo')
check_contains "--network none: only lo" "$(build --no-cache --network none "$d")" "
lo "
out=$(build --no-cache --network host "$d")
check "--network host: the host's interfaces" bash -c '[ "$(grep -c -E "^lo $" <<<"$1")" = 0 ]' _ "$out"

d=$(ctx slow 'FROM rollout-test/busybox:1
RUN sleep 30')
start=$SECONDS
out=$(build --timeout 2 "$d")
check_contains "the build timeout stops a RUN" "$out" "timed out"
check "... promptly" test $((SECONDS - start)) -lt 20
check "... leaving no environment" no_envs

# ---- special files and the timeout of steps that run in rollout itself ----
# A FIFO's open blocks and a device's runs its driver: sources are typed before
# they are opened. `timeout` only turns a regression (a hang) into a failure.
d=$(ctx fifo-from 'FROM rollout-test/busybox:1 AS maker
RUN mkfifo /fifo && mkdir /dir && mkfifo /dir/pipe && echo hi > /dir/file && (mknod /dir/null c 1 3 || true)
FROM rollout-test/busybox:1
COPY --from=maker /dir/ /copied/
RUN test -f /copied/file && test ! -e /copied/pipe && test ! -e /copied/null && echo specials-left-out
COPY --from=maker /fifo /fifo')
start=$SECONDS
out=$(timeout 120 "$ROLLOUT" image build -t fifo:1 --timeout 60 "$d" 2>&1); rc=$?
check_eq "COPY --from of a FIFO: refused (exit 1, no hang)" "$rc" 1
check "... well before the build timeout" test $((SECONDS - start)) -lt 50
check_contains "... naming the line and the file" "$out" "Dockerfile:6: COPY: fifo is a FIFO: only files, directories and links can be copied"
check_contains "... a FIFO inside a copied directory is skipped, named" "$out" "skipping dir/pipe, a FIFO"
check_contains "... the rest of the directory is copied" "$out" "specials-left-out"
check_eq "... nothing is tagged" "$("$ROLLOUT" image ls | grep -c '^fifo:')" 0
check "... no environment or build is left" no_envs
d=$(ctx fifo-ctx 'FROM rollout-test/busybox:1
COPY . /all/
COPY fifo /fifo')
mkfifo "$d/fifo"
out=$(timeout 120 "$ROLLOUT" image build "$d" 2>&1); rc=$?
check_eq "COPY of a FIFO of the context: refused (exit 1, no hang)" "$rc" 1
check_contains "... naming the line and the file" "$out" "Dockerfile:3: COPY: fifo is a FIFO"
check_contains "... and skipped (named) when its directory is copied" "$out" "skipping fifo, a FIFO"

d=$(ctx slow-copy 'FROM rollout-test/busybox:1
COPY big /big')
truncate -s 8G "$d/big" # sparse: seconds to read, nothing on disk
start=$SECONDS
out=$(timeout 120 "$ROLLOUT" image build -t slow-copy:1 --timeout 0.5 "$d" 2>&1); rc=$?
rm -f "$d/big"
check_eq "the build timeout stops a COPY (rollout's own work, not a container's)" "$rc" 1
check_contains "... naming the step, its line and what it was doing" "$out" \
	"Dockerfile:2: step 2/2: COPY big /big: the build timed out (0.5 s) while reading the sources"
check "... promptly" test $((SECONDS - start)) -lt 20
check_eq "... nothing is tagged" "$("$ROLLOUT" image ls | grep -c '^slow-copy:')" 0
check_eq "... no work directory is left" "$(ls -A "$ROLLOUT_HOME/tmp")" ""

# ---- trials: the setup phase builds once per task content ----
task=$TAP_TMP/tasks/build-once
mkdir -p "$task/environment" "$task/tests" "$task/solution"
cat >"$task/task.toml" <<'EOF'
version = "1.0"
[verifier]
timeout_sec = 60.0
[agent]
timeout_sec = 60.0
[environment]
build_timeout_sec = 120.0
memory_mb = 256
allow_internet = false
EOF
echo "Write /app/answer.txt" >"$task/instruction.md"
printf '#!/bin/sh\necho 42 > /app/answer.txt\n' >"$task/solution/solve.sh"
printf '#!/bin/sh\nif [ "$(cat /app/answer.txt)" = 42 ]; then echo 1; else echo 0; fi > /logs/verifier/reward.txt\n' >"$task/tests/test.sh"
chmod +x "$task/solution/solve.sh" "$task/tests/test.sh"
cat >"$task/environment/Dockerfile" <<'EOF'
FROM rollout-test/busybox:1
RUN sleep 1 && echo "memory limit: $(cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max)"
RUN ls /sys/class/net | tr "\n" " " && echo
WORKDIR /app
EOF
for i in 1 2 3; do
	"$ROLLOUT" trial run -q -e sandbox -p "$task" -a oracle --trials-dir "$TAP_TMP/trials" \
		--trial-name "once-$i" >/dev/null 2>&1 &
done
wait
rewards=$(cat "$TAP_TMP"/trials/once-*/verifier/reward.txt 2>/dev/null | tr -d '\n')
check_eq "three concurrent trials of one task: all ran" "$rewards" 111
check_eq "... and the image was built once" "$(cat "$TAP_TMP"/trials/once-*/trial.log | grep -c 'rollout: building rollout/build-once:')" 1
logs=$(cat "$TAP_TMP"/trials/once-*/trial.log)
check_contains "... with the task's memory limit" "$logs" "memory limit: 268435456"
# Harbor's builds have the network whatever the task's allow_internet (that is for
# the environment): a RUN step sees an interface besides lo.
net_line=$(grep -E '(^| )lo( |$)' <<<"$logs" | head -1)
check "... and the network for RUN steps (allow_internet = false is the environment's)" \
	test -n "$net_line" -a "$net_line" != "lo "
ref=$("$ROLLOUT" image ls | awk '/^rollout\/build-once:/ {print $1}')
check "... named rollout/<task>:<content hash>, in the store" test -n "$ref"
# The build does not depend on allow_internet, nor does its cache key: the same task
# with the network at run time uses the same image.
sed -i 's/^allow_internet = false$/allow_internet = true/' "$task/task.toml"
"$ROLLOUT" trial run -q -e sandbox -p "$task" -a oracle --trials-dir "$TAP_TMP/trials" --trial-name online >/dev/null 2>&1
check_eq "allow_internet = true: the same image, not built again" \
	"$(grep -c 'rollout: building rollout/build-once:' "$TAP_TMP/trials/online/trial.log")" 0
check_eq "... one image in the store" "$("$ROLLOUT" image ls | grep -c '^rollout/build-once:')" 1
sed -i 's/^allow_internet = true$/allow_internet = false/' "$task/task.toml"
echo "# changed" >>"$task/environment/Dockerfile"
"$ROLLOUT" trial run -q -e sandbox -p "$task" -a oracle --trials-dir "$TAP_TMP/trials" --trial-name changed >/dev/null 2>&1
check_contains "a changed environment/ is built again" "$(cat "$TAP_TMP/trials/changed/trial.log")" "rollout: building rollout/build-once:"
check_eq "... under a new name" "$("$ROLLOUT" image ls | grep -c '^rollout/build-once:')" 2
# force_build is a job setting.
cat >"$TAP_TMP/force.yaml" <<EOF
jobs_dir: $TAP_TMP/jobs
job_name: forced
environment:
  type: sandbox
  force_build: true
datasets:
  - path: $TAP_TMP/tasks
EOF
"$ROLLOUT" run -q "$TAP_TMP/force.yaml" >/dev/null 2>&1
forced=$(ls -d "$TAP_TMP"/jobs/forced/build-once__*/ 2>/dev/null | head -1)
check_contains "force_build builds again" "$(cat "${forced:-/none}/trial.log" 2>/dev/null)" "rollout: building rollout/build-once:"
check_eq "... and the trial passes" "$(cat "${forced:-/none}/verifier/reward.txt" 2>/dev/null)" 1
check "no environment or build left by the trials" no_envs

# ---- rootless: an ordinary user builds into their own store ----
if is_root && command -v su >/dev/null; then
	nb=$(mktemp -d /tmp/rollout-build-nobody.XXXXXX)
	chmod 0755 "$nb"
	mkdir -p "$nb/ctx"
	cp "$ROLLOUT" "$tar" "$nb/"
	printf 'FROM bb\nCOPY f /f\nRUN cat /f > /g && id -u > /uid\nUSER nobody\nWORKDIR /w\n' >"$nb/ctx/Dockerfile"
	echo content >"$nb/ctx/f"
	chmod -R a+rX "$nb" && mkdir "$nb/home" && chown nobody "$nb/home"
	out=$(su -s /bin/sh nobody -c "ROLLOUT_HOME=$nb/home $nb/rollout image import $nb/$(basename "$tar") --tag bb >/dev/null && ROLLOUT_HOME=$nb/home $nb/rollout image build -t built $nb/ctx" 2>&1)
	check_contains "rootless: an ordinary user builds (COPY, RUN as root of the namespace, WORKDIR)" "$out" "Successfully built"
	rm -rf "$nb" 2>/dev/null || su -s /bin/sh nobody -c "rm -rf $nb/home" && rm -rf "$nb"
	check "... and cleaned up" test ! -e "$nb"
else
	skip "rootless build" "needs root (to become nobody) and su"
fi
done_testing
