#!/bin/bash
# The README's promise on a fresh machine: in a Debian 12 root filesystem made by
# `debootstrap --variant=minbase bookworm`, with nothing installed in it but what
# debootstrap gives, a clean clone of this repository (a shallow `git clone` of
# HEAD: uncommitted changes do not count) runs, as root, exactly the README's
# commands: `apt-get install make` (the one tool it cannot install itself), `make`,
# `make demo`. Every other tool must be installed by the build (build-deps.sh) or
# by the demo, and the demo job must end task by task as tests/lib/demojob.sh says.
#
# The root is entered with chroot inside a mount and pid namespace of the test's
# own (unshare): /proc, /sys (cgroups included), /dev and the cache binds are
# mounted there and vanish with the namespace whatever happens, and every process
# left in it dies with its init. The root is made a mount point (the sandbox's
# pivot_root needs one); the network is the host's (apt, the deps' downloads).
# The demo's Debian fixture is made by a nested debootstrap inside the root, as
# on a real machine: nothing of the fixture cache is pre-seeded.
#
# Cached in $ROLLOUT_TEST_CACHE/v1 between runs (downloads only, never installs):
#   fresh-bookworm-minbase.tar  debootstrap's output, kept pristine, unpacked per run
#   debs/                       debootstrap's --cache-dir, for it and for the nested
#                               debootstrap of the demo (tests/lib/fixtures.sh)
#   fresh-apt-archives/         apt's downloaded .debs, bound at the root's
#                               /var/cache/apt/archives
# apt's package lists are not cached: the build must run apt-get update itself.
source "$(dirname "$0")/../lib/tap.sh"
source "$ROLLOUT_SRCDIR/tests/lib/fixtures.sh"
source "$ROLLOUT_SRCDIR/tests/lib/demojob.sh"
tap_tmpdir

if ! is_root; then
	skip "make and make demo in a fresh Debian 12 root" "needs root (debootstrap, chroot, mounts)"
	done_testing
	exit 0
fi
for t in debootstrap:debootstrap unshare:util-linux git:git python3:python3; do
	fixture_apt "${t%%:*}" "${t#*:}" || { not_ok "install ${t#*:} on the host"; done_testing; exit 0; }
done

cache=$(fixture_dir)
debs=$cache/debs
aptdebs=$cache/fresh-apt-archives
pristine=$cache/fresh-bookworm-minbase.tar
mkdir -p "$debs" "$aptdebs"

# --- the pristine root, made once ------------------------------------------------
if [ ! -s "$pristine" ]; then
	start=$SECONDS
	(
		flock 8
		[ -s "$pristine" ] && exit 0
		debootstrap --variant=minbase --cache-dir="$debs" bookworm "$TAP_TMP/pristine" \
			http://deb.debian.org/debian >"$TAP_TMP/debootstrap.log" 2>&1 || exit 1
		tar --numeric-owner --xattrs -C "$TAP_TMP/pristine" -cf "$pristine.part" . &&
			mv "$pristine.part" "$pristine"
	) 8>"$debs/.lock"
	rc=$?
	rm -rf "$TAP_TMP/pristine"
	if [ $rc != 0 ]; then
		not_ok "debootstrap --variant=minbase bookworm" "$(tail -20 "$TAP_TMP/debootstrap.log")"
		done_testing
		exit 0
	fi
	diag "debootstrap of the minbase root: $((SECONDS - start)) s (cached for later runs)"
fi
r=$TAP_TMP/root
mkdir -p "$r"
tar --numeric-owner --xattrs -C "$r" -xpf "$pristine" || { not_ok "unpack the minbase root"; done_testing; exit 0; }
check_eq "the fresh root has neither make nor a C compiler" \
	"$(chroot "$r" /bin/sh -c 'command -v make gcc musl-gcc gperf curl' | wc -l)" 0

# --- a clean clone of HEAD --------------------------------------------------------
git clone -q --depth 1 "file://$ROLLOUT_SRCDIR" "$r/root/rollout" 2>"$TAP_TMP/clone.log" ||
	{ not_ok "git clone of HEAD" "$(cat "$TAP_TMP/clone.log")"; done_testing; exit 0; }
