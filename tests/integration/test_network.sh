#!/bin/bash
# Networks of environments with internet (allow_internet = true): a route out
# (TCP and UDP to a test "internet": a network namespace at 198.18.A.2, in the
# benchmarking range, behind a veth and a route this test adds and removes),
# and none of what the agent of the issue reached: the host's loopback services
# and its other addresses, its abstract unix sockets, its ports, its loopback
# traffic, a concurrent environment. A control environment on the host's
# network (ROLLOUT_SANDBOX_NETWORK=host) shows each probe finds what it looks
# for where nothing stops it. Then nothing may be left: no veth, no process, no
# environment directory (also after kill -9 of rollout, and gc), no rule
# outside rollout's own table (and Docker's DOCKER-USER chain, see
# docs/SANDBOX.md). Docker: the same route out, and trials on rollout's bridge
# network cannot reach each other.
source "$(dirname "$0")/../lib/tap.sh"
source "$ROLLOUT_SRCDIR/tests/lib/providers.sh"
tap_tmpdir
probe=$ROLLOUT_SRCDIR/build/rel/helpers/net_probe

if ! is_root; then
	skip "network" "needs root (network namespaces, veth pairs, nf_tables)"
	done_testing
	exit 0
fi
if [ ! -x "$probe" ]; then
	not_ok "build/rel/helpers/net_probe exists (make test-bins)"
	done_testing
	exit 0
fi
fixture_apt ip iproute2
fixture_apt nft nftables
fixture_apt busybox busybox-static
chmod 755 "$TAP_TMP"

# ---- The internet, and the host's own services ----
a=$(($$ % 200 + 20))
inet=rollout-itest-inet-$$
hv=rtinet$$
net_host=198.18.$a.1 net_inet=198.18.$a.2
lport=$((20000 + $$ % 10000)) sport=$((30000 + $$ % 10000))
abstract=rollout-itest-$$
marker=rollout-loopback-$$-$RANDOM

# bg CMD...: a server for the test's lifetime.
bg() {
	"$@" >/dev/null 2>&1 &
	at_exit "kill $! 2>/dev/null"
}
ip netns add "$inet" && at_exit "ip netns del $inet 2>/dev/null"
ip link add "$hv" type veth peer name eth0 netns "$inet" && at_exit "ip link del $hv 2>/dev/null"
ip addr add "$net_host/30" dev "$hv" && ip link set "$hv" up &&
	ip -n "$inet" addr add "$net_inet/30" dev eth0 && ip -n "$inet" link set eth0 up &&
	ip -n "$inet" link set lo up && ip -n "$inet" route add default via "$net_host" ||
	not_ok "the test's internet namespace"
bg ip netns exec "$inet" "$probe" tcp-serve "$net_inet" 8080 internet-tcp
ip netns exec "$inet" "$probe" udp-echo "$net_inet" 5353 >"$TAP_TMP/udp.log" 2>&1 &
at_exit "kill $! 2>/dev/null"
bg "$probe" tcp-serve 127.0.0.1 "$lport" host-secret
bg "$probe" abstract-listen "$abstract"
nc_says() { # ADDR PORT TEXT: a TCP connection from here gets TEXT
	busybox nc -w 1 "$1" "$2" </dev/null 2>/dev/null | grep -q "$3"
}
wait_until 10 nc_says "$net_inet" 8080 internet-tcp &&
	wait_until 10 "$probe" udp-ask "$net_inet" 5353 ping 300 &&
	wait_until 10 nc_says 127.0.0.1 "$lport" host-secret &&
	wait_until 10 "$probe" abstract-connect "$abstract" 300 ||
	not_ok "the test's servers are up"

# ---- Environments ----
task=$TAP_TMP/task
cp -r "$ROLLOUT_SRCDIR/test-dataset/hello-busybox" "$task"
sed -i 's/allow_internet = false/allow_internet = true/' "$task/task.toml"
# A task whose agent runs until it is killed (the kill -9 case).
cp -r "$task" "$TAP_TMP/task-long"
printf '#!/bin/sh\nsleep 567.5\n' >"$TAP_TMP/task-long/solution/solve.sh"

