"""The recovery PIN: its rules, hashing at rest, lockout and timing (SECURITY.md 17, 21-23, 36-38).

Every test runs on the conftest parts (FakeClock, MemoryStore, ListSink, ephemeral keyring)
with ``SecretHasher.owasp_minimum()``: the cheapest argon2id parameters the library accepts
(m=19456 KiB, t=2, p=1), about 30 ms per hash. Timing is shown by counting argon2
computations (``SecretHasher.calls``), never by wall time.
"""

from __future__ import annotations

import dataclasses
import re
from typing import TYPE_CHECKING, Final

import pytest

from mfakit import (
    MFA,
    ChallengeNotFound,
    ConfigurationError,
    Credential,
    EventType,
    FactorKind,
    InvalidCode,
    InvalidInput,
    InvalidType,
    Keyring,
    LockedOut,
    Lockout,
    MalformedCode,
    NotEnrolled,
    Subject,
    Verification,
    VerificationFailed,
    WeakSecret,
)
from mfakit.factors import SMSOTP, TOTP, Factor, RecoveryCodes, RecoveryPIN
from mfakit.factors.recovery_pin import COMMON_PINS, normalize_pin
from mfakit.hazmat.hashing import SecretHasher
from mfakit.testing import FakeClock, ListSink, MemoryStore, totp_now
from mfakit.testing.outbox import Outbox

if TYPE_CHECKING:
    from conftest import EnrollTOTP, MakeMFA

PIN: Final = "480213"
OTHER_PIN: Final = "902461"
#: A lockout that stays out of the way (suspends at 100 consecutive failures).
NO_LOCK: Final = Lockout(max_failures=100, mode="suspend")
#: The SMS number used in the phone-digit rules (stored as E.164 +61412953817).
SMS_TYPED: Final = "0412 953 817"
#: A phone number given by the host as a subject attribute.
ATTRIBUTE_PHONE: Final = "+61 400 583 927"
PHC: Final = re.compile(
    r"^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$"
)


# ------------------------------------------------------------------------------------------
# helpers and fixtures
# ------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Kit:
    """An ``MFA`` with TOTP, SMS and the recovery PIN, and what it is built from."""

    mfa: MFA
    hasher: SecretHasher
    pin: RecoveryPIN
    store: MemoryStore
    events: ListSink
    clock: FakeClock
    outbox: Outbox


def build_kit(
    make_mfa: MakeMFA,
    store: MemoryStore,
    events: ListSink,
    clock: FakeClock,
    *,
    lockout: Lockout = NO_LOCK,
    min_length: int = 6,
    max_attempts: int = 3,
) -> Kit:
    hasher = SecretHasher.owasp_minimum()
    pin = RecoveryPIN(hasher=hasher, min_length=min_length, max_attempts=max_attempts)
    outbox = Outbox()
    mfa = make_mfa(
        factors=[TOTP(issuer="ACME"), pin, SMSOTP(sender=outbox, issuer="ACME")],
        lockout=lockout,
    )
    return Kit(mfa, hasher, pin, store, events, clock, outbox)


@pytest.fixture
def kit(make_mfa: MakeMFA, store: MemoryStore, events: ListSink, clock: FakeClock) -> Kit:
    """TOTP, SMS and a recovery PIN factor sharing one owasp_minimum hasher; no lockout."""
    return build_kit(make_mfa, store, events, clock)


def pin_credentials(mfa: MFA, subject: Subject) -> list[Credential]:
    return [c for c in mfa.credentials(subject) if c.factor == "recovery_pin"]


def verify_pin(mfa: MFA, subject: Subject, pin: str) -> Verification:
    """Open a fresh PIN challenge and answer it."""
    challenge = mfa.challenge(subject, "recovery_pin")
    return mfa.verify(subject, challenge.id, pin)


def failures(mfa: MFA, subject: Subject) -> int:
    return mfa.lock_state(subject).failures


def at_rest_text(store: MemoryStore, events: ListSink) -> str:
    """Everything kept: records (repr), raw secrets and parameters, and the audit events."""
    dump = store.dump()
    parts = [repr(dump), repr(events.events)]
    for record in dump["credentials"]:
        assert isinstance(record, Credential)
        parts.append(record.secret.decode("latin-1"))
        parts.append(repr(dict(record.params)))
    return "\n".join(parts)


