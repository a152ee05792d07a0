"""The policy engine: both deployments table-driven, the built-in standards, purity.

``DefaultPolicyEngine.evaluate(subject, credentials, context)`` is a pure function, so
most tests here build :class:`Credential` records directly and read the :class:`Decision`.
The tables follow DESIGN.md section 1:

* the practice suite (``aps-mfa.txt``): TOTP or SMS, a recovery PIN, immediate enforcement,
  machine-to-machine users exempt, 24 h sessions with a 15 min inactivity timeout;
* the register (``ppsr-mfa.txt``): e-mail codes to the profile address, secret questions
  as the fallback, a three-month opt-in grace period, details reviewed first.

SECURITY.md 24 (knowledge is never MFA), 27 (SMS restricted), 30 / 35 (step-up for
sensitive actions) and 34 (session presets) are checked as configuration errors,
decisions and session arithmetic. The facade tests at the end drive ``MFA.evaluate``.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mfakit import (
    MFA,
    ConfigurationError,
    Context,
    Credential,
    CredentialStatus,
    Decision,
    DefaultPolicyEngine,
    EventType,
    InvalidInput,
    InvalidType,
    Keyring,
    Policy,
    PolicyEngine,
    Rule,
    SessionLimits,
    Subject,
    UnsupportedRegion,
)
from mfakit.factors import SMSOTP, TOTP, RecoveryPIN
from mfakit.hazmat.hashing import SecretHasher
from mfakit.testing import FakeClock, ListSink, MemoryStore, Outbox

if TYPE_CHECKING:
    from conftest import EnrollTOTP

UTC = dt.timezone.utc
US = dt.timedelta(microseconds=1)
MINUTE = dt.timedelta(minutes=1)
#: The step-up window both presets use (``Policy.step_up_within``).
WINDOW = dt.timedelta(minutes=10)
#: Factors that prove knowledge (SECURITY.md 24), spelled out here rather than imported.
KNOWLEDGE_FACTOR_NAMES = frozenset({"recovery_pin", "secret_questions", "recovery_codes"})
ACTIVE = CredentialStatus.ACTIVE
PENDING = CredentialStatus.PENDING


# ---------------------------------------------------------------------------------------
# builders
# ---------------------------------------------------------------------------------------
def user(
    id_: str = "u1",
    *,
    tenant: str | None = "t1",
    kind: str = "user",
    email: str | None = "user@example.com",
    attributes: dict[str, Any] | None = None,
) -> Subject:
    """A subject; ``attributes`` are the host's facts for rules."""
    return Subject(
        id=id_,
        tenant=tenant,
        username=id_,
        email=email,
        display_name="Pat",
        kind=kind,
        attributes=attributes or {},
    )


def cred(factor: str, status: CredentialStatus = ACTIVE, *, subject_id: str = "u1") -> Credential:
    """A credential record as a store would hold it (no secret needed: the engine is pure)."""
    return Credential(
        id=f"cr_{factor}_{status.value}",
        subject_id=subject_id,
        tenant="t1",
        factor=factor,
        label=factor,
        status=status,
        created_at=dt.datetime(2025, 12, 1, tzinfo=UTC),
        confirmed_at=dt.datetime(2025, 12, 1, tzinfo=UTC) if status is ACTIVE else None,
    )


def ctx(
    now: dt.datetime,
    action: str = "login",
    *,
    password_age: dt.timedelta | None = None,
    mfa_age: dt.timedelta | None = None,
    reviewed: bool = False,
) -> Context:
    """A context at ``now``; the verification times are given as ages before ``now``."""
    return Context(
        now=now,
        action=action,
        password_verified_at=None if password_age is None else now - password_age,
        mfa_verified_at=None if mfa_age is None else now - mfa_age,
        reviewed_details=reviewed,
    )


# ---------------------------------------------------------------------------------------
# 1. the practice suite
# ---------------------------------------------------------------------------------------
PRACTICE_NOW = dt.datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
PRACTICE_SESSION = SessionLimits(dt.timedelta(hours=24), dt.timedelta(minutes=15))
TENANT_OFF = Rule(name="tenant-off", tenants=frozenset({"t-off"}), set={"enforcement": "off"})
ADMINS_ISM = Rule(
    name="admins-ism", attributes={"role": "admin"}, set={"session": SessionLimits.ism()}
)
#: The preset plus the two host rules the table exercises.
PRACTICE = Policy.practice_suite(rules=(TENANT_OFF, ADMINS_ISM))
BOTH = ("totp", "sms")
PIN = ("recovery_pin",)


class PracticeExpect(NamedTuple):
    required: bool
    optional: bool = False
    methods: tuple[str, ...] = ()
    enroll: tuple[str, ...] = ()
    enroll_recovery: tuple[str, ...] = ()
    recovery: tuple[str, ...] = ()
    step_up: bool = False
    step_up_satisfied: bool = False
    sms_notice: bool = True
    session: SessionLimits = PRACTICE_SESSION
    rules: tuple[str, ...] = ()


def practice_row(
    id_: str,
    subject: Subject,
    credentials: Sequence[Credential],
    context: Context,
    expect: PracticeExpect,
) -> Any:
    return pytest.param(subject, tuple(credentials), context, expect, id=id_)


_now = ctx(PRACTICE_NOW)
_alice = user()
_service = user("m2m-connectworks", kind="service", email=None)
_off = user("u-off", tenant="t-off")
_admin = user("u-admin", attributes={"role": "admin"})
_totp_user = [cred("totp")]

