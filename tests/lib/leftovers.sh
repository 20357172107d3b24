# What a job may have left behind. `leftovers JOB_DIR PROVIDER` prints one line per
# leftover (nothing when clean): environments of the job's trials still listed by
# rollout, Docker containers labelled with the job, sandbox state directories,
# mounts and cgroups named after the trials, and processes of the trials.
leftovers() {
	local dir=$1 provider=$2 job names name
	job=$(basename "$dir")
	names=$(cd "$dir" 2>/dev/null && for d in */ .retried/*/ .superseded/*/; do
		[ -f "$d/config.json" ] && basename "$d" | sed 's/\.[0-9]*$//'; done | sort -u)
	"$ROLLOUT" env ls -e "$provider" 2>/dev/null | awk 'NR>1{print $2}' | while read -r e; do
		for name in $names; do [ "$e" = "$name" ] && echo "environment $e is still listed"; done
	done
	if [ "$provider" = docker ]; then
		curl -s --unix-socket /var/run/docker.sock -G "http://d/containers/json" \
			--data-urlencode all=1 \
			--data-urlencode "filters={\"label\":[\"rollout.job=$job\"]}" |
			grep -o '"Names":\["[^"]*"' | sed 's/^/container /'
	else
		for name in $names; do
			[ -e "${ROLLOUT_HOME:-/var/lib/rollout}/envs/$name" ] && echo "sandbox state dir of $name"
			grep -q "$name" /proc/self/mountinfo && echo "mount mentioning $name"
			find /sys/fs/cgroup -maxdepth 6 -type d -name "*$name*" 2>/dev/null | sed 's/^/cgroup /'
		done
	fi
	for name in $names; do
		pgrep -f "$name" >/dev/null 2>&1 && echo "process mentioning $name: $(pgrep -af "$name" | head -2)"
	done
	return 0
}
