#!/bin/bash
# The daemon restarting or stopping under a running trial (docker_restart.c),
# on a private dockerd started and stopped here: the shared one is never touched.
source "$(dirname "$0")/../lib/tap.sh"
source "$ROLLOUT_SRCDIR/tests/lib/fixtures.sh"
source "$ROLLOUT_SRCDIR/tests/lib/dockerd.sh"
bin=$ROLLOUT_SRCDIR/build/rel/itests/docker_restart
tap_tmpdir


dockerd_ensure >/dev/null 2>&1 # installs docker.io when missing
if ! is_root || ! command -v dockerd >/dev/null 2>&1; then
	skip "docker restart" "needs root and dockerd to run a private daemon"
	done_testing
	exit 0
fi
root=$TAP_TMP/dockerd
mkdir -p "$root"
trap 'exit 143' TERM INT # so that the EXIT cleanup stops the private daemon
# The private daemon gets a bridge of its own. (With --bridge=none dockerd
# deletes "docker0" at start-up: the shared daemon's bridge.)
br=rtbr$$
had_docker0=$(ip link show docker0 >/dev/null 2>&1 && echo yes || echo no)
ip link add "$br" type bridge && ip addr add 192.0.2.1/24 dev "$br" && ip link set "$br" up ||
	{ not_ok "bridge for the private dockerd"; done_testing; exit 0; }
at_exit "ip link del '$br' 2>/dev/null"
cat >"$TAP_TMP/ctl.sh" <<CTL
#!/bin/bash
# stop|start|restart the private dockerd of test_docker_restart.sh
root=$root
up() { curl -sf --max-time 2 --unix-socket \$root/sock http://d/_ping >/dev/null 2>&1; }
start() {
	dockerd --data-root \$root/data --exec-root \$root/exec --pidfile \$root/pid \\
		-H unix://\$root/sock --bridge $br --iptables=false --ip-masq=false \\
		--cgroup-parent=/rollout-test-dockerd >>\$root/log 2>&1 &
	for i in \$(seq 1 120); do up && return 0; sleep 0.25; done
	return 1
}
stop() {
	[ -s \$root/pid ] || return 0
	local pid=\$(cat \$root/pid)
	kill \$pid 2>/dev/null
	for i in \$(seq 1 120); do kill -0 \$pid 2>/dev/null || break; sleep 0.25; done
	kill -9 \$pid 2>/dev/null
	pkill -f "containerd --config \$root/exec/containerd" 2>/dev/null
	while [ -e \$root/pid ] && kill -0 \$pid 2>/dev/null; do sleep 0.1; done
	return 0
}
case \$1 in
start) start ;;
stop) stop ;;
restart) stop && start ;;
esac
CTL
chmod +x "$TAP_TMP/ctl.sh"
at_exit "'$TAP_TMP/ctl.sh' stop; umount -R '$root' 2>/dev/null; true"
if ! "$TAP_TMP/ctl.sh" start; then
	not_ok "private dockerd starts" "$(tail -20 "$root/log")"
	done_testing
	exit 0
fi
ok "private dockerd starts"
tar=$(fixture_busybox_tar) || { not_ok "busybox fixture"; done_testing; exit 0; }
curl -sf --unix-socket "$root/sock" -X POST -H 'Content-Type: application/x-tar' --data-binary @"$tar" \
	"http://d/images/create?fromSrc=-&repo=rollout-test/busybox&tag=1&changes=WORKDIR%20%2Fapp" >/dev/null
check "busybox image imported into the private daemon" \
	curl -sf --unix-socket "$root/sock" http://d/images/rollout-test/busybox:1/json
export DOCKER_HOST=unix://$root/sock ROLLOUT_TEST_DOCKERD_CTL=$TAP_TMP/ctl.sh ROLLOUT_HOME=$TAP_TMP/home
tap_relay docker < <("$bin" 2>&1)
"$TAP_TMP/ctl.sh" stop
check_eq "the shared daemon's docker0 bridge is untouched" \
	"$(ip link show docker0 >/dev/null 2>&1 && echo yes || echo no)" "$had_docker0"
done_testing