PRACTICE_ROWS = [
    # enrolment: what a user must set up on the first sign-in after activation
    practice_row(
        "new-user-enrols-totp-or-sms-and-pin",
        _alice,
        [],
        _now,
        PracticeExpect(True, enroll=BOTH, enroll_recovery=PIN),
    ),
    practice_row(
        "totp-only-verifies-totp-and-must-enrol-pin",
        _alice,
        [cred("totp")],
        _now,
        PracticeExpect(True, methods=("totp",), enroll_recovery=PIN),
    ),
    practice_row(
        "sms-only-verifies-sms-and-must-enrol-pin",
        _alice,
        [cred("sms")],
        _now,
        PracticeExpect(True, methods=("sms",), enroll_recovery=PIN),
    ),
    practice_row(
        "sms-and-totp-ordered-by-preference-not-enrolment",
        _alice,
        [cred("sms"), cred("totp"), cred("recovery_pin")],
        _now,
        PracticeExpect(True, methods=BOTH, recovery=PIN),
    ),
    practice_row(
        "totp-and-pin-complete-recovery-available",
        _alice,
        [cred("totp"), cred("recovery_pin")],
        _now,
        PracticeExpect(True, methods=("totp",), recovery=PIN),
    ),
    practice_row(
        "pending-totp-only-still-enrols",
        _alice,
        [cred("totp", PENDING)],
        _now,
        PracticeExpect(True, enroll=BOTH, enroll_recovery=PIN),
    ),
    practice_row(
        "pending-pin-does-not-count-as-recovery",
        _alice,
        [cred("totp"), cred("recovery_pin", PENDING)],
        _now,
        PracticeExpect(True, methods=("totp",), enroll_recovery=PIN),
    ),
    practice_row(
        "pin-only-knowledge-never-counts-as-primary",
        _alice,
        [cred("recovery_pin")],
        _now,
        PracticeExpect(True, enroll=BOTH, recovery=PIN),
    ),
    practice_row(
        "questions-and-codes-only-knowledge-never-counts",
        _alice,
        [cred("secret_questions"), cred("recovery_codes")],
        _now,
        PracticeExpect(True, enroll=BOTH, enroll_recovery=PIN),
    ),
    practice_row(
        "unknown-factor-credential-does-not-count",
        _alice,
        [cred("webauthn")],
        _now,
        PracticeExpect(True, enroll=BOTH, enroll_recovery=PIN),
    ),
    # "Other" country: SMSOTP refuses the number, nothing is stored; totp is still offered
    practice_row(
        "unsupported-country-sms-refused-totp-still-offered-first",
        _alice,
        [],
        _now,
        PracticeExpect(True, enroll=BOTH, enroll_recovery=PIN),
    ),
    practice_row(
        "pending-sms-never-confirmed-totp-still-offered-first",
        _alice,
        [cred("sms", PENDING)],
        _now,
        PracticeExpect(True, enroll=BOTH, enroll_recovery=PIN),
    ),
    # exemptions and host rules
    practice_row(
        "machine-to-machine-service-exempt",
        _service,
        [],
        _now,
        PracticeExpect(False, sms_notice=False),
    ),
    practice_row(
        "service-sensitive-action-needs-password-only",
        _service,
        [],
        ctx(PRACTICE_NOW, "change_phone", password_age=MINUTE),
        PracticeExpect(False, step_up=True, step_up_satisfied=True, sms_notice=False),
    ),
    practice_row(
        "other-kind-is-not-exempt",
        user("u-robot", kind="robot"),
        [],
        _now,
        PracticeExpect(True, enroll=BOTH, enroll_recovery=PIN),
    ),
    practice_row(
        "tenant-with-mfa-off",
        _off,
        [],
        _now,
        PracticeExpect(False, sms_notice=False, rules=("tenant-off",)),
    ),
    practice_row(
        "tenant-off-sensitive-action-needs-password-only",
        _off,
        [],
        ctx(PRACTICE_NOW, "change_phone", password_age=MINUTE),
        PracticeExpect(
            False, step_up=True, step_up_satisfied=True, sms_notice=False, rules=("tenant-off",)
        ),
    ),
    practice_row(
        "admin-attribute-gets-ism-session",
        _admin,
        [cred("totp"), cred("recovery_pin")],
        _now,
        PracticeExpect(
            True,
            methods=("totp",),
            recovery=PIN,
            session=SessionLimits.ism(),
            rules=("admins-ism",),
        ),
    ),
    practice_row(
        "admin-in-tenant-off-both-rules-apply",
        user("u-off-admin", tenant="t-off", attributes={"role": "admin"}),
        [],
        _now,
        PracticeExpect(
            False,
            sms_notice=False,
            session=SessionLimits.ism(),
            rules=("tenant-off", "admins-ism"),
        ),
    ),
    practice_row(
        "other-role-keeps-preset-session",
        user("u-clerk", attributes={"role": "clerk"}),
        _totp_user,
        _now,
        PracticeExpect(True, methods=("totp",), enroll_recovery=PIN),
    ),
    # sensitive actions: password again plus a second factor within 10 minutes
    practice_row(
        "change-phone-fresh-password-fresh-mfa-satisfied",
        _alice,
        _totp_user,
        ctx(PRACTICE_NOW, "change_phone", password_age=MINUTE, mfa_age=2 * MINUTE),
        PracticeExpect(
            True, methods=("totp",), enroll_recovery=PIN, step_up=True, step_up_satisfied=True
        ),
    ),
    practice_row(
        "change-phone-stale-password-not-satisfied",
        _alice,
        _totp_user,
        ctx(PRACTICE_NOW, "change_phone", password_age=WINDOW + US, mfa_age=MINUTE),
        PracticeExpect(True, methods=("totp",), enroll_recovery=PIN, step_up=True),
    ),
    practice_row(
        "change-phone-no-password-in-session-not-satisfied",
        _alice,
        _totp_user,
        ctx(PRACTICE_NOW, "change_phone", mfa_age=MINUTE),
        PracticeExpect(True, methods=("totp",), enroll_recovery=PIN, step_up=True),
    ),
    practice_row(
        "change-phone-mfa-older-than-10-min-not-satisfied",
        _alice,
        _totp_user,
        ctx(PRACTICE_NOW, "change_phone", password_age=MINUTE, mfa_age=WINDOW + US),
        PracticeExpect(True, methods=("totp",), enroll_recovery=PIN, step_up=True),
    ),
    practice_row(
        "change-phone-no-mfa-in-session-not-satisfied",
        _alice,
        _totp_user,
        ctx(PRACTICE_NOW, "change_phone", password_age=MINUTE),
        PracticeExpect(True, methods=("totp",), enroll_recovery=PIN, step_up=True),
    ),
    practice_row(
        "change-phone-exactly-10-min-is-still-fresh",
        _alice,
        _totp_user,
        ctx(PRACTICE_NOW, "change_phone", password_age=WINDOW, mfa_age=WINDOW),
        PracticeExpect(
            True, methods=("totp",), enroll_recovery=PIN, step_up=True, step_up_satisfied=True
        ),
    ),
    practice_row(
        "remove-factor-is-sensitive",
        _alice,
        [cred("totp"), cred("sms"), cred("recovery_pin")],
        ctx(PRACTICE_NOW, "remove_factor", password_age=MINUTE, mfa_age=MINUTE),
        PracticeExpect(True, methods=BOTH, recovery=PIN, step_up=True, step_up_satisfied=True),
    ),
    practice_row(
        "enrol-second-factor-is-sensitive",
        _alice,
        [cred("totp"), cred("recovery_pin")],
        ctx(PRACTICE_NOW, "enroll", password_age=MINUTE, mfa_age=WINDOW + US),
        PracticeExpect(True, methods=("totp",), recovery=PIN, step_up=True),
    ),
    practice_row(
        "login-is-not-a-step-up",
        _alice,
        _totp_user,
        ctx(PRACTICE_NOW, "login", password_age=MINUTE, mfa_age=MINUTE),
        PracticeExpect(True, methods=("totp",), enroll_recovery=PIN),
    ),
    practice_row(
        "admin-action-is-not-a-step-up",
        _alice,
        _totp_user,
        ctx(PRACTICE_NOW, "admin"),
        PracticeExpect(True, methods=("totp",), enroll_recovery=PIN),
    ),
]


@pytest.mark.parametrize(("subject", "credentials", "context", "expect"), PRACTICE_ROWS)
def test_practice_suite_table(
    subject: Subject,
    credentials: tuple[Credential, ...],
    context: Context,
    expect: PracticeExpect,
) -> None:
    decision = DefaultPolicyEngine(PRACTICE).evaluate(subject, credentials, context)

    assert decision.required is expect.required
    assert decision.optional is expect.optional
    assert decision.methods == expect.methods
    assert decision.enroll == expect.enroll
    assert decision.enroll_recovery == expect.enroll_recovery
    assert decision.recovery == expect.recovery
    assert decision.fallbacks == ()
    assert decision.review_details is False
    assert decision.grace_until is None
    assert decision.step_up is expect.step_up
    assert decision.step_up_satisfied is expect.step_up_satisfied
    assert ("sms_restricted" in decision.notices) is expect.sms_notice
    assert decision.session == expect.session
    applied = tuple(r for r in decision.reasons if r.startswith("rule "))
    assert applied == tuple(f"rule {name!r} applies" for name in expect.rules)
    if not expect.rules:  # the host rules change nothing for anyone else
        plain = DefaultPolicyEngine(Policy.practice_suite()).evaluate(subject, credentials, context)
        assert plain == decision


