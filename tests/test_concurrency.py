"""Races through the facade: one code, many threads; many guesses, one budget.

SECURITY.md 4: of N concurrent submissions of one valid code exactly one succeeds.
SECURITY.md 14: the attempt is charged atomically *before* the comparison, so parallel
guesses can neither lose a count nor test more codes than the limit allows.

Every race starts its threads on a :class:`threading.Barrier` and runs with a tiny GIL switch
interval so that the threads really interleave. Store-level races are the business of
:class:`mfakit.testing.StoreContract`; here only the facade's use of the store is raced.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Final, TypeVar

import pytest

from mfakit import (
    MFA,
    Challenge,
    Changes,
    Credential,
    EventType,
    Keyring,
    Lockout,
    LockState,
    Subject,
    SubjectRecords,
    Verification,
)
from mfakit.exceptions import (
    ChallengeNotFound,
    LockedOut,
    MFAError,
    ReplayedCode,
)
from mfakit.factors import TOTP
from mfakit.testing import FakeClock, ListSink, MemoryStore, totp_now

THREADS: Final = 32
ROUNDS: Final = 20
ALICE: Final = Subject(id="alice")

Outcome = Verification | MFAError


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def _interleave_threads() -> Iterator[None]:
    """Switch threads every 10 us instead of 5 ms, so races interleave for real."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    yield
    sys.setswitchinterval(previous)


T = TypeVar("T")


class RecordingStore(MemoryStore):
    """A MemoryStore that remembers every lock-state write that landed."""

    def __init__(self) -> None:
        super().__init__()
        self._log_lock = threading.Lock()
        self.lock_writes: list[LockState] = []

    def put_lock_state(self, state: LockState) -> bool:
        written = super().put_lock_state(state)
        if written:
            with self._log_lock:
                self.lock_writes.append(state)
        return written

    def update_subject(
        self,
        subject_id: str,
        work: Callable[[SubjectRecords], tuple[Changes, T]],
        *,
        challenge_id: str | None = None,
    ) -> T:
        last: list[LockState | None] = [None]

        def recording(records: SubjectRecords) -> tuple[Changes, T]:
            changes, result = work(records)
            last[0] = changes.lock  # the run whose changes were written is the last one
            return changes, result

        result = super().update_subject(subject_id, recording, challenge_id=challenge_id)
        if last[0] is not None:
            with self._log_lock:
                self.lock_writes.append(last[0])
        return result


class CountingTOTP(TOTP):
    """A TOTP factor that counts how many codes it actually compares."""

    def __init__(self, issuer: str, **kwargs: int) -> None:
        super().__init__(issuer, **kwargs)  # type: ignore[arg-type]
        self._count_lock = threading.Lock()
        self.checks = 0

    def check(
        self, credential: Credential, code: str, *, now: dt.datetime, keyring: Keyring
    ) -> Credential:
        with self._count_lock:
            self.checks += 1
        return super().check(credential, code, now=now, keyring=keyring)


@dataclasses.dataclass
class RaceRig:
    mfa: MFA
    clock: FakeClock
    store: RecordingStore
    events: ListSink
    factor: CountingTOTP


def make_race_rig(lockout: Lockout, *, max_attempts: int = 5) -> RaceRig:
    clock = FakeClock()
    store = RecordingStore()
    events = ListSink()
    factor = CountingTOTP("ACME", max_attempts=max_attempts)
    mfa = MFA(
        store=store,
        keyring=Keyring.ephemeral(),
        factors=[factor],
        clock=clock,
        events=events,
        lockout=lockout,
    )
    return RaceRig(mfa, clock, store, events, factor)


def enroll_for_race(rig: RaceRig, subject: Subject) -> tuple[str, str]:
    """Enrol and confirm; return (credential id, secret). Moves to a fresh time step."""
    enrollment = rig.mfa.enroll(subject, "totp")
    rig.mfa.confirm(subject, enrollment.id, totp_now(enrollment.secret, rig.clock.now()))
    rig.clock.advance(30)
    return enrollment.id, enrollment.secret


def bad_code_for(secret: str, at: dt.datetime) -> str:
    near = {totp_now(secret, at, offset=k) for k in range(-3, 4)}
    candidate = 0
    while f"{candidate:06d}" in near:
        candidate += 1
    return f"{candidate:06d}"


