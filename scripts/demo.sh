#!/bin/sh
# Run the mfakit command-line demo: enrol an authenticator app and sign in, in a terminal.
#
#   scripts/demo.sh [demo options]
#
# Creates .venv (with python3, or $PYTHON) if missing and installs mfakit into it in
# editable mode, then runs `python -m mfakit demo` with the arguments given.
set -eu

cd "$(dirname -- "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=.venv
STAMP=$VENV/.mfakit-installed

if [ ! -x "$VENV/bin/python" ]; then
    echo "demo.sh: creating $VENV with $PYTHON" >&2
    "$PYTHON" -m venv --clear "$VENV"
fi

# Reinstall only when pyproject.toml changed since the last install (the install is
# editable, so edits under src/ need none).
want=$(cksum < pyproject.toml)
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$want" ]; then
    echo "demo.sh: installing mfakit into $VENV" >&2
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e .
    printf '%s\n' "$want" > "$STAMP"
fi

exec "$VENV/bin/python" -m mfakit demo "$@"
