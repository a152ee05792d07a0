"""The ``mfakit`` operator commands, end to end.

Most tests run ``python -m mfakit`` in a child process against a SQLite file seeded with the
Python API, and check the exit status, the one-line errors (no traceback), and the effect
through the Python API again: the CSV report equals the facade's, a reset forces
re-enrolment, an unlock lets a locked subject in, rotated secrets verify under the new key
alone. The error matrix beyond a few child processes runs in-process through ``main()``.

PostgreSQL runs when ``MFAKIT_TEST_POSTGRES_URL`` is set (tables with a unique prefix,
dropped afterwards); outside CI it is skipped when unset, under ``CI=true`` it fails.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import json
import os
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Final

import pytest

from mfakit import MFA, Actor, Keyring, Lockout, RoleAuthorizer, Subject
from mfakit._cli import main
from mfakit.exceptions import DecryptionError, InvalidCode, LockedOut, NotEnrolled
from mfakit.factors import TOTP, RecoveryCodes
from mfakit.testing import FakeClock, totp_now

IN_CI: Final = os.environ.get("CI", "").lower() == "true"
try:
    import sqlalchemy as sa
except ImportError:  # pragma: no cover - the "sql" extra is not installed
    if IN_CI:
        raise
    pytest.skip("SQLAlchemy is not installed (pip install 'mfakit[sql]')", allow_module_level=True)

from mfakit.storage.sql import SCHEMA_VERSION, SQLStore  # noqa: E402

SRC: Final = str(Path(__file__).resolve().parents[1] / "src")
POSTGRES_ENV: Final = "MFAKIT_TEST_POSTGRES_URL"
OLD: Final = Keyring.generate_key("old")
NEW: Final = Keyring.generate_key("new")
ISSUER: Final = "CLI test"


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Database:
    url: str
    prefix: str

    def store(self) -> SQLStore:
        return SQLStore(self.url, table_prefix=self.prefix)

    def env(self, **extra: str) -> dict[str, str]:
        return {"MFAKIT_DATABASE_URL": self.url, **extra}


@dataclasses.dataclass
class Result:
    status: int
    out: str
    err: str

    @property
    def error_line(self) -> str:
        """The one line a failure prints; fails the test if there is anything else."""
        lines = self.err.splitlines()
        assert len(lines) == 1, self.err
        assert lines[0].startswith("mfakit: error: "), self.err
        assert "Traceback" not in self.err
        return lines[0]

    def audit(self) -> list[dict[str, object]]:
        prefix = "mfakit: audit: "
        lines = [line for line in self.err.splitlines() if line.startswith(prefix)]
        assert len(lines) == len(self.err.splitlines()), self.err  # nothing else on stderr
        return [json.loads(line[len(prefix) :]) for line in lines]


def cli(*args: str, env: dict[str, str] | None = None, db: Database | None = None) -> Result:
    """``python -m mfakit ARGS`` in a child process (the database from the environment)."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MFAKIT_")}
    environ.update(PYTHONPATH=SRC, PYTHONIOENCODING="utf-8")
    if db is not None:
        environ.update(db.env())
        args = (*args, "--table-prefix", db.prefix)
    environ.update(env or {})
    done = subprocess.run(
        [sys.executable, "-m", "mfakit", *args],
        capture_output=True,
        env=environ,
        timeout=60,
        check=False,
    )
    # Bytes decoded by hand: the CSV's CRLF must reach the test unchanged.
    return Result(done.returncode, done.stdout.decode("utf-8"), done.stderr.decode("utf-8"))


def run_main(*args: str, environ: dict[str, str] | None = None) -> Result:
    """The same command in this process (for the cheap parts of the error matrix)."""
    out, err = io.StringIO(), io.StringIO()
    status = main(list(args), stdout=out, stderr=err, environ=environ or {})
    return Result(status, out.getvalue(), err.getvalue())


