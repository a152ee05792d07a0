"""The sign-in flow (``SignInFlow``): steps, and a state token that cannot be skipped.

SECURITY.md 31-36 and issue 5: after the host's password check the flow walks one sign-in
through review -> enrol -> enrol recovery -> challenge -> complete. Its state is a signed
token ``mfa1.<base64url json>.<base64url mac>``; these tests tamper with it, replay it,
present it for another subject, session or keyring and let it age, and every such attempt
must fail closed with a typed :class:`~mfakit.FlowError` (never an ``AssertionError``,
never a forward step). The payload must carry ids and times only.

Both deployments are exercised: the practice suite (TOTP or SMS, a recovery PIN, 24 h /
15 min sessions) and the register (e-mail codes to the profile address, secret questions
as the fallback, a three-month grace period, details reviewed first).

The last section pins the bugs these tests found (now fixed): finishing a recovery with
the lost device's old credential, enrolling through a replayed token, malleable token
encodings and session bindings that did not survive a key rotation.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
import string
from collections.abc import Iterator, Mapping
from typing import Any, Final

import pytest

from mfakit import (
    MFA,
    ChallengeNotFound,
    CodeEnrollment,
    Credential,
    FactorKind,
    FlowError,
    FlowExpired,
    FlowState,
    FlowStep,
    FlowStepError,
    InvalidCode,
    InvalidFlowToken,
    InvalidType,
    Keyring,
    LockedOut,
    MFAError,
    Policy,
    SignInFlow,
    Subject,
)
from mfakit.factors import (
    SMSOTP,
    TOTP,
    EmailOTP,
    RecoveryPIN,
    SecretQuestions,
    TOTPEnrollment,
)
from mfakit.hazmat.hashing import SecretHasher
from mfakit.testing import FakeClock, MemoryStore, Outbox, totp_now

# ------------------------------------------------------------------------------------------
# constants and helpers
# ------------------------------------------------------------------------------------------
HASHER: Final = SecretHasher.owasp_minimum()
PIN: Final = "830571"
WRONG_PIN: Final = "482913"
PHONE_TYPED: Final = "0412 345 678"
PHONE_E164: Final = "+61412345678"
#: What a host's password form would hold; the flow is never given it.
PASSWORD: Final = "correct horse battery staple"
CATALOGUE: Final = {
    "pet": "What was the name of your first pet?",
    "city": "In which city were you born?",
    "school": "What was the name of your primary school?",
    "street": "What street did you grow up on?",
}
ANSWERS: Final = {"pet": "Rexy", "city": "Paris", "school": "St Mary's"}
#: The documented payload keys: flow, subject, step, started, expires, mfa time, factor,
#: recovered, challenge, binding hash, sequence number, credential being enrolled.
PAYLOAD_KEYS: Final = frozenset("fstaemkrcbnp")
TEN_MINUTES: Final = dt.timedelta(minutes=10)
DAY: Final = dt.timedelta(hours=24)
MICROSECOND: Final = dt.timedelta(microseconds=1)
B64_ALPHABET: Final = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"
PUBLIC_METHODS: Final = frozenset(
    {"start", "review_done", "enroll", "enrolled", "challenge", "verify", "answer"}
    | {"load", "session_status"}
)


@dataclasses.dataclass
class Kit:
    """One deployment: the facade, its flow, and the fakes behind them."""

    mfa: MFA
    flow: SignInFlow
    clock: FakeClock
    outbox: Outbox


def build_practice(clock: FakeClock, store: MemoryStore, keyring: Keyring) -> Kit:
    outbox = Outbox()
    mfa = MFA(
        store=store,
        keyring=keyring,
        factors=[
            TOTP(issuer="ACME"),
            SMSOTP(sender=outbox, issuer="ACME"),
            RecoveryPIN(hasher=HASHER),
        ],
        clock=clock,
        policy=Policy.practice_suite(),
    )
    return Kit(mfa, SignInFlow(mfa), clock, outbox)


@pytest.fixture
def practice(clock: FakeClock, store: MemoryStore, keyring: Keyring) -> Kit:
    """The practice-suite deployment over the shared clock, store and keyring."""
    return build_practice(clock, store, keyring)


@pytest.fixture
def register(clock: FakeClock, store: MemoryStore, keyring: Keyring) -> Kit:
    """The register deployment, launched at the clock's start (deadline 2026-04-01)."""
    outbox = Outbox()
    mfa = MFA(
        store=store,
        keyring=keyring,
        factors=[
            EmailOTP(sender=outbox, from_address="mfa@example.com", issuer="ACME"),
            SecretQuestions(CATALOGUE, hasher=HASHER),
        ],
        clock=clock,
        policy=Policy.register(launched_at=clock.now()),
    )
    return Kit(mfa, SignInFlow(mfa), clock, outbox)


def code_of(enrollment: TOTPEnrollment, clock: FakeClock, *, offset: int = 0) -> str:
    """What the authenticator app of ``enrollment`` shows now."""
    return totp_now(enrollment.secret, clock.now(), offset=offset)


def wrong_code(enrollment: TOTPEnrollment, clock: FakeClock) -> str:
    """A well-formed code that no step of the verification window accepts."""
    window = {code_of(enrollment, clock, offset=o) for o in (-2, -1, 0, 1, 2)}
    return next(c for c in (f"{n:06d}" for n in range(1000)) if c not in window)


def parts(token: str) -> tuple[str, str, str]:
    prefix, payload, tag = token.split(".")
    return prefix, payload, tag


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def payload_of(token: str) -> dict[str, Any]:
    """The token's JSON payload: readable by whoever holds the token (it is signed only)."""
    body: dict[str, Any] = json.loads(unb64(parts(token)[1]))
    return body


def with_payload(token: str, body: Mapping[str, Any]) -> str:
    """``body`` re-encoded the way the flow encodes it, under the *old* MAC."""
    prefix, _, tag = parts(token)
    raw = json.dumps(dict(body), separators=(",", ":"), sort_keys=True).encode()
    return ".".join((prefix, b64(raw), tag))


def flip_sextet(text: str, index: int) -> str:
    """Flip the top bit of the 6-bit value at ``index``: always a significant bit."""
    value = B64_ALPHABET.index(text[index])
    return text[:index] + B64_ALPHABET[value ^ 0x20] + text[index + 1 :]


