"""Codes sent by message (SMS and e-mail), through the :class:`~mfakit.MFA` facade.

Every rule of SECURITY.md that concerns delivered codes, one behaviour per test:

* 9, 19: codes from ``secrets``, 5 minutes by default and never more than 10, single use,
  bound to their challenge, stored only as a keyed hash;
* 10: a resend makes a new code and kills the old one; cooldown and sends per challenge;
* 11, 38: malformed codes are refused with a typed error and nothing is charged;
* 12-16: failures feed the subject's lockout, shared by every factor;
* 18, 22: no code, phone number or address in clear in the store, the events or errors;
* 28: send quotas per destination (reformatting does not escape them), subject and tenant;
* 29, 30: only mobile numbers of allowed regions; a new number replaces the old one only
  once it is proven;
* 40: e-mail addresses and names are checked before they reach a header.

Everything runs on a :class:`FakeClock` with an :class:`Outbox` as the sender. Races are in
``test_delivered_concurrency.py``; a real SMTP round trip is in ``test_email_smtp_e2e.py``.
SECURITY.md 27 (SMS is a restricted authenticator) is a policy matter with nothing to test
in the facade yet.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import re
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping
from email.message import EmailMessage
from typing import Any, Final, Protocol

import pytest

from mfakit import (
    MFA,
    Challenge,
    ChallengeNotFound,
    ConfigurationError,
    Credential,
    CredentialNotFound,
    CredentialStatus,
    DeliveryError,
    EventType,
    ExpiredCode,
    InvalidCode,
    InvalidEmailAddress,
    InvalidInput,
    InvalidPhoneNumber,
    Keyring,
    LockedOut,
    Lockout,
    MalformedCode,
    MFAError,
    NotAMobileNumber,
    NotEnrolled,
    PhoneNumberError,
    QuotaExceeded,
    ResendTooSoon,
    SendLimitReached,
    SendQuota,
    Subject,
    UnparseablePhoneNumber,
    UnsupportedRegion,
    Verification,
)
from mfakit.factors import (
    SMSOTP,
    TOTP,
    DeliveredCodeFactor,
    EmailOTP,
    EmailTemplate,
    SendQuotas,
)
from mfakit.testing import FakeClock, ListSink, MemoryStore, Outbox

ALICE_TYPED: Final = "0412 345 678"
ALICE_E164: Final = "+61412345678"
ALICE_NATIONAL: Final = "412345678"
ALICE_HINT: Final = "+61 4•• ••• 678"
OTHER_TYPED: Final = "0423 456 789"
OTHER_E164: Final = "+61423456789"
FROM_ADDRESS: Final = "noreply@acme.example"
MICROSECOND: Final = dt.timedelta(microseconds=1)
HOUR: Final = dt.timedelta(hours=1)
COOLDOWN: Final = dt.timedelta(seconds=30)
CODE_TTL: Final = dt.timedelta(minutes=5)
MANY: Final = SendQuota(1000, HOUR)


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------
def sms_otp(sender: Any, **options: Any) -> SMSOTP:
    """``SMSOTP`` with issuer ACME (and anything else given)."""
    return SMSOTP(sender=sender, issuer="ACME", **options)


def email_otp(sender: Any, **options: Any) -> EmailOTP:
    """``EmailOTP`` from noreply@acme.example with issuer ACME."""
    return EmailOTP(sender=sender, from_address=FROM_ADDRESS, issuer="ACME", **options)


def quotas(
    *,
    destination: SendQuota = MANY,
    subject: SendQuota = MANY,
    tenant: SendQuota | None = None,
) -> SendQuotas:
    """Send quotas that stay out of the way unless a test sets one."""
    return SendQuotas(per_destination=destination, per_subject=subject, per_tenant=tenant)


@dataclasses.dataclass(frozen=True)
class Kit:
    """An ``MFA`` with SMS, e-mail and TOTP over the conftest parts, and its outbox."""

    mfa: MFA
    outbox: Outbox
    store: MemoryStore
    events: ListSink
    clock: FakeClock
    keyring: Keyring
    sms: SMSOTP
    email: EmailOTP


class MakeKit(Protocol):
    def __call__(
        self,
        *,
        sms: SMSOTP | None = ...,
        email: EmailOTP | None = ...,
        lockout: Lockout | None = ...,
    ) -> Kit: ...


@pytest.fixture
def outbox() -> Outbox:
    return Outbox()


@pytest.fixture
def make_kit(
    clock: FakeClock, store: MemoryStore, events: ListSink, keyring: Keyring, outbox: Outbox
) -> MakeKit:
    """Build the kit; factors default to the library defaults with the outbox as sender,
    the lockout to ``Lockout.nist()`` (100 failures) so that it only matters when asked."""

    def make(
        *,
        sms: SMSOTP | None = None,
        email: EmailOTP | None = None,
        lockout: Lockout | None = None,
    ) -> Kit:
        sms = sms if sms is not None else sms_otp(outbox)
        email = email if email is not None else email_otp(outbox)
        mfa = MFA(
            store=store,
            keyring=keyring,
            factors=[sms, email, TOTP(issuer="ACME")],
            clock=clock,
            events=events,
            lockout=lockout if lockout is not None else Lockout.nist(),
        )
        return Kit(mfa, outbox, store, events, clock, keyring, sms, email)

    return make


@pytest.fixture
def kit(make_kit: MakeKit) -> Kit:
    return make_kit()


def subject(name: str, *, tenant: str | None = "t1", **fields: Any) -> Subject:
    """A subject ``u-<name>`` with username ``name`` and a profile address."""
    fields.setdefault("email", f"{name}@example.com")
    fields.setdefault("display_name", name.capitalize())
    return Subject(id=f"u-{name}", tenant=tenant, username=name, **fields)


def other(code: str) -> str:
    """A code of the same length that is certainly not ``code``."""
    return f"{(int(code) + 1) % 10 ** len(code):0{len(code)}d}"


def script_codes(monkeypatch: pytest.MonkeyPatch, factor: DeliveredCodeFactor, *codes: str) -> None:
    """Make ``factor`` draw ``codes`` in order instead of random ones."""
    queue: Iterator[str] = iter(codes)
    monkeypatch.setattr(factor, "new_code", lambda: next(queue))


def enroll_phone(kit: Kit, who: Subject, typed: str = ALICE_TYPED) -> Credential:
    """Enrol and confirm a mobile number (region AU) for ``who``."""
    enrollment = kit.mfa.enroll(who, SMSOTP.setup(typed, "AU"))
    credential = kit.mfa.confirm(who, enrollment.id, kit.outbox.last_code())
    assert credential.active
    return credential


def plain_body(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def html_body(message: EmailMessage) -> str | None:
    part = message.get_body(preferencelist=("html",))
    return None if part is None else str(part.get_content())


def quota_keys(store: MemoryStore) -> list[str]:
    """Every quota key in the store (quota records are not public types)."""
    return [str(getattr(state, "key")) for state in store.dump()["quotas"]]  # noqa: B009


def stored_challenges(store: MemoryStore) -> list[Challenge]:
    return [c for c in store.dump()["challenges"] if isinstance(c, Challenge)]


def resend_at(challenge: Challenge) -> dt.datetime:
    assert challenge.resend_at is not None
    return challenge.resend_at


def reasons(kit: Kit, type_: EventType) -> list[str | None]:
    return [event.reason for event in kit.events.of_type(type_)]


# ------------------------------------------------------------------------------------------
# SMS enrolment
# ------------------------------------------------------------------------------------------
def test_sms_enrolment_sends_to_e164_and_stays_pending_until_confirmed(
    kit: Kit, alice: Subject
) -> None:
    enrollment = kit.mfa.enroll(alice, SMSOTP.setup(ALICE_TYPED, "AU", label="Work mobile"))

    sent = kit.outbox.last_sms()
    assert sent.to == ALICE_E164
    assert len(kit.outbox) == 1
    assert enrollment.destination_hint == ALICE_HINT
    assert enrollment.challenge.destination_hint == ALICE_HINT
    assert enrollment.credential.status is CredentialStatus.PENDING
    assert enrollment.credential.label == "Work mobile"
    assert enrollment.expires_at == kit.clock.now() + dt.timedelta(minutes=15)
    assert kit.mfa.credentials(alice) == []
    assert [c.id for c in kit.mfa.credentials(alice, include_pending=True)] == [enrollment.id]
    # A pending number cannot be used to sign in: asking for it sends nothing, and the
    # silent challenge fails like a wrong code (SECURITY.md 36).
    silent = kit.mfa.challenge(alice, "sms")
    assert silent.destination_hint is None
    assert len(kit.outbox) == 1
    with pytest.raises(NotEnrolled) as refused:
        kit.mfa.verify(alice, silent.id, "123456")
    assert refused.value.public_message == InvalidCode("x").public_message
    [started] = kit.events.of_type(EventType.ENROLLMENT_STARTED)
    assert started.credential_id == enrollment.id
    [code_sent] = kit.events.of_type(EventType.CODE_SENT)
    assert code_sent.challenge_id == enrollment.challenge.id
    assert code_sent.detail["destination"] == ALICE_HINT


def test_sms_enrolment_wrong_code_is_charged_right_code_activates_once(
    kit: Kit, alice: Subject
) -> None:
    enrollment = kit.mfa.enroll(alice, SMSOTP.setup(ALICE_TYPED, "AU"))
    code = kit.outbox.last_code(ALICE_E164)

    with pytest.raises(InvalidCode):
        kit.mfa.confirm(alice, enrollment.id, other(code))
    assert kit.mfa.lock_state(alice).failures == 1
    stored = kit.store.get_credential(enrollment.id)
    assert stored is not None
    assert stored.status is CredentialStatus.PENDING

    credential = kit.mfa.confirm(alice, enrollment.id, code)
    assert credential.active
    assert credential.id == enrollment.id
    assert kit.mfa.lock_state(alice).failures == 0
    assert [c.id for c in kit.mfa.credentials(alice)] == [enrollment.id]
    [confirmed] = kit.events.of_type(EventType.ENROLLMENT_CONFIRMED)
    assert confirmed.credential_id == enrollment.id

    # The enrolment code is spent: neither confirm nor verify takes it again.
    with pytest.raises(CredentialNotFound):
        kit.mfa.confirm(alice, enrollment.id, code)
    with pytest.raises(ChallengeNotFound):
        kit.mfa.verify(alice, enrollment.challenge.id, code)
    assert kit.store.get_challenge(enrollment.challenge.id) is None

    # Sign-in codes go to the confirmed number.
    challenge = kit.mfa.challenge(alice, "sms")
    assert challenge.credential_id == enrollment.id
    assert challenge.destination_hint == ALICE_HINT
    proof = kit.mfa.verify(alice, challenge.id, kit.outbox.last_code(ALICE_E164))
    assert (proof.factor, proof.credential_id, proof.challenge_id) == (
        "sms",
        enrollment.id,
        challenge.id,
    )


def test_enrolment_code_cannot_be_confirmed_by_another_subject(
    kit: Kit, alice: Subject, bob: Subject
) -> None:
    enrollment = kit.mfa.enroll(alice, SMSOTP.setup(ALICE_TYPED, "AU"))
    code = kit.outbox.last_code()
    with pytest.raises(CredentialNotFound):
        kit.mfa.confirm(bob, enrollment.id, code)
    with pytest.raises(ChallengeNotFound):
        kit.mfa.verify(bob, enrollment.challenge.id, code)
    assert kit.mfa.confirm(alice, enrollment.id, code).active


def test_pending_enrolment_challenge_is_answered_only_through_confirm(
    kit: Kit, alice: Subject
) -> None:
    enrollment = kit.mfa.enroll(alice, SMSOTP.setup(ALICE_TYPED, "AU"))
    with pytest.raises(ChallengeNotFound):
        kit.mfa.verify(alice, enrollment.challenge.id, kit.outbox.last_code())
    assert kit.mfa.confirm(alice, enrollment.id, kit.outbox.last_code()).active


def test_enrolment_lapses_after_enrollment_ttl_even_with_a_fresh_code(
    kit: Kit, alice: Subject
) -> None:
    enrollment = kit.mfa.enroll(alice, SMSOTP.setup(ALICE_TYPED, "AU"))
    kit.clock.set(enrollment.expires_at - dt.timedelta(minutes=1))
    kit.mfa.resend(alice, enrollment.challenge.id)  # the first code has expired by now
    kit.clock.set(enrollment.expires_at)
    with pytest.raises(ExpiredCode):
        kit.mfa.confirm(alice, enrollment.id, kit.outbox.last_code())
    assert kit.mfa.credentials(alice) == []


def test_resend_for_a_lapsed_enrolment_sends_nothing(kit: Kit, alice: Subject) -> None:
    enrollment = kit.mfa.enroll(alice, SMSOTP.setup(ALICE_TYPED, "AU"))
    kit.clock.set(enrollment.expires_at)
    with pytest.raises(MFAError):
        kit.mfa.resend(alice, enrollment.challenge.id)
    assert len(kit.outbox) == 1


def test_changing_the_number_keeps_the_old_one_until_the_new_one_is_confirmed(
    kit: Kit, alice: Subject
) -> None:
    old = enroll_phone(kit, alice)
    open_on_old = kit.mfa.challenge(alice, "sms")
    code_on_old = kit.outbox.last_code(ALICE_E164)

    change = kit.mfa.enroll(alice, SMSOTP.setup(OTHER_TYPED, "AU"))
    assert kit.outbox.last_sms().to == OTHER_E164
    # Until the new number is proven, the old one stays the sign-in number.
    assert [c.id for c in kit.mfa.credentials(alice)] == [old.id]
    kit.clock.advance(COOLDOWN)
    assert kit.mfa.challenge(alice, "sms").credential_id == old.id
    assert kit.outbox.last_sms().to == ALICE_E164

    new = kit.mfa.confirm(alice, change.id, kit.outbox.last_code(OTHER_E164))

    assert [c.id for c in kit.mfa.credentials(alice, include_pending=True)] == [new.id]
    assert kit.store.get_credential(old.id) is None
    [removed] = kit.events.of_type(EventType.CREDENTIAL_REMOVED)
    assert (removed.credential_id, removed.reason, removed.factor) == (old.id, "replaced", "sms")
    # A code already on its way to the old number is dead.
    with pytest.raises(ChallengeNotFound):
        kit.mfa.verify(alice, open_on_old.id, code_on_old)
    challenge = kit.mfa.challenge(alice, "sms")
    assert challenge.credential_id == new.id
    assert kit.outbox.last_sms().to == OTHER_E164


def test_an_abandoned_change_of_number_leaves_the_old_one_in_use(kit: Kit, alice: Subject) -> None:
    old = enroll_phone(kit, alice)
    change = kit.mfa.enroll(alice, SMSOTP.setup(OTHER_TYPED, "AU"))
    kit.clock.set(change.expires_at)
    assert [c.id for c in kit.mfa.credentials(alice, include_pending=True)] == [old.id]
    assert kit.mfa.challenge(alice, "sms").credential_id == old.id


@pytest.mark.parametrize(
    ("typed", "region", "error"),
    [
        pytest.param("02 9876 5432", "AU", NotAMobileNumber, id="landline"),
        pytest.param("1900 123 456", "AU", NotAMobileNumber, id="premium-rate"),
        pytest.param(ALICE_TYPED, "Other", UnsupportedRegion, id="other-country"),
        pytest.param(ALICE_TYPED, None, UnsupportedRegion, id="no-country"),
        pytest.param("+1 415 555 2671", "AU", UnsupportedRegion, id="us-number"),
        pytest.param("0412 345 67", "AU", InvalidPhoneNumber, id="too-short"),
        pytest.param("0412 345 678 ext. 5", "AU", InvalidPhoneNumber, id="extension"),
        pytest.param("call me", "AU", UnparseablePhoneNumber, id="words"),
        pytest.param("٠٤١٢٣٤٥٦٧٨", "AU", UnparseablePhoneNumber, id="arabic-indic-digits"),
    ],
)
def test_refused_numbers_store_and_send_nothing(
    kit: Kit, alice: Subject, typed: str, region: str | None, error: type[PhoneNumberError]
) -> None:
    before = kit.store.dump()
    with pytest.raises(error) as caught:
        kit.mfa.enroll(alice, SMSOTP.setup(typed, region))
    assert isinstance(caught.value, PhoneNumberError)
    assert kit.store.dump() == before
    assert len(kit.outbox) == 0
    assert kit.events.events == []


# ------------------------------------------------------------------------------------------
# expiry
# ------------------------------------------------------------------------------------------
def test_code_lives_five_minutes_by_default(kit: Kit, alice: Subject) -> None:
    created = kit.clock.now()
    challenge = kit.mfa.challenge(alice, "email")
    assert challenge.created_at == created
    assert challenge.expires_at == created + CODE_TTL
    assert challenge.resend_at == created + COOLDOWN
    assert challenge.sends == 1
    assert kit.sms.code_ttl == kit.email.code_ttl == CODE_TTL
    assert "It expires in 5 minutes" in plain_body(kit.outbox.last_email())


@pytest.mark.parametrize("factor", ["sms", "email"])
def test_code_is_valid_one_microsecond_before_expiry(kit: Kit, alice: Subject, factor: str) -> None:
    enroll_phone(kit, alice)
    challenge = kit.mfa.challenge(alice, factor)
    code = kit.outbox.last_code()
    kit.clock.set(challenge.expires_at - MICROSECOND)
    assert isinstance(kit.mfa.verify(alice, challenge.id, code), Verification)


@pytest.mark.parametrize("factor", ["sms", "email"])
def test_code_is_expired_at_exactly_expires_at(kit: Kit, alice: Subject, factor: str) -> None:
    enroll_phone(kit, alice)
    challenge = kit.mfa.challenge(alice, factor)
    code = kit.outbox.last_code()
    kit.clock.set(challenge.expires_at)
    with pytest.raises(ExpiredCode):
        kit.mfa.verify(alice, challenge.id, code)
    kit.clock.advance(dt.timedelta(days=1))
    with pytest.raises(ExpiredCode):
        kit.mfa.verify(alice, challenge.id, code)
    assert reasons(kit, EventType.FAILED)[-2:] == ["ExpiredCode", "ExpiredCode"]
    assert EventType.VERIFIED not in {e.type for e in kit.events.events[-2:]}


def test_enrolment_code_expires_at_exactly_expires_at(kit: Kit, alice: Subject) -> None:
    enrollment = kit.mfa.enroll(alice, SMSOTP.setup(ALICE_TYPED, "AU"))
    code = kit.outbox.last_code()
    kit.clock.set(enrollment.challenge.expires_at)
    with pytest.raises(ExpiredCode):
        kit.mfa.confirm(alice, enrollment.id, code)
    kit.clock.set(enrollment.challenge.expires_at - MICROSECOND)
    assert kit.mfa.confirm(alice, enrollment.id, code).active


@pytest.mark.parametrize("build", [sms_otp, email_otp], ids=["sms", "email"])
def test_code_ttl_over_ten_minutes_is_refused(build: Callable[..., DeliveredCodeFactor]) -> None:
    ten = dt.timedelta(minutes=10)
    assert build(Outbox(), code_ttl=ten).code_ttl == ten
    for too_long in (ten + MICROSECOND, dt.timedelta(minutes=11), dt.timedelta(hours=1)):
        with pytest.raises(ConfigurationError, match="10 minutes"):
            build(Outbox(), code_ttl=too_long)
    for unusable in (dt.timedelta(0), -ten, 300):
        with pytest.raises(ConfigurationError):
            build(Outbox(), code_ttl=unusable)


@pytest.mark.parametrize(
    "options",
    [
        {"digits": 5},
        {"digits": 11},
        {"digits": True},
        {"max_attempts": 101},
        {"max_attempts": 0},
        {"max_sends": 0},
        {"max_sends": 11},
        {"resend_cooldown": dt.timedelta(0)},
        {"quotas": SendQuota(5)},
    ],
)
def test_unsafe_options_are_refused_at_configuration(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        sms_otp(Outbox(), **options)
    with pytest.raises(ConfigurationError):
        email_otp(Outbox(), **options)


def test_send_quota_must_be_positive() -> None:
    for limit in (0, -1, True):
        with pytest.raises(ConfigurationError):
            SendQuota(limit)
    with pytest.raises(ConfigurationError):
        SendQuota(5, dt.timedelta(0))


# ------------------------------------------------------------------------------------------
# resend
# ------------------------------------------------------------------------------------------
@pytest.fixture
def phone_kit(kit: Kit, alice: Subject) -> Kit:
    """The kit with alice's mobile enrolled, the enrolment sends behind it."""
    enroll_phone(kit, alice)
    kit.outbox.clear()
    kit.events.clear()
    kit.clock.advance(HOUR)
    return kit


