"""The public API is exact and deliberate.

Adding, removing or renaming a public name must change the expected lists below in the same
commit: that is the point of these tests (as in httpx). Names are sorted the way ruff's
RUF022 sorts ``__all__``: SCREAMING_CASE first, then CamelCase, then everything else.
"""

from __future__ import annotations

import importlib
import inspect
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

import mfakit
import mfakit.exceptions
import mfakit.factors
import mfakit.storage
import mfakit.testing

SRC = Path(__file__).resolve().parents[1] / "src"

EXPECTED: dict[str, list[str]] = {
    "mfakit": [
        "MFA",
        "Actor",
        "Authorizer",
        "Challenge",
        "ChallengeNotFound",
        "Changes",
        "CodeEnrollment",
        "ConcurrencyConflict",
        "ConfigurationError",
        "Context",
        "Credential",
        "CredentialNotFound",
        "CredentialStatus",
        "Decision",
        "DecryptionError",
        "DefaultPolicyEngine",
        "DeliveryError",
        "DenyAll",
        "Event",
        "EventType",
        "ExpiredCode",
        "FactorKind",
        "FlowError",
        "FlowExpired",
        "FlowState",
        "FlowStep",
        "FlowStepError",
        "InvalidCode",
        "InvalidEmailAddress",
        "InvalidFlowToken",
        "InvalidInput",
        "InvalidPhoneNumber",
        "InvalidSecret",
        "InvalidType",
        "Keyring",
        "KeyringError",
        "LockState",
        "LockedOut",
        "Lockout",
        "LoggingSink",
        "MFAError",
        "MFAWarning",
        "MalformedCode",
        "NotAMobileNumber",
        "NotAuthorized",
        "NotEnrolled",
        "PhoneNumberError",
        "Policy",
        "PolicyEngine",
        "QuotaExceeded",
        "QuotaState",
        "ReplayedCode",
        "ReportRow",
        "ResendTooSoon",
        "RoleAuthorizer",
        "Rule",
        "SendLimitReached",
        "SendQuota",
        "SendRefused",
        "SessionLimits",
        "SessionStatus",
        "SignInFlow",
        "StepUpRequired",
        "StoreError",
        "Subject",
        "SubjectRecords",
        "SystemClock",
        "UnparseablePhoneNumber",
        "UnsupportedParameterWarning",
        "UnsupportedRegion",
        "Verification",
        "VerificationFailed",
        "WeakSecret",
    ],
    "mfakit.factors": [
        "SMSOTP",
        "TOTP",
        "AnswerRules",
        "DeliveredCodeFactor",
        "EmailOTP",
        "EmailSetup",
        "EmailTemplate",
        "Factor",
        "FactorSetup",
        "PINSetup",
        "QuestionSetup",
        "RecoveryCodeBatch",
        "RecoveryCodes",
        "RecoveryCodesSetup",
        "RecoveryPIN",
        "SMSSetup",
        "SecretQuestions",
        "SendQuotas",
        "TOTPEnrollment",
        "TOTPSetup",
    ],
    "mfakit.testing": [
        "FakeClock",
        "ListSink",
        "LoggingSink",
        "MemoryStore",
        "Outbox",
        "SentSMS",
        "StoreContract",
        "totp_now",
    ],
    "mfakit.storage": [
        "MemoryStore",
        "SQLStore",
    ],
    "mfakit.contrib.django": [
        "DjangoStore",
    ],
    "mfakit.contrib.django.decorators": [
        "mfa_exempt",
        "mfa_required",
    ],
    "mfakit.contrib.django.middleware": [
        "MFARequiredMiddleware",
        "SessionKeys",
        "check_request",
        "current_state",
        "default_subject",
        "end_sign_in",
        "get_flow",
        "get_subject",
        "save_step",
        "start_sign_in",
    ],
    "mfakit.contrib.flask": [
        "FlaskMFA",
        "check_csrf",
        "csrf_token",
        "mfa_required",
        "step_required",
    ],
    "mfakit.exceptions": [
        "ChallengeNotFound",
        "ConcurrencyConflict",
        "ConfigurationError",
        "CredentialNotFound",
        "DecryptionError",
        "DeliveryError",
        "ExpiredCode",
        "FlowError",
        "FlowExpired",
        "FlowStepError",
        "InvalidCode",
        "InvalidEmailAddress",
        "InvalidFlowToken",
        "InvalidInput",
        "InvalidPhoneNumber",
        "InvalidSecret",
        "InvalidType",
        "KeyringError",
        "LockedOut",
        "MFAError",
        "MFAWarning",
        "MalformedCode",
        "NotAMobileNumber",
        "NotAuthorized",
        "NotEnrolled",
        "PhoneNumberError",
        "QuotaExceeded",
        "ReplayedCode",
        "ResendTooSoon",
        "SendLimitReached",
        "SendRefused",
        "StepUpRequired",
        "StoreError",
        "UnparseablePhoneNumber",
        "UnsupportedParameterWarning",
        "UnsupportedRegion",
        "VerificationFailed",
        "WeakSecret",
    ],
}


