"""mfakit: multi-factor authentication for any Python web application.

The host checks the password; mfakit brings the second factor, the lockout, the secrets at
rest and the audit trail::

    from mfakit import MFA, Keyring, Subject
    from mfakit.factors import TOTP
    from mfakit.storage import MemoryStore

    mfa = MFA(store=MemoryStore(), keyring=Keyring.from_env(), factors=[TOTP(issuer="ACME")])
    alice = Subject(id="u1", username="alice")
    enrollment = mfa.enroll(alice, TOTP.setup(label="Phone"))
    mfa.confirm(alice, enrollment.id, code_from_the_app)
    challenge = mfa.challenge(alice, "totp")
    proof = mfa.verify(alice, challenge.id, "123 456")   # raises on every failure

Only the names in ``__all__`` are public; ``mfakit._*`` modules are private.
"""

from mfakit._admin import Actor, Authorizer, DenyAll, ReportRow, RoleAuthorizer
from mfakit._clock import SystemClock
from mfakit._events import LoggingSink
from mfakit._flow import FlowState, FlowStep, SignInFlow
from mfakit._messaging import CodeEnrollment
from mfakit._models import (
    Challenge,
    Changes,
    Credential,
    CredentialStatus,
    Event,
    EventType,
    FactorKind,
    LockState,
    QuotaState,
    Subject,
    SubjectRecords,
    Verification,
)
from mfakit._policy import (
    Context,
    Decision,
    DefaultPolicyEngine,
    Policy,
    PolicyEngine,
    Rule,
    SessionLimits,
    SessionStatus,
)
from mfakit._quota import SendQuota
from mfakit._service import MFA
from mfakit._throttle import Lockout
from mfakit.exceptions import (
    ChallengeNotFound,
    ConcurrencyConflict,
    ConfigurationError,
    CredentialNotFound,
    DecryptionError,
    DeliveryError,
    ExpiredCode,
    FlowError,
    FlowExpired,
    FlowStepError,
    InvalidCode,
    InvalidEmailAddress,
    InvalidFlowToken,
    InvalidInput,
    InvalidPhoneNumber,
    InvalidSecret,
    InvalidType,
    KeyringError,
    LockedOut,
    MalformedCode,
    MFAError,
    MFAWarning,
    NotAMobileNumber,
    NotAuthorized,
    NotEnrolled,
    PhoneNumberError,
    QuotaExceeded,
    ReplayedCode,
    ResendTooSoon,
    SendLimitReached,
    SendRefused,
    StepUpRequired,
    StoreError,
    UnparseablePhoneNumber,
    UnsupportedParameterWarning,
    UnsupportedRegion,
    VerificationFailed,
    WeakSecret,
)
from mfakit.hazmat.secretbox import Keyring

__version__ = "0.1.0.dev0"

__all__ = [
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
]