def race(threads: int, attempt: Callable[[int], Verification]) -> list[Outcome]:
    """Run ``attempt(i)`` on ``threads`` threads released together; collect the outcomes.

    Only MFAError is caught: any other exception escapes and fails the test.
    """
    barrier = threading.Barrier(threads, timeout=60)

    def run(i: int) -> Outcome:
        barrier.wait()
        try:
            return attempt(i)
        except MFAError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(run, range(threads)))


def submit(mfa: MFA, challenge_ids: list[str], codes: list[str]) -> Callable[[int], Verification]:
    """The attempt of thread ``i``: its challenge and its code (lists of one repeat)."""

    def attempt(i: int) -> Verification:
        return mfa.verify(ALICE, challenge_ids[i % len(challenge_ids)], codes[i % len(codes)])

    return attempt


def open_challenges(mfa: MFA, n: int) -> list[str]:
    return [mfa.challenge(ALICE, "totp").id for _ in range(n)]


def kinds(outcomes: list[Outcome]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for outcome in outcomes:
        name = type(outcome).__name__
        counts[name] = counts.get(name, 0) + 1
    return counts


def step_of(at: dt.datetime) -> int:
    return int(at.timestamp()) // 30


# ------------------------------------------------------------------------------------------
# one valid code, many threads
# ------------------------------------------------------------------------------------------
def test_same_code_on_separate_challenges_succeeds_exactly_once() -> None:
    """32 sign-ins race one code, 20 rounds: one Verification and 31 ReplayedCode each.

    The lock state must tell the same story: every losing attempt was charged exactly once
    (31 charge writes per round, contiguous versions, none lost); the winner's charge and
    its reset are one unit, which writes the clean slate only if failures were counted
    before it (at most one reset); and the failures left afterwards are exactly the
    losers' charges that landed after that reset (the reset forgives the ones before it).
    """
    rig = make_race_rig(Lockout(max_failures=100, mode="suspend"))
    credential_id, secret = enroll_for_race(rig, ALICE)
    for _ in range(ROUNDS):
        now = rig.clock.now()
        code = totp_now(secret, now)
        challenges = open_challenges(rig.mfa, THREADS)
        before_state = rig.mfa.lock_state(ALICE)
        before_credential = rig.store.get_credential(credential_id)
        assert before_credential is not None
        writes_before = len(rig.store.lock_writes)
        rig.events.clear()

        outcomes = race(THREADS, submit(rig.mfa, challenges, [code]))

        assert kinds(outcomes) == {"Verification": 1, "ReplayedCode": THREADS - 1}
        [winner] = [o for o in outcomes if isinstance(o, Verification)]
        assert winner.credential_id == credential_id
        credential = rig.store.get_credential(credential_id)
        assert credential is not None
        assert credential.counter == step_of(now)
        assert credential.version == before_credential.version + 1  # one accepted write

        # challenges: the winner's is consumed, every loser's used exactly one attempt
        for challenge_id in challenges:
            stored = rig.store.get_challenge(challenge_id)
            if challenge_id == winner.challenge_id:
                assert stored is None
            else:
                assert stored is not None
                assert stored.attempts == 1

        # the lock-state writes of this round, in the order they landed
        writes = sorted(rig.store.lock_writes[writes_before:], key=lambda s: s.version)
        assert [w.version for w in writes] == list(
            range(before_state.version + 1, before_state.version + 1 + len(writes))
        )
        resets = [i for i, w in enumerate(writes) if w.failures == 0]
        assert len(resets) <= 1
        assert len(writes) == THREADS - 1 + len(resets)  # 31 charges (+ 1 reset)
        previous = before_state.failures
        for w in writes:
            assert w.failures in (0, previous + 1)
            previous = w.failures
        state = rig.mfa.lock_state(ALICE)
        assert state == writes[-1]
        forgiven = resets[0] + 1 if resets else 0
        assert state.failures == (0 if resets else before_state.failures) + len(writes) - forgiven
        assert not state.suspended

        assert len(rig.events.of_type(EventType.VERIFIED)) == 1
        failed = rig.events.of_type(EventType.FAILED)
        assert [e.reason for e in failed] == ["ReplayedCode"] * (THREADS - 1)
        rig.clock.advance(30)


def test_same_code_on_one_challenge_succeeds_exactly_once() -> None:
    rig = make_race_rig(Lockout(max_failures=100, mode="suspend"), max_attempts=100)
    credential_id, secret = enroll_for_race(rig, ALICE)
    for _ in range(5):
        now = rig.clock.now()
        code = totp_now(secret, now)
        challenge = rig.mfa.challenge(ALICE, "totp")
        rig.events.clear()

        outcomes = race(THREADS, submit(rig.mfa, [challenge.id], [code]))

        counts = kinds(outcomes)
        assert counts.pop("Verification") == 1
        assert set(counts) <= {"ReplayedCode", "ChallengeNotFound"}
        assert sum(counts.values()) == THREADS - 1
        credential = rig.store.get_credential(credential_id)
        assert credential is not None
        assert credential.counter == step_of(now)
        failed = rig.events.of_type(EventType.FAILED)
        replayed = sum(1 for o in outcomes if isinstance(o, ReplayedCode))
        assert sum(1 for e in failed if e.reason == "ReplayedCode") == replayed
        assert {e.reason for e in failed} <= {"ReplayedCode", "ChallengeNotFound"}
        assert len(rig.events.of_type(EventType.VERIFIED)) == 1
        # the code is spent whatever happens to the challenge
        with pytest.raises((ReplayedCode, ChallengeNotFound)):
            rig.mfa.verify(ALICE, rig.mfa.challenge(ALICE, "totp").id, code)
        rig.mfa.unlock(ALICE, actor="test")
        rig.clock.advance(30)


class InterleavingStore(MemoryStore):
    """Charges every open challenge once, right after the next accepted credential write.

    That is exactly what a concurrent request for the same challenge does when it charges
    the challenge between the winner's charge and the winner's delete.
    """

    armed = False

    def put_credential(self, credential: Credential) -> bool:
        written = super().put_credential(credential)
        if written and self.armed:
            self.armed = False
            for record in self.dump()["challenges"]:
                assert isinstance(record, Challenge)
                assert self.put_challenge(record.charged())
        return written


def test_challenge_is_consumed_even_if_charged_concurrently() -> None:
    clock = FakeClock()
    store = InterleavingStore()
    mfa = MFA(store=store, keyring=Keyring.ephemeral(), factors=[TOTP("ACME")], clock=clock)
    enrollment = mfa.enroll(ALICE, "totp")
    mfa.confirm(ALICE, enrollment.id, totp_now(enrollment.secret, clock.now()))
    clock.advance(30)
    challenge = mfa.challenge(ALICE, "totp")
    store.armed = True
    mfa.verify(ALICE, challenge.id, totp_now(enrollment.secret, clock.now()))
    clock.advance(30)
    # single use: the next code on the same challenge must find no challenge
    with pytest.raises(ChallengeNotFound):
        mfa.verify(ALICE, challenge.id, totp_now(enrollment.secret, clock.now()))
    assert store.get_challenge(challenge.id) is None


# ------------------------------------------------------------------------------------------
# many wrong codes, one budget
# ------------------------------------------------------------------------------------------
def test_parallel_wrong_codes_are_all_counted() -> None:
    """N parallel wrong guesses count N (DESIGN.md 4): no lost update on the counter."""
    rig = make_race_rig(Lockout(max_failures=100, mode="suspend"))
    _, secret = enroll_for_race(rig, ALICE)
    for round_ in range(3):
        wrong = bad_code_for(secret, rig.clock.now())
        challenges = open_challenges(rig.mfa, THREADS)
        before = rig.mfa.lock_state(ALICE)
        rig.events.clear()
        checks_before = rig.factor.checks

        outcomes = race(THREADS, submit(rig.mfa, challenges, [wrong]))

        assert kinds(outcomes) == {"InvalidCode": THREADS}
        after = rig.mfa.lock_state(ALICE)
        assert after.failures == before.failures + THREADS == THREADS * (round_ + 1)
        assert after.version == before.version + THREADS
        assert not after.suspended
        failed = rig.events.of_type(EventType.FAILED)
        assert [e.reason for e in failed] == ["InvalidCode"] * THREADS
        assert rig.events.of_type(EventType.LOCKED) == []
        assert rig.factor.checks - checks_before == THREADS

    # 96 so far: the next burst of 32 may only spend the 4 attempts left before the cap
    wrong = bad_code_for(secret, rig.clock.now())
    checks_before = rig.factor.checks
    outcomes = race(THREADS, submit(rig.mfa, open_challenges(rig.mfa, THREADS), [wrong]))
    assert kinds(outcomes) == {"InvalidCode": 4, "LockedOut": THREADS - 4}
    assert rig.factor.checks - checks_before == 4
    state = rig.mfa.lock_state(ALICE)
    assert (state.failures, state.suspended) == (100, True)


@pytest.mark.parametrize("mode", ["suspend", "backoff"])
def test_parallel_guesses_never_exceed_the_limit(mode: str) -> None:
    """64 parallel wrong codes against a limit of 5: exactly 5 are compared (SECURITY.md 14)."""
    threads = 64
    rig = make_race_rig(Lockout(max_failures=5, mode=mode))  # type: ignore[arg-type]
    _, secret = enroll_for_race(rig, ALICE)
    for _ in range(5):
        wrong = bad_code_for(secret, rig.clock.now())
        challenges = open_challenges(rig.mfa, threads)
        originals = [rig.store.get_challenge(c) for c in challenges]
        rig.events.clear()
        checks_before = rig.factor.checks
        before = rig.mfa.lock_state(ALICE)

        outcomes = race(threads, submit(rig.mfa, challenges, [wrong]))

        assert kinds(outcomes) == {"InvalidCode": 5, "LockedOut": threads - 5}
        assert rig.factor.checks - checks_before == 5  # charged before compared
        state = rig.mfa.lock_state(ALICE)
        assert state.failures == 5
        assert state.version == before.version + 5
        if mode == "suspend":
            assert state.suspended
        else:
            assert state.locked_until == rig.clock.now() + dt.timedelta(seconds=30)
        refused = [o for o in outcomes if isinstance(o, LockedOut)]
        assert {(o.retry_at, o.suspended, str(o)) for o in refused} == {
            (state.locked_until, state.suspended, str(refused[0]))
        }
        failed = rig.events.of_type(EventType.FAILED)
        # every attempt is audited (SECURITY.md 37); the refused ones say why
        assert len(failed) == threads
        assert sorted(e.reason or "" for e in failed) == sorted(
            ["InvalidCode"] * 5 + ["LockedOut"] * (threads - 5)
        )
        assert len(rig.events.of_type(EventType.LOCKED)) == 1
        # the 59 refused attempts used no challenge attempt either
        untouched = [c for c in originals if c is not None and rig.store.get_challenge(c.id) == c]
        assert len(untouched) == threads - 5
        rig.mfa.unlock(ALICE, actor="admin")
        rig.clock.advance(30)


def test_parallel_guesses_with_the_right_code_among_them() -> None:
    """One right code in a burst of wrong ones: at most the limit is compared per budget.

    The right code's success resets the count, which may free at most one more budget of
    5; so no more than 10 codes are ever compared, and the subject ends up consistent.
    """
    threads = 64
    rig = make_race_rig(Lockout(max_failures=5, mode="suspend"))
    _, secret = enroll_for_race(rig, ALICE)
    for _ in range(5):
        now = rig.clock.now()
        right, wrong = totp_now(secret, now), bad_code_for(secret, now)
        challenges = open_challenges(rig.mfa, threads)
        checks_before = rig.factor.checks

        outcomes = race(threads, submit(rig.mfa, challenges, [right] + [wrong] * (threads - 1)))

        counts = kinds(outcomes)
        compared = rig.factor.checks - checks_before
        assert set(counts) <= {"Verification", "InvalidCode", "LockedOut"}
        assert counts.get("Verification", 0) <= 1
        assert compared == counts.get("Verification", 0) + counts.get("InvalidCode", 0)
        assert compared <= 10
        state = rig.mfa.lock_state(ALICE)
        assert state.failures <= 5
        assert state.suspended == (state.failures == 5)
        rig.mfa.unlock(ALICE, actor="admin")
        rig.clock.advance(30)


# ------------------------------------------------------------------------------------------
# verify_totp: the same races without challenges (one Store.update_subject unit each)
# ------------------------------------------------------------------------------------------
def submit_totp(mfa: MFA, codes: list[str]) -> Callable[[int], Verification]:
    """The attempt of thread ``i``: ``verify_totp`` with its code (a list of one repeats)."""

    def attempt(i: int) -> Verification:
        return mfa.verify_totp(ALICE, codes[i % len(codes)])

    return attempt


def test_same_code_without_challenges_succeeds_exactly_once() -> None:
    """32 threads race one code through ``verify_totp``, 20 rounds (SECURITY.md 4).

    Each round: one Verification and 31 ReplayedCode; every attempt compared once and every
    loser charged exactly once (31 charges with contiguous versions, none lost); the
    credential advanced by exactly one write. Units of a subject run one after another, so
    the winner's unit resets whatever was charged before it (one write, and none when
    nothing was) and the failures left are exactly the losers that came after it.
    """
    rig = make_race_rig(Lockout(max_failures=100, mode="suspend"))
    credential_id, secret = enroll_for_race(rig, ALICE)
    for _ in range(ROUNDS):
        now = rig.clock.now()
        code = totp_now(secret, now)
        before_state = rig.mfa.lock_state(ALICE)
        before_credential = rig.store.get_credential(credential_id)
        assert before_credential is not None
        writes_before = len(rig.store.lock_writes)
        checks_before = rig.factor.checks
        rig.events.clear()

        outcomes = race(THREADS, submit_totp(rig.mfa, [code]))

        assert kinds(outcomes) == {"Verification": 1, "ReplayedCode": THREADS - 1}
        [winner] = [o for o in outcomes if isinstance(o, Verification)]
        assert (winner.credential_id, winner.challenge_id) == (credential_id, None)
        assert winner.verified_at == now
        assert rig.factor.checks - checks_before == THREADS  # each attempt compared once
        credential = rig.store.get_credential(credential_id)
        assert credential is not None
        assert credential.counter == step_of(now)
        assert credential.version == before_credential.version + 1  # one accepted write

        writes = sorted(rig.store.lock_writes[writes_before:], key=lambda s: s.version)
        assert [w.version for w in writes] == list(
            range(before_state.version + 1, before_state.version + 1 + len(writes))
        )
        resets = [i for i, w in enumerate(writes) if w.failures == 0]
        charges = [w for w in writes if w.failures != 0]
        assert len(charges) == THREADS - 1  # every loser charged exactly once
        previous = before_state.failures
        for w in writes:
            assert w.failures in (0, previous + 1)
            previous = w.failures
        state = rig.mfa.lock_state(ALICE)
        assert state == writes[-1]
        if resets:
            [reset_at] = resets  # the winner's unit, after `reset_at` losers
            assert before_state.failures + reset_at > 0
            assert state.failures == THREADS - 1 - reset_at
        else:  # the winner went first on a clean slate: it had nothing to write
            assert before_state.failures == 0
            assert state.failures == THREADS - 1
        assert not state.suspended

        [verified] = rig.events.of_type(EventType.VERIFIED)
        assert (verified.credential_id, verified.challenge_id) == (credential_id, None)
        failed = rig.events.of_type(EventType.FAILED)
        assert [e.reason for e in failed] == ["ReplayedCode"] * (THREADS - 1)
        assert rig.store.dump()["challenges"] == []
        rig.clock.advance(30)


def test_parallel_wrong_codes_without_challenges_are_all_counted() -> None:
    """N parallel wrong guesses through ``verify_totp`` count N; the cap still holds."""
    rig = make_race_rig(Lockout(max_failures=100, mode="suspend"))
    _, secret = enroll_for_race(rig, ALICE)
    for round_ in range(3):
        wrong = bad_code_for(secret, rig.clock.now())
        before = rig.mfa.lock_state(ALICE)
        checks_before = rig.factor.checks
        rig.events.clear()

        outcomes = race(THREADS, submit_totp(rig.mfa, [wrong]))

        assert kinds(outcomes) == {"InvalidCode": THREADS}
        after = rig.mfa.lock_state(ALICE)
        assert after.failures == before.failures + THREADS == THREADS * (round_ + 1)
        assert after.version == before.version + THREADS
        assert rig.factor.checks - checks_before == THREADS
        failed = rig.events.of_type(EventType.FAILED)
        assert [e.reason for e in failed] == ["InvalidCode"] * THREADS

    # 96 so far: the next burst may only spend the 4 attempts left before the cap
    wrong = bad_code_for(secret, rig.clock.now())
    checks_before = rig.factor.checks
    outcomes = race(THREADS, submit_totp(rig.mfa, [wrong]))
    assert kinds(outcomes) == {"InvalidCode": 4, "LockedOut": THREADS - 4}
    assert rig.factor.checks - checks_before == 4
    state = rig.mfa.lock_state(ALICE)
    assert (state.failures, state.suspended) == (100, True)


@pytest.mark.parametrize("mode", ["suspend", "backoff"])
def test_parallel_guesses_without_challenges_never_exceed_the_limit(mode: str) -> None:
    """64 parallel wrong codes via ``verify_totp``, limit 5: exactly 5 compared (SECURITY.md 14).

    Without a challenge there is no per-challenge attempt limit to fall back on: the
    subject's lockout alone must bound the guesses.
    """
    threads = 64
    rig = make_race_rig(Lockout(max_failures=5, mode=mode))  # type: ignore[arg-type]
    credential_id, secret = enroll_for_race(rig, ALICE)
    for _ in range(5):
        wrong = bad_code_for(secret, rig.clock.now())
        rig.events.clear()
        checks_before = rig.factor.checks
        before = rig.mfa.lock_state(ALICE)
        credential_before = rig.store.get_credential(credential_id)

        outcomes = race(threads, submit_totp(rig.mfa, [wrong]))

        assert kinds(outcomes) == {"InvalidCode": 5, "LockedOut": threads - 5}
        assert rig.factor.checks - checks_before == 5  # charged before compared
        state = rig.mfa.lock_state(ALICE)
        assert state.failures == 5
        assert state.version == before.version + 5
        if mode == "suspend":
            assert state.suspended
        else:
            assert state.locked_until == rig.clock.now() + dt.timedelta(seconds=30)
        refused = [o for o in outcomes if isinstance(o, LockedOut)]
        assert {(o.retry_at, o.suspended, str(o), o.public_message) for o in refused} == {
            (state.locked_until, state.suspended, str(refused[0]), refused[0].public_message)
        }
        assert rig.store.get_credential(credential_id) == credential_before
        failed = rig.events.of_type(EventType.FAILED)
        assert len(failed) == threads  # every attempt audited (SECURITY.md 37)
        assert sorted(e.reason or "" for e in failed) == sorted(
            ["InvalidCode"] * 5 + ["LockedOut"] * (threads - 5)
        )
        assert all(e.challenge_id is None for e in failed)
        assert len(rig.events.of_type(EventType.LOCKED)) == 1
        rig.mfa.unlock(ALICE, actor="admin")
        rig.clock.advance(30)


def test_parallel_guesses_without_challenges_with_the_right_code_among_them() -> None:
    """One right code in a burst of 63 wrong ones through ``verify_totp``.

    At most the limit is compared per budget: the right code, if it comes before the lock,
    resets the count and frees one more budget of 5, so no more than 10 codes are ever
    compared. Units of a subject run one after another, so the outcome is exact: k < 5
    wrong codes, the right one, then 5 more wrong ones and the lock; or 5 wrong ones and
    the lock, with the right code refused like the rest (and not consumed).
    """
    threads = 64
    rig = make_race_rig(Lockout(max_failures=5, mode="suspend"))
    credential_id, secret = enroll_for_race(rig, ALICE)
    for _ in range(5):
        now = rig.clock.now()
        right, wrong = totp_now(secret, now), bad_code_for(secret, now)
        checks_before = rig.factor.checks
        credential_before = rig.store.get_credential(credential_id)
        assert credential_before is not None
        rig.events.clear()

        outcomes = race(threads, submit_totp(rig.mfa, [right] + [wrong] * (threads - 1)))

        counts = kinds(outcomes)
        verified, invalid = counts.get("Verification", 0), counts.get("InvalidCode", 0)
        compared = rig.factor.checks - checks_before
        assert set(counts) <= {"Verification", "InvalidCode", "LockedOut"}
        assert compared == verified + invalid
        assert compared <= 10
        assert counts.get("LockedOut", 0) == threads - verified - invalid
        credential = rig.store.get_credential(credential_id)
        assert credential is not None
        if verified:
            assert verified == 1
            assert 5 <= invalid <= 9
            assert credential.counter == step_of(now)
        else:
            assert invalid == 5
            assert credential == credential_before  # the refused right code is not spent
        state = rig.mfa.lock_state(ALICE)
        assert (state.failures, state.suspended) == (5, True)
        assert len(rig.events.of_type(EventType.LOCKED)) == 1
        rig.mfa.unlock(ALICE, actor="admin")
        rig.clock.advance(30)
