"""Malformed input at every public entry point (SECURITY.md 11, 22, 36, 38; DESIGN.md 4).

For each case of the table the test checks three things:

1. the call raises the *specific* :class:`MFAError` subclass expected (exact class, not just
   any subclass): InvalidType for wrong types, MalformedCode for bad codes, InvalidInput for
   bad ids and labels, InvalidSecret for bad secrets, ChallengeNotFound / CredentialNotFound
   for unknown or foreign ids, ConfigurationError for unknown factors;
2. nothing changed: the store's records, both subjects' lock states, the audit events and the
   clock are exactly as before;
3. neither ``str(exc)``, ``repr(exc)`` nor ``public_message`` contains the submitted value
   when it is long enough to matter, nor any real code or secret of the world.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import re
import unicodedata
from collections.abc import Callable
from typing import Any, Final

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from mfakit import MFA, EventType, Keyring, Lockout, LockState, Subject, Verification
from mfakit.exceptions import (
    ChallengeNotFound,
    ConfigurationError,
    CredentialNotFound,
    InvalidCode,
    InvalidInput,
    InvalidSecret,
    InvalidType,
    MalformedCode,
    MFAError,
    ReplayedCode,
)
from mfakit.factors import TOTP, TOTPSetup
from mfakit.testing import FakeClock, ListSink, MemoryStore, totp_now

PROPERTY: Final = settings(
    database=None, deadline=None, max_examples=200, suppress_health_check=[HealthCheck.too_slow]
)


def digits_from(zero: int) -> dict[int, int]:
    """Translation table from ASCII digits to the ten digits starting at code point ``zero``."""
    return str.maketrans("0123456789", "".join(chr(zero + i) for i in range(10)))


ARABIC_INDIC: Final = digits_from(0x0660)
PERSIAN: Final = digits_from(0x06F0)  # extended Arabic-Indic
DEVANAGARI: Final = digits_from(0x0966)
FULL_WIDTH: Final = digits_from(0xFF10)
SUPERSCRIPT: Final = str.maketrans(
    "0123456789", "\u2070\u00b9\u00b2\u00b3" + "".join(chr(0x2074 + i) for i in range(6))
)


def full_width_text(text: str) -> str:
    """The full-width forms of printable ASCII (U+FF01..U+FF5E): what NFKC folds back."""
    return "".join(chr(ord(c) + 0xFEE0) for c in text)


KEY_TEXT: Final = base64.urlsafe_b64encode(bytes(range(32))).rstrip(b"=").decode()
SHORT_KEY_TEXT: Final = base64.urlsafe_b64encode(bytes(range(31))).rstrip(b"=").decode()


# ------------------------------------------------------------------------------------------
# the world every case runs against
# ------------------------------------------------------------------------------------------
@dataclasses.dataclass
class World:
    """Two enrolled subjects, open challenges, a used one and a pending enrolment."""

    mfa: MFA
    store: MemoryStore
    clock: FakeClock
    events: ListSink
    alice: Subject
    bob: Subject
    alice_secret: str
    bob_secret: str
    pending_secret: str
    alice_cred: str
    bob_cred: str
    alice_pending: str
    alice_ch: str
    bob_ch: str
    used_ch: str

    @property
    def api(self) -> Any:
        """The facade, untyped: the cases deliberately pass what the signatures forbid."""
        return self.mfa

    def code(self, secret: str, offset: int = 0) -> str:
        return totp_now(secret, self.clock.now(), offset=offset)

    @property
    def alice_code(self) -> str:
        return self.code(self.alice_secret)

    @property
    def pending_code(self) -> str:
        return self.code(self.pending_secret)

    def secrets(self) -> list[str]:
        """Every real code and secret that must never appear in a message."""
        codes = [
            self.code(s, k)
            for s in (self.alice_secret, self.bob_secret, self.pending_secret)
            for k in (-1, 0, 1)
        ]
        return [*codes, self.alice_secret, self.bob_secret, self.pending_secret]

    def snapshot(self) -> tuple[object, ...]:
        return (
            self.store.dump(),
            self.store.get_lock_state(self.alice.id),
            self.store.get_lock_state(self.bob.id),
            self.events.events,
            self.clock.now(),
        )


def build_world(lockout: Lockout | None = None) -> World:
    clock = FakeClock()
    store = MemoryStore()
    events = ListSink()
    mfa = MFA(
        store=store,
        keyring=Keyring.ephemeral(),
        factors=[TOTP(issuer="ACME")],
        clock=clock,
        events=events,
        lockout=lockout,
    )
    alice = Subject(id="alice", username="alice@example.com", email="alice@example.com")
    bob = Subject(id="bob", tenant="t1")
    alice_enrollment = mfa.enroll(alice, TOTP.setup(label="Phone"))
    mfa.confirm(alice, alice_enrollment.id, totp_now(alice_enrollment.secret, clock.now()))
    bob_enrollment = mfa.enroll(bob, "totp")
    mfa.confirm(bob, bob_enrollment.id, totp_now(bob_enrollment.secret, clock.now()))
    clock.advance(30)
    used = mfa.challenge(alice, "totp")
    mfa.verify(alice, used.id, totp_now(alice_enrollment.secret, clock.now()))
    clock.advance(30)
    pending = mfa.enroll(alice, TOTP.setup(label="Spare"))
    return World(
        mfa=mfa,
        store=store,
        clock=clock,
        events=events,
        alice=alice,
        bob=bob,
        alice_secret=alice_enrollment.secret,
        bob_secret=bob_enrollment.secret,
        pending_secret=pending.secret,
        alice_cred=alice_enrollment.id,
        bob_cred=bob_enrollment.id,
        alice_pending=pending.id,
        alice_ch=mfa.challenge(alice, "totp").id,
        bob_ch=mfa.challenge(bob, "totp").id,
        used_ch=used.id,
    )


# ------------------------------------------------------------------------------------------
# the table
# ------------------------------------------------------------------------------------------
Value = Callable[[World], object]
Call = Callable[[World, object], object]


@dataclasses.dataclass(frozen=True)
class Case:
    expected: type[MFAError]
    value: Value
    call: Call


def const(value: object) -> Value:
    return lambda _w: value


def from_code(transform: Callable[[str], object], which: str) -> Value:
    """A value derived from the endpoint's real code (alice's, or her pending enrolment's)."""
    return lambda w: transform(w.alice_code if which == "verify" else w.pending_code)