def ruff_sort_key(name: str) -> tuple[int, str]:
    """RUF022 order: SCREAMING_CASE, then CamelCase, then the rest; alphabetical inside."""
    if name.isupper():
        return (0, name)
    if name[:1].isupper():
        return (1, name)
    return (2, name)


def exception_classes() -> list[type[BaseException]]:
    return [
        obj
        for name in mfakit.exceptions.__all__
        if isinstance(obj := getattr(mfakit.exceptions, name), type)
        and issubclass(obj, BaseException)
    ]


@pytest.mark.parametrize("module_name", sorted(EXPECTED))
def test_all_is_exactly_the_expected_list(module_name: str) -> None:
    module: ModuleType = importlib.import_module(module_name)
    assert list(module.__all__) == EXPECTED[module_name]


@pytest.mark.parametrize("module_name", sorted(EXPECTED))
def test_all_is_sorted_and_unique(module_name: str) -> None:
    names = list(importlib.import_module(module_name).__all__)
    assert names == sorted(names, key=ruff_sort_key)
    assert len(names) == len(set(names))


@pytest.mark.parametrize(
    ("module_name", "name"),
    [(module, name) for module, names in sorted(EXPECTED.items()) for name in names],
)
def test_every_public_name_resolves(module_name: str, name: str) -> None:
    module = importlib.import_module(module_name)
    obj = getattr(module, name)  # AttributeError if a listed name is missing
    assert callable(obj), f"{module_name}.{name} is not a class or function"


def test_top_level_reexports_are_the_same_objects() -> None:
    for name in mfakit.exceptions.__all__:
        assert getattr(mfakit, name) is getattr(mfakit.exceptions, name)
    assert mfakit.storage.MemoryStore is mfakit.testing.MemoryStore


def test_unknown_attribute_of_testing_raises_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_thing"):
        _ = mfakit.testing.no_such_thing


def test_every_exception_has_one_root() -> None:
    classes = exception_classes()
    assert classes, "mfakit.exceptions exports no exceptions"
    for cls in classes:
        if issubclass(cls, Warning):
            assert issubclass(cls, mfakit.MFAWarning), cls
            assert not issubclass(cls, mfakit.MFAError), cls
        else:
            assert issubclass(cls, mfakit.MFAError), cls
    # Nothing else in the module is an exception class that escaped __all__.
    defined = {
        name
        for name, obj in inspect.getmembers(mfakit.exceptions, inspect.isclass)
        if issubclass(obj, BaseException) and obj.__module__ == "mfakit.exceptions"
    }
    assert defined == set(mfakit.exceptions.__all__)


def test_input_errors_are_value_errors_and_type_errors_are_type_errors() -> None:
    assert issubclass(mfakit.InvalidInput, ValueError)
    assert issubclass(mfakit.InvalidType, TypeError)
    assert issubclass(mfakit.InvalidType, mfakit.InvalidInput)


def test_verification_failures_share_one_public_message() -> None:
    subclasses = [
        cls
        for cls in exception_classes()
        if issubclass(cls, mfakit.VerificationFailed) and cls is not mfakit.LockedOut
    ]
    # At least the six named in the design; a new subclass joins the check automatically.
    assert {
        mfakit.InvalidCode,
        mfakit.ReplayedCode,
        mfakit.ExpiredCode,
        mfakit.ChallengeNotFound,
        mfakit.NotEnrolled,
        mfakit.VerificationFailed,
    } <= set(subclasses)
    messages = {cls("developer detail").public_message for cls in subclasses}
    assert messages == {mfakit.VerificationFailed.public_message}
    # A malformed code looks the same to the end user as a wrong one.
    assert mfakit.MalformedCode.public_message == mfakit.InvalidCode.public_message
    locked = mfakit.LockedOut("detail", suspended=True)
    assert locked.public_message != mfakit.InvalidCode.public_message
    assert locked.suspended is True
    assert locked.retry_at is None


def test_public_messages_never_echo_the_developer_message() -> None:
    for cls in exception_classes():
        if issubclass(cls, Warning):
            continue
        error = cls("secret-detail-123456")
        assert isinstance(error, mfakit.MFAError)
        assert error.public_message
        assert "123456" not in error.public_message


def test_import_mfakit_is_light() -> None:
    """``import mfakit`` pulls in no QR, phone-number, hashing or imaging library."""
    heavy = ("segno", "phonenumbers", "argon2", "PIL")
    script = (
        "import sys, mfakit, mfakit.factors, mfakit.storage\n"
        f"print(','.join(sorted(m for m in {heavy!r} if m in sys.modules)))\n"
        "print('mfakit' in sys.modules)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=60,
    )
    loaded, imported = result.stdout.splitlines()
    assert imported == "True"
    assert loaded == ""
