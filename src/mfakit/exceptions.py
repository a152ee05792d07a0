"""The one exception tree of mfakit.

Every failure mfakit reports is an instance of :class:`MFAError`, so a host can catch the
whole family in one place. Success returns evidence; failure always raises, so a host that
forgets to look at a return value fails closed.

Each error has two messages:

* ``str(error)`` is for developers and logs: precise, but never containing a code, seed, PIN,
  answer or other secret (SECURITY.md 22).
* ``error.public_message`` is safe to show an end user. For every verification failure it is
  the same sentence, so the answer never says which secret was close, whether the subject
  exists or which factors it has (SECURITY.md 16, 36).

Hierarchy::

    MFAError
    ├── ConfigurationError          the host configured mfakit wrongly
    ├── InvalidInput (ValueError)   malformed input; nothing was changed
    │   ├── InvalidType (TypeError) an argument of the wrong type
    │   ├── MalformedCode           not exactly N ASCII digits after normalisation
    │   ├── InvalidSecret           bad base32, too short, unusable key material
    │   ├── WeakSecret              a PIN or answer that is too easy to guess
    │   ├── InvalidEmailAddress     not a usable e-mail address
    │   └── PhoneNumberError        not a usable SMS number
    │       ├── UnparseablePhoneNumber   not a phone number at all
    │       ├── InvalidPhoneNumber       not valid for the region, or has an extension
    │       ├── NotAMobileNumber         landline, premium-rate, toll-free, ...
    │       └── UnsupportedRegion        country not allowed; suggests an authenticator app
    ├── VerificationFailed          the subject did not prove the factor
    │   ├── InvalidCode             wrong code
    │   ├── ReplayedCode            right code, already used (RFC 6238 section 5.2)
    │   ├── ExpiredCode             the challenge or pending enrolment has expired
    │   ├── ChallengeNotFound       unknown, used, or another subject's challenge
    │   ├── NotEnrolled             the subject has no active credential for the factor
    │   └── LockedOut               too many failures; carries ``retry_at`` / ``suspended``
    ├── SendRefused                 no code sent now; carries ``retry_at``
    │   ├── ResendTooSoon           the resend cooldown has not passed
    │   ├── SendLimitReached        this challenge has had all its sends
    │   └── QuotaExceeded           per destination / subject / tenant quota (SMS pumping)
    ├── DeliveryError               the SMS or e-mail sender failed; no usable challenge
    ├── NotAuthorized               an administrator action the Authorizer refused
    ├── StepUpRequired              a sensitive action needs the password again
    ├── FlowError                   the sign-in flow's state was refused
    │   ├── InvalidFlowToken        tampered, foreign subject or session, malformed
    │   ├── FlowExpired             the state is too old; sign in again
    │   └── FlowStepError           not the step the state allows
    ├── CredentialNotFound          no such credential for this subject
    ├── KeyringError                secrets-at-rest problems
    │   └── DecryptionError         tampered blob, blob moved to another record, unknown key
    └── StoreError                  the storage backend failed
        └── ConcurrencyConflict     a conditional write kept losing the race

The user-facing failures (:class:`VerificationFailed` and below) deliberately share one
``public_message``; only :class:`LockedOut` differs, and it says the same thing whether the
code submitted while locked was right or wrong.
"""

from __future__ import annotations

import datetime as _dt

__all__ = [
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
]

#: The one sentence every verification failure shows an end user.
GENERIC_FAILURE = "The code could not be verified. Check it and try again."
LOCKED_MESSAGE = (
    "Too many attempts. Please wait before trying again, or contact your administrator."
)


class MFAError(Exception):
    """Root of every error mfakit raises.

    Attributes:
        public_message: A sentence that is safe to show an end user.
    """

    public_message: str = "The request could not be completed."


class ConfigurationError(MFAError):
    """The host configured mfakit in a way that cannot work or is unsafe."""

    public_message = "Multi-factor authentication is not configured correctly."


class InvalidInput(MFAError, ValueError):
    """Input was malformed. Nothing was stored, sent or counted."""

    public_message = "The value entered is not valid."


class InvalidType(InvalidInput, TypeError):
    """An argument had the wrong type (for example ``bytes`` where ``str`` is required)."""


class MalformedCode(InvalidInput):
    """A code was not exactly N ASCII digits after normalisation (SECURITY.md 11)."""

    public_message = GENERIC_FAILURE


class InvalidSecret(InvalidInput):
    """A shared secret was not valid base32, or too short (RFC 4226 R6)."""

    public_message = "The key is not valid."


class WeakSecret(InvalidInput):
    """A PIN or secret answer refused as too easy to guess; the message says why."""

    public_message = "Choose something harder to guess."


class InvalidEmailAddress(InvalidInput):
    """An e-mail address that is malformed, too long or carries header-breaking characters."""

    public_message = "The e-mail address is not valid."


class PhoneNumberError(InvalidInput):
    """A phone number that cannot receive SMS codes (SECURITY.md 29)."""

    public_message = "The phone number is not valid for SMS codes."


class UnparseablePhoneNumber(PhoneNumberError):
    """Not a phone number at all: letters, non-ASCII digits, too short or too long."""

    public_message = "That is not a phone number. Check it and try again."


