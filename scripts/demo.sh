#!/bin/sh
# Run the Flask example: the practice suite's sign-in (authenticator app or SMS, recovery PIN,
# administration) on SQLite, in development mode, at http://127.0.0.1:5000.
#
#   sh scripts/demo.sh [flask run options, e.g. --port 5001]
#
# Creates .venv (with python3, or $PYTHON) if missing and installs mfakit with its `flask`
# extra (Flask, SQLAlchemy) in editable mode. Keys, the session secret and the SQLite file are
# generated into examples/instance/ on first run; texts are shown at /dev/outbox. The first
# account created is an administrator. The terminal demo is `python -m mfakit demo`.
set -eu

cd "$(dirname -- "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=.venv
STAMP=$VENV/.mfakit-flask-installed

if [ ! -x "$VENV/bin/python" ]; then
    echo "demo.sh: creating $VENV with $PYTHON" >&2
    "$PYTHON" -m venv --clear "$VENV"
fi

# Reinstall only when pyproject.toml changed since the last install (the install is
# editable, so edits under src/ need none).
want=$(cksum < pyproject.toml)
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$want" ]; then
    echo "demo.sh: installing mfakit[flask] into $VENV" >&2
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e '.[flask]'
    printf '%s\n' "$want" > "$STAMP"
fi

echo "demo.sh: open http://127.0.0.1:5000 (or the --port given); development mode, Ctrl-C stops" >&2
exec "$VENV/bin/python" -m flask --app examples/flask_app run --debug --host 127.0.0.1 --port 5000 "$@"