def facade(db: Database, keys: str = OLD, **options: object) -> MFA:
    """The facade as a host would build it on the same database."""
    return MFA(
        store=db.store(),
        keyring=Keyring.from_string(keys),
        factors=[TOTP(issuer=ISSUER), RecoveryCodes()],
        **options,  # type: ignore[arg-type]
    )


def enrol(mfa: MFA, subject: Subject, clock: FakeClock | None = None) -> str:
    """Enrol and confirm TOTP; return the base32 seed (what the phone holds)."""
    now = clock.now() if clock is not None else dt.datetime.now(dt.timezone.utc)
    enrollment = mfa.enroll(subject, TOTP.setup(label="Phone"))
    mfa.confirm(subject, enrollment.id, totp_now(enrollment.secret, now))
    return enrollment.secret


def sign_in(mfa: MFA, subject: Subject, secret: str, offset: int = 1) -> None:
    """Verify a TOTP code (the next step by default, since the current one is used)."""
    now = dt.datetime.now(dt.timezone.utc)
    challenge = mfa.challenge(subject, "totp")
    mfa.verify(subject, challenge.id, totp_now(secret, now, offset=offset))


def lock_out(mfa: MFA, subject: Subject) -> None:
    """Fail until the subject is locked."""
    for _ in range(5):
        challenge = mfa.challenge(subject, "totp")
        try:
            mfa.verify(subject, challenge.id, "000000")
        except LockedOut:
            return
        except InvalidCode:
            continue
    assert mfa.lock_state(subject).suspended or mfa.lock_state(subject).locked_until


# ------------------------------------------------------------------------------------------
# fixtures
# ------------------------------------------------------------------------------------------
@pytest.fixture
def sqlite_db(tmp_path: Path) -> Database:
    db = Database(f"sqlite:///{tmp_path}/mfa.db", "mfakit_")
    store = db.store()
    store.create_schema()
    store.close()
    return db


@pytest.fixture
def postgres_db() -> Iterator[Database]:
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        message = f"{POSTGRES_ENV} is not set (e.g. postgresql+psycopg://postgres@127.0.0.1/test)"
        if IN_CI:
            pytest.fail(f"CI=true but {message}")
        pytest.skip(message)
    db = Database(url, f"cli{uuid.uuid4().hex[:8]}_")
    yield db
    store = db.store()
    store.drop_schema()
    store.close()


# ------------------------------------------------------------------------------------------
# schema
# ------------------------------------------------------------------------------------------
def test_schema_create_version_and_upgrade_on_a_new_sqlite_file(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path}/new.db", "app_mfa_")
    missing = run_main("schema", "version", "--table-prefix", db.prefix, environ=db.env())
    assert missing.status == 1
    assert "does not exist" in missing.error_line  # and no empty file was left behind
    assert not (tmp_path / "new.db").exists()

    created = cli("schema", "create", db=db)
    assert created.status == 0, created.err
    assert f"created schema version {SCHEMA_VERSION}" in created.out
    store = db.store()
    assert store.schema_version() == SCHEMA_VERSION  # the tables are really there
    store.close()

    version = cli("schema", "version", db=db)
    assert (version.status, version.out, version.err) == (0, f"{SCHEMA_VERSION}\n", "")
    for action, text in (("upgrade", "schema version"), ("create", "already")):
        again = run_main("schema", action, "--table-prefix", db.prefix, environ=db.env())
        assert again.status == 0, again.err
        assert f"{text}" in again.out
        assert f"version {SCHEMA_VERSION}" in again.out


def test_schema_commands_refuse_missing_or_newer_schemas(sqlite_db: Database) -> None:
    other = dataclasses.replace(sqlite_db, prefix="other_")
    env = sqlite_db.env()
    for action in ("version", "upgrade"):
        result = run_main("schema", action, "--table-prefix", "other_", environ=env)
        assert result.status == 1
        assert "no mfakit tables with prefix 'other_'" in result.error_line
    # A schema written by a newer mfakit is refused, by upgrade and by the other commands.
    store = other.store()
    store.create_schema()
    with store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE other_schema_version SET version = :v"), {"v": 99})
    store.close()
    for args in (("schema", "upgrade"), ("schema", "create"), ("report",), ("purge",)):
        result = run_main(*args, "--table-prefix", "other_", environ=env)
        assert result.status == 1, args
        assert "newer than this mfakit supports" in result.error_line


