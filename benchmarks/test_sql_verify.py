"""TOTP sign-in through the ``MFA`` facade on ``SQLStore``, side by side with django-otp.

Run from the repository root (PostgreSQL only when ``MFAKIT_TEST_POSTGRES_URL`` is set)::

    mkdir -p build
    MFAKIT_TEST_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test \\
      .venv/bin/python -m pytest benchmarks/test_sql_verify.py --benchmark-enable \\
      -p no:cacheprovider --benchmark-json=build/bench-sql.json
    .venv/bin/python benchmarks/compare.py build/bench-sql.json

What is compared, per database engine (SQLite file in WAL mode, or PostgreSQL):

* mfakit, the fast path: ``mfa.verify_totp(subject, code)``, a TOTP sign-in without a
  challenge, which is one unit of store work (``test_mfakit_verify_totp_*``). This is the
  like-for-like comparison with django-otp, which has no challenges either.
* mfakit with a challenge: ``mfa.challenge(subject, "totp")`` when the host shows the code
  form and ``mfa.verify(subject, challenge_id, code)`` when the form comes back, both timed
  (``test_mfakit_signin_*``). ``test_mfakit_verify_only_*`` times ``verify`` alone, with
  the challenge opened in the untimed setup.
* django-otp: ``django_otp.verify_token(user, persistent_id, token)``, the function its
  views and forms use for one device: in one ``transaction.atomic()``, load the device with
  ``SELECT ... FOR UPDATE`` and call ``TOTPDevice.verify_token``, which checks the
  throttle, compares the token against the drift window after ``last_t`` and saves the
  device (``last_t``, drift, throttle reset, ``last_used_at``). The benchmark runs the
  same statements on a database alias of its choice (:func:`djotp_verify`, checked
  against the real function by ``test_djotp_mirror_runs_the_same_sql``), because
  ``django_otp.verify_token`` always uses the default alias.

Both sides read the secret and the replay state from the database and write the accepted
step back in every round, and every round is a *valid* code: each round's untimed setup
moves time on by one 30 s step. mfakit reads a ``FakeClock``; django-otp's
``TOTPDevice.verify_token`` reads ``time.time()`` through the ``time`` module imported by
``django_otp.plugins.otp_totp.models``, which the benchmark replaces with an object whose
``time()`` returns the benchmark's own clock (only that module, only the TOTP step
computation; ``timezone.now()`` for ``last_used_at`` and throttling stays the real clock).

The wrong-code benchmarks give a code outside the drift window. mfakit charges the
subject's lockout and the challenge's attempts and raises ``InvalidCode``; django-otp
increments its throttle and saves the device. To keep every round a comparable attempt
(not a refusal by the throttle or the lockout), django-otp's throttle is reset and
mfakit's subject unlocked in the untimed setup.

Before the timed rounds each benchmark counts the SQL one round sends (what the driver
receives, ``tests/driver_spy.py``, because SQLStore runs its verification unit straight on
the driver; Django's ``CaptureQueriesContext``) and stores the counts in the benchmark's
``extra_info``; ``compare.py`` prints them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import secrets
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from mfakit import MFA, InvalidCode, Keyring, Lockout, Subject, Verification
from mfakit.factors import TOTP
from mfakit.testing import FakeClock, totp_now

sa = pytest.importorskip("sqlalchemy")
pytest.importorskip("django_otp")

from mfakit.storage.sql import SQLStore  # noqa: E402

# The driver-level statement spy is shared with the test suite.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from driver_spy import DriverSpy  # noqa: E402

if TYPE_CHECKING:
    from django.contrib.auth.models import User
    from django_otp.plugins.otp_totp.models import TOTPDevice

#: Timed rounds per benchmark, and untimed warm-up rounds before them. Fewer than the
#: in-memory benchmarks: one round costs milliseconds here, not microseconds.
ROUNDS: Final = 1_000
WARMUP_ROUNDS: Final = 100
PERIOD: Final = 30
#: Start of the benchmarks' clocks: FakeClock's default, 2026-01-01T00:00:00Z.
EPOCH: Final = FakeClock().now()

Args = tuple[tuple[Any, ...], dict[str, object]]

IN_CI: Final = os.environ.get("CI", "").lower() == "true"
POSTGRES_ENV: Final = "MFAKIT_TEST_POSTGRES_URL"

#: The PRAGMAs SQLStore sets on its SQLite connections (mfakit.storage.sql._SQLITE_PRAGMAS),
#: given to Django too so both sides pay for the same journal and durability settings.
SQLITE_INIT: Final = "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"


def postgres_url_or_none() -> str | None:
    """The PostgreSQL URL, or ``None`` when unset or unreachable (a failure under CI)."""
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        if IN_CI:
            pytest.fail(f"CI=true but {POSTGRES_ENV} is not set")
        return None
    import sqlalchemy as sa

    engine = sa.create_engine(url, connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
    except sa.exc.OperationalError as error:
        if IN_CI:
            pytest.fail(f"{POSTGRES_ENV} is unreachable: {type(error.orig).__name__}")
        return None
    finally:
        engine.dispose()
    return url


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The PostgreSQL URL from ``MFAKIT_TEST_POSTGRES_URL``; skips when unset."""
    url = postgres_url_or_none()
    if url is None:
        pytest.skip(
            f"{POSTGRES_ENV} is not set or unreachable "
            "(e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test)"
        )
    return url