def refused(kit: Kit, subject: Subject, token: object, *, binding: str = "") -> type[Exception]:
    """Load ``token`` and return the class of the error it was refused with."""
    with pytest.raises(MFAError) as caught:
        kit.flow.load(subject, token, binding=binding)  # type: ignore[arg-type]
    return type(caught.value)


def enroll_totp_in_flow(
    kit: Kit, subject: Subject, token: str, *, binding: str = ""
) -> tuple[str, FlowState, TOTPEnrollment, Credential]:
    """At an enrolment step: enrol an authenticator app, confirm it, tell the flow."""
    token, enrollment = kit.flow.enroll(subject, token, "totp", binding=binding)
    assert isinstance(enrollment, TOTPEnrollment)
    credential = kit.mfa.confirm(subject, enrollment.id, code_of(enrollment, kit.clock))
    token, state = kit.flow.enrolled(subject, token, credential, binding=binding)
    return token, state, enrollment, credential


def set_pin_in_flow(
    kit: Kit, subject: Subject, token: str, *, binding: str = ""
) -> tuple[str, FlowState]:
    token, credential = kit.flow.enroll(subject, token, RecoveryPIN.setup(PIN), binding=binding)
    assert isinstance(credential, Credential)
    assert credential.active
    return kit.flow.enrolled(subject, token, credential, binding=binding)


def new_user(
    kit: Kit, subject: Subject, *, binding: str = ""
) -> tuple[str, FlowState, TOTPEnrollment, Credential]:
    """A first sign-in through to COMPLETE: app enrolled and a PIN set.

    The clock then moves one TOTP period on, so the app's next code is fresh.
    """
    token, state = kit.flow.start(subject, binding=binding)
    assert state.step is FlowStep.ENROLL
    token, state, enrollment, credential = enroll_totp_in_flow(kit, subject, token, binding=binding)
    assert state.step is FlowStep.ENROLL_RECOVERY
    token, state = set_pin_in_flow(kit, subject, token, binding=binding)
    assert state.step is FlowStep.COMPLETE
    kit.clock.advance(30)
    return token, state, enrollment, credential


def challenge_totp(kit: Kit, subject: Subject, *, binding: str = "") -> tuple[str, FlowState, str]:
    """A later sign-in up to an open TOTP challenge: (token, state, challenge id)."""
    token, state = kit.flow.start(subject, binding=binding)
    assert state.step is FlowStep.CHALLENGE
    token, challenge = kit.flow.challenge(subject, token, "totp", binding=binding)
    return token, kit.flow.load(subject, token, binding=binding), challenge.id


def sign_in_with_totp(
    kit: Kit, subject: Subject, enrollment: TOTPEnrollment, *, binding: str = ""
) -> tuple[str, FlowState]:
    token, _, _ = challenge_totp(kit, subject, binding=binding)
    return kit.flow.verify(subject, token, code_of(enrollment, kit.clock), binding=binding)


def assert_complete_with_possession(kit: Kit, state: FlowState) -> None:
    assert state.step is FlowStep.COMPLETE
    assert state.complete
    assert state.mfa_at is not None
    assert state.factor is not None
    assert kit.mfa.factor(state.factor).kind is FactorKind.POSSESSION
    assert not state.recovered
    assert state.challenge_id is None


# ------------------------------------------------------------------------------------------
# happy paths: the practice suite
# ------------------------------------------------------------------------------------------
def test_practice_new_user_enrols_app_and_pin_then_completes(
    practice: Kit, alice: Subject, clock: FakeClock
) -> None:
    started = clock.now()
    token, state = practice.flow.start(alice)
    assert state.step is FlowStep.ENROLL
    assert state.mfa_at is None
    assert state.expires_at == started + TEN_MINUTES
    assert practice.flow.load(alice, token) == state

    token, state, enrollment, credential = enroll_totp_in_flow(practice, alice, token)
    assert state.step is FlowStep.ENROLL_RECOVERY
    # Proving the new app with a code is this sign-in's second factor.
    assert state.mfa_at == clock.now()
    assert state.factor == "totp"

    token, state = set_pin_in_flow(practice, alice, token)
    assert_complete_with_possession(practice, state)
    assert state.expires_at == state.mfa_at + DAY  # type: ignore[operator]
    assert practice.flow.load(alice, token) == state
    assert {c.factor for c in practice.mfa.credentials(alice)} == {"totp", "recovery_pin"}
    assert credential.id in {c.id for c in practice.mfa.credentials(alice)}

    # The next sign-in: straight to the challenge, then complete.
    clock.advance(30)
    token, state = practice.flow.start(alice)
    assert state.step is FlowStep.CHALLENGE
    assert state.mfa_at is None
    token, challenge = practice.flow.challenge(alice, token, "totp")
    assert practice.flow.load(alice, token).challenge_id == challenge.id
    token, state = practice.flow.verify(alice, token, code_of(enrollment, clock))
    assert_complete_with_possession(practice, state)
    assert state.mfa_at == clock.now()


def test_practice_sms_path_with_outbox(practice: Kit, alice: Subject, clock: FakeClock) -> None:
    token, state = practice.flow.start(alice)
    assert state.step is FlowStep.ENROLL
    token, enrollment = practice.flow.enroll(alice, token, SMSOTP.setup(PHONE_TYPED, "AU"))
    assert isinstance(enrollment, CodeEnrollment)
    assert practice.outbox.last_sms().to == PHONE_E164
    credential = practice.mfa.confirm(alice, enrollment.id, practice.outbox.last_code(PHONE_E164))
    token, state = practice.flow.enrolled(alice, token, credential)
    assert state.step is FlowStep.ENROLL_RECOVERY
    assert state.factor == "sms"
    token, state = set_pin_in_flow(practice, alice, token)
    assert_complete_with_possession(practice, state)

    clock.advance(60)
    token, state = practice.flow.start(alice)
    assert state.step is FlowStep.CHALLENGE
    assert "sms" in practice.mfa.evaluate(alice).methods
    sent_before = len(practice.outbox.sms)
    token, challenge = practice.flow.challenge(alice, token, "sms")
    assert len(practice.outbox.sms) == sent_before + 1
    assert challenge.factor == "sms"
    token, state = practice.flow.verify(alice, token, practice.outbox.last_code(PHONE_E164))
    assert_complete_with_possession(practice, state)
    assert state.factor == "sms"


