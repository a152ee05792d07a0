"""The terminal walk-through behind ``python -m mfakit demo``.

It uses only the public API, the way a host application would, with the real clock (your
phone's app runs on real time). The enrolment is kept in a local SQLite file (the embedded
default of :class:`~mfakit.storage.sql.SQLStore`), so the first run enrols and later runs
only ask for a code. The demo's own encryption key lives in a file next to the database,
readable by its owner only: a convenience of the demo. Production keys come from
``MFAKIT_KEYS`` (:meth:`~mfakit.Keyring.from_env`) and are never stored next to the data
they protect.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Final, TextIO

from mfakit._cli import EXIT_USAGE, CLIError
from mfakit._clock import SystemClock
from mfakit._models import Credential, Subject, Verification
from mfakit._service import MFA
from mfakit.exceptions import LockedOut, MFAError, ReplayedCode
from mfakit.factors.totp import TOTP
from mfakit.hazmat.secretbox import Keyring
from mfakit.storage.memory import MemoryStore
from mfakit.typing import Clock, Store

__all__ = ["DEMO_TABLE_PREFIX", "default_database", "key_file_for", "run_demo"]

_MAX_TRIES: Final = 5
#: The demo's own tables, so a demo pointed at a real mfakit database never touches its data.
DEMO_TABLE_PREFIX: Final = "mfakit_demo_"
_SUBJECT_ID: Final = "demo-user"


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


def default_database(environ: Mapping[str, str] | None = None) -> Path:
    """Where the demo keeps its enrolment unless told otherwise.

    ``$XDG_DATA_HOME/mfakit/demo.sqlite3`` (XDG Base Directory Specification; a relative
    ``XDG_DATA_HOME`` is ignored, as the specification says), else
    ``~/.local/share/mfakit/demo.sqlite3``; on Windows ``%LOCALAPPDATA%\\mfakit``.
    """
    env = os.environ if environ is None else environ
    if os.name == "nt":  # pragma: no cover - tested on POSIX only
        local = env.get("LOCALAPPDATA", "")
        base = Path(local) if local and os.path.isabs(local) else Path.home() / "AppData/Local"
    else:
        xdg = env.get("XDG_DATA_HOME", "")
        base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".local" / "share"
    return base / "mfakit" / "demo.sqlite3"


def key_file_for(database: Path) -> Path:
    """The demo key's file: the database path with the suffix ``.key``."""
    key_file = database.with_suffix(".key")
    if key_file == database:
        raise CLIError(f"the demo database {database} must not end in .key (its key goes there)")
    return key_file