def unique_name(stem: str) -> str:
    """A table prefix or schema name no other process uses: ``{stem}_{pid}_{random}``."""
    return f"{stem}_{os.getpid()}_{secrets.token_hex(3)}"


@dataclasses.dataclass
class StatementCounter:
    """Counts what a store's driver is sent in one round: statements, commits, checkouts.

    Statements are the queries the driver runs (``BEGIN``, ``COMMIT`` and the pool's
    pre-ping are not counted as statements); transactions are the ``COMMIT``s sent (on
    SQLite, only transactions that wrote: a read-only one ends without one). A pool
    checkout is also one round trip on engines with ``pool_pre_ping`` (SQLStore sets it
    on every non-SQLite engine it creates).
    """

    engine: Any
    checkouts: int = 0
    spy: DriverSpy | None = None

    def __post_init__(self) -> None:
        from sqlalchemy import event

        def on_checkout(*_args: Any) -> None:
            if self.spy is not None:
                self.checkouts += 1

        event.listen(self.engine.pool, "checkout", on_checkout)

    def start(self) -> None:
        self.checkouts = 0
        self.spy = DriverSpy(self.engine).__enter__()

    def stop(self) -> dict[str, int]:
        spy, self.spy = self.spy, None
        assert spy is not None
        spy.__exit__(None, None, None)
        kinds = spy.kinds
        return {
            "statements": sum(k not in {"BEGIN", "COMMIT", "ROLLBACK", ";"} for k in kinds),
            "transactions": kinds.count("COMMIT"),
            "pool_checkouts": self.checkouts,
        }


@dataclasses.dataclass(frozen=True)
class DjangoEnv:
    """Django, configured for this session: the database aliases it may use."""

    aliases: frozenset[str]


@pytest.fixture(scope="session")
def django_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DjangoEnv]:
    """Configure Django once (SQLite ``"default"``, PostgreSQL ``"pg"``) and migrate."""
    import django
    from django.conf import settings
    from django.core.management import call_command

    if settings.configured:  # pragma: no cover - another plugin configured Django first
        pytest.skip("Django is already configured in this process")
    directory: Path = tmp_path_factory.mktemp("django")
    databases: dict[str, dict[str, Any]] = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(directory / "django-otp.db"),
            # timeout: sqlite3's busy timeout in seconds (SQLStore: busy_timeout=5000 ms).
            "OPTIONS": {"init_command": SQLITE_INIT, "timeout": 5},
        }
    }
    url = postgres_url_or_none()
    schema = unique_name("mfakit_bench_django")
    pg_engine = None
    if url is not None:
        import sqlalchemy as sa

        pg_engine = sa.create_engine(url)
        parsed = pg_engine.url
        with pg_engine.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        databases["pg"] = {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": parsed.database,
            "USER": parsed.username or "",
            "PASSWORD": parsed.password or "",
            "HOST": parsed.host or "",
            "PORT": str(parsed.port or ""),
            # Django's tables (auth_user, otp_totp_totpdevice, ...) in a schema of their
            # own, so they never meet another user's tables in the shared database.
            "OPTIONS": {"options": f"-c search_path={schema}"},
        }
    settings.configure(
        DEBUG=False,
        USE_TZ=True,
        SECRET_KEY=secrets.token_urlsafe(32),
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        INSTALLED_APPS=[
            "django.contrib.contenttypes",
            "django.contrib.auth",
            "django_otp",
            "django_otp.plugins.otp_totp",
        ],
        DATABASES=databases,
    )
    django.setup()
    from django.db import connections

    try:
        for alias in databases:
            call_command("migrate", database=alias, verbosity=0, interactive=False)
        yield DjangoEnv(frozenset(databases))
    finally:
        connections.close_all()
        if pg_engine is not None:
            import sqlalchemy as sa

            with pg_engine.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            pg_engine.dispose()


