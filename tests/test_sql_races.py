"""SQLStore's guarantees across processes: real OS processes racing one database.

Every worker is its own process (``forkserver``: forked from a server that never opened a
database), builds its own :class:`SQLStore` and engine from the URL and its own
:class:`~mfakit.MFA` over the same keyring, and waits on a :class:`multiprocessing.Barrier`
before each move, so the moves truly race. What is proven, on a SQLite file (WAL), on
PostgreSQL and on MariaDB:

* ``ROUNDS`` rounds of ``PROCESSES`` processes submitting the same TOTP code (a new time
  step each round), each on a challenge of its own (``verify``) and without one
  (``verify_totp``): exactly one acceptance per round, every other attempt ``ReplayedCode``;
* ``ROUNDS`` rounds of ``PROCESSES`` processes submitting the same delivered SMS code (a
  fresh challenge each round, the code read from the outbox that sent it): exactly one
  acceptance, every other attempt ``ChallengeNotFound`` (the code was used);
* parallel wrong attempts leave the lockout's failure counter, and each shared challenge's
  attempt counter, at exactly the number of attempts made;
* a send quota of 5 hit by 50 processes at once sends exactly 5 messages.

``MFAKIT_RACE_ROUNDS`` (default 1000) sets the number of rounds of the two code races.
The database URLs come from ``MFAKIT_TEST_POSTGRES_URL`` and ``MFAKIT_TEST_MYSQL_URL``
(skipped when unset, a failure under ``CI=true``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import multiprocessing
import os
import secrets
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import pytest

from mfakit import MFA, Keyring, Lockout, SendQuota, Subject
from mfakit.exceptions import MFAError
from mfakit.factors import SMSOTP, TOTP, SendQuotas
from mfakit.testing import FakeClock, Outbox, totp_now

IN_CI: Final = os.environ.get("CI", "").lower() == "true"

try:
    import sqlalchemy as sa
except ImportError:  # pragma: no cover - the "sql" extra is not installed
    if IN_CI:
        raise
    pytest.skip("SQLAlchemy is not installed (pip install 'mfakit[sql]')", allow_module_level=True)

from mfakit.storage.sql import SQLStore  # noqa: E402

pytestmark = pytest.mark.slow

ROUNDS: Final = int(os.environ.get("MFAKIT_RACE_ROUNDS", "1000"))
PROCESSES: Final = 8
QUOTA_PROCESSES: Final = 50
QUOTA_LIMIT: Final = 5
WRONG_ROUNDS: Final = 12  # 8 x 12 = 96 failures: under Lockout's ceiling of 100
PHONE: Final = "+61412345678"
ALICE: Final = Subject(id="alice", tenant="t1", username="alice")
T0: Final = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
SERVICES: Final = {
    "postgres": ("MFAKIT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
    "mysql": ("MFAKIT_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test"),
}
# A lockout that never locks during a race: the count still runs, a success resets it.
NO_LOCK: Final = Lockout(max_failures=100, mode="suspend")
# Room for every racer on one challenge (the default 5 would burn it before the winner
# claims it: attempts are charged before the comparison, SECURITY.md 14).
MAX_ATTEMPTS: Final = 10
WIDE_QUOTAS: Final = SendQuotas(
    per_destination=SendQuota(100), per_subject=SendQuota(100), per_tenant=None
)


@dataclasses.dataclass(frozen=True)
class Spec:
    """What a worker needs to build its own store and facade (picklable)."""

    url: str
    prefix: str
    key: bytes


class QueueSender:
    """An SMS sender that records each delivery in a queue shared between processes."""

    def __init__(self, deliveries: Any) -> None:
        self._deliveries = deliveries

    def send_sms(self, to: str, text: str) -> None:
        self._deliveries.put((to, text))


def build(
    spec: Spec, clock: FakeClock, sender: Any = None, quotas: SendQuotas = WIDE_QUOTAS
) -> tuple[SQLStore, MFA]:
    store = SQLStore(spec.url, table_prefix=spec.prefix)
    sms = SMSOTP(
        sender=sender if sender is not None else Outbox(),
        issuer="ACME",
        regions={"AU"},
        max_attempts=MAX_ATTEMPTS,
        quotas=quotas,
    )
    mfa = MFA(
        store=store,
        keyring=Keyring([("k1", spec.key)]),
        factors=[TOTP(issuer="ACME"), sms],
        clock=clock,
        lockout=NO_LOCK,
    )
    return store, mfa


def outcome(error: BaseException | None) -> str:
    return "ok" if error is None else type(error).__name__


# ------------------------------------------------------------------------------------------
# workers (run in child processes)
# ------------------------------------------------------------------------------------------
def totp_worker(spec: Spec, secret: str, direct: bool, barrier: Any, results: Any) -> None:
    clock = FakeClock(T0)
    store, mfa = build(spec, clock)
    outcomes: list[str] = []
    try:
        for round_no in range(ROUNDS):
            clock.set(round_time(round_no))
            # Each its own challenge (or none, with verify_totp), the same code.
            challenge = None if direct else mfa.challenge(ALICE, "totp")
            code = totp_now(secret, clock.now())
            barrier.wait()
            try:
                if challenge is None:
                    mfa.verify_totp(ALICE, code)
                else:
                    mfa.verify(ALICE, challenge.id, code)
                outcomes.append("ok")
            except MFAError as error:
                outcomes.append(outcome(error))
    finally:
        store.close()
        results.put(outcomes)


def code_worker(spec: Spec, rounds: list[tuple[str, str]], barrier: Any, results: Any) -> None:
    """Submit ``code`` to challenge ``challenge_id`` of each round, after the barrier."""
    clock = FakeClock(T0)
    store, mfa = build(spec, clock)
    outcomes: list[str] = []
    try:
        for round_no, (challenge_id, code) in enumerate(rounds):
            clock.set(round_time(round_no))
            barrier.wait()
            try:
                mfa.verify(ALICE, challenge_id, code)
                outcomes.append("ok")
            except MFAError as error:
                outcomes.append(outcome(error))
    finally:
        store.close()
        results.put(outcomes)


def quota_worker(spec: Spec, at: dt.datetime, barrier: Any, deliveries: Any, results: Any) -> None:
    quotas = SendQuotas(
        per_destination=SendQuota(QUOTA_LIMIT), per_subject=SendQuota(100), per_tenant=None
    )
    store, mfa = build(spec, FakeClock(at), QueueSender(deliveries), quotas)
    result = "no result"
    try:
        barrier.wait()
        try:
            mfa.challenge(ALICE, "sms")
            result = "ok"
        except MFAError as error:
            result = outcome(error)
    finally:
        store.close()
        results.put(result)


# ------------------------------------------------------------------------------------------
# the parent's side
# ------------------------------------------------------------------------------------------
def round_time(round_no: int) -> dt.datetime:
    """Round ``r`` happens at its own TOTP step (and 2 minutes after the previous one)."""
    return T0 + dt.timedelta(minutes=10 + 2 * round_no)


@pytest.fixture(params=["sqlite", "postgres", "mysql"])
def spec(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Spec]:
    """A fresh schema on each database; dropped afterwards."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/races.db"
    else:
        variable, example = SERVICES[request.param]
        found = os.environ.get(variable)
        if not found:
            message = f"{variable} is not set (e.g. {example})"
            if IN_CI:
                pytest.fail(f"CI=true but {message}")
            pytest.skip(message)
        url = found
    prefix = f"race{uuid.uuid4().hex[:8]}_"
    store = SQLStore(url, table_prefix=prefix, create=True)
    try:
        yield Spec(url, prefix, secrets.token_bytes(32))
    finally:
        store.drop_schema()
        store.close()