def test_resend_before_the_cooldown_is_refused_with_the_retry_time(
    phone_kit: Kit, alice: Subject
) -> None:
    kit = phone_kit
    challenge = kit.mfa.challenge(alice, "sms")
    before = kit.store.dump()

    assert challenge.resend_at == challenge.created_at + COOLDOWN

    for at in (kit.clock.now(), challenge.created_at + COOLDOWN - MICROSECOND):
        kit.clock.set(at)
        with pytest.raises(ResendTooSoon) as caught:
            kit.mfa.resend(alice, challenge.id)
        assert caught.value.retry_at == challenge.resend_at

    assert len(kit.outbox) == 1
    assert kit.store.dump() == before
    assert reasons(kit, EventType.SEND_REFUSED) == ["ResendTooSoon", "ResendTooSoon"]


def test_resend_after_the_cooldown_kills_the_old_code(
    phone_kit: Kit, alice: Subject, monkeypatch: pytest.MonkeyPatch
) -> None:
    kit = phone_kit
    script_codes(monkeypatch, kit.sms, "111111", "222222")
    challenge = kit.mfa.challenge(alice, "sms")
    assert kit.outbox.last_code() == "111111"
    kit.clock.set(resend_at(challenge))

    renewed = kit.mfa.resend(alice, challenge.id)

    now = kit.clock.now()
    assert renewed.id == challenge.id
    assert renewed.sends == 2
    assert renewed.expires_at == now + CODE_TTL
    assert renewed.resend_at == now + COOLDOWN
    assert [sms.to for sms in kit.outbox.sms] == [ALICE_E164, ALICE_E164]
    assert kit.outbox.last_code(ALICE_E164) == "222222"
    assert reasons(kit, EventType.CODE_SENT) == [None, None]
    assert [e.detail["sends"] for e in kit.events.of_type(EventType.CODE_SENT)] == [1, 2]
    with pytest.raises(InvalidCode):
        kit.mfa.verify(alice, challenge.id, "111111")
    proof = kit.mfa.verify(alice, challenge.id, "222222")
    assert proof.challenge_id == challenge.id