def run_pedantic(
    benchmark: BenchmarkFixture, target: Callable[..., None], setup: Callable[[], Args]
) -> None:
    """Fresh untimed arguments, one timed call per round (as in test_totp_verify.py)."""
    benchmark.pedantic(  # type: ignore[no-untyped-call]  # pytest-benchmark is unannotated
        target, setup=setup, rounds=ROUNDS, warmup_rounds=WARMUP_ROUNDS, iterations=1
    )


def expected_calls(benchmark: BenchmarkFixture) -> int:
    """How many times pedantic calls the target: every round, or once when disabled."""
    return ROUNDS + WARMUP_ROUNDS if benchmark.enabled else 1


# ------------------------------------------------------------------------------------------
# mfakit
# ------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Rig:
    """An ``MFA`` on a ``SQLStore`` with one subject holding one confirmed TOTP app."""

    mfa: MFA
    store: SQLStore
    clock: FakeClock
    subject: Subject
    secret: str
    credential_id: str
    counter: StatementCounter


def make_rig(store: SQLStore, lockout: Lockout | None = None) -> Rig:
    clock = FakeClock()
    mfa = MFA(
        store=store,
        keyring=Keyring.ephemeral(),
        factors=[TOTP(issuer="Bench")],
        clock=clock,
        lockout=lockout,
    )
    subject = Subject(id=f"user-{secrets.token_hex(8)}", username="bench")
    enrollment = mfa.enroll(subject, TOTP.setup(label="Bench phone"))
    credential = mfa.confirm(subject, enrollment.id, totp_now(enrollment.secret, clock.now()))
    counter = StatementCounter(store.engine)
    return Rig(mfa, store, clock, subject, enrollment.secret, credential.id, counter)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SQLStore]:
    """A fresh SQLStore: a SQLite file (WAL, SQLStore's PRAGMAs) or PostgreSQL tables."""
    if request.param == "sqlite":
        sqlite_store = SQLStore(f"sqlite:///{tmp_path}/mfakit.db", create=True)
        yield sqlite_store
        sqlite_store.close()
        return
    url: str = request.getfixturevalue("postgres_url")
    pg_store = SQLStore(url, table_prefix=unique_name("mfakit_bench") + "_", create=True)
    try:
        yield pg_store
    finally:
        pg_store.drop_schema()
        pg_store.close()


def _wrong_code(secret: str, now: dt.datetime) -> str:
    """A code matching no step of the drift window (-1, 0, +1) at ``now``."""
    window = {totp_now(secret, now, offset=offset) for offset in (-1, 0, 1)}
    candidate = int(totp_now(secret, now))
    while f"{candidate:06d}" in window:
        candidate = (candidate + 1) % 1_000_000
    return f"{candidate:06d}"


def _count_mfakit_round(
    benchmark: BenchmarkFixture, rig: Rig, setup: Callable[[], Args], target: Callable[..., None]
) -> None:
    """Run one untimed round with the statement counter on; record its counts."""
    args, kwargs = setup()
    rig.counter.start()
    target(*args, **kwargs)
    benchmark.extra_info.update(rig.counter.stop())
    benchmark.extra_info["engine"] = rig.store.engine.dialect.name


def _check_accepted(
    rig: Rig, results: list[Verification], calls: int, *, challenges: bool = True
) -> None:
    assert len(results) == calls
    assert all(r.credential_id == rig.credential_id for r in results)
    if challenges:
        assert len({r.challenge_id for r in results}) == calls
    else:
        assert {r.challenge_id for r in results} == {None}
    (credential,) = rig.mfa.credentials(rig.subject)
    assert credential.version == 2 + calls  # confirm wrote 2; each success one more
    assert credential.counter == int(rig.clock.now().timestamp()) // PERIOD
    assert rig.mfa.lock_state(rig.subject).failures == 0


