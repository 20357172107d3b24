#!/bin/bash
# Black-box tests of `rollout datasets list|download` against a local git
# repository served as file:// URLs (testdata/registry/make_fixture.sh): output,
# cache reuse (a logging git wrapper counts the clones), HEAD moves, pinned
# commits, flat downloads, filters, concurrent downloads, Ctrl-C, every error.
source "$(dirname "$0")/../lib/tap.sh"
cd "$ROLLOUT_SRCDIR" || exit 1
tap_tmpdir

if ! command -v git >/dev/null 2>&1 && is_root && command -v apt-get >/dev/null 2>&1; then
	apt-get install -y -q git >/dev/null 2>&1 ||
		{ apt-get update -q >/dev/null 2>&1 && apt-get install -y -q git >/dev/null 2>&1; } || true
fi
if ! command -v git >/dev/null 2>&1; then
	skip "datasets" "git is not installed and could not be installed (needs root and apt)"
	done_testing
	exit 0
fi

T=$TAP_TMP
sh testdata/registry/make_fixture.sh "$T/fx" >/dev/null || { not_ok "fixture"; done_testing; exit 1; }
. "$T/fx/commits.env"
REG=$T/fx/registry.json
export ROLLOUT_TASK_CACHE=$T/cache

# A git that logs each call, ahead of the real one in PATH.
REAL_GIT=$(command -v git)
mkdir -p "$T/bin"
GITLOG=$T/git.log
cat >"$T/bin/git" <<EOF
#!/bin/sh
echo "\$*" >>"$GITLOG"
exec "$REAL_GIT" "\$@"
EOF
chmod +x "$T/bin/git"
export PATH="$T/bin:$PATH"
clones() { grep -c '^clone ' "$GITLOG" 2>/dev/null || true; }
calls() { [ -f "$GITLOG" ] && wc -l <"$GITLOG" | tr -d ' ' || echo 0; }
instr() { cat "$1/instruction.md"; }
leftovers() { find "$ROLLOUT_TASK_CACHE" -maxdepth 1 -name '.tmp-*' | wc -l | tr -d ' '; }

# --- help and usage errors ----------------------------------------------------
for args in "datasets --help" "datasets list --help" "datasets download --help"; do
	out=$("$ROLLOUT" $args 2>&1); rc=$?
	check_eq "rollout $args exits 0" "$rc" 0
done
out=$("$ROLLOUT" datasets download --help)
check_contains "download --help names the cache" "$out" '$XDG_CACHE_HOME/rollout/tasks'
check_contains "download --help names -o" "$out" "-o, --output-dir DIR"

usage() { # usage NAME ARGS...: exit 2
	local name=$1 out rc; shift
	out=$("$ROLLOUT" "$@" 2>&1); rc=$?
	if [ "$rc" = 2 ]; then ok "$name"; else not_ok "$name" "exit $rc" "$out"; fi
}
usage "no subcommand" datasets
usage "unknown subcommand" datasets frobnicate
usage "list without a registry" datasets list
usage "list with both registries" datasets list --registry-path "$REG" --registry-url "file://$REG"
usage "list with an argument" datasets list --registry-path "$REG" extra
usage "download without NAME" datasets download --registry-path "$REG"
usage "download without a registry" datasets download demo
usage "download with a bad -l" datasets download demo -l 0 --registry-path "$REG"
usage "download with an unknown flag" datasets download demo --frob --registry-path "$REG"
usage "download with an empty version" datasets download demo@ --registry-path "$REG"
usage "download with a flag missing its value" datasets download demo --registry-path
out=$("$ROLLOUT" datasets list 2>&1)
check_contains "no registry: says how to get one" "$out" "download its registry.json"

