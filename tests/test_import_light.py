"""``import mfakit`` stays light: heavy optional machinery loads only when used.

Checked in a fresh interpreter, since this test process has long imported everything.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[1] / "src")
HEAVY = ("segno", "phonenumbers", "argon2", "PIL", "zxingcpp", "pyotp")


def loaded_after(statement: str) -> list[str]:
    """Which of ``HEAVY`` a fresh interpreter has in ``sys.modules`` after ``statement``."""
    script = f"{statement}\nimport sys\nprint(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    env = {**os.environ, "PYTHONPATH": SRC}
    env.pop("PYTHONSTARTUP", None)
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    found = ast.literal_eval(done.stdout.strip())
    assert isinstance(found, list)
    return [str(name) for name in found]


def test_import_mfakit_loads_no_heavy_module() -> None:
    assert loaded_after("import mfakit") == []


def test_totp_sign_in_through_the_facade_loads_no_heavy_module() -> None:
    # Enrol, confirm, challenge and verify with a MemoryStore: QR rendering (segno), phone
    # numbers and argon2 stay unloaded until a host uses them.
    statement = (
        "from mfakit import MFA, Keyring, Subject\n"
        "from mfakit.factors import TOTP\n"
        "from mfakit.testing import FakeClock, MemoryStore, totp_now\n"
        "clock = FakeClock()\n"
        "mfa = MFA(store=MemoryStore(), keyring=Keyring.ephemeral(),"
        " factors=[TOTP(issuer='Light')], clock=clock)\n"
        "alice = Subject(id='u1', username='alice')\n"
        "enrollment = mfa.enroll(alice, TOTP.setup(label='Phone'))\n"
        "mfa.confirm(alice, enrollment.id, totp_now(enrollment.secret, clock.now()))\n"
        "clock.advance(30)\n"
        "challenge = mfa.challenge(alice, 'totp')\n"
        "mfa.verify(alice, challenge.id, totp_now(enrollment.secret, clock.now()))"
    )
    assert loaded_after(statement) == []


def test_the_check_detects_a_heavy_import() -> None:
    # The probe is not vacuous: importing segno directly is seen.
    assert loaded_after("import mfakit, segno") == ["segno"]
