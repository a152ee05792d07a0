"""Authenticator-app sign-in without a challenge: ``MFA.verify_totp``.

One unit of store work (``Store.update_subject``) checks the subject's lock and charges the
attempt before the comparison (SECURITY.md 14), compares the code with every active
credential of the factor within the drift window (SECURITY.md 2, 5), records the accepted
step so that a code is accepted at most once (SECURITY.md 3), and writes all of it or none
of it. The evidence carries no challenge. Each test drives the public API on a FakeClock
that starts on a period boundary; nothing sleeps.

Malformed input is covered in tests/test_bad_input.py, thread races in
tests/test_concurrency.py.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, Final, Literal

import pytest

from conftest import code_now
from mfakit import (
    MFA,
    ConfigurationError,
    Credential,
    CredentialStatus,
    DecryptionError,
    Event,
    EventType,
    FactorKind,
    InvalidCode,
    Keyring,
    LockedOut,
    Lockout,
    MalformedCode,
    NotEnrolled,
    ReplayedCode,
    Subject,
    UnsupportedParameterWarning,
    Verification,
)
from mfakit.exceptions import LOCKED_MESSAGE
from mfakit.factors import SMSOTP, TOTP, RecoveryPIN, TOTPEnrollment
from mfakit.hazmat.hashing import SecretHasher
from mfakit.testing import FakeClock, ListSink, MemoryStore, Outbox

if TYPE_CHECKING:
    from conftest import EnrollTOTP, MakeMFA

PERIOD: Final = 30
#: A lockout that never interferes with what a test is about (suspends at 100).
NO_LOCK: Final = Lockout(max_failures=100, mode="suspend")


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------
def step_now(clock: FakeClock) -> int:
    return int(clock.now().timestamp()) // PERIOD


def code(enrollment: TOTPEnrollment, clock: FakeClock, offset: int = 0) -> str:
    """The code the enrolled app shows now, ``offset`` periods away."""
    return code_now(enrollment, clock, offset=offset)


def wrong_code(*enrollments: TOTPEnrollment, clock: FakeClock) -> str:
    """A well-formed code that matches no step within three periods of now, for any app."""
    near = {code(e, clock, k) for e in enrollments for k in range(-3, 4)}
    candidate = 0
    while f"{candidate:06d}" in near:
        candidate += 1
    return f"{candidate:06d}"


def stored(store: MemoryStore, credential_id: str) -> Credential:
    credential = store.get_credential(credential_id)
    assert credential is not None
    return credential


def error_of(call: Callable[[], object]) -> Exception:
    with pytest.raises(Exception) as info:  # noqa: PT011 - the exact type is asserted after
        call()
    return info.value


def reasons(events: ListSink) -> list[tuple[EventType, str | None]]:
    return [(e.type, e.reason) for e in events.events]


# ------------------------------------------------------------------------------------------
# success and its evidence
# ------------------------------------------------------------------------------------------
def test_current_code_verifies_with_evidence_and_no_challenge(
    mfa: MFA, alice: Subject, clock: FakeClock, store: MemoryStore, enrolled: EnrollTOTP
) -> None:
    enrollment, credential = enrolled(mfa, alice, clock)
    before_lock = mfa.lock_state(alice)
    before = stored(store, credential.id)

    proof = mfa.verify_totp(alice, code(enrollment, clock))

    assert proof == Verification(
        subject_id=alice.id,
        tenant="t1",
        factor="totp",
        credential_id=credential.id,
        challenge_id=None,
        verified_at=clock.now(),
        kind=FactorKind.POSSESSION,
        recovery=False,
    )
    after = stored(store, credential.id)
    # the accepted step is recorded with one versioned write ...
    assert after.counter == step_now(clock)
    assert after.version == before.version + 1
    assert after.last_used_at == clock.now()
    assert after.status is CredentialStatus.ACTIVE
    assert (after.secret, after.params) == (before.secret, before.params)
    # ... no challenge is opened or left behind, and a clean slate needs no lock write
    assert store.dump()["challenges"] == []
    assert mfa.lock_state(alice) == before_lock


def test_factor_can_be_named_explicitly(
    mfa: MFA, alice: Subject, clock: FakeClock, enrolled: EnrollTOTP
) -> None:
    enrollment, credential = enrolled(mfa, alice, clock)
    proof = mfa.verify_totp(alice, code(enrollment, clock), factor="totp")
    assert (proof.factor, proof.credential_id) == ("totp", credential.id)


@pytest.mark.parametrize(
    "spell",
    [
        pytest.param(lambda c: f"{c[:3]} {c[3:]}", id="grouped"),
        pytest.param(lambda c: f" {c[:3]}-{c[3:]}\t", id="hyphen-padded"),
        pytest.param(
            lambda c: "".join(chr(ord(d) - ord("0") + 0xFF10) for d in c), id="full-width"
        ),
    ],
)
def test_typed_spellings_of_the_code_verify(
    mfa: MFA,
    alice: Subject,
    clock: FakeClock,
    enrolled: EnrollTOTP,
    spell: Callable[[str], str],
) -> None:
    """NFKC folds full-width digits onto ASCII; spaces and hyphens are separators."""
    enrollment, credential = enrolled(mfa, alice, clock)
    typed = spell(code(enrollment, clock))
    assert mfa.verify_totp(alice, typed).credential_id == credential.id


# ------------------------------------------------------------------------------------------
# replay (SECURITY.md 3)
# ------------------------------------------------------------------------------------------
def test_the_same_code_twice_is_a_replay(
    mfa: MFA, alice: Subject, clock: FakeClock, store: MemoryStore, enrolled: EnrollTOTP
) -> None:
    enrollment, credential = enrolled(mfa, alice, clock)
    answer = code(enrollment, clock)
    mfa.verify_totp(alice, answer)
    accepted = stored(store, credential.id)

    with pytest.raises(ReplayedCode) as caught:
        mfa.verify_totp(alice, answer)
    # the public answer does not tell a replay from a wrong code
    assert caught.value.public_message == InvalidCode("x").public_message
    assert mfa.lock_state(alice).failures == 1  # a replay is a charged failure
    assert stored(store, credential.id) == accepted
    clock.advance(PERIOD - 1)  # later in the same step ...
    with pytest.raises(ReplayedCode):
        mfa.verify_totp(alice, answer)
    clock.advance(1)  # ... and as the previous step, still inside the window
    with pytest.raises(ReplayedCode):
        mfa.verify_totp(alice, answer)
    assert stored(store, credential.id) == accepted
    assert mfa.lock_state(alice).failures == 3


def test_an_earlier_step_is_refused_after_a_later_one_was_accepted(
    make_mfa: MakeMFA, alice: Subject, clock: FakeClock, store: MemoryStore, enrolled: EnrollTOTP
) -> None:
    mfa = make_mfa(lockout=NO_LOCK)
    enrollment, credential = enrolled(mfa, alice, clock)
    clock.advance(2 * PERIOD)
    s = step_now(clock)
    assert s - 1 > credential.counter  # step s-1 was never used

    mfa.verify_totp(alice, code(enrollment, clock))
    assert stored(store, credential.id).counter == s
    with pytest.raises(ReplayedCode):  # never used, but before the last accepted step
        mfa.verify_totp(alice, code(enrollment, clock, -1))
    # the next step (drift +1) is still ahead of s: accepted and recorded as s+1
    mfa.verify_totp(alice, code(enrollment, clock, +1))
    assert stored(store, credential.id).counter == s + 1
    # now the current step itself is behind the last accepted one
    with pytest.raises(ReplayedCode):
        mfa.verify_totp(alice, code(enrollment, clock))
    assert stored(store, credential.id).counter == s + 1
    # each replay was charged; the success in between forgave the first one
    assert mfa.lock_state(alice).failures == 1


def test_a_code_used_with_a_challenge_is_a_replay_here_and_vice_versa(
    make_mfa: MakeMFA, alice: Subject, clock: FakeClock, enrolled: EnrollTOTP
) -> None:
    """Both paths share the credential's last accepted step."""
    mfa = make_mfa(lockout=NO_LOCK)
    enrollment, _ = enrolled(mfa, alice, clock)
    first = code(enrollment, clock)
    mfa.verify(alice, mfa.challenge(alice, "totp").id, first)
    with pytest.raises(ReplayedCode):
        mfa.verify_totp(alice, first)

    clock.advance(PERIOD)
    second = code(enrollment, clock)
    mfa.verify_totp(alice, second)
    with pytest.raises(ReplayedCode):
        mfa.verify(alice, mfa.challenge(alice, "totp").id, second)