# `rollout env exec` opens /dev/stdout and /dev/stderr with O_TRUNC: its output
# must never be this script's (a log file when run by tests/run.sh).
start_env() { # PROVIDER NAME: a kept environment of the task (trial NAME)
	"$ROLLOUT" trial run -p "$task" -e "$1" --trial-name "$2" \
		--trials-dir "$TAP_TMP/trials" --preserve-env always -q >"$TAP_TMP/$2.start" 2>&1 &&
		"$ROLLOUT" env exec -e "$1" "$2" -- sh -c 'cat >/tmp/net_probe && chmod 755 /tmp/net_probe' \
			<"$probe" >"$TAP_TMP/$2.probe" 2>&1
}
ex() { # PROVIDER NAME CMD...
	local p=$1 n=$2
	shift 2
	"$ROLLOUT" env exec -e "$p" "$n" -- "$@" 2>&1
}
state_field() { # NAME PYTHON-EXPR on the state json `s`
	python3 -c "import json,sys; s=json.load(open(sys.argv[1])); print($2)" \
		"$ROLLOUT_HOME/envs/$1/state.json" 2>/dev/null
}
# Rules that name rollout's interfaces, as "family table chain" lines.
rule_places() {
	nft -s list ruleset 2>/dev/null | awk '
		$1 == "table" { t = $2 " " $3 } $1 == "chain" { c = $2 }
		/rollout-/ { print t " " c }' | sort
}
tables() { nft list tables 2>/dev/null | sort; }

# The sniffer (in environment NAME of PROVIDER) runs while loopback traffic
# carrying the marker flows on the host; prints what it saw.
sniff() {
	local out=$TAP_TMP/sniff.$2 sp gp
	ex "$1" "$2" /tmp/net_probe sniff "$marker" 2500 >"$out" &
	sp=$!
	if ! wait_until 10 grep -q ready "$out"; then
		kill "$sp" 2>/dev/null
		echo "the sniffer did not start: $(cat "$out")"
		return
	fi
	"$probe" udp-send 127.0.0.1 "$sport" "$marker" 5000 &
	gp=$!
	wait "$sp"
	kill "$gp" 2>/dev/null
	wait "$gp" 2>/dev/null
	cat "$out"
}
host_listens_81() { awk '$4 == "0A" && $2 ~ /:0051$/' /proc/net/tcp /proc/net/tcp6 | grep -q .; }

