"""What SMS and e-mail codes share: a random code, sent by message, kept only as a keyed hash.

The rules (SECURITY.md 9, 10, 19, 28; OWASP MFA cheat sheet):

* the code comes from :mod:`secrets` (default 6 digits) and lives 5 minutes by default, never
  more than 10 (NIST SP 800-63B 5.1.3.2);
* only an HMAC of it is stored, bound to its challenge id, and compared in constant time;
* it is single-use, and a resend replaces it at once (the old one dies);
* resends wait for a cooldown and a challenge allows only so many sends;
* send quotas per destination, subject and tenant stop SMS pumping, and they are keyed on the
  normalised destination, so reformatting a number does not escape them.

Everything here is pure; the :class:`~mfakit.MFA` facade stores, sends and counts.
"""

from __future__ import annotations

import abc
import dataclasses
import datetime as dt
import secrets
from typing import TYPE_CHECKING, Any, ClassVar, Final, TypedDict

from mfakit._models import Credential, CredentialStatus, FactorKind, Subject, new_id
from mfakit._quota import SendQuota
from mfakit.exceptions import ConfigurationError
from mfakit.factors._base import Factor, secret_aad

if TYPE_CHECKING:
    from email.message import EmailMessage

    from mfakit.hazmat.secretbox import Keyring

__all__ = ["DeliveredCodeFactor", "DeliveryOptions", "Destination", "Outgoing", "SendQuotas"]

#: NIST SP 800-63B 5.1.3.2 / ASVS 4 2.7.2: an out-of-band code lives at most 10 minutes.
MAX_CODE_TTL: Final = dt.timedelta(minutes=10)


@dataclasses.dataclass(frozen=True, slots=True)
class SendQuotas:
    """Send limits in rolling windows, separate from the verification lockout.

    Args:
        per_destination: Sends to one phone number or address (keyed on its normalised form).
        per_subject: Sends for one subject, all destinations together.
        per_tenant: Sends for one tenant (``None``: no tenant limit).
    """

    per_destination: SendQuota = dataclasses.field(
        default_factory=lambda: SendQuota(5, dt.timedelta(hours=1))
    )
    per_subject: SendQuota = dataclasses.field(
        default_factory=lambda: SendQuota(10, dt.timedelta(hours=1))
    )
    per_tenant: SendQuota | None = dataclasses.field(
        default_factory=lambda: SendQuota(1000, dt.timedelta(hours=1))
    )


class DeliveryOptions(TypedDict, total=False):
    """The options every code-by-message factor takes (see :class:`DeliveredCodeFactor`)."""

    digits: int
    code_ttl: dt.timedelta
    resend_cooldown: dt.timedelta
    max_sends: int
    max_attempts: int
    enrollment_ttl: dt.timedelta
    quotas: SendQuotas | None


@dataclasses.dataclass(frozen=True, slots=True)
class Destination:
    """Where a code goes. ``repr`` hides the address.

    Attributes:
        address: E.164 number or e-mail address.
        hint: Masked form for the page.
        credential_id: The credential it came from, or ``None`` for the profile address.
    """

    address: str = dataclasses.field(repr=False)
    hint: str
    credential_id: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class Outgoing:
    """A composed message: an SMS (``to`` and ``text``) or an e-mail (``email``)."""

    to: str = dataclasses.field(repr=False)
    text: str = dataclasses.field(default="", repr=False)
    email: EmailMessage | None = dataclasses.field(default=None, repr=False)


