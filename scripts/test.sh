#!/bin/sh
# Run the whole mfakit test suite, from a fresh clone on a fresh machine.
#
#   scripts/test.sh                 every test
#   scripts/test.sh -q -x           arguments go to pytest
#   scripts/test.sh tests/test_qr.py -k svg
#
# Creates .venv (with python3, or $PYTHON) if missing, installs mfakit in editable mode
# with its dev extra, installs oathtool and chromium when it can, then runs pytest.
set -eu

cd "$(dirname -- "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=.venv
STAMP=$VENV/.mfakit-dev-installed

if [ ! -x "$VENV/bin/python" ]; then
    echo "test.sh: creating $VENV with $PYTHON" >&2
    "$PYTHON" -m venv --clear "$VENV"
fi

# Reinstall only when pyproject.toml changed since the last install: the install is
# editable, so edits under src/ need none.
want=$(cksum < pyproject.toml)
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$want" ]; then
    echo "test.sh: installing mfakit[dev] into $VENV" >&2
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e '.[dev]'
    printf '%s\n' "$want" > "$STAMP"
fi

# Debian packages some tests use: oathtool (the independent TOTP implementation the interop
# tests compare against) and chromium (the browser the Playwright tests drive; Playwright
# never downloads one). Installed when we can; otherwise those tests are skipped with the
# reason (and fail instead when CI is set).
missing=
command -v oathtool >/dev/null 2>&1 || missing="$missing oathtool"
[ -x /usr/bin/chromium ] || missing="$missing chromium"
if [ -n "$missing" ]; then
    sudo=
    can_install=no
    if command -v apt-get >/dev/null 2>&1; then
        if [ "$(id -u)" -eq 0 ]; then
            can_install=yes
        elif command -v sudo >/dev/null 2>&1 && sudo -n true >/dev/null 2>&1; then
            sudo="sudo -n"
            can_install=yes
        fi
    fi
    if [ "$can_install" = yes ]; then
        echo "test.sh: installing$missing (apt-get) for the interop and browser tests" >&2
        # shellcheck disable=SC2086 # $missing is a list of package names
        if ! { $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq \
            && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
                --no-install-recommends $missing >/dev/null; }; then
            echo "test.sh: warning: could not install$missing" >&2
        fi
    else
        echo "test.sh: note:$missing not installed; the tests that need them will be" \
            "skipped (they fail instead when CI is set). Install with:" \
            "apt-get install$missing" >&2
    fi
fi

exec "$VENV/bin/python" -m pytest "$@"