# ------------------------------------------------------------------------------------------
# drift window (SECURITY.md 2)
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("offset", [-1, 1])
def test_neighbouring_steps_verify_and_record_their_own_step(
    mfa: MFA,
    alice: Subject,
    clock: FakeClock,
    store: MemoryStore,
    enrolled: EnrollTOTP,
    offset: int,
) -> None:
    enrollment, credential = enrolled(mfa, alice, clock)
    clock.advance(PERIOD)  # so that the previous step was never used
    proof = mfa.verify_totp(alice, code(enrollment, clock, offset))
    assert proof.credential_id == credential.id
    assert stored(store, credential.id).counter == step_now(clock) + offset


@pytest.mark.parametrize("offset", [-2, 2, -3, 3])
def test_codes_two_or_more_steps_away_are_refused_and_charged(
    make_mfa: MakeMFA,
    alice: Subject,
    clock: FakeClock,
    store: MemoryStore,
    enrolled: EnrollTOTP,
    offset: int,
) -> None:
    mfa = make_mfa(lockout=NO_LOCK)
    enrollment, credential = enrolled(mfa, alice, clock)
    clock.advance(5 * PERIOD)
    before = stored(store, credential.id)
    with pytest.raises(InvalidCode):
        mfa.verify_totp(alice, code(enrollment, clock, offset))
    assert mfa.lock_state(alice).failures == 1
    assert stored(store, credential.id) == before
    # the step of that code was not consumed by the refusal: the current code still works
    assert mfa.verify_totp(alice, code(enrollment, clock)).credential_id == credential.id