def phc_params(encoded: bytes) -> tuple[int, int, int]:
    """(m, t, p) of a stored argon2id PHC string, which must be well formed."""
    match = PHC.match(encoded.decode("ascii"))
    assert match is not None, "stored secret is not an argon2id PHC string"
    m, t, p = (int(g) for g in match.groups())
    return m, t, p


# ------------------------------------------------------------------------------------------
# the rules table (SECURITY.md 23): enrolment through the facade
# ------------------------------------------------------------------------------------------
ACCEPTED: Final = "accepted"

# (raw input, min_length, expected normalised PIN or error class, fragment of the message)
RULES: Final = [
    # accepted, normalised
    pytest.param("480213", 6, "480213", "", id="plain-6"),
    pytest.param("4802 13", 6, "480213", "", id="inner-space"),
    pytest.param("  480 213  ", 6, "480213", "", id="outer-spaces"),
    pytest.param("480\u00a0213", 6, "480213", "", id="nbsp-nfkc-space"),
    pytest.param("\uff14\uff18\uff10\uff12\uff11\uff13", 6, "480213", "", id="full-width-nfkc"),
    pytest.param("4802137", 6, "4802137", "", id="7-digits"),
    pytest.param("480213795160", 6, "480213795160", "", id="12-digits-max"),
    pytest.param("48021379", 8, "48021379", "", id="min8-8-digits"),
    # malformed: InvalidInput
    pytest.param("", 6, InvalidInput, "digits 0-9", id="empty"),
    pytest.param("   ", 6, InvalidInput, "digits 0-9", id="only-spaces"),
    pytest.param("48021", 6, InvalidInput, "6 to 12 digits", id="short-5"),
    pytest.param("12345", 6, InvalidInput, "6 to 12 digits", id="short-12345"),
    pytest.param("4802137951604", 6, InvalidInput, "6 to 12 digits", id="long-13-not-truncated"),
    pytest.param("4802137", 8, InvalidInput, "8 to 12 digits", id="min8-7-digits"),
    pytest.param("48021a", 6, InvalidInput, "digits 0-9", id="letter"),
    pytest.param("480-213", 6, InvalidInput, "digits 0-9", id="hyphen"),
    pytest.param("480\t213", 6, InvalidInput, "digits 0-9", id="tab"),
    pytest.param(
        "\u0664\u0668\u0660\u0662\u0661\u0663", 6, InvalidInput, "digits 0-9", id="arabic-indic"
    ),
    pytest.param(
        "\u096a\u096e\u0966\u0968\u0967\u0969", 6, InvalidInput, "digits 0-9", id="devanagari"
    ),
    pytest.param(" " * 59 + "480213", 6, InvalidInput, "too long", id="65-chars-cap-before-nfkc"),
    # weak: WeakSecret
    pytest.param("000000", 6, WeakSecret, "repeats", id="repeat-0"),
    pytest.param("111111", 6, WeakSecret, "repeats", id="repeat-1"),
    pytest.param("999999", 6, WeakSecret, "repeats", id="repeat-9"),
    pytest.param("12121212", 6, WeakSecret, "repeats", id="pattern-12x4"),
    pytest.param("121212", 6, WeakSecret, "repeats", id="pattern-12x3"),
    pytest.param("123123", 6, WeakSecret, "repeats", id="pattern-123x2"),
    pytest.param("696969", 6, WeakSecret, "repeats", id="pattern-69x3"),
    pytest.param("123456", 6, WeakSecret, "run", id="ascending"),
    pytest.param("234567", 6, WeakSecret, "run", id="ascending-2"),
    pytest.param("654321", 6, WeakSecret, "run", id="descending"),
    pytest.param("987654", 6, WeakSecret, "run", id="descending-9"),
    pytest.param("890123", 6, WeakSecret, "run", id="cyclic-ascending"),
    pytest.param("210987", 6, WeakSecret, "run", id="cyclic-descending"),
    pytest.param("1234567", 6, WeakSecret, "run", id="ascending-7"),
    pytest.param("7654321", 6, WeakSecret, "run", id="descending-7"),
    pytest.param("\uff11\uff12\uff13\uff14\uff15\uff16", 6, WeakSecret, "run", id="full-width-run"),
    pytest.param("12 34 56", 6, WeakSecret, "run", id="spaced-run"),
    pytest.param("112233", 6, WeakSecret, "common", id="common-pairs"),
    pytest.param("147258", 6, WeakSecret, "common", id="common-keypad-columns"),
    pytest.param("159753", 6, WeakSecret, "common", id="common-keypad-diagonals"),
    pytest.param("123321", 6, WeakSecret, "common", id="common-mirror"),
    pytest.param("314159", 6, WeakSecret, "common", id="common-pi"),
    pytest.param("12341234", 8, WeakSecret, "repeats", id="min8-pattern"),
    pytest.param("23456789", 8, WeakSecret, "run", id="min8-run"),
]