# entry points ------------------------------------------------------------------------------
def verify_code(w: World, v: object) -> object:
    return w.api.verify(w.alice, w.alice_ch, v)


def verify_totp_code(w: World, v: object) -> object:
    return w.api.verify_totp(w.alice, v)


def verify_totp_factor(w: World, v: object) -> object:
    return w.api.verify_totp(w.alice, w.alice_code, factor=v)


def confirm_code(w: World, v: object) -> object:
    return w.api.confirm(w.alice, w.alice_pending, v)


def verify_challenge(w: World, v: object) -> object:
    return w.api.verify(w.alice, v, w.alice_code)


def remove_credential(w: World, v: object) -> object:
    return w.api.remove(w.alice, v)


def confirm_credential(w: World, v: object) -> object:
    return w.api.confirm(w.alice, v, w.pending_code)


def challenge_credential(w: World, v: object) -> object:
    return w.api.challenge(w.alice, "totp", credential_id=v)


def challenge_factor(w: World, v: object) -> object:
    return w.api.challenge(w.alice, v)


def enroll_setup(w: World, v: object) -> object:
    return w.api.enroll(w.alice, v)


def setup_label(_w: World, v: object) -> object:
    return TOTP.setup(label=v)  # type: ignore[arg-type]


def setup_secret(_w: World, v: object) -> object:
    return TOTP.setup(secret=v)  # type: ignore[arg-type]


def unlock_actor(w: World, v: object) -> object:
    return w.api.unlock(w.alice, actor=v)


def keyring_text(_w: World, v: object) -> object:
    return Keyring.from_string(v)  # type: ignore[arg-type]


def clock_advance(w: World, v: object) -> object:
    return w.clock.advance(v)  # type: ignore[arg-type]


def build_subject(_w: World, v: object) -> object:
    assert isinstance(v, dict)
    return Subject(**v)


def build_totp(_w: World, v: object) -> object:
    assert isinstance(v, dict)
    return TOTP(**v)


def build_mfa(w: World, v: object) -> object:
    assert isinstance(v, dict)
    kwargs: dict[str, Any] = {"store": w.store, "keyring": Keyring.ephemeral()}
    kwargs.update(v)
    return MFA(**kwargs)


def subject_at(method: str) -> Call:
    """Call ``method`` with the value as the subject and otherwise valid arguments."""

    def call(w: World, v: object) -> object:
        api = w.api
        if method == "verify":
            return api.verify(v, w.alice_ch, w.alice_code)
        if method == "verify_totp":
            return api.verify_totp(v, w.alice_code)
        if method == "confirm":
            return api.confirm(v, w.alice_pending, w.pending_code)
        if method == "challenge":
            return api.challenge(v, "totp")
        if method == "enroll":
            return api.enroll(v, "totp")
        if method == "remove":
            return api.remove(v, w.alice_cred)
        if method == "credentials":
            return api.credentials(v)
        if method == "lock_state":
            return api.lock_state(v)
        assert method == "unlock"
        return api.unlock(v, actor="admin")

    return call


