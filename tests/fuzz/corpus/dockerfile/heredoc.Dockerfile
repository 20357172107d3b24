# syntax=docker/dockerfile:1
# Heredocs (BuildKit syntax). dockerd 20.10's BuildKit predates them, so the
# comparison builds Dockerfile.docker, the same image written without heredocs.
FROM rollout-test/busybox:1
ARG WHO=world
RUN <<EOF
echo "hello $WHO" > /hello
mkdir -p /scripts
EOF
RUN <<-EOT sh
	echo tabs stripped > /tabs
	EOT
RUN cat <<A > /a.txt && cat <<"B" > /b.txt
first $WHO
A
second $WHO
B
RUN <<'SCRIPT'
#!/bin/sh
echo "from a script: $0" > /script-out
SCRIPT
COPY <<EOF /etc/greeting
greeting for ${WHO}
EOF
COPY --chmod=755 <<'EOF' <<-"E2" /scripts/
#!/bin/sh
echo $HOME
EOF
	indented
	E2