@pytest.mark.parametrize("offset", [-1, 1])
def test_strict_window_refuses_neighbouring_steps(
    make_mfa: MakeMFA, alice: Subject, clock: FakeClock, enrolled: EnrollTOTP, offset: int
) -> None:
    mfa = make_mfa(factors=[TOTP(issuer="ACME", window=0)], lockout=NO_LOCK)
    enrollment, _ = enrolled(mfa, alice, clock)
    clock.advance(PERIOD)
    with pytest.raises(InvalidCode):
        mfa.verify_totp(alice, code(enrollment, clock, offset))
    assert mfa.verify_totp(alice, code(enrollment, clock)).factor == "totp"


# ------------------------------------------------------------------------------------------
# which credentials count
# ------------------------------------------------------------------------------------------
def test_subject_without_a_credential_is_not_enrolled_and_charged(
    mfa: MFA,
    alice: Subject,
    bob: Subject,
    clock: FakeClock,
    store: MemoryStore,
    events: ListSink,
    enrolled: EnrollTOTP,
) -> None:
    bob_app, _ = enrolled(mfa, bob, clock)  # someone else's credential is no help
    events.clear()
    before = mfa.lock_state(alice)
    bob_before = mfa.lock_state(bob)

    with pytest.raises(NotEnrolled) as caught:
        mfa.verify_totp(alice, code(bob_app, clock))

    # answered like a wrong code (SECURITY.md 36) ...
    assert caught.value.public_message == InvalidCode("x").public_message
    # ... and charged like one, so probing for enrolment costs attempts too
    after = mfa.lock_state(alice)
    assert (after.failures, after.version) == (before.failures + 1, before.version + 1)
    assert mfa.lock_state(bob) == bob_before
    [failed] = events.events
    assert (failed.type, failed.reason, failed.subject_id) == (
        EventType.FAILED,
        "NotEnrolled",
        alice.id,
    )
    assert (failed.factor, failed.challenge_id) == ("totp", None)
    # bob's code was not consumed by alice's attempt
    assert mfa.verify_totp(bob, code(bob_app, clock)).subject_id == bob.id