# ------------------------------------------------------------------------------------------
# report
# ------------------------------------------------------------------------------------------
def seed_report(db: Database) -> list[Subject]:
    """Subjects in three tenants: enrolled and used, pending, locked, formula-like names."""
    mfa = facade(db, lockout=Lockout(max_failures=3, mode="suspend"))
    alice = Subject(id="u-alice", tenant="t-1")
    secret = enrol(mfa, alice)
    sign_in(mfa, alice, secret)
    mfa.enroll(alice, RecoveryCodes.setup())
    bob = Subject(id="u-bob", tenant="t-1")
    mfa.enroll(bob, TOTP.setup(label="never confirmed"))  # pending only
    carol = Subject(id="=HYPERLINK(1)", tenant=None)  # a formula as a subject id
    enrol(mfa, carol)
    lock_out(mfa, carol)
    dave = Subject(id="u-dave", tenant="@evil")
    enrol(mfa, dave)
    return [carol, alice, bob, dave]


def csv_rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def expected_csv(db: Database, tenant: str | None, subjects: Sequence[Subject]) -> str:
    """The facade's own CSV, with an actor allowed to report (as the CLI's operator is)."""
    mfa = facade(db, authorizer=RoleAuthorizer({"report": {"r"}}, same_tenant=False))
    return mfa.report_csv(Actor(id="test", roles=frozenset({"r"})), tenant, subjects)


def check_report(db: Database, tmp_path: Path) -> None:
    subjects = seed_report(db)
    one = cli("report", "--tenant", "t-1", "--format", "csv", db=db)
    assert one.status == 0, one.err
    # Byte for byte the facade's report_csv for the same subjects (CRLF line ends included).
    assert one.out == expected_csv(db, "t-1", subjects)
    assert [row[0] for row in csv_rows(one.out)[1:]] == ["u-alice", "u-bob"]
    (event,) = one.audit()
    assert event["event"] == "policy_decided"
    assert event["detail"] == {"action": "report", "tenant": "t-1", "rows": 2, "skipped": 0}

    target = tmp_path / "report.csv"
    every = cli("report", "--format", "csv", "--output", str(target), db=db)
    assert every.status == 0, every.err
    assert every.out == f"wrote 4 row(s) to {target}\n"
    rows = csv_rows(target.read_text(encoding="utf-8"))
    # Every tenant, None first: the facade's rows per tenant, one header.
    expected = [csv_rows(expected_csv(db, None, subjects))[0]]
    for tenant in (None, "@evil", "t-1"):
        expected += csv_rows(expected_csv(db, tenant, subjects))[1:]
    assert rows == expected
    by_id = {row[0]: dict(zip(rows[0], row, strict=True)) for row in rows[1:]}
    # Neutralised against formula injection (OWASP), in both the id and the tenant.
    assert set(by_id) == {"'=HYPERLINK(1)", "u-alice", "u-bob", "u-dave"}
    assert by_id["u-dave"]["tenant"] == "'@evil"
    assert by_id["'=HYPERLINK(1)"]["suspended"] == "true"
    assert by_id["u-alice"]["factors"] == "totp;recovery_codes"
    assert by_id["u-alice"]["last_used_at"] != ""
    assert by_id["u-bob"]["pending"] == "totp"

    table = cli("report", db=db)
    assert table.status == 0, table.err
    lines = table.out.splitlines()
    header = lines[0].split()
    assert header[:3] == ["subject_id", "tenant", "factors"]
    assert lines[-1] == "4 subject(s)"
    starts = [lines[0].index(name) for name in header]
    for line in lines[2:-1]:  # every cell starts under its heading
        cells = [
            line[start:end].strip() for start, end in zip(starts, [*starts[1:], None], strict=True)
        ]
        assert all(cells), line
        assert " " not in "".join(cells), line
    carol_line = next(line for line in lines if line.startswith("=HYPERLINK(1)"))
    assert "yes" in carol_line.split()  # locked / suspended shown in words