@pytest.mark.parametrize(("raw", "min_length", "expected", "fragment"), RULES)
def test_pin_rules_table(
    make_mfa: MakeMFA,
    store: MemoryStore,
    events: ListSink,
    clock: FakeClock,
    alice: Subject,
    raw: str,
    min_length: int,
    expected: str | type[InvalidInput],
    fragment: str,
) -> None:
    kit = build_kit(make_mfa, store, events, clock, min_length=min_length)
    if isinstance(expected, str):
        assert kit.pin.check_strength(raw) == expected
        credential = kit.mfa.enroll(alice, RecoveryPIN.setup(raw))
        assert credential.active
        assert credential.factor == "recovery_pin"
        assert credential.params == {"length": len(expected)}
        assert kit.hasher.verify(credential.secret.decode("ascii"), expected)
        assert pin_credentials(kit.mfa, alice) == [credential]
        return
    with pytest.raises(expected) as caught:
        kit.mfa.enroll(alice, RecoveryPIN.setup(raw))
    assert type(caught.value) is expected  # WeakSecret rows are weak, not merely malformed
    message = str(caught.value)
    assert fragment in message
    # The message names the rule, never the PIN (SECURITY.md 22).
    digits = raw.replace(" ", "")
    if len(digits) >= 4:
        assert digits not in message
        assert digits not in repr(caught.value)
    if raw.strip():
        assert raw not in message
    # Nothing was stored, nothing announced, nothing hashed.
    assert pin_credentials(kit.mfa, alice) == []
    assert events.events == []
    assert kit.hasher.calls == 0


def test_the_rules_table_covers_every_class() -> None:
    outcomes = [p.values[2] for p in RULES]
    assert len(RULES) >= 30
    assert sum(isinstance(o, str) for o in outcomes) >= 5
    assert outcomes.count(WeakSecret) >= 15
    assert outcomes.count(InvalidInput) >= 8


def test_thirteen_digits_are_refused_not_truncated(kit: Kit, alice: Subject) -> None:
    """A 13-digit PIN whose first 12 digits would be a good PIN is refused, and a 12-digit
    PIN is not matched by its 13-digit extension (nothing is cut at either end)."""
    twelve = "480213795160"
    with pytest.raises(InvalidInput, match="6 to 12 digits"):
        kit.mfa.enroll(alice, RecoveryPIN.setup(twelve + "4"))
    kit.mfa.enroll(alice, RecoveryPIN.setup(twelve))
    for longer in (twelve + "4", "4" + twelve):
        with pytest.raises(InvalidCode):
            verify_pin(kit.mfa, alice, longer)
    with pytest.raises(InvalidCode):
        verify_pin(kit.mfa, alice, twelve[:6])
    assert verify_pin(kit.mfa, alice, twelve).factor == "recovery_pin"


@pytest.mark.parametrize("raw", [None, 480213, b"480213", ["480213"], 480213.0])
def test_a_non_str_pin_is_invalid_type(kit: Kit, alice: Subject, raw: object) -> None:
    with pytest.raises(InvalidType):
        RecoveryPIN.setup(raw)  # type: ignore[arg-type]
    with pytest.raises(InvalidType):
        kit.pin.check_strength(raw)  # type: ignore[arg-type]
    with pytest.raises(InvalidType):
        normalize_pin(raw)
    assert pin_credentials(kit.mfa, alice) == []


def test_common_pins_are_all_refused(kit: Kit) -> None:
    for pin in sorted(COMMON_PINS):
        with pytest.raises(WeakSecret):
            kit.pin.check_strength(pin)


# ------------------------------------------------------------------------------------------
# the subject's phone digits (SECURITY.md 23)
# ------------------------------------------------------------------------------------------
def enroll_sms(kit: Kit, subject: Subject) -> None:
    enrollment = kit.mfa.enroll(subject, SMSOTP.setup(SMS_TYPED, "AU"))
    kit.mfa.confirm(subject, enrollment.id, kit.outbox.last_code())


