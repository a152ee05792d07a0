"""DjangoStore: the store contract on SQLite and PostgreSQL through the Django ORM.

Django is configured in this process by :func:`django_settings.configure` (once, lazily,
from the ``django_db`` fixture), never at import: collecting this module leaves Django
unconfigured for the rest of the suite.

PostgreSQL runs when ``MFAKIT_TEST_POSTGRES_URL`` names a server; the tables are migrated
into a schema of this run's own, dropped at the end. Outside CI the PostgreSQL tests are
skipped when the variable is unset; under ``CI=true`` a missing variable or an
unreachable server fails.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Final, cast

import pytest

from mfakit import MFA, Keyring, Lockout, LockState, Subject, Verification
from mfakit.exceptions import MFAError, ReplayedCode, StoreError
from mfakit.factors import TOTP
from mfakit.testing import FakeClock, StoreContract, contract, totp_now
from mfakit.testing.contract import make_challenge, make_credential
from mfakit.typing import Store

IN_CI: Final = os.environ.get("CI", "").lower() == "true"

try:
    import django  # noqa: F401
except ImportError:  # pragma: no cover - the "django" extra is not installed
    if IN_CI:
        raise  # CI installs Django: never skip the Django store there
    pytest.skip("Django is not installed (pip install 'mfakit[django]')", allow_module_level=True)

import psycopg  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connections, transaction  # noqa: E402
from django.db.models.signals import post_delete  # noqa: E402
from django.test.utils import CaptureQueriesContext, override_settings  # noqa: E402

from django_settings import (  # noqa: E402
    APPLICATION_NAME,
    POSTGRES,
    POSTGRES_ENV,
    POSTGRES_SCHEMA,
    UNMIGRATED,
    configure,
    postgres_connect_kwargs,
)
from mfakit.contrib.django import DjangoStore  # noqa: E402
from mfakit.contrib.django import store as store_module  # noqa: E402

# An unclosed connection (psycopg and sqlite3 warn when one is garbage-collected) fails.
pytestmark = [
    pytest.mark.filterwarnings("error::ResourceWarning"),
    pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning"),
]

SRC: Final = str(Path(__file__).resolve().parents[1] / "src")
T0: Final = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.timezone.utc)
TABLES: Final = ("mfakit_credential", "mfakit_challenge", "mfakit_lock_state", "mfakit_quota")
# Statements Django sends around a write that are not the write itself.
TRANSACTION_CONTROL: Final = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")


# ------------------------------------------------------------------------------------------
# Django, configured once for this process, and its databases
# ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def django_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Configure Django (once per process) and migrate the SQLite ``default`` database."""
    configure(tmp_path_factory.mktemp("django"))
    if "mfakit.contrib.django" not in settings.INSTALLED_APPS or UNMIGRATED not in (
        settings.DATABASES
    ):
        message = "Django was configured elsewhere in this process without tests/django_settings"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    call_command("migrate", "mfakit", database="default", verbosity=0)
    yield
    connections.close_all()


@pytest.fixture(scope="module")
def postgres_db(django_db: None) -> Iterator[str]:
    """The ``postgres`` alias, migrated into this run's own schema (dropped afterwards)."""
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        message = f"{POSTGRES_ENV} is not set (e.g. postgresql+psycopg://postgres@127.0.0.1/test)"
        if IN_CI:
            pytest.fail(f"CI=true but {message}")
        pytest.skip(message)
    if POSTGRES not in settings.DATABASES:
        pytest.fail(f"{POSTGRES_ENV} is set but Django was configured before it was")
    kwargs = postgres_connect_kwargs(url)
    try:
        admin = psycopg.connect(**kwargs, autocommit=True, connect_timeout=5)
    except psycopg.Error as error:
        # The variable is set: an unreachable server is a failure, never a skip.
        pytest.fail(f"{POSTGRES_ENV} is set but the server does not answer: {error}")
    with admin:
        admin.execute(f'CREATE SCHEMA "{POSTGRES_SCHEMA}"')
        try:
            call_command("migrate", "mfakit", database=POSTGRES, verbosity=0)
            yield POSTGRES
        finally:
            connections[POSTGRES].close()
            admin.execute(f'DROP SCHEMA "{POSTGRES_SCHEMA}" CASCADE')


def empty_tables(alias: str) -> None:
    from mfakit.contrib.django.models import (
        ChallengeRecord,
        CredentialRecord,
        LockStateRecord,
        QuotaRecord,
    )

    for model in (CredentialRecord, ChallengeRecord, LockStateRecord, QuotaRecord):
        query = model._default_manager.using(alias).all()
        query._raw_delete(alias)


