# Deletions become whiteouts: files and directories removed, a directory removed
# and made again (opaque), a file replaced by a directory, renames.
FROM rollout-test/busybox:1
RUN mkdir -p /data/keep /data/gone /data/opaque/old && echo 1 > /data/file && \
    echo 2 > /data/opaque/old/x && echo 3 > /data/keep/y && echo 4 > /data/to-dir
RUN rm -rf /data/gone /data/file /bin/vi && rm -rf /data/opaque && \
    mkdir -p /data/opaque/new && echo n > /data/opaque/new/z && \
    rm /data/to-dir && mkdir /data/to-dir && mv /data/keep /data/moved && \
    ln /data/moved/y /data/hardlink && chmod 0700 /data/moved
