#!/bin/sh
# Copy the curated screenshots of the Flask example from the last browser-test run
# (build/screenshots/flask/, written by tests/e2e/test_flask_browser.py) into the docs.
#
#   pytest tests/e2e -p no:cacheprovider && sh scripts/update-screenshots.sh
set -eu

cd "$(dirname -- "$0")/.."

SRC=build/screenshots/flask
DEST=docs/_static/screenshots/flask
CURATED="sign-in choose-method qr-enrolment sms-enrolment sms-code-prompt code-prompt-app
recovery-pin-create recovery-pin-prompt admin dev-outbox"

mkdir -p "$DEST"
for name in $CURATED; do
    if [ ! -f "$SRC/$name.png" ]; then
        echo "update-screenshots.sh: $SRC/$name.png is missing; run the browser tests first" >&2
        exit 1
    fi
    cp "$SRC/$name.png" "$DEST/$name.png"
done
echo "update-screenshots.sh: copied $(echo $CURATED | wc -w) screenshots to $DEST" >&2