def run(target: Any, arguments: list[tuple[Any, ...]], results: Any) -> list[Any]:
    """Start one process per argument tuple; return what each put on ``results``."""
    ctx = multiprocessing.get_context("forkserver")
    # The fork server imports this module (and so SQLAlchemy, the drivers and mfakit) once;
    # each worker is forked from it without any engine, instead of importing them again.
    # Ignored if the server already runs (it then imports them per worker: slower only).
    ctx.set_forkserver_preload([__name__, "psycopg", "pymysql"])
    workers = [ctx.Process(target=target, args=args) for args in arguments]
    for process in workers:
        process.start()
    collected = []
    try:
        for _ in workers:
            collected.append(results.get(timeout=900))
    finally:
        for process in workers:
            process.join(timeout=60)
            if process.exitcode is None:  # pragma: no cover - only on a hang
                process.kill()
    assert [p.exitcode for p in workers] == [0] * len(workers)
    return collected


def facade(spec: Spec, clock: FakeClock) -> tuple[SQLStore, MFA, Outbox]:
    outbox = Outbox()
    store, mfa = build(spec, clock, outbox)
    return store, mfa, outbox


def enroll_sms(mfa: MFA, outbox: Outbox) -> None:
    enrollment = mfa.enroll(ALICE, SMSOTP.setup(PHONE, "AU"))
    assert mfa.confirm(ALICE, enrollment.id, outbox.last_code(PHONE)).active


