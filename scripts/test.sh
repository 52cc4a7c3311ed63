#!/usr/bin/env bash
# The whole test suite, as `make test` and CI run it: starts what the tests
# need (a real Kafka broker on 127.0.0.1, the Python read-back virtualenv,
# headless Chromium), requires them so that nothing skips silently, runs
# every Go test with the race detector (then the allocation tests without
# it), and stops the broker.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Stop the broker afterwards only if this script started it.
if ! bash scripts/kafka-local.sh status >/dev/null 2>&1; then
  bash scripts/kafka-local.sh start
  trap 'bash scripts/kafka-local.sh stop || true' EXIT
fi
eval "$(bash scripts/kafka-local.sh env)"
export DEID_REQUIRE_KAFKA=1

# The S3-compatible server (versitygw) for sinks/objstore, likewise: started
# only if not running, stopped on exit (then the exit trap set above runs).
if ! bash scripts/s3-local.sh status >/dev/null 2>&1; then
  bash scripts/s3-local.sh start
  eval "set -- $(trap -p EXIT)"
  s3_prev_trap="${3:-}"
  trap 'bash scripts/s3-local.sh stop || true; eval "$s3_prev_trap"' EXIT
fi
eval "$(bash scripts/s3-local.sh env)"
export DEID_REQUIRE_S3=1

if [ -f scripts/pyenv.sh ]; then
  bash scripts/pyenv.sh
  export DEID_PYTHON="$PWD/.cache/venv/bin/python" DEID_REQUIRE_PYTHON=1
fi
if [ -f scripts/chromium.sh ]; then
  bash scripts/chromium.sh
  export DEID_REQUIRE_CHROMIUM=1
fi
# podman builds and inspects the container image (Debian's package).
bash scripts/image.sh podman
export DEID_REQUIRE_PODMAN=1

# The full suite: -short would skip the end-to-end, crash and broker tests.
case " ${GOFLAGS:-} " in
  *" -short "*|*" -test.short "*) echo "scripts/test.sh: GOFLAGS has -short; the full suite runs without it" >&2; exit 2 ;;
esac
go test -race -count=1 -timeout 30m ./...
# The race detector allocates, so the zero-allocation tests skip under it:
# run them again without it.
go test -count=1 -run 'Alloc' ./...
# The deployment files (deploy/, a module of its own, so that the Kubernetes
# API types stay out of deid's): manifests, compose file and configs checked
# offline, and the image built with podman.
(cd deploy && go test -count=1 -timeout 20m ./...)