def test_a_pending_enrolment_cannot_sign_in(
    mfa: MFA, alice: Subject, clock: FakeClock, store: MemoryStore
) -> None:
    pending = mfa.enroll(alice, TOTP.setup(label="Phone"))
    answer = code(pending, clock)
    with pytest.raises(NotEnrolled):
        mfa.verify_totp(alice, answer)
    assert stored(store, pending.id) == pending.credential  # not activated, not advanced
    assert mfa.lock_state(alice).failures == 1
    # the code was not consumed: it still confirms the enrolment
    assert mfa.confirm(alice, pending.id, answer).active


def test_a_pending_enrolment_next_to_an_active_one_is_not_tried(
    make_mfa: MakeMFA, alice: Subject, clock: FakeClock, store: MemoryStore, enrolled: EnrollTOTP
) -> None:
    mfa = make_mfa(lockout=NO_LOCK)
    active_app, active = enrolled(mfa, alice, clock)
    pending = mfa.enroll(alice, TOTP.setup(label="New phone"))
    with pytest.raises(InvalidCode):
        mfa.verify_totp(alice, code(pending, clock))
    assert stored(store, pending.id) == pending.credential
    assert stored(store, pending.id).status is CredentialStatus.PENDING
    assert mfa.lock_state(alice).failures == 1
    assert mfa.verify_totp(alice, code(active_app, clock)).credential_id == active.id


def test_a_removed_credential_no_longer_signs_in(
    mfa: MFA, alice: Subject, clock: FakeClock, enrolled: EnrollTOTP
) -> None:
    enrollment, credential = enrolled(mfa, alice, clock)
    mfa.remove(alice, credential.id, actor="admin1")
    with pytest.raises(NotEnrolled):
        mfa.verify_totp(alice, code(enrollment, clock))
    assert mfa.lock_state(alice).failures == 1


def test_either_of_two_apps_verifies_and_is_named(
    make_mfa: MakeMFA, alice: Subject, clock: FakeClock, store: MemoryStore, enrolled: EnrollTOTP
) -> None:
    mfa = make_mfa(lockout=NO_LOCK)
    phone, phone_cred = enrolled(mfa, alice, clock, label="Phone")
    tablet, tablet_cred = enrolled(mfa, alice, clock, label="Tablet")
    s = step_now(clock)

    assert mfa.verify_totp(alice, code(tablet, clock)).credential_id == tablet_cred.id
    assert stored(store, tablet_cred.id).counter == s
    assert stored(store, phone_cred.id).counter < s  # only the matching one advanced
    # replay is per credential: the phone's code of the same step is still fresh ...
    assert mfa.verify_totp(alice, code(phone, clock)).credential_id == phone_cred.id
    # ... and now each app's code is spent
    for app in (phone, tablet):
        with pytest.raises(ReplayedCode):
            mfa.verify_totp(alice, code(app, clock))
    assert stored(store, phone_cred.id).counter == stored(store, tablet_cred.id).counter == s


def test_six_and_eight_digit_apps_coexist(
    make_mfa: MakeMFA, alice: Subject, clock: FakeClock, enrolled: EnrollTOTP
) -> None:
    mfa6 = make_mfa(lockout=NO_LOCK)
    with pytest.warns(UnsupportedParameterWarning):
        eight = TOTP(issuer="ACME", digits=8)
    mfa8 = make_mfa(factors=[eight], lockout=NO_LOCK)
    six_app, six_cred = enrolled(mfa6, alice, clock, label="Six")
    eight_app, eight_cred = enrolled(mfa8, alice, clock, label="Eight")

    assert mfa6.verify_totp(alice, code(eight_app, clock)).credential_id == eight_cred.id
    assert mfa8.verify_totp(alice, code(six_app, clock)).credential_id == six_cred.id
    with pytest.raises(ReplayedCode):
        mfa6.verify_totp(alice, code(eight_app, clock))
    failures = mfa6.lock_state(alice).failures
    with pytest.raises(MalformedCode):  # fits neither length: not an attempt
        mfa6.verify_totp(alice, "1234567")
    assert mfa6.lock_state(alice).failures == failures


