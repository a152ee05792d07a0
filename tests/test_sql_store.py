"""SQLStore: the store contract on SQLite, PostgreSQL and MariaDB, the facade on it, races.

PostgreSQL runs when ``MFAKIT_TEST_POSTGRES_URL`` names a server (for example
``postgresql+psycopg://postgres@127.0.0.1:5432/test``), MariaDB/MySQL when
``MFAKIT_TEST_MYSQL_URL`` does (``mysql+pymysql://root@127.0.0.1:3306/test``); outside CI
each is skipped when its variable is unset. Under ``CI=true`` a missing variable or an
unreachable server fails.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import multiprocessing
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Final, cast

import pytest

from mfakit import MFA, Changes, Keyring, Lockout, Subject, SubjectRecords, Verification
from mfakit.exceptions import MFAError, ReplayedCode, StoreError
from mfakit.factors import TOTP
from mfakit.testing import FakeClock, StoreContract, totp_now
from mfakit.testing.contract import make_challenge, make_credential
from mfakit.typing import Store

IN_CI: Final = os.environ.get("CI", "").lower() == "true"

try:
    import sqlalchemy as sa
except ImportError:  # pragma: no cover - the "sql" extra is not installed
    if IN_CI:
        raise  # CI installs the extra: never skip the SQL store there
    pytest.skip("SQLAlchemy is not installed (pip install 'mfakit[sql]')", allow_module_level=True)

from mfakit.storage.sql import SCHEMA_VERSION, SQLStore  # noqa: E402

SRC: Final = str(Path(__file__).resolve().parents[1] / "src")
POSTGRES_ENV: Final = "MFAKIT_TEST_POSTGRES_URL"
MYSQL_ENV: Final = "MFAKIT_TEST_MYSQL_URL"
T0: Final = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.timezone.utc)


def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/mfa.db"


# ------------------------------------------------------------------------------------------
# the contract on SQLite
# ------------------------------------------------------------------------------------------
class TestSQLiteStore(StoreContract):
    """Every check of :class:`StoreContract` on a SQLite file."""

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[Store]:
        store = SQLStore(sqlite_url(tmp_path), create=True)
        yield store
        store.close()


# ------------------------------------------------------------------------------------------
# the contract on PostgreSQL
# ------------------------------------------------------------------------------------------
def service_engine(variable: str, example: str) -> sa.Engine:
    """An engine on the server named by ``variable``; skip (fail under CI) without one."""
    url = os.environ.get(variable)
    if not url:
        message = f"{variable} is not set (e.g. {example})"
        if IN_CI:
            pytest.fail(f"CI=true but {message}")
        pytest.skip(message)
    engine = sa.create_engine(url, hide_parameters=True, connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
    except sa.exc.SQLAlchemyError as error:
        engine.dispose()
        # The variable is set: an unreachable server is a failure, never a skip.
        pytest.fail(f"{variable} is set but the server does not answer: {error}")
    return engine


@pytest.fixture(scope="module")
def postgres_engine() -> Iterator[sa.Engine]:
    engine = service_engine(POSTGRES_ENV, "postgresql+psycopg://postgres@127.0.0.1/test")
    yield engine
    engine.dispose()


class TestPostgresStore(StoreContract):
    """Every check of :class:`StoreContract` on PostgreSQL, in tables of its own."""

    @pytest.fixture
    def store(self, postgres_engine: sa.Engine) -> Iterator[Store]:
        store = SQLStore(postgres_engine, table_prefix=f"t{uuid.uuid4().hex[:8]}_", create=True)
        yield store
        store.drop_schema()


def test_postgres_round_trip_keeps_utc(postgres_engine: sa.Engine) -> None:
    store = SQLStore(postgres_engine, table_prefix=f"t{uuid.uuid4().hex[:8]}_", create=True)
    try:
        with postgres_engine.begin() as conn:
            conn.execute(sa.text("SET TIME ZONE 'Australia/Sydney'"))
        sydney = dt.timezone(dt.timedelta(hours=11))
        credential = dataclasses.replace(make_credential(), created_at=T0.astimezone(sydney))
        assert store.put_credential(credential)
        loaded = store.get_credential("cr_1")
        assert loaded is not None
        assert loaded.created_at == T0
        assert loaded.created_at.utcoffset() == dt.timedelta(0)
        assert store.upgrade() == SCHEMA_VERSION
    finally:
        store.drop_schema()


# ------------------------------------------------------------------------------------------
# the contract on MariaDB / MySQL
# ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def mysql_engine() -> Iterator[sa.Engine]:
    engine = service_engine(MYSQL_ENV, "mysql+pymysql://root@127.0.0.1:3306/test")
    yield engine
    engine.dispose()


class TestMariaDBStore(StoreContract):
    """Every check of :class:`StoreContract` on MariaDB (InnoDB, REPEATABLE READ)."""

    @pytest.fixture
    def store(self, mysql_engine: sa.Engine) -> Iterator[Store]:
        store = SQLStore(mysql_engine, table_prefix=f"t{uuid.uuid4().hex[:8]}_", create=True)
        yield store
        store.drop_schema()


@pytest.fixture
def mysql_store(mysql_engine: sa.Engine) -> Iterator[SQLStore]:
    store = SQLStore(mysql_engine, table_prefix=f"t{uuid.uuid4().hex[:8]}_", create=True)
    yield store
    store.drop_schema()


def test_mysql_keeps_microseconds_and_utc(mysql_store: SQLStore) -> None:
    with mysql_store.engine.begin() as conn:  # DATETIME ignores the session zone; check it
        conn.execute(sa.text("SET time_zone = '+10:00'"))
    when = T0.replace(microsecond=123456).astimezone(dt.timezone(dt.timedelta(hours=-5)))
    credential = dataclasses.replace(make_credential(), created_at=when, last_used_at=when)
    assert mysql_store.put_credential(credential)
    loaded = mysql_store.get_credential("cr_1")
    assert loaded is not None
    assert loaded.created_at == loaded.last_used_at == when
    assert loaded.created_at.microsecond == 123456
    assert loaded.created_at.utcoffset() == dt.timedelta(0)


def test_mysql_update_rowcount_counts_matched_rows(mysql_store: SQLStore) -> None:
    """SQLAlchemy's MySQL drivers set CLIENT_FOUND_ROWS: an UPDATE that rewrites the same
    values still reports the matched row, and a missed version reports none."""
    assert mysql_store.put_credential(make_credential())
    t = mysql_store.metadata.tables[f"{mysql_store._prefix}credentials"]
    with mysql_store.engine.begin() as conn:
        same = conn.execute(sa.update(t).where(t.c.id == "cr_1").values(label=t.c.label))
        missed = conn.execute(
            sa.update(t).where(t.c.id == "cr_1", t.c.version == 7).values(label="x")
        )
    assert (same.rowcount, missed.rowcount) == (1, 0)
    bumped = dataclasses.replace(make_credential(), version=2)
    assert mysql_store.put_credential(bumped)
    assert not mysql_store.put_credential(bumped)  # the same version again: no row matches


def test_mysql_constraint_violations_are_errors_not_lost_races(mysql_store: SQLStore) -> None:
    """Only a duplicate key (ER_DUP_ENTRY) is a lost insert race; NOT NULL is a fault."""
    broken = dataclasses.replace(make_credential(), label=cast(str, None))
    with pytest.raises(StoreError, match="IntegrityError"):
        mysql_store.put_credential(broken)
    assert mysql_store.put_credential(make_credential())
    assert not mysql_store.put_credential(make_credential())  # duplicate key: lost race


# ------------------------------------------------------------------------------------------
# keys compare exactly on every database
# ------------------------------------------------------------------------------------------
@pytest.fixture(params=["sqlite", "postgres", "mysql"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SQLStore]:
    if request.param == "sqlite":
        store = SQLStore(sqlite_url(tmp_path), create=True)
        yield store
        store.close()
        return
    engine = request.getfixturevalue(f"{request.param}_engine")
    store = SQLStore(engine, table_prefix=f"t{uuid.uuid4().hex[:8]}_", create=True)
    yield store
    store.drop_schema()


def test_keys_are_case_accent_and_space_sensitive(any_store: SQLStore) -> None:
    """MySQL's default collations would make these one key; the store must not."""
    names = ["alice", "ALICE", "Alice", "alice ", "al\u00efce", "al\u00cfce"]
    for number, name in enumerate(names, start=1):
        state = dataclasses.replace(any_store.get_lock_state(name), failures=number, version=1)
        assert any_store.put_lock_state(state), name
        assert any_store.put_quota(dataclasses.replace(any_store.get_quota(name), version=1))
        credential = make_credential(f"cr_{number}", name)
        assert any_store.put_credential(credential), name
    for number, name in enumerate(names, start=1):
        assert any_store.get_lock_state(name).failures == number
        assert any_store.get_quota(name).key == name
        assert [c.id for c in any_store.list_credentials(name)] == [f"cr_{number}"]
    assert any_store.get_lock_state("aLiCe").version == 0
    assert any_store.get_credential("CR_1") is None
    ids = [c.id for c in any_store.iter_credentials()]
    assert ids == sorted(ids)
    assert len(ids) == len(names)


