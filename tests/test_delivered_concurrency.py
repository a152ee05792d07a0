"""Races on codes sent by message: one code, many threads; many sends, one quota.

* SECURITY.md 4 and 9: of N concurrent submissions of one delivered code exactly one
  succeeds; the challenge is single use.
* SECURITY.md 14: the attempt is charged before the comparison, so parallel guesses cannot
  test more codes than the challenge allows.
* SECURITY.md 28: a send quota is one conditional write per slot, so parallel sends never
  exceed it, whichever way the number is typed.
* SECURITY.md 10: parallel resends of one challenge send exactly one new code.

Threads start together on a :class:`threading.Barrier` and run with a tiny GIL switch
interval, as in ``test_concurrency.py``. The clock is a :class:`FakeClock` that the threads
only read.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Final, TypeVar

import pytest

from mfakit import (
    MFA,
    Challenge,
    ChallengeNotFound,
    CodeEnrollment,
    EventType,
    InvalidCode,
    Keyring,
    Lockout,
    MFAError,
    QuotaExceeded,
    ResendTooSoon,
    SendQuota,
    Subject,
    Verification,
)
from mfakit.factors import SMSOTP, EmailOTP, SendQuotas
from mfakit.testing import FakeClock, ListSink, MemoryStore, Outbox

THREADS: Final = 32
ROUNDS: Final = 10
SENDS: Final = 50
QUOTA: Final = 5
HOUR: Final = dt.timedelta(hours=1)
COOLDOWN: Final = dt.timedelta(seconds=30)
PLENTY: Final = SendQuota(1000, HOUR)
E164: Final = "+61412345678"
ALICE: Final = Subject(id="u-alice", tenant="t1", username="alice", email="alice@example.com")

_T = TypeVar("_T")


@pytest.fixture(autouse=True)
def _interleave_threads() -> Iterator[None]:
    """Switch threads every 10 us instead of 5 ms, so races interleave for real."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    yield
    sys.setswitchinterval(previous)


def race(count: int, action: Callable[[int], _T]) -> list[_T | MFAError]:
    """Run ``action(0..count-1)`` in ``count`` threads released together.

    mfakit's errors are returned as outcomes; anything else propagates and fails the test.
    """
    barrier = threading.Barrier(count)

    def run(index: int) -> _T | MFAError:
        barrier.wait()
        try:
            return action(index)
        except MFAError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))


def kinds(outcomes: list[_T | MFAError]) -> Counter[str]:
    return Counter(type(outcome).__name__ for outcome in outcomes)


@dataclasses.dataclass(frozen=True)
class Kit:
    mfa: MFA
    outbox: Outbox
    store: MemoryStore
    events: ListSink
    clock: FakeClock
    keyring: Keyring
    sms: SMSOTP
    email: EmailOTP


def make_kit(
    *,
    destination: SendQuota = PLENTY,
    subject: SendQuota = PLENTY,
    max_attempts: int = 100,
) -> Kit:
    outbox = Outbox()
    limits = SendQuotas(per_destination=destination, per_subject=subject, per_tenant=None)
    sms = SMSOTP(sender=outbox, issuer="ACME", quotas=limits, max_attempts=max_attempts)
    email = EmailOTP(
        sender=outbox,
        from_address="noreply@acme.example",
        issuer="ACME",
        quotas=limits,
        max_attempts=max_attempts,
    )
    store, events, clock, keyring = MemoryStore(), ListSink(), FakeClock(), Keyring.ephemeral()
    mfa = MFA(
        store=store,
        keyring=keyring,
        factors=[sms, email],
        clock=clock,
        events=events,
        lockout=Lockout(max_failures=100, mode="suspend"),
    )
    return Kit(mfa, outbox, store, events, clock, keyring, sms, email)


def enroll_phone(kit: Kit, who: Subject = ALICE, typed: str = "0412 345 678") -> None:
    enrollment = kit.mfa.enroll(who, SMSOTP.setup(typed, "AU"))
    assert kit.mfa.confirm(who, enrollment.id, kit.outbox.last_code()).active


