"""SQLStore under faults, and what its tables would give away if they were stolen.

* **Connection killed mid-verify** (PostgreSQL): the database connection serving a
  ``verify`` is terminated with ``pg_terminate_backend`` from a second connection, just
  before each statement and each ``COMMIT`` of that verify in turn (every position, for a
  TOTP and for an SMS verify). Each time the call raises a typed
  :class:`~mfakit.exceptions.StoreError` (never a driver exception, never the code in its
  message), the database is exactly as it was just before the killed statement (nothing
  half-written), every row is a whole old or whole new version, and a retry on a fresh
  connection accepts the right code at most once over both calls and refuses the replay.
* **A dump of every table** (every row, every column), after enrolling TOTP, SMS,
  e-mail, a PIN, secret questions and recovery codes and opening challenges, holds none of
  the secrets in clear: not the TOTP seed (raw, hex, base32), the phone number, the
  e-mail address, a delivered code, the PIN, an answer or a recovery code. On SQLite,
  PostgreSQL and MariaDB.

Database URLs: ``MFAKIT_TEST_POSTGRES_URL`` and ``MFAKIT_TEST_MYSQL_URL`` (skipped when
unset, a failure under ``CI=true``).
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import pytest

from mfakit import MFA, Keyring, Lockout, Subject
from mfakit.exceptions import ChallengeNotFound, ReplayedCode, StoreError
from mfakit.factors import (
    SMSOTP,
    TOTP,
    AnswerRules,
    EmailOTP,
    RecoveryCodes,
    RecoveryPIN,
    SecretQuestions,
)
from mfakit.hazmat.hashing import SecretHasher
from mfakit.testing import FakeClock, Outbox, totp_now

IN_CI: Final = os.environ.get("CI", "").lower() == "true"

try:
    import sqlalchemy as sa
except ImportError:  # pragma: no cover - the "sql" extra is not installed
    if IN_CI:
        raise
    pytest.skip("SQLAlchemy is not installed (pip install 'mfakit[sql]')", allow_module_level=True)

from driver_spy import DriverSpy  # noqa: E402
from mfakit.storage.sql import SQLStore  # noqa: E402

T0: Final = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
PHONE: Final = "+61412345678"
ADDRESS: Final = "alice.secret-box@example.org"
PIN: Final = "739164"
ANSWERS: Final = {"pet": "Rexy Wolfhound", "city": "Ouagadougou", "school": "St Brigid's"}
CATALOGUE: Final = {
    "pet": "Name of your first pet",
    "city": "City where your parents met",
    "school": "Your primary school",
}
SERVICES: Final = {
    "postgres": ("MFAKIT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
    "mysql": ("MFAKIT_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test"),
}


def service_url(name: str) -> str:
    variable, example = SERVICES[name]
    url = os.environ.get(variable)
    if not url:
        message = f"{variable} is not set (e.g. {example})"
        if IN_CI:
            pytest.fail(f"CI=true but {message}")
        pytest.skip(message)
    return url


def build_mfa(store: SQLStore, clock: FakeClock, outbox: Outbox, keyring: Keyring) -> MFA:
    hasher = SecretHasher.owasp_minimum()
    return MFA(
        store=store,
        keyring=keyring,
        factors=[
            TOTP(issuer="ACME"),
            SMSOTP(sender=outbox, issuer="ACME", regions={"AU"}),
            EmailOTP(
                sender=outbox,
                from_address="mfa@acme.example",
                issuer="ACME",
                use_profile_address=False,
            ),
            RecoveryPIN(hasher=hasher),
            SecretQuestions(CATALOGUE, hasher=hasher, rules=AnswerRules(count=3)),
            RecoveryCodes(),
        ],
        clock=clock,
        lockout=Lockout(max_failures=100, mode="suspend"),
    )


def dump(store: SQLStore, engine: sa.Engine | None = None) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table of the store, every column, in key order (raw values)."""
    tables: dict[str, list[tuple[Any, ...]]] = {}
    with (engine or store.engine).connect() as conn:
        for table in store.metadata.sorted_tables:
            columns = ", ".join(conn.dialect.identifier_preparer.quote(c.name) for c in table.c)
            name = conn.dialect.identifier_preparer.quote(table.name)
            keys = ", ".join(
                conn.dialect.identifier_preparer.quote(c.name) for c in table.primary_key
            )
            rows = conn.exec_driver_sql(f"SELECT {columns} FROM {name} ORDER BY {keys}").all()
            tables[table.name] = [tuple(row) for row in rows]
    return tables