# case lists ---------------------------------------------------------------------------------
# (id, expected, transform of the real code) -- used for verify and, in part, for confirm
CODE_CASES: Final[list[tuple[str, type[MFAError], Callable[[str], object]]]] = [
    ("empty", MalformedCode, lambda _c: ""),
    ("space", MalformedCode, lambda _c: " "),
    ("spaces-only", MalformedCode, lambda _c: "      "),
    ("5-digits", MalformedCode, lambda _c: "12345"),
    ("7-digits", MalformedCode, lambda _c: "1234567"),
    ("letter", MalformedCode, lambda _c: "12345a"),
    ("arabic-indic", MalformedCode, lambda _c: "123456".translate(ARABIC_INDIC)),
    ("persian", MalformedCode, lambda _c: "123456".translate(PERSIAN)),
    ("devanagari", MalformedCode, lambda _c: "123456".translate(DEVANAGARI)),
    ("nul-inside", MalformedCode, lambda _c: "123\x00456"),
    ("newline-inside", MalformedCode, lambda _c: "123\n456"),
    ("plus-sign", MalformedCode, lambda _c: "+123456"),
    ("exponent", MalformedCode, lambda _c: "1e5"),
    ("hex", MalformedCode, lambda _c: "0x1234"),
    ("8-digits-grouped", MalformedCode, lambda _c: "12 34 56 78"),
    ("decimal-point", MalformedCode, lambda _c: "123.456"),
    ("underscore", MalformedCode, lambda _c: "123_456"),
    ("65-chars", MalformedCode, lambda _c: "1" * 65),
    ("64-chars", MalformedCode, lambda _c: "1" * 64),
    ("million-chars", MalformedCode, lambda _c: "1" * 10**6),
    ("million-spaces-around-code", MalformedCode, lambda c: " " * 10**6 + c),
    (
        "emoji",
        MalformedCode,
        lambda _c: "\U0001f522" * 6,  # the "input numbers" emoji
    ),
    ("lone-surrogate", MalformedCode, lambda _c: "\ud800"),
    ("surrogates-6", MalformedCode, lambda _c: "\udfff" * 6),
    ("real-plus-digit", MalformedCode, lambda c: c + "0"),
    ("real-truncated", MalformedCode, lambda c: c[:5]),
    ("real-plus-sign", MalformedCode, lambda c: "+" + c),
    ("real-nul-inside", MalformedCode, lambda c: c[:3] + "\x00" + c[3:]),
    ("real-arabic-indic", MalformedCode, lambda c: c.translate(ARABIC_INDIC)),
    ("real-persian", MalformedCode, lambda c: c.translate(PERSIAN)),
    ("real-devanagari", MalformedCode, lambda c: c.translate(DEVANAGARI)),
    ("real-zero-width-space", MalformedCode, lambda c: c[:3] + "\u200b" + c[3:]),
    ("real-rtl-override", MalformedCode, lambda c: "\u202e" + c),
    ("None", InvalidType, lambda _c: None),
    ("int", InvalidType, lambda c: int(c)),
    ("float", InvalidType, lambda c: float(c)),
    ("bytes", InvalidType, lambda c: c.encode()),
    ("bytearray", InvalidType, lambda c: bytearray(c.encode())),
    ("list", InvalidType, lambda c: [c]),
    ("dict", InvalidType, lambda _c: {"code": 1}),
    ("True", InvalidType, lambda _c: True),
]
CONFIRM_CODE_IDS: Final = {
    "empty",
    "5-digits",
    "7-digits",
    "arabic-indic",
    "newline-inside",
    "million-chars",
    "real-plus-digit",
    "real-devanagari",
    "None",
    "int",
    "bytes",
    "list",
}

CHALLENGE_ID_CASES: Final[list[tuple[str, type[MFAError], Value]]] = [
    ("empty", InvalidInput, const("")),
    ("65-chars", InvalidInput, const("x" * 65)),
    ("path-traversal", InvalidInput, const("ch_../../etc")),
    ("non-ascii", InvalidInput, const("ch_\u00fc")),
    ("space", InvalidInput, const("ch_a b")),
    ("trailing-newline", InvalidInput, const("ch_abc\n")),
    ("nul", InvalidInput, const("ch_abc\x00")),
    ("sql", InvalidInput, const("ch_x' OR '1'='1")),
    ("None", InvalidType, const(None)),
    ("int", InvalidType, const(5)),
    ("bytes", InvalidType, const(b"ch_x")),
    ("list", InvalidType, lambda w: [w.alice_ch]),
    ("unknown", ChallengeNotFound, const("ch_doesnotexist")),
    ("bobs", ChallengeNotFound, lambda w: w.bob_ch),
    ("already-used", ChallengeNotFound, lambda w: w.used_ch),
    ("a-credential-id", ChallengeNotFound, lambda w: w.alice_cred),
]

CREDENTIAL_ID_CASES: Final[list[tuple[str, type[MFAError], Value]]] = [
    ("empty", InvalidInput, const("")),
    ("65-chars", InvalidInput, const("x" * 65)),
    ("path-traversal", InvalidInput, const("cr_../../etc")),
    ("non-ascii", InvalidInput, const("cr_\u00fc")),
    ("None", InvalidType, const(None)),
    ("int", InvalidType, const(5)),
    ("bytes", InvalidType, const(b"cr_x")),
    ("unknown", CredentialNotFound, const("cr_doesnotexist")),
    ("bobs", CredentialNotFound, lambda w: w.bob_cred),
    ("a-challenge-id", CredentialNotFound, lambda w: w.alice_ch),
]
CREDENTIAL_ENDPOINTS: Final[list[tuple[str, Call]]] = [
    ("remove", remove_credential),
    ("confirm", confirm_credential),
    ("challenge", challenge_credential),
]

SUBJECT_VALUES: Final[list[tuple[str, object]]] = [
    ("None", None),
    ("str", "alice"),
    ("dict", {"id": "alice"}),
]
SUBJECT_METHODS: Final = [
    "verify",
    "verify_totp",
    "confirm",
    "challenge",
    "enroll",
    "remove",
    "credentials",
    "lock_state",
    "unlock",
]