def verifier(kit: Kit, challenge: Challenge, *codes: str) -> Callable[[int], Verification]:
    """Thread ``i`` submits ``codes[i]`` (or the only code) for ``challenge``."""

    def verify(index: int) -> Verification:
        return kit.mfa.verify(ALICE, challenge.id, codes[index % len(codes)])

    return verify


def resend(kit: Kit, challenge: Challenge, index: int) -> Challenge:
    return kit.mfa.resend(ALICE, challenge.id)


# ------------------------------------------------------------------------------------------
# one code, many threads
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("factor", ["sms", "email"])
def test_one_delivered_code_verifies_exactly_once(factor: str) -> None:
    kit = make_kit()
    enroll_phone(kit)
    for _ in range(ROUNDS):
        challenge = kit.mfa.challenge(ALICE, factor)
        kit.events.clear()

        outcomes = race(THREADS, verifier(kit, challenge, kit.outbox.last_code()))

        assert kinds(outcomes) == {"Verification": 1, "ChallengeNotFound": THREADS - 1}
        [proof] = [o for o in outcomes if isinstance(o, Verification)]
        assert (proof.challenge_id, proof.factor) == (challenge.id, factor)
        assert kit.store.get_challenge(challenge.id) is None
        assert len(kit.events.of_type(EventType.VERIFIED)) == 1
        # Every losing attempt was charged; the win reset what came before it.
        state = kit.mfa.lock_state(ALICE)
        assert state.failures <= THREADS - 1
        assert not state.suspended
        kit.clock.advance(COOLDOWN)


def test_parallel_guesses_cannot_exceed_the_attempt_limit() -> None:
    kit = make_kit(max_attempts=5)
    enroll_phone(kit)
    for _ in range(ROUNDS):
        challenge = kit.mfa.challenge(ALICE, "sms")
        code = int(kit.outbox.last_code())
        guesses = [f"{(code + 1 + i) % 10**6:06d}" for i in range(THREADS)]

        outcomes = race(THREADS, verifier(kit, challenge, *guesses))

        # Exactly max_attempts guesses were compared; the rest found the challenge dead.
        assert kinds(outcomes) == {"InvalidCode": 5, "ChallengeNotFound": THREADS - 5}
        assert all(isinstance(o, InvalidCode | ChallengeNotFound) for o in outcomes)
        assert kit.store.get_challenge(challenge.id) is None
        kit.mfa.unlock(ALICE, actor="test")
        kit.clock.advance(COOLDOWN)


# ------------------------------------------------------------------------------------------
# many sends, one quota
# ------------------------------------------------------------------------------------------
def test_parallel_sms_sends_against_a_quota_of_five_send_five() -> None:
    kit = make_kit(destination=SendQuota(QUOTA, HOUR))
    enroll_phone(kit)
    kit.clock.advance(HOUR)  # the enrolment's send leaves the window
    kit.outbox.clear()
    now = kit.clock.now()

    outcomes = race(SENDS, lambda _: kit.mfa.challenge(ALICE, "sms"))

    assert kinds(outcomes) == {"Challenge": QUOTA, "QuotaExceeded": SENDS - QUOTA}
    assert {o.retry_at for o in outcomes if isinstance(o, QuotaExceeded)} == {now + HOUR}
    assert [sms.to for sms in kit.outbox.sms] == [E164] * QUOTA
    key = kit.sms.quota_key(kit.keyring, E164)
    assert kit.store.get_quota(key).sent == (now,) * QUOTA
    assert kit.store.get_quota("sms:subject:u-alice").sent == (now,) * QUOTA
    opened = {o.id for o in outcomes if isinstance(o, Challenge)}
    stored = {c.id for c in kit.store.dump()["challenges"] if isinstance(c, Challenge)}
    assert stored == opened
    assert len(kit.events.of_type(EventType.SEND_REFUSED)) == SENDS - QUOTA


def test_parallel_email_sends_against_a_quota_of_five_send_five() -> None:
    kit = make_kit(destination=SendQuota(QUOTA, HOUR))
    now = kit.clock.now()

    outcomes = race(SENDS, lambda _: kit.mfa.challenge(ALICE, "email"))

    assert kinds(outcomes) == {"Challenge": QUOTA, "QuotaExceeded": SENDS - QUOTA}
    assert [str(m["To"]) for m in kit.outbox.emails] == ["alice@example.com"] * QUOTA
    key = kit.email.quota_key(kit.keyring, "alice@example.com")
    assert kit.store.get_quota(key).sent == (now,) * QUOTA
    assert len(kit.store.dump()["challenges"]) == QUOTA