diag "testing commit $(git -C "$r/root/rollout" log --oneline -1)"

# The README's commands, each logged with its exit status in /root/fresh/.
cat >"$r/root/fresh-steps.sh" <<'STEPS'
#!/bin/bash
mkdir -p /root/fresh
step() { # NAME CMD...
	local name=$1 start=$SECONDS; shift
	"$@" >/root/fresh/$name.log 2>&1
	echo $? >/root/fresh/$name.rc
	echo $((SECONDS - start)) >/root/fresh/$name.secs
}
cd /root/rollout || exit 1
step install-make apt-get install -y make
[ "$(cat /root/fresh/install-make.rc)" = 0 ] || step install-make sh -c 'apt-get update && apt-get install -y make'
step make make
[ "$(cat /root/fresh/make.rc)" = 0 ] && step demo make demo
STEPS
cat >"$TAP_TMP/enter.sh" <<'ENTER'
#!/bin/bash
# In the new mount and pid namespaces: mount what a machine has, enter the root.
set -e
r=$1
mount --bind "$r" "$r"
mount -t proc proc "$r/proc"
mount --rbind /sys "$r/sys"
mount --rbind /dev "$r/dev"
mkdir -p "$r/var/cache/rollout-test/v1/debs" "$r/var/cache/apt/archives"
mount --bind "$2" "$r/var/cache/rollout-test/v1/debs"
mount --bind "$3" "$r/var/cache/apt/archives"
cp /etc/resolv.conf "$r/etc/resolv.conf"
set +e
chroot "$r" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb DEBIAN_FRONTEND=noninteractive \
	PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin /bin/bash /root/fresh-steps.sh
ENTER
start=$SECONDS
# A guard against a hang, not a time limit: the steps take 5 CPU-minutes, but 31
# minutes of wall time were seen at a load of 20 on 2 cores.
timeout -k 30 5400 unshare --mount --pid --fork --propagation private \
	bash "$TAP_TMP/enter.sh" "$r" "$debs" "$aptdebs" >"$TAP_TMP/enter.log" 2>&1
rc=$?
diag "apt-get install make, make and make demo in the fresh root: $((SECONDS - start)) s"
check_eq "the namespace's mounts are gone with it" \
	"$(awk -v d="$r/" 'index($2, d) == 1' /proc/self/mounts | wc -l)" 0
[ $rc = 0 ] || not_ok "entering the fresh root" "exit status $rc" "$(tail -20 "$TAP_TMP/enter.log")"

out=$r/root/fresh
step_ok() { # NAME WHAT
	local rc
	rc=$(cat "$out/$1.rc" 2>/dev/null || echo "not run")
	if [ "$rc" = 0 ]; then
		ok "$2 ($(cat "$out/$1.secs") s)"
	else
		not_ok "$2" "exit status: $rc" "$(tail -25 "$out/$1.log" 2>/dev/null)"
	fi
}
step_ok install-make "apt-get install make in the fresh root (the README's first step)"
step_ok make "make builds ./rollout in the fresh root"
check "the built rollout is a static binary" test -x "$r/root/rollout/rollout"
if grep -q 'build-deps: installing:' "$out/make.log" 2>/dev/null; then
	diag "$(grep 'build-deps: installing:' "$out/make.log")"
fi
step_ok demo "make demo runs the demo job in the fresh root"
job=$(sed -n 's/^demo: results in \(jobs\/[^;]*\);.*/\1/p' "$out/demo.log" 2>/dev/null | tail -1)
if [ -n "$job" ] && [ -d "$r/root/rollout/$job" ]; then
	got=$(demo_outcomes "$r/root/rollout/$job")
	if [ "$got" = "$DEMO_EXPECTED" ]; then
		ok "the demo's trials end as test-dataset says (rewards and errors, task by task)"
	else
		not_ok "the demo's trials end as test-dataset says (rewards and errors, task by task)" \
			"got:" "$(demo_outcomes "$r/root/rollout/$job" why)" "want:" "$DEMO_EXPECTED" \
			"demo output:" "$(tail -30 "$out/demo.log")"
	fi
else
	not_ok "the demo job's results exist" "$(tail -15 "$out/demo.log" 2>/dev/null)"
fi
done_testing
