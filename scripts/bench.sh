#!/usr/bin/env bash
# bench.sh — `make bench`: deid in file mode against the same job as DuckDB
# SQL and against the decode limit, on one cached seeded input (2 M events in
# 2 partitions by default, generated once under .cache/bench/), 3 runs each,
# alternating. Prints medians with min–max and writes the figures as JSON
# under bench/results/ (both git-ignored). It measures; it never fails on
# time. Arguments go to deid-bench, e.g.:
#
#   scripts/bench.sh                          the default comparison
#   scripts/bench.sh --reps 5 --events 4000000
#   scripts/bench.sh --partitions 1 --skip-duckdb
#   scripts/bench.sh --memory-scale 10        also deid on 10× the events
#   scripts/bench.sh --deid-alt /tmp/deid     a patched build, alternating
#   scripts/bench.sh --help
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
for a in "$@"; do
	[ "$a" = "--skip-duckdb" ] && skip_duckdb=true
	[ "$a" = "--help" ] || [ "$a" = "-h" ] && skip_duckdb=true
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

exec bin/deid-bench "$@"