def test_mfakit_verify_totp(benchmark: BenchmarkFixture, store: SQLStore) -> None:
    """Timed: ``verify_totp`` with a right, fresh code (a sign-in without a challenge)."""
    benchmark.group = f"sql-verify-{store.engine.dialect.name}"
    rig = make_rig(store)
    mfa, clock, subject = rig.mfa, rig.clock, rig.subject
    results: list[Verification] = []

    def setup() -> Args:
        clock.advance(PERIOD)  # a new time step, so the fresh code is not a replay
        return (totp_now(rig.secret, clock.now()),), {}

    def target(code: str) -> None:
        results.append(mfa.verify_totp(subject, code))

    _count_mfakit_round(benchmark, rig, setup, target)
    run_pedantic(benchmark, target, setup)

    _check_accepted(rig, results, expected_calls(benchmark) + 1, challenges=False)


def test_mfakit_verify_totp_wrong_code(benchmark: BenchmarkFixture, store: SQLStore) -> None:
    """Timed: ``verify_totp`` with a code outside the window (``InvalidCode``, charged)."""
    benchmark.group = f"sql-verify-{store.engine.dialect.name}"
    rig = make_rig(store, Lockout(max_failures=100, mode="suspend"))
    mfa, clock, subject = rig.mfa, rig.clock, rig.subject
    failures: list[type[InvalidCode]] = []
    unlocks = 0

    def setup() -> Args:
        nonlocal unlocks
        clock.advance(PERIOD)
        if mfa.lock_state(subject).failures >= 50:
            mfa.unlock(subject, actor="bench")
            unlocks += 1
        return (_wrong_code(rig.secret, clock.now()),), {}

    def target(code: str) -> None:
        try:
            mfa.verify_totp(subject, code)
        except InvalidCode as exc:
            failures.append(type(exc))

    _count_mfakit_round(benchmark, rig, setup, target)
    run_pedantic(benchmark, target, setup)

    calls = expected_calls(benchmark) + 1
    assert len(failures) == calls
    assert mfa.lock_state(subject).failures == calls - 50 * unlocks  # every attempt charged
    (credential,) = mfa.credentials(subject)
    assert credential.version == 2  # nothing accepted after the confirmation


def test_mfakit_signin(benchmark: BenchmarkFixture, store: SQLStore) -> None:
    """Timed: ``challenge`` + ``verify`` with a right, fresh code."""
    benchmark.group = f"sql-verify-{store.engine.dialect.name}"
    rig = make_rig(store)
    mfa, clock, subject = rig.mfa, rig.clock, rig.subject
    results: list[Verification] = []

    def setup() -> Args:
        clock.advance(PERIOD)  # a new time step, so the fresh code is not a replay
        return (totp_now(rig.secret, clock.now()),), {}

    def target(code: str) -> None:
        challenge = mfa.challenge(subject, "totp")
        results.append(mfa.verify(subject, challenge.id, code))

    _count_mfakit_round(benchmark, rig, setup, target)
    run_pedantic(benchmark, target, setup)

    _check_accepted(rig, results, expected_calls(benchmark) + 1)


def test_mfakit_verify_only(benchmark: BenchmarkFixture, store: SQLStore) -> None:
    """Timed: ``verify`` alone; the challenge is opened in the untimed setup."""
    benchmark.group = f"sql-verify-{store.engine.dialect.name}"
    rig = make_rig(store)
    mfa, clock, subject = rig.mfa, rig.clock, rig.subject
    results: list[Verification] = []

    def setup() -> Args:
        clock.advance(PERIOD)
        challenge = mfa.challenge(subject, "totp")
        return (challenge.id, totp_now(rig.secret, clock.now())), {}

    def target(challenge_id: str, code: str) -> None:
        results.append(mfa.verify(subject, challenge_id, code))

    _count_mfakit_round(benchmark, rig, setup, target)
    run_pedantic(benchmark, target, setup)

    _check_accepted(rig, results, expected_calls(benchmark) + 1)