@pytest.mark.parametrize(
    "pin",
    [
        pytest.param("953817", id="last-6"),
        pytest.param("2953817", id="last-7"),
        pytest.param("412953", id="inside-the-number"),
        pytest.param("0412953817", id="national-form"),
        pytest.param("61412953817", id="e164-digits"),
        pytest.param("953 817", id="last-6-spaced"),
    ],
)
def test_a_pin_from_the_sms_number_is_weak(kit: Kit, alice: Subject, pin: str) -> None:
    # Control: without the SMS credential the same PIN is not otherwise weak.
    assert kit.pin.check_strength(pin) == pin.replace(" ", "")
    enroll_sms(kit, alice)
    with pytest.raises(WeakSecret, match="phone number") as caught:
        kit.mfa.enroll(alice, RecoveryPIN.setup(pin))
    assert pin.replace(" ", "") not in str(caught.value)
    assert "953817" not in str(caught.value)
    assert pin_credentials(kit.mfa, alice) == []


def test_a_pin_from_the_national_form_of_the_sms_number_is_weak(kit: Kit, alice: Subject) -> None:
    enroll_sms(kit, alice)
    with pytest.raises(WeakSecret):
        kit.mfa.enroll(alice, RecoveryPIN.setup("0412953"))


@pytest.mark.parametrize("pin", ["583927", "0583927", "400583927", "61400583"])
def test_a_pin_from_the_phone_attribute_is_weak(kit: Kit, pin: str) -> None:
    carol = Subject(id="u-carol", tenant="t1", attributes={"phone": ATTRIBUTE_PHONE})
    assert kit.pin.check_strength(pin) == pin  # not otherwise weak
    with pytest.raises(WeakSecret, match="phone number"):
        kit.mfa.enroll(carol, RecoveryPIN.setup(pin))
    assert pin_credentials(kit.mfa, carol) == []


def test_unrelated_pins_are_fine_for_a_subject_with_phones(kit: Kit, alice: Subject) -> None:
    enroll_sms(kit, alice)
    carol = Subject(id="u-carol", tenant="t1", attributes={"phone": ATTRIBUTE_PHONE})
    assert kit.mfa.enroll(alice, RecoveryPIN.setup(PIN)).active
    assert kit.mfa.enroll(carol, RecoveryPIN.setup(PIN)).active


def test_change_pin_applies_the_phone_rule_too(kit: Kit) -> None:
    carol = Subject(id="u-carol", tenant="t1", attributes={"phone": ATTRIBUTE_PHONE})
    kit.mfa.enroll(carol, RecoveryPIN.setup(PIN))
    with pytest.raises(WeakSecret, match="phone number"):
        kit.mfa.change_pin(carol, PIN, "583927")
    assert verify_pin(kit.mfa, carol, PIN).subject_id == "u-carol"


# ------------------------------------------------------------------------------------------
# configuration
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "options",
    [
        {"min_length": 5},
        {"min_length": 4},
        {"max_length": 5},
        {"min_length": 8, "max_length": 7},
        {"max_length": 65},
        {"max_attempts": 0},
        {"max_attempts": 101},
    ],
)
def test_unsafe_pin_configuration_is_refused(options: dict[str, int]) -> None:
    with pytest.raises(ConfigurationError):
        RecoveryPIN(**options)  # type: ignore[arg-type]


def test_repr_shows_no_pin(kit: Kit) -> None:
    setup = RecoveryPIN.setup(PIN)
    assert PIN not in repr(setup)
    assert PIN not in repr(kit.pin)


# ------------------------------------------------------------------------------------------
# through the facade
# ------------------------------------------------------------------------------------------
def test_setting_a_pin_replaces_the_previous_one(kit: Kit, alice: Subject) -> None:
    first = kit.mfa.enroll(alice, RecoveryPIN.setup(PIN))
    second = kit.mfa.enroll(alice, RecoveryPIN.setup(OTHER_PIN))
    assert first.id != second.id
    assert pin_credentials(kit.mfa, alice) == [second]
    removed = kit.events.of_type(EventType.CREDENTIAL_REMOVED)
    assert [(e.credential_id, e.reason) for e in removed] == [(first.id, "replaced")]
    with pytest.raises(InvalidCode):
        verify_pin(kit.mfa, alice, PIN)
    assert verify_pin(kit.mfa, alice, OTHER_PIN).credential_id == second.id


