"""``python -m mfakit demo`` driven through stdin, as a person with a phone would.

The codes are computed with pyotp (an implementation we did not write) from the manual key
the demo prints, exactly as an authenticator app would compute them after a manual entry.
Every test keeps the demo's database under ``tmp_path`` (``XDG_DATA_HOME`` points there
too), so no test touches the real home directory.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pyotp
import pytest

from mfakit import Keyring
from mfakit.__main__ import main
from mfakit._demo import default_database, key_file_for
from mfakit.testing import FakeClock

SRC = str(Path(__file__).resolve().parents[1] / "src")


@pytest.fixture(autouse=True)
def _no_real_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Should a test forget --database, the demo's default lands under tmp_path."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))


class DemoProcess:
    """The demo in a child process, read line by line."""

    def __init__(self, database: Path, *args: str) -> None:
        env = {**os.environ, "PYTHONPATH": SRC, "PYTHONIOENCODING": "utf-8"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mfakit", "demo", "--database", str(database), *args],
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


def test_demo_enrols_signs_in_and_refuses_the_replayed_code(tmp_path: Path) -> None:
    demo = DemoProcess(tmp_path / "demo.sqlite3")
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


def test_demo_prints_a_terminal_qr_code_unless_asked_not_to(tmp_path: Path) -> None:
    demo = DemoProcess(tmp_path / "demo.sqlite3")
    demo.read_until("Manual key:")
    status, transcript = demo.finish()  # stdin closed: the demo stops cleanly
    assert status == 1
    assert "\u2588" in transcript or "\u2580" in transcript  # block characters of the QR
    bare = DemoProcess(tmp_path / "demo.sqlite3", "--no-qr")
    bare.read_until("Manual key:")
    status, transcript = bare.finish()
    assert status == 1
    assert "\u2588" not in transcript
    assert "\u2580" not in transcript


def test_demo_gives_up_after_five_wrong_codes() -> None:
    stdin = io.StringIO("12345\n" * 3 + "abcdef\n" + "1234567\n")
    stdout = io.StringIO()
    assert main(["demo", "--no-qr", "--memory"], stdin=stdin, stdout=stdout) == 1
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
    stderr = io.StringIO()
    assert main(["nonsense"], stderr=stderr) == 2
    assert stderr.getvalue().startswith("mfakit: error: argument COMMAND: invalid choice")


# ------------------------------------------------------------------------------------------
# The enrolment is remembered between runs
# ------------------------------------------------------------------------------------------
class Person(io.StringIO):
    """Answers the demo's prompts one by one, each answer computed when it is asked for."""

    def __init__(self, answers: Iterable[Callable[[], str]]) -> None:
        super().__init__()
        self.answers: Iterator[Callable[[], str]] = iter(answers)

    def readline(self, size: int = -1, /) -> str:  # type: ignore[override]
        answer = next(self.answers, None)
        return "" if answer is None else answer() + "\n"


class Phone:
    """An authenticator app on a FakeClock: the key is read off the demo's screen."""

    def __init__(self, screen: io.StringIO, clock: FakeClock) -> None:
        self.screen = screen
        self.clock = clock
        self.key: str | None = None

    def code(self, *, wait: float = 0) -> Callable[[], str]:
        def read() -> str:
            if self.key is None:
                line = next(x for x in self.screen.getvalue().splitlines() if "Manual key:" in x)
                self.key = manual_key(line)
            self.clock.advance(wait)
            return str(pyotp.TOTP(self.key).at(self.clock.now()))

        return read


def run_demo(
    database: Path,
    clock: FakeClock,
    answers: Callable[[Phone], list[Callable[[], str]]],
    *args: str,
) -> tuple[int, str, str, Phone]:
    screen, errors = io.StringIO(), io.StringIO()
    phone = Phone(screen, clock)
    status = main(
        ["demo", "--database", str(database), *args],
        stdin=Person(answers(phone)),
        stdout=screen,
        stderr=errors,
        clock=clock,
    )
    return status, screen.getvalue(), errors.getvalue(), phone


