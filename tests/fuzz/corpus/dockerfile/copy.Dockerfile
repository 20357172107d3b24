# COPY semantics: directories, trailing slashes, globs, links, owners, modes,
# .dockerignore, hardlinks, existing destinations.
FROM rollout-test/busybox:1
RUN mkdir -p /existing && chmod 0700 /existing && chown 5:5 /existing && \
    mkdir -p /replace && echo old > /replace/file.txt
COPY src /new
COPY src /existing
COPY src/ /new2/
COPY --chown=7:8 src /chowned/deep/
COPY --chmod=640 src /chm
COPY --chown=9:10 f1.txt /p1/p2/f
COPY --chown=nobody:nogroup f2.txt /named/
COPY f*.txt /globbed/
COPY src/*/b.txt /globbed2/
COPY link1 /l1
COPY link1 /keep/
COPY f1.txt /etc
COPY f2.txt /replace/file.txt
COPY hard1 hard2 /hard/
COPY keepdir /keepdir/
WORKDIR /work
COPY f2.txt .
COPY f2.txt rel/
COPY . /all/