def test_right_pin_is_recovery_knowledge_evidence(kit: Kit, alice: Subject) -> None:
    credential = kit.mfa.enroll(alice, RecoveryPIN.setup(PIN))
    challenge = kit.mfa.challenge(alice, "recovery_pin")
    assert challenge.prompts == ()
    # Typed with spaces and full-width digits: the same PIN after normalisation.
    verification = kit.mfa.verify(alice, challenge.id, "\uff14\uff18\uff10 213")
    assert verification == Verification(
        subject_id=alice.id,
        tenant=alice.tenant,
        factor="recovery_pin",
        credential_id=credential.id,
        challenge_id=challenge.id,
        verified_at=kit.clock.now(),
        kind=FactorKind.KNOWLEDGE,
        recovery=True,
    )
    (verified,) = kit.events.of_type(EventType.VERIFIED)
    assert verified.detail == {"recovery": True}
    # The challenge is single use.
    with pytest.raises(ChallengeNotFound):
        kit.mfa.verify(alice, challenge.id, PIN)


def test_a_fallback_pin_is_not_marked_recovery(make_mfa: MakeMFA, alice: Subject) -> None:
    mfa = make_mfa(factors=[RecoveryPIN(hasher=SecretHasher.owasp_minimum(), purpose="fallback")])
    mfa.enroll(alice, RecoveryPIN.setup(PIN))
    verification = verify_pin(mfa, alice, PIN)
    assert verification.kind is FactorKind.KNOWLEDGE
    assert verification.recovery is False


def test_a_wrong_pin_is_invalid_code_and_charged(kit: Kit, alice: Subject) -> None:
    kit.mfa.enroll(alice, RecoveryPIN.setup(PIN))
    challenge = kit.mfa.challenge(alice, "recovery_pin")
    with pytest.raises(InvalidCode) as caught:
        kit.mfa.verify(alice, challenge.id, OTHER_PIN)
    assert failures(kit.mfa, alice) == 1
    stored = kit.store.get_challenge(challenge.id)
    assert stored is not None
    assert stored.attempts == 1
    (failed,) = kit.events.of_type(EventType.FAILED)
    assert (failed.reason, failed.factor, failed.challenge_id) == (
        "InvalidCode",
        "recovery_pin",
        challenge.id,
    )
    for text in (str(caught.value), repr(caught.value), repr(failed)):
        assert OTHER_PIN not in text
        assert PIN not in text
    # The same challenge still takes the right PIN, which resets the count.
    kit.mfa.verify(alice, challenge.id, PIN)
    assert failures(kit.mfa, alice) == 0


def test_max_attempts_per_challenge(
    make_mfa: MakeMFA, store: MemoryStore, events: ListSink, clock: FakeClock, alice: Subject
) -> None:
    kit = build_kit(make_mfa, store, events, clock, max_attempts=3)
    kit.mfa.enroll(alice, RecoveryPIN.setup(PIN))
    challenge = kit.mfa.challenge(alice, "recovery_pin")
    assert challenge.max_attempts == 3
    for _ in range(3):
        with pytest.raises(InvalidCode):
            kit.mfa.verify(alice, challenge.id, OTHER_PIN)
    # Exhausted: even the right PIN no longer works on this challenge ...
    with pytest.raises(ChallengeNotFound):
        kit.mfa.verify(alice, challenge.id, PIN)
    assert kit.store.get_challenge(challenge.id) is None
    # ... but a new challenge does.
    assert verify_pin(kit.mfa, alice, PIN).recovery


def wrong_totp(secret: str, clock: FakeClock) -> str:
    """A 6-digit code that no step of the ±1 window accepts now."""
    window = {totp_now(secret, clock.now(), offset=o) for o in (-1, 0, 1)}
    return next(c for c in (f"{n:06d}" for n in range(10)) if c not in window)


