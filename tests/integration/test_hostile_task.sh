#!/bin/bash
# The hostile-agent suite (testdata/hostile) run as a task: its "solution" is the
# attacks, run by the oracle agent through a whole trial on each provider; the
# verifier scores 1 only if every attack was denied. Host-side checks: the trial
# directory holds no symlink out of it (the collector removed what the agent
# planted in /logs/agent), host files are unchanged, nothing is left running.
source "$(dirname "$0")/../lib/tap.sh"
source "$ROLLOUT_SRCDIR/tests/lib/providers.sh"
tap_tmpdir
task=$TAP_TMP/hostile-agent
mkdir -p "$task/environment" "$task/solution" "$task/tests"
cp "$ROLLOUT_SRCDIR"/testdata/hostile/*.sh "$task/solution/"
printf '#!/bin/sh\nexec sh /solution/run-all.sh\n' >"$task/solution/solve.sh"
chmod +x "$task/solution/solve.sh"
echo "Try to escape the environment." >"$task/instruction.md"
printf 'FROM rollout-test/busybox:1\n' >"$task/environment/Dockerfile"
cat >"$task/tests/test.sh" <<'EOF2'
#!/bin/sh
# Reward 1 only when the attack log shows every attack denied.
log=/logs/agent/oracle.txt
if grep -q '^hostile: 0 allowed' "$log" && ! grep -q '^ALLOWED' "$log"; then r=1; else r=0; fi
echo "$r" > /logs/verifier/reward.txt
EOF2
chmod +x "$task/tests/test.sh"
cat >"$task/task.toml" <<'EOF2'
version = "1.0"
[agent]
timeout_sec = 120.0
[verifier]
timeout_sec = 60.0
[environment]
docker_image = "rollout-test/busybox:1"
memory_mb = 256
allow_internet = false
EOF2

shadow_before=$(sha256sum /etc/shadow /etc/passwd 2>/dev/null)
for p in ${ROLLOUT_TEST_PROVIDERS:-sandbox docker}; do
	provider_or_next "$p" "hostile task" || continue
	name=hostile-$p-$$
	"$ROLLOUT" trial run -q -e "$p" -p "$task" --trials-dir "$TAP_TMP/trials" --trial-name "$name" >/dev/null 2>&1
	d=$TAP_TMP/trials/$name
	log=$(cat "$d/agent/oracle.txt" 2>/dev/null)
	check_contains "$p: the attacks ran" "$log" "hostile: "
	for a in "$ROLLOUT_SRCDIR"/testdata/hostile/attack-*.sh; do
		n=$(basename "$a" .sh); n=${n#attack-}
		case "$log" in
		*"DENIED $n:"* | *"PLANTED $n:"*) ok "$p: $n denied" ;;
		*) not_ok "$p: $n denied" "$(printf '%s\n' "$log" | grep -- "$n")" ;;
		esac
	done
	check_eq "$p: the verifier scores the task 1 (nothing allowed)" \
		"$(cat "$d/verifier/reward.txt" 2>/dev/null)" 1
	escaping=$(find "$d" -type l -lname '/*' -o -type l -lname '*../*' 2>/dev/null)
	check_eq "$p: no symlink out of the trial directory survives collection" "$escaping" ""
	check_eq "$p: no setuid or special files in the trial directory" \
		"$(find "$d" \( -perm -4000 -o -perm -2000 -o -type p -o -type b -o -type c -o -type s \) 2>/dev/null)" ""
	check_eq "$p: host /etc/shadow and /etc/passwd unchanged" "$(sha256sum /etc/shadow /etc/passwd 2>/dev/null)" "$shadow_before"
	check_eq "$p: no environment of the trial left" "$("$ROLLOUT" env ls -e "$p" | grep -c "$name")" 0
done
done_testing
