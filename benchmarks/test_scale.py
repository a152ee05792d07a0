"""TOTP sign-in latency on ``SQLStore`` with many enrolled subjects versus few.

Run from the repository root (PostgreSQL only when ``MFAKIT_TEST_POSTGRES_URL`` is set)::

    mkdir -p build
    MFAKIT_TEST_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test \\
      .venv/bin/python -m pytest benchmarks/test_scale.py --benchmark-enable \\
      -p no:cacheprovider --benchmark-json=build/bench-scale.json
    .venv/bin/python benchmarks/compare.py build/bench-scale.json

Each engine is measured with :data:`SMALL` (1 000) enrolled subjects and with
``MFAKIT_BENCH_SUBJECTS`` of them (default 1 000 000; set it lower for a quick run).
Every subject has one active TOTP credential whose seed was encrypted by a real
:class:`~mfakit.Keyring` and bound to its record (``secret_aad``), a UUID subject id and a
random ``cr_...`` credential id from mfakit's own ``new_id``; one subject in 20 also has a
lock-state row and one in 100 an expired, never-purged challenge.

The timed call is what a host calls per sign-in, ``mfa.challenge`` then ``mfa.verify``
with a right code, for one of :data:`SAMPLE` subjects spread evenly over the population
(the same number of distinct subjects in both sizes, one after the other, a new 30 s time
step every round). The ratio of medians, large over small, is the cost of the population.

Populating is bulk ``executemany`` through SQLAlchemy Core into the store's own tables.
SQLite populations are cached under ``build/bench-cache`` (``MFAKIT_BENCH_CACHE`` to move
it), keyed by subject count, schema version and :data:`POPULATION_FORMAT`, and copied to a
temporary file for each run, so the benchmark never changes the cache; delete the
directory to rebuild. PostgreSQL is populated in every run under a table prefix of its own,
``ANALYZE``-d, and dropped afterwards.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from mfakit import MFA, Credential, CredentialStatus, Keyring, Subject, Verification
from mfakit._models import new_id  # the ids mfakit itself makes
from mfakit.factors import TOTP
from mfakit.testing import FakeClock, totp_now

sa = pytest.importorskip("sqlalchemy")

from test_sql_verify import (  # noqa: E402  # shared helpers of the SQL benchmarks
    EPOCH,
    PERIOD,
    postgres_url_or_none,
    unique_name,
)

from mfakit.factors._base import secret_aad  # noqa: E402  # the real binding of each seed
from mfakit.hazmat.otp import encode_secret  # noqa: E402
from mfakit.storage.sql import SCHEMA_VERSION, SQLStore  # noqa: E402

SUBJECTS_ENV: Final = "MFAKIT_BENCH_SUBJECTS"
CACHE_ENV: Final = "MFAKIT_BENCH_CACHE"
SMALL: Final = 1_000
LARGE: Final = int(os.environ.get(SUBJECTS_ENV, "1000000"))
#: Distinct subjects the timed rounds cycle through, spread evenly over the population.
SAMPLE: Final = 1_000
ROUNDS: Final = 1_000
WARMUP_ROUNDS: Final = 100
BATCH: Final = 20_000
#: Bump when the generated rows change, so stale cached SQLite files are not reused.
POPULATION_FORMAT: Final = 2
CACHE_DIR: Final = Path(
    os.environ.get(CACHE_ENV, Path(__file__).resolve().parents[1] / "build" / "bench-cache")
)
#: A fixed key, so cached populations decrypt in later runs. Benchmark data only.
KEYRING: Final = Keyring([("bench-1", hashlib.sha256(b"mfakit scale benchmark key").digest())])
PARAMS_JSON: Final = json.dumps(
    TOTP(issuer="Bench").params(), separators=(",", ":"), sort_keys=True
)

Args = tuple[tuple[Any, ...], dict[str, object]]


def subject_id(index: int) -> str:
    """A UUID-shaped subject id, deterministic so the cached population can be found."""
    digest = hashlib.blake2b(index.to_bytes(8, "big"), digest_size=16).digest()
    return str(uuid.UUID(bytes=digest))


def seed(index: int) -> bytes:
    """The subject's 20-byte TOTP seed (deterministic, see :func:`subject_id`)."""
    return hashlib.blake2b(index.to_bytes(8, "big"), digest_size=20, person=b"seed").digest()