def test_practice_suite_table_size() -> None:
    assert len(PRACTICE_ROWS) >= 22


def test_practice_suite_preset_settings() -> None:
    policy = Policy.practice_suite()
    assert policy.enforcement == "required"
    assert policy.enforce_from is None
    assert policy.primary == ("totp", "sms")
    assert policy.recovery == ("recovery_pin",)
    assert policy.require_recovery is True
    assert policy.exempt == frozenset({"service"})
    assert policy.session == PRACTICE_SESSION
    assert policy.step_up_within == WINDOW
    # overrides are the host's configuration; SessionLimits presets drop in
    assert Policy.practice_suite(session=SessionLimits.ism()).session == SessionLimits.ism()


def test_practice_suite_new_user_decision_explained() -> None:
    decision = DefaultPolicyEngine(PRACTICE).evaluate(user(), [], ctx(PRACTICE_NOW))
    text = decision.explain()
    assert text.splitlines()[0] == "MFA required: yes"
    assert "enrol one of: totp, sms" in text
    assert "enrol a recovery method: recovery_pin" in text
    assert "notice: sms_restricted" in text
    assert "verify with" not in text


# ---------------------------------------------------------------------------------------
# 2. the register
# ---------------------------------------------------------------------------------------
LAUNCH = dt.datetime(2026, 1, 15, tzinfo=UTC)
DEADLINE = dt.datetime(2026, 4, 15, tzinfo=UTC)
REGISTER = Policy.register(launched_at=LAUNCH)
GRACE_DAY = dt.datetime(2026, 2, 20, 14, 0, tzinfo=UTC)
AFTER = dt.datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
EMAIL = ("email",)
QUESTIONS = ("secret_questions",)


class RegisterExpect(NamedTuple):
    required: bool
    optional: bool
    methods: tuple[str, ...] = ()
    enroll: tuple[str, ...] = ()
    fallbacks: tuple[str, ...] = ()
    review_details: bool = True
    in_grace: bool = False
    step_up: bool = False
    step_up_satisfied: bool = False


GRACE = RegisterExpect(False, True, in_grace=True)
MANDATORY = RegisterExpect(True, False, methods=EMAIL)
OPTED_IN = RegisterExpect(True, False, methods=EMAIL, in_grace=True)


def register_row(
    id_: str,
    subject: Subject,
    credentials: Sequence[Credential],
    context: Context,
    expect: RegisterExpect,
) -> Any:
    return pytest.param(subject, tuple(credentials), context, expect, id=id_)


_carol = user("u-carol", email="carol@example.com")
_no_email = user("u-nomail", email=None)
_opted = user("u-opted", email="opted@example.com", attributes={"mfa_opted_in": True})
_svc = user("svc-bulk-upload", kind="service", email="ops@example.com")

REGISTER_ROWS = [
    # the grace period boundary
    register_row("before-launch-is-grace", _carol, [], ctx(LAUNCH - MINUTE), GRACE),
    register_row("at-launch-is-grace", _carol, [], ctx(LAUNCH), GRACE),
    register_row("during-grace-not-opted-in-optional", _carol, [], ctx(GRACE_DAY), GRACE),
    register_row("one-microsecond-before-deadline-optional", _carol, [], ctx(DEADLINE - US), GRACE),
    register_row("exactly-at-deadline-required", _carol, [], ctx(DEADLINE), MANDATORY),
    register_row(
        "one-microsecond-after-deadline-required", _carol, [], ctx(DEADLINE + US), MANDATORY
    ),
    register_row("months-after-deadline-required", _carol, [], ctx(AFTER), MANDATORY),
    # opting in during the grace period
    register_row("grace-opted-in-by-attribute", _opted, [], ctx(GRACE_DAY), OPTED_IN),
    register_row(
        "grace-opt-in-flag-must-be-true-not-truthy",
        user("u-truthy", attributes={"mfa_opted_in": "yes"}),
        [],
        ctx(GRACE_DAY),
        GRACE,
    ),
    register_row(
        "grace-opted-in-by-email-credential", _carol, [cred("email")], ctx(GRACE_DAY), OPTED_IN
    ),
    register_row(
        "grace-pending-email-credential-not-opted-in",
        _carol,
        [cred("email", PENDING)],
        ctx(GRACE_DAY),
        GRACE,
    ),
    register_row(
        "grace-questions-alone-do-not-opt-in",
        _carol,
        [cred("secret_questions")],
        ctx(GRACE_DAY),
        GRACE,
    ),
    register_row(
        "grace-opted-in-with-questions-gets-fallback",
        _opted,
        [cred("secret_questions")],
        ctx(GRACE_DAY),
        OPTED_IN._replace(fallbacks=QUESTIONS),
    ),
    # methods from the profile address, fallbacks from enrolled questions
    register_row(
        "after-deadline-no-email-address-must-enrol-email",
        _no_email,
        [],
        ctx(AFTER),
        RegisterExpect(True, False, enroll=EMAIL),
    ),
    register_row(
        "after-deadline-no-email-address-keeps-questions-fallback",
        _no_email,
        [cred("secret_questions")],
        ctx(AFTER),
        RegisterExpect(True, False, enroll=EMAIL, fallbacks=QUESTIONS),
    ),
    register_row(
        "after-deadline-no-profile-address-but-email-credential",
        _no_email,
        [cred("email")],
        ctx(AFTER),
        MANDATORY,
    ),
    register_row(
        "after-deadline-active-questions-are-the-fallback",
        _carol,
        [cred("secret_questions")],
        ctx(AFTER),
        MANDATORY._replace(fallbacks=QUESTIONS),
    ),
    register_row(
        "after-deadline-pending-questions-are-no-fallback",
        _carol,
        [cred("secret_questions", PENDING)],
        ctx(AFTER),
        MANDATORY,
    ),
    # reviewing details
    register_row(
        "grace-reviewed-details",
        _carol,
        [],
        ctx(GRACE_DAY, reviewed=True),
        GRACE._replace(review_details=False),
    ),
    register_row(
        "after-deadline-reviewed-details",
        _carol,
        [],
        ctx(AFTER, reviewed=True),
        MANDATORY._replace(review_details=False),
    ),
    # machine-to-machine users are not exempt in the register
    register_row("service-not-exempt-during-grace", _svc, [], ctx(GRACE_DAY), GRACE),
    register_row("service-not-exempt-after-deadline", _svc, [], ctx(AFTER), MANDATORY),
    # changing email or questions: password again, and with MFA required a fresh factor
    register_row(
        "change-email-after-deadline-password-and-code-satisfied",
        _carol,
        [],
        ctx(AFTER, "change_email", password_age=MINUTE, mfa_age=MINUTE),
        MANDATORY._replace(step_up=True, step_up_satisfied=True),
    ),
    register_row(
        # The register asks for the password only ("enter your password"): step_up_factor off.
        "change-email-after-deadline-password-only-satisfied",
        _carol,
        [],
        ctx(AFTER, "change_email", password_age=MINUTE),
        MANDATORY._replace(step_up=True, step_up_satisfied=True),
    ),
    register_row(
        "change-questions-after-deadline-stale-code-still-satisfied-by-password",
        _carol,
        [cred("secret_questions")],
        ctx(AFTER, "change_questions", password_age=MINUTE, mfa_age=WINDOW + US),
        MANDATORY._replace(fallbacks=QUESTIONS, step_up=True, step_up_satisfied=True),
    ),
    register_row(
        "change-questions-during-grace-password-only-satisfied",
        _carol,
        [],
        ctx(GRACE_DAY, "change_questions", password_age=MINUTE),
        GRACE._replace(step_up=True, step_up_satisfied=True),
    ),
    register_row(
        "change-questions-during-grace-stale-password-not-satisfied",
        _carol,
        [],
        ctx(GRACE_DAY, "change_questions", password_age=WINDOW + US),
        GRACE._replace(step_up=True),
    ),
    register_row(
        "change-email-during-grace-opted-in-password-only",
        _opted,
        [],
        ctx(GRACE_DAY, "change_email", password_age=MINUTE),
        OPTED_IN._replace(step_up=True, step_up_satisfied=True),
    ),
    register_row(
        "admin-action-is-not-a-step-up",
        _carol,
        [],
        ctx(AFTER, "admin", password_age=MINUTE, mfa_age=MINUTE),
        MANDATORY,
    ),
]