def test_report_csv_and_table_match_the_facade_on_sqlite(
    sqlite_db: Database, tmp_path: Path
) -> None:
    check_report(sqlite_db, tmp_path)


def test_report_csv_and_table_match_the_facade_on_postgres(
    postgres_db: Database, tmp_path: Path
) -> None:
    postgres_db.store().create_schema()
    check_report(postgres_db, tmp_path)


def test_report_of_an_empty_store_and_an_unwritable_output(
    sqlite_db: Database, tmp_path: Path
) -> None:
    env = sqlite_db.env()
    empty = run_main("report", "--format", "csv", environ=env)
    assert empty.status == 0
    assert csv_rows(empty.out) == [csv_rows(expected_csv(sqlite_db, None, []))[0]]
    nowhere = run_main("report", "--output", str(tmp_path / "no" / "such" / "dir.csv"), environ=env)
    assert nowhere.status == 1
    assert "cannot write" in nowhere.error_line


# ------------------------------------------------------------------------------------------
# reset and unlock
# ------------------------------------------------------------------------------------------
def check_reset_and_unlock(db: Database) -> None:
    mfa = facade(db, lockout=Lockout(max_failures=3, mode="suspend"))
    erin = Subject(id="u-erin", tenant="t-9")
    erin_secret = enrol(mfa, erin)
    frank = Subject(id="u-frank", tenant="t-9")
    frank_secret = enrol(mfa, frank)
    lock_out(mfa, frank)
    with pytest.raises(LockedOut):  # even the right code is refused while locked
        sign_in(mfa, frank, frank_secret)

    reset = cli(
        "reset", "u-erin", "--reason", "ticket 77: new phone", "--operator", "ops-kim", db=db
    )
    assert reset.status == 0, reset.err
    assert "removed 1 credential(s)" in reset.out
    events = reset.audit()
    assert [e["event"] for e in events] == ["credential_removed", "reset"]
    for event in events:
        assert event["actor"] == "ops-kim"
        assert event["operator"] == "ops-kim"
        assert event["note"] == "ticket 77: new phone"
        assert event["subject_id"] == "u-erin"
        assert event["tenant"] == "t-9"
    # Erin must enrol again: nothing to sign in with, and the policy asks for enrolment.
    assert mfa.credentials(erin, include_pending=True) == []
    with pytest.raises(NotEnrolled):
        sign_in(mfa, erin, erin_secret)
    assert mfa.evaluate(erin).enroll

    unlock = cli("unlock", "u-frank", "--operator", "ops-kim", db=db)
    assert unlock.status == 0, unlock.err
    assert "unlocked u-frank (was suspended, 3 failure(s) cleared)" in unlock.out
    (event,) = unlock.audit()
    assert (event["event"], event["actor"], event["subject_id"]) == (
        "unlocked",
        "ops-kim",
        "u-frank",
    )
    assert "note" not in event
    sign_in(mfa, frank, frank_secret)  # the lock is really gone

    unknown = cli("reset", "u-nobody", db=db)
    assert unknown.status == 1
    assert unknown.error_line == (
        "mfakit: error: unknown subject 'u-nobody': no credential and no lock state"
    )


def test_reset_forces_reenrolment_and_unlock_clears_a_lock_on_sqlite(sqlite_db: Database) -> None:
    check_reset_and_unlock(sqlite_db)


def test_reset_forces_reenrolment_and_unlock_clears_a_lock_on_postgres(
    postgres_db: Database,
) -> None:
    postgres_db.store().create_schema()
    check_reset_and_unlock(postgres_db)


