#!/bin/bash
# `rollout image pull` against Debian's docker-registry on 127.0.0.1 (anonymous):
# plain http (insecure), TLS with a CA made here, tag and digest, an index with two
# platforms and an attestation entry, zstd and uncompressed layers, a corrupted
# blob (rejected, nothing stored), a schema1 manifest (clear error), a second pull
# fetching no blob, registries.conf mirrors (certs.d CA, 404 and closed ports
# falling back), a rewrite, a 429 with Retry-After, and a task whose
# docker_image is in the registry run on the sandbox provider with no Docker
# daemon.
source "$(dirname "$0")/../lib/tap.sh"
source "$ROLLOUT_SRCDIR/tests/lib/fixtures.sh"

is_root || { echo "1..0 # SKIP needs root (apt-get, the sandbox)"; exit 0; }
for p in docker-registry:docker-registry skopeo:skopeo zstd:zstd openssl:openssl python3:python3; do
	fixture_apt "${p%%:*}" "${p#*:}" || { echo "1..0 # SKIP cannot install ${p#*:}"; exit 0; }
done
tap_tmpdir
W=$TAP_TMP
export ROLLOUT_HOME=$W/store
unset ROLLOUT_INSECURE_REGISTRIES
export CONTAINERS_REGISTRIES_CONF=$W/none.conf ROLLOUT_DOCKER_DAEMON_JSON=$W/none.json
export ROLLOUT_CERTS_DIRS=$W/certs.d
bb_tar=$(fixture_busybox_tar) || { not_ok "busybox rootfs fixture"; done_testing; exit 1; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
P=$(free_port)
T=$(free_port)
R=127.0.0.1:$P
RT=127.0.0.1:$T

# ---- registries: plain http (schema1 accepted for the fixture), TLS ----
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$W/ca.key" -out "$W/ca.crt" -days 2 \
	-subj /CN=pull-test-CA -addext basicConstraints=critical,CA:TRUE >/dev/null 2>&1
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/srv.key" \
	-out "$W/srv.csr" -subj /CN=localhost >/dev/null 2>&1
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$W/san.ext"
openssl x509 -req -in "$W/srv.csr" -CA "$W/ca.crt" -CAkey "$W/ca.key" -CAcreateserial \
	-days 2 -extfile "$W/san.ext" -out "$W/srv.crt" >/dev/null 2>&1
cat >"$W/plain.yml" <<EOF
version: 0.1
log: {level: info, accesslog: {disabled: false}}
storage: {filesystem: {rootdirectory: $W/data}, delete: {enabled: true}}
http: {addr: $R}
compatibility: {schema1: {enabled: true}}
EOF
cat >"$W/tls.yml" <<EOF
version: 0.1
storage: {filesystem: {rootdirectory: $W/data-tls}}
http: {addr: $RT, tls: {certificate: $W/srv.crt, key: $W/srv.key}}
EOF
docker-registry serve "$W/plain.yml" >"$W/plain.log" 2>&1 &
PLAIN_PID=$!
docker-registry serve "$W/tls.yml" >"$W/tls.log" 2>&1 &
TLS_PID=$!
at_exit "kill $PLAIN_PID $TLS_PID 2>/dev/null; wait $PLAIN_PID $TLS_PID 2>/dev/null"
wait_until 20 curl -sf "http://$R/v2/" || { not_ok "the plain registry starts" "$(tail "$W/plain.log")"; done_testing; exit 1; }
wait_until 20 curl -sf --cacert "$W/ca.crt" "https://$RT/v2/" || { not_ok "the TLS registry starts" "$(tail "$W/tls.log")"; done_testing; exit 1; }
ok "two registries on 127.0.0.1 (plain http, TLS with a test CA)"

push() { # push LAYOUT:TAG DEST [skopeo args...]
	local src=$1 dst=$2
	shift 2
	skopeo copy -q "$@" --dest-tls-verify=false "oci:$src" "docker://$dst" >"$W/skopeo.log" 2>&1
}
mkoci() { python3 "$ROLLOUT_SRCDIR/tests/lib/mkoci.py" "$@"; }
mkoci "$W/oci-gz" latest "$bb_tar" gzip amd64 &&
	mkoci "$W/oci-zst" latest "$bb_tar" zstd amd64 &&
	mkoci "$W/oci-raw" latest "$bb_tar" none amd64 &&
	mkoci "$W/oci-multi" multi "$bb_tar" gzip amd64,arm64 --attestation &&
	mkoci "$W/oci-bad" latest "$bb_tar" gzip amd64 corrupt
check "fixture layouts written" test -f "$W/oci-multi/index.json"
check "skopeo pushes the images" bash -c "
	$(declare -f push); W='$W'
	push '$W/oci-gz:latest' $R/test/bb:1 && push '$W/oci-zst:latest' $R/test/zst:1 &&
	push '$W/oci-raw:latest' $R/test/raw:1 && push '$W/oci-multi:multi' $R/test/multi:1 --all &&
	push '$W/oci-gz:latest' $RT/test/bb:1 && push '$W/oci-bad:latest' $R/test/corrupt:1 &&
	push '$W/oci-zst:latest' $R/test/task:1"

# ---- plain http: loopback is insecure (as in docker) unless configured secure ----
printf '[[registry]]\nlocation = "%s"\ninsecure = false\n' "$R" >"$W/secure.conf"
out=$(CONTAINERS_REGISTRIES_CONF=$W/secure.conf "$ROLLOUT" image pull "$R/test/bb:1" 2>&1)
check_eq "plain http is refused for a registry registries.conf marks secure" "$?" 1
check_contains "... (https was tried)" "$out" "https://$R/v2/"
out=$(CONTAINERS_REGISTRIES_CONF=$W/secure.conf "$ROLLOUT" image pull --insecure-registry "$R" "$R/test/bb:1" 2>&1)
check_contains "pull by tag over http (--insecure-registry)" "$out" "$R/test/bb:1"
check_contains "... one line for the image" "$out" "1 layers, 1 fetched"
check_eq "... runs nothing but the image's content" "$("$ROLLOUT" image inspect "$R/test/bb:1" | grep -c '"WorkingDir": "/app"')" 1
export ROLLOUT_INSECURE_REGISTRIES="other:5000,$R"
before=$(grep -c 'GET /v2/test/.*/blobs/' "$W/plain.log")
out=$(CONTAINERS_REGISTRIES_CONF=$W/secure.conf "$ROLLOUT" image pull "$R/test/bb:1" 2>&1)
after=$(grep -c 'GET /v2/test/.*/blobs/' "$W/plain.log")
check_contains "a second pull (ROLLOUT_INSECURE_REGISTRIES) finds the layer in the store" "$out" "0 fetched"
check_eq "... and fetches no blob from the registry" "$after" "$before"
unset ROLLOUT_INSECURE_REGISTRIES
out=$("$ROLLOUT" image pull "$R/test/bb:1" 2>&1)
check_contains "127.0.0.1 without configuration: https, then http (as docker)" "$out" "Pulled $R/test/bb:1"
dig=$(skopeo inspect --tls-verify=false --raw "docker://$R/test/bb:1" | sha256sum | cut -d' ' -f1)
out=$("$ROLLOUT" image pull "$R/test/bb@sha256:$dig" 2>&1)
check_contains "pull by digest" "$out" "Pulled $R/test/bb@sha256:$dig"
out=$("$ROLLOUT" image pull "$R/test/bb@sha256:$(printf x | sha256sum | cut -d' ' -f1)" 2>&1)
check_contains "an unknown digest: the registry's error, named" "$out" "MANIFEST_UNKNOWN"

# ---- TLS with the test's CA ----
out=$("$ROLLOUT" image pull "$RT/test/bb:1" 2>&1)
check_contains "TLS with an unknown CA is refused" "$out" "$RT"
out=$(SSL_CERT_FILE=$W/ca.crt "$ROLLOUT" image pull "$RT/test/bb:1" 2>&1)
check_contains "pull over TLS with the CA (SSL_CERT_FILE, IP SAN)" "$out" "Pulled $RT/test/bb:1"

# ---- compression ----
out=$("$ROLLOUT" image pull "$R/test/zst:1" 2>&1)
check_contains "a zstd layer" "$out" "1 fetched"
out=$("$ROLLOUT" image pull "$R/test/raw:1" 2>&1)
check_contains "an uncompressed layer" "$out" "Pulled $R/test/raw:1"

# ---- registries.conf: mirrors (certs.d CA; 404 and closed ports fall back), a rewrite ----
C=$(free_port) # nothing listens there
mkdir -p "$W/certs.d/$RT"
cp "$W/ca.crt" "$W/certs.d/$RT/ca.crt"
cat >"$W/mirrors.conf" <<EOF
[[registry]]
location = "127.0.0.1:$C"
[[registry.mirror]]
location = "$RT"
insecure = false
[[registry.mirror]]
location = "127.0.0.1:$(free_port)"
[[registry.mirror]]
location = "$R"

[[registry]]
prefix = "example.test/app"
location = "$R/test"
EOF
out=$(CONTAINERS_REGISTRIES_CONF=$W/mirrors.conf "$ROLLOUT" image pull "127.0.0.1:$C/test/bb:1" 2>&1)
check_contains "a mirror serves an image whose registry is down (TLS with a certs.d CA)" "$out" "from mirror https://$RT"
out=$(CONTAINERS_REGISTRIES_CONF=$W/mirrors.conf "$ROLLOUT" image pull "127.0.0.1:$C/test/zst:1" 2>&1)
check_contains "a mirror without the image (404) and a closed one fall back to the next" "$out" "from mirror http://$R"
check_contains "... the 404 is reported" "$out" "mirror https://$RT: $RT test/zst: manifest 1: HTTP 404"
out=$(CONTAINERS_REGISTRIES_CONF=$W/mirrors.conf "$ROLLOUT" image pull "127.0.0.1:$C/test/nothing:1" 2>&1)
check_eq "no endpoint has it: the pull fails" "$?" 1
check_contains "... naming the registry itself last" "$out" "127.0.0.1:$C"
out=$(CONTAINERS_REGISTRIES_CONF=$W/mirrors.conf "$ROLLOUT" image pull "example.test/app/raw:1" 2>&1)
check_contains "a location rewrite (example.test/app -> $R/test)" "$out" "Pulled example.test/app/raw:1"

# ---- 429 with Retry-After: waited for, then served ----
F=$(free_port)
cat >"$W/front.py" <<'EOF'
import http.server, sys, urllib.error, urllib.request
upstream, port, hits = sys.argv[1], int(sys.argv[2]), {"n": 0}
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if "/manifests/" in self.path and hits["n"] == 0:
            hits["n"] += 1
            self.send_response(429); self.send_header("Retry-After", "1")
            self.send_header("Content-Length", "0"); self.end_headers(); return
        req = urllib.request.Request("http://" + upstream + self.path,
                                     headers={"Accept": self.headers.get("Accept", "*/*")})
        try:
            r = urllib.request.urlopen(req)
        except urllib.error.HTTPError as e:
            r = e
        body = r.read()
        self.send_response(r.getcode())
        for k in ("Content-Type", "Docker-Content-Digest"):
            if r.headers.get(k): self.send_header(k, r.headers[k])
        self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
EOF
python3 "$W/front.py" "$R" "$F" >"$W/front.log" 2>&1 &
FRONT_PID=$!
at_exit "kill $FRONT_PID 2>/dev/null; wait $FRONT_PID 2>/dev/null"
wait_until 10 curl -sf "http://127.0.0.1:$F/v2/"
t0=$(date +%s%N)
out=$("$ROLLOUT" image pull "127.0.0.1:$F/test/raw:1" 2>&1)
t1=$(date +%s%N)
check_contains "a 429 with Retry-After: 1 is waited for" "$out" "HTTP 429, retrying in 1 s"
check_contains "... then the image is pulled" "$out" "Pulled 127.0.0.1:$F/test/raw:1"
check "... within a few seconds" test $(((t1 - t0) / 1000000)) -lt 8000

# ---- an index: platforms, attestation skipped ----
out=$("$ROLLOUT" image pull --platform linux/arm64 "$R/test/multi:1" 2>&1)
check_contains "index: --platform linux/arm64 (attestation entry first, skipped)" "$out" "Pulled"
check_eq "... the arm64 image" "$("$ROLLOUT" image inspect "$R/test/multi:1" | grep -o '"Architecture": "[a-z0-9]*"')" '"Architecture": "arm64"'
out=$("$ROLLOUT" image pull --platform linux/amd64 "$R/test/multi:1" 2>&1)
check_eq "... --platform linux/amd64 gives the amd64 one" "$("$ROLLOUT" image inspect "$R/test/multi:1" | grep -o '"Architecture": "[a-z0-9]*"')" '"Architecture": "amd64"'
out=$("$ROLLOUT" image pull --platform linux/s390x "$R/test/multi:1" 2>&1)
check_contains "... a missing platform lists what exists" "$out" "no matching manifest for linux/s390x (have: linux/amd64, linux/arm64)"

# ---- a corrupted blob: rejected, nothing stored ----
ldig=$(skopeo inspect --tls-verify=false --raw "docker://$R/test/corrupt:1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["layers"][0]["digest"][7:])')
rm -rf "$ROLLOUT_HOME"
f=$W/data/docker/registry/v2/blobs/sha256/${ldig:0:2}/$ldig/data
python3 -c "import sys; p=sys.argv[1]; b=bytearray(open(p,'rb').read()); b[len(b)//2]^=0xff; open(p,'wb').write(b)" "$f"
out=$("$ROLLOUT" image pull "$R/test/corrupt:1" 2>&1)
check_contains "a corrupted layer blob is rejected" "$out" "layer 1/1"
check_eq "... no layer and no image stored" "$(find "$ROLLOUT_HOME/layers" "$ROLLOUT_HOME/images" -mindepth 1 2>/dev/null | wc -l)" 0
check_eq "... no work directory left" "$(ls -A "$ROLLOUT_HOME/tmp" 2>/dev/null)" ""

# ---- an upper layer hardlinking a file of the layer below, both fetched at once ----
mkoci "$W/oci-hl" latest "$bb_tar" gzip amd64 --hardlink-layer hardlinked &&
	push "$W/oci-hl:latest" "$R/test/hl:1"
check "an image whose second layer hardlinks a file of the first is pushed" test $? = 0
out=$(ROLLOUT_PULL_JOBS=4 "$ROLLOUT" image pull "$R/test/hl:1" 2>&1)
check_contains "both layers are fetched in parallel and the upper one unpacked on the lower" "$out" "2 layers, 2 fetched"
linked=$(find "$ROLLOUT_HOME/layers" -path '*/diff/app/linked' 2>/dev/null | head -1)
check_eq "... the hardlink has the lower file's content" "$(cat "$linked" 2>/dev/null)" "amd64 gzip hardlinked"

# ---- schema1 ----
if push "$W/oci-gz:latest" "$R/test/old:s1" --format v2s1; then
	out=$("$ROLLOUT" image pull "$R/test/old:s1" 2>&1)
	check_contains "a schema1 manifest is a clear error" "$out" "deprecated Docker schema 1"
else
	skip "a schema1 manifest is a clear error" "skopeo could not push v2s1: $(head -c 200 "$W/skopeo.log")"
fi

# ---- a task whose docker_image is in the registry, on the sandbox ----
task=$W/tasks/pulled
mkdir -p "$task/environment" "$task/tests" "$task/solution"
cat >"$task/task.toml" <<EOF
version = "1.0"
[verifier]
timeout_sec = 60.0
[agent]
timeout_sec = 60.0
[environment]
docker_image = "$R/test/task:1"
allow_internet = false
EOF
echo "Write /app/answer.txt" >"$task/instruction.md"
printf '#!/bin/sh\necho 42 > /app/answer.txt\n' >"$task/solution/solve.sh"
printf '#!/bin/sh\nif [ "$(cat /app/answer.txt)" = 42 ]; then echo 1; else echo 0; fi > /logs/verifier/reward.txt\n' >"$task/tests/test.sh"
chmod +x "$task/solution/solve.sh" "$task/tests/test.sh"
DOCKER_HOST=unix:///nonexistent "$ROLLOUT" trial run -q -e sandbox -p "$task" -a oracle \
	--trials-dir "$W/trials" --trial-name pulled >"$W/trial.out" 2>&1
check_eq "a task's docker_image is pulled and the trial is rewarded (sandbox, no daemon)" \
	"$(cat "$W/trials/pulled/verifier/reward.txt" 2>/dev/null)" 1 || diag "$(tail -20 "$W/trial.out")"
check_contains "... the image is in the store" "$("$ROLLOUT" image ls)" "$R/test/task"

done_testing