def test_practice_device_lost_recovers_with_pin_then_must_enrol_again(
    practice: Kit, alice: Subject, clock: FakeClock
) -> None:
    _, _, _, old_credential = new_user(practice, alice)

    token, state = practice.flow.start(alice)
    assert state.step is FlowStep.CHALLENGE
    assert practice.mfa.evaluate(alice).recovery == ("recovery_pin",)
    token, challenge = practice.flow.challenge(alice, token, "recovery_pin")
    assert challenge.factor == "recovery_pin"
    token, state = practice.flow.verify(alice, token, PIN)
    # In, but not MFA-verified: a new factor must be set up (SECURITY.md 33).
    assert state.step is FlowStep.ENROLL
    assert state.recovered
    assert state.mfa_at is None
    assert state.factor is None
    assert state.challenge_id is None
    with pytest.raises(FlowStepError):
        practice.flow.session_status(alice, token, last_activity_at=clock.now())

    # A PIN (knowledge) does not end the recovery: still at ENROLL.
    token, state = set_pin_in_flow(practice, alice, token)
    assert state.step is FlowStep.ENROLL
    assert state.recovered

    token, state, _, new_credential = enroll_totp_in_flow(practice, alice, token)
    assert new_credential.id != old_credential.id
    assert_complete_with_possession(practice, state)
    assert state.mfa_at == clock.now()


def test_practice_service_subject_is_exempt_and_complete_at_start(
    practice: Kit, clock: FakeClock
) -> None:
    service = Subject(id="svc-backup", kind="service")
    token, state = practice.flow.start(service)
    assert state.step is FlowStep.COMPLETE
    assert state.mfa_at is None
    assert state.factor is None
    assert state.expires_at == clock.now() + DAY
    assert not practice.mfa.evaluate(service).required
    status = practice.flow.session_status(service, token, last_activity_at=clock.now())
    assert status.valid


def test_practice_pending_ttl_is_configurable_and_must_be_positive(
    practice: Kit, alice: Subject, clock: FakeClock
) -> None:
    short = SignInFlow(practice.mfa, pending_ttl=dt.timedelta(minutes=3))
    _, state = short.start(alice)
    assert state.expires_at == clock.now() + dt.timedelta(minutes=3)
    for bad in (dt.timedelta(0), dt.timedelta(seconds=-1), 600):
        with pytest.raises(MFAError):
            SignInFlow(practice.mfa, pending_ttl=bad)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------
# happy paths: the register
# ------------------------------------------------------------------------------------------
def test_register_reviews_first_then_grace_completes_without_mfa(
    register: Kit, alice: Subject, clock: FakeClock
) -> None:
    token, state = register.flow.start(alice)
    assert state.step is FlowStep.REVIEW
    decision = register.mfa.evaluate(alice)
    assert decision.grace_until == dt.datetime(2026, 4, 1, tzinfo=dt.timezone.utc)
    # Nothing else is possible before the review.
    with pytest.raises(FlowStepError):
        register.flow.challenge(alice, token, "email")
    with pytest.raises(FlowStepError):
        register.flow.enroll(alice, token, EmailOTP.setup("alice@example.com"))
    with pytest.raises(FlowStepError):
        register.flow.session_status(alice, token, last_activity_at=clock.now())

    token, state = register.flow.review_done(alice, token)
    assert state.step is FlowStep.COMPLETE
    assert state.mfa_at is None
    assert len(register.outbox) == 0
    # review_done is a one-off step.
    with pytest.raises(FlowStepError):
        register.flow.review_done(alice, token)


def test_register_grace_with_opt_in_asks_for_the_email_code(
    register: Kit, clock: FakeClock
) -> None:
    opted = Subject(id="u-opted", email="opted@example.com", attributes={"mfa_opted_in": True})
    token, state = register.flow.start(opted)
    assert state.step is FlowStep.REVIEW
    token, state = register.flow.review_done(opted, token)
    assert state.step is FlowStep.CHALLENGE
    token, _ = register.flow.challenge(opted, token, "email")
    token, state = register.flow.verify(
        opted, token, register.outbox.last_code("opted@example.com")
    )
    assert_complete_with_possession(register, state)


def test_register_after_the_deadline_email_code_to_profile_address(
    register: Kit, alice: Subject, clock: FakeClock
) -> None:
    deadline = register.mfa.evaluate(alice).grace_until
    assert deadline is not None
    clock.set(deadline - MICROSECOND)
    _, state = register.flow.review_done(alice, register.flow.start(alice)[0])
    assert state.step is FlowStep.COMPLETE  # still in the grace period

    clock.set(deadline)
    token, state = register.flow.start(alice)
    assert state.step is FlowStep.REVIEW
    token, state = register.flow.review_done(alice, token)
    assert state.step is FlowStep.CHALLENGE
    assert register.mfa.evaluate(alice).methods == ("email",)
    token, challenge = register.flow.challenge(alice, token, "email")
    assert challenge.factor == "email"
    message = register.outbox.last_email("alice@example.com")
    assert "alice@example.com" in str(message["To"])
    token, state = register.flow.verify(
        alice, token, register.outbox.last_code("alice@example.com")
    )
    assert_complete_with_possession(register, state)
    assert state.factor == "email"


def test_register_fallback_secret_questions_complete(
    register: Kit, alice: Subject, clock: FakeClock
) -> None:
    register.mfa.enroll(alice, SecretQuestions.setup(ANSWERS))
    clock.set(dt.datetime(2026, 4, 1, tzinfo=dt.timezone.utc))
    token, _ = register.flow.start(alice)
    token, state = register.flow.review_done(alice, token)
    assert state.step is FlowStep.CHALLENGE
    assert register.mfa.evaluate(alice).fallbacks == ("secret_questions",)
    token, challenge = register.flow.challenge(alice, token, "secret_questions")
    assert challenge.prompts
    assert len(register.outbox) == 0  # the fallback is for codes that did not arrive

    wrong = dict.fromkeys(challenge.prompts, "wrong answer")
    with pytest.raises(InvalidCode):
        register.flow.answer(alice, token, wrong)
    right = {qid: ANSWERS[qid] for qid in challenge.prompts}
    token, state = register.flow.answer(alice, token, right)
    assert state.step is FlowStep.COMPLETE
    assert state.factor == "secret_questions"
    assert state.mfa_at == clock.now()
    assert not state.recovered