def test_resend_gives_a_fresh_attempt_budget(phone_kit: Kit, alice: Subject) -> None:
    kit = phone_kit
    challenge = kit.mfa.challenge(alice, "sms")
    code = kit.outbox.last_code()
    for _ in range(4):
        with pytest.raises(InvalidCode):
            kit.mfa.verify(alice, challenge.id, other(code))
    stored = kit.store.get_challenge(challenge.id)
    assert stored is not None
    assert stored.attempts == 4
    kit.clock.set(resend_at(challenge))
    assert kit.mfa.resend(alice, challenge.id).attempts == 0
    stored = kit.store.get_challenge(challenge.id)
    assert stored is not None
    assert stored.attempts == 0


def test_max_sends_then_send_limit_reached(phone_kit: Kit, alice: Subject) -> None:
    kit = phone_kit
    assert kit.sms.max_sends == 3
    challenge = kit.mfa.challenge(alice, "sms")
    for sends in (2, 3):
        kit.clock.advance(COOLDOWN)
        assert kit.mfa.resend(alice, challenge.id).sends == sends
    kit.clock.advance(HOUR)
    before = kit.store.dump()
    with pytest.raises(SendLimitReached) as caught:
        kit.mfa.resend(alice, challenge.id)
    assert caught.value.retry_at is None
    assert len(kit.outbox.sms) == 3
    assert kit.store.dump() == before
    assert reasons(kit, EventType.SEND_REFUSED) == ["SendLimitReached"]


def test_resend_after_expiry_gives_a_new_full_lifetime(
    phone_kit: Kit, alice: Subject, monkeypatch: pytest.MonkeyPatch
) -> None:
    kit = phone_kit
    script_codes(monkeypatch, kit.sms, "111111", "222222")
    challenge = kit.mfa.challenge(alice, "sms")
    kit.clock.set(challenge.expires_at + dt.timedelta(minutes=2))
    with pytest.raises(ExpiredCode):
        kit.mfa.verify(alice, challenge.id, "111111")

    renewed = kit.mfa.resend(alice, challenge.id)

    assert renewed.expires_at == kit.clock.now() + CODE_TTL
    kit.clock.set(renewed.expires_at - MICROSECOND)
    with pytest.raises(InvalidCode):
        kit.mfa.verify(alice, challenge.id, "111111")
    assert isinstance(kit.mfa.verify(alice, challenge.id, "222222"), Verification)


def test_resend_of_another_subjects_challenge_is_not_found(
    phone_kit: Kit, alice: Subject, bob: Subject
) -> None:
    kit = phone_kit
    challenge = kit.mfa.challenge(alice, "sms")
    kit.clock.advance(HOUR)
    before = kit.store.dump()
    with pytest.raises(ChallengeNotFound):
        kit.mfa.resend(bob, challenge.id)
    with pytest.raises(ChallengeNotFound):
        kit.mfa.resend(alice, "ch_does_not_exist")
    with pytest.raises(InvalidInput):
        kit.mfa.resend(alice, "../ch 1")
    assert len(kit.outbox) == 1
    assert kit.store.dump() == before
    # alice's challenge is untouched and still resends.
    assert kit.mfa.resend(alice, challenge.id).sends == 2


