"""``python -m mfakit demo`` driven through stdin, as a person with a phone would.

The codes are computed with pyotp (an implementation we did not write) from the manual key
the demo prints, exactly as an authenticator app would compute them after a manual entry.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from pathlib import Path

import pyotp
import pytest

from mfakit.__main__ import main

SRC = str(Path(__file__).resolve().parents[1] / "src")


class DemoProcess:
    """The demo in a child process, read line by line."""

    def __init__(self, *args: str) -> None:
        env = {**os.environ, "PYTHONPATH": SRC, "PYTHONIOENCODING": "utf-8"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mfakit", "demo", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            env=env,
        )
        self.transcript: list[str] = []

    def read_until(self, marker: str) -> str:
        assert self.proc.stdout is not None
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise AssertionError(f"demo ended before {marker!r}:\n{''.join(self.transcript)}")
            self.transcript.append(line)
            if marker in line:
                return line

    def send(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()

    def finish(self) -> tuple[int, str]:
        # Not communicate(): it reads the raw pipe and would lose what readline() buffered.
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        assert self.proc.stderr is not None
        self.proc.stdin.close()
        self.transcript.append(self.proc.stdout.read())
        err = self.proc.stderr.read()
        status = self.proc.wait(timeout=30)
        return status, "".join(self.transcript) + err


def manual_key(line: str) -> str:
    return line.split("Manual key:", 1)[1].strip().replace(" ", "")


def test_demo_enrols_signs_in_and_refuses_the_replayed_code() -> None:
    demo = DemoProcess()
    app = pyotp.TOTP(manual_key(demo.read_until("Manual key:")))
    demo.send("000000" if app.now() != "000000" else "111111")  # a wrong code first
    demo.read_until("Not accepted")
    enrol_code = app.now()
    demo.send(f"{enrol_code[:3]} {enrol_code[3:]}")  # typed with a space, as people do
    demo.read_until("Enrolled.")
    # The code used to enrol cannot sign in: the demo asks to wait for the next one.
    demo.send(enrol_code)
    demo.read_until("already used")
    # The next code the app will show (within the accepted drift window).
    demo.send(app.at(time.time() + 30))
    demo.read_until("Signed in")
    status, transcript = demo.finish()
    assert status == 0, transcript
    assert "Refused: a code is accepted only once" in transcript
    assert "ACCEPTED AGAIN" not in transcript


def test_demo_prints_a_terminal_qr_code_unless_asked_not_to() -> None:
    demo = DemoProcess()
    demo.read_until("Manual key:")
    status, transcript = demo.finish()  # stdin closed: the demo stops cleanly
    assert status == 1
    assert "\u2588" in transcript or "\u2580" in transcript  # block characters of the QR
    bare = DemoProcess("--no-qr")
    bare.read_until("Manual key:")
    status, transcript = bare.finish()
    assert status == 1
    assert "\u2588" not in transcript
    assert "\u2580" not in transcript


def test_demo_gives_up_after_five_wrong_codes() -> None:
    stdin = io.StringIO("12345\n" * 3 + "abcdef\n" + "1234567\n")
    stdout = io.StringIO()
    assert main(["demo", "--no-qr"], stdin=stdin, stdout=stdout) == 1
    assert stdout.getvalue().count("Not accepted") == 5
    assert "Too many tries" in stdout.getvalue()


def test_generate_key_prints_a_usable_keyring_entry() -> None:
    from mfakit import Keyring

    stdout = io.StringIO()
    assert main(["generate-key", "--key-id", "k2026"], stdout=stdout) == 0
    entry = stdout.getvalue().strip()
    assert entry.startswith("k2026:")
    keyring = Keyring.from_string(entry)
    assert keyring.decrypt(keyring.encrypt(b"seed", aad=b"x"), aad=b"x") == b"seed"


def test_unknown_command_exits_with_usage() -> None:
    with pytest.raises(SystemExit) as exc:
        main(["nonsense"])
    assert exc.value.code == 2