def test_the_default_operator_is_the_os_user_and_bad_texts_are_usage_errors(
    sqlite_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = sqlite_db.env()
    mfa = facade(sqlite_db)
    enrol(mfa, Subject(id="u-gus"))
    monkeypatch.setenv("LOGNAME", "os-user-gus")  # getpass.getuser() reads LOGNAME first
    result = run_main("unlock", "u-gus", environ=env)
    assert result.status == 0, result.err
    (line,) = result.err.splitlines()
    assert json.loads(line.removeprefix("mfakit: audit: "))["actor"] == "os-user-gus"
    for args in (
        ("unlock", "u-gus", "--reason", "two\nlines"),
        ("unlock", "u-gus", "--operator", " "),
        ("unlock", "x" * 300),
    ):
        result = run_main(*args, environ=env)
        assert result.status == 2, args
        result.error_line  # noqa: B018 - asserts one line


# ------------------------------------------------------------------------------------------
# rotate-keys
# ------------------------------------------------------------------------------------------
def test_rotate_keys_moves_every_secret_to_the_new_key(sqlite_db: Database) -> None:
    clock = FakeClock(dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1))
    mfa = facade(sqlite_db, clock=clock)
    subjects = [Subject(id=f"u-{n}") for n in range(3)]
    secrets = {s.id: enrol(mfa, s, clock) for s in subjects}
    batch = mfa.enroll(subjects[0], RecoveryCodes.setup())

    no_keys = cli("rotate-keys", db=sqlite_db)
    assert no_keys.status == 1
    assert "MFAKIT_KEYS is not set" in no_keys.error_line
    malformed = run_main("rotate-keys", environ=sqlite_db.env(MFAKIT_KEYS=NEW[:-3] + "!!!"))
    assert malformed.status == 1
    assert NEW.split(":")[1][:20] not in malformed.err  # no key material echoed

    rotated = cli(
        "rotate-keys", "--operator", "ops-kim", db=sqlite_db, env={"MFAKIT_KEYS": f"{NEW},{OLD}"}
    )
    assert rotated.status == 0, rotated.err
    assert rotated.out.splitlines()[0] == "re-encrypted 3 secret(s) under key new"
    # The recovery codes' keyed hashes cannot be recomputed: the old key is still needed.
    assert "still needed by stored records (keep them in MFAKIT_KEYS): old (1 record(s))" in (
        rotated.out
    )
    (event,) = rotated.audit()
    assert (event["event"], event["operator"], event["detail"]) == (
        "keys_rotated",
        "ops-kim",
        {"rotated": 3},
    )

    # Every TOTP secret now verifies with the new key alone, as the current key...
    new_only = facade(sqlite_db, keys=NEW)
    store = sqlite_db.store()
    for subject in subjects:
        (credential,) = [c for c in store.list_credentials(subject.id) if c.factor == "totp"]
        assert Keyring.from_string(NEW).key_id_of(credential.secret) == "new"
        sign_in(new_only, subject, secrets[subject.id], offset=0)
    store.close()
    # ... and the old key alone can no longer read them.
    old_only = facade(sqlite_db, keys=OLD)
    with pytest.raises(DecryptionError):
        sign_in(old_only, subjects[1], secrets[subjects[1].id])

    # Once the recovery codes are replaced, nothing needs the old key any more.
    mfa_new = facade(sqlite_db, keys=f"{NEW},{OLD}")
    mfa_new.enroll(subjects[0], RecoveryCodes.setup())
    assert batch.credential.id not in {c.id for c in mfa_new.credentials(subjects[0])}
    again = run_main("rotate-keys", environ=sqlite_db.env(MFAKIT_KEYS=f"{NEW},{OLD}"))
    assert again.status == 0, again.err
    assert again.out.splitlines() == [
        "re-encrypted 0 secret(s) under key new",
        "no stored record needs old any more; remove from MFAKIT_KEYS once codes and "
        "sign-ins in flight have expired (10 minutes)",
    ]


