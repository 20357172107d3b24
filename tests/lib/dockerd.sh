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
