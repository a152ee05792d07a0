"""E-mail one-time codes: the register deployment's primary factor.

By default the code goes to the subject's profile address (``Subject.email``), as in the
register; a subject may also enrol and confirm a separate address. Messages carry the
username in the subject line and greet the first name in the body, because several users
may share one mailbox. Addresses and names are checked before they reach a header, so
nothing can inject one (SECURITY.md 40).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, ClassVar, Final

from typing_extensions import Unpack

from mfakit._models import Credential, Subject
from mfakit.exceptions import ConfigurationError, InvalidEmailAddress, InvalidInput, InvalidType
from mfakit.factors._base import FactorSetup
from mfakit.factors._delivered import (
    DeliveredCodeFactor,
    DeliveryOptions,
    Destination,
    Outgoing,
    minutes,
)
from mfakit.typing import EmailSender

if TYPE_CHECKING:
    from email.message import EmailMessage

    from mfakit.hazmat.secretbox import Keyring

__all__ = ["EmailOTP", "EmailSetup", "EmailTemplate", "mask_email", "normalize_email"]

#: RFC 5321 4.5.3.1: 64 octets of local part, 254 for the whole forward path.
MAX_EMAIL: Final = 254
MAX_LOCAL: Final = 64
_MAX_LABEL: Final = 64
_LOCAL_RE: Final = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+")
_LABEL_RE: Final = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


def normalize_email(raw: object) -> str:
    """Check an e-mail address and return it with a lower-case (IDNA-encoded) domain.

    Only plain ``local@domain`` addresses are accepted: no display names, comments, quoted
    local parts or IP literals, nothing that could break out of a header.

    Raises:
        InvalidType: If ``raw`` is not ``str``.
        InvalidEmailAddress: Empty, too long, control characters, no single ``@``, an
            unusable local part or domain.
    """
    if not isinstance(raw, str):
        raise InvalidType(f"e-mail address must be str, not {type(raw).__name__}")
    if len(raw) > MAX_EMAIL * 4:  # cap before any processing, even in error paths
        raise InvalidEmailAddress("e-mail address is too long")
    address = raw.strip()
    if not address or len(address) > MAX_EMAIL:
        raise InvalidEmailAddress(f"e-mail address must be 1 to {MAX_EMAIL} characters")
    if any(ord(c) < 0x20 or ord(c) == 0x7F or c in "\u2028\u2029" for c in address):
        raise InvalidEmailAddress("e-mail address contains control characters")
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain or "@" in local:
        raise InvalidEmailAddress("e-mail address must look like name@example.com")
    if len(local) > MAX_LOCAL or not _LOCAL_RE.fullmatch(local):
        raise InvalidEmailAddress("e-mail address has an unusable local part")
    if local.startswith(".") or local.endswith(".") or ".." in local:
        raise InvalidEmailAddress("e-mail address has an unusable local part")
    try:
        ascii_domain = domain.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise InvalidEmailAddress("e-mail address has an invalid domain") from None
    labels = ascii_domain.split(".")
    if len(labels) < 2 or not all(_LABEL_RE.fullmatch(label) for label in labels):
        raise InvalidEmailAddress("e-mail address has an invalid domain")
    result = f"{local}@{ascii_domain}"
    if len(result) > MAX_EMAIL:
        raise InvalidEmailAddress(f"e-mail address must be at most {MAX_EMAIL} characters")
    return result


def mask_email(address: str) -> str:
    """A hint for the page: ``alice@example.com`` -> ``a••••@example.com``."""
    local, _, domain = address.rpartition("@")
    return f"{local[:1]}{'•' * max(1, min(len(local) - 1, 8))}@{domain}"


def first_name(subject: Subject) -> str:
    """What to greet: the first word of the display name, else the username."""
    if subject.display_name and subject.display_name.split():
        return subject.display_name.split()[0]
    return subject.username or subject.id


@dataclasses.dataclass(frozen=True, slots=True)
class EmailTemplate:
    """The message around an e-mailed code; every part is a :meth:`str.format` template.

    Fields available: ``{code}``, ``{minutes}``, ``{issuer}``, ``{username}``,
    ``{first_name}``. In ``html`` every value is HTML-escaped before formatting.
    The defaults follow the register: the username in the subject line, the first name in
    the greeting, so people sharing a mailbox can tell whose code it is.
    """

    subject: str = "{issuer} sign-in code for {username}"
    text: str = (
        "Hello {first_name},\n\n"
        "Your {issuer} one-time code is: {code}\n\n"
        "It expires in {minutes} minutes and can be used once. If you did not try to sign "
        "in as {username}, ignore this message and consider changing your password.\n"
    )
    html: str | None = (
        "<p>Hello {first_name},</p>"
        "<p>Your {issuer} one-time code is: <strong>{code}</strong></p>"
        "<p>It expires in {minutes} minutes and can be used once. If you did not try to "
        "sign in as {username}, ignore this message and consider changing your password.</p>"
    )

    def __post_init__(self) -> None:
        sample = {"code": "0", "minutes": 1, "issuer": "x", "username": "u", "first_name": "f"}
        for name in ("subject", "text", "html"):
            part = getattr(self, name)
            if part is None and name == "html":
                continue
            if not isinstance(part, str):
                raise ConfigurationError(f"EmailTemplate.{name} must be str")
            try:
                part.format(**sample)
            except (KeyError, IndexError, ValueError, AttributeError, TypeError) as exc:
                raise ConfigurationError(
                    f"EmailTemplate.{name} has unknown fields: {exc}"
                ) from None
        if "{code}" not in self.text:
            raise ConfigurationError("EmailTemplate.text must contain {code}")
        if "{code}" in self.subject:
            # Subject lines show on lock screens and in mailbox lists.
            raise ConfigurationError("EmailTemplate.subject must not contain the code")


@dataclasses.dataclass(frozen=True, slots=True)
class EmailSetup(FactorSetup):
    """A request to enrol a separate e-mail address. Build it with :meth:`EmailOTP.setup`."""

    factor: ClassVar[str] = "email"
    address: str = dataclasses.field(repr=False)
    label: str = "E-mail"

    def __post_init__(self) -> None:
        object.__setattr__(self, "address", normalize_email(self.address))
        if not isinstance(self.label, str):
            raise InvalidType(f"label must be str, not {type(self.label).__name__}")
        if not self.label.strip() or len(self.label) > _MAX_LABEL or not self.label.isprintable():
            raise InvalidInput(f"label must be 1 to {_MAX_LABEL} printable characters")


class EmailOTP(DeliveredCodeFactor):
    """One-time codes by e-mail.

    Args:
        sender: Sends the messages (:class:`~mfakit.typing.EmailSender`).
        from_address: The ``From`` address.
        issuer: Named in the subject and body.
        use_profile_address: Send to ``Subject.email`` when the subject has not enrolled a
            separate address (the register deployment).
        template: An :class:`EmailTemplate`, or a callable ``(context) -> EmailMessage``
            for full control (``context`` holds the same fields; ``From``, ``To`` are set
            afterwards if missing).
        **options: See :class:`~mfakit.factors.DeliveredCodeFactor`.
    """

    name: ClassVar[str] = "email"

    def __init__(
        self,
        *,
        sender: EmailSender,
        from_address: str,
        issuer: str,
        use_profile_address: bool = True,
        template: EmailTemplate | Callable[[Mapping[str, object]], EmailMessage] | None = None,
        **options: Unpack[DeliveryOptions],
    ) -> None:
        super().__init__(**options)
        if not isinstance(sender, EmailSender):
            raise ConfigurationError("sender must implement send_email(message)")
        try:
            self.from_address = normalize_email(from_address)
        except InvalidInput as exc:
            raise ConfigurationError(f"from_address: {exc}") from None
        if (
            not isinstance(issuer, str)
            or not issuer.strip()
            or len(issuer) > 64
            or not (issuer.isprintable())
        ):
            raise ConfigurationError("issuer must be 1 to 64 printable characters")
        if template is not None and not (isinstance(template, EmailTemplate) or callable(template)):
            raise ConfigurationError("template must be an EmailTemplate or a callable")
        self.sender = sender
        self.issuer = issuer
        self.use_profile_address = bool(use_profile_address)
        self.template = template if template is not None else EmailTemplate()

    def __repr__(self) -> str:
        return f"EmailOTP(issuer={self.issuer!r}, use_profile_address={self.use_profile_address})"

    @staticmethod
    def setup(address: str, *, label: str = "E-mail") -> EmailSetup:
        """Describe the enrolment of a separate address for :meth:`mfakit.MFA.enroll`."""
        return EmailSetup(address=address, label=label)

    def begin(
        self,
        subject: Subject,
        setup: EmailSetup,
        *,
        now: dt.datetime,
        keyring: Keyring,
        challenge_id: str,
    ) -> tuple[Credential, Destination]:
        """The pending credential (address encrypted) and where its first code goes."""
        return self.seal_destination(
            subject,
            address=setup.address,
            hint=mask_email(setup.address),
            label=setup.label,
            now=now,
            keyring=keyring,
            challenge_id=challenge_id,
        )

    def destination(
        self, subject: Subject, credential: Credential | None, keyring: Keyring
    ) -> Destination | None:
        """The enrolled address, else the profile address when allowed, else ``None``."""
        if credential is not None:
            return self.open_destination(credential, keyring)
        if self.use_profile_address and subject.email:
            address = normalize_email(subject.email)
            return Destination(address, mask_email(address), None)
        return None

    def compose(
        self, subject: Subject, destination: Destination, code: str, now: dt.datetime
    ) -> Outgoing:
        """The message: plain text plus an HTML alternative (or the host's own)."""
        # Imported here: the email package costs more at import time than all of mfakit.
        from email.headerregistry import Address
        from email.message import EmailMessage

        context: dict[str, object] = {
            "code": code,
            "minutes": minutes(self.code_ttl),
            "issuer": self.issuer,
            "username": subject.username or subject.email or subject.id,
            "first_name": first_name(subject),
        }
        template = self.template
        if isinstance(template, EmailTemplate):
            message = EmailMessage()
            message["Subject"] = template.subject.format(**context)
            message.set_content(template.text.format(**context))
            if template.html is not None:
                escaped = {k: html.escape(str(v)) for k, v in context.items()}
                message.add_alternative(template.html.format(**escaped), subtype="html")
        else:
            message = template(dict(context))
            if not isinstance(message, EmailMessage):
                raise ConfigurationError("the e-mail template callable must return EmailMessage")
        if "From" not in message:
            message["From"] = Address(addr_spec=self.from_address)
        if "To" not in message:
            message["To"] = Address(addr_spec=destination.address)
        return Outgoing(to=destination.address, email=message)

    def transmit(self, outgoing: Outgoing) -> None:
        """Send through the configured :class:`~mfakit.typing.EmailSender`."""
        if outgoing.email is None:  # pragma: no cover - compose always sets it
            raise ConfigurationError("no message to send")
        self.sender.send_email(outgoing.email)
