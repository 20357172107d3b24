# storage_mb on the sandbox (docs/SANDBOX.md "Storage"): tasks that write more than
# their limit, a reader of project quotas, and the scenario run on a filesystem
# with project quotas (on the host, or inside user-mode-linux: see uml.sh).
#   storage_dataset DIR        fill (storage_mb 50; 200 MB into / and into
#                              /logs/agent, then reward 1), small (10 MB, reward 1),
#                              tiny (storage_mb 1, 100 KB, reward 1) and orphan
#                              (writes agent/started, then waits)
#   storage_project PATH       the project ID of PATH
#   storage_quota PATH ID      "bhardlimit_kib ihardlimit curspace curinodes" of
#                              project ID on the filesystem of PATH
#   storage_scenario MNT       TAP lines: jobs and trials under MNT (mounted with
#                              project quotas enforced; at full isolation and at
#                              --isolation chroot); ROLLOUT_HOME is MNT/home

storage_dataset() {
	local root=$1 t
	for t in fill small orphan; do
		mkdir -p "$root/$t/environment" "$root/$t/solution" "$root/$t/tests"
		echo "Task $t." >"$root/$t/instruction.md"
		printf '#!/bin/sh\necho 1 > /logs/verifier/reward.txt\n' >"$root/$t/tests/test.sh"
		cat >"$root/$t/task.toml" <<'TOML'
version = "1.0"
[agent]
timeout_sec = 120.0
[verifier]
timeout_sec = 60.0
[environment]
docker_image = "rollout-test/busybox:1"
storage_mb = 50
allow_internet = false
TOML
	done
	cat >"$root/fill/solution/solve.sh" <<'SH'
#!/bin/sh
dd if=/dev/zero of=/root/big bs=1M count=200; echo "root dd exit $?"
rm -f /root/big
dd if=/dev/zero of=/logs/agent/big bs=1M count=200; echo "logs dd exit $?"
SH
	cat >"$root/small/solution/solve.sh" <<'SH'
#!/bin/sh
dd if=/dev/zero of=/root/data bs=1M count=10 && echo "small dd ok"
SH
	printf '#!/bin/sh\necho started > /logs/agent/started\nexec sleep 600\n' \
		>"$root/orphan/solution/solve.sh"
	# tiny: a limit below the image's size (only --isolation chroot copies it)
	cp -r "$root/small" "$root/tiny"
	sed -i 's/^storage_mb = 50$/storage_mb = 1/' "$root/tiny/task.toml"
	printf '#!/bin/sh\ndd if=/dev/zero of=/root/data bs=1k count=100 && echo "tiny dd ok"\n' \
		>"$root/tiny/solution/solve.sh"
	chmod +x "$root"/*/solution/solve.sh "$root"/*/tests/test.sh
}

storage_project() {
	python3 - "$1" <<'PY'
import fcntl, os, struct, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
buf = fcntl.ioctl(fd, 0x801c581f, bytes(28))  # FS_IOC_FSGETXATTR
print(struct.unpack_from("=IIII", buf)[3])
PY
}

storage_quota() {
	python3 - "$1" "$2" <<'PY'
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
fd = os.open(sys.argv[1], os.O_RDONLY)
buf = ctypes.create_string_buffer(72)  # struct if_dqblk
cmd = (0x800007 << 8) | 2  # QCMD(Q_GETQUOTA, PRJQUOTA)
if libc.syscall(443, fd, cmd, ctypes.c_uint(int(sys.argv[2])), buf) < 0:
    sys.exit("quotactl_fd: " + os.strerror(ctypes.get_errno()))
bh, bs, cs, ih, isl, ci = (int.from_bytes(buf.raw[i * 8:i * 8 + 8], "little") for i in range(6))
print(bh, ih, cs, ci)
PY
}

# storage_result TRIAL_DIR: "enforced limit_hit limit_bytes used_bytes reward exception"
storage_result() {
	python3 - "$1/result.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
s = r["integrity"]["storage"]
rw = ((r.get("verifier_result") or {}).get("rewards") or {}).get("reward")
exc = (r.get("exception_info") or {}).get("exception_type")
print(str(s["enforced"]).lower(), str(s["limit_hit"]).lower(), s["limit_bytes"],
      s["used_bytes"], rw, exc)
PY
}

# Leftovers of environments: anything in envs/ but the allocation lock, anything in trash/.
storage_leftovers() {
	local home=$1
	{ ls -A "$home/envs" 2>/dev/null | grep -vx '.quota.lock'; ls -A "$home/trash" 2>/dev/null; } | tr '\n' ' '
}

