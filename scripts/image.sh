#!/usr/bin/env bash
# deid's container image, built with podman (no daemon, no registry):
#
#   bash scripts/image.sh          build the image deid:<version> and deid:latest
#   bash scripts/image.sh podman   only make sure podman is installed
#
# The Dockerfile's only stage is FROM scratch, so nothing is pulled: this
# script builds the static binary on the host with the repository's Go
# toolchain, lays out the build context the Dockerfile describes (binary, CA
# certificates, the unprivileged user, an empty /tmp) in a temporary
# directory, and runs `podman build` there.
#
# Environment:
#   DEID_IMAGE          image name (default deid)
#   VERSION             version stamped into the binary and the tags (default: git describe)
#   GOARCH              target architecture (default: the host's)
#   DEID_IMAGE_CONTEXT  lay out the build context in this directory and keep it
#   CONTAINER_TOOL      podman (default) or docker, for a machine that has docker
#
# podman is Debian's package: when it is missing, it is installed with
# apt-get (root), the downloaded packages kept under .cache/apt.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

ensure_podman() {
  if command -v podman >/dev/null 2>&1; then
    return 0
  fi
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "image.sh: podman is missing; install it (Debian and Ubuntu: apt-get install podman) or set CONTAINER_TOOL=docker" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  local archives="$PWD/.cache/apt/archives"
  mkdir -p "$archives/partial"
  local install=(apt-get install -y -qq --no-install-recommends -o "Dir::Cache::Archives=$archives" podman)
  # A package list too old to have podman, or one whose files have moved
  # on, gets one update and one more try.
  if ! apt-cache policy podman 2>/dev/null | grep -q 'Candidate: [0-9]' || ! "${install[@]}" >/dev/null; then
    apt-get update -qq
    "${install[@]}" >/dev/null
  fi
  command -v podman >/dev/null
}

tool="${CONTAINER_TOOL:-podman}"
if [ "$tool" = podman ]; then
  ensure_podman
fi
if [ "${1:-}" = podman ]; then
  exit 0
fi
if [ $# -gt 0 ]; then
  echo "usage: scripts/image.sh [podman]" >&2
  exit 2
fi

image="${DEID_IMAGE:-deid}"
version="${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}"
# A tag takes letters, digits, '_', '.' and '-'.
tag="$(printf '%s' "$version" | tr -c 'A-Za-z0-9_.-' '-')"

certs=/etc/ssl/certs/ca-certificates.crt
if [ ! -s "$certs" ]; then
  echo "image.sh: $certs is missing: the image needs CA certificates for TLS (Debian: apt-get install ca-certificates)" >&2
  exit 1
fi

if [ -n "${DEID_IMAGE_CONTEXT:-}" ]; then
  ctx="$DEID_IMAGE_CONTEXT"
  rm -rf "$ctx"
  mkdir -p "$ctx"
else
  ctx="$(mktemp -d)"
  trap 'rm -rf "$ctx"' EXIT
fi

CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=$version" -o "$ctx/deid" ./cmd/deid

mkdir -p "$ctx/rootfs/etc/ssl/certs" "$ctx/rootfs/etc/deid" "$ctx/rootfs/tmp" "$ctx/rootfs/var/lib" "$ctx/rootfs/data" "$ctx/writable"
chmod 0755 "$ctx/rootfs" "$ctx/rootfs/etc" "$ctx/rootfs/etc/ssl" "$ctx/rootfs/etc/ssl/certs" "$ctx/rootfs/etc/deid" "$ctx/rootfs/var" "$ctx/rootfs/var/lib" "$ctx/rootfs/data"
cp "$certs" "$ctx/rootfs/etc/ssl/certs/ca-certificates.crt"
chmod 0644 "$ctx/rootfs/etc/ssl/certs/ca-certificates.crt"
chmod 1777 "$ctx/rootfs/tmp"
printf 'root:x:0:0:root:/:/sbin/nologin\ndeid:x:65532:65532:deid:/var/lib/deid:/sbin/nologin\n' >"$ctx/rootfs/etc/passwd"
printf 'root:x:0:\ndeid:x:65532:\n' >"$ctx/rootfs/etc/group"
chmod 0644 "$ctx/rootfs/etc/passwd" "$ctx/rootfs/etc/group"
cp Dockerfile "$ctx/Dockerfile"

"$tool" build --quiet --build-arg "VERSION=$version" -t "$image:$tag" -t "$image:latest" "$ctx" >/dev/null
echo "built $image:$tag ($image:latest), version $version"