# ------------------------------------------------------------------------------------------
# SQLStore's own behaviour
# ------------------------------------------------------------------------------------------
@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SQLStore]:
    store = SQLStore(sqlite_url(tmp_path), create=True)
    yield store
    store.close()


def test_satisfies_the_store_protocol(sqlite_store: SQLStore) -> None:
    assert isinstance(sqlite_store, Store)


def test_sqlite_pragmas_are_set(sqlite_store: SQLStore) -> None:
    with sqlite_store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL


def test_schema_version_create_upgrade_drop(tmp_path: Path) -> None:
    store = SQLStore(sqlite_url(tmp_path), table_prefix="app_")
    assert store.schema_version() is None
    with pytest.raises(StoreError, match="create_schema"):
        store.upgrade()
    store.create_schema()
    store.create_schema()  # idempotent
    assert store.schema_version() == SCHEMA_VERSION == 1
    assert store.upgrade() == 1
    names = set(sa.inspect(store.engine).get_table_names())
    assert names == {
        "app_credentials",
        "app_challenges",
        "app_lock_states",
        "app_quotas",
        "app_schema_version",
    }
    with store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE app_schema_version SET version = 2"))
    with pytest.raises(StoreError, match="newer"):
        store.upgrade()
    store.drop_schema()
    assert sa.inspect(store.engine).get_table_names() == []
    store.close()