def per_round(collected: list[list[str]]) -> list[Counter[str]]:
    assert all(len(outcomes) == ROUNDS for outcomes in collected)
    return [Counter(outcomes[r] for outcomes in collected) for r in range(ROUNDS)]


@pytest.mark.parametrize("via", ["challenge", "verify_totp"])
def test_processes_race_one_totp_code(spec: Spec, via: str) -> None:
    clock = FakeClock(T0)
    store, mfa, _ = facade(spec, clock)
    enrollment = mfa.enroll(ALICE, "totp")
    assert mfa.confirm(ALICE, enrollment.id, totp_now(enrollment.secret, clock.now())).active
    ctx = multiprocessing.get_context("forkserver")
    barrier = ctx.Barrier(PROCESSES, timeout=120)
    results = ctx.Queue()
    direct = via == "verify_totp"
    arguments = [(spec, enrollment.secret, direct, barrier, results)] * PROCESSES
    collected = run(totp_worker, arguments, results)
    expected = Counter({"ok": 1, "ReplayedCode": PROCESSES - 1})
    wrong = {r: c for r, c in enumerate(per_round(collected)) if c != expected}
    assert not wrong, f"{len(wrong)} of {ROUNDS} rounds went wrong, e.g. {list(wrong.items())[:5]}"
    # The credential recorded the last round's step. The winners' challenges are gone (a
    # challenge is single-use); each loser's stays, charged with exactly its one attempt.
    credential = store.get_credential(enrollment.id)
    assert credential is not None
    assert credential.counter == int(round_time(ROUNDS - 1).timestamp()) // 30
    with store.engine.connect() as conn:
        table = store.metadata.tables[f"{spec.prefix}challenges"]
        attempts = conn.execute(sa.select(table.c.attempts)).scalars().all()
    assert sorted(attempts) == ([] if direct else [1] * ((PROCESSES - 1) * ROUNDS))
    # Every loser was charged once; the next round's winner forgave them.
    assert store.get_lock_state(ALICE.id).failures <= PROCESSES - 1
    store.close()


def open_sms_challenges(
    mfa: MFA, clock: FakeClock, outbox: Outbox, n: int
) -> list[tuple[str, str]]:
    """``n`` fresh SMS challenges, one per round time, with the code each one sent."""
    rounds = []
    for round_no in range(n):
        clock.set(round_time(round_no))
        challenge = mfa.challenge(ALICE, "sms")
        rounds.append((challenge.id, outbox.last_code(PHONE)))
    assert len({code for _, code in rounds}) > 1  # fresh codes, not one repeated
    return rounds