def test_the_second_run_remembers_the_enrolment_and_asks_only_for_a_code(tmp_path: Path) -> None:
    database = tmp_path / "data" / "demo.sqlite3"
    clock = FakeClock(dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.timezone.utc))
    status, first, _, phone = run_demo(
        database,
        clock,
        lambda p: [p.code(), p.code(wait=30)],  # confirm, then sign in
    )
    assert status == 0, first
    assert "Manual key:" in first
    assert "\u2588" in first or "\u2580" in first  # the QR code was shown
    assert f"Your enrolment is remembered in {database}" in first
    assert phone.key is not None
    last_code = phone.code()()  # what the app shows now: the code used to sign in

    # Second run, half a minute later: no QR code, no key, just a code.
    screen, errors = io.StringIO(), io.StringIO()
    again = Phone(screen, clock)
    again.key = phone.key
    answers = [lambda: last_code, again.code(wait=30)]  # the old code first: still refused
    status = main(
        ["demo", "--database", str(database)],
        stdin=Person(answers),
        stdout=screen,
        stderr=errors,
        clock=clock,
    )
    second = screen.getvalue()
    assert status == 0, second + errors.getvalue()
    assert "welcome back" in second
    assert "enrolled on 2026-03-01 at 09:00 UTC" in second
    assert "Manual key:" not in second
    assert phone.key.replace(" ", "") not in second.replace(" ", "")
    assert "\u2588" not in second
    assert "\u2580" not in second
    # The replay state survived the restart: the first run's last code is refused.
    assert "already used" in second
    assert "Signed in at 09:01:00 UTC" in second
    assert "Refused: a code is accepted only once" in second


def test_the_demo_key_is_private_and_reset_starts_over(tmp_path: Path) -> None:
    database = tmp_path / "data" / "demo.sqlite3"
    clock = FakeClock(dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.timezone.utc))
    status, _, _, phone = run_demo(database, clock, lambda p: [p.code(), p.code(wait=30)])
    assert status == 0
    key_file = key_file_for(database)
    assert key_file == tmp_path / "data" / "demo.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(database.parent.stat().st_mode) == 0o700
    first_key = key_file.read_text()
    Keyring.from_string(first_key.strip())  # a keyring entry, as MFAKIT_KEYS holds

    # --reset forgets the enrolment and the key: a new QR code and key, a new key file.
    status, out, _, fresh = run_demo(database, clock, lambda p: [p.code()], "--reset", "--no-qr")
    assert status == 1  # stopped after confirming (no sign-in code given)
    assert "Forgot the previous enrolment" in out
    assert "Enrolled." in out
    assert fresh.key is not None
    assert fresh.key != phone.key
    assert key_file.read_text() != first_key
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_a_lost_or_exposed_demo_key_is_one_clear_error(tmp_path: Path) -> None:
    database = tmp_path / "demo.sqlite3"
    clock = FakeClock(dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.timezone.utc))
    assert run_demo(database, clock, lambda p: [p.code(), p.code(wait=30)])[0] == 0
    key_file = key_file_for(database)

    key_file.chmod(0o644)
    status, _, errors, _ = run_demo(database, clock, lambda p: [])
    assert status == 1
    assert errors == (
        f"mfakit: error: the demo key {key_file} is open to other users (mode 0644); "
        f"run chmod 600 {key_file}, or the demo with --reset\n"
    )

    key_file.unlink()  # the enrolment stays, its key is gone
    status, _, errors, _ = run_demo(database, clock, lambda p: [])
    assert status == 1
    assert errors.startswith("mfakit: error: the stored enrolment was encrypted with a key")
    assert errors.count("\n") == 1

    key_file.write_text("not a key")
    key_file.chmod(0o600)
    status, _, errors, _ = run_demo(database, clock, lambda p: [])
    assert (status, errors) == (
        1,
        f"mfakit: error: {key_file} does not hold a demo key; run the demo with --reset\n",
    )
    assert run_demo(database, clock, lambda p: [p.code()], "--reset")[0] == 1  # enrols again


def test_the_default_database_is_in_the_xdg_data_directory(tmp_path: Path) -> None:
    assert default_database({"XDG_DATA_HOME": str(tmp_path)}) == (
        tmp_path / "mfakit" / "demo.sqlite3"
    )
    home = Path.home() / ".local" / "share" / "mfakit" / "demo.sqlite3"
    assert default_database({"XDG_DATA_HOME": "relative/dir"}) == home  # ignored, per spec
    assert default_database({}) == home
    # Without --database the demo uses it (XDG_DATA_HOME points into tmp_path here).
    stdout = io.StringIO()
    assert main(["demo", "--no-qr"], stdin=io.StringIO(""), stdout=stdout) == 1
    assert (tmp_path / "xdg" / "mfakit" / "demo.sqlite3").exists()
    assert (tmp_path / "xdg" / "mfakit" / "demo.key").exists()


def test_without_sqlalchemy_the_demo_runs_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "mfakit.storage.sql", None)  # import fails
    stdout = io.StringIO()
    args = ["demo", "--no-qr", "--database", str(tmp_path / "d.sqlite3")]
    assert main(args, stdin=io.StringIO(""), stdout=stdout) == 1
    assert "keeps everything in memory" in stdout.getvalue()
    assert "Manual key:" in stdout.getvalue()
    assert not (tmp_path / "d.sqlite3").exists()