SUBJECT_FIELDS: Final[list[tuple[str, type[MFAError], dict[str, object]]]] = [
    ("id-empty", InvalidInput, {"id": ""}),
    ("id-blank", InvalidInput, {"id": " "}),
    ("id-256", InvalidInput, {"id": "x" * 256}),
    ("id-int", InvalidType, {"id": 5}),
    ("id-None", InvalidType, {"id": None}),
    ("id-newline", InvalidInput, {"id": "a\nb"}),
    ("email-header-injection", InvalidInput, {"id": "a", "email": "a@b\r\nBcc: x@y"}),
    ("email-255", InvalidInput, {"id": "a", "email": "a" * 243 + "@example.com"}),
    ("display-name-newline", InvalidInput, {"id": "a", "display_name": "x\n"}),
    ("display-name-line-separator", InvalidInput, {"id": "a", "display_name": "x\u2028y"}),
    ("username-del", InvalidInput, {"id": "a", "username": "bob\x7f"}),
    ("tenant-empty", InvalidInput, {"id": "a", "tenant": ""}),
    ("tenant-bytes", InvalidType, {"id": "a", "tenant": b"t1"}),
    ("kind-empty", InvalidInput, {"id": "a", "kind": ""}),
    ("kind-65", InvalidInput, {"id": "a", "kind": "k" * 65}),
    ("kind-None", InvalidType, {"id": "a", "kind": None}),
    ("attributes-list", InvalidType, {"id": "a", "attributes": [1]}),
    ("attributes-str", InvalidType, {"id": "a", "attributes": "admin"}),
]

FACTOR_CASES: Final[list[tuple[str, type[MFAError], object, Call]]] = [
    ("challenge-sms", ConfigurationError, "sms", challenge_factor),
    ("challenge-empty", ConfigurationError, "", challenge_factor),
    ("challenge-upper-case", ConfigurationError, "TOTP", challenge_factor),
    ("challenge-trailing-space", ConfigurationError, "totp ", challenge_factor),
    ("challenge-None", InvalidType, None, challenge_factor),
    ("challenge-int", InvalidType, 5, challenge_factor),
    ("challenge-list", InvalidType, ["totp"], challenge_factor),
    ("enroll-sms", ConfigurationError, "sms", enroll_setup),
    ("enroll-empty", ConfigurationError, "", enroll_setup),
    ("enroll-upper-case", ConfigurationError, "TOTP", enroll_setup),
    ("enroll-None", InvalidType, None, enroll_setup),
    ("enroll-int", InvalidType, 5, enroll_setup),
    ("enroll-bytes", InvalidType, b"totp", enroll_setup),
    ("enroll-dict", InvalidType, {"factor": "totp"}, enroll_setup),
    ("verify_totp-sms", ConfigurationError, "sms", verify_totp_factor),
    ("verify_totp-empty", ConfigurationError, "", verify_totp_factor),
    ("verify_totp-upper-case", ConfigurationError, "TOTP", verify_totp_factor),
    ("verify_totp-trailing-space", ConfigurationError, "totp ", verify_totp_factor),
    ("verify_totp-None", InvalidType, None, verify_totp_factor),
    ("verify_totp-int", InvalidType, 5, verify_totp_factor),
    ("verify_totp-bytes", InvalidType, b"totp", verify_totp_factor),
    ("verify_totp-list", InvalidType, ["totp"], verify_totp_factor),
    ("verify_totp-dict", InvalidType, {"totp": 1}, verify_totp_factor),
]

SETUP_CASES: Final[list[tuple[str, type[MFAError], object, Call]]] = [
    ("label-empty", InvalidInput, "", setup_label),
    ("label-blank", InvalidInput, "  ", setup_label),
    ("label-65", InvalidInput, "x" * 65, setup_label),
    ("label-newline", InvalidInput, "a\nb", setup_label),
    ("label-nul", InvalidInput, "a\x00b", setup_label),
    ("label-int", InvalidType, 5, setup_label),
    ("label-None", InvalidType, None, setup_label),
    ("label-bytes", InvalidType, b"Phone", setup_label),
    ("secret-empty", InvalidSecret, "", setup_secret),
    ("secret-only-padding", InvalidSecret, "========", setup_secret),
    ("secret-punctuation", InvalidSecret, "!!!!", setup_secret),
    ("secret-300-chars", InvalidSecret, "A" * 300, setup_secret),
    ("secret-digit-1", InvalidSecret, "JBSWY3DPEHPK3PX1JBSWY3DPEHPK3PXP", setup_secret),
    ("secret-digit-0", InvalidSecret, "JBSWY3DPEHPK3PX0JBSWY3DPEHPK3PXP", setup_secret),
    ("secret-digit-8", InvalidSecret, "JBSWY3DPEHPK3PX8JBSWY3DPEHPK3PXP", setup_secret),
    ("secret-80-bits", InvalidSecret, "JBSWY3DPEHPK3PXP", setup_secret),
    ("secret-impossible-length", InvalidSecret, "JBSWY3DPE", setup_secret),
    ("secret-full-width", InvalidSecret, full_width_text("JBSWY3DPEHPK3PXPJBSW"), setup_secret),
    ("secret-dotless-i", InvalidSecret, "JBSWY3DPEHPK3PXPJBSWY3DP\u0131", setup_secret),
    ("secret-int", InvalidType, 5, setup_secret),
    ("secret-bytes", InvalidType, b"JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", setup_secret),
]

