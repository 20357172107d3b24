# Metadata instructions, substitution, ARG scoping, RUN forms, continuations.
ARG BASE=rollout-test/busybox:1
ARG UNUSED_GLOBAL=g
FROM ${BASE} AS base
ARG VERSION=1.0
ARG FROM_CLI
ARG UNUSED_GLOBAL
ENV APP=/opt/app \
    # a comment inside a continuation

    VERSION_DIR=/opt/app/v${VERSION}
ENV LEGACY value with spaces
ENV QUOTED="a b" SINGLE='$APP' ESCAPED=\$APP DEFAULTED=${MISSING:-fallback} SET=${APP:+yes}
LABEL org.example.name="basic fixture" version=$VERSION
WORKDIR $APP
WORKDIR sub/dir
RUN echo "from cli: $FROM_CLI, global: $UNUSED_GLOBAL, version: $VERSION" > args.txt && \
    echo "$QUOTED|$SINGLE|$ESCAPED|$DEFAULTED|$SET|$LEGACY" > env.txt
RUN ["/bin/sh", "-c", "echo exec form > /opt/app/exec.txt"]
SHELL ["/bin/sh", "-e", "-c"]
RUN mkdir -p "$VERSION_DIR" && touch $VERSION_DIR/marker
EXPOSE 8080 53/udp 7000-7002
VOLUME ["/data"]
VOLUME /cache /logs2
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --retries=3 CMD wget -q -O- http://localhost:8080/ || exit 1
USER nobody
CMD echo "shell form cmd"
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["echo", "exec form cmd"]
