# Make a Docker daemon available to a test, and stop it afterwards only if we
# started it. Source after tap.sh:
#   dockerd_ensure || { skip ...; }      # installs docker.io as root when missing
# The daemon we start is stopped by an at_exit hook.
DOCKERD_STARTED_PID=""

dockerd_ping() {
	[ -S /var/run/docker.sock ] && curl -sf --max-time 2 --unix-socket /var/run/docker.sock http://d/_ping >/dev/null 2>&1
}

dockerd_ensure() {
	dockerd_ping && return 0
	if ! command -v dockerd >/dev/null 2>&1; then
		is_root || { DOCKERD_WHY="dockerd is not installed and we are not root"; return 1; }
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io >/tmp/rollout-docker-install.log 2>&1 ||
			{ DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null 2>&1 &&
			  DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io >/tmp/rollout-docker-install.log 2>&1; } ||
			{ DOCKERD_WHY="apt-get install docker.io failed (see /tmp/rollout-docker-install.log)"; return 1; }
	fi
	is_root || { DOCKERD_WHY="no Docker daemon running and starting one needs root"; return 1; }
	command -v curl >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -q curl >/dev/null 2>&1
	dockerd >/tmp/rollout-dockerd.log 2>&1 &
	DOCKERD_STARTED_PID=$!
	at_exit "dockerd_stop"
	local i
	for i in $(seq 1 120); do
		dockerd_ping && return 0
		kill -0 "$DOCKERD_STARTED_PID" 2>/dev/null || break
		sleep 0.25
	done
	DOCKERD_WHY="dockerd did not come up (see /tmp/rollout-dockerd.log)"
	return 1
}

dockerd_stop() {
	[ -n "$DOCKERD_STARTED_PID" ] || return 0
	kill "$DOCKERD_STARTED_PID" 2>/dev/null
	local i
	for i in $(seq 1 80); do kill -0 "$DOCKERD_STARTED_PID" 2>/dev/null || break; sleep 0.25; done
	kill -9 "$DOCKERD_STARTED_PID" 2>/dev/null
	# dockerd leaves its containerd behind when killed hard; stop that too.
	pkill -f 'containerd --config /var/run/docker/containerd' 2>/dev/null
	DOCKERD_STARTED_PID=""
}

# A private daemon, for tests that need a fresh one (no images): data, exec root,
# socket and pid file under DIR, a bridge of its own (with --bridge=none dockerd
# deletes "docker0", the shared daemon's bridge), no iptables. Stopped, with its
# bridge and data removed, at exit (at_exit). The shared daemon is not touched.
#   dockerd_private DIR || not_ok ...   sets DOCKERD_PRIVATE_HOST (a DOCKER_HOST)
DOCKERD_PRIVATE_DIR=""

dockerd_private() {
	local d=$1 br=rtpb$$ i
	is_root || { DOCKERD_WHY="a private dockerd needs root"; return 1; }
	command -v dockerd >/dev/null 2>&1 || dockerd_ensure >/dev/null 2>&1
	command -v dockerd >/dev/null 2>&1 || { DOCKERD_WHY="dockerd is not installed"; return 1; }
	mkdir -p "$d" || return 1
	DOCKERD_PRIVATE_DIR=$d
	at_exit "dockerd_private_stop"
	ip link add "$br" type bridge && ip addr add 198.51.100.1/24 dev "$br" && ip link set "$br" up ||
		{ DOCKERD_WHY="cannot make a bridge for the private dockerd"; return 1; }
	echo "$br" >"$d/bridge"
	dockerd --data-root "$d/data" --exec-root "$d/exec" --pidfile "$d/pid" -H "unix://$d/sock" \
		--bridge "$br" --iptables=false --ip-masq=false --cgroup-parent=/rollout-test-dockerd-$$ \
		>"$d/log" 2>&1 &
	echo $! >"$d/started"
	DOCKERD_PRIVATE_HOST=unix://$d/sock
	for i in $(seq 1 240); do
		curl -sf --max-time 2 --unix-socket "$d/sock" http://d/_ping >/dev/null 2>&1 && return 0
		kill -0 "$(cat "$d/started")" 2>/dev/null || break
		sleep 0.25
	done
	DOCKERD_WHY="the private dockerd did not come up: $(tail -5 "$d/log")"
	return 1
}

dockerd_private_stop() {
	local d=$DOCKERD_PRIVATE_DIR pid cpid i
	[ -n "$d" ] && [ -d "$d" ] || return 0
	DOCKERD_PRIVATE_DIR=""
	pid=$(cat "$d/started" 2>/dev/null)
	cpid=$(cat "$d/exec/containerd/containerd.pid" 2>/dev/null)
	if [ -n "$pid" ]; then
		kill "$pid" 2>/dev/null
		for i in $(seq 1 120); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
		kill -9 "$pid" 2>/dev/null
	fi
	# A dockerd killed hard leaves its containerd (the pid it wrote) behind.
	[ -n "$cpid" ] && kill -0 "$cpid" 2>/dev/null && kill -9 "$cpid" 2>/dev/null
	[ -s "$d/bridge" ] && ip link del "$(cat "$d/bridge")" 2>/dev/null
	# Whatever it left mounted below DIR (overlays, netns files), deepest first.
	awk -v d="$d/" 'index($2, d) == 1 { print $2 }' /proc/self/mounts | sort -r |
		while read -r m; do umount -l "$m"; done
	rm -rf "$d"
	return 0
}