# ------------------------------------------------------------------------------------------
# purge
# ------------------------------------------------------------------------------------------
def test_purge_deletes_challenges_expired_longer_than_keep_for(sqlite_db: Database) -> None:
    an_hour_ago = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)
    clock = FakeClock(an_hour_ago)
    mfa = facade(sqlite_db, clock=clock)
    hana = Subject(id="u-hana")
    enrol(mfa, hana, clock)
    stale = mfa.challenge(hana, "totp")  # expired about an hour ago
    clock.set(dt.datetime.now(dt.timezone.utc))
    fresh = mfa.challenge(hana, "totp")

    kept = run_main("purge", "--keep-for", "120", environ=sqlite_db.env())
    assert (kept.status, kept.out) == (0, "deleted 0 expired challenge(s)\n"), kept.err
    purged = cli("purge", db=sqlite_db)
    assert (purged.status, purged.out) == (0, "deleted 1 expired challenge(s)\n"), purged.err
    store = sqlite_db.store()
    assert store.get_challenge(stale.id) is None
    assert store.get_challenge(fresh.id) is not None
    store.close()
    negative = run_main("purge", "--keep-for", "-5", environ=sqlite_db.env())
    assert negative.status == 2
    assert "--keep-for" in negative.error_line


# ------------------------------------------------------------------------------------------
# failures: one line, the right status, no secret
# ------------------------------------------------------------------------------------------
def test_failures_in_a_child_process_are_one_line_without_traceback() -> None:
    password = "hunter2-sekrit"
    cases: list[tuple[tuple[str, ...], dict[str, str], int, str]] = [
        # (arguments, environment, exit status, text in the line)
        (("frobnicate",), {}, 2, "invalid choice"),
        (("report", "--database", f"postgresql://u:{password}@h:port/db"), {}, 2, "malformed"),
        (
            ("purge", "--database", f"postgresql+psycopg://u:{password}@127.0.0.1:1/db"),
            {},
            1,
            "postgresql+psycopg://u:***@127.0.0.1:1/db",
        ),
    ]
    for args, env, status, text in cases:
        result = cli(*args, env=env)
        assert result.status == status, (args, result.err)
        assert text in result.error_line, (args, result.err)
        assert password not in result.err + result.out
        assert result.out == ""


def test_failures_in_process(sqlite_db: Database, tmp_path: Path) -> None:
    env = sqlite_db.env()
    plain = tmp_path / "plain.db"
    sqlite3.connect(plain).close()  # a database file without mfakit's tables
    cases: list[tuple[tuple[str, ...], dict[str, str], int, str]] = [
        (("report",), {}, 2, "no database"),
        (("report",), {"MFAKIT_DATABASE_URL": f"sqlite:///{tmp_path}/none.db"}, 1, "not exist"),
        (("report", "--database", f"sqlite:///{plain}"), {}, 1, "run 'mfakit schema create'"),
        (("report", "--database", "nosuchdialect://x"), {}, 2, "unknown database dialect"),
        (("report", "--table-prefix", "bad-prefix"), env, 2, "--table-prefix"),
        (("report", "--format", "xml"), env, 2, "--format"),
        (("reset",), env, 2, "SUBJECT_ID"),
        (("unlock", "u-nobody"), env, 1, "unknown subject 'u-nobody'"),
        (("schema",), env, 2, "ACTION"),
        (("generate-key", "--key-id", "not valid!"), {}, 2, "--key-id"),
        (("demo", "--memory", "--database", "x"), {}, 2, "not allowed with"),
        (("demo", "--memory", "--account", "a\x07b"), {}, 2, "--account"),
    ]
    for args, environ, status, text in cases:
        result = run_main(*args, environ=environ)
        assert result.status == status, (args, result.err)
        assert text in result.error_line, (args, result.err)


def test_every_command_has_help_with_examples() -> None:
    for command in (
        ("demo",),
        ("generate-key",),
        ("schema",),
        ("rotate-keys",),
        ("report",),
        ("reset",),
        ("unlock",),
        ("purge",),
    ):
        result = run_main(*command, "--help")
        assert result.status == 0, command
        assert "examples:" in result.out, command
        assert result.err == ""
    top = run_main("--help")
    assert "exit status: 0 done, 1 failed" in top.out
    assert "MFAKIT_KEYS" in run_main("demo", "--help").out
