"""End-to-end behaviour of authenticator-app (TOTP) sign-in through the ``MFA`` facade.

Each test states one guarantee of DESIGN.md section 4 / SECURITY.md and drives it through
the public API only, on a FakeClock that starts on a period boundary (step ``S0``).
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import datetime as dt
import os
import urllib.parse
from collections.abc import Callable
from typing import TYPE_CHECKING

import pyotp
import pytest

from mfakit import (
    MFA,
    ChallengeNotFound,
    ConfigurationError,
    Credential,
    CredentialNotFound,
    CredentialStatus,
    DecryptionError,
    Event,
    EventType,
    ExpiredCode,
    FactorKind,
    InvalidCode,
    InvalidInput,
    InvalidSecret,
    InvalidType,
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
from mfakit.factors import TOTP, TOTPEnrollment
from mfakit.testing import FakeClock, ListSink, MemoryStore, totp_now

if TYPE_CHECKING:
    from conftest import EnrollTOTP, MakeMFA

UTC = dt.timezone.utc
PERIOD = 30
#: A lockout that never interferes with what a test is about (suspends at 100).
NO_LOCK = Lockout(max_failures=100, mode="suspend")


def step_now(clock: FakeClock, period: int = PERIOD) -> int:
    return int(clock.now().timestamp()) // period


def code(enrollment: TOTPEnrollment, clock: FakeClock, offset: int = 0) -> str:
    """The code the enrolled app shows now, ``offset`` periods away."""
    params = enrollment.credential.params
    return totp_now(
        enrollment.secret,
        clock.now(),
        digits=params["digits"],
        period=params["period"],
        algorithm=params["algorithm"],
        offset=offset,
    )


def code_for_step(enrollment: TOTPEnrollment, step: int) -> str:
    return totp_now(enrollment.secret, dt.datetime.fromtimestamp(step * PERIOD, UTC))


def wrong_code(*right: str) -> str:
    """A well-formed 6-digit code equal to none of ``right``."""
    for candidate in ("000000", "111111", "222222", "333333"):
        if candidate not in right:
            return candidate
    raise AssertionError("unreachable")  # pragma: no cover


def sign_in(mfa: MFA, subject: Subject, answer: str, **kwargs: str) -> Verification:
    """Open a challenge and answer it."""
    challenge = mfa.challenge(subject, "totp", **kwargs)
    return mfa.verify(subject, challenge.id, answer)


def only_failures(events: ListSink) -> bool:
    """No event but (possibly) an audit of the failed attempt: nothing changed."""
    return all(e.type is EventType.FAILED for e in events.events)


def stored(store: MemoryStore, credential_id: str) -> Credential:
    credential = store.get_credential(credential_id)
    assert credential is not None
    return credential


# enrolment ------------------------------------------------------------------------------


def test_enroll_creates_a_pending_credential(
    mfa: MFA, alice: Subject, bob: Subject, clock: FakeClock, store: MemoryStore
) -> None:
    enrollment = mfa.enroll(alice, TOTP.setup(label="Work phone"))
    credential = enrollment.credential
    assert enrollment.id == credential.id
    assert credential.status is CredentialStatus.PENDING
    assert not credential.active
    assert (credential.subject_id, credential.tenant) == (alice.id, alice.tenant)
    assert (credential.factor, credential.label) == ("totp", "Work phone")
    assert credential.counter == -1
    assert credential.confirmed_at is None
    assert enrollment.expires_at == credential.expires_at == clock.now() + dt.timedelta(minutes=10)
    assert store.get_credential(credential.id) == credential

    assert mfa.credentials(alice) == []
    assert mfa.credentials(alice, include_pending=True) == [credential]
    assert mfa.credentials(bob, include_pending=True) == []


def test_lapsed_pending_enrolment_is_no_longer_listed(
    mfa: MFA, alice: Subject, clock: FakeClock
) -> None:
    enrollment = mfa.enroll(alice, "totp")
    clock.advance(minutes=10, seconds=-1)
    assert [c.id for c in mfa.credentials(alice, include_pending=True)] == [enrollment.id]
    clock.advance(1)
    assert mfa.credentials(alice, include_pending=True) == []


def test_enroll_by_factor_name_uses_the_default_setup(mfa: MFA, alice: Subject) -> None:
    enrollment = mfa.enroll(alice, "totp")
    assert enrollment.credential.label == "Authenticator app"
    assert enrollment.credential.status is CredentialStatus.PENDING


def test_key_uri_names_issuer_and_account(mfa: MFA, alice: Subject) -> None:
    enrollment = mfa.enroll(alice, TOTP.setup())
    uri = urllib.parse.urlsplit(enrollment.uri)
    assert (uri.scheme, uri.netloc) == ("otpauth", "totp")
    assert urllib.parse.unquote(uri.path) == "/ACME:alice"
    query = urllib.parse.parse_qs(uri.query, strict_parsing=True)
    assert query["secret"] == [enrollment.secret]
    assert query["issuer"] == ["ACME"]
    # SHA1 / 6 / 30 are the defaults and are left out for the widest app support.
    assert not {"algorithm", "digits", "period"} & set(query)
    # pyotp, an independent parser, reads the same account back.
    parsed = pyotp.parse_uri(enrollment.uri)
    assert (parsed.issuer, parsed.name, parsed.secret) == ("ACME", "alice", enrollment.secret)


def test_default_secret_is_160_random_bits(mfa: MFA, alice: Subject) -> None:
    secrets_seen = set()
    for _ in range(3):
        secret = mfa.enroll(alice, TOTP.setup()).secret
        assert len(secret) == 32
        assert set(secret) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
        assert len(base64.b32decode(secret)) == 20
        secrets_seen.add(secret)
    assert len(secrets_seen) == 3


@pytest.mark.parametrize(
    ("algorithm", "raw_bytes", "text_length"), [("SHA256", 32, 52), ("SHA512", 64, 103)]
)
def test_default_secret_length_follows_the_algorithm(
    make_mfa: MakeMFA,
    alice: Subject,
    clock: FakeClock,
    algorithm: str,
    raw_bytes: int,
    text_length: int,
) -> None:
    with pytest.warns(UnsupportedParameterWarning, match=algorithm):
        factor = TOTP(issuer="ACME", algorithm=algorithm)  # type: ignore[arg-type]
    mfa = make_mfa(factors=[factor])
    enrollment = mfa.enroll(alice, TOTP.setup())
    assert len(enrollment.secret) == text_length
    assert len(base64.b32decode(enrollment.secret + "=" * (-text_length % 8))) == raw_bytes
    assert f"algorithm={algorithm}" in enrollment.uri
    # And the enrolment works end to end with the app's SHA-2 codes.
    confirmed = mfa.confirm(alice, enrollment.id, code(enrollment, clock))
    assert confirmed.params["algorithm"] == algorithm


# confirm --------------------------------------------------------------------------------


def test_confirm_with_the_current_code_activates(
    mfa: MFA, alice: Subject, clock: FakeClock, store: MemoryStore
) -> None:
    enrollment = mfa.enroll(alice, TOTP.setup(label="Phone"))
    clock.advance(seconds=42)
    confirmed = mfa.confirm(alice, enrollment.id, code(enrollment, clock))
    assert confirmed.active
    assert confirmed.status is CredentialStatus.ACTIVE
    assert confirmed.confirmed_at == clock.now()
    assert confirmed.expires_at is None
    assert confirmed.counter == step_now(clock)
    assert confirmed.version == enrollment.credential.version + 1
    assert store.get_credential(enrollment.id) == confirmed
    assert mfa.credentials(alice) == [confirmed]


def test_the_confirming_code_cannot_then_sign_in(
    mfa: MFA, alice: Subject, clock: FakeClock
) -> None:
    enrollment = mfa.enroll(alice, TOTP.setup())
    answer = code(enrollment, clock)
    mfa.confirm(alice, enrollment.id, answer)
    with pytest.raises(ReplayedCode):
        sign_in(mfa, alice, answer)
    clock.advance(PERIOD)  # still inside the window, as the previous step
    with pytest.raises(ReplayedCode):
        sign_in(mfa, alice, answer)
    # The next code signs in.
    assert sign_in(mfa, alice, code(enrollment, clock)).credential_id == enrollment.id


def test_confirm_with_a_wrong_code_keeps_it_pending_and_counts(
    mfa: MFA, alice: Subject, clock: FakeClock, store: MemoryStore
) -> None:
    enrollment = mfa.enroll(alice, TOTP.setup())
    window = {code(enrollment, clock, o) for o in (-1, 0, 1)}
    with pytest.raises(InvalidCode):
        mfa.confirm(alice, enrollment.id, wrong_code(*window))
    assert store.get_credential(enrollment.id) == enrollment.credential
    assert mfa.lock_state(alice).failures == 1
    # A later right code still confirms, and the success clears the failure.
    assert mfa.confirm(alice, enrollment.id, code(enrollment, clock)).active
    assert mfa.lock_state(alice).failures == 0


def test_confirm_of_an_expired_enrolment_is_refused(
    mfa: MFA, alice: Subject, clock: FakeClock, store: MemoryStore
) -> None:
    enrollment = mfa.enroll(alice, TOTP.setup())
    clock.advance(minutes=10)
    with pytest.raises(ExpiredCode):
        mfa.confirm(alice, enrollment.id, code(enrollment, clock))
    assert store.get_credential(enrollment.id) == enrollment.credential
    assert stored(store, enrollment.id).status is CredentialStatus.PENDING
    assert mfa.lock_state(alice).failures == 0
    assert mfa.credentials(alice) == []


def test_confirm_just_before_expiry_works(mfa: MFA, alice: Subject, clock: FakeClock) -> None:
    enrollment = mfa.enroll(alice, TOTP.setup())
    clock.advance(minutes=10, seconds=-1)
    assert mfa.confirm(alice, enrollment.id, code(enrollment, clock)).active


def test_confirm_of_another_subjects_enrolment_changes_nothing(
    mfa: MFA, alice: Subject, bob: Subject, clock: FakeClock, store: MemoryStore, events: ListSink
) -> None:
    enrollment = mfa.enroll(alice, TOTP.setup())
    before = store.dump()
    events.clear()
    with pytest.raises(CredentialNotFound):
        mfa.confirm(bob, enrollment.id, code(enrollment, clock))
    assert store.dump() == before
    assert mfa.lock_state(alice).version == mfa.lock_state(bob).version == 0
    assert only_failures(events)
    # Alice can still confirm it herself.
    assert mfa.confirm(alice, enrollment.id, code(enrollment, clock)).active


def test_confirming_an_active_credential_is_refused(
    mfa: MFA,
    alice: Subject,
    clock: FakeClock,
    store: MemoryStore,
    enrolled: EnrollTOTP,
) -> None:
    enrollment, credential = enrolled(mfa, alice, clock)
    with pytest.raises(CredentialNotFound):
        mfa.confirm(alice, enrollment.id, code(enrollment, clock))
    assert store.get_credential(enrollment.id) == credential
    # The fresh code was not consumed by the refused confirm.
    assert sign_in(mfa, alice, code(enrollment, clock)).credential_id == credential.id


@pytest.mark.parametrize(
    ("bad_id", "error"),
    [("cr_doesnotexist", CredentialNotFound), ("../etc", InvalidInput), (42, InvalidType)],
)
def test_confirm_with_unknown_or_malformed_id(
    mfa: MFA, alice: Subject, bad_id: object, error: type[Exception]
) -> None:
    with pytest.raises(error):
        mfa.confirm(alice, bad_id, "123456")  # type: ignore[arg-type]
    assert mfa.lock_state(alice).version == 0


# verify: the window ---------------------------------------------------------------------


def test_current_code_verifies_with_evidence(
    mfa: MFA, alice: Subject, clock: FakeClock, enrolled: EnrollTOTP
) -> None:
    enrollment, credential = enrolled(mfa, alice, clock)
    challenge = mfa.challenge(alice, "totp")
    proof = mfa.verify(alice, challenge.id, code(enrollment, clock))
    assert proof == Verification(
        subject_id=alice.id,
        tenant="t1",
        factor="totp",
        credential_id=credential.id,
        challenge_id=challenge.id,
        verified_at=clock.now(),
        kind=FactorKind.POSSESSION,
    )


@pytest.mark.parametrize("offset", [-1, 1])
def test_neighbouring_steps_verify_with_the_default_window(
    mfa: MFA, alice: Subject, clock: FakeClock, enrolled: EnrollTOTP, offset: int
) -> None:
    enrollment, credential = enrolled(mfa, alice, clock)
    clock.advance(PERIOD)  # so that the previous step was never used
    proof = sign_in(mfa, alice, code(enrollment, clock, offset))
    assert proof.credential_id == credential.id


@pytest.mark.parametrize("offset", [-2, 2, -3, 3])
def test_codes_two_or_more_steps_away_are_refused(
    make_mfa: MakeMFA, alice: Subject, clock: FakeClock, enrolled: EnrollTOTP, offset: int
) -> None:
    mfa = make_mfa(lockout=NO_LOCK)
    enrollment, _ = enrolled(mfa, alice, clock)
    clock.advance(5 * PERIOD)
    with pytest.raises(InvalidCode):
        sign_in(mfa, alice, code(enrollment, clock, offset))
    assert mfa.lock_state(alice).failures == 1


@pytest.mark.parametrize("offset", [-1, 1])
def test_strict_mode_refuses_neighbouring_steps(
    make_mfa: MakeMFA, alice: Subject, clock: FakeClock, enrolled: EnrollTOTP, offset: int
) -> None:
    mfa = make_mfa(factors=[TOTP(issuer="ACME", window=0)], lockout=NO_LOCK)
    enrollment, _ = enrolled(mfa, alice, clock)
    clock.advance(PERIOD)
    with pytest.raises(InvalidCode):
        sign_in(mfa, alice, code(enrollment, clock, offset))
    assert sign_in(mfa, alice, code(enrollment, clock)).factor == "totp"


@pytest.mark.parametrize(
    ("seconds", "window", "accepted"),
    [
        # The code of step k, submitted at k*30 + seconds.
        (-31, 1, False),  # two steps early
        (-30, 1, True),  # first second of step k-1: k is the next step
        (-1, 1, True),  # last second of step k-1
        (0, 1, True),  # first second of step k
        (29, 1, True),  # last second of step k
        (30, 1, True),  # first second of step k+1: k is the previous step
        (59, 1, True),  # last second of step k+1
        (60, 1, False),  # step k+2: k is two steps old
        (-1, 0, False),
        (0, 0, True),
        (29, 0, True),
        (30, 0, False),
    ],
)
def test_window_edges_fall_exactly_on_period_boundaries(
    make_mfa: MakeMFA,
    alice: Subject,
    clock: FakeClock,
    enrolled: EnrollTOTP,
    seconds: int,
    window: int,
    accepted: bool,
) -> None:
    mfa = make_mfa(factors=[TOTP(issuer="ACME", window=window)], lockout=NO_LOCK)
    enrollment, _ = enrolled(mfa, alice, clock)
    k = step_now(clock) + 10
    answer = code_for_step(enrollment, k)
    clock.set(dt.datetime.fromtimestamp(k * PERIOD + seconds, UTC))
    challenge = mfa.challenge(alice, "totp")
    if accepted:
        mfa.verify(alice, challenge.id, answer)
        assert mfa.credentials(alice)[0].counter == k
    else:
        with pytest.raises(InvalidCode):
            mfa.verify(alice, challenge.id, answer)


def _fullwidth(digits: str) -> str:
    return "".join(chr(ord(d) - ord("0") + 0xFF10) for d in digits)


@pytest.mark.parametrize(
    "spelling",
    [
        lambda c: c,
        lambda c: f"{c[:3]} {c[3:]}",
        lambda c: f"{c[:3]}-{c[3:]}",
        lambda c: f"  {c}\t",
        lambda c: _fullwidth(c),
        lambda c: f"{_fullwidth(c[:3])}\u3000{_fullwidth(c[3:])}",
    ],
    ids=["plain", "space", "hyphen", "padded", "fullwidth", "fullwidth-ideographic-space"],
)
def test_typed_spellings_of_the_code_are_accepted(
    mfa: MFA,
    alice: Subject,
    clock: FakeClock,
    enrolled: EnrollTOTP,
    spelling: Callable[[str], str],
) -> None:
    enrollment, credential = enrolled(mfa, alice, clock)
    typed = spelling(code(enrollment, clock))
    assert sign_in(mfa, alice, typed).credential_id == credential.id


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "12345",
        "1234567",
        "12a456",
        "\u0661\u0662\u0663\u0664\u0665\u0666",  # Arabic-Indic digits: int() would accept
        "1" * 65,
    ],
)
def test_malformed_codes_are_refused_without_charging(
    mfa: MFA, alice: Subject, clock: FakeClock, store: MemoryStore, enrolled: EnrollTOTP, typed: str
) -> None:
    enrolled(mfa, alice, clock)
    challenge = mfa.challenge(alice, "totp")
    with pytest.raises(MalformedCode):
        mfa.verify(alice, challenge.id, typed)
    assert mfa.lock_state(alice).failures == 0
    assert store.get_challenge(challenge.id) == challenge


def test_non_str_code_is_a_type_error(
    mfa: MFA, alice: Subject, clock: FakeClock, enrolled: EnrollTOTP
) -> None:
    enrollment, _ = enrolled(mfa, alice, clock)
    challenge = mfa.challenge(alice, "totp")
    with pytest.raises(InvalidType):
        mfa.verify(alice, challenge.id, int(code(enrollment, clock)))  # type: ignore[arg-type]
    with pytest.raises(InvalidType):
        mfa.verify(alice, challenge.id, code(enrollment, clock).encode())  # type: ignore[arg-type]
    assert mfa.lock_state(alice).failures == 0


# verify: replay -------------------------------------------------------------------------


def test_an_accepted_code_is_refused_in_a_new_challenge(
    mfa: MFA, alice: Subject, clock: FakeClock, enrolled: EnrollTOTP
) -> None:
    enrollment, _ = enrolled(mfa, alice, clock)
    answer = code(enrollment, clock)
    sign_in(mfa, alice, answer)
    with pytest.raises(ReplayedCode) as caught:
        sign_in(mfa, alice, answer)
    assert caught.value.public_message == InvalidCode("x").public_message
    clock.advance(PERIOD - 1)  # later in the same step ...
    with pytest.raises(ReplayedCode):
        sign_in(mfa, alice, answer)
    clock.advance(1)  # ... and as the previous step
    with pytest.raises(ReplayedCode):
        sign_in(mfa, alice, answer)


def test_after_step_s_the_unused_step_s_minus_1_is_a_replay(
    make_mfa: MakeMFA, alice: Subject, clock: FakeClock, enrolled: EnrollTOTP, store: MemoryStore
) -> None:
    mfa = make_mfa(lockout=NO_LOCK)
    enrollment, credential = enrolled(mfa, alice, clock)
    clock.advance(2 * PERIOD)
    s = step_now(clock)
    assert s - 1 > credential.counter  # step s-1 was never used
    sign_in(mfa, alice, code(enrollment, clock))
    assert stored(store, credential.id).counter == s
    with pytest.raises(ReplayedCode):
        sign_in(mfa, alice, code(enrollment, clock, -1))
    # Step s+1 is still ahead of s: accepted, and recorded.
    sign_in(mfa, alice, code(enrollment, clock, +1))
    assert stored(store, credential.id).counter == s + 1
    # Now the current step s itself is behind the last accepted one.
    with pytest.raises(ReplayedCode):
        sign_in(mfa, alice, code(enrollment, clock))


def test_the_step_recorded_is_the_one_whose_code_matched(
    mfa: MFA, alice: Subject, clock: FakeClock, enrolled: EnrollTOTP, store: MemoryStore
) -> None:
    """A code of the previous step is recorded as that step, not as now."""
    enrollment, credential = enrolled(mfa, alice, clock)
    clock.advance(2 * PERIOD)
    s = step_now(clock)
    sign_in(mfa, alice, code(enrollment, clock, -1))
    assert stored(store, credential.id).counter == s - 1
    # ... so the current code is still good afterwards.
    sign_in(mfa, alice, code(enrollment, clock))
    assert stored(store, credential.id).counter == s


# challenges -----------------------------------------------------------------------------


def test_challenge_is_deleted_after_success(
    mfa: MFA, alice: Subject, clock: FakeClock, store: MemoryStore, enrolled: EnrollTOTP
) -> None:
    enrollment, _ = enrolled(mfa, alice, clock)
    challenge = mfa.challenge(alice, "totp")
    assert store.get_challenge(challenge.id) == challenge
    assert challenge.expires_at == clock.now() + dt.timedelta(minutes=5)
    mfa.verify(alice, challenge.id, code(enrollment, clock))
    assert store.get_challenge(challenge.id) is None
    clock.advance(PERIOD)
    with pytest.raises(ChallengeNotFound):
        mfa.verify(alice, challenge.id, code(enrollment, clock))
    assert mfa.lock_state(alice).failures == 0  # an unknown id is not an attempt
    # The fresh code was not consumed: it signs in through a new challenge.
    sign_in(mfa, alice, code(enrollment, clock))


def test_another_subjects_challenge_is_not_found_and_nothing_changes(
    mfa: MFA,
    alice: Subject,
    bob: Subject,
    clock: FakeClock,
    store: MemoryStore,
    events: ListSink,
    enrolled: EnrollTOTP,
) -> None:
    alice_app, _ = enrolled(mfa, alice, clock)
    bob_app, _ = enrolled(mfa, bob, clock)
    challenge = mfa.challenge(alice, "totp")
    before = store.dump()
    locks = (mfa.lock_state(alice), mfa.lock_state(bob))
    events.clear()
    for answer in (code(alice_app, clock), code(bob_app, clock)):
        with pytest.raises(ChallengeNotFound):
            mfa.verify(bob, challenge.id, answer)
    assert store.dump() == before  # challenges, credentials and lock states alike
    assert (mfa.lock_state(alice), mfa.lock_state(bob)) == locks
    assert store.get_challenge(challenge.id) == challenge
    assert only_failures(events)
    # Alice's challenge is intact and her code still good.
    assert mfa.verify(alice, challenge.id, code(alice_app, clock)).subject_id == alice.id


def test_expired_challenge_is_refused(
    mfa: MFA, alice: Subject, clock: FakeClock, store: MemoryStore, enrolled: EnrollTOTP
) -> None:
    enrollment, _ = enrolled(mfa, alice, clock)
    first = mfa.challenge(alice, "totp")
    second = mfa.challenge(alice, "totp")
    clock.advance(minutes=5, seconds=-1)
    mfa.verify(alice, first.id, code(enrollment, clock))  # still open a second before
    clock.advance(1)  # exactly at expiry; also a new time step, so a fresh code
    with pytest.raises(ExpiredCode):
        mfa.verify(alice, second.id, code(enrollment, clock))
    assert store.get_challenge(second.id) == second  # not charged either
    assert mfa.lock_state(alice).failures == 0
    sign_in(mfa, alice, code(enrollment, clock))  # the code was not consumed


def test_challenge_dies_after_its_attempt_limit(
    make_mfa: MakeMFA, alice: Subject, clock: FakeClock, store: MemoryStore, enrolled: EnrollTOTP
) -> None:
    mfa = make_mfa(factors=[TOTP(issuer="ACME", max_attempts=3)], lockout=NO_LOCK)
    enrollment, _ = enrolled(mfa, alice, clock)
    right = code(enrollment, clock)
    challenge = mfa.challenge(alice, "totp")
    assert challenge.max_attempts == 3
    for attempt in range(1, 4):
        with pytest.raises(InvalidCode):
            mfa.verify(alice, challenge.id, wrong_code(right))
        assert stored_challenge_attempts(store, challenge.id) == attempt
    # Exhausted: even the right code no longer opens it, and it is gone.
    with pytest.raises(ChallengeNotFound):
        mfa.verify(alice, challenge.id, right)
    assert store.get_challenge(challenge.id) is None
    with pytest.raises(ChallengeNotFound):
        mfa.verify(alice, challenge.id, right)
    # The right code was never consumed: a new challenge accepts it.
    sign_in(mfa, alice, right)


def stored_challenge_attempts(store: MemoryStore, challenge_id: str) -> int:
    challenge = store.get_challenge(challenge_id)
    assert challenge is not None
    return challenge.attempts


def test_default_challenge_limit_is_five_attempts(mfa: MFA, alice: Subject) -> None:
    assert mfa.challenge(alice, "totp").max_attempts == 5


def test_challenge_for_an_unconfigured_factor_or_foreign_credential(
    mfa: MFA, alice: Subject, bob: Subject, clock: FakeClock, enrolled: EnrollTOTP
) -> None:
    _, bobs = enrolled(mfa, bob, clock)
    with pytest.raises(ConfigurationError):
        mfa.challenge(alice, "sms")
    with pytest.raises(CredentialNotFound):
        mfa.challenge(alice, "totp", credential_id=bobs.id)


def test_no_credential_still_gets_a_challenge_then_fails_like_a_wrong_code(
    mfa: MFA, alice: Subject, events: ListSink
) -> None:
    challenge = mfa.challenge(alice, "totp")
    assert challenge.subject_id == alice.id
    with pytest.raises(NotEnrolled) as caught:
        mfa.verify(alice, challenge.id, "123456")
    assert caught.value.public_message == InvalidCode("x").public_message
    assert mfa.lock_state(alice).failures == 1
    assert [e.reason for e in events.of_type(EventType.FAILED)] == ["NotEnrolled"]


def test_pending_credentials_do_not_sign_in(mfa: MFA, alice: Subject, clock: FakeClock) -> None:
    enrollment = mfa.enroll(alice, TOTP.setup())
    with pytest.raises(NotEnrolled):
        sign_in(mfa, alice, code(enrollment, clock))
    with pytest.raises(CredentialNotFound):
        mfa.challenge(alice, "totp", credential_id=enrollment.id)


# several authenticators -----------------------------------------------------------------


def test_either_of_two_apps_verifies_and_is_named(
    make_mfa: MakeMFA, alice: Subject, clock: FakeClock, enrolled: EnrollTOTP, store: MemoryStore
) -> None:
    mfa = make_mfa(lockout=NO_LOCK)
    phone, phone_cred = enrolled(mfa, alice, clock, label="Phone")
    tablet, tablet_cred = enrolled(mfa, alice, clock, label="Tablet")
    assert [c.label for c in mfa.credentials(alice)] == ["Phone", "Tablet"]

    assert sign_in(mfa, alice, code(tablet, clock)).credential_id == tablet_cred.id
    # Replay is per credential: the phone's code of the same step is still fresh ...
    assert sign_in(mfa, alice, code(phone, clock)).credential_id == phone_cred.id
    # ... and each app's code is now spent.
    for app in (phone, tablet):
        with pytest.raises(ReplayedCode):
            sign_in(mfa, alice, code(app, clock))
    s = step_now(clock)
    assert stored(store, phone_cred.id).counter == stored(store, tablet_cred.id).counter == s


def test_challenge_pinned_to_one_credential_refuses_the_other(
    make_mfa: MakeMFA, alice: Subject, clock: FakeClock, enrolled: EnrollTOTP
) -> None:
    mfa = make_mfa(lockout=NO_LOCK)
    phone, phone_cred = enrolled(mfa, alice, clock, label="Phone")
    tablet, _ = enrolled(mfa, alice, clock, label="Tablet")
    challenge = mfa.challenge(alice, "totp", credential_id=phone_cred.id)
    with pytest.raises(InvalidCode):
        mfa.verify(alice, challenge.id, code(tablet, clock))
    proof = mfa.verify(alice, challenge.id, code(phone, clock))
    assert proof.credential_id == phone_cred.id


def test_six_and_eight_digit_apps_coexist(
    make_mfa: MakeMFA, alice: Subject, clock: FakeClock, enrolled: EnrollTOTP
) -> None:
    mfa6 = make_mfa(lockout=NO_LOCK)
    with pytest.warns(UnsupportedParameterWarning):
        eight = TOTP(issuer="ACME", digits=8)
    mfa8 = make_mfa(factors=[eight], lockout=NO_LOCK)
    six_app, six_cred = enrolled(mfa6, alice, clock, label="Six")
    eight_app, eight_cred = enrolled(mfa8, alice, clock, label="Eight")
    assert eight_cred.params["digits"] == 8
    assert len(code(eight_app, clock)) == 8

    # Either facade accepts either length, and names the credential that matched.
    assert sign_in(mfa6, alice, code(eight_app, clock)).credential_id == eight_cred.id
    assert sign_in(mfa8, alice, code(six_app, clock)).credential_id == six_cred.id
    with pytest.raises(ReplayedCode):
        sign_in(mfa6, alice, code(eight_app, clock))
    with pytest.raises(MalformedCode):
        sign_in(mfa6, alice, "1234567")


# imported secrets -----------------------------------------------------------------------


def test_imported_secret_verifies_codes_of_an_independent_implementation(
    mfa: MFA, alice: Subject, clock: FakeClock
) -> None:
    secret = base64.b32encode(bytes(range(1, 21))).decode()
    assert len(secret) == 32
    # Lower case with spaces, as a person would paste it.
    typed = " ".join(secret.lower()[i : i + 4] for i in range(0, 32, 4))
    enrollment = mfa.enroll(alice, TOTP.setup(label="Imported", secret=typed))
    assert enrollment.secret == secret
    app = pyotp.TOTP(secret)
    now = int(clock.now().timestamp())
    credential = mfa.confirm(alice, enrollment.id, app.at(now))
    assert credential.active
    clock.advance(PERIOD)
    proof = sign_in(mfa, alice, app.at(int(clock.now().timestamp())))
    assert proof.credential_id == credential.id


@pytest.mark.parametrize(("size", "ok"), [(10, False), (15, False), (16, True), (20, True)])
def test_imported_secrets_under_128_bits_are_refused(size: int, ok: bool) -> None:
    secret = base64.b32encode(os.urandom(size)).decode().rstrip("=")
    if ok:
        assert TOTP.setup(secret=secret).secret == secret
    else:
        with pytest.raises(InvalidSecret) as caught:
            TOTP.setup(secret=secret)
        assert secret not in str(caught.value)


@pytest.mark.parametrize("secret", ["", "not base32!", "JBSWY3DPEHPK3PX1", "A", 12345])
def test_malformed_imported_secrets_are_refused(secret: object) -> None:
    with pytest.raises(InvalidInput):
        TOTP.setup(secret=secret)  # type: ignore[arg-type]


# remove ---------------------------------------------------------------------------------


def test_remove_deletes_and_records_the_actor(
    mfa: MFA,
    alice: Subject,
    clock: FakeClock,
    store: MemoryStore,
    events: ListSink,
    enrolled: EnrollTOTP,
) -> None:
    enrollment, credential = enrolled(mfa, alice, clock)
    removed = mfa.remove(alice, credential.id, actor="admin1")
    assert removed.id == credential.id
    assert store.get_credential(credential.id) is None
    assert mfa.credentials(alice) == []
    (event,) = events.of_type(EventType.CREDENTIAL_REMOVED)
    assert (event.subject_id, event.credential_id, event.factor, event.actor) == (
        alice.id,
        credential.id,
        "totp",
        "admin1",
    )
    with pytest.raises(NotEnrolled):
        sign_in(mfa, alice, code(enrollment, clock))
    with pytest.raises(CredentialNotFound):
        mfa.remove(alice, credential.id)


def test_remove_of_another_subjects_credential_is_refused(
    mfa: MFA,
    alice: Subject,
    bob: Subject,
    clock: FakeClock,
    store: MemoryStore,
    events: ListSink,
    enrolled: EnrollTOTP,
) -> None:
    _, credential = enrolled(mfa, alice, clock)
    before = store.dump()
    events.clear()
    with pytest.raises(CredentialNotFound):
        mfa.remove(bob, credential.id, actor="bob")
    assert store.dump() == before
    assert only_failures(events)


# events ---------------------------------------------------------------------------------


def test_event_sequence_of_a_sign_in(
    mfa: MFA, alice: Subject, clock: FakeClock, events: ListSink
) -> None:
    enrollment = mfa.enroll(alice, TOTP.setup())
    mfa.confirm(alice, enrollment.id, code(enrollment, clock))
    clock.advance(PERIOD)
    challenge = mfa.challenge(alice, "totp")
    right = code(enrollment, clock)
    with pytest.raises(InvalidCode):
        mfa.verify(alice, challenge.id, wrong_code(right, code(enrollment, clock, -1)))
    mfa.verify(alice, challenge.id, right)
    replay = mfa.challenge(alice, "totp")
    with pytest.raises(ReplayedCode):
        mfa.verify(alice, replay.id, right)

    seen = events.events
    assert [e.type for e in seen] == [
        EventType.ENROLLMENT_STARTED,
        EventType.ENROLLMENT_CONFIRMED,
        EventType.CHALLENGE_CREATED,
        EventType.FAILED,
        EventType.VERIFIED,
        EventType.CHALLENGE_CREATED,
        EventType.FAILED,
    ]
    assert all((e.subject_id, e.tenant, e.factor) == (alice.id, "t1", "totp") for e in seen)
    assert [e.credential_id for e in seen[:2]] == [enrollment.id] * 2
    assert seen[4].credential_id == enrollment.id
    assert [e.challenge_id for e in seen[2:5]] == [challenge.id] * 3
    assert [e.reason for e in events.of_type(EventType.FAILED)] == ["InvalidCode", "ReplayedCode"]
    assert seen[-1].challenge_id == replay.id
    assert seen[0].at < seen[2].at == seen[-1].at == clock.now()


def test_lock_and_unlock_are_events(
    mfa: MFA, alice: Subject, clock: FakeClock, events: ListSink, enrolled: EnrollTOTP
) -> None:
    enrollment, _ = enrolled(mfa, alice, clock)
    right = code(enrollment, clock)
    for _ in range(5):
        with pytest.raises(InvalidCode):
            sign_in(mfa, alice, wrong_code(right))
    (locked,) = events.of_type(EventType.LOCKED)
    assert locked.subject_id == alice.id
    assert locked.detail["failures"] == 5
    with pytest.raises(LockedOut) as caught:
        sign_in(mfa, alice, right)  # the right code too
    assert caught.value.retry_at == clock.now() + dt.timedelta(seconds=30)
    mfa.unlock(alice, actor="admin1")
    (unlocked,) = events.of_type(EventType.UNLOCKED)
    assert unlocked.actor == "admin1"
    assert sign_in(mfa, alice, right).subject_id == alice.id


@pytest.mark.parametrize("case", ["expired challenge", "expired enrolment"])
def test_every_failed_attempt_is_audited(
    mfa: MFA,
    alice: Subject,
    clock: FakeClock,
    events: ListSink,
    enrolled: EnrollTOTP,
    case: str,
) -> None:
    enrollment, _ = enrolled(mfa, alice, clock)
    challenge = mfa.challenge(alice, "totp")
    pending = mfa.enroll(alice, TOTP.setup(label="New phone"))
    """A real attempt by the right subject that fails is a failure to audit.

    (Unknown or foreign ids are treated as bad input and are not covered here.)
    """
    events.clear()
    if case == "expired challenge":
        clock.advance(minutes=5)
        with pytest.raises(ExpiredCode):
            mfa.verify(alice, challenge.id, code(enrollment, clock))
    else:
        clock.advance(minutes=10)
        with pytest.raises(ExpiredCode):
            mfa.confirm(alice, pending.id, code(pending, clock))
    failed = events.of_type(EventType.FAILED)
    assert [(e.subject_id, e.reason) for e in failed] == [(alice.id, "ExpiredCode")]


def _event_texts(event: Event) -> list[str]:
    texts = [repr(event), str(event)]
    for field in dataclasses.fields(event):
        value = getattr(event, field.name)
        texts += [str(value), repr(value)]
    for key, value in event.detail.items():
        texts += [str(key), str(value), repr(value)]
    return texts


def test_no_event_carries_a_secret_code_or_uri(
    make_mfa: MakeMFA,
    alice: Subject,
    bob: Subject,
    clock: FakeClock,
    store: MemoryStore,
    events: ListSink,
) -> None:
    mfa = make_mfa(lockout=Lockout(max_failures=3))
    forbidden: set[str] = set()
    apps = []
    for subject in (alice, bob):
        enrollment = mfa.enroll(subject, TOTP.setup(label="Phone"))
        apps.append((subject, enrollment))
        raw = base64.b32decode(enrollment.secret)
        forbidden |= {enrollment.secret, enrollment.uri, raw.hex(), repr(raw)}
        first = code(enrollment, clock)
        forbidden.add(first)
        mfa.confirm(subject, enrollment.id, first)
    clock.advance(PERIOD)
    for subject, enrollment in apps:
        right = code(enrollment, clock)
        window = {code(enrollment, clock, o) for o in (-1, 0, 1)}
        wrong = wrong_code(*window)
        forbidden |= {right, wrong}
        with pytest.raises(InvalidCode):
            sign_in(mfa, subject, wrong)
        sign_in(mfa, subject, right)
        with pytest.raises(ReplayedCode):
            sign_in(mfa, subject, right)
        for _ in range(2):  # reaches the lock (3 consecutive failures)
            with pytest.raises(InvalidCode):
                sign_in(mfa, subject, wrong)
        mfa.unlock(subject, actor="admin1")
    mfa.remove(alice, apps[0][1].id, actor="admin1")

    types = {e.type for e in events.events}
    assert {
        EventType.ENROLLMENT_STARTED,
        EventType.ENROLLMENT_CONFIRMED,
        EventType.CHALLENGE_CREATED,
        EventType.VERIFIED,
        EventType.FAILED,
        EventType.LOCKED,
        EventType.UNLOCKED,
        EventType.CREDENTIAL_REMOVED,
    } <= types
    for event in events.events:
        for text in _event_texts(event):
            for secret in forbidden:
                assert secret not in text, (event.type, secret)


# secrets at rest ------------------------------------------------------------------------


def test_store_dump_and_blobs_hold_no_secret_in_clear(
    mfa: MFA, alice: Subject, bob: Subject, clock: FakeClock, store: MemoryStore
) -> None:
    enrollments = [mfa.enroll(alice, TOTP.setup(label=f"App {i}")) for i in range(3)]
    enrollments.append(mfa.enroll(bob, TOTP.setup()))
    for enrollment in enrollments[:2]:  # some confirmed, some pending
        mfa.confirm(
            enrollment_subject(enrollment, alice, bob), enrollment.id, code(enrollment, clock)
        )
    clock.advance(PERIOD)
    sign_in(mfa, alice, code(enrollments[0], clock))
    mfa.challenge(bob, "totp")

    dump_text = repr(store.dump())
    blobs = [c.secret for c in store.iter_credentials()]
    assert len(blobs) == 4
    for enrollment in enrollments:
        raw = base64.b32decode(enrollment.secret)
        for text in (
            enrollment.secret,
            enrollment.secret.lower(),
            enrollment.grouped_secret,
            enrollment.uri,
            raw.hex(),
            raw.hex().upper(),
            repr(raw),
            base64.b64encode(raw).decode(),
        ):
            assert text not in dump_text
        for blob in blobs:
            assert raw not in blob
            assert enrollment.secret.encode() not in blob
            assert raw.hex().encode() not in blob
    for blob in blobs:  # the ciphertext is no use in a log line either
        assert blob.hex() not in dump_text
        assert repr(blob) not in dump_text


def enrollment_subject(enrollment: TOTPEnrollment, *subjects: Subject) -> Subject:
    (subject,) = [s for s in subjects if s.id == enrollment.credential.subject_id]
    return subject


def test_repr_never_shows_a_secret(mfa: MFA, alice: Subject, keyring: Keyring) -> None:
    imported = base64.b32encode(os.urandom(20)).decode()
    setup = TOTP.setup(secret=imported)
    assert imported not in repr(setup)
    assert imported not in str(setup)
    enrollment = mfa.enroll(alice, setup)
    raw = base64.b32decode(imported)
    blob = enrollment.credential.secret
    for obj in (enrollment, enrollment.credential, mfa, keyring, mfa.store):
        for text in (repr(obj), str(obj)):
            for secret in (imported, enrollment.uri, raw.hex(), repr(raw), blob.hex(), repr(blob)):
                assert secret not in text, type(obj).__name__
    key = os.urandom(32)
    named = Keyring([("k1", key)])
    for text in (repr(named), str(named)):
        assert key.hex() not in text
        assert base64.urlsafe_b64encode(key).decode().rstrip("=") not in text
        assert "k1" in text


def test_secret_blob_moved_to_another_credential_fails_to_decrypt(
    make_mfa: MakeMFA,
    alice: Subject,
    bob: Subject,
    clock: FakeClock,
    store: MemoryStore,
    enrolled: EnrollTOTP,
) -> None:
    """An attacker with write access to the store copies their own seed into a victim's row."""
    mfa = make_mfa(lockout=NO_LOCK)
    mine, my_cred = enrolled(mfa, alice, clock, label="Attacker's app")
    _, same_subject = enrolled(mfa, alice, clock, label="Victim app, same subject")
    _, other_subject = enrolled(mfa, bob, clock, label="Victim app, other subject")
    attacker_blob = stored(store, my_cred.id).secret

    for subject, victim in ((alice, same_subject), (bob, other_subject)):
        current = stored(store, victim.id)
        tampered = dataclasses.replace(current, secret=attacker_blob, version=current.version + 1)
        assert store.put_credential(tampered)
        challenge = mfa.challenge(subject, "totp", credential_id=victim.id)
        with pytest.raises(DecryptionError) as caught:
            mfa.verify(subject, challenge.id, code(mine, clock))
        assert mine.secret not in str(caught.value)
        assert stored(store, victim.id).counter == victim.counter  # nothing accepted

    # The attacker's own credential is untouched and works.
    assert sign_in(mfa, alice, code(mine, clock), credential_id=my_cred.id).credential_id == (
        my_cred.id
    )