# ---- sandbox ----
if provider_or_next sandbox "network" busybox; then
	tables_before=$(tables)
	start_env sandbox netA && start_env sandbox netB ||
		not_ok "sandbox: start two environments with internet" "$(cat "$TAP_TMP"/net*.start)"
	ROLLOUT_SANDBOX_NETWORK=host start_env sandbox netH ||
		not_ok "sandbox: start a control environment on the host's network" \
			"$(cat "$TAP_TMP/netH.start")"
	ifA=$(state_field netA 's["net_link"]["host_if"]')
	ifB=$(state_field netB 's["net_link"]["host_if"]')
	gwA=$(state_field netA 's["net_link"]["host_addr"]')
	addrB=$(state_field netB 's["net_link"]["addr"]')
	check_eq "sandbox: state.json records the NAT mode and the link" \
		"$(state_field netA 's["network"]'),$(state_field netH 's["network"]'),${ifA:+if}" \
		"nat,host,if"
	check "sandbox: the host end of the veth pair exists" ip link show "$ifA"
	check_contains "sandbox: eth0 with the link's address, a default route via the host end" \
		"$(ex sandbox netA sh -c 'ip -4 -o addr show dev eth0; ip route show default')" \
		"default via $gwA dev eth0"
	check_eq "sandbox: no IPv6 address on eth0, no IPv6 default route" \
		"$(ex sandbox netA sh -c 'ip -6 addr show dev eth0 | grep inet6; ip -6 route show default')" ""
	want_ns=$(awk '$1 == "nameserver" && $2 ~ /^[0-9.]+$/ && $2 !~ /^127\./ {print $2}' /etc/resolv.conf)
	if [ -z "$want_ns" ] && [ -r /run/systemd/resolve/resolv.conf ]; then
		want_ns=$(awk '$1 == "nameserver" && $2 ~ /^[0-9.]+$/ {print $2}' \
			/run/systemd/resolve/resolv.conf)
	fi
	check_eq "sandbox: resolv.conf has the host's reachable nameservers" \
		"$(ex sandbox netA awk '$1 == "nameserver" {print $2}' /etc/resolv.conf)" "$want_ns"

	# A route out, NAT'd: the internet sees the host's address.
	check_contains "sandbox: TCP to the internet" \
		"$(ex sandbox netA nc -w 3 "$net_inet" 8080 </dev/null)" internet-tcp
	check_eq "sandbox: UDP to the internet, masqueraded" \
		"$(ex sandbox netA /tmp/net_probe udp-ask "$net_inet" 5353 hi 3000)" "echo:hi from $net_host"

	# The host's loopback service: through the environment's own 127.0.0.1, the
	# host end of its veth and every address of the host.
	check_contains "control: the host network reaches the host's 127.0.0.1 service" \
		"$(ex sandbox netH nc -w 2 127.0.0.1 "$lport" </dev/null)" host-secret
	out=$(ex sandbox netA nc -w 2 127.0.0.1 "$lport" </dev/null)
	case $out in *host-secret*) not_ok "sandbox: the host's 127.0.0.1 service is out of reach" "$out" ;;
	*) ok "sandbox: the host's 127.0.0.1 service is out of reach" ;; esac
	addrs=$(echo "$gwA" $(ip -4 -o addr show | awk '$2 != "lo" && $2 !~ /^rollout-/ {split($4, a, "/"); print a[1]}'))
	check_contains "control: from the host network a host address answers (refused: no listener)" \
		"$(ex sandbox netH nc -w 2 "$net_host" "$lport" </dev/null)" "refused"
	out=$(ex sandbox netA sh -c "for h in $addrs; do (nc -w 2 \$h $lport </dev/null 2>&1 | sed \"s|^|\$h: |\") & done; wait")
	n_addrs=$(echo $addrs | wc -w)
	if [ "$(echo "$out" | grep -c 'timed out')" = "$n_addrs" ]; then
		ok "sandbox: no address of the host answers ($n_addrs tried, all dropped)"
	else
		not_ok "sandbox: no address of the host answers" "$out"
	fi
	out=$(ex sandbox netA ping -c 1 -W 1 "$gwA")
	case $out in *" 0% packet loss"*) not_ok "sandbox: the host end does not answer ping" "$out" ;;
	*) ok "sandbox: the host end does not answer ping" ;; esac

	# No spoofing: raw packets (CAP_NET_RAW is Docker's) with a source that is not
	# routed back through the environment's interface are dropped on the host. The
	# environment's own address, sent after them, shows the path works and that
	# they had their chance to arrive first.
	addrA=$(state_field netA 's["net_link"]["addr"]')
	ex sandbox netA sh -c "/tmp/net_probe spoof $addrB $net_inet 5353 spoof-env-$$ 200;
		/tmp/net_probe spoof $net_host $net_inet 5353 spoof-host-$$ 200;
		/tmp/net_probe spoof $addrA $net_inet 5353 own-$$ 200" >/dev/null
	if wait_until 10 grep -q "got own-$$ from $net_host" "$TAP_TMP/udp.log"; then
		ok "control: raw packets with the environment's own address get out, masqueraded"
	else
		not_ok "control: raw packets with the environment's own address get out, masqueraded" \
			"$(cat "$TAP_TMP/udp.log")"
	fi
	check_eq "sandbox: raw packets claiming another environment's or the host's address are dropped" \
		"$(grep -c "spoof-[a-z]*-$$" "$TAP_TMP/udp.log")" "0"
	expect_fail "sandbox: the environment cannot change its addresses (no CAP_NET_ADMIN)" \
		ex sandbox netA ip addr add 10.200.0.77/30 dev eth0
	expect_fail "sandbox: the environment cannot change its routes (no CAP_NET_ADMIN)" \
		ex sandbox netA ip route del default

	# Abstract unix sockets belong to a network namespace.
	check_contains "control: the host network reaches the host's abstract socket" \
		"$(ex sandbox netH /tmp/net_probe abstract-connect "$abstract" 2000)" abstract-secret
	expect_fail "sandbox: the host's abstract socket is out of reach" \
		ex sandbox netA /tmp/net_probe abstract-connect "$abstract" 2000

	# Ports: 81 bound inside is the environment's own.
	ex sandbox netA sh -c 'nc -ll -p 81 -e echo env-81 >/dev/null 2>&1 &' >/dev/null
	if wait_until 10 sh -c "\"$ROLLOUT\" env exec netA -- nc -w 1 127.0.0.1 81 </dev/null | grep -q env-81"; then
		ok "sandbox: port 81 bound inside the environment"
	else
		not_ok "sandbox: port 81 bound inside the environment"
	fi
	if host_listens_81; then
		not_ok "sandbox: port 81 inside is not the host's" "$(grep -i ':0051 ' /proc/net/tcp)"
	else
		ok "sandbox: port 81 inside is not the host's"
	fi
	ex sandbox netH sh -c '/tmp/net_probe tcp-serve 127.0.0.1 81 h-81 >/dev/null 2>&1 &' >/dev/null
	if wait_until 10 host_listens_81; then
		ok "control: port 81 bound on the host network is the host's"
	else
		not_ok "control: port 81 bound on the host network is the host's"
	fi
	ex sandbox netH killall net_probe >/dev/null

	# The host's loopback traffic.
	check_contains "control: a packet socket on the host network sees loopback traffic" \
		"$(sniff sandbox netH)" "seen after"
	check_contains "sandbox: a packet socket in the environment sees none of it" \
		"$(sniff sandbox netA)" "not seen"

	# A concurrent environment's server.
	ex sandbox netB sh -c 'nc -ll -p 9000 -e echo env-b-secret >/dev/null 2>&1 &' >/dev/null
	if wait_until 10 nc_says "$addrB" 9000 env-b-secret; then
		ok "control: the host reaches the server of environment B"
	else
		not_ok "control: the host reaches the server of environment B"
	fi
	out=$(ex sandbox netA nc -w 2 "$addrB" 9000 </dev/null)
	case $out in *"timed out"*) ok "sandbox: environment A cannot reach environment B's server" ;;
	*) not_ok "sandbox: environment A cannot reach environment B's server" "$out" ;; esac

	# Rules: only in rollout's table, and the documented exception of Docker's
	# DOCKER-USER chain when Docker's FORWARD policy drops.
	places=$(rule_places | uniq -c | awk '{print $2, $3, $4, $1}' | tr '\n' ';')
	want="inet rollout forward 4;inet rollout input 2;inet rollout postrouting 1;inet rollout prerouting 1;"
	if nft list chain ip filter DOCKER-USER >/dev/null 2>&1; then
		want="inet rollout forward 4;inet rollout input 2;inet rollout postrouting 1;inet rollout prerouting 1;ip filter DOCKER-USER 3;"
	fi
	check_eq "sandbox: rules naming rollout-* interfaces live in rollout's table (and DOCKER-USER)" \
		"$(echo "$places" | tr ';' '\n' | sort | tr '\n' ';' | sed 's/^;//')" "$want"
	new_tables=$(comm -13 <(echo "$tables_before") <(tables) | tr '\n' ' ')
	case $new_tables in "" | "table inet rollout ") ok "sandbox: no table but rollout's was added" ;;
	*) not_ok "sandbox: no table but rollout's was added" "$new_tables" ;; esac

	# Fail closed: a network that cannot be made (here: a pool overlapping the
	# test's route) fails the start; it never falls back to the host's network.
	out=$(ROLLOUT_SANDBOX_SUBNET=198.18.$a.0/28 "$ROLLOUT" trial run -p "$task" -e sandbox \
		--trial-name netF --trials-dir "$TAP_TMP/trials" 2>&1)
	check_contains "sandbox: a network that cannot be made fails the start, saying why" \
		"$out" "overlaps the host's route 198.18.$a.0/30 dev $hv"
	check_eq "sandbox: ... and leaves no environment" "$(ls -A "$ROLLOUT_HOME/envs" | grep -c netF)" "0"

	# Teardown: the pairs go with their namespaces.
	initA=$(state_field netA 's["init_pid"]') startA=$(state_field netA 's["init_start"]')
	"$ROLLOUT" env rm -e sandbox netA netB netH >/dev/null 2>&1
	if wait_until 10 sh -c "! ip link show $ifA && ! ip link show $ifB"; then
		ok "sandbox: both veth pairs are gone after env rm"
	else
		not_ok "sandbox: both veth pairs are gone after env rm" "$(ip -br link | grep rollout-)"
	fi
	# (its pid may have been reused: compared with its start time; once the
	# owner has exited, reaping the zombie is up to the host's pid 1)
	check_eq "sandbox: the init of A is gone" \
		"$(awk -v s="$startA" '$3 != "Z" && $22 == s' "/proc/$initA/stat" 2>/dev/null)" ""

	# kill -9 of rollout: the init follows its owner, the pair goes with the
	# namespace, gc removes the directory.
	"$ROLLOUT" trial run -p "$TAP_TMP/task-long" -e sandbox --trial-name netK \
		--trials-dir "$TAP_TMP/trials" -q >/dev/null 2>&1 &
	kpid=$!
	if wait_until 20 sh -c "ps -eo args | grep -q '^sleep 567.5'"; then
		ifK=$(state_field netK 's["net_link"]["host_if"]')
		kill -9 "$kpid"
		wait "$kpid" 2>/dev/null
		if [ -n "$ifK" ] && wait_until 10 sh -c "! ip link show $ifK"; then
			ok "sandbox: kill -9 of rollout: the veth pair is gone"
		else
			not_ok "sandbox: kill -9 of rollout: the veth pair is gone" "$ifK: $(ip -br link | grep rollout-)"
		fi
		"$ROLLOUT" gc -e sandbox >/dev/null 2>&1
		check_eq "sandbox: kill -9 of rollout: gc removes the rest" \
			"$(ls -A "$ROLLOUT_HOME/envs" 2>/dev/null)" ""
	else
		kill -9 "$kpid" 2>/dev/null
		not_ok "sandbox: kill -9 of rollout: the agent did not start"
	fi
	check_eq "sandbox: no process of the environments is left" \
		"$(ps -eo args | grep -cE '^(sleep 567.5|nc -ll -p (81|9000))')" "0"