# --- list ---------------------------------------------------------------------
out=$("$ROLLOUT" datasets list --registry-path "$REG" 2>&1); rc=$?
check_eq "list exits 0" "$rc" 0
check_eq "list: header and one line per dataset" "$(printf '%s\n' "$out" | wc -l | tr -d ' ')" 6
check_eq "list: header" "$(printf '%s\n' "$out" | head -1)" "NAME    VERSION  TASKS  DESCRIPTION"
check_contains "list: demo 1.0" "$out" "demo    1.0          3  pinned to the first commit"
check_contains "list: broken" "$out" "broken  1            4  tasks that cannot be fetched"
out2=$("$ROLLOUT" datasets list --registry-url "file://$REG" 2>&1)
check_eq "list --registry-url file:// reads the same" "$out2" "$out"
out=$("$ROLLOUT" datasets list --registry-path testdata/registry/invalid/fields.json 2>&1); rc=$?
check_eq "list of a malformed registry exits 1" "$rc" 1
check_contains "malformed registry: FILE:LINE" "$out" \
	"testdata/registry/invalid/fields.json:13: key '[2].tasks[0].git_commit_id': expected a full commit hash (40 hex digits), got \"abc1234\""
check_contains "malformed registry: every problem" "$out" \
	"testdata/registry/invalid/fields.json:27: key '[3]': dataset demo@1.0 is also defined on line 7"
out=$("$ROLLOUT" datasets list --registry-path testdata/registry/invalid/syntax.json 2>&1); rc=$?
check_eq "list of invalid JSON exits 1" "$rc" 1
check_contains "invalid JSON: line and column" "$out" "testdata/registry/invalid/syntax.json:6:27:"
# An https registry: a local TLS server (python3) with a certificate from a CA
# made here, trusted through SSL_CERT_FILE.
if command -v openssl >/dev/null && command -v python3 >/dev/null; then
	P=$T/pki && mkdir -p "$P/www"
	{
		openssl req -x509 -newkey rsa:2048 -nodes -keyout "$P/ca.key" -out "$P/ca.crt" -days 2 \
			-subj /CN=test-CA -addext basicConstraints=critical,CA:TRUE &&
			openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$P/srv.key" \
				-out "$P/srv.csr" -subj /CN=localhost &&
			printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$P/srv.ext" &&
			openssl x509 -req -in "$P/srv.csr" -CA "$P/ca.crt" -CAkey "$P/ca.key" -CAcreateserial \
				-days 2 -out "$P/srv.crt" -extfile "$P/srv.ext"
	} >"$P/log" 2>&1 || not_ok "make the test CA" "$(cat "$P/log")"
	# Only the datasets of git tasks: relative local paths are refused from a URL.
	python3 -c 'import json, sys; r = json.load(open(sys.argv[1])); json.dump([d for d in r if all("git_url" in t for t in d["tasks"])], open(sys.argv[2], "w"), indent=1)' \
		"$REG" "$P/www/registry.json"
	cat >"$P/serve.py" <<'EOF'