# ------------------------------------------------------------------------------------------
# a stolen dump gives nothing away
# ------------------------------------------------------------------------------------------
@pytest.fixture(params=["sqlite", "postgres", "mysql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SQLStore]:
    url = (
        f"sqlite:///{tmp_path}/dump.db" if request.param == "sqlite" else service_url(request.param)
    )
    store = SQLStore(url, table_prefix=f"flt{uuid.uuid4().hex[:8]}_", create=True)
    try:
        yield store
    finally:
        store.drop_schema()
        store.close()


def seed_forms(secret_b32: str) -> tuple[set[bytes], set[str]]:
    raw = base64.b32decode(secret_b32.upper() + "=" * (-len(secret_b32) % 8))
    text = {
        secret_b32,
        secret_b32.upper(),
        secret_b32.lower(),
        secret_b32.rstrip("="),
        raw.hex(),
        raw.hex().upper(),
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
    }
    return {raw}, text


def test_a_dump_of_every_table_holds_no_secret_in_clear(store: SQLStore) -> None:
    clock = FakeClock(T0)
    outbox = Outbox()
    mfa = build_mfa(store, clock, outbox, Keyring.ephemeral())
    alice = Subject(id="u-alice", tenant="t1", username="alice")
    codes: list[str] = []

    totp = mfa.enroll(alice, "totp")
    code = totp_now(totp.secret, clock.now())
    codes.append(code)
    assert mfa.confirm(alice, totp.id, code).active
    sms = mfa.enroll(alice, SMSOTP.setup(PHONE, "AU"))
    codes.append(outbox.last_code(PHONE))
    assert mfa.confirm(alice, sms.id, codes[-1]).active
    email = mfa.enroll(alice, EmailOTP.setup(ADDRESS))
    codes.append(outbox.last_code(ADDRESS))
    assert mfa.confirm(alice, email.id, codes[-1]).active
    assert mfa.enroll(alice, RecoveryPIN.setup(PIN)).active
    assert mfa.enroll(alice, SecretQuestions.setup(ANSWERS)).active
    batch = mfa.enroll(alice, RecoveryCodes.setup())
    # open challenges whose codes were sent and not used yet, and a failed attempt
    clock.advance(60)
    codes.append(outbox.last_code(PHONE) if mfa.challenge(alice, "sms") else "")
    challenge = mfa.challenge(alice, "email")
    codes.append(outbox.last_code(ADDRESS))
    with pytest.raises(Exception):  # noqa: B017, PT011 - any refusal; the count matters
        mfa.verify(alice, challenge.id, f"{(int(codes[-1]) + 1) % 10**6:06d}")
    assert mfa.lock_state(alice).failures == 1
    assert len(set(codes)) >= 3  # codes really were delivered and differ

    tables = dump(store)
    assert sum(len(rows) for rows in tables.values()) >= 10
    assert len(tables[f"{store._prefix}credentials"]) == 6  # every factor is stored

    raw_secrets, text_secrets = seed_forms(totp.secret)
    national = PHONE.removeprefix("+61")
    text_secrets |= {PHONE, national, "0" + national, ADDRESS, ADDRESS.upper(), PIN}
    for answer in ANSWERS.values():
        text_secrets |= {answer, answer.lower(), answer.casefold().replace(" ", "")}
    for recovery in batch.codes:
        text_secrets |= {recovery, recovery.replace("-", ""), recovery.lower()}
    # codes are short digit strings: look for them as whole numbers only, and not in
    # timestamps (whose digits could match one by chance)
    code_pattern = re.compile(r"(?<![0-9])(" + "|".join(sorted(set(codes))) + r")(?![0-9])")

    for table_name, rows in tables.items():
        table = store.metadata.tables[table_name]
        for row in rows:
            for column, value in zip(table.c, row, strict=True):
                where = f"{table_name}.{column.name}"
                if isinstance(value, (bytes, bytearray, memoryview)):
                    blob = bytes(value)
                    assert not any(r in blob for r in raw_secrets), where
                    for secret in text_secrets:
                        assert secret.encode() not in blob, where
                    timelike = False
                    as_text = blob.decode("latin-1")
                elif isinstance(value, str):
                    for secret in text_secrets:
                        assert secret not in value, where
                        assert secret.casefold() not in value.casefold(), where
                    timelike = column.name.endswith("_at") or column.name == "sent"
                    as_text = value
                else:
                    continue
                if not timelike:
                    assert code_pattern.search(as_text) is None, where


# ------------------------------------------------------------------------------------------
# the connection dies in the middle of a verify (PostgreSQL)
# ------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Scenario:
    """One subject with an active credential, an open challenge and the right code."""

    subject: Subject
    challenge_id: str
    code: str
    credential_id: str
    step: int | None  # TOTP: the code's time step


@dataclasses.dataclass
class Killer:
    """Terminates the store's own backend just before its ``target``-th event.

    Events are what the driver sends (``tests/driver_spy.py``), statements and commits
    alike, so the statements SQLStore runs straight on the driver in a verification unit
    count too. The pool's pre-ping (``;``) is not a position: a connection found dead
    there is replaced before the verify starts.
    """

    admin: sa.Engine
    store: SQLStore
    target: int | None = None  # None: only count
    seen: list[str] = dataclasses.field(default_factory=list)
    before_kill: dict[str, list[tuple[Any, ...]]] | None = None

    def hit(self, connection: Any, kind: str, _sql: str, _parameters: Any) -> None:
        if kind == ";":
            return
        self.seen.append(kind)
        if len(self.seen) != self.target:
            return
        self.before_kill = dump(self.store, self.admin)
        pid = connection.info.backend_pid
        with self.admin.connect() as admin:
            # Wait (up to 10 s) until the backend is really gone, then let the statement run.
            done = admin.execute(
                sa.text("SELECT pg_terminate_backend(:pid, 10000)"), {"pid": pid}
            ).scalar()
        assert done is True

    def spy(self) -> DriverSpy:
        return DriverSpy(self.store.engine, hook=self.hit)


@pytest.fixture
def pg() -> Iterator[tuple[SQLStore, sa.Engine]]:
    url = service_url("postgres")
    store = SQLStore(url, table_prefix=f"flt{uuid.uuid4().hex[:8]}_", create=True)
    admin = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        yield store, admin
    finally:
        store.drop_schema()
        store.close()
        admin.dispose()


def prepare(mfa: MFA, clock: FakeClock, outbox: Outbox, factor: str, number: int) -> Scenario:
    subject = Subject(id=f"s{number}-{uuid.uuid4().hex[:6]}", username=f"user{number}")
    if factor == "totp":
        enrollment = mfa.enroll(subject, "totp")
        assert mfa.confirm(subject, enrollment.id, totp_now(enrollment.secret, clock.now()))
        at = clock.now() + dt.timedelta(seconds=30)
        challenge = mfa.challenge(subject, "totp")
        return Scenario(
            subject,
            challenge.id,
            totp_now(enrollment.secret, at),
            enrollment.id,
            int(at.timestamp()) // 30,
        )
    sms = mfa.enroll(subject, SMSOTP.setup(PHONE, "AU"))
    assert mfa.confirm(subject, sms.id, outbox.last_code(PHONE)).active
    challenge = mfa.challenge(subject, "sms")
    return Scenario(subject, challenge.id, outbox.last_code(PHONE), sms.id, None)


def rows_of(store: SQLStore, scenario: Scenario) -> dict[str, dict[str, Any] | None]:
    """The scenario's credential, challenge and lock rows (all columns), as stored."""
    p, found = store._prefix, {}
    keys = {
        "credentials": ("id", scenario.credential_id),
        "challenges": ("id", scenario.challenge_id),
        "lock_states": ("subject_id", scenario.subject.id),
    }
    with store.engine.connect() as conn:
        for name, (column, value) in keys.items():
            table = store.metadata.tables[p + name]
            row = conn.execute(sa.select(table).where(table.c[column] == value)).first()
            found[name] = None if row is None else dict(row._mapping)
    return found


def changed(before: dict[str, Any], after: dict[str, Any]) -> set[str]:
    return {k for k in before if before[k] != after[k]}


def check_whole_versions(
    old: dict[str, dict[str, Any] | None], now: dict[str, dict[str, Any] | None], factor: str
) -> None:
    """Each row is the old version or one whole step on from it, never a mixture."""
    cred_old, cred_now = old["credentials"], now["credentials"]
    assert cred_old is not None
    assert cred_now is not None
    if cred_now["version"] == cred_old["version"]:
        assert cred_now == cred_old
    else:  # TOTP records the accepted step: counter, last use, version and nothing else
        assert factor == "totp"
        assert cred_now["version"] == cred_old["version"] + 1
        assert changed(cred_old, cred_now) == {"counter", "last_used_at", "version"}
    ch_old, ch_now = old["challenges"], now["challenges"]
    assert ch_old is not None
    if ch_now is not None:
        if ch_now["version"] == ch_old["version"]:
            assert ch_now == ch_old
        else:  # charged one attempt
            assert (ch_now["version"], ch_now["attempts"]) == (2, 1)
            assert changed(ch_old, ch_now) == {"attempts", "version"}
    lock_old, lock_now = old["lock_states"], now["lock_states"]
    base = 0 if lock_old is None else int(lock_old["version"])
    assert lock_old is None or lock_old["failures"] == 0
    if lock_now is None:
        assert lock_old is None
    else:
        # charged (one failure) or charged then reset (no failure): a whole version each
        assert (lock_now["version"], lock_now["failures"]) in {
            (base, 0),
            (base + 1, 1),
            (base + 2, 0),
        }
        assert (lock_now["locked_until"], bool(lock_now["suspended"])) == (None, False)


#: Each verify path, and what its clean run must send at least (statement kinds).
PATHS: Final = {
    # TOTP with a challenge: the challenge is read, then one unit (lock row FOR UPDATE,
    # credentials, challenge; credential advanced, challenge deleted) and one COMMIT.
    "totp": {"SELECT", "UPDATE", "DELETE", "COMMIT"},
    # TOTP without a challenge (verify_totp): one unit, one COMMIT.
    "totp_direct": {"SELECT", "UPDATE", "COMMIT"},
    # SMS: the conditional writes of the delivered-code path, each committed.
    "sms": {"SELECT", "UPDATE", "DELETE", "COMMIT"},
}


@pytest.mark.parametrize("path", sorted(PATHS))
def test_backend_killed_at_each_statement_of_a_verify(
    pg: tuple[SQLStore, sa.Engine], path: str
) -> None:
    store, admin = pg
    clock = FakeClock(T0)
    outbox = Outbox()
    mfa = build_mfa(store, clock, outbox, Keyring.ephemeral())
    factor = "sms" if path == "sms" else "totp"

    def attempt(scenario: Scenario, challenge_id: str | None = None) -> None:
        if path == "totp_direct":
            mfa.verify_totp(scenario.subject, scenario.code)
        else:
            mfa.verify(scenario.subject, challenge_id or scenario.challenge_id, scenario.code)

    # A clean verify, counted: the positions to kill at.
    scenario = prepare(mfa, clock, outbox, factor, 0)
    clock.advance(30)
    counter = Killer(admin, store)
    with counter.spy():
        attempt(scenario)
    positions = counter.seen
    assert set(positions) >= PATHS[path], positions
    if path == "sms":
        assert positions.count("COMMIT") >= 3  # charge, charge challenge, claim, reset

    for target in range(1, len(positions) + 1):
        where = f"{path}: killed before event {target} of {len(positions)} {positions}"
        clock.set(T0 + dt.timedelta(hours=target))
        scenario = prepare(mfa, clock, outbox, factor, target)
        clock.advance(30)
        old = rows_of(store, scenario)
        killer = Killer(admin, store, target)
        with killer.spy(), pytest.raises(StoreError) as caught:
            attempt(scenario)
        assert killer.seen[-1] == positions[target - 1], where
        error = caught.value
        message = str(error)
        assert "SQLStore." in message, where
        assert scenario.code not in message, where
        assert error.__cause__ is None, where
        # nothing half-written: the database is exactly as before the killed statement
        assert dump(store, admin) == killer.before_kill, where
        now = rows_of(store, scenario)
        check_whole_versions(old, now, factor)

        # A retry, on a fresh connection, with the same code.
        accepted = 0
        if factor == "totp":
            credential = now["credentials"]
            assert credential is not None
            used = credential["counter"] >= (scenario.step or 0)
            for _ in range(2):
                retry = mfa.challenge(scenario.subject, "totp")
                try:
                    attempt(scenario, retry.id)
                    accepted += 1
                except ReplayedCode:
                    pass
            # the code is good exactly once: in the killed call (recorded) or a retry
            assert accepted == (0 if used else 1), where
        else:
            claimed = now["challenges"] is None
            for _ in range(2):
                try:
                    mfa.verify(scenario.subject, scenario.challenge_id, scenario.code)
                    accepted += 1
                except ChallengeNotFound:
                    pass
            assert accepted == (0 if claimed else 1), where
        if factor == "sms":  # the delivered code's challenge is single-use
            assert store.get_challenge(scenario.challenge_id) is None, where