# ------------------------------------------------------------------------------------------
# tampering
# ------------------------------------------------------------------------------------------
@pytest.fixture
def challenge_token(practice: Kit, alice: Subject) -> str:
    """Alice at an open TOTP challenge (she has an app and a PIN)."""
    new_user(practice, alice)
    token, _, _ = challenge_totp(practice, alice)
    return token


def test_every_significant_change_to_payload_or_mac_is_refused(
    practice: Kit, alice: Subject, challenge_token: str
) -> None:
    prefix, payload, tag = parts(challenge_token)
    tried = 0
    for index in range(len(payload)):
        token = f"{prefix}.{flip_sextet(payload, index)}.{tag}"
        assert refused(practice, alice, token) is InvalidFlowToken, index
        tried += 1
    for index in range(len(tag)):
        token = f"{prefix}.{payload}.{flip_sextet(tag, index)}"
        assert refused(practice, alice, token) is InvalidFlowToken, index
        tried += 1
    assert tried > 100
    # The genuine token still loads: nothing above changed any state.
    assert practice.flow.load(alice, challenge_token).step is FlowStep.CHALLENGE


def test_every_flipped_payload_byte_is_refused(
    practice: Kit, alice: Subject, challenge_token: str
) -> None:
    prefix, payload, tag = parts(challenge_token)
    raw = unb64(payload)
    for index in range(len(raw)):
        for mask in (0x01, 0x20, 0x80):
            changed = raw[:index] + bytes([raw[index] ^ mask]) + raw[index + 1 :]
            token = f"{prefix}.{b64(changed)}.{tag}"
            assert refused(practice, alice, token) is InvalidFlowToken, (index, mask)


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param({"t": "complete"}, id="step-complete"),
        pytest.param({"t": "complete", "m": "2026-01-01T00:01:00+00:00", "k": "totp"}, id="mfa"),
        pytest.param({"r": False, "t": "complete"}, id="not-recovered"),
        pytest.param({"e": "2099-01-01T00:00:00+00:00"}, id="expiry"),
        pytest.param({"s": "u-bob"}, id="subject"),
        pytest.param({"b": "ab" * 51}, id="binding"),
        pytest.param({"c": None}, id="challenge"),
        pytest.param({"n": 99}, id="seq"),
    ],
)
def test_rewritten_payload_under_the_old_mac_is_refused(
    practice: Kit, alice: Subject, challenge_token: str, edit: dict[str, Any]
) -> None:
    body = payload_of(challenge_token)
    body.update(edit)
    forged = with_payload(challenge_token, body)
    assert forged != challenge_token
    assert refused(practice, alice, forged) is InvalidFlowToken
    with pytest.raises(InvalidFlowToken):
        practice.flow.session_status(alice, forged, last_activity_at=practice.clock.now())


def test_mac_of_a_complete_token_does_not_sign_another_payload(
    practice: Kit, alice: Subject, clock: FakeClock
) -> None:
    complete, _, _, _ = new_user(practice, alice)
    pending, _ = practice.flow.start(alice)
    spliced = f"{parts(pending)[0]}.{parts(pending)[1]}.{parts(complete)[2]}"
    assert refused(practice, alice, spliced) is InvalidFlowToken
    spliced = f"{parts(complete)[0]}.{parts(complete)[1]}.{parts(pending)[2]}"
    assert refused(practice, alice, spliced) is InvalidFlowToken


