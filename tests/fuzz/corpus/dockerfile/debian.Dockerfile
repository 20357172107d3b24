# A real distribution: users, packages' files, python, deletions.
FROM rollout-test/debian:1
RUN useradd -m -u 1234 -s /bin/bash builder && \
    python3 -c "import json; json.dump({'ok': True}, open('/etc/built.json', 'w'))" && \
    rm -rf /usr/share/doc/python3* && mkdir -p /srv/data && chown builder: /srv/data
USER builder
WORKDIR /srv/data
RUN python3 -c "open('made-by-builder', 'w').write('hi')" && ln -s made-by-builder link
USER root
ENV DEBIAN_FRONTEND=noninteractive
CMD ["python3", "-c", "print('hello')"]