def test_parallel_enrolments_of_one_number_typed_differently_send_five() -> None:
    kit = make_kit(destination=SendQuota(QUOTA, HOUR), subject=SendQuota(1, HOUR))
    forms = ("0412345678", "+61 412 345 678", "0412-345-678", "(04) 1234 5678", "+61412345678")
    people = [Subject(id=f"u-{i}", tenant="t1") for i in range(SENDS)]

    def enroll(i: int) -> CodeEnrollment:
        return kit.mfa.enroll(people[i], SMSOTP.setup(forms[i % len(forms)], "AU"))

    outcomes = race(SENDS, enroll)

    assert kinds(outcomes) == {"CodeEnrollment": QUOTA, "QuotaExceeded": SENDS - QUOTA}
    assert [sms.to for sms in kit.outbox.sms] == [E164] * QUOTA
    # Refused enrolments leave no pending credential and give their subject slot back.
    pending = {o.id for o in outcomes if isinstance(o, CodeEnrollment)}
    dump = kit.store.dump()
    assert {getattr(c, "id", None) for c in dump["credentials"]} == pending
    assert len(dump["challenges"]) == QUOTA
    used = [len(kit.store.get_quota(f"sms:subject:{p.id}").sent) for p in people]
    assert sorted(used) == [0] * (SENDS - QUOTA) + [1] * QUOTA


def test_parallel_sends_refused_by_a_later_quota_give_every_slot_back() -> None:
    # Subject quota 5 refuses after the destination slot was taken: the destination must
    # end with exactly the five sends that went out, whatever the interleaving.
    kit = make_kit(subject=SendQuota(QUOTA, HOUR))
    now = kit.clock.now()

    outcomes = race(SENDS, lambda _: kit.mfa.challenge(ALICE, "email"))

    assert kinds(outcomes) == {"Challenge": QUOTA, "QuotaExceeded": SENDS - QUOTA}
    assert len(kit.outbox.emails) == QUOTA
    key = kit.email.quota_key(kit.keyring, "alice@example.com")
    assert kit.store.get_quota(key).sent == (now,) * QUOTA
    assert kit.store.get_quota("email:subject:u-alice").sent == (now,) * QUOTA


# ------------------------------------------------------------------------------------------
# parallel resends
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("factor", ["sms", "email"])
def test_parallel_resends_send_exactly_one_new_code(factor: str) -> None:
    kit = make_kit()
    enroll_phone(kit)
    for _ in range(ROUNDS):
        kit.clock.advance(HOUR)
        challenge = kit.mfa.challenge(ALICE, factor)
        old_code = kit.outbox.last_code()
        kit.clock.advance(COOLDOWN)
        kit.outbox.clear()
        now = kit.clock.now()

        outcomes = race(THREADS, functools.partial(resend, kit, challenge))

        assert kinds(outcomes) == {"Challenge": 1, "ResendTooSoon": THREADS - 1}
        [renewed] = [o for o in outcomes if isinstance(o, Challenge)]
        assert renewed.sends == 2
        refusals = [o for o in outcomes if isinstance(o, ResendTooSoon)]
        assert {r.retry_at for r in refusals} == {now + COOLDOWN}
        assert len(kit.outbox) == 1
        stored = kit.store.get_challenge(challenge.id)
        assert stored == renewed
        # The losers gave back the quota slots they had taken.
        destination = E164 if factor == "sms" else "alice@example.com"
        factor_impl = kit.sms if factor == "sms" else kit.email
        key = factor_impl.quota_key(kit.keyring, destination)
        assert kit.store.get_quota(key).sent == (now - COOLDOWN, now)
        new_code = kit.outbox.last_code()
        if new_code != old_code:
            with pytest.raises(InvalidCode):
                kit.mfa.verify(ALICE, challenge.id, old_code)
        assert isinstance(kit.mfa.verify(ALICE, challenge.id, new_code), Verification)
