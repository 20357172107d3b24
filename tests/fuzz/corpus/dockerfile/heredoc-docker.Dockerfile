# What heredoc/Dockerfile means, without heredocs (for dockerd 20.10's BuildKit).
FROM rollout-test/busybox:1
ARG WHO=world
RUN echo "hello $WHO" > /hello && mkdir -p /scripts
RUN echo tabs stripped > /tabs
RUN printf 'first %s\n' "$WHO" > /a.txt && printf 'second $WHO\n' > /b.txt
RUN echo "from a script: /dev/pipes/SCRIPT" > /script-out
COPY heredoc-greeting /etc/greeting
COPY --chmod=755 heredoc-EOF /scripts/EOF
COPY --chmod=755 heredoc-E2 /scripts/E2