@pytest.mark.parametrize(("subject", "credentials", "context", "expect"), REGISTER_ROWS)
def test_register_table(
    subject: Subject,
    credentials: tuple[Credential, ...],
    context: Context,
    expect: RegisterExpect,
) -> None:
    decision = DefaultPolicyEngine(REGISTER).evaluate(subject, credentials, context)

    assert decision.required is expect.required
    assert decision.optional is expect.optional
    assert decision.methods == expect.methods
    assert decision.enroll == expect.enroll
    assert decision.fallbacks == expect.fallbacks
    assert decision.review_details is expect.review_details
    assert decision.grace_until == (DEADLINE if expect.in_grace else None)
    assert decision.step_up is expect.step_up
    assert decision.step_up_satisfied is expect.step_up_satisfied
    # the register has no recovery factor, no SMS and the default session
    assert decision.enroll_recovery == ()
    assert decision.recovery == ()
    assert decision.notices == ()
    assert decision.session == SessionLimits.nist_rev4_aal2()


def test_register_table_size() -> None:
    assert len(REGISTER_ROWS) >= 22


def test_register_preset_settings() -> None:
    assert REGISTER.enforcement == "required"
    assert REGISTER.enforce_from == DEADLINE
    assert REGISTER.primary == ("email",)
    assert REGISTER.profile_factors == ("email",)
    assert REGISTER.fallbacks == ("secret_questions",)
    assert REGISTER.exempt == frozenset()
    assert REGISTER.review_details is True
    assert REGISTER.recovery == ()


def test_register_exemption_is_host_configuration() -> None:
    policy = Policy.register(launched_at=LAUNCH, exempt=frozenset({"service"}))
    decision = DefaultPolicyEngine(policy).evaluate(_svc, [], ctx(AFTER))
    assert not decision.required
    assert not decision.review_details
    assert "subjects of kind 'service' are exempt" in decision.reasons


@pytest.mark.parametrize(
    ("launched_at", "enforce_from"),
    [
        pytest.param(LAUNCH, DEADLINE, id="register-launch"),
        pytest.param(
            dt.datetime(2026, 11, 30, tzinfo=UTC),
            dt.datetime(2027, 2, 28, tzinfo=UTC),
            id="clamped-to-end-of-february",
        ),
        pytest.param(
            dt.datetime(2027, 11, 30, tzinfo=UTC),
            dt.datetime(2028, 2, 29, tzinfo=UTC),
            id="leap-february",
        ),
        pytest.param(
            dt.datetime(2026, 3, 31, tzinfo=UTC),
            dt.datetime(2026, 6, 30, tzinfo=UTC),
            id="clamped-to-30-day-month",
        ),
        pytest.param(
            dt.datetime(2026, 10, 31, tzinfo=UTC),
            dt.datetime(2027, 1, 31, tzinfo=UTC),
            id="across-the-year",
        ),
        pytest.param(
            dt.datetime(2026, 12, 31, tzinfo=UTC),
            dt.datetime(2027, 3, 31, tzinfo=UTC),
            id="from-december",
        ),
        pytest.param(
            dt.datetime(2026, 1, 15, 13, 45, 10, 500, tzinfo=dt.timezone(dt.timedelta(hours=10))),
            dt.datetime(2026, 4, 15, 13, 45, 10, 500, tzinfo=dt.timezone(dt.timedelta(hours=10))),
            id="time-and-zone-kept",
        ),
    ],
)
def test_register_grace_is_three_calendar_months(
    launched_at: dt.datetime, enforce_from: dt.datetime
) -> None:
    policy = Policy.register(launched_at=launched_at)
    assert policy.enforce_from == enforce_from
    assert policy.enforce_from is not None
    assert policy.enforce_from.utcoffset() == launched_at.utcoffset()


@pytest.mark.parametrize(
    "launched_at", [dt.datetime(2026, 1, 15), "2026-01-15T00:00:00Z", None], ids=repr
)
def test_register_needs_an_aware_launch_time(launched_at: Any) -> None:
    with pytest.raises(ConfigurationError, match="aware"):
        Policy.register(launched_at=launched_at)


def test_register_grace_decision_explained() -> None:
    decision = DefaultPolicyEngine(REGISTER).evaluate(_carol, [], ctx(GRACE_DAY))
    text = decision.explain()
    assert text.splitlines()[0] == "MFA required: no (optional: the subject may opt in)"
    assert "first: review details" in text
    assert f"grace period until {DEADLINE.isoformat()}" in text
    assert f"because: grace period: MFA becomes mandatory at {DEADLINE.isoformat()}" in text


# ---------------------------------------------------------------------------------------
# 3. standards: configuration checks, notices, session presets, rules
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "primary",
    [
        ("recovery_pin",),
        ("secret_questions",),
        ("recovery_codes",),
        ("totp", "secret_questions"),
        ("email", "recovery_codes"),
    ],
    ids="+".join,
)
def test_knowledge_factor_is_never_primary(primary: tuple[str, ...]) -> None:
    with pytest.raises(ConfigurationError, match="NIST") as caught:
        Policy(primary=primary)
    assert "knowledge" in str(caught.value)


def test_knowledge_factor_is_never_primary_in_presets_either() -> None:
    with pytest.raises(ConfigurationError, match="NIST"):
        Policy.practice_suite(primary=("totp", "recovery_pin"))
    with pytest.raises(ConfigurationError, match="NIST"):
        Policy.register(launched_at=LAUNCH, primary=("secret_questions",))


def test_knowledge_factors_are_fine_as_fallback_and_recovery() -> None:
    policy = Policy(
        primary=("totp",),
        fallbacks=("secret_questions", "recovery_pin"),
        recovery=("recovery_codes",),
    )
    assert policy.fallbacks == ("secret_questions", "recovery_pin")


@pytest.mark.parametrize("primary", [("sms",), ("sms", "sms")], ids=repr)
def test_sms_alone_is_refused(primary: tuple[str, ...]) -> None:
    with pytest.raises(ConfigurationError, match=r"restricted .*5\.1\.3\.3"):
        Policy(primary=primary)
    with pytest.raises(ConfigurationError, match="restricted"):
        Policy.practice_suite(primary=primary)


def test_sms_with_an_alternative_carries_the_notice() -> None:
    policy = Policy(primary=("sms", "totp"))
    decision = DefaultPolicyEngine(policy).evaluate(user(), [cred("sms")], ctx(PRACTICE_NOW))
    assert decision.notices == ("sms_restricted",)
    assert decision.methods == ("sms",)
    assert "notice: sms_restricted" in decision.explain()