class InvalidPhoneNumber(PhoneNumberError):
    """A number that is not valid for the chosen country, or that has an extension."""

    public_message = "That number is not valid for the country chosen."


class NotAMobileNumber(PhoneNumberError):
    """A valid number that cannot receive SMS: landline, premium-rate, toll-free, ..."""

    public_message = "Enter a mobile number: SMS codes cannot be sent to that number."


class UnsupportedRegion(PhoneNumberError):
    """The country is not one SMS codes are sent to. Suggests an authenticator app."""

    public_message = (
        "SMS codes are not available for that country. Choose another country or use "
        "an authenticator app instead."
    )


class VerificationFailed(MFAError):
    """The subject did not prove possession of a factor.

    All subclasses share :data:`GENERIC_FAILURE` as their ``public_message`` so that what an
    end user sees never reveals which check failed.
    """

    public_message = GENERIC_FAILURE


class InvalidCode(VerificationFailed):
    """The code did not match."""


class ReplayedCode(VerificationFailed):
    """The code matched a time step that was already used (RFC 6238 section 5.2)."""


class ExpiredCode(VerificationFailed):
    """The challenge or the pending enrolment is past its expiry."""


class ChallengeNotFound(VerificationFailed):
    """No usable challenge with that id for this subject.

    Raised alike for an unknown id, a used one and another subject's, so a challenge id
    reveals nothing about other subjects.
    """


class NotEnrolled(VerificationFailed):
    """The subject has no active credential for the requested factor."""


class LockedOut(VerificationFailed):
    """Too many consecutive failures; verification is refused until ``retry_at``.

    While locked, every attempt raises this, whether its code was right or wrong, and nothing
    is reset (SECURITY.md 16).

    Attributes:
        retry_at: When the temporary lock ends, or ``None`` when suspended.
        suspended: ``True`` when only an administrator can unlock the subject.
    """

    public_message = LOCKED_MESSAGE

    def __init__(
        self, message: str, *, retry_at: _dt.datetime | None = None, suspended: bool = False
    ) -> None:
        super().__init__(message)
        self.retry_at = retry_at
        self.suspended = suspended


class SendRefused(MFAError):
    """No code was sent now. Nothing was stored or changed by the refused request.

    Attributes:
        retry_at: When a send may succeed again, or ``None`` if it never will for this
            challenge.
    """

    public_message = "A code cannot be sent right now. Please try again later."

    def __init__(self, message: str, *, retry_at: _dt.datetime | None = None) -> None:
        super().__init__(message)
        self.retry_at = retry_at


class ResendTooSoon(SendRefused):
    """The resend cooldown of the challenge has not passed yet."""

    public_message = "Please wait a moment before asking for a new code."


class SendLimitReached(SendRefused):
    """The challenge has had its maximum number of sends; start a new sign-in."""

    public_message = "No more codes can be sent for this sign-in. Please start again."


class QuotaExceeded(SendRefused):
    """A send quota (per destination, subject or tenant) is used up (SECURITY.md 28)."""


class DeliveryError(MFAError):
    """The SMS or e-mail sender failed. The challenge was withdrawn: nothing is usable."""

    public_message = "The code could not be sent. Please try again later."


class NotAuthorized(MFAError):
    """The actor may not perform this administrative action. Nothing was changed.

    Attributes:
        action: The refused action (``"reset"``, ``"unlock"``, ...), when known.
    """

    public_message = "You are not allowed to do that."

    def __init__(self, message: str, *, action: str | None = None) -> None:
        super().__init__(message)
        self.action = action


class StepUpRequired(MFAError):
    """A sensitive self-service action needs the password entered again (SECURITY.md 35).

    Nothing was changed.
    """

    public_message = "Please enter your password again."


class FlowError(MFAError):
    """A sign-in flow's state token was refused. The host should restart the sign-in."""

    public_message = "Your sign-in could not be continued. Please sign in again."


class InvalidFlowToken(FlowError):
    """The token was tampered with, malformed, or made for another subject or session."""


class FlowExpired(FlowError):
    """The token is past its expiry (a pending sign-in lives ten minutes by default)."""


class FlowStepError(FlowError):
    """The requested step is not the one the flow's state allows (no skipping)."""


class CredentialNotFound(MFAError):
    """No credential with that id belongs to the subject."""

    public_message = "That authentication method was not found."


class KeyringError(MFAError):
    """A problem with the keys that protect secrets at rest."""

    public_message = "Multi-factor authentication is temporarily unavailable."


class DecryptionError(KeyringError):
    """A secret could not be decrypted: tampered, bound to another record, or unknown key."""


class StoreError(MFAError):
    """The storage backend failed."""

    public_message = "Multi-factor authentication is temporarily unavailable."


class ConcurrencyConflict(StoreError):
    """A conditional write lost the race more times than the retry budget allows."""


class MFAWarning(UserWarning):
    """Base class of mfakit's warnings."""


class UnsupportedParameterWarning(MFAWarning):
    """An option many authenticator apps ignore (non-default algorithm, digits or period)."""