def sample(subjects: int) -> list[int]:
    """The indices of the subjects the timed rounds use."""
    return list(range(0, subjects, max(1, subjects // SAMPLE)))[:SAMPLE]


def _rows(start: int, stop: int) -> tuple[list[dict[str, Any]], ...]:
    """Rows of subjects ``start <= i < stop`` for credentials, lock states, challenges."""
    credentials, locks, challenges = [], [], []
    for i in range(start, stop):
        sid = subject_id(i)
        created = EPOCH - dt.timedelta(days=1 + i % 700, seconds=i % 86_400)
        used = EPOCH - dt.timedelta(hours=1 + i % 2_000)
        credential = Credential(
            id=new_id("cr"),
            subject_id=sid,
            tenant=None,
            factor="totp",
            label="Authenticator app",
            status=CredentialStatus.ACTIVE,
            created_at=created,
        )
        credentials.append(
            {
                "id": credential.id,
                "subject_id": sid,
                "tenant": None,
                "factor": "totp",
                "label": credential.label,
                "status": "active",
                "created_at": created,
                "expires_at": None,
                "confirmed_at": created + dt.timedelta(seconds=40),
                "last_used_at": used,
                "counter": int(used.timestamp()) // PERIOD,
                "params": PARAMS_JSON,
                "secret": KEYRING.encrypt(seed(i), aad=secret_aad(credential)),
                "version": 2 + i % 50,
                "seq": 1,
            }
        )
        if i % 20 == 7:
            locks.append(
                {
                    "subject_id": sid,
                    "failures": 1 + i % 4,
                    "locked_until": None,
                    "suspended": False,
                    "lockouts": 0,
                    "version": 1 + i % 9,
                }
            )
        if i % 100 == 3:
            opened = used - dt.timedelta(minutes=1)
            challenges.append(
                {
                    "id": new_id("ch"),
                    "subject_id": sid,
                    "tenant": None,
                    "factor": "totp",
                    "created_at": opened,
                    "expires_at": opened + dt.timedelta(minutes=5),
                    "max_attempts": 5,
                    "attempts": 1,
                    "credential_id": None,
                    "code_hash": b"",
                    "sends": 0,
                    "resend_at": None,
                    "destination_hint": None,
                    "prompts": "[]",
                    "version": 2,
                }
            )
    return credentials, locks, challenges


def populate(store: SQLStore, subjects: int) -> float:
    """Insert ``subjects`` enrolled subjects into an empty store; return the seconds taken."""
    tables = store.metadata.tables
    prefix = next(name for name in tables if name.endswith("credentials"))[: -len("credentials")]
    targets = [tables[f"{prefix}{name}"] for name in ("credentials", "lock_states", "challenges")]
    began = time.perf_counter()
    for start in range(0, subjects, BATCH):
        batches = _rows(start, min(subjects, start + BATCH))
        with store.engine.begin() as conn:
            for table, rows in zip(targets, batches, strict=True):
                if rows:
                    conn.execute(table.insert(), rows)
    if store.engine.dialect.name == "postgresql":
        with store.engine.begin() as conn:
            for table in targets:
                conn.execute(sa.text(f'ANALYZE "{table.name}"'))
    return time.perf_counter() - began


def _schema_matches(store: SQLStore) -> bool:
    """Whether the cached file has exactly the columns this SQLStore defines."""
    inspector = sa.inspect(store.engine)
    for table in store.metadata.tables.values():
        if not inspector.has_table(table.name):
            return False
        found = {column["name"] for column in inspector.get_columns(table.name)}
        if found != set(table.c.keys()):
            return False
    return True


def sqlite_population(subjects: int, workdir: Path) -> tuple[Path, float | None]:
    """A working copy of the cached SQLite population (built first if missing or stale).

    Returns the copy and the seconds populating took, ``None`` when the cache was used.
    """
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    cached = CACHE_DIR / f"scale-sqlite-{subjects}-s{SCHEMA_VERSION}-p{POPULATION_FORMAT}.db"
    took: float | None = None
    if cached.exists():
        probe = SQLStore(f"sqlite:///{cached}")
        try:
            stale = not _schema_matches(probe)
        finally:
            probe.close()
        if stale:
            cached.unlink()
    if not cached.exists():
        building = cached.with_name(f"{cached.name}.{os.getpid()}.tmp")
        store = SQLStore(f"sqlite:///{building}", create=True)
        try:
            took = populate(store, subjects)
        finally:
            store.close()  # the last connection checkpoints the WAL into the file
        os.replace(building, cached)
    copy = workdir / cached.name
    shutil.copyfile(cached, copy)
    return copy, took


@dataclasses.dataclass
class Population:
    store: SQLStore
    subjects: int
    populate_seconds: float | None


@pytest.fixture(
    params=[
        pytest.param(("sqlite", SMALL), id="sqlite-small"),
        pytest.param(("sqlite", LARGE), id="sqlite-large"),
        pytest.param(("postgresql", SMALL), id="postgresql-small"),
        pytest.param(("postgresql", LARGE), id="postgresql-large"),
    ],
    scope="module",  # both timed calls share each population (PostgreSQL's takes minutes)
)
def population(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Population]:
    engine, subjects = request.param
    if engine == "sqlite":
        path, took = sqlite_population(subjects, tmp_path_factory.mktemp("scale"))
        store = SQLStore(f"sqlite:///{path}")
        yield Population(store, subjects, took)
        store.close()
        return
    url = postgres_url_or_none()
    if url is None:
        pytest.skip("MFAKIT_TEST_POSTGRES_URL is not set or unreachable")
    store = SQLStore(url, table_prefix=unique_name("mfakit_bench_scale") + "_", create=True)
    try:
        took = populate(store, subjects)
        yield Population(store, subjects, took)
    finally:
        store.drop_schema()
        store.close()


def run_pedantic(
    benchmark: BenchmarkFixture, target: Callable[..., None], setup: Callable[[], Args]
) -> None:
    benchmark.pedantic(  # type: ignore[no-untyped-call]  # pytest-benchmark is unannotated
        target, setup=setup, rounds=ROUNDS, warmup_rounds=WARMUP_ROUNDS, iterations=1
    )


def test_scale_signin(benchmark: BenchmarkFixture, population: Population) -> None:
    """Timed: ``challenge`` + ``verify`` for one of SAMPLE subjects of the population."""
    _scale(benchmark, population, "signin", FakeClock())


def test_scale_verify_totp(benchmark: BenchmarkFixture, population: Population) -> None:
    """Timed: ``verify_totp`` (no challenge) for one of SAMPLE subjects of the population."""
    # A day later than test_scale_signin's clock, so its accepted steps are all earlier.
    _scale(benchmark, population, "verify_totp", FakeClock(EPOCH + dt.timedelta(days=1)))


def _scale(benchmark: BenchmarkFixture, population: Population, via: str, clock: FakeClock) -> None:
    store = population.store
    benchmark.group = f"scale-{store.engine.dialect.name}"
    benchmark.extra_info.update(
        subjects=population.subjects,
        populate_seconds=population.populate_seconds,
        engine=store.engine.dialect.name,
    )
    mfa = MFA(store=store, keyring=KEYRING, factors=[TOTP(issuer="Bench")], clock=clock)
    chosen = sample(population.subjects)
    subjects = [Subject(id=subject_id(i)) for i in chosen]
    secrets_ = [encode_secret(seed(i)) for i in chosen]
    results: list[Verification] = []
    rounds = 0

    def setup() -> Args:
        nonlocal rounds
        clock.advance(PERIOD)  # a new step for everyone: no code is ever a replay
        k = rounds % len(subjects)
        rounds += 1
        return (subjects[k], totp_now(secrets_[k], clock.now())), {}

    def target(subject: Subject, code: str) -> None:
        if via == "verify_totp":
            results.append(mfa.verify_totp(subject, code))
            return
        challenge = mfa.challenge(subject, "totp")
        results.append(mfa.verify(subject, challenge.id, code))

    run_pedantic(benchmark, target, setup)

    assert len(results) == rounds
    assert [r.subject_id for r in results] == [
        subjects[k % len(subjects)].id for k in range(rounds)
    ]
    # The credentials matched are the populated ones, one per subject.
    assert len({r.credential_id for r in results}) == min(rounds, len(subjects))
    assert all((r.credential_id or "").startswith("cr_") for r in results)