def test_returned_credentials_cannot_change_the_stored_record(
    mfa: MFA, alice: Subject, clock: FakeClock, store: MemoryStore, enrolled: EnrollTOTP
) -> None:
    enrollment, confirmed = enrolled(mfa, alice, clock)
    for credential in (confirmed, mfa.credentials(alice)[0]):
        with contextlib.suppress(TypeError):  # read-only is what we want
            credential.params["period"] = 60  # type: ignore[index]
    assert stored(store, confirmed.id).params["period"] == PERIOD
    assert sign_in(mfa, alice, code(enrollment, clock)).credential_id == confirmed.id


def test_credential_reassigned_to_another_subject_fails_to_decrypt(
    mfa: MFA,
    alice: Subject,
    bob: Subject,
    clock: FakeClock,
    store: MemoryStore,
    enrolled: EnrollTOTP,
) -> None:
    """Rewriting the owner column of a row (same id, same blob) does not move the factor."""
    mine, my_cred = enrolled(mfa, alice, clock)
    current = stored(store, my_cred.id)
    # What an attacker with raw write access does; MemoryStore itself refuses owner changes.
    assert store.delete_credential(current.id, version=current.version)
    assert store.put_credential(
        dataclasses.replace(current, subject_id=bob.id, tenant=bob.tenant, version=1)
    )
    with pytest.raises(DecryptionError):
        sign_in(mfa, bob, code(mine, clock))


