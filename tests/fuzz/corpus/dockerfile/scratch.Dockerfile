# FROM scratch: only what is copied.
FROM scratch
COPY rootfs/ /
ENV PATH=/bin
CMD ["/bin/hello"]