MISC_CASES: Final[list[tuple[str, type[MFAError], object, Call]]] = [
    ("unlock-actor-None", InvalidType, None, unlock_actor),
    ("unlock-actor-int", InvalidType, 5, unlock_actor),
    ("keyring-empty", ConfigurationError, "", keyring_text),
    ("keyring-blank", ConfigurationError, "   ", keyring_text),
    ("keyring-no-colon", ConfigurationError, "nokey", keyring_text),
    ("keyring-no-key", ConfigurationError, "k:", keyring_text),
    ("keyring-no-id", ConfigurationError, ":" + KEY_TEXT, keyring_text),
    ("keyring-bad-base64", ConfigurationError, "k:!!!!", keyring_text),
    ("keyring-31-byte-key", ConfigurationError, "k:" + SHORT_KEY_TEXT, keyring_text),
    ("keyring-duplicate-id", ConfigurationError, f"k:{KEY_TEXT},k:{KEY_TEXT}", keyring_text),
    ("keyring-trailing-comma", ConfigurationError, f"k:{KEY_TEXT},", keyring_text),
    ("keyring-None", InvalidType, None, keyring_text),
    ("keyring-bytes", InvalidType, f"k:{KEY_TEXT}".encode(), keyring_text),
    ("clock-advance-minus-1", InvalidInput, -1, clock_advance),
    ("clock-advance-negative-timedelta", InvalidInput, dt.timedelta(seconds=-1), clock_advance),
    ("totp-issuer-empty", ConfigurationError, {"issuer": ""}, build_totp),
    ("totp-issuer-colon", ConfigurationError, {"issuer": "ACME:evil"}, build_totp),
    ("totp-issuer-65", ConfigurationError, {"issuer": "x" * 65}, build_totp),
    ("totp-issuer-int", ConfigurationError, {"issuer": 5}, build_totp),
    ("totp-digits-7", ConfigurationError, {"issuer": "A", "digits": 7}, build_totp),
    ("totp-window-5", ConfigurationError, {"issuer": "A", "window": 5}, build_totp),
    ("totp-algorithm-md5", ConfigurationError, {"issuer": "A", "algorithm": "MD5"}, build_totp),
    ("totp-secret-bytes-10", ConfigurationError, {"issuer": "A", "secret_bytes": 10}, build_totp),
    ("totp-max-attempts-0", ConfigurationError, {"issuer": "A", "max_attempts": 0}, build_totp),
    ("mfa-no-factors", ConfigurationError, {"factors": []}, build_mfa),
    ("mfa-factor-name", ConfigurationError, {"factors": ["totp"]}, build_mfa),
    (
        "mfa-factor-twice",
        ConfigurationError,
        {"factors": [TOTP(issuer="A"), TOTP(issuer="B")]},
        build_mfa,
    ),
    ("mfa-keyring-str", ConfigurationError, {"keyring": "k:x", "factors": []}, build_mfa),
]


def all_cases() -> list[Any]:
    params: list[Any] = []
    for name, expected, transform in CODE_CASES:
        params.append(
            pytest.param(
                Case(expected, from_code(transform, "verify"), verify_code),
                id=f"verify-code-{name}",
            )
        )
        # verify_totp takes the same codes and must refuse them the same way, uncharged
        params.append(
            pytest.param(
                Case(expected, from_code(transform, "verify"), verify_totp_code),
                id=f"verify_totp-code-{name}",
            )
        )
        if name in CONFIRM_CODE_IDS:
            params.append(
                pytest.param(
                    Case(expected, from_code(transform, "confirm"), confirm_code),
                    id=f"confirm-code-{name}",
                )
            )
    for name, expected, value in CHALLENGE_ID_CASES:
        params.append(
            pytest.param(Case(expected, value, verify_challenge), id=f"verify-challenge-id-{name}")
        )
    for endpoint, call in CREDENTIAL_ENDPOINTS:
        for name, expected, value in CREDENTIAL_ID_CASES:
            if endpoint == "challenge" and name == "None":
                continue  # credential_id=None means "any credential": valid
            params.append(
                pytest.param(Case(expected, value, call), id=f"{endpoint}-credential-id-{name}")
            )
    params += [
        pytest.param(
            Case(CredentialNotFound, lambda w: w.alice_cred, confirm_credential),
            id="confirm-credential-id-already-active",
        ),
        pytest.param(
            Case(CredentialNotFound, lambda w: w.alice_pending, challenge_credential),
            id="challenge-credential-id-pending",
        ),
    ]
    for method in SUBJECT_METHODS:
        for name, subject in SUBJECT_VALUES:
            params.append(
                pytest.param(
                    Case(InvalidType, const(subject), subject_at(method)),
                    id=f"{method}-subject-{name}",
                )
            )
    for name, expected, fields in SUBJECT_FIELDS:
        params.append(
            pytest.param(Case(expected, const(fields), build_subject), id=f"Subject-{name}")
        )
    for prefix, table in (
        ("factor-", FACTOR_CASES),
        ("TOTP.setup-", SETUP_CASES),
        ("", MISC_CASES),
    ):
        for name, expected, raw, call in table:
            params.append(pytest.param(Case(expected, const(raw), call), id=prefix + name))
    return params


ALL_CASES: Final = all_cases()