def fresh_store(alias: str) -> Iterator[DjangoStore]:
    empty_tables(alias)
    yield DjangoStore(using=alias)
    empty_tables(alias)
    connections[alias].close()


class ClosingThreadPool(ThreadPoolExecutor):
    """A thread pool whose tasks close their thread's database connections when done.

    Django opens one connection per thread and closes it at the end of a request; a
    thread outside the request cycle must close its own (as any Django code must). The
    contract's races run in a ``ThreadPoolExecutor``; this one does that cleanup, so a
    connection left open anywhere else shows up as a ResourceWarning (an error here).
    """

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        def closing() -> Any:
            try:
                return fn(*args, **kwargs)
            finally:
                connections.close_all()

        return super().submit(closing)


@pytest.fixture
def closing_contract_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(contract, "ThreadPoolExecutor", ClosingThreadPool)


@pytest.fixture(params=["sqlite", "postgres"])
def alias(request: pytest.FixtureRequest) -> str:
    """Each database alias in turn (requesting ``postgres_db`` only for PostgreSQL)."""
    if request.param == "postgres":
        return cast(str, request.getfixturevalue("postgres_db"))
    request.getfixturevalue("django_db")
    return "default"


@pytest.fixture
def store(alias: str) -> Iterator[DjangoStore]:
    yield from fresh_store(alias)


# ------------------------------------------------------------------------------------------
# the contract, unchanged
# ------------------------------------------------------------------------------------------
@pytest.mark.usefixtures("django_db", "closing_contract_threads")
class TestDjangoSQLiteStore(StoreContract):
    """Every check of :class:`StoreContract` on a SQLite file through Django."""

    @pytest.fixture
    def store(self) -> Iterator[Store]:
        yield from fresh_store("default")


@pytest.mark.usefixtures("closing_contract_threads")
class TestDjangoPostgresStore(StoreContract):
    """Every check of :class:`StoreContract` on PostgreSQL through Django."""

    @pytest.fixture
    def store(self, postgres_db: str) -> Iterator[Store]:
        yield from fresh_store(postgres_db)


# ------------------------------------------------------------------------------------------
# DjangoStore's own behaviour
# ------------------------------------------------------------------------------------------
def test_satisfies_the_store_protocol(store: DjangoStore, alias: str) -> None:
    assert isinstance(store, Store)
    assert store.using == alias
    assert repr(store) == f"DjangoStore(using={alias!r})"


def test_using_must_be_an_alias() -> None:
    with pytest.raises(TypeError):
        DjangoStore(using="")
    with pytest.raises(TypeError):
        DjangoStore(using=cast(str, None))


@pytest.mark.usefixtures("django_db")
def test_migrations_match_the_models() -> None:
    # --check exits non-zero when the models changed without a migration.
    call_command("makemigrations", "mfakit", check=True, dry_run=True, verbosity=0)


def test_tables_and_indexes(alias: str, store: DjangoStore) -> None:
    connection = connections[alias]
    with connection.cursor() as cursor:
        names = set(connection.introspection.table_names(cursor))
        assert set(TABLES) <= names
        indexed: dict[str, set[tuple[str, ...]]] = {}
        for table in TABLES:
            constraints = connection.introspection.get_constraints(cursor, table)
            indexed[table] = {
                tuple(c["columns"]) for c in constraints.values() if c["index"] or c["unique"]
            }
    assert ("subject_id",) in indexed["mfakit_credential"]
    assert ("tenant",) in indexed["mfakit_credential"]
    assert ("subject_id",) in indexed["mfakit_challenge"]
    assert ("expires_at",) in indexed["mfakit_challenge"]


@pytest.mark.usefixtures("django_db")
def test_use_tz_false_is_refused() -> None:
    from mfakit.contrib.django.checks import check_use_tz

    assert check_use_tz() == []
    with override_settings(USE_TZ=False):
        [error] = check_use_tz()
        assert error.id == "mfakit.E001"
        from django.core.exceptions import ImproperlyConfigured

        with pytest.raises(ImproperlyConfigured, match="USE_TZ"):
            DjangoStore().get_lock_state("s1")


def write_statements(alias: str, action: Callable[[], object]) -> list[str]:
    """The SQL statements ``action`` sent, less transaction control."""
    with CaptureQueriesContext(connections[alias]) as captured:
        action()
    return [
        q["sql"]
        for q in captured.captured_queries
        if not q["sql"].lstrip().upper().startswith(TRANSACTION_CONTROL)
    ]