def test_processes_race_one_delivered_code(spec: Spec) -> None:
    clock = FakeClock(T0)
    store, mfa, outbox = facade(spec, clock)
    enroll_sms(mfa, outbox)
    rounds = open_sms_challenges(mfa, clock, outbox, ROUNDS)
    ctx = multiprocessing.get_context("forkserver")
    barrier = ctx.Barrier(PROCESSES, timeout=120)
    results = ctx.Queue()
    collected = run(code_worker, [(spec, rounds, barrier, results)] * PROCESSES, results)
    expected = Counter({"ok": 1, "ChallengeNotFound": PROCESSES - 1})
    wrong = {r: c for r, c in enumerate(per_round(collected)) if c != expected}
    assert not wrong, f"{len(wrong)} of {ROUNDS} rounds went wrong, e.g. {list(wrong.items())[:5]}"
    assert all(store.get_challenge(challenge_id) is None for challenge_id, _ in rounds)
    store.close()


def test_parallel_wrong_attempts_are_all_counted(spec: Spec) -> None:
    clock = FakeClock(T0)
    store, mfa, outbox = facade(spec, clock)
    enroll_sms(mfa, outbox)
    assert store.get_lock_state(ALICE.id).failures == 0
    rounds = open_sms_challenges(mfa, clock, outbox, WRONG_ROUNDS)
    wrong = [(cid, f"{(int(code) + 1) % 10**6:06d}") for cid, code in rounds]
    ctx = multiprocessing.get_context("forkserver")
    barrier = ctx.Barrier(PROCESSES, timeout=120)
    results = ctx.Queue()
    collected = run(code_worker, [(spec, wrong, barrier, results)] * PROCESSES, results)
    assert Counter(o for outcomes in collected for o in outcomes) == {
        "InvalidCode": PROCESSES * WRONG_ROUNDS
    }
    state = store.get_lock_state(ALICE.id)
    assert state.failures == PROCESSES * WRONG_ROUNDS  # 96: not one lost update
    assert state.locked_until is None
    assert not state.suspended
    for challenge_id, _ in rounds:
        challenge = store.get_challenge(challenge_id)
        assert challenge is not None
        assert challenge.attempts == PROCESSES
    store.close()


def test_send_quota_holds_against_fifty_processes(spec: Spec) -> None:
    clock = FakeClock(T0)
    store, mfa, outbox = facade(spec, clock)
    enroll_sms(mfa, outbox)  # its send falls out of the window before the race
    at = T0 + dt.timedelta(hours=2)
    ctx = multiprocessing.get_context("forkserver")
    barrier = ctx.Barrier(QUOTA_PROCESSES, timeout=120)
    deliveries = ctx.SimpleQueue()
    results = ctx.Queue()
    collected = run(
        quota_worker, [(spec, at, barrier, deliveries, results)] * QUOTA_PROCESSES, results
    )
    assert Counter(collected) == {"ok": QUOTA_LIMIT, "QuotaExceeded": QUOTA_PROCESSES - 5}
    sent = []
    while not deliveries.empty():
        sent.append(deliveries.get())
    assert len(sent) == QUOTA_LIMIT
    assert {to for to, _ in sent} == {PHONE}
    with store.engine.connect() as conn:
        table = store.metadata.tables[f"{spec.prefix}challenges"]
        assert conn.execute(sa.select(sa.func.count()).select_from(table)).scalar() == 5
        quotas = store.metadata.tables[f"{spec.prefix}quotas"]
        keys = conn.execute(sa.select(quotas.c.key)).scalars().all()
    destination = [k for k in keys if ":subject:" not in k]
    assert len(destination) == 1
    quota = store.get_quota(destination[0])
    assert sum(t > at - dt.timedelta(hours=1) for t in quota.sent) == QUOTA_LIMIT
    store.close()