def forbidden_in_messages(world: World, value: object) -> list[str]:
    """The strings no message may contain: real codes and secrets, and long submissions."""
    found = world.secrets()
    if isinstance(value, (bytes, bytearray)):
        value = value.decode("latin-1")
    if isinstance(value, dict):
        value = " ".join(str(v) for v in value.values())
    if isinstance(value, str):
        if len(value) >= 8:
            found.append(value)
        # the parts of a compound value (keyring entries, base32 groups) that could be secret
        found += [part for part in re.split(r"[,:\s]+", value) if len(part) >= 8]
    return found


def test_the_table_has_at_least_100_cases() -> None:
    assert len(ALL_CASES) >= 100


@pytest.mark.parametrize("case", ALL_CASES)
def test_bad_input_raises_typed_error_and_changes_nothing(case: Case) -> None:
    world = build_world()
    value = case.value(world)
    before = world.snapshot()

    with pytest.raises(MFAError) as info:
        case.call(world, value)

    error = info.value
    assert type(error) is case.expected, f"{type(error).__name__}: {error}"
    assert world.snapshot() == before
    messages = (str(error), repr(error), error.public_message)
    for secret in forbidden_in_messages(world, value):
        for message in messages:
            assert secret not in message
    assert error.public_message  # always something safe to show


def test_a_huge_code_is_refused_fast() -> None:
    """The length cap runs before NFKC: 10 MB of digits are refused without normalising."""
    world = build_world()
    huge = "\u0661" * 10**7
    with pytest.raises(MalformedCode) as info:
        world.mfa.verify(world.alice, world.alice_ch, huge)
    assert "\u0661\u0661\u0661" not in str(info.value)
    with pytest.raises(MalformedCode):
        world.mfa.confirm(world.alice, world.alice_pending, huge)
    before = world.snapshot()
    with pytest.raises(MalformedCode) as info:
        world.mfa.verify_totp(world.alice, huge)
    assert "\u0661\u0661\u0661" not in str(info.value)
    assert world.snapshot() == before


# ------------------------------------------------------------------------------------------
# bugs found while building the table (each is a missing validation)
# ------------------------------------------------------------------------------------------
def test_unlock_with_empty_actor_is_refused_without_change() -> None:
    world = build_world()
    before = world.snapshot()
    with pytest.raises(InvalidInput):
        world.api.unlock(world.alice, actor="")
    assert world.snapshot() == before


def test_unlock_with_empty_actor_is_invalid_input_not_invalid_type() -> None:
    world = build_world()
    with pytest.raises(InvalidInput) as info:
        world.api.unlock(world.alice, actor="")
    assert type(info.value) is InvalidInput


def test_remove_refuses_a_non_str_actor() -> None:
    world = build_world()
    before = world.snapshot()
    with pytest.raises(InvalidType):
        world.api.remove(world.alice, world.alice_cred, actor=5)
    assert world.snapshot() == before


def test_unlock_refuses_an_actor_with_control_characters() -> None:
    world = build_world()
    with pytest.raises(InvalidInput):
        world.mfa.unlock(world.alice, actor="admin\r\nmfakit unlocked subject=mallory")


@pytest.mark.parametrize(
    "label",
    [
        pytest.param("Phone\r\nInjected", id="crlf"),
        pytest.param("", id="empty"),
        pytest.param("x" * 1000, id="1000-chars"),
        pytest.param(5, id="int"),
    ],
)
def test_enroll_validates_a_hand_built_setup(label: object) -> None:
    world = build_world()
    before = world.snapshot()
    with pytest.raises(InvalidInput):
        world.mfa.enroll(world.alice, TOTPSetup(label=label))  # type: ignore[arg-type]
    assert world.snapshot() == before


def test_enroll_refuses_a_hand_built_setup_with_a_short_secret() -> None:
    """The 128-bit minimum holds even when TOTP.setup() is bypassed (caught at URI build)."""
    world = build_world()
    before = world.snapshot()
    with pytest.raises(InvalidSecret) as info:
        world.mfa.enroll(world.alice, TOTPSetup(label="Phone", secret="JBSWY3DPEHPK3PXP"))
    assert "JBSWY3DPEHPK3PXP" not in str(info.value)
    assert world.snapshot() == before


def test_totp_refuses_a_str_max_attempts() -> None:
    with pytest.raises(ConfigurationError):
        TOTP("ACME", max_attempts="5")  # type: ignore[arg-type]


def test_totp_refuses_a_non_timedelta_ttl() -> None:
    with pytest.raises(ConfigurationError):
        TOTP("ACME", challenge_ttl=300)  # type: ignore[arg-type]


def test_fake_clock_refuses_a_str_delta() -> None:
    clock = FakeClock()
    with pytest.raises(InvalidType):
        clock.advance("5")  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------