def test_every_write_is_one_statement(store: DjangoStore, alias: str) -> None:
    credential = make_credential()
    [insert] = write_statements(alias, lambda: store.put_credential(credential))
    assert insert.startswith("INSERT")
    [update] = write_statements(
        alias, lambda: store.put_credential(dataclasses.replace(credential, version=2))
    )
    assert update.startswith("UPDATE")
    assert '"version" = 1' in update
    assert '"subject_id" = ' in update.split("WHERE", 1)[1]
    [delete] = write_statements(alias, lambda: store.delete_credential("cr_1", version=2))
    assert delete.startswith("DELETE")
    assert store.get_credential("cr_1") is None


def test_deletes_keep_their_version_check_when_delete_signals_listen(
    store: DjangoStore, alias: str
) -> None:
    # A receiver for every model makes QuerySet.delete() collect rows and then delete them
    # by primary key alone; the store must still delete only the version it was given.
    heard: list[object] = []

    def receiver(sender: object, **kwargs: Any) -> None:
        heard.append(sender)

    post_delete.connect(receiver, weak=False)
    try:
        assert store.put_credential(make_credential())
        assert store.put_challenge(make_challenge())
        [statement] = write_statements(alias, lambda: store.delete_credential("cr_1", version=2))
        assert statement.startswith("DELETE")
        assert store.get_credential("cr_1") is not None
        assert store.delete_credential("cr_1", version=1)
        assert store.delete_challenge("ch_1", version=1)
        assert store.get_credential("cr_1") is None
        assert store.get_challenge("ch_1") is None
    finally:
        post_delete.disconnect(receiver)
    assert heard == []  # no signal: the rows were never loaded


def test_a_lost_insert_leaves_the_outer_transaction_usable(store: DjangoStore, alias: str) -> None:
    assert store.put_credential(make_credential())
    with transaction.atomic(using=alias):
        # On PostgreSQL a failed INSERT outside a savepoint would abort this transaction.
        assert store.put_credential(make_credential(counter=5)) is False
        assert store.put_lock_state(LockState("s1", version=1))
        assert store.put_credential(make_credential(version=2, counter=6))
    loaded = store.get_credential("cr_1")
    assert loaded is not None
    assert (loaded.version, loaded.counter) == (2, 6)
    assert store.get_lock_state("s1").version == 1


def test_writes_inside_a_rolled_back_transaction_are_rolled_back(
    store: DjangoStore, alias: str
) -> None:
    class Abort(Exception):
        pass

    def write_then_fail() -> None:
        with transaction.atomic(using=alias):
            assert store.put_credential(make_credential())
            raise Abort

    with pytest.raises(Abort):
        write_then_fail()
    assert store.get_credential("cr_1") is None


def test_driver_errors_become_store_errors_without_contents(django_db: None) -> None:
    store = DjangoStore(using=UNMIGRATED)  # tables never created
    credential = make_credential()
    for write in (credential, dataclasses.replace(credential, version=2)):
        with pytest.raises(StoreError) as caught:
            store.put_credential(write)
        message = str(caught.value)
        assert message.startswith("DjangoStore.put_credential failed: OperationalError")
        assert credential.secret.hex() not in message
        assert "mfakit_credential" not in message  # the driver's text is not repeated
        assert caught.value.__cause__ is None
        assert caught.value.__suppress_context__
    for call in (
        lambda: store.get_credential("cr_1"),
        lambda: store.list_credentials("s1"),
        lambda: list(store.iter_credentials()),
        lambda: store.delete_credential("cr_1", version=1),
        lambda: store.purge_challenges(now=T0),
        lambda: store.get_quota("q"),
    ):
        with pytest.raises(StoreError, match="OperationalError"):
            call()
    connections[UNMIGRATED].close()


def test_constraint_violations_are_errors_not_lost_races(store: DjangoStore) -> None:
    broken = dataclasses.replace(make_credential(), label=cast(str, None))
    with pytest.raises(StoreError, match="put_credential failed: IntegrityError"):
        store.put_credential(broken)
    assert store.put_credential(make_credential())
    with pytest.raises(StoreError, match="IntegrityError"):
        store.put_credential(dataclasses.replace(broken, version=2))


def test_naive_datetime_is_refused(store: DjangoStore) -> None:
    naive = dataclasses.replace(make_credential(), created_at=T0.replace(tzinfo=None))
    with pytest.raises(StoreError, match="naive"):
        store.put_credential(naive)
    with pytest.raises(StoreError, match="naive"):
        store.purge_challenges(now=T0.replace(tzinfo=None))


def test_params_must_be_json(store: DjangoStore) -> None:
    odd = dataclasses.replace(make_credential(), params={"when": T0})
    with pytest.raises(StoreError, match="not JSON-serialisable"):
        store.put_credential(odd)