def test_own_metadata_and_prefixes_are_isolated(tmp_path: Path) -> None:
    host_metadata = sa.MetaData()
    a = SQLStore(sqlite_url(tmp_path), table_prefix="a_", create=True)
    b = SQLStore(a.engine, table_prefix="b_", create=True)
    assert a.metadata is not b.metadata
    assert host_metadata.tables == {}
    assert a.put_credential(make_credential())
    assert b.get_credential("cr_1") is None
    assert list(b.iter_credentials()) == []
    b.close()  # not its engine: still usable through a
    assert a.get_credential("cr_1") is not None
    a.close()


def test_in_memory_sqlite_is_one_shared_database() -> None:
    store = SQLStore("sqlite://", create=True)
    assert store.put_lock_state(dataclasses.replace(store.get_lock_state("s1"), version=1))
    results: list[int] = []
    thread = threading.Thread(target=lambda: results.append(store.get_lock_state("s1").version))
    thread.start()
    thread.join()
    assert results == [1]
    store.close()


def test_repr_hides_the_password() -> None:
    store = SQLStore("postgresql+psycopg://mfa:hunter2secret@db.example:5432/app")
    text = repr(store)
    assert "hunter2secret" not in text
    assert "db.example" in text
    assert "mfakit_" in text


def test_driver_errors_become_store_errors_without_contents(tmp_path: Path) -> None:
    store = SQLStore(sqlite_url(tmp_path))  # tables never created
    credential = make_credential()
    with pytest.raises(StoreError) as caught:
        store.put_credential(dataclasses.replace(credential, version=2))
    message = str(caught.value)
    assert "put_credential" in message
    assert "OperationalError" in message
    assert credential.secret.hex() not in message
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__
    with pytest.raises(StoreError):
        store.get_credential("cr_1")
    store.close()


def test_bad_table_prefix_is_refused() -> None:
    with pytest.raises(StoreError):
        SQLStore("sqlite://", table_prefix="x; drop table y")


def test_naive_datetime_is_refused(sqlite_store: SQLStore) -> None:
    naive = dataclasses.replace(make_credential(), created_at=T0.replace(tzinfo=None))
    with pytest.raises(StoreError, match="naive"):
        sqlite_store.put_credential(naive)


def test_constraint_violations_are_errors_not_lost_races(sqlite_store: SQLStore) -> None:
    broken = dataclasses.replace(make_credential(), label=cast(str, None))
    with pytest.raises(StoreError, match="IntegrityError"):
        sqlite_store.put_credential(broken)
    assert sqlite_store.put_credential(make_credential())
    with pytest.raises(StoreError, match="IntegrityError"):
        sqlite_store.put_credential(dataclasses.replace(broken, version=2))


