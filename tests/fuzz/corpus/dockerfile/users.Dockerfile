# USER and ownership: RUN as another user, WORKDIR created for the user, names
# resolved in the image's /etc/passwd and /etc/group.
FROM rollout-test/busybox:1
RUN mkdir -p /home/app && chown 1000:1000 /home/app && \
    echo "app:x:1000:1000:app:/home/app:/bin/sh" >> /etc/passwd && \
    echo "app:x:1000:" >> /etc/group
USER app
WORKDIR /home/app/work
RUN echo "$(id -u):$(id -g)" > whoami && touch /tmp/by-app
COPY --chown=app:app owned.txt /home/app/
USER 0
RUN chown -R 1000:1000 /home/app/work && echo root-again > /root-file
USER app:app