def test_other_timezones_come_back_as_utc(store: DjangoStore) -> None:
    plus10 = dt.timezone(dt.timedelta(hours=10))
    challenge = dataclasses.replace(
        make_challenge(), expires_at=(T0 + dt.timedelta(minutes=5)).astimezone(plus10)
    )
    assert store.put_challenge(challenge)
    loaded = store.get_challenge(challenge.id)
    assert loaded is not None
    assert loaded.expires_at == T0 + dt.timedelta(minutes=5)
    assert loaded.expires_at.tzinfo is dt.timezone.utc
    # purge compares instants, not local wall-clock strings
    assert store.purge_challenges(now=(T0 + dt.timedelta(minutes=4)).astimezone(plus10)) == 0
    assert store.purge_challenges(now=T0 + dt.timedelta(minutes=5)) == 1


def test_oldest_first_by_created_at_then_insertion(store: DjangoStore) -> None:
    later = dataclasses.replace(make_credential("cr_a"), created_at=T0 + dt.timedelta(seconds=1))
    assert store.put_credential(later)
    for cid in ("cr_z", "cr_m", "cr_b"):  # same created_at, inserted in this order
        assert store.put_credential(make_credential(cid))
    assert [c.id for c in store.list_credentials("s1")] == ["cr_z", "cr_m", "cr_b", "cr_a"]


@pytest.mark.parametrize("count", [10, 12])
def test_iter_credentials_pages_through_many(
    store: DjangoStore, monkeypatch: pytest.MonkeyPatch, count: int
) -> None:
    monkeypatch.setattr(store_module, "_ITER_BATCH", 5)  # full pages, then a short or empty one
    ids = {f"cr_{i:04d}" for i in range(count)}
    for cid in sorted(ids, reverse=True):
        assert store.put_credential(make_credential(cid, f"s{int(cid[3:]) % 3}"))
    found = [c.id for c in store.iter_credentials()]
    assert found == sorted(ids)


def test_import_needs_no_configured_project() -> None:
    script = (
        "import sys, mfakit, mfakit.storage\n"
        "assert 'django' not in sys.modules\n"
        "from mfakit.contrib.django import DjangoStore\n"
        "from django.conf import settings\n"
        "print(DjangoStore(using='mfa'), settings.configured)"
    )
    env = {**os.environ, "PYTHONPATH": SRC}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert done.stdout.strip() == "DjangoStore(using='mfa') False"


# ------------------------------------------------------------------------------------------
# the facade on DjangoStore
# ------------------------------------------------------------------------------------------
ALICE: Final = Subject(id="alice", username="alice")
RACERS: Final = 16


def race(alias: str, n: int, attempt: Callable[[int], Verification]) -> list[object]:
    barrier = threading.Barrier(n, timeout=60)

    def run(i: int) -> object:
        barrier.wait()
        try:
            return attempt(i)
        except MFAError as error:
            return error
        finally:
            connections[alias].close()  # this worker thread's own connection

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(run, range(n)))


def test_totp_through_the_facade(store: DjangoStore, alias: str) -> None:
    clock = FakeClock()
    mfa = MFA(
        store=store,
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

    # Threads racing one fresh code: exactly one signs in, the rest see a replay.
    clock.advance(30)
    code = totp_now(enrollment.secret, clock.now())
    challenges = [mfa.challenge(ALICE, "totp").id for _ in range(RACERS)]
    outcomes = race(alias, RACERS, lambda i: mfa.verify(ALICE, challenges[i], code))
    assert sum(isinstance(o, Verification) for o in outcomes) == 1
    assert sum(isinstance(o, ReplayedCode) for o in outcomes) == RACERS - 1

    # The tables, read back raw, hold neither the seed nor the codes in clear.
    raw_seed = base64.b32decode(enrollment.secret.upper() + "=" * (-len(enrollment.secret) % 8))
    with connections[alias].cursor() as cursor:
        for table in TABLES:
            cursor.execute(f"SELECT * FROM {table}")
            for row in cursor.fetchall():
                for value in row:
                    if isinstance(value, (bytes, memoryview)):
                        assert raw_seed not in bytes(value), table
                    elif isinstance(value, str):
                        assert enrollment.secret not in value.upper(), table


def test_worker_threads_leave_no_postgres_connection_open(postgres_db: str) -> None:
    store = DjangoStore(using=postgres_db)

    def bump(_: int) -> object:
        try:
            return store.get_lock_state("s1")
        finally:
            connections[postgres_db].close()

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert len(list(pool.map(bump, range(8)))) == 8
    connections[postgres_db].close()
    kwargs = postgres_connect_kwargs(os.environ[POSTGRES_ENV])
    with psycopg.connect(**kwargs, autocommit=True) as admin:
        row = admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
            (APPLICATION_NAME,),
        ).fetchone()
    assert row is not None
    assert row[0] == 0