def malformed_tokens(token: str) -> Iterator[tuple[str, object]]:
    prefix, payload, tag = parts(token)
    yield "empty", ""
    yield "prefix only", "mfa1"
    yield "two dots", "mfa1.."
    for cut in (1, 5, len(token) // 2, len(token) - 1):
        yield f"truncated to {cut}", token[:cut]
    yield "mac dropped", f"{prefix}.{payload}"
    yield "mac empty", f"{prefix}.{payload}."
    yield "payload empty", f"{prefix}..{tag}"
    yield "extra dot at end", token + "."
    yield "extra part", f"{token}.{tag}"
    yield "extra dot inside", f"{prefix}.{payload[:10]}.{payload[10:]}.{tag}"
    yield "wrong prefix", f"mfa2.{payload}.{tag}"
    yield "upper-case prefix", f"MFA1.{payload}.{tag}"
    yield "no prefix", f"{payload}.{tag}"
    yield "swapped parts", f"{prefix}.{tag}.{payload}"
    yield "one-char payload", f"{prefix}.A.{tag}"
    yield "non-ascii payload", f"{prefix}.{payload}\u00e9.{tag}"
    yield "json payload in clear", f"{prefix}.{unb64(payload).decode()}.{tag}"
    yield "5000 characters", f"{prefix}.{'A' * 4990}.{tag}"
    yield "4097 characters", f"{prefix}.{'A' * (4097 - len(prefix) - len(tag) - 2)}.{tag}"
    yield "None", None
    yield "bytes", token.encode()
    yield "int", 5
    yield "list", [prefix, payload, tag]


def test_malformed_tokens_are_refused_with_a_typed_error(
    practice: Kit, alice: Subject, challenge_token: str
) -> None:
    for name, bad in malformed_tokens(challenge_token):
        error = refused(practice, alice, bad)
        assert error is InvalidFlowToken, name
        assert issubclass(error, FlowError)
        # Every step refuses it the same way before doing anything.
        with pytest.raises(InvalidFlowToken):
            practice.flow.verify(alice, bad, "123456")  # type: ignore[arg-type]
        with pytest.raises(InvalidFlowToken):
            practice.flow.enroll(alice, bad, "totp")  # type: ignore[arg-type]
    assert practice.mfa.lock_state(alice).failures == 0


def test_malformed_subject_or_binding_is_an_invalid_type(
    practice: Kit, alice: Subject, challenge_token: str
) -> None:
    with pytest.raises(InvalidType):
        practice.flow.load("u-alice", challenge_token)  # type: ignore[arg-type]
    with pytest.raises(InvalidType):
        practice.flow.load(alice, challenge_token, binding=5)  # type: ignore[arg-type]
    with pytest.raises(InvalidType):
        practice.flow.load(alice, challenge_token, binding="x" * 513)
    assert issubclass(InvalidType, MFAError)


# ------------------------------------------------------------------------------------------
# swapping: another subject, session or keyring
# ------------------------------------------------------------------------------------------
def test_alices_token_is_refused_for_bob(practice: Kit, alice: Subject, bob: Subject) -> None:
    complete, _, _, _ = new_user(practice, alice)
    pending, _, _ = challenge_totp(practice, alice)
    for token in (complete, pending):
        assert refused(practice, bob, token) is InvalidFlowToken
        with pytest.raises(InvalidFlowToken):
            practice.flow.verify(bob, token, "123456")
        with pytest.raises(InvalidFlowToken):
            practice.flow.session_status(bob, token, last_activity_at=practice.clock.now())
    # A same-id subject in another shape is the same subject: ids are the identity.
    assert practice.flow.load(Subject(id=alice.id), complete).complete


def test_token_bound_to_one_session_is_refused_in_another(
    practice: Kit, alice: Subject, clock: FakeClock
) -> None:
    token, state = practice.flow.start(alice, binding="sess-A")
    assert state.binding
    assert "sess-A" not in state.binding
    assert practice.flow.load(alice, token, binding="sess-A") == state
    for other in ("sess-B", "", "sess-a", "sess-A "):
        assert refused(practice, alice, token, binding=other) is InvalidFlowToken, other
    # and an unbound token is refused with a binding.
    unbound, _ = practice.flow.start(alice)
    assert refused(practice, alice, unbound, binding="sess-A") is InvalidFlowToken
    # The binding is kept across steps.
    token, state, _, _ = enroll_totp_in_flow(practice, alice, token, binding="sess-A")
    assert state.step is FlowStep.ENROLL_RECOVERY
    assert refused(practice, alice, token, binding="sess-B") is InvalidFlowToken
    with pytest.raises(InvalidFlowToken):
        practice.flow.enroll(alice, token, RecoveryPIN.setup(PIN), binding="sess-B")
    assert not [c for c in practice.mfa.credentials(alice) if c.factor == "recovery_pin"]


def test_token_signed_by_another_keyring_is_refused(
    practice: Kit, alice: Subject, clock: FakeClock, store: MemoryStore
) -> None:
    other = build_practice(clock, store, Keyring.ephemeral())
    foreign, state = other.flow.start(alice)
    assert state.step is FlowStep.ENROLL
    assert refused(practice, alice, foreign) is InvalidFlowToken
    with pytest.raises(InvalidFlowToken):
        practice.flow.enroll(alice, foreign, "totp")
    mine, _ = practice.flow.start(alice)
    assert refused(other, alice, mine) is InvalidFlowToken


# ------------------------------------------------------------------------------------------
# replay
# ------------------------------------------------------------------------------------------
def test_older_tokens_replayed_after_completion_never_go_forward(
    practice: Kit, alice: Subject, clock: FakeClock
) -> None:
    _, _, enrollment, _ = new_user(practice, alice)
    at_challenge, _ = practice.flow.start(alice)
    opened, challenge = practice.flow.challenge(alice, at_challenge, "totp")
    done, state = practice.flow.verify(alice, opened, code_of(enrollment, clock))
    assert state.complete

    clock.advance(30)
    for old in (at_challenge, opened):
        replayed = practice.flow.load(alice, old)
        assert replayed.step is FlowStep.CHALLENGE
        assert replayed.mfa_at is None
        with pytest.raises(FlowStepError):
            practice.flow.session_status(alice, old, last_activity_at=clock.now())
    # The used challenge cannot verify again, even with the next fresh code.
    with pytest.raises(ChallengeNotFound):
        practice.flow.verify(alice, opened, code_of(enrollment, clock))
    # The token from before the challenge has nothing to verify against.
    with pytest.raises(FlowStepError):
        practice.flow.verify(alice, at_challenge, code_of(enrollment, clock))
    assert practice.flow.load(alice, opened).challenge_id == challenge.id
    assert practice.flow.load(alice, done) == state


def test_a_complete_token_does_not_skip_the_next_sign_in(
    practice: Kit, alice: Subject, clock: FakeClock
) -> None:
    complete, first, _, _ = new_user(practice, alice)
    _, state = practice.flow.start(alice)
    assert state.step is FlowStep.CHALLENGE
    assert state.mfa_at is None
    assert state.flow_id != first.flow_id
    # The complete token of the previous sign-in is no input to any step of this one.
    for step in (
        lambda: practice.flow.challenge(alice, complete, "totp"),
        lambda: practice.flow.verify(alice, complete, "123456"),
        lambda: practice.flow.review_done(alice, complete),
        lambda: practice.flow.enroll(alice, complete, "totp"),
    ):
        with pytest.raises(FlowStepError):
            step()


def test_the_token_of_a_previous_challenge_cannot_verify_a_new_one(
    practice: Kit, alice: Subject, clock: FakeClock
) -> None:
    token, _ = practice.flow.start(alice)
    token, enrollment = practice.flow.enroll(alice, token, SMSOTP.setup(PHONE_TYPED, "AU"))
    assert isinstance(enrollment, CodeEnrollment)
    credential = practice.mfa.confirm(alice, enrollment.id, practice.outbox.last_code(PHONE_E164))
    token, _ = practice.flow.enrolled(alice, token, credential)
    set_pin_in_flow(practice, alice, token)

    clock.advance(60)
    at_challenge, _ = practice.flow.start(alice)
    first, first_challenge = practice.flow.challenge(alice, at_challenge, "sms")
    first_code = practice.outbox.last_code(PHONE_E164)
    second, second_challenge = practice.flow.challenge(alice, at_challenge, "sms")
    second_code = practice.outbox.last_code(PHONE_E164)
    assert first_challenge.id != second_challenge.id
    assert first_code != second_code  # a 1-in-a-million clash would void this test

    with pytest.raises(InvalidCode):
        practice.flow.verify(alice, first, second_code)
    with pytest.raises(InvalidCode):
        practice.flow.verify(alice, second, first_code)
    token, state = practice.flow.verify(alice, second, second_code)
    assert_complete_with_possession(practice, state)
    # And the second token, its challenge used, cannot be replayed with its own code.
    with pytest.raises(ChallengeNotFound):
        practice.flow.verify(alice, second, second_code)


# ------------------------------------------------------------------------------------------
# age
# ------------------------------------------------------------------------------------------
def test_pending_token_lives_ten_minutes_to_the_microsecond(
    practice: Kit, alice: Subject, clock: FakeClock
) -> None:
    _, _, enrollment, _ = new_user(practice, alice)
    token, state, _ = challenge_totp(practice, alice)
    assert state.expires_at == state.started_at + TEN_MINUTES
    clock.set(state.expires_at - MICROSECOND)
    assert practice.flow.load(alice, token) == state
    clock.set(state.expires_at)
    assert refused(practice, alice, token) is FlowExpired
    with pytest.raises(FlowExpired):
        practice.flow.verify(alice, token, code_of(enrollment, clock))
    with pytest.raises(FlowExpired):
        practice.flow.challenge(alice, token, "totp")
    # Refused before any attempt was charged.
    assert practice.mfa.lock_state(alice).failures == 0


def test_every_pending_step_lives_ten_minutes(
    practice: Kit, alice: Subject, clock: FakeClock
) -> None:
    token, state = practice.flow.start(alice)
    assert state.expires_at - clock.now() == TEN_MINUTES
    clock.advance(minutes=9)
    token, state, _, _ = enroll_totp_in_flow(practice, alice, token)
    assert state.step is FlowStep.ENROLL_RECOVERY
    assert state.expires_at == clock.now() + TEN_MINUTES
    clock.advance(TEN_MINUTES)
    with pytest.raises(FlowExpired):
        set_pin_in_flow(practice, alice, token)


def test_complete_token_lives_the_session_lifetime(
    practice: Kit, alice: Subject, clock: FakeClock
) -> None:
    _, _, enrollment, _ = new_user(practice, alice)
    token, state = sign_in_with_totp(practice, alice, enrollment)
    assert state.mfa_at is not None
    assert practice.mfa.evaluate(alice).session.lifetime == DAY
    assert state.expires_at == state.mfa_at + DAY
    clock.set(state.expires_at - MICROSECOND)
    assert practice.flow.load(alice, token) == state
    clock.set(state.expires_at)
    assert refused(practice, alice, token) is FlowExpired
    with pytest.raises(FlowExpired):
        practice.flow.session_status(alice, token, last_activity_at=clock.now())


def test_session_status_idle_timeout_and_lifetime(
    practice: Kit, alice: Subject, clock: FakeClock
) -> None:
    _, _, enrollment, _ = new_user(practice, alice)
    token, state = sign_in_with_totp(practice, alice, enrollment)
    assert state.mfa_at is not None
    activity = clock.now()
    clock.advance(minutes=14, seconds=59)
    status = practice.flow.session_status(alice, token, last_activity_at=activity)
    assert status.valid
    assert status.reason == "valid"
    assert status.idle_expires_at == activity + dt.timedelta(minutes=15)
    assert status.expires_at == state.mfa_at + DAY
    clock.advance(1)
    status = practice.flow.session_status(alice, token, last_activity_at=activity)
    assert not status.valid
    assert status.reason == "idle"

    # Active all day: valid until the lifetime ends, then the token itself has expired.
    clock.set(state.mfa_at + DAY - dt.timedelta(seconds=1))
    status = practice.flow.session_status(alice, token, last_activity_at=clock.now())
    assert status.valid
    assert status.expires_at == state.mfa_at + DAY
    clock.advance(1)
    with pytest.raises(FlowExpired):
        practice.flow.session_status(alice, token, last_activity_at=clock.now())


def test_session_status_refuses_a_pending_sign_in(
    practice: Kit, alice: Subject, clock: FakeClock
) -> None:
    new_user(practice, alice)
    token, _, _ = challenge_totp(practice, alice)
    with pytest.raises(FlowStepError):
        practice.flow.session_status(alice, token, last_activity_at=clock.now())


# ------------------------------------------------------------------------------------------
# ids only (SECURITY.md 31)
# ------------------------------------------------------------------------------------------
def assert_ids_only(token: str, subject: Subject, secrets: set[str]) -> None:
    body = payload_of(token)
    assert set(body) == PAYLOAD_KEYS
    assert body["s"] == subject.id
    assert str(body["f"]).startswith("fl_")
    assert body["c"] is None or str(body["c"]).startswith("ch_")
    assert body["k"] in (None, "totp", "sms", "email", "secret_questions", "recovery_pin")
    # A keyed hash of the host's binding value (the keyring's tag, hex), never the value.
    assert body["b"] == "" or (len(body["b"]) >= 64 and set(body["b"]) <= set(string.hexdigits))
    assert isinstance(body["r"], bool)
    assert isinstance(body["n"], int)
    for key in "aem":
        assert body[key] is None or dt.datetime.fromisoformat(body[key]).tzinfo is not None
    text = unb64(parts(token)[1]).decode()
    for secret in secrets:
        assert secret not in text, secret


def test_tokens_at_every_step_carry_ids_and_times_only(
    practice: Kit, alice: Subject, clock: FakeClock
) -> None:
    binding = "session-id-7f3a9c"
    tokens: list[str] = []
    token, _ = practice.flow.start(alice, binding=binding)
    tokens.append(token)
    token, enrollment = practice.flow.enroll(alice, token, "totp", binding=binding)
    assert isinstance(enrollment, TOTPEnrollment)
    tokens.append(token)
    credential = practice.mfa.confirm(alice, enrollment.id, code_of(enrollment, clock))
    token, _ = practice.flow.enrolled(alice, token, credential, binding=binding)
    tokens.append(token)
    token, _ = set_pin_in_flow(practice, alice, token, binding=binding)
    tokens.append(token)
    clock.advance(30)
    token, _ = practice.flow.start(alice, binding=binding)
    tokens.append(token)
    token, _ = practice.flow.challenge(alice, token, "totp", binding=binding)
    tokens.append(token)
    codes = {code_of(enrollment, clock)}
    token, _ = practice.flow.verify(alice, token, code_of(enrollment, clock), binding=binding)
    tokens.append(token)
    # recovery, then an SMS enrolment (a code is sent) and its sign-in
    token, _ = practice.flow.start(alice, binding=binding)
    token, _ = practice.flow.challenge(alice, token, "recovery_pin", binding=binding)
    tokens.append(token)
    token, _ = practice.flow.verify(alice, token, PIN, binding=binding)
    tokens.append(token)
    token, sms = practice.flow.enroll(
        alice, token, SMSOTP.setup(PHONE_TYPED, "AU"), binding=binding
    )
    assert isinstance(sms, CodeEnrollment)
    tokens.append(token)
    codes.add(practice.outbox.last_code(PHONE_E164))
    sms_credential = practice.mfa.confirm(alice, sms.id, practice.outbox.last_code(PHONE_E164))
    token, state = practice.flow.enrolled(alice, token, sms_credential, binding=binding)
    assert state.complete
    tokens.append(token)
    clock.advance(60)
    token, _ = practice.flow.start(alice, binding=binding)
    token, _ = practice.flow.challenge(alice, token, "sms", binding=binding)
    tokens.append(token)
    codes.add(practice.outbox.last_code(PHONE_E164))
    token, _ = practice.flow.verify(
        alice, token, practice.outbox.last_code(PHONE_E164), binding=binding
    )
    tokens.append(token)

    secrets = {
        enrollment.secret,
        enrollment.uri,
        PIN,
        PASSWORD,
        binding,
        PHONE_E164,
        PHONE_E164.lstrip("+"),
        "412345678",
        *codes,
    }
    assert len(codes) >= 3  # the app's code and the two texted ones
    assert len(tokens) == 13
    for each in tokens:
        assert_ids_only(each, alice, secrets)


def test_register_tokens_carry_ids_only(register: Kit, alice: Subject, clock: FakeClock) -> None:
    register.mfa.enroll(alice, SecretQuestions.setup(ANSWERS))
    clock.set(dt.datetime(2026, 4, 1, tzinfo=dt.timezone.utc))
    tokens: list[str] = []
    token, _ = register.flow.start(alice)
    tokens.append(token)
    token, _ = register.flow.review_done(alice, token)
    tokens.append(token)
    token, _ = register.flow.challenge(alice, token, "email")
    tokens.append(token)
    code = register.outbox.last_code("alice@example.com")
    token, _ = register.flow.verify(alice, token, code)
    tokens.append(token)
    token, _ = register.flow.start(alice)
    token, _ = register.flow.review_done(alice, token)
    token, challenge = register.flow.challenge(alice, token, "secret_questions")
    tokens.append(token)
    token, _ = register.flow.answer(alice, token, {q: ANSWERS[q] for q in challenge.prompts})
    tokens.append(token)
    secrets = {code, "alice@example.com", *ANSWERS.values(), *CATALOGUE.values()}
    for each in tokens:
        assert_ids_only(each, alice, secrets)


# ------------------------------------------------------------------------------------------
# no enrolment while the second step is pending (SECURITY.md 35)
# ------------------------------------------------------------------------------------------
def test_enrolment_is_refused_at_the_challenge_step(
    practice: Kit, alice: Subject, clock: FakeClock
) -> None:
    new_user(practice, alice)
    token, _ = practice.flow.start(alice)
    before = practice.mfa.credentials(alice, include_pending=True)
    for setup in ("totp", TOTP.setup(label="Attacker"), RecoveryPIN.setup("739264")):
        with pytest.raises(FlowStepError):
            practice.flow.enroll(alice, token, setup)
    with pytest.raises(FlowStepError):
        practice.flow.enroll(alice, token, SMSOTP.setup(PHONE_TYPED, "AU"))
    opened, _ = practice.flow.challenge(alice, token, "totp")
    with pytest.raises(FlowStepError):
        practice.flow.enroll(alice, opened, "totp")
    assert practice.mfa.credentials(alice, include_pending=True) == before
    assert len(practice.outbox) == 0
    # Nor can an active credential be announced as just enrolled.
    with pytest.raises(FlowStepError):
        practice.flow.enrolled(alice, token, before[0])


def test_enrolled_refuses_other_subjects_pending_and_non_credentials(
    practice: Kit, alice: Subject, bob: Subject, clock: FakeClock
) -> None:
    _, _, _, bobs = new_user(practice, bob)
    token, state = practice.flow.start(alice)
    assert state.step is FlowStep.ENROLL
    with pytest.raises(FlowStepError):
        practice.flow.enrolled(alice, token, bobs)
    # Bob's credential relabelled as Alice's: the stored record decides.
    with pytest.raises(FlowStepError):
        practice.flow.enrolled(alice, token, dataclasses.replace(bobs, subject_id=alice.id))
    # Alice's own enrolment, not yet confirmed.
    token, enrollment = practice.flow.enroll(alice, token, "totp")
    assert isinstance(enrollment, TOTPEnrollment)
    with pytest.raises(FlowStepError):
        practice.flow.enrolled(alice, token, enrollment.credential)
    with pytest.raises(InvalidType):
        practice.flow.enrolled(alice, token, enrollment.id)  # type: ignore[arg-type]
    # The token now names the credential being enrolled, and nothing else changed.
    assert practice.flow.load(alice, token) == dataclasses.replace(state, pending_id=enrollment.id)


def test_challenge_only_for_factors_offered(
    practice: Kit, alice: Subject, bob: Subject, clock: FakeClock
) -> None:
    # Alice: an app only (the PIN step abandoned), so no SMS and no PIN to offer.
    token, _ = practice.flow.start(alice)
    enroll_totp_in_flow(practice, alice, token)
    clock.advance(30)
    token, state = practice.flow.start(alice)
    assert state.step is FlowStep.CHALLENGE
    for factor in ("sms", "recovery_pin", "email", "nope"):
        with pytest.raises(FlowStepError):
            practice.flow.challenge(alice, token, factor)
    assert len(practice.outbox) == 0
    # Not at the challenge step: refused whatever the factor.
    enrol_token, _ = practice.flow.start(bob)
    with pytest.raises(FlowStepError):
        practice.flow.challenge(bob, enrol_token, "totp")


# ------------------------------------------------------------------------------------------
# a password reset never yields an MFA-verified session (SECURITY.md 33)
# ------------------------------------------------------------------------------------------
def test_only_a_verified_factor_completes_a_subject_who_must_do_mfa(
    practice: Kit, alice: Subject, clock: FakeClock
) -> None:
    _, _, enrollment, _ = new_user(practice, alice)
    # What a host does after a password reset: start a flow. It asks for the factor.
    token, state = practice.flow.start(alice)
    assert state.step is FlowStep.CHALLENGE
    assert state.mfa_at is None
    assert practice.mfa.evaluate(alice).required
    # The flow's whole public surface: no method builds a complete state by itself.
    public = {name for name in dir(SignInFlow) if not name.startswith("_")}
    assert public == PUBLIC_METHODS
    token, _ = practice.flow.challenge(alice, token, "totp")
    assert practice.flow.load(alice, token).mfa_at is None
    token, state = practice.flow.verify(alice, token, code_of(enrollment, clock))
    assert state.mfa_at == clock.now()
    assert_complete_with_possession(practice, state)


# ------------------------------------------------------------------------------------------
# wrong codes inside the flow
# ------------------------------------------------------------------------------------------
def test_wrong_code_propagates_and_the_token_still_works(
    practice: Kit, alice: Subject, clock: FakeClock
) -> None:
    _, _, enrollment, _ = new_user(practice, alice)
    token, state, _ = challenge_totp(practice, alice)
    with pytest.raises(InvalidCode):
        practice.flow.verify(alice, token, wrong_code(enrollment, clock))
    assert practice.flow.load(alice, token) == state
    assert practice.mfa.lock_state(alice).failures == 1
    token, state = practice.flow.verify(alice, token, code_of(enrollment, clock))
    assert_complete_with_possession(practice, state)
    assert practice.mfa.lock_state(alice).failures == 0


def test_lockout_applies_inside_the_flow(practice: Kit, alice: Subject, clock: FakeClock) -> None:
    _, _, enrollment, _ = new_user(practice, alice)
    at_challenge, _ = practice.flow.start(alice)
    token, _ = practice.flow.challenge(alice, at_challenge, "totp")
    for _ in range(5):
        with pytest.raises(InvalidCode):
            practice.flow.verify(alice, token, wrong_code(enrollment, clock))
    with pytest.raises(LockedOut):
        practice.flow.verify(alice, token, code_of(enrollment, clock))
    # The lock covers the recovery PIN too (one budget per subject).
    pin_token, _ = practice.flow.challenge(alice, at_challenge, "recovery_pin")
    with pytest.raises(LockedOut):
        practice.flow.verify(alice, pin_token, PIN)
    locked_until = practice.mfa.lock_state(alice).locked_until
    assert locked_until is not None
    clock.set(locked_until)
    token, _ = practice.flow.challenge(alice, at_challenge, "totp")
    token, state = practice.flow.verify(alice, token, code_of(enrollment, clock))
    assert_complete_with_possession(practice, state)


def test_wrong_pin_keeps_the_subject_at_the_challenge(
    practice: Kit, alice: Subject, clock: FakeClock
) -> None:
    new_user(practice, alice)
    token, _ = practice.flow.start(alice)
    token, _ = practice.flow.challenge(alice, token, "recovery_pin")
    with pytest.raises(InvalidCode):
        practice.flow.verify(alice, token, WRONG_PIN)
    state = practice.flow.load(alice, token)
    assert state.step is FlowStep.CHALLENGE
    assert not state.recovered


# ------------------------------------------------------------------------------------------
# regressions: bugs found by this module, fixed
# ------------------------------------------------------------------------------------------
def test_recovery_cannot_be_finished_with_the_old_credential(
    practice: Kit, alice: Subject, clock: FakeClock
) -> None:
    _, _, _, old_credential = new_user(practice, alice)
    token, _ = practice.flow.start(alice)
    token, _ = practice.flow.challenge(alice, token, "recovery_pin")
    token, state = practice.flow.verify(alice, token, PIN)
    assert state.recovered
    assert state.step is FlowStep.ENROLL
    # Password + PIN only (both knowledge): this must not become an MFA-verified session.
    with pytest.raises(FlowStepError):
        practice.flow.enrolled(alice, token, old_credential)


def test_replayed_enrol_token_cannot_complete_with_an_existing_credential(
    practice: Kit, alice: Subject, clock: FakeClock
) -> None:
    first, _ = practice.flow.start(alice)
    _, _, _, credential = enroll_totp_in_flow(practice, alice, first)
    clock.advance(minutes=5)
    # Replayed five minutes later (still within its ten minutes).
    with pytest.raises(FlowStepError):
        practice.flow.enrolled(alice, first, credential)


def test_replayed_enrol_token_cannot_enrol_once_a_factor_exists(
    practice: Kit, alice: Subject, clock: FakeClock
) -> None:
    first, _ = practice.flow.start(alice)
    enroll_totp_in_flow(practice, alice, first)
    clock.advance(minutes=5)
    # The subject's real state now: a new sign-in is at the challenge step.
    assert practice.flow.start(alice)[1].step is FlowStep.CHALLENGE
    with pytest.raises(FlowStepError):
        practice.flow.enroll(alice, first, TOTP.setup(label="Attacker"))


def test_edited_token_strings_are_refused_even_when_the_bytes_decode_the_same(
    practice: Kit, alice: Subject, challenge_token: str
) -> None:
    prefix, payload, tag = parts(challenge_token)
    for edited in (
        f"{prefix}.{payload}!!!!.{tag}",
        f"{prefix}.{payload[:8]}\n\n\n\n{payload[8:]}.{tag}",
        f"{prefix}.{payload}.{tag}====",
        f"{prefix}.{payload}=.{tag}=",
    ):
        assert edited != challenge_token
        assert refused(practice, alice, edited) is InvalidFlowToken


def test_bound_token_survives_a_key_rotation_like_an_unbound_one(
    alice: Subject, clock: FakeClock, store: MemoryStore
) -> None:
    old_key, new_key = bytes(range(32)), bytes(range(32, 64))
    before = build_practice(clock, store, Keyring([("k1", old_key)]))
    after = build_practice(clock, store, Keyring([("k2", new_key), ("k1", old_key)]))
    unbound, state = before.flow.start(alice)
    assert after.flow.load(alice, unbound) == state
    bound, state = before.flow.start(alice, binding="sess-A")
    assert after.flow.load(alice, bound, binding="sess-A") == state