def test_no_notice_without_sms() -> None:
    decision = DefaultPolicyEngine(Policy()).evaluate(user(), [], ctx(PRACTICE_NOW))
    assert decision.notices == ()


def test_notice_given_while_mfa_is_optional_but_not_when_off() -> None:
    """What the code does: the notice follows the policy offering SMS with MFA not off."""
    engine = DefaultPolicyEngine(PRACTICE)
    assert engine.evaluate(user(), [], ctx(PRACTICE_NOW)).notices == ("sms_restricted",)
    optional = DefaultPolicyEngine(Policy.practice_suite(enforcement="optional"))
    assert optional.evaluate(user(), [], ctx(PRACTICE_NOW)).notices == ("sms_restricted",)
    # exempt subjects and tenants with MFA off get no notice
    assert engine.evaluate(_service, [], ctx(PRACTICE_NOW)).notices == ()
    assert engine.evaluate(_off, [], ctx(PRACTICE_NOW)).notices == ()


@pytest.mark.parametrize(
    ("preset", "lifetime", "idle", "all_factors"),
    [
        pytest.param(SessionLimits.nist_rev3_aal2, 12 * 60, 30, False, id="nist-rev3-aal2"),
        pytest.param(SessionLimits.nist_rev4_aal2, 24 * 60, 60, False, id="nist-rev4-aal2"),
        pytest.param(SessionLimits.ism, 12 * 60, 15, True, id="ism"),
    ],
)
def test_session_presets(preset: Any, lifetime: int, idle: int, all_factors: bool) -> None:
    limits: SessionLimits = preset()
    assert limits.lifetime == dt.timedelta(minutes=lifetime)
    assert limits.idle_timeout == dt.timedelta(minutes=idle)
    assert limits.all_factors_to_unlock is all_factors


def test_default_policy_session_is_nist_rev4() -> None:
    assert Policy().session == SessionLimits.nist_rev4_aal2()


SIGNED_IN = dt.datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("limits", "last_activity", "now", "valid", "reason"),
    [
        # lifetime boundary: keep the session active so only the lifetime can end it
        pytest.param(
            PRACTICE_SESSION,
            SIGNED_IN + dt.timedelta(hours=23, minutes=59),
            SIGNED_IN + dt.timedelta(hours=24) - US,
            True,
            "valid",
            id="lifetime-one-microsecond-before",
        ),
        pytest.param(
            PRACTICE_SESSION,
            SIGNED_IN + dt.timedelta(hours=23, minutes=59),
            SIGNED_IN + dt.timedelta(hours=24),
            False,
            "lifetime",
            id="lifetime-exactly-at",
        ),
        pytest.param(
            SessionLimits.ism(),
            SIGNED_IN + dt.timedelta(hours=11, minutes=59),
            SIGNED_IN + dt.timedelta(hours=12),
            False,
            "lifetime",
            id="ism-lifetime-at-12h",
        ),
        # idle boundary
        pytest.param(
            PRACTICE_SESSION,
            SIGNED_IN + dt.timedelta(hours=1),
            SIGNED_IN + dt.timedelta(hours=1, minutes=15) - US,
            True,
            "valid",
            id="idle-one-microsecond-before",
        ),
        pytest.param(
            PRACTICE_SESSION,
            SIGNED_IN + dt.timedelta(hours=1),
            SIGNED_IN + dt.timedelta(hours=1, minutes=15),
            False,
            "idle",
            id="idle-exactly-at",
        ),
        pytest.param(
            SessionLimits.nist_rev3_aal2(),
            SIGNED_IN,
            SIGNED_IN + dt.timedelta(minutes=30),
            False,
            "idle",
            id="nist-rev3-idle-at-30min",
        ),
        pytest.param(
            SessionLimits.nist_rev4_aal2(),
            SIGNED_IN,
            SIGNED_IN + dt.timedelta(minutes=59, seconds=59),
            True,
            "valid",
            id="nist-rev4-idle-under-1h",
        ),
        # both exceeded: the lifetime is reported
        pytest.param(
            PRACTICE_SESSION,
            SIGNED_IN,
            SIGNED_IN + dt.timedelta(days=2),
            False,
            "lifetime",
            id="both-exceeded-lifetime-first",
        ),
        # without an idle timeout only the lifetime counts
        pytest.param(
            SessionLimits(dt.timedelta(hours=24)),
            SIGNED_IN,
            SIGNED_IN + dt.timedelta(hours=24) - US,
            True,
            "valid",
            id="no-idle-timeout",
        ),
    ],
)
def test_session_check_boundaries(
    limits: SessionLimits,
    last_activity: dt.datetime,
    now: dt.datetime,
    valid: bool,
    reason: str,
) -> None:
    status = limits.check(authenticated_at=SIGNED_IN, last_activity_at=last_activity, now=now)
    assert status.valid is valid
    assert status.reason == reason
    assert status.expires_at == SIGNED_IN + limits.lifetime
    if limits.idle_timeout is None:
        assert status.idle_expires_at is None
    else:
        assert status.idle_expires_at == last_activity + limits.idle_timeout


@pytest.mark.parametrize(
    ("lifetime", "idle"),
    [
        (dt.timedelta(0), None),
        (dt.timedelta(hours=-1), None),
        (dt.timedelta(hours=1), dt.timedelta(0)),
        (dt.timedelta(hours=1), dt.timedelta(minutes=-5)),
        (3600, None),
        (None, None),
        (dt.timedelta(hours=1), 900),
    ],
    ids=repr,
)
def test_session_limits_must_be_positive_timedeltas(lifetime: Any, idle: Any) -> None:
    with pytest.raises(ConfigurationError, match="positive timedelta"):
        SessionLimits(lifetime, idle)


def test_rule_with_an_unknown_field_is_refused() -> None:
    with pytest.raises(ConfigurationError, match=r"'typo'.*\['enforcment'\]"):
        Rule(name="typo", set={"enforcment": "off"})
    with pytest.raises(ConfigurationError, match="rules"):
        Rule(name="nested", set={"rules": ()})


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        pytest.param(("off", 1), ("required", 10), "required", id="higher-priority-later"),
        pytest.param(("required", 10), ("off", 1), "required", id="higher-priority-first"),
        pytest.param(("off", 10), ("required", 1), "off", id="off-wins-with-higher-priority"),
    ],
)
def test_rules_apply_in_priority_order(
    first: tuple[str, int], second: tuple[str, int], expected: str
) -> None:
    rules = (
        Rule(name=f"set-{first[0]}", set={"enforcement": first[0]}, priority=first[1]),
        Rule(name=f"set-{second[0]}", set={"enforcement": second[0]}, priority=second[1]),
    )
    policy = Policy(rules=rules)
    assert [r.priority for r in policy.rules] == sorted(r.priority for r in rules)
    decision = DefaultPolicyEngine(policy).evaluate(user(), [], ctx(PRACTICE_NOW))
    assert decision.required is (expected == "required")
    ordered = sorted(rules, key=lambda r: r.priority)
    assert decision.reasons[:3] == (
        f"rule {ordered[0].name!r} applies",
        f"rule {ordered[1].name!r} applies",
        f"enforcement is {expected!r}",
    )