def test_resend_of_a_totp_challenge_is_refused(kit: Kit, alice: Subject) -> None:
    challenge = kit.mfa.challenge(alice, "totp")
    with pytest.raises(InvalidInput):
        kit.mfa.resend(alice, challenge.id)
    assert len(kit.outbox) == 0


def test_resend_after_the_number_was_removed_is_not_found(phone_kit: Kit, alice: Subject) -> None:
    kit = phone_kit
    challenge = kit.mfa.challenge(alice, "sms")
    assert challenge.credential_id is not None
    kit.mfa.remove(alice, challenge.credential_id)
    kit.clock.advance(COOLDOWN)
    with pytest.raises(ChallengeNotFound):
        kit.mfa.resend(alice, challenge.id)
    with pytest.raises(ChallengeNotFound):
        kit.mfa.verify(alice, challenge.id, kit.outbox.last_code())
    assert len(kit.outbox) == 1


# ------------------------------------------------------------------------------------------
# quotas
# ------------------------------------------------------------------------------------------
def test_destination_quota_is_not_escaped_by_reformatting_the_number(
    make_kit: MakeKit, outbox: Outbox, clock: FakeClock
) -> None:
    kit = make_kit(sms=sms_otp(outbox, quotas=quotas(destination=SendQuota(2, HOUR))))
    alice, bob, carol = subject("alice"), subject("bob"), subject("carol")
    first = clock.now()
    kit.mfa.enroll(alice, SMSOTP.setup("0412345678", "AU"))
    clock.advance(minutes=1)
    kit.mfa.enroll(bob, SMSOTP.setup("+61 412 345 678", "AU"))
    clock.advance(minutes=1)
    before = kit.store.dump()

    for who, typed in ((carol, "0412-345-678"), (alice, "+61412345678"), (bob, "0412 345 678")):
        with pytest.raises(QuotaExceeded) as caught:
            kit.mfa.enroll(who, SMSOTP.setup(typed, "AU"))
        assert caught.value.retry_at == first + HOUR

    assert [sms.to for sms in outbox.sms] == [ALICE_E164, ALICE_E164]
    assert kit.store.dump() == before  # no pending credential, no challenge left behind
    assert reasons(kit, EventType.SEND_REFUSED) == ["QuotaExceeded"] * 3
    assert [e.subject_id for e in kit.events.of_type(EventType.SEND_REFUSED)] == [
        carol.id,
        alice.id,
        bob.id,
    ]
    # Another number is not affected.
    kit.mfa.enroll(carol, SMSOTP.setup(OTHER_TYPED, "AU"))
    assert outbox.last_sms().to == OTHER_E164


def test_destination_quota_window_slides(
    make_kit: MakeKit, outbox: Outbox, clock: FakeClock
) -> None:
    kit = make_kit(sms=sms_otp(outbox, quotas=quotas(destination=SendQuota(2, HOUR))))
    alice, bob = subject("alice"), subject("bob")
    first = clock.now()
    kit.mfa.enroll(alice, SMSOTP.setup(ALICE_TYPED, "AU"))
    clock.advance(minutes=10)
    second = clock.now()
    kit.mfa.enroll(bob, SMSOTP.setup(ALICE_TYPED, "AU"))

    clock.set(first + HOUR - MICROSECOND)
    with pytest.raises(QuotaExceeded) as caught:
        kit.mfa.enroll(alice, SMSOTP.setup(ALICE_TYPED, "AU"))
    assert caught.value.retry_at == first + HOUR
    clock.set(first + HOUR)  # the first send has left the window
    kit.mfa.enroll(alice, SMSOTP.setup(ALICE_TYPED, "AU"))
    with pytest.raises(QuotaExceeded) as caught:
        kit.mfa.enroll(bob, SMSOTP.setup(ALICE_TYPED, "AU"))
    assert caught.value.retry_at == second + HOUR
    assert len(outbox.sms) == 3
    key = kit.sms.quota_key(kit.keyring, ALICE_E164)
    assert kit.store.get_quota(key).sent == (second, first + HOUR)


def test_destination_quota_applies_to_sign_in_and_resend(
    make_kit: MakeKit, outbox: Outbox, clock: FakeClock, alice: Subject
) -> None:
    kit = make_kit(sms=sms_otp(outbox, quotas=quotas(destination=SendQuota(3, HOUR))))
    enroll_phone(kit, alice)  # send 1
    challenge = kit.mfa.challenge(alice, "sms")  # send 2
    clock.advance(COOLDOWN)
    kit.mfa.resend(alice, challenge.id)  # send 3
    clock.advance(COOLDOWN)
    before = kit.store.dump()
    with pytest.raises(QuotaExceeded):
        kit.mfa.resend(alice, challenge.id)
    with pytest.raises(QuotaExceeded):
        kit.mfa.challenge(alice, "sms")
    assert kit.store.dump() == before  # the refused resend did not use up a send either
    assert len(outbox.sms) == 3


def test_email_destination_quota_ignores_letter_case(
    make_kit: MakeKit, outbox: Outbox, alice: Subject, bob: Subject
) -> None:
    kit = make_kit(email=email_otp(outbox, quotas=quotas(destination=SendQuota(1, HOUR))))
    kit.mfa.enroll(alice, EmailOTP.setup("Shared.Box@Example.org"))
    with pytest.raises(QuotaExceeded):
        kit.mfa.enroll(bob, EmailOTP.setup("shared.box@EXAMPLE.ORG"))
    assert len(outbox.emails) == 1


def test_subject_quota(make_kit: MakeKit, outbox: Outbox, clock: FakeClock) -> None:
    kit = make_kit(email=email_otp(outbox, quotas=quotas(subject=SendQuota(2, HOUR))))
    alice, bob = subject("alice"), subject("bob")
    first = clock.now()
    kit.mfa.challenge(alice, "email")
    clock.advance(minutes=5)
    kit.mfa.enroll(alice, EmailOTP.setup("alice.private@example.org"))  # another address
    clock.advance(minutes=5)
    with pytest.raises(QuotaExceeded) as caught:
        kit.mfa.challenge(alice, "email")
    assert caught.value.retry_at == first + HOUR
    kit.mfa.challenge(bob, "email")  # other subjects are not affected
    assert [m["To"] for m in outbox.emails] == [
        "alice@example.com",
        "alice.private@example.org",
        "bob@example.com",
    ]
    clock.set(first + HOUR)
    kit.mfa.challenge(alice, "email")
    assert len(outbox.emails) == 4


def test_tenant_quota(make_kit: MakeKit, outbox: Outbox, clock: FakeClock) -> None:
    kit = make_kit(email=email_otp(outbox, quotas=quotas(tenant=SendQuota(2, HOUR))))
    first = clock.now()
    kit.mfa.challenge(subject("alice"), "email")
    kit.mfa.challenge(subject("bob"), "email")
    with pytest.raises(QuotaExceeded) as caught:
        kit.mfa.challenge(subject("carol"), "email")
    assert caught.value.retry_at == first + HOUR
    kit.mfa.challenge(subject("dave", tenant="t2"), "email")
    kit.mfa.challenge(subject("erin", tenant=None), "email")  # no tenant, no tenant quota
    assert [str(m["To"]) for m in outbox.emails] == [
        "alice@example.com",
        "bob@example.com",
        "dave@example.com",
        "erin@example.com",
    ]
    assert len(kit.store.get_quota("email:tenant:t1").sent) == 2
    assert len(kit.store.get_quota("email:tenant:t2").sent) == 1


def test_a_refused_send_gives_back_the_slots_already_taken(
    make_kit: MakeKit, outbox: Outbox, clock: FakeClock
) -> None:
    limits = quotas(
        destination=SendQuota(5, HOUR), subject=SendQuota(1, HOUR), tenant=SendQuota(2, HOUR)
    )
    kit = make_kit(email=email_otp(outbox, quotas=limits))
    alice, bob, carol = subject("alice"), subject("bob"), subject("carol")
    now = clock.now()
    alice_dest = kit.email.quota_key(kit.keyring, "alice@example.com")
    carol_dest = kit.email.quota_key(kit.keyring, "carol@example.com")
    kit.mfa.challenge(alice, "email")

    # Refused by the subject quota after the destination slot was taken.
    with pytest.raises(QuotaExceeded):
        kit.mfa.challenge(alice, "email")
    assert kit.store.get_quota(alice_dest).sent == (now,)
    assert kit.store.get_quota("email:subject:u-alice").sent == (now,)
    assert kit.store.get_quota("email:tenant:t1").sent == (now,)

    kit.mfa.challenge(bob, "email")
    # Refused by the tenant quota after the destination and subject slots were taken.
    with pytest.raises(QuotaExceeded):
        kit.mfa.challenge(carol, "email")
    assert kit.store.get_quota(carol_dest).sent == ()
    assert kit.store.get_quota("email:subject:u-carol").sent == ()
    assert kit.store.get_quota("email:tenant:t1").sent == (now, now)
    assert len(outbox.emails) == 2
    assert reasons(kit, EventType.SEND_REFUSED) == ["QuotaExceeded", "QuotaExceeded"]
    assert [e.factor for e in kit.events.of_type(EventType.SEND_REFUSED)] == ["email", "email"]
    # The slots given back are usable: carol may send once the tenant has room again.
    clock.advance(HOUR)
    kit.mfa.challenge(carol, "email")
    assert kit.store.get_quota(carol_dest).sent == (now + HOUR,)