storage_scenario() {
	local mnt=$1 out jobs dir fill small proj q leftover
	export ROLLOUT_HOME=$mnt/home
	jobs=$mnt/jobs
	storage_dataset "$mnt/ds"
	"$ROLLOUT" image import "$(fixture_busybox_tar)" --tag rollout-test/busybox:1 \
		--change 'WORKDIR /app' \
		--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
		>/dev/null 2>&1 || { not_ok "import the busybox fixture"; return; }

	out=$("$ROLLOUT" run -p "$mnt/ds" -t fill -t small -a oracle -e sandbox -o "$jobs" \
		--job-name quota -n 2 2>&1)
	case $out in
	*"storage_mb is not enforced"*) not_ok "project quotas: no 'not enforced' warning" "$out" ;;
	*) ok "project quotas: no 'not enforced' warning" ;;
	esac
	fill=$(ls -d "$jobs"/quota/fill__* 2>/dev/null | head -1)
	small=$(ls -d "$jobs"/quota/small__* 2>/dev/null | head -1)
	if [ -z "$fill" ] || [ -z "$small" ]; then
		not_ok "project quotas: both trials ran" "$out"
		return
	fi
	check_contains "over the limit: the write into / fails with EDQUOT" \
		"$(cat "$fill/agent/oracle.txt")" "error writing '/root/big': Disk quota exceeded"
	check_contains "over the limit: the write into /logs/agent fails with EDQUOT" \
		"$(cat "$fill/agent/oracle.txt")" "error writing '/logs/agent/big': Disk quota exceeded"
	check_eq "over the limit: result.json records the limit hit; the verifier still ran" \
		"$(storage_result "$fill" | cut -d' ' -f1-3,5-)" "true true 52428800 1.0 None"
	check_eq "within the limit: unaffected, and not recorded as hit" \
		"$(storage_result "$small" | cut -d' ' -f1-3,5-)" "true false 52428800 1.0 None"
	check_contains "within the limit: the agent's write succeeded" \
		"$(cat "$small/agent/oracle.txt")" "small dd ok"
	leftover=$(storage_leftovers "$ROLLOUT_HOME")
	check_eq "the environments' directories are gone" "$leftover" ""
	proj=$(storage_project "$fill/agent")
	case $proj in
	'' | 0) not_ok "the trial's /logs/agent carried the environment's project" "project: $proj" ;;
	*) ok "the trial's /logs/agent carried the environment's project" ;;
	esac
	q=$(storage_quota "$mnt" "$proj")
	check_eq "the project's limits are cleared after the trial" "$(cut -d' ' -f1-2 <<<"$q")" "0 0"

	# A kept environment keeps its limit until `rollout env rm`, run by
	# another process (the limit is read back from the directory).
	"$ROLLOUT" trial run -q -e sandbox -p "$mnt/ds/small" -a oracle --trials-dir "$mnt/trials" \
		--trial-name kept --preserve-env always >/dev/null 2>&1
	proj=$(storage_project "$ROLLOUT_HOME/envs/kept" 2>/dev/null)
	q=$(storage_quota "$mnt" "${proj:-0}" 2>&1)
	# (50 MiB for the agent, and as much again for the verifier on top of
	# what the agent left)
	case $(cut -d' ' -f1 <<<"$q") in
	'' | 0 | *[!0-9]*) not_ok "a kept environment keeps its limit" "quota: $q" ;;
	*) ok "a kept environment keeps its limit" ;;
	esac
	"$ROLLOUT" env rm kept >/dev/null 2>&1
	q=$(storage_quota "$mnt" "${proj:-0}" 2>&1)
	check_eq "rollout env rm clears the limit" "$(cut -d' ' -f1-2 <<<"$q")" "0 0"
	check_eq "rollout env rm leaves nothing in envs/" "$(storage_leftovers "$ROLLOUT_HOME")" ""

	# A rollout killed outright leaves its environment and limit to gc.
	local pid deadline
	"$ROLLOUT" trial run -q -e sandbox -p "$mnt/ds/orphan" -a oracle --trials-dir "$mnt/trials" \
		--trial-name orphan >/dev/null 2>&1 &
	pid=$!
	deadline=$((SECONDS + 120))
	until [ -e "$mnt/trials/orphan/agent/started" ] || [ $SECONDS -gt $deadline ]; do
		sleep 0.1
	done
	proj=$(storage_project "$ROLLOUT_HOME/envs/orphan" 2>/dev/null)
	kill -9 "$pid"
	wait "$pid" 2>/dev/null
	q=$(storage_quota "$mnt" "${proj:-0}" 2>&1)
	case $(cut -d' ' -f1 <<<"$q") in
	'' | 0 | *[!0-9]*) not_ok "a running environment has its limit" "project ${proj:-none}: $q" ;;
	*) ok "a running environment has its limit" ;;
	esac
	"$ROLLOUT" gc -e sandbox >/dev/null 2>&1
	q=$(storage_quota "$mnt" "${proj:-0}" 2>&1)
	check_eq "rollout gc clears the limit of a killed rollout's environment" \
		"$(cut -d' ' -f1-2 <<<"$q")" "0 0"
	check_eq "rollout gc leaves nothing in envs/ or trash/" "$(storage_leftovers "$ROLLOUT_HOME")" ""

	# --isolation chroot: the environment's copy of its image is not counted,
	# what the agent writes is (/logs/agent is part of the copy there).
	out=$("$ROLLOUT" run -p "$mnt/ds" -t fill -t small -t tiny -a oracle -e sandbox \
		--isolation chroot -o "$jobs" --job-name quota-chroot -n 2 2>&1)
	fill=$(ls -d "$jobs"/quota-chroot/fill__* 2>/dev/null | head -1)
	small=$(ls -d "$jobs"/quota-chroot/small__* 2>/dev/null | head -1)
	if [ -z "$fill" ] || [ -z "$small" ]; then
		not_ok "chroot: both trials ran" "$out"
		return
	fi
	check_contains "chroot: over the limit: the write into / fails with EDQUOT" \
		"$(cat "$fill/agent/oracle.txt" 2>&1)" "error writing '/root/big': Disk quota exceeded"
	check_eq "chroot: over the limit: recorded as hit; the verifier still ran" \
		"$(storage_result "$fill" | cut -d' ' -f1-3,5-)" "true true 52428800 1.0 None"
	check_eq "chroot: within the limit (the image's copy not counted): unaffected" \
		"$(storage_result "$small" | cut -d' ' -f1-3,5-)" "true false 52428800 1.0 None"
	check_eq "chroot: a limit below the image's size (1 MB for 2 MB of busybox) still runs" \
		"$(storage_result "$(ls -d "$jobs"/quota-chroot/tiny__* | head -1)" | cut -d' ' -f1-3,5-)" \
		"true false 1048576 1.0 None"
	check_eq "chroot: the environments' directories are gone" "$(storage_leftovers "$ROLLOUT_HOME")" ""
}