def test_another_subjects_code_does_not_verify_and_charges_the_caller(
    mfa: MFA,
    alice: Subject,
    bob: Subject,
    clock: FakeClock,
    store: MemoryStore,
    events: ListSink,
    enrolled: EnrollTOTP,
) -> None:
    alice_app, alice_cred = enrolled(mfa, alice, clock)
    bob_app, bob_cred = enrolled(mfa, bob, clock)
    # two random seeds may share a code by chance: move to a step where they do not
    while code(bob_app, clock) in {code(alice_app, clock, k) for k in (-1, 0, 1)}:
        clock.advance(PERIOD)  # pragma: no cover - one chance in ~330,000
    alice_before, bob_before = mfa.lock_state(alice), mfa.lock_state(bob)
    credentials_before = (stored(store, alice_cred.id), stored(store, bob_cred.id))
    events.clear()

    with pytest.raises(InvalidCode):
        mfa.verify_totp(alice, code(bob_app, clock))

    assert mfa.lock_state(alice).failures == alice_before.failures + 1
    assert mfa.lock_state(bob) == bob_before
    assert (stored(store, alice_cred.id), stored(store, bob_cred.id)) == credentials_before
    assert [(e.subject_id, e.reason) for e in events.events] == [(alice.id, "InvalidCode")]
    # bob's code is still his to use, and alice's own code still works for her
    assert mfa.verify_totp(bob, code(bob_app, clock)).credential_id == bob_cred.id
    assert mfa.verify_totp(alice, code(alice_app, clock)).credential_id == alice_cred.id


def test_open_challenges_are_left_alone(
    mfa: MFA, alice: Subject, clock: FakeClock, store: MemoryStore, enrolled: EnrollTOTP
) -> None:
    """No challenge is read, charged or consumed: only the subject's lock counts."""
    enrollment, _ = enrolled(mfa, alice, clock)
    challenge = mfa.challenge(alice, "totp")
    with pytest.raises(InvalidCode):
        mfa.verify_totp(alice, wrong_code(enrollment, clock=clock))
    mfa.verify_totp(alice, code(enrollment, clock))
    assert store.get_challenge(challenge.id) == challenge  # attempts still 0, not withdrawn


def test_an_unreadable_credential_does_not_block_the_subjects_other_apps(
    make_mfa: MakeMFA,
    alice: Subject,
    clock: FakeClock,
    store: MemoryStore,
    events: ListSink,
    enrolled: EnrollTOTP,
) -> None:
    mfa = make_mfa(lockout=NO_LOCK)
    _, broken = enrolled(mfa, alice, clock, label="Old phone")
    working, spare = enrolled(mfa, alice, clock, label="New phone")
    current = stored(store, broken.id)
    corrupted = bytes([*current.secret[:-1], current.secret[-1] ^ 1])
    assert store.put_credential(
        dataclasses.replace(current, secret=corrupted, version=current.version + 1)
    )
    # the working app signs in although the broken credential is tried first
    assert mfa.verify_totp(alice, code(working, clock)).credential_id == spare.id
    # a wrong code surfaces the operator problem, and is charged and audited
    clock.advance(PERIOD)
    failures = mfa.lock_state(alice).failures
    with pytest.raises(DecryptionError):
        mfa.verify_totp(alice, wrong_code(working, clock=clock))
    assert mfa.lock_state(alice).failures == failures + 1
    assert events.of_type(EventType.FAILED)[-1].reason == "DecryptionError"


# ------------------------------------------------------------------------------------------
# the factor argument
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name",
    [
        pytest.param("sms", id="configured-delivered-code-factor"),
        pytest.param("recovery_pin", id="configured-knowledge-factor"),
        pytest.param("email", id="unknown"),
        pytest.param("TOTP", id="upper-case"),
        pytest.param("totp ", id="trailing-space"),
        pytest.param("", id="empty"),
    ],
)
def test_factor_must_name_a_configured_totp_factor(
    make_mfa: MakeMFA,
    alice: Subject,
    clock: FakeClock,
    store: MemoryStore,
    events: ListSink,
    enrolled: EnrollTOTP,
    name: str,
) -> None:
    mfa = make_mfa(
        factors=[
            TOTP(issuer="ACME"),
            SMSOTP(sender=Outbox(), issuer="ACME"),
            RecoveryPIN(hasher=SecretHasher.owasp_minimum()),
        ]
    )
    enrollment, _ = enrolled(mfa, alice, clock)
    answer = code(enrollment, clock)
    before = store.dump()
    events.clear()
    with pytest.raises(ConfigurationError):
        mfa.verify_totp(alice, answer, factor=name)
    assert store.dump() == before
    assert events.events == []
    # the code was not consumed by the refused call
    assert mfa.verify_totp(alice, answer).factor == "totp"