fi

# ---- docker ----
if provider_or_next docker "network" busybox; then
	start_env docker dnetA && start_env docker dnetB ||
		not_ok "docker: start two environments with internet" "$(cat "$TAP_TMP"/dnet*.start)"
	net=$(curl -s --unix-socket /var/run/docker.sock http://d/networks/rollout-bridge)
	check_eq "docker: rollout's bridge network has inter-container communication off" \
		"$(echo "$net" | python3 -c 'import json,sys; n=json.load(sys.stdin); print(n["Driver"], n["Options"].get("com.docker.network.bridge.enable_icc"))')" \
		"bridge false"
	check_contains "docker: TCP to the internet" \
		"$(ex docker dnetA nc -w 3 "$net_inet" 8080 </dev/null)" internet-tcp
	check_contains "docker: UDP to the internet" \
		"$(ex docker dnetA /tmp/net_probe udp-ask "$net_inet" 5353 hi 3000)" "echo:hi from"
	out=$(ex docker dnetA nc -w 2 127.0.0.1 "$lport" </dev/null)
	case $out in *host-secret*) not_ok "docker: the host's 127.0.0.1 service is out of reach" "$out" ;;
	*) ok "docker: the host's 127.0.0.1 service is out of reach" ;; esac
	addrB=$(ex docker dnetB ip -4 -o addr show dev eth0 | awk '{split($4, a, "/"); print a[1]}')
	ex docker dnetB sh -c 'nc -ll -p 9000 -e echo dock-b-secret >/dev/null 2>&1 &' >/dev/null
	if wait_until 10 nc_says "$addrB" 9000 dock-b-secret; then
		ok "control: the host reaches the server of docker environment B"
	else
		not_ok "control: the host reaches the server of docker environment B"
	fi
	out=$(ex docker dnetA nc -w 2 "$addrB" 9000 </dev/null)
	case $out in *dock-b-secret*) not_ok "docker: environment A cannot reach environment B's server" "$out" ;;
	*) ok "docker: environment A cannot reach environment B's server" ;; esac
	"$ROLLOUT" env rm -e docker dnetA dnetB >/dev/null 2>&1
	check_eq "docker: no container left" \
		"$(curl -s --unix-socket /var/run/docker.sock 'http://d/containers/json?all=1' | grep -c '"/dnet[AB]"')" "0"
fi
done_testing