def test_rules_of_equal_priority_keep_their_order() -> None:
    rules = (
        Rule(name="a", set={"enforcement": "off"}),
        Rule(name="b", set={"enforcement": "optional"}),
    )
    decision = DefaultPolicyEngine(Policy(rules=rules)).evaluate(user(), [], ctx(PRACTICE_NOW))
    assert decision.optional
    assert decision.reasons[:2] == ("rule 'a' applies", "rule 'b' applies")


@pytest.mark.parametrize(
    ("rule", "subject", "action", "applies"),
    [
        (Rule(name="r", set={}, tenants=frozenset({"t1"})), user(), "login", True),
        (Rule(name="r", set={}, tenants=frozenset({"t2"})), user(), "login", False),
        (Rule(name="r", set={}, tenants=frozenset({"t1"})), user(tenant=None), "login", False),
        (Rule(name="r", set={}, kinds=frozenset({"service"})), _service, "login", True),
        (Rule(name="r", set={}, kinds=frozenset({"service"})), user(), "login", False),
        (Rule(name="r", set={}, actions=frozenset({"admin"})), user(), "admin", True),
        (Rule(name="r", set={}, actions=frozenset({"admin"})), user(), "login", False),
        (Rule(name="r", set={}, attributes={"role": "admin"}), _admin, "login", True),
        (Rule(name="r", set={}, attributes={"role": "admin"}), user(), "login", False),
        (
            Rule(name="r", set={}, tenants=frozenset({"t1"}), attributes={"role": "admin"}),
            user(tenant="t2", attributes={"role": "admin"}),
            "login",
            False,
        ),
        (Rule(name="r", set={}), user(), "login", True),
    ],
)
def test_rule_conditions(rule: Rule, subject: Subject, action: str, applies: bool) -> None:
    assert rule.applies(subject, ctx(PRACTICE_NOW, action)) is applies


def test_rules_are_immutable_data() -> None:
    settings_ = {"enforcement": "off"}
    attributes = {"role": "admin"}
    rule = Rule(name="r", set=settings_, attributes=attributes, tenants={"t1"})  # type: ignore[arg-type]
    settings_["enforcement"] = "required"
    attributes["role"] = "clerk"
    assert rule.set["enforcement"] == "off"
    assert rule.attributes["role"] == "admin"
    assert rule.tenants == frozenset({"t1"})
    with pytest.raises(TypeError):
        rule.set["enforcement"] = "required"  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        rule.priority = 5  # type: ignore[misc]


def test_action_rule_applies_per_action() -> None:
    """A rule on the action: the admin screens get the ISM session."""
    rule = Rule(
        name="admin-strict", actions=frozenset({"admin"}), set={"session": SessionLimits.ism()}
    )
    engine = DefaultPolicyEngine(Policy.practice_suite(rules=(rule,)))
    on_admin = engine.evaluate(user(), [cred("totp")], ctx(PRACTICE_NOW, "admin"))
    on_login = engine.evaluate(user(), [cred("totp")], ctx(PRACTICE_NOW))
    assert on_admin.session == SessionLimits.ism()
    assert on_login.session == PRACTICE_SESSION


def test_rule_breaking_the_standards_never_yields_a_decision() -> None:
    """Fails closed: refused when the policy is built (once fixed) or when it applies."""
    rule = Rule(name="kba", tenants=frozenset({"t9"}), set={"primary": ("recovery_pin",)})

    def decide() -> Decision:
        engine = DefaultPolicyEngine(Policy(rules=(rule,)))
        return engine.evaluate(user(tenant="t9"), [cred("recovery_pin")], ctx(PRACTICE_NOW))

    with pytest.raises(ConfigurationError, match="NIST"):
        decide()


def test_rule_breaking_the_standards_is_refused_at_configuration() -> None:
    rule = Rule(name="kba", tenants=frozenset({"t9"}), set={"primary": ("recovery_pin",)})
    with pytest.raises(ConfigurationError, match="NIST"):
        Policy(rules=(rule,))


def test_decision_explain_lists_every_reason() -> None:
    policy = Policy.practice_suite(rules=(TENANT_OFF, ADMINS_ISM))
    subject = user("u-x", tenant="t-off", attributes={"role": "admin"})
    decision = DefaultPolicyEngine(policy).evaluate(
        subject, [], ctx(PRACTICE_NOW, "change_phone", password_age=MINUTE)
    )
    lines = decision.explain().splitlines()
    assert len(decision.reasons) >= 4
    for reason in decision.reasons:
        assert f"because: {reason}" in lines
    assert "step-up for a sensitive action: satisfied" in lines
    assert lines[0] == "MFA required: no"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"enforcement": "mandatory"},
        {"primary": "totp"},
        {"primary": ("totp", 3)},
        {"fallbacks": "secret_questions"},
        {"enforce_from": dt.datetime(2026, 4, 15)},
    ],
    ids=repr,
)
def test_malformed_policy_is_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        Policy(**kwargs)


def test_engine_needs_a_policy() -> None:
    assert DefaultPolicyEngine().policy == Policy()
    with pytest.raises(ConfigurationError):
        DefaultPolicyEngine("practice")  # type: ignore[arg-type]


def test_context_validation() -> None:
    with pytest.raises(InvalidType):
        Context(now=dt.datetime(2026, 3, 2))
    with pytest.raises(InvalidType):
        Context(now="2026-03-02T00:00:00Z")  # type: ignore[arg-type]
    for action in ("", "x" * 65):
        with pytest.raises(InvalidInput):
            Context(now=PRACTICE_NOW, action=action)
    facts = {"ip": "192.0.2.1"}
    context = Context(now=PRACTICE_NOW, facts=facts)
    facts["ip"] = "198.51.100.7"
    assert context.facts["ip"] == "192.0.2.1"
    with pytest.raises(TypeError):
        context.facts["ip"] = "x"  # type: ignore[index]


# -- bugs found ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("policy", "subject", "action", "now"),
    [
        pytest.param(PRACTICE, user(), "enroll", PRACTICE_NOW, id="practice-first-enrolment"),
        pytest.param(REGISTER, _no_email, "change_email", AFTER, id="register-add-missing-email"),
    ],
)
def test_first_factor_step_up_needs_the_password_only(
    policy: Policy, subject: Subject, action: str, now: dt.datetime
) -> None:
    decision = DefaultPolicyEngine(policy).evaluate(
        subject, [], ctx(now, action, password_age=MINUTE)
    )
    assert decision.required
    assert decision.enroll  # nothing to verify yet: a fresh factor cannot exist
    assert decision.step_up
    assert decision.step_up_satisfied


@pytest.mark.parametrize("field", ["password_verified_at", "mfa_verified_at"], ids=str)
def test_context_refuses_naive_verification_times(field: str) -> None:
    naive: dict[str, Any] = {field: dt.datetime(2026, 3, 2, 9, 29)}
    with pytest.raises(InvalidType):
        Context(now=PRACTICE_NOW, action="change_phone", **naive)


def test_naive_verification_time_never_yields_a_decision() -> None:
    """Today a bare TypeError from evaluate (the bug above); once fixed, InvalidType."""

    def decide() -> Decision:
        context = Context(
            now=PRACTICE_NOW,
            action="change_phone",
            password_verified_at=dt.datetime(2026, 3, 2, 9, 29),
        )
        return DefaultPolicyEngine(PRACTICE).evaluate(user(), [cred("totp")], context)

    with pytest.raises(TypeError, match=r"naive|aware"):
        decide()