# ------------------------------------------------------------------------------------------
# lockout (SECURITY.md 12-16)
# ------------------------------------------------------------------------------------------
def test_a_wrong_code_charges_one_failure_and_a_success_resets(
    mfa: MFA, alice: Subject, clock: FakeClock, store: MemoryStore, enrolled: EnrollTOTP
) -> None:
    enrollment, credential = enrolled(mfa, alice, clock)
    before = mfa.lock_state(alice)
    assert before.failures == 0
    credential_before = stored(store, credential.id)

    for n in (1, 2):
        with pytest.raises(InvalidCode):
            mfa.verify_totp(alice, wrong_code(enrollment, clock=clock))
        after = mfa.lock_state(alice)
        assert after == dataclasses.replace(before, failures=n, version=before.version + n)
    assert stored(store, credential.id) == credential_before  # a failure records no step

    mfa.verify_totp(alice, code(enrollment, clock))
    state = mfa.lock_state(alice)
    assert (state.failures, state.locked_until, state.suspended, state.lockouts) == (
        0,
        None,
        False,
        0,
    )
    # the charge of the successful attempt and its reset are one write of the unit
    assert state.version == before.version + 3


def test_failures_are_shared_with_challenge_verification(
    make_mfa: MakeMFA, alice: Subject, clock: FakeClock, events: ListSink, enrolled: EnrollTOTP
) -> None:
    """One budget per subject: a sign-in path without challenges does not get its own."""
    mfa = make_mfa(lockout=Lockout(max_failures=3, mode="suspend"))
    enrollment, _ = enrolled(mfa, alice, clock)
    wrong = wrong_code(enrollment, clock=clock)
    with pytest.raises(InvalidCode):
        mfa.verify(alice, mfa.challenge(alice, "totp").id, wrong)
    for _ in range(2):
        with pytest.raises(InvalidCode):
            mfa.verify_totp(alice, wrong)
    assert mfa.lock_state(alice).suspended
    assert len(events.of_type(EventType.LOCKED)) == 1
    # locked for both paths
    with pytest.raises(LockedOut):
        mfa.verify(alice, mfa.challenge(alice, "totp").id, code(enrollment, clock))
    with pytest.raises(LockedOut):
        mfa.verify_totp(alice, code(enrollment, clock))


@pytest.mark.parametrize("mode", ["backoff", "suspend"])
def test_while_locked_right_and_wrong_codes_get_identical_answers(
    make_mfa: MakeMFA,
    alice: Subject,
    clock: FakeClock,
    store: MemoryStore,
    events: ListSink,
    enrolled: EnrollTOTP,
    mode: Literal["backoff", "suspend"],
) -> None:
    mfa = make_mfa(lockout=Lockout(max_failures=3, mode=mode))
    enrollment, credential = enrolled(mfa, alice, clock)
    events.clear()
    for _ in range(3):  # the failure that sets the lock still answers InvalidCode
        with pytest.raises(InvalidCode):
            mfa.verify_totp(alice, wrong_code(enrollment, clock=clock))
    locked_at = clock.now()
    [locked] = events.of_type(EventType.LOCKED)
    assert locked.reason == ("suspended" if mode == "suspend" else "temporary")
    state = mfa.lock_state(alice)
    assert state.failures == 3
    dump = store.dump()
    events.clear()

    clock.advance(PERIOD - 1)  # inside a back-off lock of 30 s, same time step
    right = code(enrollment, clock)
    right_error = error_of(lambda: mfa.verify_totp(alice, right))
    wrong_error = error_of(lambda: mfa.verify_totp(alice, wrong_code(enrollment, clock=clock)))

    assert type(right_error) is type(wrong_error) is LockedOut
    assert isinstance(right_error, LockedOut)
    assert isinstance(wrong_error, LockedOut)
    assert right_error.public_message == wrong_error.public_message == LOCKED_MESSAGE
    assert str(right_error) == str(wrong_error)
    assert right_error.retry_at == wrong_error.retry_at
    assert right_error.suspended is wrong_error.suspended is (mode == "suspend")
    if mode == "backoff":
        assert right_error.retry_at == locked_at + dt.timedelta(seconds=30)
    # nothing charged, nothing reset, no step recorded
    assert store.dump() == dump
    assert mfa.lock_state(alice) == state
    assert reasons(events) == [(EventType.FAILED, "LockedOut")] * 2
    assert all((e.factor, e.challenge_id) == ("totp", None) for e in events.events)

    if mode == "backoff":
        clock.advance(1)  # exactly locked_until: open again
        assert mfa.verify_totp(alice, code(enrollment, clock)).credential_id == credential.id
    else:
        clock.advance(dt.timedelta(days=1))
        with pytest.raises(LockedOut):
            mfa.verify_totp(alice, code(enrollment, clock))
        mfa.unlock(alice, actor="admin1")
        # the code refused while locked was never consumed either
        clock.set(locked_at + dt.timedelta(seconds=PERIOD - 1))
        assert mfa.verify_totp(alice, right).credential_id == credential.id
    assert mfa.lock_state(alice).failures == 0