def test_flipped_bit_in_a_blob_fails_to_decrypt(
    mfa: MFA, alice: Subject, clock: FakeClock, store: MemoryStore, enrolled: EnrollTOTP
) -> None:
    enrollment, credential = enrolled(mfa, alice, clock)
    current = stored(store, credential.id)
    flipped = bytes([*current.secret[:-1], current.secret[-1] ^ 1])
    assert store.put_credential(
        dataclasses.replace(current, secret=flipped, version=current.version + 1)
    )
    with pytest.raises(DecryptionError):
        sign_in(mfa, alice, code(enrollment, clock))


# key rotation ---------------------------------------------------------------------------


def test_key_rotation_through_the_facade(
    alice: Subject, bob: Subject, clock: FakeClock, store: MemoryStore, events: ListSink
) -> None:
    old_key, new_key = os.urandom(32), os.urandom(32)

    def build(keys: list[tuple[str, bytes]]) -> MFA:
        return MFA(
            store=store,
            keyring=Keyring(keys),
            factors=[TOTP(issuer="ACME")],
            clock=clock,
            events=events,
            lockout=NO_LOCK,
        )

    old = build([("old", old_key)])
    apps: list[tuple[Subject, TOTPEnrollment]] = []
    for subject, count in ((alice, 2), (bob, 1)):
        for i in range(count):
            enrollment = old.enroll(subject, TOTP.setup(label=f"App {i}"))
            old.confirm(subject, enrollment.id, code(enrollment, clock))
            apps.append((subject, enrollment))
    pending = old.enroll(bob, TOTP.setup(label="Pending"))
    before = {c.id: c for c in store.iter_credentials()}
    assert {old.keyring.key_id_of(c.secret) for c in before.values()} == {"old"}

    both = build([("new", new_key), ("old", old_key)])
    assert both.rotate_keys() == 4
    after = {c.id: c for c in store.iter_credentials()}
    assert after.keys() == before.keys()
    for cid, credential in after.items():
        assert both.keyring.key_id_of(credential.secret) == "new"
        assert credential.version == before[cid].version + 1
        assert (credential.counter, credential.status) == (
            before[cid].counter,
            before[cid].status,
        )
    rotated = events.of_type(EventType.KEYS_ROTATED)
    assert [e.detail["rotated"] for e in rotated] == [4]
    assert rotated[0].actor == "system"

    # Replay state survived the rotation: the confirming codes are still spent.
    for subject, enrollment in apps:
        with pytest.raises(ReplayedCode):
            sign_in(both, subject, code(enrollment, clock), credential_id=enrollment.id)

    clock.advance(PERIOD)
    new_only = build([("new", new_key)])
    subject, first = apps[0]
    with pytest.raises(DecryptionError):  # the old key alone no longer reads them
        sign_in(old, subject, code(first, clock), credential_id=first.id)
    for subject, enrollment in apps:
        proof = sign_in(new_only, subject, code(enrollment, clock), credential_id=enrollment.id)
        assert proof.credential_id == enrollment.id
    clock.advance(PERIOD)
    for subject, enrollment in apps:
        sign_in(both, subject, code(enrollment, clock), credential_id=enrollment.id)
    assert new_only.confirm(bob, pending.id, code(pending, clock)).active

    assert both.rotate_keys() == 0
    assert new_only.rotate_keys() == 0
    assert [e.detail["rotated"] for e in events.of_type(EventType.KEYS_ROTATED)] == [4, 0, 0]