def test_mfakit_signin_wrong_code(benchmark: BenchmarkFixture, store: SQLStore) -> None:
    """Timed: ``challenge`` + ``verify`` with a code outside the window (``InvalidCode``)."""
    benchmark.group = f"sql-verify-{store.engine.dialect.name}"
    # Suspension after 100 failures; setup unlocks long before that, so no round ever
    # meets LockedOut (which would refuse the attempt without comparing anything).
    rig = make_rig(store, Lockout(max_failures=100, mode="suspend"))
    mfa, clock, subject = rig.mfa, rig.clock, rig.subject
    failures: list[type[InvalidCode]] = []
    unlocks = 0

    def setup() -> Args:
        nonlocal unlocks
        clock.advance(PERIOD)
        if mfa.lock_state(subject).failures >= 50:
            mfa.unlock(subject, actor="bench")
            unlocks += 1
            mfa.purge_expired()  # failed challenges stay until they expire
        return (_wrong_code(rig.secret, clock.now()),), {}

    def target(code: str) -> None:
        challenge = mfa.challenge(subject, "totp")
        try:
            mfa.verify(subject, challenge.id, code)
        except InvalidCode as exc:
            failures.append(type(exc))

    _count_mfakit_round(benchmark, rig, setup, target)
    run_pedantic(benchmark, target, setup)

    calls = expected_calls(benchmark) + 1
    assert len(failures) == calls
    assert mfa.lock_state(subject).failures == calls - 50 * unlocks  # every attempt charged
    (credential,) = mfa.credentials(subject)
    assert credential.version == 2  # nothing accepted after the confirmation


# ------------------------------------------------------------------------------------------
# django-otp
# ------------------------------------------------------------------------------------------
class FakeTime:
    """Stands in for the ``time`` module in ``django_otp.plugins.otp_totp.models``.

    That module calls ``time.time()`` only to compute the current TOTP step.
    """

    def __init__(self, start: float) -> None:
        self.now = start

    def time(self) -> float:
        return self.now


@dataclasses.dataclass
class DjangoRig:
    alias: str
    user: User
    device: TOTPDevice
    clock: FakeTime


@pytest.fixture(params=["sqlite", "postgresql"])
def django_rig(
    request: pytest.FixtureRequest, django_env: DjangoEnv, monkeypatch: pytest.MonkeyPatch
) -> DjangoRig:
    """A user with one confirmed TOTPDevice (20 random key bytes) on SQLite or PostgreSQL."""
    if request.param == "postgresql":
        request.getfixturevalue("postgres_url")  # skips without PostgreSQL
        assert "pg" in django_env.aliases
    alias = "default" if request.param == "sqlite" else "pg"
    from django.contrib.auth.models import User
    from django_otp.plugins.otp_totp import models as totp_models

    clock = FakeTime(EPOCH.timestamp())
    monkeypatch.setattr(totp_models, "time", clock)
    user = User.objects.db_manager(alias).create(username=f"user-{secrets.token_hex(8)}")
    device = totp_models.TOTPDevice.objects.using(alias).create(
        user=user, name="Bench phone", confirmed=True, key=secrets.token_bytes(20).hex()
    )
    return DjangoRig(alias, user, device, clock)


def djotp_verify(alias: str, user: User, device_id: int, token: str) -> TOTPDevice | None:
    """``django_otp.verify_token(user, persistent_id, token)`` on the database ``alias``.

    The same statements as django-otp's function (one atomic block, the device read with
    ``select_for_update``, the owner check, ``TOTPDevice.verify_token``), minus parsing the
    persistent id.
    """
    from django.db import transaction
    from django_otp.plugins.otp_totp.models import TOTPDevice

    with transaction.atomic(using=alias):
        device = TOTPDevice.objects.using(alias).select_for_update().filter(id=device_id).first()
        if device is not None and device.user_id == user.pk and device.verify_token(token):
            return device
    return None


def djotp_code(rig: DjangoRig, *, offset: int = 0) -> str:
    """The code of the device at the benchmark's clock, made by django-otp itself."""
    from django_otp import oath

    device = rig.device
    totp = oath.TOTP(device.bin_key, device.step, device.t0, device.digits, 0)
    totp.time = rig.clock.now + offset * PERIOD
    return f"{totp.token():0{device.digits}d}"


def _count_django_round(
    benchmark: BenchmarkFixture,
    rig: DjangoRig,
    setup: Callable[[], Args],
    target: Callable[..., None],
) -> list[str]:
    """Run one untimed round capturing Django's SQL; record the count of data statements."""
    from django.db import connections
    from django.test.utils import CaptureQueriesContext

    args, kwargs = setup()
    with CaptureQueriesContext(connections[rig.alias]) as captured:
        target(*args, **kwargs)
    sql = [str(query["sql"]) for query in captured.captured_queries]
    data = [
        s for s in sql if s.split(None, 1)[0].upper() in {"SELECT", "INSERT", "UPDATE", "DELETE"}
    ]
    benchmark.extra_info.update(
        statements=len(data), transactions=1, engine=connections[rig.alias].vendor
    )
    return sql


