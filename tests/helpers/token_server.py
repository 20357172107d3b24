#!/usr/bin/env python3
"""A Bearer token server for rollout's tests (tests/unit/test_regauth.c).

Listens on 127.0.0.1 (port 0: any free port; the port is printed on the first
line of stdout). GET /token?service=S&scope=A&scope=B answers
{"token": ..., "expires_in": N} -- the token is opaque text naming the caller
("anon" or the Basic user), the service and the scopes, so tests can check what
was asked. Basic credentials other than alice:s3cret get 401.
/access_token answers with "access_token" only (some servers do).
POST /token (grant_type=refresh_token) accepts refresh_token "refresh-ok" only.
/count answers how many token requests were served. Runs until stdin closes.
"""
import base64
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

USERS = {"alice": "s3cret"}
COUNT = [0]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def caller(self):
        auth = self.headers.get("Authorization")
        if not auth:
            return "anon"
        if not auth.startswith("Basic "):
            return None
        user, _, pw = base64.b64decode(auth[6:]).decode().partition(":")
        return user if USERS.get(user) == pw else None

    def do_GET(self):
        url = urlsplit(self.path)
        q = parse_qs(url.query)
        if url.path == "/count":
            return self.reply(200, {"count": COUNT[0]})
        COUNT[0] += 1
        who = self.caller()
        if who is None:
            return self.reply(401, {"details": "bad credentials"})
        tok = "%s|%s|%s" % (who, ",".join(q.get("service", [])), " ".join(q.get("scope", [])))
        if url.path == "/access_token":
            return self.reply(200, {"access_token": tok})
        if url.path == "/token":
            return self.reply(200, {"token": tok, "expires_in": 300})
        self.reply(404, {})

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        form = parse_qs(self.rfile.read(n).decode())
        COUNT[0] += 1
        if urlsplit(self.path).path != "/token":
            return self.reply(404, {})
        if form.get("grant_type") != ["refresh_token"] or form.get("refresh_token") != ["refresh-ok"]:
            return self.reply(401, {})
        tok = "refresh|%s|%s" % (",".join(form.get("service", [])), " ".join(form.get("scope", [])))
        self.reply(200, {"access_token": tok, "expires_in": 120})


def main():
    srv = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 0), Handler)
    srv.daemon_threads = True
    print(srv.server_address[1], flush=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    sys.stdin.read()  # the test closes its end: stop


if __name__ == "__main__":
    main()