def test_pin_failures_share_the_lockout_with_totp(
    make_mfa: MakeMFA,
    store: MemoryStore,
    events: ListSink,
    clock: FakeClock,
    alice: Subject,
    enrolled: EnrollTOTP,
) -> None:
    """2 TOTP failures + 3 PIN failures = 5: suspended (SECURITY.md 17, ISM-1403)."""
    kit = build_kit(make_mfa, store, events, clock, lockout=Lockout(max_failures=5, mode="suspend"))
    enrollment, _ = enrolled(kit.mfa, alice, clock)
    kit.mfa.enroll(alice, RecoveryPIN.setup(PIN))
    for _ in range(2):
        totp_challenge = kit.mfa.challenge(alice, "totp")
        with pytest.raises(InvalidCode):
            kit.mfa.verify(alice, totp_challenge.id, wrong_totp(enrollment.secret, clock))
    assert failures(kit.mfa, alice) == 2
    challenge = kit.mfa.challenge(alice, "recovery_pin")
    for _ in range(3):
        with pytest.raises(InvalidCode):
            kit.mfa.verify(alice, challenge.id, OTHER_PIN)
    state = kit.mfa.lock_state(alice)
    assert (state.failures, state.suspended) == (5, True)
    (locked,) = kit.events.of_type(EventType.LOCKED)
    assert (locked.factor, locked.reason) == ("recovery_pin", "suspended")
    # While suspended the right PIN and a wrong one get the same answer, and no argon2
    # work is done for either (nothing is compared while locked).
    calls = kit.hasher.calls
    answers: list[tuple[str, str, bool]] = []
    for pin in (PIN, OTHER_PIN):
        with pytest.raises(LockedOut) as caught:
            verify_pin(kit.mfa, alice, pin)
        answers.append((str(caught.value), caught.value.public_message, caught.value.suspended))
    assert answers[0] == answers[1]
    assert answers[0][2] is True
    assert kit.hasher.calls == calls
    assert kit.mfa.lock_state(alice) == state  # nothing charged, nothing reset
    # An administrator unlocks; the right PIN works again.
    kit.mfa.unlock(alice, actor="admin1")
    assert verify_pin(kit.mfa, alice, PIN).recovery


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        ("48021a", InvalidInput),
        ("\u0664\u0668\u0660\u0662\u0661\u0663", InvalidInput),
        ("", InvalidInput),
        ("480-213", InvalidInput),
        ("4" * 65, MalformedCode),
        (None, InvalidType),
        (480213, InvalidType),
        (b"480213", InvalidType),
    ],
)
def test_malformed_pin_input_charges_nothing(
    kit: Kit, alice: Subject, raw: object, error: type[InvalidInput]
) -> None:
    kit.mfa.enroll(alice, RecoveryPIN.setup(PIN))
    challenge = kit.mfa.challenge(alice, "recovery_pin")
    calls = kit.hasher.calls
    lock = kit.mfa.lock_state(alice)
    with pytest.raises(error):
        kit.mfa.verify(alice, challenge.id, raw)  # type: ignore[arg-type]
    assert kit.hasher.calls == calls
    assert kit.mfa.lock_state(alice) == lock
    assert kit.store.get_challenge(challenge.id) == challenge
    assert kit.events.of_type(EventType.FAILED) == []
    # The challenge is still whole: the right PIN goes through on it.
    assert kit.mfa.verify(alice, challenge.id, PIN).challenge_id == challenge.id


# ------------------------------------------------------------------------------------------
# timing, by counting argon2 computations (SECURITY.md 36)
# ------------------------------------------------------------------------------------------
def test_right_wrong_and_missing_pin_cost_the_same_argon2_work(
    kit: Kit, alice: Subject, bob: Subject
) -> None:
    """One argon2 verification each: right PIN, wrong PIN, wrong length, and a subject
    without a PIN (dummy verification). No shortcut tells them apart."""
    kit.mfa.enroll(alice, RecoveryPIN.setup(PIN))
    costs: dict[str, int] = {}
    outcomes: dict[str, BaseException | Verification] = {}
    cases = [
        ("right", alice, PIN),
        ("wrong", alice, OTHER_PIN),
        ("too-short", alice, "48021"),
        ("too-long", alice, "4802137951604"),
        ("no-pin", bob, PIN),
        ("no-pin-wrong", bob, OTHER_PIN),
    ]
    for name, subject, pin in cases:
        challenge = kit.mfa.challenge(subject, "recovery_pin")
        before = kit.hasher.calls
        try:
            outcomes[name] = kit.mfa.verify(subject, challenge.id, pin)
        except VerificationFailed as exc:
            outcomes[name] = exc
        costs[name] = kit.hasher.calls - before
    assert costs == dict.fromkeys(costs, 1)
    assert isinstance(outcomes["right"], Verification)
    for name in ("wrong", "too-short", "too-long"):
        assert type(outcomes[name]) is InvalidCode
    for name in ("no-pin", "no-pin-wrong"):
        assert type(outcomes[name]) is NotEnrolled
    # Shown to the user, a subject without a PIN looks like a wrong PIN.
    wrong, missing = outcomes["wrong"], outcomes["no-pin"]
    assert isinstance(wrong, InvalidCode)
    assert isinstance(missing, NotEnrolled)
    assert wrong.public_message == missing.public_message
    # Both are charged against the lockout.
    assert failures(kit.mfa, bob) == 2


