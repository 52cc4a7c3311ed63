#!/usr/bin/env bash
# bench.sh — `make bench`: deid in file mode against the same job as DuckDB
# SQL and against the decode limit, and deid in Kafka mode against a bare
# kafka-go consumer, on one cached seeded input (2 M events in 2 partitions
# by default, generated once under .cache/bench/), 3 runs each,
# alternating. Prints medians with min–max and writes the figures as JSON
# under bench/results/ (both git-ignored). It measures; it never fails on
# time. Arguments go to deid-bench, e.g.:
#
#   scripts/bench.sh                          the default comparison
#   scripts/bench.sh --reps 5 --events 4000000
#   scripts/bench.sh --partitions 1 --skip-duckdb --skip-kafka
#   scripts/bench.sh --memory-scale 10        also deid on 10× the events (generated; repeated)
#   scripts/bench.sh --deid-alt /tmp/deid     a patched build, alternating
#   scripts/bench.sh --skip-s3                without deid writing to s3://
#   scripts/bench.sh --help
#
# Kafka mode runs against the local broker of scripts/kafka-local.sh (on
# 127.0.0.1, jars cached under .cache/kafka): this script starts it when it
# is not running, and then stops it at the end; a broker that was already
# running is left running. --skip-kafka leaves Kafka mode out, and
# --brokers names another broker on 127.0.0.1 instead.
#
# deid also writes its output to s3:// on the local S3 server of
# scripts/s3-local.sh (a bucket per run, emptied after each rep), beside a
# directory: the row "deid (file mode, s3:// out)" and its ratio. This
# script starts the server when it is not running, and stops it at the
# end; --skip-s3 leaves it out, --s3-endpoint names another server.
#
# DuckDB runs in .cache/venv (Python, PyPI wheels cached in .cache/pip):
# scripts/pyenv.sh makes it when present; otherwise, or when its duckdb is
# not the pin of scripts/requirements-bench.txt, this script installs that
# pin the same way. --skip-duckdb needs no Python at all.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
GO="${GO:-go}"
venv="$root/.cache/venv"
wheels="$root/.cache/pip/wheels"
req="$root/scripts/requirements-bench.txt"
python="${PYTHON:-python3}"

skip_duckdb=false
local_kafka=true
local_s3=true
# The local servers this script started, stopped at the end.
started=()
trap 'for s in ${started[@]+"${started[@]}"}; do bash "$s" stop || true; done' EXIT
for a in "$@"; do
	case "$a" in
	--skip-duckdb) skip_duckdb=true ;;
	--skip-kafka | --brokers | --brokers=*) local_kafka=false ;;
	--skip-s3 | --s3-endpoint | --s3-endpoint=*) local_s3=false ;;
	--help | -h) skip_duckdb=true local_kafka=false local_s3=false ;;
	esac
done

mkdir -p bin
version="$(git describe --tags --always --dirty 2>/dev/null || echo dev)"
"$GO" build -ldflags "-X main.version=$version" -o bin/deid ./cmd/deid
"$GO" build -o bin/deid-bench ./cmd/deid-bench

if ! $skip_duckdb; then
	if [ -x scripts/pyenv.sh ]; then
		scripts/pyenv.sh
	fi
	pin="$(grep -E '^duckdb==' "$req" | cut -d= -f3)"
	have="$("$venv/bin/python" -c 'import duckdb; print(duckdb.__version__)' 2>/dev/null || true)"
	if [ "$have" != "$pin" ]; then
		echo "bench: installing duckdb $pin into $venv"
		[ -x "$venv/bin/python" ] || "$python" -m venv --without-pip "$venv"
		pip=("$python" -m pip --python "$venv/bin/python")
		mkdir -p "$wheels"
		export PIP_DISABLE_PIP_VERSION_CHECK=1
		if ! "${pip[@]}" install --quiet --no-index --find-links "$wheels" -r "$req" 2>/dev/null; then
			"${pip[@]}" download --quiet --only-binary=:all: --dest "$wheels" -r "$req"
			"${pip[@]}" install --quiet --no-index --find-links "$wheels" -r "$req"
		fi
	fi
fi

if $local_kafka; then
	# Stop the broker afterwards only if this script started it.
	if ! bash scripts/kafka-local.sh status >/dev/null 2>&1; then
		bash scripts/kafka-local.sh start
		started+=(scripts/kafka-local.sh)
	fi
	eval "$(bash scripts/kafka-local.sh env)"
fi

if $local_s3; then
	# Stop the server afterwards only if this script started it.
	if ! bash scripts/s3-local.sh status >/dev/null 2>&1; then
		bash scripts/s3-local.sh start
		started+=(scripts/s3-local.sh)
	fi
	eval "$(bash scripts/s3-local.sh env)"
fi

bin/deid-bench "$@"