# accepted spellings: documented normalisation, not malformed input
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "spell",
    [
        pytest.param(lambda c: c.translate(FULL_WIDTH), id="full-width"),
        pytest.param(lambda c: c.translate(SUPERSCRIPT), id="superscript"),
        pytest.param(lambda c: f"{c[:3]} {c[3:]}", id="grouped"),
        pytest.param(lambda c: f"  {c[:3]}-{c[3:]}\n", id="hyphen-and-surrounding-space"),
        pytest.param(lambda c: "-" + c, id="leading-hyphen"),
        pytest.param(lambda c: c[:3] + "\u2212" + c[3:], id="minus-sign"),
        pytest.param(lambda c: c[:3] + "\t" + c[3:], id="tab"),
        pytest.param(lambda c: "\u3000" + c, id="ideographic-space"),
        pytest.param(lambda c: c[:3] + "\u00a0" + c[3:], id="no-break-space"),
    ],
)
def test_accepted_spellings_of_the_right_code_verify(spell: Callable[[str], str]) -> None:
    """NFKC folds full-width and superscript digits onto ASCII; spaces and hyphens anywhere
    are separators ("-123456" is the code 123456, not a negative number)."""
    world = build_world()
    proof = world.mfa.verify(world.alice, world.alice_ch, spell(world.alice_code))
    assert isinstance(proof, Verification)
    assert world.store.get_lock_state("alice").failures == 0


@pytest.mark.parametrize(
    "spell",
    [
        pytest.param(lambda c: c.translate(FULL_WIDTH), id="full-width"),
        pytest.param(lambda c: "-" + c, id="leading-hyphen"),
    ],
)
def test_accepted_spellings_of_a_wrong_code_are_charged(spell: Callable[[str], str]) -> None:
    """A well-formed wrong code is a real attempt: InvalidCode, not MalformedCode."""
    world = build_world()
    wrong = wrong_code_for(world)
    with pytest.raises(InvalidCode):
        world.mfa.verify(world.alice, world.alice_ch, spell(wrong))
    assert world.store.get_lock_state("alice").failures == 1
    [event] = world.events.of_type(EventType.FAILED)
    assert event.reason == "InvalidCode"


@pytest.mark.parametrize(
    "spell",
    [
        pytest.param(lambda c: c.translate(FULL_WIDTH), id="full-width"),
        pytest.param(lambda c: f"{c[:3]} {c[3:]}", id="grouped"),
    ],
)
def test_spellings_without_a_challenge_verify_or_are_charged(spell: Callable[[str], str]) -> None:
    """verify_totp normalises like verify: a well-formed wrong code is a real attempt."""
    world = build_world()
    with pytest.raises(InvalidCode):
        world.mfa.verify_totp(world.alice, spell(wrong_code_for(world)))
    assert world.store.get_lock_state("alice").failures == 1
    assert [e.reason for e in world.events.of_type(EventType.FAILED)] == ["InvalidCode"]
    proof = world.mfa.verify_totp(world.alice, spell(world.alice_code))
    assert (proof.credential_id, proof.challenge_id) == (world.alice_cred, None)
    assert world.store.get_lock_state("alice").failures == 0


@pytest.mark.parametrize("typed", ["", "12345", "1234567", "٣٤٥٦٧٨"])
def test_malformed_code_while_locked_changes_nothing(typed: str) -> None:
    """Malformed input is answered as such even while locked: no charge, no event."""
    world = build_world(Lockout(max_failures=1, mode="suspend"))
    with pytest.raises(InvalidCode):
        world.mfa.verify_totp(world.alice, wrong_code_for(world))
    assert world.store.get_lock_state("alice").suspended
    before = world.snapshot()
    with pytest.raises(MalformedCode):
        world.mfa.verify_totp(world.alice, typed)
    assert world.snapshot() == before


def wrong_code_for(world: World) -> str:
    near = {world.code(world.alice_secret, k) for k in range(-3, 4)}
    candidate = 0
    while f"{candidate:06d}" in near:
        candidate += 1
    return f"{candidate:06d}"


# ------------------------------------------------------------------------------------------
# SECURITY.md 36: answers do not reveal existence
# ------------------------------------------------------------------------------------------
def _error_of(call: Callable[[], object]) -> MFAError:
    with pytest.raises(MFAError) as info:
        call()
    return info.value


def _same_answer(a: MFAError, b: MFAError) -> None:
    assert type(a) is type(b)
    assert a.public_message == b.public_message
    assert str(a) == str(b)


def test_foreign_challenge_is_answered_like_a_nonexistent_one() -> None:
    world = build_world()
    code = world.alice_code
    nobody = _error_of(lambda: world.mfa.verify(world.alice, "ch_belongstonobody", code))
    bobs = _error_of(lambda: world.mfa.verify(world.alice, world.bob_ch, code))
    used = _error_of(lambda: world.mfa.verify(world.alice, world.used_ch, code))
    _same_answer(nobody, bobs)
    _same_answer(nobody, used)
    assert type(nobody) is ChallengeNotFound
    # and bob's challenge is still his, untouched
    assert world.store.get_challenge(world.bob_ch) is not None
    assert world.mfa.verify(world.bob, world.bob_ch, world.code(world.bob_secret)).subject_id == (
        "bob"
    )


@pytest.mark.parametrize("endpoint", ["remove", "confirm", "challenge"])
def test_foreign_credential_is_answered_like_a_nonexistent_one(endpoint: str) -> None:
    world = build_world()
    call = dict(CREDENTIAL_ENDPOINTS)[endpoint]
    nobody = _error_of(lambda: call(world, "cr_belongstonobody"))
    bobs = _error_of(lambda: call(world, world.bob_cred))
    _same_answer(nobody, bobs)
    assert type(nobody) is CredentialNotFound


