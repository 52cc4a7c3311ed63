# deid's container image: the static binary on an empty base.
#
#   bash scripts/image.sh        # or: make image
#
# The only stage is FROM scratch, so the build pulls nothing from a registry.
# scripts/image.sh builds the binary on the host (CGO_ENABLED=0, -trimpath)
# and lays out the build context this file expects:
#
#   deid                                   the static binary
#   rootfs/etc/ssl/certs/ca-certificates.crt   CA certificates (TLS to brokers and object stores)
#   rootfs/etc/passwd, rootfs/etc/group    the unprivileged user deid, 65532:65532
#   rootfs/tmp                             an empty /tmp (mode 1777)
#   rootfs/etc/deid, rootfs/var/lib, rootfs/data   root-owned parents
#   writable/                              an empty directory, copied as the state
#                                          and output directories, owned by 65532
#
# The image runs as 65532:65532, never root. /var/lib/deid (state_dir) and
# /data/deid (out) belong to that user, so a fresh volume mounted there is
# writable too. The configuration is read from /etc/deid/deid.yaml: mount it
# (a ConfigMap, a bind mount). Probes: GET /healthz (alive) and /readyz
# (consent caught up, partitions assigned) on http_addr, 9090 below; an OCI
# image has no HEALTHCHECK, so the orchestrator's probes use those.
FROM scratch

ARG VERSION=dev
LABEL org.opencontainers.image.title="deid" \
      org.opencontainers.image.description="Event streams to k-anonymous, aggregated Parquet training datasets, with a verifiable exclusion log" \
      org.opencontainers.image.version="${VERSION}"

COPY rootfs/ /
COPY --chown=65532:65532 writable/ /var/lib/deid/
COPY --chown=65532:65532 writable/ /data/deid/
COPY deid /deid

USER 65532:65532
# Relative paths in the configuration (hierarchy tables) are read beside it.
WORKDIR /etc/deid
# http_addr: /metrics, /healthz, /readyz.
EXPOSE 9090
ENTRYPOINT ["/deid"]
CMD ["run", "--config", "/etc/deid/deid.yaml"]