def test_quotas_are_keyed_without_the_destination_in_clear(kit: Kit, alice: Subject) -> None:
    enroll_phone(kit, alice)
    kit.mfa.challenge(alice, "email")
    keys = sorted(quota_keys(kit.store))
    assert [key.rsplit(":", 1)[0] for key in keys] == [
        "email:dest",
        "email:subject",
        "email:tenant",
        "sms:dest",
        "sms:subject",
        "sms:tenant",
    ]
    for key in keys:
        assert re.fullmatch(r"(sms|email):(dest:[0-9a-f]{64,}|subject:u-alice|tenant:t1)", key)


# ------------------------------------------------------------------------------------------
# single use, attempts, lockout
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("factor", ["sms", "email"])
def test_a_code_is_single_use(phone_kit: Kit, alice: Subject, factor: str) -> None:
    kit = phone_kit
    challenge = kit.mfa.challenge(alice, factor)
    code = kit.outbox.last_code()
    proof = kit.mfa.verify(alice, challenge.id, code)
    assert (proof.subject_id, proof.tenant, proof.factor) == ("u-alice", "t1", factor)
    assert proof.verified_at == kit.clock.now()
    assert kit.store.get_challenge(challenge.id) is None
    with pytest.raises(ChallengeNotFound):
        kit.mfa.verify(alice, challenge.id, code)
    [verified] = kit.events.of_type(EventType.VERIFIED)
    assert verified.challenge_id == challenge.id


def test_a_code_only_answers_its_own_subjects_challenge(
    kit: Kit, alice: Subject, bob: Subject
) -> None:
    challenge = kit.mfa.challenge(alice, "email")
    code = kit.outbox.last_code("alice@example.com")
    with pytest.raises(ChallengeNotFound):
        kit.mfa.verify(bob, challenge.id, code)
    assert kit.mfa.lock_state(bob).failures == 0
    assert isinstance(kit.mfa.verify(alice, challenge.id, code), Verification)


def test_the_attempt_limit_kills_the_challenge(
    make_kit: MakeKit, outbox: Outbox, alice: Subject
) -> None:
    kit = make_kit(sms=sms_otp(outbox, max_attempts=3))
    enroll_phone(kit, alice)
    challenge = kit.mfa.challenge(alice, "sms")
    assert challenge.max_attempts == 3
    code = kit.outbox.last_code()
    for attempt in (1, 2, 3):
        with pytest.raises(InvalidCode):
            kit.mfa.verify(alice, challenge.id, other(code))
        stored = kit.store.get_challenge(challenge.id)
        assert stored is not None
        assert stored.attempts == attempt
    with pytest.raises(ChallengeNotFound):
        kit.mfa.verify(alice, challenge.id, code)  # the right code comes too late
    assert kit.store.get_challenge(challenge.id) is None
    with pytest.raises(ChallengeNotFound):
        kit.mfa.verify(alice, challenge.id, code)
    assert kit.mfa.lock_state(alice).failures == 4
    assert reasons(kit, EventType.FAILED) == ["InvalidCode"] * 3 + ["ChallengeNotFound"]


def test_failures_feed_the_lockout_shared_with_other_factors(
    make_kit: MakeKit, alice: Subject
) -> None:
    kit = make_kit(lockout=Lockout(max_failures=5, mode="suspend"))
    enroll_phone(kit, alice)
    sms = kit.mfa.challenge(alice, "sms")
    sms_code = kit.outbox.last_code(ALICE_E164)
    for _ in range(3):
        with pytest.raises(InvalidCode):
            kit.mfa.verify(alice, sms.id, other(sms_code))
    email = kit.mfa.challenge(alice, "email")  # a new challenge resets nothing
    email_code = kit.outbox.last_code("alice@example.com")
    assert kit.mfa.lock_state(alice).failures == 3
    with pytest.raises(InvalidCode):
        kit.mfa.verify(alice, email.id, other(email_code))
    with pytest.raises(InvalidCode):  # the fifth failure suspends
        kit.mfa.verify(alice, email.id, other(email_code))

    state = kit.mfa.lock_state(alice)
    assert (state.failures, state.suspended) == (5, True)
    [locked] = kit.events.of_type(EventType.LOCKED)
    assert (locked.reason, locked.factor) == ("suspended", "email")

    answers: list[LockedOut] = []
    for challenge, code in ((sms, sms_code), (email, email_code), (sms, other(sms_code))):
        with pytest.raises(LockedOut) as caught:
            kit.mfa.verify(alice, challenge.id, code)
        answers.append(caught.value)
    assert {(e.suspended, e.retry_at, e.public_message) for e in answers} == {
        (True, None, LockedOut.public_message)
    }
    assert kit.mfa.lock_state(alice) == state  # nothing charged, nothing reset
    # TOTP shares the budget too: even its enrolment is refused while suspended.
    totp = kit.mfa.enroll(alice, TOTP.setup())
    with pytest.raises(LockedOut):
        kit.mfa.confirm(alice, totp.id, "000000")

    kit.mfa.unlock(alice, actor="admin1")
    assert isinstance(kit.mfa.verify(alice, sms.id, sms_code), Verification)


def test_delivered_code_failures_lock_with_backoff(make_kit: MakeKit, alice: Subject) -> None:
    kit = make_kit(lockout=Lockout(max_failures=2, backoff_initial=dt.timedelta(seconds=30)))
    challenge = kit.mfa.challenge(alice, "email")
    code = kit.outbox.last_code()
    for _ in range(2):
        with pytest.raises(InvalidCode):
            kit.mfa.verify(alice, challenge.id, other(code))
    with pytest.raises(LockedOut) as caught:
        kit.mfa.verify(alice, challenge.id, code)
    assert caught.value.retry_at == kit.clock.now() + dt.timedelta(seconds=30)
    kit.clock.advance(30)
    assert isinstance(kit.mfa.verify(alice, challenge.id, code), Verification)


# ------------------------------------------------------------------------------------------
# malformed codes
# ------------------------------------------------------------------------------------------
ARABIC_INDIC: Final = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda code: code.translate(ARABIC_INDIC), id="arabic-indic-digits"),
        pytest.param(lambda code: code[:5] + "a", id="letter"),
        pytest.param(lambda code: "abcdef", id="letters"),
        pytest.param(lambda code: code + "0", id="seven-digits"),
        pytest.param(lambda code: code[:5], id="five-digits"),
        pytest.param(lambda code: "", id="empty"),
        pytest.param(lambda code: code + "\n" + code, id="two-lines"),
        pytest.param(lambda code: "9" * 100_000, id="huge"),
    ],
)
@pytest.mark.parametrize("factor", ["sms", "email"])
def test_malformed_codes_are_refused_and_charge_nothing(
    phone_kit: Kit, alice: Subject, factor: str, mangle: Callable[[str], str]
) -> None:
    kit = phone_kit
    challenge = kit.mfa.challenge(alice, factor)
    code = kit.outbox.last_code()
    before = kit.store.dump()
    with pytest.raises(MalformedCode):
        kit.mfa.verify(alice, challenge.id, mangle(code))
    assert kit.store.dump() == before
    assert kit.events.of_type(EventType.FAILED) == []
    # Spaces and hyphens people type are fine.
    grouped = f" {code[:3]} -{code[3:]} "
    assert isinstance(kit.mfa.verify(alice, challenge.id, grouped), Verification)


def test_malformed_enrolment_code_charges_nothing(kit: Kit, alice: Subject) -> None:
    enrollment = kit.mfa.enroll(alice, SMSOTP.setup(ALICE_TYPED, "AU"))
    code = kit.outbox.last_code()
    before = kit.store.dump()
    for bad in (code.translate(ARABIC_INDIC), code + "1", "12345a"):
        with pytest.raises(MalformedCode):
            kit.mfa.confirm(alice, enrollment.id, bad)
    with pytest.raises(InvalidInput):
        kit.mfa.confirm(alice, enrollment.id, int(code))  # type: ignore[arg-type]
    assert kit.store.dump() == before
    assert kit.mfa.confirm(alice, enrollment.id, code).active