def _read_key(key_file: Path) -> Keyring | None:
    """The demo key from its file, or ``None`` if there is none yet."""
    try:
        fd = os.open(key_file, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return None
    with os.fdopen(fd, encoding="ascii", errors="replace") as handle:
        mode = stat.S_IMODE(os.fstat(handle.fileno()).st_mode)
        # Refuse a key others can read, as ssh does for private keys.
        if os.name != "nt" and mode & 0o077:
            raise CLIError(
                f"the demo key {key_file} is open to other users (mode {mode:04o}); "
                f"run chmod 600 {key_file}, or the demo with --reset"
            )
        text = handle.read()
    try:
        return Keyring.from_string(text.strip())
    except MFAError:  # the message names no key material, but a hint helps more
        raise CLIError(f"{key_file} does not hold a demo key; run the demo with --reset") from None


def _new_key(key_file: Path) -> Keyring:
    """Create the key file (owner read/write only, never over an existing file)."""
    entry = Keyring.generate_key()
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(key_file, flags, 0o600)  # the umask can only remove permissions
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(entry + "\n")
    return Keyring.from_string(entry)


def _persistent(database: Path, *, reset: bool) -> tuple[Store, Keyring, Callable[[], None]]:
    """Open (or create) the demo's SQLite store and key; ``reset`` forgets both first."""
    import sqlalchemy as sa

    from mfakit.storage.sql import SQLStore

    key_file = key_file_for(database)
    try:
        database.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as error:
        raise CLIError(f"cannot create {database.parent}: {error.strerror or error}") from None
    url = sa.URL.create("sqlite", database=str(database))
    store = SQLStore(url, table_prefix=DEMO_TABLE_PREFIX)
    try:
        if reset:
            store.drop_schema()
            key_file.unlink(missing_ok=True)
        store.create_schema()
        keyring = _read_key(key_file) or _new_key(key_file)
    except BaseException:
        store.close()
        raise
    return store, keyring, store.close


def run_demo(
    *,
    account: str,
    issuer: str,
    show_qr: bool,
    stdin: TextIO,
    stdout: TextIO,
    database: Path | None = None,
    reset: bool = False,
    clock: Clock | None = None,
) -> int:
    """Enrol an authenticator app (or find it enrolled), sign in, show replay protection.

    Args:
        account: Account name shown in the app.
        issuer: Issuer shown in the app.
        show_qr: Print the QR code (else only the manual key).
        stdin: Where answers are read.
        stdout: Where the conversation goes.
        database: The SQLite file that remembers the enrolment (its key goes next to it,
            see :func:`key_file_for`); ``None`` keeps everything in memory.
        reset: Forget the stored enrolment and key first.
        clock: The time source; the system clock by default (tests pass a ``FakeClock``).

    Returns:
        0 when the replayed code was refused; 1 when the person stopped or gave up;
        3 if a replayed code was accepted (a bug).

    Raises:
        CLIError: An unusable account name (usage, status 2), or a database or key file
            that cannot be used (status 1); one line for stderr.
    """
    console = _Console(stdin, stdout)
    try:
        subject = Subject(id=_SUBJECT_ID, username=account)
    except MFAError as exc:
        raise CLIError(f"--account: {exc}", EXIT_USAGE) from None
    close: Callable[[], None] = lambda: None  # noqa: E731
    if database is None:
        store: Store = MemoryStore()
        keyring = Keyring.ephemeral()
    else:
        try:
            store, keyring, close = _persistent(database, reset=reset)
        except ImportError:
            console.say("SQLAlchemy is not installed, so this run keeps everything in memory")
            console.say("(pip install 'mfakit[sql]' to remember the enrolment).")
            console.say()
            database = None
            store, keyring = MemoryStore(), Keyring.ephemeral()
    mfa = MFA(
        store=store,
        keyring=keyring,
        factors=[TOTP(issuer=issuer)],
        clock=clock if clock is not None else SystemClock(),
    )
    try:
        return _converse(console, mfa, subject, issuer, show_qr, database, reset)
    finally:
        close()


def _converse(
    console: _Console,
    mfa: MFA,
    subject: Subject,
    issuer: str,
    show_qr: bool,
    database: Path | None,
    reset: bool,
) -> int:
    enrolled = [c for c in mfa.credentials(subject) if c.factor == "totp"]
    if database is not None and reset:
        console.say(f"Forgot the previous enrolment (if any) in {database}.")
    if enrolled:
        _check_key(mfa.keyring, enrolled[-1], database)
        when = enrolled[-1].confirmed_at or enrolled[-1].created_at
        console.say("mfakit demo: welcome back.")
        console.say(
            f"Your authenticator app was enrolled on {when:%Y-%m-%d at %H:%M} UTC "
            f"(remembered in {database})."
        )
        console.say()
        console.say("Sign in: type the code the app shows.")
    else:
        console.say("mfakit demo: set up an authenticator app, then sign in with it.")
        console.say()
        if not _enrol(console, mfa, subject, issuer, show_qr):
            return 1
        console.say("3. Sign in: type the NEXT code the app shows (wait for it to change).")
    proofs: list[Verification] = []

    def sign_in(code: str) -> None:
        proofs.append(mfa.verify(subject, mfa.challenge(subject, "totp").id, code))

    code = _ask_for_codes(console, sign_in, remembered=database is not None)
    if code is None:
        return 1
    console.say(f"   Signed in at {proofs[0].verified_at:%H:%M:%S} UTC.")
    console.say()

    console.say("Someone who saw that code tries it again:")
    replay = mfa.challenge(subject, "totp")
    try:
        mfa.verify(subject, replay.id, code)
    except ReplayedCode:
        console.say("   Refused: a code is accepted only once (RFC 6238 section 5.2).")
    else:  # pragma: no cover - would be a serious bug
        console.say("   ACCEPTED AGAIN - this is a bug, please report it.")
        return 3
    console.say()
    if database is None:
        console.say("Done. Nothing was stored: this run kept everything in memory.")
    else:
        console.say(f"Done. Your enrolment is remembered in {database}")
        console.say(f"(its demo key in {key_file_for(database)}; production keys come from")
        console.say("MFAKIT_KEYS). Run the demo again to sign in with a code, or with --reset")
        console.say("to start over.")
    return 0


def _check_key(keyring: Keyring, credential: Credential, database: Path | None) -> None:
    """Refuse early when the stored seed is under a key the demo no longer has."""
    if keyring.key_id_of(credential.secret) not in keyring.key_ids:
        where = key_file_for(database) if database is not None else "memory"
        raise CLIError(
            f"the stored enrolment was encrypted with a key that {where} does not hold "
            "(was the key file replaced?); run the demo with --reset to start over"
        )


def _enrol(console: _Console, mfa: MFA, subject: Subject, issuer: str, show_qr: bool) -> bool:
    enrollment = mfa.enroll(subject, TOTP.setup(label="Demo phone"))
    if show_qr:
        console.say("1. Scan this QR code with Google Authenticator, Microsoft Authenticator")
        console.say("   or any other TOTP app:")
        console.say()
        enrollment.qr_terminal(out=console.stdout)
        console.say()
        console.say("   Can't scan it? Add the account by hand with this key instead:")
    else:
        console.say("1. Add an account by hand in your authenticator app with this key:")
    console.say(f"Manual key: {enrollment.grouped_secret}")
    console.say(f"Account: {subject.account_name}    Issuer: {issuer}    Type: time-based")
    console.say()

    console.say("2. Prove it works: type the 6-digit code the app shows.")

    def confirm(code: str) -> None:
        mfa.confirm(subject, enrollment.id, code)

    if _ask_for_codes(console, confirm, remembered=False) is None:
        return False
    console.say("   Enrolled. The authenticator app is now your second factor.")
    console.say()
    return True


def _ask_for_codes(
    console: _Console, attempt: Callable[[str], object], *, remembered: bool
) -> str | None:
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
            if remembered:
                console.say("(The demo remembers failures between runs; --reset starts over.)")
            return None
        except MFAError as exc:
            console.say(f"   Not accepted: {exc.public_message}")
        else:
            return code
    console.say("Too many tries; run the demo again.")
    return None
