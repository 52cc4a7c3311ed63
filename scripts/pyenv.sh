#!/usr/bin/env bash
# pyenv.sh — the Python virtualenv for scripts/readback.py: .cache/venv with
# the pinned readers of scripts/requirements-readback.txt (pyarrow, pandas,
# polars, duckdb), installed from PyPI.
#
# Wheels are kept in .cache/pip/wheels and installed from there without the
# network when they are all present: pip's own HTTP cache is not used,
# because it silently stores nothing when the index's responses are not
# cacheable. A venv that already has exactly these pins (a stamp file
# records them) is left alone, so a warm run costs nothing.
#
#   scripts/pyenv.sh                     create or update .cache/venv
#   PYTHON=python3.12 scripts/pyenv.sh   use another interpreter
#
# The tests find the interpreter at .cache/venv/bin/python, or $DEID_PYTHON.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/.cache/venv"
wheels="$root/.cache/pip/wheels"
req="$root/scripts/requirements-readback.txt"
stamp="$venv/.requirements-readback.txt"
python="${PYTHON:-python3}"

if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && cmp -s "$req" "$stamp"; then
	echo "pyenv: $venv is up to date"
	exit 0
fi
# The venv gets no pip of its own (ensurepip takes half a minute here):
# the interpreter's pip installs into it with --python.
if [ ! -x "$venv/bin/python" ]; then
	"$python" -m venv --without-pip "$venv"
fi
export PIP_DISABLE_PIP_VERSION_CHECK=1
pip=("$python" -m pip --python "$venv/bin/python")
mkdir -p "$wheels"
if ! "${pip[@]}" install --quiet --no-index --find-links "$wheels" -r "$req" 2>/dev/null; then
	echo "pyenv: downloading wheels into $wheels"
	"${pip[@]}" download --quiet --only-binary=:all: --dest "$wheels" -r "$req"
	"${pip[@]}" install --quiet --no-index --find-links "$wheels" -r "$req"
fi
cp "$req" "$stamp"
"$venv/bin/python" - <<'PY'
import duckdb, pandas, polars, pyarrow
print("pyenv: pyarrow", pyarrow.__version__, "· pandas", pandas.__version__,
      "· polars", polars.__version__, "· duckdb", duckdb.__version__)
PY