import http.server, os, ssl, sys
d, cert, key, portfile = sys.argv[1:5]
class H(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def __init__(self, *a, **k): super().__init__(*a, directory=d, **k)
    def log_message(self, *a): pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
c.load_cert_chain(cert, key)
s.socket = c.wrap_socket(s.socket, server_side=True)
open(portfile + ".tmp", "w").write(str(s.server_address[1]))
os.rename(portfile + ".tmp", portfile)
s.serve_forever()
EOF
	python3 "$P/serve.py" "$P/www" "$P/srv.crt" "$P/srv.key" "$P/port" &
	srv=$!
	# Wait for the port file (or the server's death), checking every 50 ms.
	for _ in $(seq 400); do { [ -s "$P/port" ] || ! kill -0 $srv 2>/dev/null; } && break; sleep 0.05; done
	port=$(cat "$P/port" 2>/dev/null)
	want=$("$ROLLOUT" datasets list --registry-path "$P/www/registry.json" 2>&1)
	out=$(SSL_CERT_FILE=$P/ca.crt SSL_CERT_DIR= "$ROLLOUT" datasets list --registry-url "https://localhost:$port/registry.json" 2>&1); rc=$?
	check_eq "https registry (SSL_CERT_FILE): exit 0" "$rc" 0
	check_eq "https registry: the same list as the file" "$out" "$want"
	out=$(SSL_CERT_FILE=$P/ca.crt SSL_CERT_DIR= "$ROLLOUT" datasets list --registry-url "https://127.0.0.1:$port/registry.json" 2>&1); rc=$?
	check_eq "https registry by IP address (IP SAN)" "$rc:$out" "0:$want"
	out=$(SSL_CERT_FILE=$P/srv.crt SSL_CERT_DIR= "$ROLLOUT" datasets list --registry-url "https://localhost:$port/registry.json" 2>&1); rc=$?
	check_eq "https registry with an unknown CA exits 1" "$rc" 1
	check_contains "... naming host, port and the reason" "$out" "TLS handshake with localhost:$port: certificate rejected: The certificate is not correctly signed by the trusted CA"
	kill $srv 2>/dev/null; wait $srv 2>/dev/null
else
	skip "https registry" "openssl or python3 missing"
fi
check_eq "nothing ran git so far" "$(calls)" 0

# --- download: pinned, cached, reused -----------------------------------------
out=$("$ROLLOUT" datasets download demo@1.0 --registry-path "$REG" 2>"$T/err"); rc=$?
check_eq "download demo@1.0 exits 0" "$rc" 0
check_eq "download: one line per task" "$(printf '%s\n' "$out" | cut -f1 | tr '\n' ' ')" "hello count other "
hello=$(printf '%s\n' "$out" | awk -F'\t' '$1 == "hello" {print $2}')
count=$(printf '%s\n' "$out" | awk -F'\t' '$1 == "count" {print $2}')
case "$hello" in "$ROLLOUT_TASK_CACHE"/*/hello) ok "download: tasks land in the cache" ;;
*) not_ok "download: tasks land in the cache" "$hello" ;; esac
check_eq "demo@1.0 hello is the C1 version" "$(instr "$hello")" "hello v1"
check_eq "demo@1.0 count is the C1 version" "$(instr "$count")" "count v1"
check_contains "download: summary" "$(cat "$T/err")" "demo@1.0: 3 tasks (3 fetched, 0 already there)"
check_eq "one clone for the three tasks" "$(clones)" 1
check "the fetched task is a valid task" "$ROLLOUT" tasks check "$hello"
ino=$(stat -c %i "$hello")

n=$(calls)
out2=$("$ROLLOUT" datasets download demo@1.0 --registry-path "$REG" 2>"$T/err"); rc=$?
check_eq "second download exits 0" "$rc" 0
check_eq "second download: same directories" "$out2" "$out"
check_eq "second download: git did not run at all" "$(calls)" "$n"
check_eq "second download: the entry was not rewritten" "$(stat -c %i "$hello")" "$ino"
check_contains "second download: summary" "$(cat "$T/err")" "(0 fetched, 3 already there)"

mv "$T/fx/repo" "$T/fx/repo.away"
check "pinned tasks need no repository once cached" "$ROLLOUT" datasets download demo@1.0 --registry-path "$REG"
out=$("$ROLLOUT" datasets download demo@1.0 --overwrite --registry-path "$REG" 2>&1); rc=$?
check_eq "--overwrite fetches again (and fails without the repository)" "$rc" 1
check_contains "--overwrite without the repository: git's reason" "$out" "does not appear to be a git repository"
mv "$T/fx/repo.away" "$T/fx/repo"
check_eq "the failed fetch kept the cached copy" "$(instr "$hello")" "hello v1"

# --- pinned commits are exact ------------------------------------------------
out=$("$ROLLOUT" datasets download demo@2.0 --registry-path "$REG" 2>/dev/null)
h2=$(printf '%s\n' "$out" | awk -F'\t' '$1 == "hello" {print $2}')
c2=$(printf '%s\n' "$out" | awk -F'\t' '$1 == "count" {print $2}')
check_eq "demo@2.0 hello is the C2 version" "$(instr "$h2")" "hello v2"
check_eq "demo@2.0 count is still v1 at C2" "$(instr "$c2")" "count v1"
check_eq "demo@2.0 records its commit" "$(sed -n 's/.*"commit": "\(.*\)".*/\1/p' "$(dirname "$h2")/fetch.json")" "$C2"
[ ! -e "$h2/.git" ] && ok "no .git in a fetched task" || not_ok "no .git in a fetched task"

# --- HEAD tasks ----------------------------------------------------------------
before=$(clones)
out=$("$ROLLOUT" datasets download demo --registry-path "$REG" 2>"$T/err"); rc=$?
check_eq "download demo (head) exits 0" "$rc" 0
check_contains "no version means head" "$(cat "$T/err")" "demo@head: 3 tasks"
hh=$(printf '%s\n' "$out" | awk -F'\t' '$1 == "hello" {print $2}')
check_eq "head: hello at C3" "$(instr "$hh")" "hello v2"
check_eq "head: count at C3" "$(instr "$(printf '%s\n' "$out" | awk -F'\t' '$1 == "count" {print $2}')")" "count v2"
check_eq "head: one clone" "$(clones)" $((before + 1))
before=$(clones)
out2=$("$ROLLOUT" datasets download demo --registry-path "$REG" 2>/dev/null)
check_eq "head unchanged: same directories" "$out2" "$out"
check_eq "head unchanged: no clone" "$(clones)" "$before"
check_eq "head unchanged: one ls-remote" "$(tail -1 "$GITLOG" | cut -d' ' -f1)" "ls-remote"
(cd "$T/fx/repo" && printf 'hello v3\n' >tasks/hello/instruction.md && git commit -qam v3)
out3=$("$ROLLOUT" datasets download demo --registry-path "$REG" 2>/dev/null)
hh3=$(printf '%s\n' "$out3" | awk -F'\t' '$1 == "hello" {print $2}')
check_eq "head moved: fetched again" "$(clones)" $((before + 1))
check_eq "head moved: the new hello" "$(instr "$hh3")" "hello v3"
check_eq "head moved: the old copy is intact" "$(instr "$hh")" "hello v2"

# --- flat downloads, filters --------------------------------------------------
out=$("$ROLLOUT" datasets download demo@2.0 -o "$T/flat" --registry-path "$REG" 2>/dev/null); rc=$?
check_eq "-o exits 0" "$rc" 0
check_eq "-o prints the flat paths" "$(printf '%s\n' "$out" | cut -f2 | tr '\n' ' ')" \
	"$T/flat/hello $T/flat/count $T/flat/late "
check_eq "-o: the directory holds the tasks" "$(ls "$T/flat" | tr '\n' ' ')" "count hello late "
check "-o: the tasks are valid" "$ROLLOUT" tasks check "$T/flat"
out=$("$ROLLOUT" datasets download mixed -o "$T/flat2" --registry-path "$REG" 2>/dev/null)
check_eq "-o copies local tasks too" "$(instr "$T/flat2/alpha")" "alpha v1"
out=$("$ROLLOUT" datasets download mixed --registry-path "$REG" 2>/dev/null)
check_eq "without -o a local task stays where it is" "$(printf '%s\n' "$out" | head -1 | cut -f2)" "$T/fx/local/alpha"

out=$("$ROLLOUT" datasets download demo@2.0 -t 'h*' -t late --registry-path "$REG" 2>/dev/null)
check_eq "-t keeps matching tasks" "$(printf '%s\n' "$out" | cut -f1 | tr '\n' ' ')" "hello late "
out=$("$ROLLOUT" datasets download demo@2.0 -x count -l 1 --registry-path "$REG" 2>/dev/null)
check_eq "-x then -l" "$(printf '%s\n' "$out" | cut -f1 | tr '\n' ' ')" "hello "
out=$("$ROLLOUT" datasets download demo@2.0 -t 'nope*' --registry-path "$REG" 2>&1); rc=$?
check_eq "a pattern matching nothing exits 1" "$rc" 1
check_contains "a pattern matching nothing says so" "$out" "task name pattern 'nope*' matches no task in demo (hello, count, late)"

# --- errors --------------------------------------------------------------------
fails() { # fails NAME WANT ARGS...: exit 1 and the message
	local name=$1 want=$2 out rc; shift 2
	out=$("$ROLLOUT" "$@" 2>&1); rc=$?
	if [ "$rc" = 1 ]; then ok "$name: exit 1"; else not_ok "$name: exit 1" "exit $rc" "$out"; fi
	check_contains "$name: message" "$out" "$want"
}
fails "unknown dataset" "no dataset 'nope' in $REG (it has: demo, mixed, broken)" \
	datasets download nope --registry-path "$REG"
fails "unknown version" "dataset 'demo' has no version '9' in $REG (versions: 1.0, 2.0, head)" \
	datasets download demo@9 --registry-path "$REG"
fails "missing repository" "no-such-repo' does not appear to be a git repository" \
	datasets download broken -t no-repo --registry-path "$REG"
fails "commit not in the repository" "commit 0123456789abcdef0123456789abcdef01234567 of file://$T/fx/repo: git fetch" \
	datasets download broken -t no-commit --registry-path "$REG"
fails "path not in the commit" "file://$T/fx/repo has no directory 'tasks/late' at commit $C1" \
	datasets download broken -t no-path --registry-path "$REG"
fails "missing local task" "task no-local: local path $T/fx/local/missing is not a directory" \
	datasets download broken -t no-local --registry-path "$REG"
fails "missing registry file" "$T/nope.json: No such file or directory" \
	datasets download demo --registry-path "$T/nope.json"
check_eq "failed downloads leave no temp dirs" "$(leftovers)" 0
out=$(PATH=/nonexistent "$ROLLOUT" datasets download demo@1.0 --overwrite --registry-path "$REG" 2>&1); rc=$?
check_eq "no git: exit 1" "$rc" 1
check_contains "no git: says so" "$out" "git is not installed (no 'git' in PATH)"

# --- concurrent downloads share one clone ------------------------------------
export ROLLOUT_TASK_CACHE=$T/cache2
before=$(clones)
for i in 1 2 3; do
	"$ROLLOUT" datasets download demo@2.0 --registry-path "$REG" >"$T/par$i.out" 2>"$T/par$i.err" &
done
rcs=""
for j in $(jobs -p); do wait "$j"; rcs="$rcs$? "; done
check_eq "three concurrent downloads succeed" "$rcs" "0 0 0 "
check_eq "three concurrent downloads: one clone" "$(clones)" $((before + 1))
check_eq "concurrent downloads agree" "$(cat "$T/par1.out" "$T/par2.out" | sort -u | wc -l | tr -d ' ')" 3
check_eq "concurrent downloads: no temp dirs" "$(leftovers)" 0

# --- Ctrl-C during a fetch ----------------------------------------------------
export ROLLOUT_TASK_CACHE=$T/cache3
mkdir -p "$T/hang"
cat >"$T/hang/git" <<EOF
#!/bin/sh
echo \$\$ >"$T/hang/pid"
sleep 300 &
echo \$! >"$T/hang/child"
wait
EOF
chmod +x "$T/hang/git"
PATH="$T/hang:$PATH" "$ROLLOUT" datasets download demo@1.0 --registry-path "$REG" >/dev/null 2>"$T/int.err" &
rpid=$!
for i in $(seq 100); do [ -s "$T/hang/child" ] && break; sleep 0.1; done
kill -INT "$rpid"
wait "$rpid"; rc=$?
check_eq "Ctrl-C during git exits 130" "$rc" 130
gpid=$(cat "$T/hang/pid" 2>/dev/null) cpid=$(cat "$T/hang/child" 2>/dev/null)
for i in $(seq 50); do
	alive=0
	for p in $gpid $cpid; do
		st=$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null)
		[ -n "$st" ] && [ "$st" != Z ] && alive=1
	done
	[ $alive = 0 ] && break
	sleep 0.1
done
check_eq "Ctrl-C: git and its children are gone" "$alive" 0
check_eq "Ctrl-C: no temp dirs" "$(leftovers)" 0
[ -z "$(find "$ROLLOUT_TASK_CACHE" -mindepth 1 -maxdepth 1 ! -name '.*')" ] &&
	ok "Ctrl-C: no half entry in the cache" || not_ok "Ctrl-C: no half entry in the cache"

done_testing