def test_verification_time_in_the_future_is_not_fresh() -> None:
    year = dt.timedelta(days=365)
    context = Context(
        now=PRACTICE_NOW,
        action="change_phone",
        password_verified_at=PRACTICE_NOW + year,
        mfa_verified_at=PRACTICE_NOW + year,
    )
    decision = DefaultPolicyEngine(PRACTICE).evaluate(user(), [cred("totp")], context)
    assert not decision.step_up_satisfied


def test_policy_without_primary_factor_is_refused() -> None:
    with pytest.raises(ConfigurationError):
        Policy(primary=())


# ---------------------------------------------------------------------------------------
# 4. purity and properties
# ---------------------------------------------------------------------------------------
POLICIES = [
    PRACTICE,
    Policy.practice_suite(),
    REGISTER,
    Policy(),
    Policy(enforcement="optional", primary=("totp", "email"), profile_factors=("email",)),
    Policy(exempt=lambda s: s.attributes.get("break_glass") is True),
    Policy.register(launched_at=LAUNCH, exempt=frozenset({"service"})),
]
FACTORS = ["totp", "sms", "email", "recovery_pin", "secret_questions", "recovery_codes", "webauthn"]
ACTIONS = [
    "login",
    "admin",
    "change_email",
    "change_phone",
    "change_questions",
    "enroll",
    "remove_factor",
]


@st.composite
def subjects(draw: st.DrawFn) -> Subject:
    attributes: dict[str, Any] = {}
    if draw(st.booleans()):
        attributes["role"] = draw(st.sampled_from(["admin", "clerk"]))
    if draw(st.booleans()):
        attributes["mfa_opted_in"] = draw(st.sampled_from([True, False, "yes"]))
    if draw(st.booleans()):
        attributes["break_glass"] = True
    return user(
        "u1",
        tenant=draw(st.sampled_from([None, "t1", "t-off"])),
        kind=draw(st.sampled_from(["user", "service", "robot"])),
        email=draw(st.sampled_from([None, "u1@example.com"])),
        attributes=attributes,
    )


credential_lists = st.lists(
    st.builds(cred, st.sampled_from(FACTORS), st.sampled_from([ACTIVE, PENDING])),
    max_size=5,
)
ages = st.none() | st.timedeltas(min_value=dt.timedelta(0), max_value=dt.timedelta(hours=1))


@st.composite
def contexts(draw: st.DrawFn) -> Context:
    now = draw(
        st.sampled_from([LAUNCH, DEADLINE - US, DEADLINE, AFTER])
        | st.datetimes(
            min_value=dt.datetime(2025, 12, 1),
            max_value=dt.datetime(2026, 8, 1),
            timezones=st.just(UTC),
        )
    )
    return ctx(
        now,
        draw(st.sampled_from(ACTIONS)),
        password_age=draw(ages),
        mfa_age=draw(ages),
        reviewed=draw(st.booleans()),
    )


policies = st.sampled_from(POLICIES)


@settings(max_examples=300, deadline=None)
@given(policy=policies, subject=subjects(), credentials=credential_lists, context=contexts())
def test_evaluate_is_pure_and_consistent(
    policy: Policy, subject: Subject, credentials: list[Credential], context: Context
) -> None:
    before = (copy.copy(credentials), dict(subject.attributes), context, policy)
    engine = DefaultPolicyEngine(policy)

    decision = engine.evaluate(subject, credentials, context)

    # deterministic: same inputs, equal decision, also from another engine and a tuple
    assert engine.evaluate(subject, credentials, context) == decision
    assert DefaultPolicyEngine(policy).evaluate(subject, tuple(credentials), context) == decision
    # the inputs are unchanged
    assert (credentials, dict(subject.attributes), context, policy) == before
    # never required without a way through
    if decision.required:
        assert decision.enroll or decision.methods
    # knowledge never stands in for a possession factor
    assert not KNOWLEDGE_FACTOR_NAMES.intersection(decision.methods)
    assert not KNOWLEDGE_FACTOR_NAMES.intersection(decision.enroll)
    # exempt subjects are never required, and get nothing to do
    effective, _ = policy.effective(subject, context)
    exempt = (
        effective.exempt(subject)
        if callable(effective.exempt)
        else subject.kind in effective.exempt
    )
    if exempt:
        assert not decision.required
        assert not decision.optional
        assert decision.enroll == decision.enroll_recovery == ()
        assert decision.notices == ()
    # methods and enrolment never overlap, and follow the policy's order
    assert not set(decision.methods) & set(decision.enroll)
    assert list(decision.methods) == [f for f in effective.primary if f in decision.methods]
    assert not (decision.required and decision.optional)
    # a grace period applies only before enforce_from, and says when it ends
    if decision.grace_until is not None:
        assert decision.grace_until == effective.enforce_from
        assert context.now < decision.grace_until
    # the step-up is exactly the sensitive actions; satisfied implies a fresh password
    assert decision.step_up is (context.action not in ("login", "admin"))
    if decision.step_up_satisfied:
        assert decision.step_up
        assert context.password_verified_at is not None
        assert context.now - context.password_verified_at <= effective.step_up_within
    assert decision.explain().count("\nbecause: ") == len(decision.reasons)


@settings(max_examples=200, deadline=None)
@given(subject=subjects(), credentials=credential_lists, context=contexts())
def test_register_optional_subject_is_in_grace(
    subject: Subject, credentials: list[Credential], context: Context
) -> None:
    decision = DefaultPolicyEngine(REGISTER).evaluate(subject, credentials, context)
    if decision.optional:
        assert decision.grace_until == REGISTER.enforce_from == DEADLINE
        assert not decision.required
        assert decision.methods == ()
    assert (decision.grace_until is not None) is (context.now < DEADLINE)
    if context.now >= DEADLINE:
        assert decision.required  # mandatory for all, services included


# ---------------------------------------------------------------------------------------
# 5. the facade
# ---------------------------------------------------------------------------------------
def practice_mfa(
    store: MemoryStore,
    keyring: Keyring,
    clock: FakeClock,
    events: ListSink,
    outbox: Outbox | None = None,
) -> MFA:
    """An MFA configured like the practice suite."""
    return MFA(
        store=store,
        keyring=keyring,
        factors=[
            TOTP(issuer="ACME"),
            SMSOTP(sender=outbox if outbox is not None else Outbox(), issuer="ACME"),
            RecoveryPIN(hasher=SecretHasher.owasp_minimum()),
        ],
        clock=clock,
        events=events,
        policy=Policy.practice_suite(),
    )


def test_facade_reads_credentials_from_the_store(
    store: MemoryStore,
    keyring: Keyring,
    clock: FakeClock,
    events: ListSink,
    alice: Subject,
    enrolled: EnrollTOTP,
) -> None:
    mfa = practice_mfa(store, keyring, clock, events)
    first = mfa.evaluate(alice)
    assert first.required
    assert first.enroll == ("totp", "sms")
    assert first.methods == ()

    pending = mfa.enroll(alice, TOTP.setup())
    assert mfa.evaluate(alice).enroll == ("totp", "sms")  # pending does not count
    assert not pending.credential.active

    enrolled(mfa, alice, clock)
    after = mfa.evaluate(alice)
    assert after.methods == ("totp",)
    assert after.enroll == ()
    assert after.enroll_recovery == ("recovery_pin",)

    mfa.enroll(alice, RecoveryPIN.setup("731946"))
    done = mfa.evaluate(alice)
    assert done.enroll_recovery == ()
    assert done.recovery == ("recovery_pin",)


