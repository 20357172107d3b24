# Multi-stage: a build stage, COPY --from by name and by index, a stage built on
# another stage, and a stage the target does not need (never built).
FROM rollout-test/busybox:1 AS build
WORKDIR /src
COPY main.txt .
RUN mkdir -p /out/bin && cp main.txt /out/bin/app && chmod 0755 /out/bin/app && \
    ln -s app /out/bin/app-link && echo "built" > /out/stamp

FROM build AS test
RUN echo tested > /out/tested

FROM rollout-test/busybox:1 AS unused
RUN exit 1

FROM rollout-test/busybox:1
ENV PATH=/usr/local/bin:$PATH
COPY --from=build /out/bin/ /usr/local/bin/
COPY --from=1 /out/tested /tested
COPY --from=build --chown=1:2 /out/stamp /stamp
CMD ["app"]