# ------------------------------------------------------------------------------------------
# hash-only storage, nothing in clear
# ------------------------------------------------------------------------------------------
CODE_RE: Final = re.compile(r"\b[0-9]{6}\b")


def sent_codes(outbox: Outbox) -> set[str]:
    codes = {m for sms in outbox.sms for m in CODE_RE.findall(sms.text)}
    codes |= {m for message in outbox.emails for m in CODE_RE.findall(plain_body(message))}
    return codes


def record_fields(dump: Mapping[str, list[object]]) -> Iterator[tuple[str, object]]:
    for table, records in dump.items():
        for record in records:
            assert dataclasses.is_dataclass(record)
            assert not isinstance(record, type)
            for field in dataclasses.fields(record):
                yield f"{table}.{field.name}", getattr(record, field.name)


def assert_absent(where: str, haystack: str | bytes, needles: Iterable[str]) -> None:
    for needle in needles:
        if isinstance(haystack, bytes):
            assert needle.encode() not in haystack, f"{needle!r} in clear in {where}"
        else:
            assert needle not in haystack, f"{needle!r} in clear in {where}"


def test_store_and_events_hold_no_code_number_or_address(
    kit: Kit, alice: Subject, bob: Subject
) -> None:
    enroll_phone(kit, alice)
    kit.mfa.challenge(alice, "sms")  # left open
    verified = kit.mfa.challenge(alice, "sms")
    kit.mfa.verify(alice, verified.id, kit.outbox.last_code())
    kit.mfa.challenge(alice, "email")  # profile address
    bob_enrollment = kit.mfa.enroll(bob, EmailOTP.setup("bob.private@example.org"))
    kit.mfa.confirm(bob, bob_enrollment.id, kit.outbox.last_code())
    bob_challenge = kit.mfa.challenge(bob, "email")
    kit.clock.advance(COOLDOWN)
    kit.mfa.resend(bob, bob_challenge.id)
    pending = kit.mfa.enroll(bob, SMSOTP.setup(OTHER_TYPED, "AU"))  # left pending

    codes = sent_codes(kit.outbox)
    assert len(codes) >= 6
    needles = {
        ALICE_E164,
        ALICE_E164[1:],
        ALICE_NATIONAL,
        "0" + ALICE_NATIONAL,
        ALICE_TYPED,
        OTHER_E164[1:],
        "423456789",
        "bob.private@example.org",
        "bob.private",
        "alice@example.com",
        "bob@example.com",
    }
    dump = kit.store.dump()
    assert len(dump["credentials"]) == 3
    assert len(dump["challenges"]) == 4
    dest_keys = [key for key in quota_keys(kit.store) if ":dest:" in key]
    assert len(dest_keys) == 4
    for key in dest_keys:
        assert re.fullmatch(r"(sms|email):dest:[0-9a-f]{64,}", key)

    haystacks: list[tuple[str, str | bytes]] = [("dump", repr(dump))]
    for where, value in record_fields(dump):
        haystacks.append((where, value if isinstance(value, bytes | str) else repr(value)))
    haystacks += [(f"event {event.type.value}", repr(event)) for event in kit.events.events]
    haystacks.append(("enrolment", repr(pending)))
    for where, haystack in haystacks:
        assert_absent(where, haystack, needles)
        # A destination key is a hex MAC: by chance it may hold six digits in a row.
        if isinstance(haystack, str):
            for key in dest_keys:
                haystack = haystack.replace(key, "<destination key>")
        assert_absent(where, haystack, codes)

    # The hint is what may be shown.
    hints = {c.destination_hint for c in stored_challenges(kit.store)}
    assert hints == {ALICE_HINT, "a••••@example.com", "b••••••••@example.org", "+61 4•• ••• 789"}


def test_the_code_hash_is_bound_to_its_challenge(
    phone_kit: Kit, alice: Subject, bob: Subject, monkeypatch: pytest.MonkeyPatch
) -> None:
    kit = phone_kit
    script_codes(monkeypatch, kit.email, "424242", "424242", "111111", "222222")
    first = kit.mfa.challenge(alice, "email")
    second = kit.mfa.challenge(bob, "email")
    stored = [kit.store.get_challenge(c.id) for c in (first, second)]
    hashes = [c.code_hash for c in stored if c is not None]
    assert len(hashes) == 2
    assert hashes[0] != hashes[1]  # same code, different challenges
    assert all(b"424242" not in h for h in hashes)
    assert kit.mfa.verify(alice, first.id, "424242").challenge_id == first.id
    assert kit.mfa.verify(bob, second.id, "424242").challenge_id == second.id

    # A code is good only for the challenge it was sent for.
    third = kit.mfa.challenge(alice, "email")
    fourth = kit.mfa.challenge(alice, "email")
    with pytest.raises(InvalidCode):
        kit.mfa.verify(alice, third.id, "222222")
    with pytest.raises(InvalidCode):
        kit.mfa.verify(alice, fourth.id, "111111")
    assert isinstance(kit.mfa.verify(alice, fourth.id, "222222"), Verification)


def test_records_and_results_do_not_show_codes_in_repr(
    phone_kit: Kit, alice: Subject, monkeypatch: pytest.MonkeyPatch
) -> None:
    kit = phone_kit
    script_codes(monkeypatch, kit.sms, "735194")
    challenge = kit.mfa.challenge(alice, "sms")
    enrollment = kit.mfa.enroll(alice, EmailOTP.setup("alice.private@example.org"))
    for shown in (repr(challenge), str(challenge), repr(enrollment), repr(kit.sms), repr(kit.mfa)):
        assert "735194" not in shown
        assert ALICE_NATIONAL not in shown
        assert "alice.private" not in shown


# ------------------------------------------------------------------------------------------
# sender failure
# ------------------------------------------------------------------------------------------
def test_delivery_failure_on_challenge_withdraws_it(phone_kit: Kit, alice: Subject) -> None:
    kit = phone_kit
    kit.outbox.fail_next()
    with pytest.raises(DeliveryError) as caught:
        kit.mfa.challenge(alice, "sms")
    assert "simulated delivery failure" not in str(caught.value)
    assert kit.store.dump()["challenges"] == []
    assert len(kit.outbox) == 0
    [failed] = kit.events.of_type(EventType.DELIVERY_FAILED)
    assert (failed.factor, failed.reason) == ("sms", "RuntimeError")
    assert kit.events.of_type(EventType.CODE_SENT) == []

    # The subject can try again at once; the failed attempt did use a quota slot.
    challenge = kit.mfa.challenge(alice, "sms")
    assert isinstance(kit.mfa.verify(alice, challenge.id, kit.outbox.last_code()), Verification)
    key = kit.sms.quota_key(kit.keyring, ALICE_E164)
    assert len(kit.store.get_quota(key).sent) == 2
    assert len(kit.store.get_quota("sms:subject:u-alice").sent) == 2


def test_delivery_failure_on_resend_withdraws_the_challenge(phone_kit: Kit, alice: Subject) -> None:
    kit = phone_kit
    challenge = kit.mfa.challenge(alice, "sms")
    code = kit.outbox.last_code()
    kit.clock.advance(COOLDOWN)
    kit.outbox.fail_next(ConnectionError("gateway down"))
    with pytest.raises(DeliveryError):
        kit.mfa.resend(alice, challenge.id)
    # Withdrawn as a whole: the code sent before dies with it; a new sign-in is needed.
    assert kit.store.get_challenge(challenge.id) is None
    with pytest.raises(ChallengeNotFound):
        kit.mfa.verify(alice, challenge.id, code)
    [failed] = kit.events.of_type(EventType.DELIVERY_FAILED)
    assert (failed.challenge_id, failed.reason) == (challenge.id, "ConnectionError")
    retry = kit.mfa.challenge(alice, "sms")
    assert isinstance(kit.mfa.verify(alice, retry.id, kit.outbox.last_code()), Verification)


@pytest.mark.parametrize(
    "setup",
    [
        pytest.param(lambda: SMSOTP.setup(ALICE_TYPED, "AU"), id="sms"),
        pytest.param(lambda: EmailOTP.setup("alice.private@example.org"), id="email"),
    ],
)
def test_delivery_failure_on_enrolment_keeps_nothing_pending(
    kit: Kit, alice: Subject, setup: Callable[[], Any]
) -> None:
    kit.outbox.fail_next()
    with pytest.raises(DeliveryError):
        kit.mfa.enroll(alice, setup())
    dump = kit.store.dump()
    assert dump["credentials"] == []
    assert dump["challenges"] == []
    assert kit.events.of_type(EventType.ENROLLMENT_STARTED) == []
    assert len(kit.events.of_type(EventType.DELIVERY_FAILED)) == 1
    enrollment = kit.mfa.enroll(alice, setup())
    assert kit.mfa.confirm(alice, enrollment.id, kit.outbox.last_code()).active