# ------------------------------------------------------------------------------------------
# property: whatever text is typed, the answer is typed and only real codes are charged
# ------------------------------------------------------------------------------------------
SEPARATORS: Final = " -\t\u2010\u2011\u2012\u2013\u2212"


def normalises_to(raw: str) -> str | None:
    """SECURITY.md 11 as an oracle: cap, NFKC, strip, drop separators, 6 ASCII digits."""
    if len(raw) > 64:
        return None
    text = unicodedata.normalize("NFKC", raw).strip()
    text = "".join(ch for ch in text if ch not in SEPARATORS)
    return text if re.fullmatch(r"[0-9]{6}", text, flags=re.ASCII) else None


decorations = st.sampled_from(["", " ", "-", "\t", "\u2212", "\u3000", "\n", "+", "\x00", "."])
digit_soup = st.text(
    alphabet="0123456789 -\t\uff11\uff12\uff13\u0663\u06f4\u096a\u00b9\u2460.\u2212\u200b",
    max_size=14,
)
six_digits = st.from_regex(
    r"[ ]?[0-9\uff11\u2075]{3}[ \-\u2212]?[0-9\uff13]{3}[ \n]?", fullmatch=True
)


@PROPERTY
@given(
    raw=st.one_of(st.text(max_size=80), digit_soup, six_digits),
    real_step=st.sampled_from([None, None, -1, 0, 1]),
    lead=decorations,
    mid=decorations,
    trail=decorations,
    full_width=st.booleans(),
)
def test_any_text_as_a_code_gets_a_typed_answer(
    raw: str, real_step: int | None, lead: str, mid: str, trail: str, full_width: bool
) -> None:
    """``real_step`` decorates the code of a nearby step instead: -1 is the step the used
    challenge consumed (replayed), 0 and +1 are accepted (drift window)."""
    world = build_world(Lockout.nist())
    if real_step is not None:
        code = world.code(world.alice_secret, real_step)
        code = code.translate(FULL_WIDTH) if full_width else code
        raw = lead + code[:3] + mid + code[3:] + trail
    before_state = world.store.get_lock_state("alice")
    before = world.snapshot()
    normalised = normalises_to(raw)
    accepted = {world.code(world.alice_secret, k) for k in (0, 1)}
    replayed = world.code(world.alice_secret, -1)  # the step the used challenge consumed

    try:
        outcome: object = world.mfa.verify(world.alice, world.alice_ch, raw)
    except MFAError as exc:
        outcome = exc
    for message in (str(outcome), getattr(outcome, "public_message", "")):
        for secret in world.secrets():
            assert secret not in message
    state = world.store.get_lock_state("alice")

    event(type(outcome).__name__)
    if normalised is None:
        assert type(outcome) is MalformedCode
        assert world.snapshot() == before
    elif normalised in accepted:
        assert isinstance(outcome, Verification)
        assert state.failures == 0
    else:
        assert type(outcome) is (ReplayedCode if normalised == replayed else InvalidCode)
        assert state == dataclasses.replace(
            before_state, failures=before_state.failures + 1, version=before_state.version + 1
        )


def test_oracle_agrees_on_the_documented_examples() -> None:
    """Pin the oracle itself, so the property above cannot pass vacuously."""
    assert normalises_to("\uff11\uff12\uff13\uff14\uff15\uff16") == "123456"
    assert normalises_to("-123456") == "123456"
    assert normalises_to("123 456") == "123456"
    assert normalises_to("\u0661\u0662\u0663\u0664\u0665\u0666") is None
    assert normalises_to("123\n456") is None
    assert normalises_to("1" * 65) is None
    assert LockState("x").failures == 0


@PROPERTY
@given(
    raw=st.one_of(st.text(max_size=80), digit_soup, six_digits),
    real_step=st.sampled_from([None, None, -1, 0, 1]),
    lead=decorations,
    mid=decorations,
    trail=decorations,
)
def test_any_text_as_a_code_without_a_challenge_gets_a_typed_answer(
    raw: str, real_step: int | None, lead: str, mid: str, trail: str
) -> None:
    """The property above for ``verify_totp``: only well-formed codes are ever charged."""
    world = build_world(Lockout.nist())
    if real_step is not None:
        code = world.code(world.alice_secret, real_step)
        raw = lead + code[:3] + mid + code[3:] + trail
    before_state = world.store.get_lock_state("alice")
    before = world.snapshot()
    normalised = normalises_to(raw)
    accepted = {world.code(world.alice_secret, k) for k in (0, 1)}
    replayed = world.code(world.alice_secret, -1)  # the step the used challenge consumed

    try:
        outcome: object = world.mfa.verify_totp(world.alice, raw)
    except MFAError as exc:
        outcome = exc
    for message in (str(outcome), getattr(outcome, "public_message", "")):
        for secret in world.secrets():
            assert secret not in message
    state = world.store.get_lock_state("alice")

    event(type(outcome).__name__)
    if normalised is None:
        assert type(outcome) is MalformedCode
        assert world.snapshot() == before
    elif normalised in accepted:
        assert isinstance(outcome, Verification)
        assert outcome.challenge_id is None
        assert state.failures == 0
    else:
        assert type(outcome) is (ReplayedCode if normalised == replayed else InvalidCode)
        assert state == dataclasses.replace(
            before_state, failures=before_state.failures + 1, version=before_state.version + 1
        )
