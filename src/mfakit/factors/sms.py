"""SMS one-time codes: the practice-suite deployment's second option.

SMS is a *restricted* authenticator in NIST SP 800-63B 5.1.3.3 (SIM swap, number porting,
interception): offer a non-restricted alternative such as an authenticator app, and tell
users (SECURITY.md 27). Numbers are validated by :mod:`mfakit.phone`, restricted to an
allow-list of regions and stored encrypted as E.164.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Collection
from typing import TYPE_CHECKING, ClassVar, Final

from typing_extensions import Unpack

from mfakit._models import Credential, Subject
from mfakit.exceptions import ConfigurationError, InvalidInput, InvalidType
from mfakit.factors._base import FactorSetup
from mfakit.factors._delivered import (
    DeliveredCodeFactor,
    DeliveryOptions,
    Destination,
    Outgoing,
    minutes,
)
from mfakit.phone import DEFAULT_REGIONS, mask_e164, parse_mobile
from mfakit.typing import SMSSender

if TYPE_CHECKING:
    from mfakit.hazmat.secretbox import Keyring

__all__ = ["DEFAULT_SMS_TEMPLATE", "SMSOTP", "SMSSetup"]

#: Names the issuer, the code and its lifetime (SECURITY.md 9; users should know what it is).
DEFAULT_SMS_TEMPLATE: Final = (
    "{code} is your {issuer} verification code. It expires in {minutes} minutes."
)
_MAX_LABEL: Final = 64
_DOMAIN_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-.")


@dataclasses.dataclass(frozen=True, slots=True)
class SMSSetup(FactorSetup):
    """A request to enrol a mobile number. Build it with :meth:`SMSOTP.setup`.

    Attributes:
        number: As typed ("0412 345 678").
        region: Country picked on the form (``"AU"``), or ``None`` for "Other".
        label: The subject's name for this phone.
    """

    factor: ClassVar[str] = "sms"
    number: str = dataclasses.field(repr=False)
    region: str | None
    label: str = "Mobile phone"

    def __post_init__(self) -> None:
        if not isinstance(self.number, str):
            raise InvalidType(f"number must be str, not {type(self.number).__name__}")
        if self.region is not None and not isinstance(self.region, str):
            raise InvalidType(f"region must be str or None, not {type(self.region).__name__}")
        if not isinstance(self.label, str):
            raise InvalidType(f"label must be str, not {type(self.label).__name__}")
        if not self.label.strip() or len(self.label) > _MAX_LABEL or not self.label.isprintable():
            raise InvalidInput(f"label must be 1 to {_MAX_LABEL} printable characters")


class SMSOTP(DeliveredCodeFactor):
    """One-time codes by SMS.

    Args:
        sender: Sends the texts (:class:`~mfakit.typing.SMSSender`).
        issuer: Named in the message so people know who sent it.
        regions: Countries whose mobiles may enrol (default AU, NZ, GB).
        template: Message text with ``{code}``, ``{issuer}`` and ``{minutes}``.
        origin_domain: When set, the message ends with the origin-bound line
            ``@example.com #123456`` (the WebOTP / origin-bound one-time code format) so
            browsers can fill the code in, and only on that site. Android's SMS Retriever
            additionally needs the app's hash, which a host template can add.
        **options: See :class:`~mfakit.factors.DeliveredCodeFactor` (digits, code_ttl,
            resend_cooldown, max_sends, max_attempts, enrollment_ttl, quotas).
    """

    name: ClassVar[str] = "sms"

    def __init__(
        self,
        *,
        sender: SMSSender,
        issuer: str,
        regions: Collection[str] = DEFAULT_REGIONS,
        template: str = DEFAULT_SMS_TEMPLATE,
        origin_domain: str | None = None,
        **options: Unpack[DeliveryOptions],
    ) -> None:
        super().__init__(**options)
        if not isinstance(sender, SMSSender):
            raise ConfigurationError("sender must implement send_sms(to, text)")
        if not isinstance(issuer, str) or not issuer.strip() or len(issuer) > 64:
            raise ConfigurationError("issuer must be a non-empty str of at most 64 characters")
        if (
            isinstance(regions, str)
            or not regions
            or not all(isinstance(r, str) and len(r) == 2 and r.isalpha() for r in regions)
        ):
            raise ConfigurationError("regions must be ISO 3166 alpha-2 codes such as {'AU'}")
        if not isinstance(template, str) or "{code}" not in template:
            raise ConfigurationError("template must be a str containing {code}")
        try:
            template.format(code="0", issuer="x", minutes=1)
        except (KeyError, IndexError, ValueError, AttributeError, TypeError) as exc:
            raise ConfigurationError(f"template has unknown fields: {exc}") from None
        if origin_domain is not None and (
            not isinstance(origin_domain, str)
            or not origin_domain
            or not _DOMAIN_CHARS.issuperset(origin_domain)
        ):
            raise ConfigurationError("origin_domain must be a lower-case host name")
        self.sender = sender
        self.issuer = issuer
        self.regions = frozenset(r.upper() for r in regions)
        self.template = template
        self.origin_domain = origin_domain

    def __repr__(self) -> str:
        return f"SMSOTP(issuer={self.issuer!r}, regions={sorted(self.regions)})"

    @staticmethod
    def setup(number: str, region: str | None, *, label: str = "Mobile phone") -> SMSSetup:
        """Describe a mobile-number enrolment for :meth:`mfakit.MFA.enroll`."""
        return SMSSetup(number=number, region=region, label=label)

    def normalize(self, setup: SMSSetup) -> str:
        """Validate the number for this factor's regions; return E.164.

        Raises:
            PhoneNumberError: A subclass saying what is wrong (SECURITY.md 29).
        """
        return parse_mobile(setup.number, setup.region, allowed_regions=self.regions)

    def begin(
        self,
        subject: Subject,
        setup: SMSSetup,
        *,
        now: dt.datetime,
        keyring: Keyring,
        challenge_id: str,
    ) -> tuple[Credential, Destination]:
        """The pending credential (number encrypted) and where its first code goes."""
        e164 = self.normalize(setup)
        return self.seal_destination(
            subject,
            address=e164,
            hint=mask_e164(e164),
            label=setup.label,
            now=now,
            keyring=keyring,
            challenge_id=challenge_id,
        )

    def destination(
        self, subject: Subject, credential: Credential | None, keyring: Keyring
    ) -> Destination | None:
        """The credential's number (decrypted), or ``None`` without a credential."""
        if credential is None:
            return None
        return self.open_destination(credential, keyring)

    def compose(
        self, subject: Subject, destination: Destination, code: str, now: dt.datetime
    ) -> Outgoing:
        """The SMS text, with the WebOTP / SMS Retriever line when configured."""
        text = self.template.format(code=code, issuer=self.issuer, minutes=minutes(self.code_ttl))
        if self.origin_domain:
            text = f"{text}\n\n@{self.origin_domain} #{code}"
        return Outgoing(to=destination.address, text=text)

    def transmit(self, outgoing: Outgoing) -> None:
        """Send through the configured :class:`~mfakit.typing.SMSSender`."""
        self.sender.send_sms(outgoing.to, outgoing.text)