# maintenance ----------------------------------------------------------------------------


def test_purge_expired_removes_expired_challenges_only(
    mfa: MFA,
    alice: Subject,
    bob: Subject,
    clock: FakeClock,
    store: MemoryStore,
    enrolled: EnrollTOTP,
) -> None:
    enrollment, _ = enrolled(mfa, alice, clock)
    old_alice = mfa.challenge(alice, "totp")
    old_bob = mfa.challenge(bob, "totp")
    clock.advance(minutes=3)
    fresh = mfa.challenge(alice, "totp")
    clock.advance(minutes=2, seconds=1)
    credentials_before = list(store.iter_credentials())

    assert mfa.purge_expired(keep_for=dt.timedelta(0)) == 2
    assert store.get_challenge(old_alice.id) is None
    assert store.get_challenge(old_bob.id) is None
    assert store.get_challenge(fresh.id) == fresh
    assert list(store.iter_credentials()) == credentials_before
    assert mfa.purge_expired(keep_for=dt.timedelta(0)) == 0
    with pytest.raises(ChallengeNotFound):
        mfa.verify(alice, old_alice.id, code(enrollment, clock))
    mfa.verify(alice, fresh.id, code(enrollment, clock))


def test_purge_expired_agrees_with_verify_at_the_expiry_instant(
    mfa: MFA, alice: Subject, clock: FakeClock, store: MemoryStore, enrolled: EnrollTOTP
) -> None:
    enrollment, _ = enrolled(mfa, alice, clock)
    challenge = mfa.challenge(alice, "totp")
    clock.set(challenge.expires_at)
    with pytest.raises(ExpiredCode):
        mfa.verify(alice, challenge.id, code(enrollment, clock))
    assert mfa.purge_expired(keep_for=dt.timedelta(0)) == 1
    assert store.get_challenge(challenge.id) is None


