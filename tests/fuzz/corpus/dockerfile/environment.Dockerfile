# Debian bookworm minbase with python3 and pytest, built locally by
# tests/lib/fixtures.sh (no registry needed).
FROM rollout-test/debian:1
WORKDIR /app
