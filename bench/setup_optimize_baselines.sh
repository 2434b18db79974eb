#!/usr/bin/env bash
# Create the baseline virtualenvs for bench/optimize.py: PyPSA (linopy + HiGHS) and EMHASS.
# They pin different pandas majors, so each gets its own venv under bench/ (gitignored).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
python="${PYTHON:-python3.11}"

make_venv() {  # make_venv DIR REQUIREMENTS
    local dir="$here/$1"
    if [[ ! -x "$dir/bin/python" ]]; then
        "$python" -m venv "$dir"
    fi
    "$dir/bin/pip" install --quiet --upgrade pip
    "$dir/bin/pip" install --quiet -r "$here/$2"
    echo "$dir: $("$dir/bin/python" -c 'import sys; print(sys.version.split()[0])')"
}

make_venv .venv-pypsa requirements-pypsa.txt
make_venv .venv-emhass requirements-emhass.txt