def test_a_challenge_opens_for_a_subject_without_a_pin(kit: Kit, bob: Subject) -> None:
    challenge = kit.mfa.challenge(bob, "recovery_pin")
    assert challenge.factor == "recovery_pin"
    assert kit.events.of_type(EventType.CHALLENGE_CREATED)[-1].challenge_id == challenge.id


# ------------------------------------------------------------------------------------------
# rehash when the parameters change (SECURITY.md 21)
# ------------------------------------------------------------------------------------------
def test_a_successful_verify_rehashes_with_new_parameters(
    kit: Kit, make_mfa: MakeMFA, alice: Subject
) -> None:
    old = kit.mfa.enroll(alice, RecoveryPIN.setup(PIN))
    assert phc_params(old.secret) == (19456, 2, 1)
    stronger = SecretHasher(time_cost=3, memory_cost=19456 * 2, parallelism=1)
    assert stronger.needs_rehash(old.secret.decode("ascii"))
    upgraded_mfa = make_mfa(factors=[RecoveryPIN(hasher=stronger)], lockout=NO_LOCK)
    # A wrong PIN changes nothing.
    with pytest.raises(InvalidCode):
        verify_pin(upgraded_mfa, alice, OTHER_PIN)
    assert pin_credentials(upgraded_mfa, alice) == [old]
    # A right one upgrades the stored hash.
    verify_pin(upgraded_mfa, alice, "480 213")
    (new,) = pin_credentials(upgraded_mfa, alice)
    assert new.id == old.id
    assert new.version == old.version + 1
    assert new.secret != old.secret
    assert phc_params(new.secret) == (19456 * 2, 3, 1)
    assert not stronger.needs_rehash(new.secret.decode("ascii"))
    # It still verifies, through either configuration, and is not rehashed again.
    assert verify_pin(upgraded_mfa, alice, PIN).credential_id == old.id
    assert pin_credentials(upgraded_mfa, alice)[0].version == new.version
    assert verify_pin(kit.mfa, alice, PIN).credential_id == old.id


# ------------------------------------------------------------------------------------------
# change_pin
# ------------------------------------------------------------------------------------------
def test_change_pin_needs_the_current_pin(kit: Kit, alice: Subject) -> None:
    kit.mfa.enroll(alice, RecoveryPIN.setup(PIN))
    with pytest.raises(InvalidCode) as caught:
        kit.mfa.change_pin(alice, "902462", OTHER_PIN)
    assert failures(kit.mfa, alice) == 1
    assert OTHER_PIN not in str(caught.value)
    (failed,) = kit.events.of_type(EventType.FAILED)
    assert failed.reason == "InvalidCode"
    assert verify_pin(kit.mfa, alice, PIN).recovery  # unchanged (and resets the count)
    assert failures(kit.mfa, alice) == 0


def test_change_pin_to_a_weak_pin_changes_nothing(kit: Kit, alice: Subject) -> None:
    before = kit.mfa.enroll(alice, RecoveryPIN.setup(PIN))
    events_before = list(kit.events.events)
    calls = kit.hasher.calls
    for weak, error in (("123456", WeakSecret), ("111111", WeakSecret), ("12345", InvalidInput)):
        with pytest.raises(error) as caught:
            kit.mfa.change_pin(alice, PIN, weak)
        assert weak not in str(caught.value)
    assert pin_credentials(kit.mfa, alice) == [before]
    assert kit.events.events == events_before
    assert failures(kit.mfa, alice) == 0
    assert kit.hasher.calls == calls
    # Malformed current PIN: refused before anything is charged.
    with pytest.raises(InvalidInput):
        kit.mfa.change_pin(alice, "48021a", OTHER_PIN)
    assert failures(kit.mfa, alice) == 0
    assert pin_credentials(kit.mfa, alice) == [before]


def test_change_pin_replaces_the_pin(kit: Kit, alice: Subject) -> None:
    old = kit.mfa.enroll(alice, RecoveryPIN.setup(PIN))
    with pytest.raises(InvalidCode):
        verify_pin(kit.mfa, alice, OTHER_PIN)  # a failure first: success resets it
    new = kit.mfa.change_pin(alice, "4802 13", OTHER_PIN)
    assert failures(kit.mfa, alice) == 0
    assert new.id != old.id
    assert pin_credentials(kit.mfa, alice) == [new]
    with pytest.raises(InvalidCode):
        verify_pin(kit.mfa, alice, PIN)
    assert verify_pin(kit.mfa, alice, OTHER_PIN).credential_id == new.id


