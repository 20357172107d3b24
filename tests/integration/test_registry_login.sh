#!/bin/bash
# `rollout login` / `logout` against Debian's docker-registry on 127.0.0.1 with
# TLS (a CA made here) and htpasswd Basic auth: wrong and right passwords,
# docker's config.json written 0600 with its other keys kept, a credsStore
# helper on PATH (testdata/regauth/docker-credential-rollouttest), logout.
source "$(dirname "$0")/../lib/tap.sh"
source "$(dirname "$0")/../lib/fixtures.sh"
cd "$ROLLOUT_SRCDIR" || exit 1
tap_tmpdir
T=$TAP_TMP

if ! fixture_apt docker-registry docker-registry || ! fixture_apt htpasswd apache2-utils ||
	! command -v openssl >/dev/null; then
	skip "registry login" "docker-registry, apache2-utils or openssl missing (needs root and apt)"
	done_testing
	exit 0
fi

# The registry: TLS with a CA of ours, htpasswd (bcrypt) with alice:s3cret.
(
	cd "$T" &&
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key \
			-out ca.crt -days 2 -subj /CN=test-CA -addext basicConstraints=critical,CA:TRUE &&
		openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout srv.key \
			-out srv.csr -subj /CN=localhost &&
		printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >srv.ext &&
		openssl x509 -req -in srv.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
			-out srv.crt -extfile srv.ext &&
		htpasswd -Bbn alice s3cret >htpasswd
) >"$T/pki.log" 2>&1 || { not_ok "certificates"; cat "$T/pki.log" | sed 's/^/# /'; done_testing; exit 1; }
# A free port: nothing answers there.
while PORT=$((20000 + RANDOM % 40000)); (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; do :; done
cat >"$T/config.yml" <<EOF
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $T/data}}
http: {addr: 127.0.0.1:$PORT, tls: {certificate: $T/srv.crt, key: $T/srv.key}}
auth: {htpasswd: {realm: basic-realm, path: $T/htpasswd}}
EOF
docker-registry serve "$T/config.yml" >"$T/registry.log" 2>&1 &
REG_PID=$!
at_exit "kill $REG_PID 2>/dev/null; wait $REG_PID 2>/dev/null"
deadline=$((SECONDS + 20))
until (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; do
	kill -0 "$REG_PID" 2>/dev/null && [ $SECONDS -lt $deadline ] ||
		{ not_ok "registry starts"; sed 's/^/# /' "$T/registry.log"; done_testing; exit 1; }
	sleep 0.05 # poll again shortly
done
REG=127.0.0.1:$PORT

# Nothing from the host's own files.
export HOME=$T/home
mkdir -p "$HOME"
unset DOCKER_CONFIG REGISTRY_AUTH_FILE XDG_CONFIG_HOME XDG_RUNTIME_DIR
export CONTAINERS_REGISTRIES_CONF=$T/none ROLLOUT_DOCKER_DAEMON_JSON=$T/none
mkdir -p "$T/certs/$REG" && cp "$T/ca.crt" "$T/certs/$REG/ca.crt"
export ROLLOUT_CERTS_DIRS=$T/certs
CFG=$HOME/.docker/config.json

out=$(echo nope | "$ROLLOUT" login -u alice --password-stdin "$REG" 2>&1)
check_eq "wrong password fails" "$?" 1
check_contains "wrong password says so" "$out" "wrong user name or password"
check "nothing saved after a failed login" test ! -e "$CFG"

out=$("$ROLLOUT" login "$REG" </dev/null 2>&1)
check_eq "no user and no terminal is a usage error" "$?" 2

mkdir -p "$HOME/.docker"
printf '{"auths":{"keep.example":{"auth":"azpr"}},"psFormat":"table"}\n' >"$CFG"
out=$(echo s3cret | "$ROLLOUT" login -u alice --password-stdin "$REG" 2>&1)
check_eq "login succeeds" "$?" 0
check_contains "login says where" "$out" "$CFG"
check_contains "config.json holds base64 user:password" "$(tr -d ' \n' <"$CFG")" \
	"\"$REG\":{\"auth\":\"$(printf alice:s3cret | base64)\"}"
check_eq "config.json is 0600" "$(stat -c %a "$CFG")" 600
check_contains "other keys kept" "$(cat "$CFG")" '"psFormat": "table"'
check_contains "other registries kept" "$(cat "$CFG")" keep.example

out=$("$ROLLOUT" logout "$REG" 2>&1)
check_eq "logout succeeds" "$?" 0
check "logout removed the entry" sh -c "! grep -q '$REG' '$CFG'"
check_contains "logout keeps the rest" "$(cat "$CFG")" keep.example
check_contains "second logout: nothing there" "$("$ROLLOUT" logout "$REG" 2>&1)" "Not logged in"

# credsStore: the secret goes to the helper, config.json gets an empty entry.
export PATH=$ROLLOUT_SRCDIR/testdata/regauth:$PATH CRED_DB=$T/creds.db
printf '{"credsStore":"rollouttest"}\n' >"$CFG"
echo s3cret | "$ROLLOUT" login -u alice --password-stdin "$REG" >/dev/null 2>&1
check_eq "login through credsStore" "$?" 0
check_contains "the helper got the secret" "$(cat "$CRED_DB")" '"Secret":"s3cret"'
check "no secret in config.json" sh -c "! grep -q auth\\\" '$CFG'"
"$ROLLOUT" logout "$REG" >/dev/null 2>&1
check_eq "logout through credsStore" "$(grep -c "$REG" "$CRED_DB")" 0

# An unknown CA (no certs.d): the registry is loopback, hence insecure as in
# docker (https unverified, then http), so login still works.
export ROLLOUT_CERTS_DIRS=$T/empty
echo s3cret | "$ROLLOUT" login -u alice --password-stdin "$REG" >/dev/null 2>&1
check_eq "loopback registries are insecure, as in docker" "$?" 0

# The pull client answers the registry's 401 with what login saved.
export ROLLOUT_HOME=$T/store SSL_CERT_FILE=$T/ca.crt
unset ROLLOUT_INSECURE_REGISTRIES
printf '{}\n' >"$CFG"
if ! is_root || ! command -v skopeo >/dev/null || ! command -v python3 >/dev/null ||
	! bb_tar=$(fixture_busybox_tar); then
	skip "pull with saved credentials" "needs root, skopeo, python3 and the busybox fixture"
else
	python3 tests/lib/mkoci.py "$T/oci" latest "$bb_tar" gzip amd64 &&
		skopeo copy -q --dest-creds alice:s3cret --dest-tls-verify=false \
			"oci:$T/oci:latest" "docker://$REG/private/bb:1" >"$T/skopeo.log" 2>&1
	check_eq "skopeo pushes a private image" "$?" 0
	out=$("$ROLLOUT" image pull "$REG/private/bb:1" 2>&1)
	check_eq "pull without credentials fails" "$?" 1
	check_contains "it says how to log in" "$out" "rollout login $REG"
	echo s3cret | "$ROLLOUT" login -u alice --password-stdin "$REG" >/dev/null 2>&1
	out=$("$ROLLOUT" image pull "$REG/private/bb:1" 2>&1)
	check_eq "pull after login succeeds" "$?" 0
	check_contains "the image is in the store" "$("$ROLLOUT" image ls 2>&1)" "private/bb"
fi

done_testing