def test_other_timezones_come_back_as_utc(sqlite_store: SQLStore) -> None:
    plus10 = dt.timezone(dt.timedelta(hours=10))
    challenge = dataclasses.replace(
        make_challenge(), expires_at=(T0 + dt.timedelta(minutes=5)).astimezone(plus10)
    )
    assert sqlite_store.put_challenge(challenge)
    loaded = sqlite_store.get_challenge(challenge.id)
    assert loaded is not None
    assert loaded.expires_at == T0 + dt.timedelta(minutes=5)
    assert loaded.expires_at.utcoffset() == dt.timedelta(0)
    # purge compares instants, not local wall-clock strings
    assert sqlite_store.purge_challenges(now=(T0 + dt.timedelta(minutes=4)).astimezone(plus10)) == 0
    assert sqlite_store.purge_challenges(now=T0 + dt.timedelta(minutes=5)) == 1


def test_iter_credentials_pages_through_many(sqlite_store: SQLStore) -> None:
    ids = {f"cr_{i:04d}" for i in range(1203)}
    for cid in ids:
        assert sqlite_store.put_credential(make_credential(cid, f"s{len(cid) % 7}"))
    assert sorted(c.id for c in sqlite_store.iter_credentials()) == sorted(ids)


def test_import_storage_does_not_import_sqlalchemy() -> None:
    script = (
        "import sys, mfakit, mfakit.storage, mfakit.testing\nprint('sqlalchemy' in sys.modules)"
    )
    env = {**os.environ, "PYTHONPATH": SRC}
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert done.stdout.strip() == "False"


# ------------------------------------------------------------------------------------------
# the facade on SQLite
# ------------------------------------------------------------------------------------------
ALICE: Final = Subject(id="alice", username="alice")
RACERS: Final = 16


def race(n: int, attempt: Callable[[int], Verification]) -> list[Verification | MFAError]:
    barrier = threading.Barrier(n, timeout=60)

    def run(i: int) -> Verification | MFAError:
        barrier.wait()
        try:
            return attempt(i)
        except MFAError as error:
            return error

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(run, range(n)))


def submitter(mfa: MFA, challenge_ids: list[str], code: str) -> Callable[[int], Verification]:
    def attempt(i: int) -> Verification:
        return mfa.verify(ALICE, challenge_ids[i], code)

    return attempt


@pytest.fixture
def previous_switch_interval() -> Iterator[None]:
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    yield
    sys.setswitchinterval(previous)


@pytest.mark.usefixtures("previous_switch_interval")
def test_totp_through_the_facade_on_sqlite(sqlite_store: SQLStore) -> None:
    clock = FakeClock()
    mfa = MFA(
        store=sqlite_store,
        keyring=Keyring.ephemeral(),
        factors=[TOTP(issuer="ACME")],
        clock=clock,
        lockout=Lockout(max_failures=100, mode="suspend"),
    )
    enrollment = mfa.enroll(ALICE, "totp")
    credential = mfa.confirm(ALICE, enrollment.id, totp_now(enrollment.secret, clock.now()))
    assert credential.active
    clock.advance(30)

    code = totp_now(enrollment.secret, clock.now())
    verification = mfa.verify(ALICE, mfa.challenge(ALICE, "totp").id, code)
    assert verification.credential_id == enrollment.id
    with pytest.raises(ReplayedCode):
        mfa.verify(ALICE, mfa.challenge(ALICE, "totp").id, code)

    used_codes = {code}
    for _ in range(3):
        clock.advance(30)
        code = totp_now(enrollment.secret, clock.now())
        used_codes.add(code)
        challenges = [mfa.challenge(ALICE, "totp").id for _ in range(RACERS)]
        outcomes = race(RACERS, submitter(mfa, challenges, code))
        assert sum(isinstance(o, Verification) for o in outcomes) == 1
        assert sum(isinstance(o, ReplayedCode) for o in outcomes) == RACERS - 1

    # the tables, read with plain SQL, hold neither the seed nor a code in clear
    raw_seed = base64.b32decode(enrollment.secret.upper() + "=" * (-len(enrollment.secret) % 8))
    seed_forms = {enrollment.secret, enrollment.secret.lower(), enrollment.secret.upper()}
    dump = dump_tables(sqlite_store)
    assert dump["mfakit_credentials"], "the credential should be stored"
    for table, rows in dump.items():
        for row in rows:
            for value in row:
                if isinstance(value, bytes):
                    assert raw_seed not in value, table
                    assert not any(s.encode() in value for s in seed_forms), table
                elif isinstance(value, str):
                    assert not any(s in value for s in seed_forms), table
                    if table != "mfakit_credentials":  # ids there are random text
                        assert not any(c in value for c in used_codes), table


