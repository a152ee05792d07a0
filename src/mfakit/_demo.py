"""The terminal walk-through behind ``python -m mfakit demo``.

It uses only the public API, the way a host application would, with the real clock (your
phone's app runs on real time) and an in-memory store.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TextIO

from mfakit._clock import SystemClock
from mfakit._models import Subject, Verification
from mfakit._service import MFA
from mfakit.exceptions import LockedOut, MFAError, ReplayedCode
from mfakit.factors.totp import TOTP
from mfakit.hazmat.secretbox import Keyring
from mfakit.storage.memory import MemoryStore

__all__ = ["run_demo"]

_MAX_TRIES = 5


class _Console:
    def __init__(self, stdin: TextIO, stdout: TextIO) -> None:
        self.stdin = stdin
        self.stdout = stdout

    def say(self, text: str = "") -> None:
        print(text, file=self.stdout, flush=True)

    def ask(self, prompt: str) -> str | None:
        self.stdout.write(prompt)
        self.stdout.flush()
        line = self.stdin.readline()
        if not line:
            self.say()
            return None
        return line.rstrip("\r\n")


def _ask_for_codes(console: _Console, attempt: Callable[[str], object]) -> str | None:
    """Ask for codes until ``attempt`` accepts one; return it, or ``None`` to stop."""
    for _ in range(_MAX_TRIES):
        code = console.ask("Code: ")
        if code is None:
            return None
        try:
            attempt(code)
        except ReplayedCode:
            console.say("   That code was already used. Wait for the app to show a new one.")
        except LockedOut as exc:
            console.say(exc.public_message)
            return None
        except MFAError as exc:
            console.say(f"   Not accepted: {exc.public_message}")
        else:
            return code
    console.say("Too many tries; run the demo again.")
    return None


def run_demo(*, account: str, issuer: str, show_qr: bool, stdin: TextIO, stdout: TextIO) -> int:
    """Enrol an authenticator app, sign in, and show replay protection. Returns exit status."""
    console = _Console(stdin, stdout)
    mfa = MFA(
        store=MemoryStore(),
        keyring=Keyring.ephemeral(),
        factors=[TOTP(issuer=issuer)],
        clock=SystemClock(),
    )
    try:
        subject = Subject(id="demo-user", username=account)
    except MFAError as exc:
        console.say(f"Cannot use that account name: {exc}")
        return 2

    console.say("mfakit demo: set up an authenticator app, then sign in with it.")
    console.say()
    enrollment = mfa.enroll(subject, TOTP.setup(label="Demo phone"))
    if show_qr:
        console.say("1. Scan this QR code with Google Authenticator, Microsoft Authenticator")
        console.say("   or any other TOTP app:")
        console.say()
        enrollment.qr_terminal(out=stdout)
        console.say()
        console.say("   Can't scan it? Add the account by hand with this key instead:")
    else:
        console.say("1. Add an account by hand in your authenticator app with this key:")
    console.say(f"Manual key: {enrollment.grouped_secret}")
    console.say(f"Account: {subject.account_name}    Issuer: {issuer}    Type: time-based")
    console.say()

    console.say("2. Prove it works: type the 6-digit code the app shows.")
    if _ask_for_codes(console, lambda code: mfa.confirm(subject, enrollment.id, code)) is None:
        return 1
    console.say("   Enrolled. The authenticator app is now your second factor.")
    console.say()

    console.say("3. Sign in: type the NEXT code the app shows (wait for it to change).")
    proofs: list[Verification] = []

    def sign_in(code: str) -> None:
        proofs.append(mfa.verify(subject, mfa.challenge(subject, "totp").id, code))

    code = _ask_for_codes(console, sign_in)
    if code is None:
        return 1
    console.say(f"   Signed in at {proofs[0].verified_at:%H:%M:%S} UTC.")
    console.say()

    console.say("4. Someone who saw that code tries it again:")
    replay = mfa.challenge(subject, "totp")
    try:
        mfa.verify(subject, replay.id, code)
    except ReplayedCode:
        console.say("   Refused: a code is accepted only once (RFC 6238 section 5.2).")
    else:  # pragma: no cover - would be a serious bug
        console.say("   ACCEPTED AGAIN - this is a bug, please report it.")
        return 3
    console.say()
    console.say("Done. Nothing was stored: the demo keeps everything in memory.")
    return 0