def test_facade_emits_policy_decided_without_secrets(
    store: MemoryStore,
    keyring: Keyring,
    clock: FakeClock,
    events: ListSink,
    alice: Subject,
    enrolled: EnrollTOTP,
) -> None:
    mfa = practice_mfa(store, keyring, clock, events)
    enrollment, _ = enrolled(mfa, alice, clock)
    events.clear()
    context = Context(now=clock.now(), action="change_phone", password_verified_at=clock.now())

    decision = mfa.evaluate(alice, context)

    (event,) = events.of_type(EventType.POLICY_DECIDED)
    assert event.subject_id == alice.id
    assert event.tenant == alice.tenant
    assert event.at == clock.now()
    assert event.reason == "required"
    assert event.detail["action"] == "change_phone"
    assert event.detail["reasons"] == list(decision.reasons)
    assert event.factor is None
    assert event.credential_id is None
    text = repr(event) + str(dict(event.detail))
    assert enrollment.secret not in text
    assert enrollment.secret.lower() not in text.lower()

    mfa.evaluate(user("svc", kind="service"))
    assert events.of_type(EventType.POLICY_DECIDED)[-1].reason == "not_required"


def test_facade_default_context_is_a_sign_in_now(
    store: MemoryStore, keyring: Keyring, clock: FakeClock, events: ListSink, alice: Subject
) -> None:
    mfa = MFA(
        store=store,
        keyring=keyring,
        factors=[TOTP(issuer="ACME")],
        clock=clock,
        events=events,
        policy=Policy.register(launched_at=clock.now()),
    )
    deadline = dt.datetime(2026, 4, 1, tzinfo=UTC)  # the fixture clock starts 2026-01-01
    grace = mfa.evaluate(alice)
    assert grace.optional
    assert grace.grace_until == deadline
    assert grace.methods == ()
    clock.set(deadline - US)
    assert mfa.evaluate(alice).optional
    clock.advance(US)
    assert mfa.evaluate(alice).required
    assert mfa.evaluate(alice).methods == ("email",)
    assert events.of_type(EventType.POLICY_DECIDED)[-1].detail["action"] == "login"


@pytest.mark.parametrize("context", ["login", {"now": PRACTICE_NOW}, PRACTICE_NOW], ids=repr)
def test_facade_refuses_a_non_context(
    store: MemoryStore,
    keyring: Keyring,
    clock: FakeClock,
    events: ListSink,
    alice: Subject,
    context: Any,
) -> None:
    mfa = practice_mfa(store, keyring, clock, events)
    with pytest.raises(InvalidType, match="Context"):
        mfa.evaluate(alice, context)
    with pytest.raises(InvalidType):
        mfa.evaluate("u-alice")  # type: ignore[arg-type]
    assert events.events == []


def test_facade_unsupported_country_sms_still_offers_totp(
    store: MemoryStore, keyring: Keyring, clock: FakeClock, events: ListSink, alice: Subject
) -> None:
    outbox = Outbox()
    mfa = practice_mfa(store, keyring, clock, events, outbox)

    for number, region in [("0412 345 678", None), ("+1 201 555 0123", "US")]:
        with pytest.raises(UnsupportedRegion) as caught:
            mfa.enroll(alice, SMSOTP.setup(number, region))
        assert "authenticator app" in caught.value.public_message

    assert len(outbox) == 0
    assert list(store.list_credentials(alice.id)) == []
    decision = mfa.evaluate(alice)
    assert decision.required
    assert "totp" in decision.enroll
    assert decision.enroll[0] == "totp"
    assert "sms_restricted" in decision.notices


class CannedEngine:
    """A host's own PolicyEngine: records what it is given, returns a fixed decision."""

    def __init__(self) -> None:
        self.calls: list[tuple[Subject, tuple[Credential, ...], Context]] = []

    def evaluate(
        self, subject: Subject, credentials: Sequence[Credential], context: Context
    ) -> Decision:
        self.calls.append((subject, tuple(credentials), context))
        return Decision(
            required=False,
            optional=False,
            methods=(),
            enroll=(),
            enroll_recovery=(),
            fallbacks=(),
            recovery=(),
            review_details=False,
            grace_until=None,
            step_up=False,
            step_up_satisfied=False,
            session=SessionLimits.ism(),
            notices=(),
            reasons=("host engine",),
        )


def test_facade_uses_a_custom_engine_as_is(
    store: MemoryStore,
    keyring: Keyring,
    clock: FakeClock,
    events: ListSink,
    alice: Subject,
    enrolled: EnrollTOTP,
) -> None:
    engine = CannedEngine()
    assert isinstance(engine, PolicyEngine)
    mfa = MFA(
        store=store,
        keyring=keyring,
        factors=[TOTP(issuer="ACME")],
        clock=clock,
        events=events,
        policy=engine,
    )
    assert mfa.policy is engine
    _, credential = enrolled(mfa, alice, clock)

    decision = mfa.evaluate(alice)

    assert decision.reasons == ("host engine",)
    ((subject, credentials, context),) = engine.calls
    assert subject == alice
    assert [c.id for c in credentials] == [credential.id]
    assert context == Context(now=clock.now())
    assert events.of_type(EventType.POLICY_DECIDED)[-1].reason == "not_required"


def test_facade_wraps_a_policy_and_keeps_an_engine(
    store: MemoryStore, keyring: Keyring, clock: FakeClock
) -> None:
    policy = Policy.practice_suite()
    wrapped = MFA(store=store, keyring=keyring, factors=[TOTP(issuer="A")], policy=policy)
    assert isinstance(wrapped.policy, DefaultPolicyEngine)
    assert wrapped.policy.policy is policy
    engine = DefaultPolicyEngine(policy)
    kept = MFA(store=store, keyring=keyring, factors=[TOTP(issuer="A")], policy=engine)
    assert kept.policy is engine
    default = MFA(store=store, keyring=keyring, factors=[TOTP(issuer="A")])
    assert isinstance(default.policy, DefaultPolicyEngine)
    assert default.policy.policy == Policy()


@pytest.mark.parametrize("policy", ["x", 3, {"enforcement": "off"}], ids=repr)
def test_facade_refuses_a_non_policy(store: MemoryStore, keyring: Keyring, policy: Any) -> None:
    with pytest.raises(ConfigurationError, match="Policy"):
        MFA(store=store, keyring=keyring, factors=[TOTP(issuer="A")], policy=policy)


def test_step_up_factor_can_be_required_again_for_the_register() -> None:
    """The register preset asks for the password only; a host can ask for a code too."""
    strict = Policy.register(launched_at=LAUNCH, step_up_factor=True)
    decision = DefaultPolicyEngine(strict).evaluate(
        _carol, [], ctx(AFTER, "change_email", password_age=MINUTE)
    )
    assert decision.step_up
    assert not decision.step_up_satisfied


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda: Policy(exempt="service"), id="exempt-str"),  # type: ignore[arg-type]
        pytest.param(
            lambda: Rule(name="r", set={}, tenants="t1"),  # type: ignore[arg-type]
            id="rule-tenants-str",
        ),
        pytest.param(
            lambda: Rule(name="r", set={}, kinds="user"),  # type: ignore[arg-type]
            id="rule-kinds-str",
        ),
        pytest.param(
            lambda: Rule(name="r", set={}, actions="login"),  # type: ignore[arg-type]
            id="rule-actions-str",
        ),
    ],
)
def test_a_bare_string_is_not_split_into_characters(build: Callable[[], object]) -> None:
    with pytest.raises(ConfigurationError):
        build()