def test_change_pin_without_a_pin_is_not_enrolled(kit: Kit, bob: Subject) -> None:
    calls = kit.hasher.calls
    with pytest.raises(NotEnrolled):
        kit.mfa.change_pin(bob, PIN, OTHER_PIN)
    assert kit.hasher.calls == calls + 1  # the same argon2 work as a real check
    assert failures(kit.mfa, bob) == 1
    assert pin_credentials(kit.mfa, bob) == []


def test_change_pin_while_locked_is_refused(
    make_mfa: MakeMFA, store: MemoryStore, events: ListSink, clock: FakeClock, alice: Subject
) -> None:
    kit = build_kit(make_mfa, store, events, clock, lockout=Lockout(max_failures=2, mode="suspend"))
    kit.mfa.enroll(alice, RecoveryPIN.setup(PIN))
    for _ in range(2):
        with pytest.raises(InvalidCode):
            kit.mfa.change_pin(alice, "902462", OTHER_PIN)
    with pytest.raises(LockedOut):
        kit.mfa.change_pin(alice, PIN, OTHER_PIN)
    assert kit.mfa.lock_state(alice).suspended
    kit.mfa.unlock(alice, actor="admin1")
    assert verify_pin(kit.mfa, alice, PIN).recovery  # the old PIN was kept


# ------------------------------------------------------------------------------------------
# hashes only at rest (SECURITY.md 21, 22)
# ------------------------------------------------------------------------------------------
def test_only_argon2id_hashes_are_stored(kit: Kit, alice: Subject, bob: Subject) -> None:
    first = kit.mfa.enroll(alice, RecoveryPIN.setup("4802 13"))
    with pytest.raises(InvalidCode):
        verify_pin(kit.mfa, alice, OTHER_PIN)
    verify_pin(kit.mfa, alice, PIN)
    kit.mfa.change_pin(alice, PIN, "7305 9281")
    kit.mfa.enroll(bob, RecoveryPIN.setup(PIN))
    text = at_rest_text(kit.store, kit.events)
    for secret in (PIN, "4802 13", OTHER_PIN, "73059281", "7305 9281"):
        assert secret not in text
    stored = [c for c in kit.store.dump()["credentials"] if isinstance(c, Credential)]
    assert first.id not in {c.id for c in stored}
    assert len(stored) == 2
    for credential in stored:
        assert credential.secret.startswith(b"$argon2id$")
        m, t, p = phc_params(credential.secret)
        assert m >= 19456
        assert t >= 2
        assert p >= 1
    # A unique salt: the same PIN for two subjects gives two different hashes.
    again = kit.mfa.enroll(alice, RecoveryPIN.setup(PIN))
    (bobs,) = pin_credentials(kit.mfa, bob)
    assert again.secret != bobs.secret
    assert again.secret.split(b"$")[4] != bobs.secret.split(b"$")[4]


def test_key_rotation_skips_hashed_secrets_and_still_rotates_the_rest(
    store: MemoryStore, clock: FakeClock, alice: Subject
) -> None:
    """Argon2id hashes are not keyring blobs: rotate_keys must leave them alone, not fail."""
    old_entry, new_entry = Keyring.generate_key("k-old"), Keyring.generate_key("k-new")
    old = Keyring.from_string(old_entry)
    hasher = SecretHasher.owasp_minimum()
    factors: list[Factor] = [TOTP(issuer="ACME"), RecoveryPIN(hasher=hasher), RecoveryCodes()]
    before = MFA(store=store, keyring=old, factors=factors, clock=clock)
    enrollment = before.enroll(alice, "totp")
    before.confirm(alice, enrollment.id, totp_now(enrollment.secret, clock.now()))
    before.enroll(alice, RecoveryPIN.setup("480213"))
    batch = before.enroll(alice, RecoveryCodes.setup())
    both = Keyring.from_string(f"{new_entry},{old_entry}")
    after = MFA(store=store, keyring=both, factors=factors, clock=clock)
    assert after.rotate_keys() == 1  # the TOTP seed only
    clock.advance(30)
    challenge = after.challenge(alice, "recovery_pin")
    assert after.verify(alice, challenge.id, "480213").recovery is True
    challenge = after.challenge(alice, "recovery_codes")
    assert after.verify(alice, challenge.id, batch.codes[0]).recovery is True
    challenge = after.challenge(alice, "totp")
    assert after.verify(alice, challenge.id, totp_now(enrollment.secret, clock.now()))