def dump_tables(store: SQLStore) -> dict[str, list[tuple[Any, ...]]]:
    dump: dict[str, list[tuple[Any, ...]]] = {}
    with store.engine.connect() as conn:
        for name in sa.inspect(conn).get_table_names():
            rows = conn.exec_driver_sql(f'SELECT * FROM "{name}"').all()
            dump[name] = [tuple(row) for row in rows]
    return dump


# ------------------------------------------------------------------------------------------
# processes racing one SQLite file
# ------------------------------------------------------------------------------------------
PROCESSES: Final = 4
ROUNDS: Final = 50


def _process_racer(url: str, worker: int, barrier: Any, results: Any) -> None:
    store = SQLStore(url)
    wins = []
    for round_no in range(ROUNDS):
        barrier.wait()
        credential = make_credential(f"cr_{round_no}", version=2, counter=worker)
        if store.put_credential(credential):
            wins.append(round_no)
    store.close()
    results.put((worker, wins))


@pytest.mark.slow
def test_processes_racing_one_version_exactly_one_wins(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    store = SQLStore(url, create=True)
    for round_no in range(ROUNDS):
        assert store.put_credential(make_credential(f"cr_{round_no}"))
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(PROCESSES, timeout=60)
    results = ctx.Queue()
    workers = [
        ctx.Process(target=_process_racer, args=(url, w, barrier, results))
        for w in range(PROCESSES)
    ]
    for process in workers:
        process.start()
    collected = dict(results.get(timeout=120) for _ in workers)
    for process in workers:
        process.join(timeout=60)
        assert process.exitcode == 0
    winners: dict[int, list[int]] = {r: [] for r in range(ROUNDS)}
    for worker, wins in collected.items():
        for round_no in wins:
            winners[round_no].append(worker)
    assert all(len(w) == 1 for w in winners.values()), winners
    for round_no, [worker] in winners.items():
        loaded = store.get_credential(f"cr_{round_no}")
        assert loaded is not None
        assert (loaded.version, loaded.counter) == (2, worker)
    store.close()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("not a url at all", "malformed"),
        ("nosuchdialect://user:hunter2@host/db", "unknown dialect"),
        ("postgresql+nosuchdriver://user:hunter2@host/db", "unknown dialect"),
    ],
)
def test_a_bad_url_is_a_store_error_that_never_repeats_the_url(url: str, expected: str) -> None:
    with pytest.raises(StoreError, match=expected) as caught:
        SQLStore(url)
    assert "hunter2" not in str(caught.value)
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


def test_sqlite_units_keep_one_connection_per_thread(tmp_path: Path) -> None:
    """Units on a SQLite file reuse their thread's connection; close() releases them all.

    The pool is not involved: 40 threads running units at once (more than the pool's 5 + 10
    connections) neither wait for it nor exhaust it for the store's other calls.
    """
    from sqlalchemy import event

    store = SQLStore(f"sqlite:///{tmp_path}/units.db", create=True)
    checkouts: list[int] = []  # a unit's connection leaves the pool once, when first used
    event.listen(store.engine, "checkout", lambda dbapi, *_: checkouts.append(id(dbapi)))

    def bump(records: SubjectRecords) -> tuple[Changes, int]:
        lock = records.lock
        return Changes(
            lock=dataclasses.replace(lock, failures=lock.failures + 1, version=lock.version + 1)
        ), lock.failures

    for _ in range(5):
        store.update_subject("s1", bump)
    assert len(checkouts) == 1  # one connection for the thread, kept open

    barrier = threading.Barrier(40)

    def in_a_thread(_: int) -> int:
        barrier.wait()
        return store.update_subject("s1", bump)

    with ThreadPoolExecutor(max_workers=40) as pool:
        seen = list(pool.map(in_a_thread, range(40)))
    assert sorted(seen) == list(range(5, 45))  # serialised: each saw the one before
    assert len(checkouts) == 1 + 40
    assert len(set(checkouts)) == 41  # 41 distinct connections
    assert store.get_lock_state("s1").failures == 45  # the pool still serves other calls

    store.close()
    before = len(checkouts)
    assert store.update_subject("s1", bump) == 45  # a new connection after close()
    assert len(checkouts) == before + 1
    store.close()