def test_djotp_verify(benchmark: BenchmarkFixture, django_rig: DjangoRig) -> None:
    """Timed: ``django_otp.verify_token`` (see :func:`djotp_verify`) with a right code."""
    rig = django_rig
    benchmark.group = f"sql-verify-{'sqlite' if rig.alias == 'default' else 'postgresql'}"
    results: list[TOTPDevice | None] = []

    def setup() -> Args:
        rig.clock.now += PERIOD  # a new time step, so the fresh code is not a replay
        return (djotp_code(rig),), {}

    def target(code: str) -> None:
        results.append(djotp_verify(rig.alias, rig.user, rig.device.pk, code))

    _count_django_round(benchmark, rig, setup, target)
    run_pedantic(benchmark, target, setup)

    calls = expected_calls(benchmark) + 1
    assert len(results) == calls
    assert all(device is not None and device.pk == rig.device.pk for device in results)
    rig.device.refresh_from_db()
    assert rig.device.last_t == int(rig.clock.now) // PERIOD  # the replay state was written
    assert rig.device.throttling_failure_count == 0


def test_djotp_verify_wrong_code(benchmark: BenchmarkFixture, django_rig: DjangoRig) -> None:
    """Timed: ``django_otp.verify_token`` with a code outside the window (returns None)."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    rig = django_rig
    benchmark.group = f"sql-verify-{'sqlite' if rig.alias == 'default' else 'postgresql'}"
    devices = TOTPDevice.objects.using(rig.alias).filter(pk=rig.device.pk)
    results: list[TOTPDevice | None] = []
    window = {djotp_code(rig, offset=offset) for offset in (-1, 0, 1)}

    def setup() -> Args:
        nonlocal window
        rig.clock.now += PERIOD
        # Without this reset the throttle would refuse the next attempt without comparing
        # (and without writing): a different, cheaper path than a wrong code.
        devices.update(throttling_failure_count=0, throttling_failure_timestamp=None)
        window = {djotp_code(rig, offset=offset) for offset in (-1, 0, 1)}
        code = int(djotp_code(rig))
        while f"{code:06d}" in window:
            code = (code + 1) % 1_000_000
        return (f"{code:06d}",), {}

    def target(code: str) -> None:
        results.append(djotp_verify(rig.alias, rig.user, rig.device.pk, code))

    _count_django_round(benchmark, rig, setup, target)
    run_pedantic(benchmark, target, setup)

    assert len(results) == expected_calls(benchmark) + 1
    assert all(device is None for device in results)
    rig.device.refresh_from_db()
    assert rig.device.throttling_failure_count == 1  # the last attempt was counted
    assert rig.device.last_t == -1  # nothing was ever accepted


def test_djotp_mirror_runs_the_same_sql(
    django_env: DjangoEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """:func:`djotp_verify` sends what ``django_otp.verify_token`` sends (SQLite alias)."""
    import django_otp
    from django.contrib.auth.models import User
    from django.db import connections
    from django.test.utils import CaptureQueriesContext
    from django_otp.plugins.otp_totp import models as totp_models

    clock = FakeTime(EPOCH.timestamp())
    monkeypatch.setattr(totp_models, "time", clock)
    user = User.objects.create(username=f"user-{secrets.token_hex(8)}")
    device = totp_models.TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    rig = DjangoRig("default", user, device, clock)

    def shapes(call: Callable[[str], object]) -> list[str]:
        clock.now += PERIOD
        code = djotp_code(rig)
        with CaptureQueriesContext(connections["default"]) as captured:
            assert call(code) is not None
        # The statement kind and table: the values (last_t, timestamps) differ per call.
        return [" ".join(str(q["sql"]).split()[:4]) for q in captured.captured_queries]

    real = shapes(lambda code: django_otp.verify_token(user, device.persistent_id, code))
    mirror = shapes(lambda code: djotp_verify("default", user, device.pk, code))
    assert real == mirror
    assert [s.split()[0] for s in real] == ["BEGIN", "SELECT", "UPDATE", "COMMIT"]