def test_an_unreadable_credential_does_not_block_the_subjects_other_apps(
    mfa: MFA,
    alice: Subject,
    clock: FakeClock,
    store: MemoryStore,
    events: ListSink,
    enrolled: EnrollTOTP,
) -> None:
    """A corrupted row (or a key removed too early) fails closed for that credential only."""
    _, broken = enrolled(mfa, alice, clock, label="Old phone")
    working, spare = enrolled(mfa, alice, clock, label="New phone")
    current = stored(store, broken.id)
    corrupted = bytes([*current.secret[:-1], current.secret[-1] ^ 1])
    assert store.put_credential(
        dataclasses.replace(current, secret=corrupted, version=current.version + 1)
    )
    # The working app still signs in, although the broken credential is tried first.
    assert sign_in(mfa, alice, code(working, clock)).credential_id == spare.id
    # A wrong code surfaces the operator problem instead of hiding it as a wrong code, and
    # the attempt is audited.
    clock.advance(PERIOD)
    with pytest.raises(DecryptionError):
        sign_in(mfa, alice, "000000" if code(working, clock) != "000000" else "111111")
    assert events.of_type(EventType.FAILED)[-1].reason == "DecryptionError"


def test_purge_expired_keeps_recently_expired_challenges_by_default(
    mfa: MFA, alice: Subject, clock: FakeClock, store: MemoryStore
) -> None:
    """An expired SMS or e-mail code can still be resent, so purging waits ten minutes."""
    challenge = mfa.challenge(alice, "totp")
    clock.set(challenge.expires_at + dt.timedelta(minutes=10) - dt.timedelta(microseconds=1))
    assert mfa.purge_expired() == 0
    assert store.get_challenge(challenge.id) == challenge
    clock.advance(dt.timedelta(microseconds=1))
    assert mfa.purge_expired() == 1
    with pytest.raises(InvalidType):
        mfa.purge_expired(keep_for=dt.timedelta(seconds=-1))