def test_delivery_failure_on_an_enrolment_resend_ends_that_enrolment(
    kit: Kit, alice: Subject
) -> None:
    enrollment = kit.mfa.enroll(alice, SMSOTP.setup(ALICE_TYPED, "AU"))
    first_code = kit.outbox.last_code()
    kit.clock.advance(COOLDOWN)
    kit.outbox.fail_next()
    with pytest.raises(DeliveryError):
        kit.mfa.resend(alice, enrollment.challenge.id)
    assert kit.store.dump()["challenges"] == []
    # Its code died with the challenge; the pending credential is inert until it lapses.
    with pytest.raises(ChallengeNotFound):
        kit.mfa.confirm(alice, enrollment.id, first_code)
    assert kit.mfa.credentials(alice) == []
    again = kit.mfa.enroll(alice, SMSOTP.setup(ALICE_TYPED, "AU"))
    assert kit.mfa.confirm(alice, again.id, kit.outbox.last_code()).active


class QuotingSender:
    """A sender whose errors quote the message, as some providers' errors do."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def send_sms(self, to: str, text: str) -> None:
        self.texts.append(text)
        raise RuntimeError(f"gateway refused message to {to}: {text!r}")

    def send_email(self, message: EmailMessage) -> None:
        self.texts.append(plain_body(message))
        raise RuntimeError(f"relay refused {message['To']}: {plain_body(message)!r}")


@pytest.mark.parametrize("factor", ["sms", "email"])
def test_a_delivery_error_does_not_carry_the_code_or_destination(
    make_kit: MakeKit, alice: Subject, caplog: pytest.LogCaptureFixture, factor: str
) -> None:
    quoting = QuotingSender()
    kit = make_kit(sms=sms_otp(quoting), email=email_otp(quoting))
    caplog.set_level(logging.DEBUG)
    send: Callable[[], object] = (
        (lambda: kit.mfa.enroll(alice, SMSOTP.setup(ALICE_TYPED, "AU")))
        if factor == "sms"
        else (lambda: kit.mfa.challenge(alice, "email"))
    )
    with pytest.raises(DeliveryError) as caught:
        send()
    [text] = quoting.texts
    [code] = CODE_RE.findall(text)
    error = caught.value
    shown = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    for where in (str(error), repr(error), shown, caplog.text, repr(kit.events.events)):
        assert code not in where
        assert ALICE_NATIONAL not in where
        assert "alice@example.com" not in where
    assert error.__cause__ is None
    assert error.public_message == DeliveryError.public_message


# ------------------------------------------------------------------------------------------
# e-mail
# ------------------------------------------------------------------------------------------
def test_email_goes_to_the_profile_address_by_default(kit: Kit, alice: Subject) -> None:
    challenge = kit.mfa.challenge(alice, "email")

    message = kit.outbox.last_email()
    assert str(message["To"]) == "alice@example.com"
    assert str(message["From"]) == FROM_ADDRESS
    assert challenge.credential_id is None
    assert challenge.destination_hint == "a••••@example.com"
    assert kit.store.dump()["credentials"] == []
    proof = kit.mfa.verify(alice, challenge.id, kit.outbox.last_code("alice@example.com"))
    assert (proof.factor, proof.credential_id) == ("email", None)


def test_email_names_the_username_and_greets_the_first_name(kit: Kit) -> None:
    jo = Subject(
        id="u-17",
        username="jbloggs",
        email="shared.inbox@example.com",
        display_name="Jo  Bloggs",
    )
    kit.mfa.challenge(jo, "email")
    message = kit.outbox.last_email("shared.inbox@example.com")
    code = kit.outbox.last_code()

    assert str(message["Subject"]) == "ACME sign-in code for jbloggs"
    assert code not in str(message["Subject"])
    assert message.get_content_type() == "multipart/alternative"
    text = plain_body(message)
    assert text.startswith("Hello Jo,\n\n")
    assert f"Your ACME one-time code is: {code}\n" in text
    assert "It expires in 5 minutes and can be used once." in text
    assert "sign in as jbloggs" in text
    html = html_body(message)
    assert html is not None
    assert html.startswith("<p>Hello Jo,</p>")
    assert f"<strong>{code}</strong>" in html


@pytest.mark.parametrize(
    ("fields", "greeting"),
    [
        ({"display_name": None}, "Hello jbloggs,"),
        ({"display_name": None, "username": None}, "Hello u-17,"),
    ],
)
def test_email_greeting_falls_back_to_the_username(
    kit: Kit, fields: dict[str, Any], greeting: str
) -> None:
    who = Subject(id="u-17", email="jo@example.com", **{"username": "jbloggs", **fields})
    kit.mfa.challenge(who, "email")
    assert plain_body(kit.outbox.last_email()).startswith(greeting)


def test_email_html_escapes_the_display_name(kit: Kit) -> None:
    eve = Subject(id="u-eve", username="eve&co", email="eve@example.com", display_name="<b>Eve</b>")
    kit.mfa.challenge(eve, "email")
    message = kit.outbox.last_email()
    html = html_body(message)
    assert html is not None
    assert "<b>Eve</b>" not in html
    assert "&lt;b&gt;Eve&lt;/b&gt;" in html
    assert "eve&amp;co" in html
    assert plain_body(message).startswith("Hello <b>Eve</b>,")  # plain text needs no escaping


def test_email_template_override(make_kit: MakeKit, outbox: Outbox, alice: Subject) -> None:
    template = EmailTemplate(
        subject="[{issuer}] code for {username}",
        text="Hi {first_name}, {code} ({minutes} min)",
        html=None,
    )
    kit = make_kit(email=email_otp(outbox, template=template, code_ttl=dt.timedelta(minutes=3)))
    kit.mfa.challenge(alice, "email")
    message = outbox.last_email()
    code = outbox.last_code()
    assert str(message["Subject"]) == "[ACME] code for alice"
    assert message.get_content_type() == "text/plain"
    assert message.get_content().rstrip("\n") == f"Hi Alice, {code} (3 min)"
    assert str(message["From"]) == FROM_ADDRESS
    assert str(message["To"]) == "alice@example.com"


def test_email_callable_template(make_kit: MakeKit, outbox: Outbox, alice: Subject) -> None:
    contexts: list[Mapping[str, object]] = []

    def build(context: Mapping[str, object]) -> EmailMessage:
        contexts.append(context)
        message = EmailMessage()
        message["Subject"] = f"Sign-in for {context['username']}"
        message["From"] = "ACME Security <security@acme.example>"
        message.set_content(f"Dear {context['first_name']}: {context['code']}")
        return message

    kit = make_kit(email=email_otp(outbox, template=build))
    challenge = kit.mfa.challenge(alice, "email")
    message = outbox.last_email()
    code = outbox.last_code()
    [context] = contexts
    assert dict(context) == {
        "code": code,
        "minutes": 5,
        "issuer": "ACME",
        "username": "alice",
        "first_name": "Alice",
    }
    assert str(message["Subject"]) == "Sign-in for alice"
    assert str(message["From"]) == "ACME Security <security@acme.example>"  # kept
    assert str(message["To"]) == "alice@example.com"  # added
    assert isinstance(kit.mfa.verify(alice, challenge.id, code), Verification)


@pytest.mark.parametrize(
    "fields",
    [
        {"text": "no code here"},
        {"subject": "Your code is {code}"},
        {"text": "{code} {unknown}"},
        {"html": "<p>{code}</p>{0}"},
        {"subject": "{issuer"},
        {"html": b"<p>{code}</p>"},
    ],
)
def test_invalid_email_templates_are_refused(fields: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        EmailTemplate(**fields)


def test_email_configuration_is_checked() -> None:
    for bad in ("not an address", "noreply@acme.example\r\nBcc: x@evil.example"):
        with pytest.raises(ConfigurationError):
            EmailOTP(sender=Outbox(), from_address=bad, issuer="ACME")
    with pytest.raises(ConfigurationError):
        EmailOTP(sender=Outbox(), from_address=FROM_ADDRESS, issuer="ACME\r\nBcc: x@evil.example")
    with pytest.raises(ConfigurationError):
        EmailOTP(sender=object(), from_address=FROM_ADDRESS, issuer="ACME")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        EmailOTP(sender=Outbox(), from_address=FROM_ADDRESS, issuer="ACME", template="x")  # type: ignore[arg-type]


def test_an_enrolled_address_replaces_the_profile_address(kit: Kit, alice: Subject) -> None:
    enrollment = kit.mfa.enroll(alice, EmailOTP.setup("Alice.Private@Example.ORG"))
    assert [str(m["To"]) for m in kit.outbox.emails] == ["Alice.Private@example.org"]
    assert enrollment.destination_hint == "A••••••••@example.org"
    # Until it is confirmed, sign-in codes still go to the profile address.
    kit.mfa.challenge(alice, "email")
    assert str(kit.outbox.last_email()["To"]) == "alice@example.com"
    credential = kit.mfa.confirm(
        alice, enrollment.id, kit.outbox.last_code("alice.private@example.org")
    )
    kit.outbox.clear()
    kit.clock.advance(COOLDOWN)

    challenge = kit.mfa.challenge(alice, "email")

    assert [str(m["To"]) for m in kit.outbox.emails] == ["Alice.Private@example.org"]
    with pytest.raises(LookupError):
        kit.outbox.last_email("alice@example.com")
    assert challenge.credential_id == credential.id
    proof = kit.mfa.verify(alice, challenge.id, kit.outbox.last_code())
    assert proof.credential_id == credential.id


def test_without_profile_address_an_unenrolled_subject_gets_nothing(
    make_kit: MakeKit, outbox: Outbox, alice: Subject
) -> None:
    kit = make_kit(email=email_otp(outbox, use_profile_address=False))
    silent = kit.mfa.challenge(alice, "email")  # stored, never sent (SECURITY.md 36)
    assert len(outbox) == 0
    assert [c.id for c in kit.store.dump()["challenges"]] == [silent.id]  # type: ignore[attr-defined]
    assert kit.store.dump()["credentials"] == []
    assert kit.store.dump()["quotas"] == []
    with pytest.raises(NotEnrolled):
        kit.mfa.verify(alice, silent.id, "123456")
    enrollment = kit.mfa.enroll(alice, EmailOTP.setup("alice.private@example.org"))
    kit.mfa.confirm(alice, enrollment.id, outbox.last_code())
    kit.mfa.challenge(alice, "email")
    assert str(outbox.last_email()["To"]) == "alice.private@example.org"


def test_a_subject_without_an_address_is_not_enrolled(kit: Kit) -> None:
    nomail = Subject(id="u-nomail", username="nomail")
    silent = kit.mfa.challenge(nomail, "email")
    assert len(kit.outbox) == 0
    kit.clock.advance(kit.mfa.factor("email").resend_cooldown)  # type: ignore[attr-defined]
    renewed = kit.mfa.resend(nomail, silent.id)  # resends behave alike, sending nothing
    assert renewed.sends == 2
    assert len(kit.outbox) == 0
    with pytest.raises(NotEnrolled) as refused:
        kit.mfa.verify(nomail, silent.id, "123456")
    assert refused.value.public_message == InvalidCode("x").public_message


@pytest.mark.parametrize(
    "address",
    [
        pytest.param("alice@example.com\r\nBcc: eve@evil.example", id="crlf"),
        pytest.param("alice@example.com\nBcc: eve@evil.example", id="lf"),
        pytest.param("alice@example.com\u2028x", id="line-separator"),
        pytest.param("alice.example.com", id="no-at"),
        pytest.param("alice@", id="no-domain"),
        pytest.param("@example.com", id="no-local-part"),
        pytest.param("a@b@example.com", id="two-ats"),
        pytest.param("a" * 290 + "@example.com", id="300-chars"),
        pytest.param("a" * 65 + "@example.com", id="local-part-over-64"),
        pytest.param('"alice smith"@example.com', id="quoted-local-part"),
        pytest.param("Alice <alice@example.com>", id="display-name"),
        pytest.param("alice..smith@example.com", id="double-dot"),
        pytest.param("alice@\ufffd\ufffd.example", id="unicode-garbage-domain"),
        pytest.param("alice@exa mple.com", id="space-in-domain"),
        pytest.param("alice@[127.0.0.1]", id="ip-literal"),
        pytest.param("alice@localhost", id="single-label"),
        pytest.param("", id="empty"),
    ],
)
def test_invalid_addresses_are_refused_at_setup(kit: Kit, alice: Subject, address: str) -> None:
    with pytest.raises(InvalidEmailAddress):
        EmailOTP.setup(address)
    assert len(kit.outbox) == 0


def test_setup_checks_types() -> None:
    with pytest.raises(InvalidInput):
        EmailOTP.setup(b"alice@example.com")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        EmailOTP.setup("alice@example.com", label="\r\n")
    with pytest.raises(InvalidInput):
        SMSOTP.setup(412345678, "AU")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "field", ["email", "username", "display_name", "id", "tenant"], ids=lambda f: f
)
@pytest.mark.parametrize("breaker", ["\r\n", "\n", "\r", "\u2028", "\x00"], ids=repr)
def test_a_subject_with_a_line_break_cannot_be_built(field: str, breaker: str) -> None:
    fields: dict[str, Any] = {"id": "u-1", field: f"alice@example.com{breaker}Bcc: x@evil.example"}
    with pytest.raises(InvalidInput):
        Subject(**fields)


def test_a_username_with_a_unicode_line_break_changes_nothing(kit: Kit) -> None:
    try:
        nel = Subject(id="u-nel", username="alice\x85Bcc: eve@evil.example", email="a@example.com")
    except InvalidInput:
        return  # refused at the door: as good as it gets
    before = kit.store.dump()
    with pytest.raises(MFAError):
        kit.mfa.challenge(nel, "email")
    assert kit.store.dump() == before
    assert len(kit.outbox) == 0


# ------------------------------------------------------------------------------------------
# SMS text
# ------------------------------------------------------------------------------------------
def test_default_sms_text_names_issuer_code_and_lifetime(phone_kit: Kit, alice: Subject) -> None:
    kit = phone_kit
    kit.mfa.challenge(alice, "sms")
    code = kit.outbox.last_code()
    assert kit.outbox.last_sms().text == (
        f"{code} is your ACME verification code. It expires in 5 minutes."
    )


def test_origin_bound_line_for_webotp(make_kit: MakeKit, outbox: Outbox, alice: Subject) -> None:
    kit = make_kit(
        sms=sms_otp(outbox, origin_domain="example.com", code_ttl=dt.timedelta(minutes=2))
    )
    kit.mfa.enroll(alice, SMSOTP.setup(ALICE_TYPED, "AU"))
    code = outbox.last_code()
    assert outbox.last_sms().text == (
        f"{code} is your ACME verification code. It expires in 2 minutes.\n\n@example.com #{code}"
    )


def test_custom_sms_template(make_kit: MakeKit, outbox: Outbox, alice: Subject) -> None:
    kit = make_kit(
        sms=sms_otp(outbox, template="{issuer}: use {code} within {minutes} min", digits=8)
    )
    enrollment = kit.mfa.enroll(alice, SMSOTP.setup(ALICE_TYPED, "AU"))
    code = outbox.last_code(digits=8)
    assert outbox.last_sms().text == f"ACME: use {code} within 5 min"
    assert kit.mfa.confirm(alice, enrollment.id, code).active


@pytest.mark.parametrize(
    "template",
    ["{unknown} {code}", "your code", "{code} {0}", "{code", "{code!x}", "", None],
)
def test_invalid_sms_templates_are_refused(template: Any) -> None:
    with pytest.raises(ConfigurationError):
        sms_otp(Outbox(), template=template)


@pytest.mark.parametrize("template", ["{code} {minutes[0]}", "{code} {code.nope}"])
def test_sms_template_with_a_bad_lookup_is_a_configuration_error(template: str) -> None:
    with pytest.raises(ConfigurationError):
        sms_otp(Outbox(), template=template)


@pytest.mark.parametrize(
    "options",
    [
        {"origin_domain": "Example.com"},
        {"origin_domain": "example.com/login"},
        {"origin_domain": ""},
        {"regions": "AU"},
        {"regions": set()},
        {"regions": {"AUS"}},
        {"issuer": ""},
        {"sender": object()},
    ],
)
def test_sms_configuration_is_checked(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        SMSOTP(**{"sender": Outbox(), "issuer": "ACME", **options})


def test_challenge_objects_carry_no_secret(phone_kit: Kit, alice: Subject) -> None:
    challenge: Challenge = phone_kit.mfa.challenge(alice, "sms")
    assert challenge.code_hash  # the stored keyed hash travels, the code does not
    assert "code_hash" not in repr(challenge)


@pytest.mark.parametrize("text", ["{code} {minutes[0]}", "{code} {code.nope}"])
def test_email_template_with_a_bad_lookup_is_a_configuration_error(text: str) -> None:
    with pytest.raises(ConfigurationError):
        EmailTemplate(text=text)