# ------------------------------------------------------------------------------------------
# events (SECURITY.md 37)
# ------------------------------------------------------------------------------------------
def test_events_of_successes_failures_and_locks(
    make_mfa: MakeMFA, alice: Subject, clock: FakeClock, events: ListSink, enrolled: EnrollTOTP
) -> None:
    mfa = make_mfa(lockout=Lockout(max_failures=2, mode="backoff"))
    enrollment, credential = enrolled(mfa, alice, clock)
    right = code(enrollment, clock)
    wrong = wrong_code(enrollment, clock=clock)
    events.clear()

    mfa.verify_totp(alice, right)
    with pytest.raises(ReplayedCode):
        mfa.verify_totp(alice, right)
    with pytest.raises(InvalidCode):  # the second failure sets a lock
        mfa.verify_totp(alice, wrong)
    with pytest.raises(LockedOut):
        mfa.verify_totp(alice, right)

    seen = events.events
    assert reasons(events) == [
        (EventType.VERIFIED, None),
        (EventType.FAILED, "ReplayedCode"),
        (EventType.FAILED, "InvalidCode"),
        (EventType.LOCKED, "temporary"),
        (EventType.FAILED, "LockedOut"),
    ]
    for event in seen:
        assert (event.subject_id, event.tenant, event.factor) == (alice.id, "t1", "totp")
        assert event.challenge_id is None
        assert event.at == clock.now()
        assert event.actor is None
    assert seen[0].credential_id == credential.id
    assert seen[3].detail["failures"] == 2
    assert seen[3].detail["locked_until"] == (clock.now() + dt.timedelta(seconds=30)).isoformat()
    # no event carries a code (SECURITY.md 22)
    for event in seen:
        texts = [repr(event), *(str(getattr(event, f.name)) for f in dataclasses.fields(Event))]
        for text in texts:
            assert right not in text
            assert wrong not in text


class DecoyCountingTOTP(TOTP):
    """A TOTP factor that counts the decoy checks it does for subjects without an app."""

    decoys = 0

    def decoy_check(self, code: str, now: dt.datetime) -> None:
        type(self).decoys += 1
        super().decoy_check(code, now)


def test_a_subject_without_an_app_costs_the_hmac_work_of_a_wrong_code(
    store: MemoryStore, clock: FakeClock, alice: Subject, bob: Subject, enrolled: EnrollTOTP
) -> None:
    """SECURITY.md 36: no early exit that would time who has an authenticator app."""
    factor = DecoyCountingTOTP(issuer="ACME")
    mfa = MFA(store=store, keyring=Keyring.ephemeral(), factors=[factor], clock=clock)
    bob_app, _ = enrolled(mfa, bob, clock)
    DecoyCountingTOTP.decoys = 0
    with pytest.raises(NotEnrolled):
        mfa.verify_totp(alice, "123456")
    assert DecoyCountingTOTP.decoys == 1
    with pytest.raises(InvalidCode):  # bob has an app: the real comparison, no decoy
        mfa.verify_totp(bob, wrong_code(bob_app, clock=clock))
    assert DecoyCountingTOTP.decoys == 1