class DeliveredCodeFactor(Factor):
    """Base of the factors whose code is sent by message (SMS, e-mail).

    Args:
        digits: Code length, 6 to 10 (SECURITY.md 9).
        code_ttl: Lifetime of a code, at most 10 minutes.
        resend_cooldown: Wait before another code may be sent for the same challenge.
        max_sends: Codes one challenge may send (the first included).
        max_attempts: Wrong codes one challenge accepts before it dies.
        enrollment_ttl: How long a pending enrolment waits for its code.
        quotas: Send quotas.

    Raises:
        ConfigurationError: On unsafe or inconsistent settings.
    """

    kind: ClassVar[FactorKind] = FactorKind.POSSESSION
    #: A confirmed enrolment replaces the subject's other credentials of this factor.
    replaces_on_confirm: ClassVar[bool] = True

    def __init__(
        self,
        *,
        digits: int = 6,
        code_ttl: dt.timedelta = dt.timedelta(minutes=5),
        resend_cooldown: dt.timedelta = dt.timedelta(seconds=30),
        max_sends: int = 3,
        max_attempts: int = 5,
        enrollment_ttl: dt.timedelta = dt.timedelta(minutes=15),
        quotas: SendQuotas | None = None,
    ) -> None:
        for name, value in (
            ("digits", digits),
            ("max_sends", max_sends),
            ("max_attempts", max_attempts),
        ):
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigurationError(f"{type(self).__name__} {name} must be int")
        if not 6 <= digits <= 10:
            raise ConfigurationError("delivered codes need 6 to 10 digits (SECURITY.md 9)")
        for name, ttl in (
            ("code_ttl", code_ttl),
            ("resend_cooldown", resend_cooldown),
            ("enrollment_ttl", enrollment_ttl),
        ):
            if not isinstance(ttl, dt.timedelta) or ttl <= dt.timedelta(0):
                raise ConfigurationError(f"{name} must be a positive datetime.timedelta")
        if code_ttl > MAX_CODE_TTL:
            raise ConfigurationError("code_ttl may not exceed 10 minutes (NIST SP 800-63B)")
        if not 1 <= max_sends <= 10 or not 1 <= max_attempts <= 100:
            raise ConfigurationError("max_sends must be 1-10 and max_attempts 1-100")
        if quotas is not None and not isinstance(quotas, SendQuotas):
            raise ConfigurationError("quotas must be a SendQuotas")
        self.digits = digits
        self.code_ttl = code_ttl
        self.challenge_ttl = code_ttl
        self.resend_cooldown = resend_cooldown
        self.max_sends = max_sends
        self.max_attempts = max_attempts
        self.enrollment_ttl = enrollment_ttl
        self.quotas = quotas if quotas is not None else SendQuotas()

    def new_code(self) -> str:
        """A fresh uniformly random code (``secrets``, SECURITY.md 9)."""
        return str(secrets.randbelow(10**self.digits)).zfill(self.digits)

    @staticmethod
    def _purpose(challenge_id: str) -> bytes:
        # Binding the MAC to the challenge id: a code is only good for its own challenge.
        return b"mfakit/delivered-code/v1/" + challenge_id.encode()

    def hash_code(self, keyring: Keyring, challenge_id: str, code: str) -> bytes:
        """The keyed hash stored instead of the code (SECURITY.md 19)."""
        return keyring.mac(code.encode(), purpose=self._purpose(challenge_id))

    def code_matches(self, keyring: Keyring, challenge_id: str, stored: bytes, code: str) -> bool:
        """Constant-time check of ``code`` against a stored keyed hash."""
        return keyring.verify_mac(stored, code.encode(), purpose=self._purpose(challenge_id))

    def quota_key(self, keyring: Keyring, address: str) -> str:
        """Quota key for a destination: a keyed hash, so a dump holds no number or address."""
        # Case-folded: "Alice@Example.com" and "alice@example.com" are one mailbox.
        tag = keyring.mac(address.lower().encode(), purpose=b"mfakit/quota/destination")
        return f"{self.name}:dest:{tag.hex()}"

    def seal_destination(
        self,
        subject: Subject,
        *,
        address: str,
        hint: str,
        label: str,
        now: dt.datetime,
        keyring: Keyring,
        challenge_id: str,
    ) -> tuple[Credential, Destination]:
        """A pending credential holding ``address`` encrypted, bound to its record."""
        pending = Credential(
            id=new_id("cr"),
            subject_id=subject.id,
            tenant=subject.tenant,
            factor=self.name,
            label=label,
            status=CredentialStatus.PENDING,
            created_at=now,
            expires_at=now + self.enrollment_ttl,
            params={"hint": hint, "challenge_id": challenge_id},
        )
        sealed = dataclasses.replace(
            pending, secret=keyring.encrypt(address.encode(), aad=secret_aad(pending))
        )
        return sealed, Destination(address, hint, sealed.id)

    @staticmethod
    def open_destination(credential: Credential, keyring: Keyring) -> Destination:
        """The destination stored (encrypted) in ``credential``."""
        address = keyring.decrypt(credential.secret, aad=secret_aad(credential)).decode()
        return Destination(address, str(credential.params.get("hint", "")), credential.id)

    # per factor --------------------------------------------------------------------------
    @abc.abstractmethod
    def destination(
        self, subject: Subject, credential: Credential | None, keyring: Keyring
    ) -> Destination | None:
        """Where to send for ``subject``: the credential's address, or ``None``."""
        ...

    @abc.abstractmethod
    def compose(
        self, subject: Subject, destination: Destination, code: str, now: dt.datetime
    ) -> Outgoing:
        """Build the message carrying ``code``."""
        ...

    @abc.abstractmethod
    def transmit(self, outgoing: Outgoing) -> None:
        """Hand the message to the configured sender. Called only by the facade."""
        ...

    @abc.abstractmethod
    def begin(
        self,
        subject: Subject,
        setup: Any,
        *,
        now: dt.datetime,
        keyring: Keyring,
        challenge_id: str,
    ) -> tuple[Credential, Destination]:
        """The pending credential for an enrolment, and where its first code goes."""
        ...


def minutes(delta: dt.timedelta) -> int:
    """Whole minutes for messages ("expires in 5 minutes"), at least 1."""
    return max(1, int(delta.total_seconds() // 60))
