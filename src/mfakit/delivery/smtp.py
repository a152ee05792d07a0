"""An :class:`~mfakit.typing.EmailSender` over the standard library's :mod:`smtplib`."""

from __future__ import annotations

import math
import smtplib
import ssl
from email.message import Message
from typing import TYPE_CHECKING, Any, Literal, get_args

from mfakit.exceptions import ConfigurationError, InvalidType

if TYPE_CHECKING:
    from email.message import EmailMessage

__all__ = ["SMTPEmailSender", "Security"]

#: How the connection to the SMTP server is protected.
Security = Literal["starttls", "ssl", "none"]

_SECURITY_VALUES: tuple[str, ...] = get_args(Security)
_DEFAULT_PORTS: dict[str, int] = {"starttls": 587, "ssl": 465, "none": 25}


class _Redacted:
    """Holds a secret string; its ``repr`` and ``str`` never show it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def __repr__(self) -> str:
        return "'***'"

    __str__ = __repr__

    def reveal(self) -> str:
        return self._value


class _ClosingSMTP(smtplib.SMTP):
    """:class:`smtplib.SMTP` that closes its socket when connecting fails.

    ``smtplib.SMTP(host, ...)`` connects in its constructor; if the greeting times out the
    half-open socket would otherwise live until garbage collection.
    """

    def connect(self, *args: Any, **kwargs: Any) -> tuple[int, bytes]:
        try:
            return super().connect(*args, **kwargs)
        except BaseException:
            self.close()
            raise


class _ClosingSMTPSSL(_ClosingSMTP, smtplib.SMTP_SSL):
    """:class:`smtplib.SMTP_SSL` that closes its socket when connecting fails."""


def _check_text(name: str, value: object, *, spaces: bool = False, secret: bool = False) -> str:
    """Validate a non-empty printable ASCII string; messages never echo a secret."""
    if not isinstance(value, str):
        raise ConfigurationError(f"{name} must be a str, not {type(value).__name__}")
    shown = "" if secret else f": {value!r}"
    if not value:
        raise ConfigurationError(f"{name} must not be empty")
    if not value.isascii() or not value.isprintable():
        # smtplib encodes credentials as ASCII; on failure its UnicodeEncodeError would carry
        # the whole string (password included), so refuse such values here.
        raise ConfigurationError(f"{name} must be printable ASCII{shown}")
    if not spaces and " " in value:
        raise ConfigurationError(f"{name} must not contain spaces{shown}")
    return value


class SMTPEmailSender:
    """Sends each e-mail through an SMTP server, on a fresh connection per message.

    The sequence for every message is: connect (with ``timeout``), ``EHLO``, then

    * ``security="starttls"`` (the default, port 587): ``STARTTLS`` with ``ssl_context``
      and ``EHLO`` again. If the server does not offer STARTTLS the send fails with
      :class:`smtplib.SMTPNotSupportedError`; it never falls back to clear text.
    * ``security="ssl"`` (port 465): TLS from the first byte ("implicit TLS", RFC 8314).
    * ``security="none"`` (port 25): **no encryption at all. Only for a local relay on
      the loopback interface** (``127.0.0.1`` / ``::1``, for example a Postfix or an
      MTA sidecar that forwards over TLS itself). Anywhere else the code travels the
      network in clear text. Credentials are refused in this mode.

    then ``AUTH`` if ``username`` is set, ``send_message``, and ``QUIT``. The connection is
    always closed, whatever happens.

    Failures propagate as the standard library raises them (:class:`smtplib.SMTPException`,
    :class:`ssl.SSLError`, :class:`TimeoutError` and other :class:`OSError`; all of them
    are :class:`OSError`); the
    :class:`~mfakit.MFA` facade turns any of them into :class:`~mfakit.DeliveryError`.
    No message raised here contains the password, and ``repr``/``str`` show it as
    ``'***'``. The sender keeps no connection state, so one instance is safe to share
    between threads.

    Args:
        host: The SMTP server's host name or IP address. With TLS the certificate must be
            valid for this name.
        port: The server's port; default 587 for ``"starttls"``, 465 for ``"ssl"``, 25
            for ``"none"``.
        security: ``"starttls"``, ``"ssl"`` or ``"none"`` (see above).
        username: The login for ``AUTH``; requires ``password`` and a TLS mode.
        password: The password for ``AUTH``; requires ``username``.
        timeout: Seconds each network operation (connect, each command, each read) may
            block; a positive finite number. It is not a bound on the whole send.
        ssl_context: The TLS settings; default :func:`ssl.create_default_context` (system
            CAs, certificate and host-name verification). A context that does not verify
            the certificate and the host name is refused. Not allowed with ``"none"``.
        local_hostname: The name sent in ``EHLO``; default :func:`socket.getfqdn`.

    Raises:
        ConfigurationError: A parameter has the wrong type or an unusable value, only one
            of ``username`` and ``password`` is given, credentials or an ``ssl_context``
            are given with ``security="none"``, or ``ssl_context`` does not verify.

    Example::

        sender = SMTPEmailSender(
            "smtp.example.com", username="mfa-mailer", password=os.environ["SMTP_PASSWORD"]
        )
    """

    def __init__(
        self,
        host: str,
        port: int | None = None,
        *,
        security: Security = "starttls",
        username: str | None = None,
        password: str | None = None,
        timeout: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
        local_hostname: str | None = None,
    ) -> None:
        if not isinstance(security, str) or security not in _SECURITY_VALUES:
            raise ConfigurationError(
                f"security must be one of {', '.join(map(repr, _SECURITY_VALUES))}, "
                f"not {security!r}"
            )
        self._host = _check_text("host", host)
        if port is None:
            port = _DEFAULT_PORTS[security]
        elif isinstance(port, bool) or not isinstance(port, int):
            raise ConfigurationError(f"port must be an int, not {type(port).__name__}")
        elif not 1 <= port <= 65535:
            raise ConfigurationError(f"port must be between 1 and 65535, not {port}")
        self._port = port
        self._security: Security = security

        if (username is None) != (password is None):
            raise ConfigurationError("username and password must be given together")
        self._username = (
            None if username is None else _check_text("username", username, spaces=True)
        )
        self._password = (
            None
            if password is None
            else _Redacted(_check_text("password", password, spaces=True, secret=True))
        )
        if self._username is not None and security == "none":
            raise ConfigurationError(
                'security="none" would send the password in clear text; use "starttls" or "ssl"'
            )

        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
            raise ConfigurationError(f"timeout must be a number, not {type(timeout).__name__}")
        if not math.isfinite(timeout) or timeout <= 0:
            raise ConfigurationError(f"timeout must be a positive finite number, not {timeout!r}")
        self._timeout = float(timeout)

        self._context: ssl.SSLContext | None
        if security == "none":
            if ssl_context is not None:
                raise ConfigurationError('ssl_context has no effect with security="none"')
            self._context = None
        elif ssl_context is None:
            self._context = ssl.create_default_context()
        elif not isinstance(ssl_context, ssl.SSLContext):
            raise ConfigurationError(
                f"ssl_context must be an ssl.SSLContext, not {type(ssl_context).__name__}"
            )
        elif ssl_context.verify_mode != ssl.CERT_REQUIRED or not ssl_context.check_hostname:
            raise ConfigurationError(
                "ssl_context must verify the server: verify_mode=CERT_REQUIRED and "
                "check_hostname=True (trust a private CA with cafile= instead of disabling "
                "verification)"
            )
        else:
            self._context = ssl_context
        self._local_hostname = (
            None if local_hostname is None else _check_text("local_hostname", local_hostname)
        )

    @property
    def host(self) -> str:
        """The SMTP server's host name or address."""
        return self._host

    @property
    def port(self) -> int:
        """The SMTP server's port (the mode's default if none was given)."""
        return self._port

    @property
    def security(self) -> Security:
        """``"starttls"``, ``"ssl"`` or ``"none"``."""
        return self._security

    @property
    def username(self) -> str | None:
        """The ``AUTH`` login, or ``None``."""
        return self._username

    @property
    def timeout(self) -> float:
        """Seconds each network operation may block."""
        return self._timeout

    def __repr__(self) -> str:
        parts = [f"host={self._host!r}", f"port={self._port}", f"security={self._security!r}"]
        if self._username is not None:
            parts += [f"username={self._username!r}", f"password={self._password!r}"]
        parts.append(f"timeout={self._timeout}")
        return f"SMTPEmailSender({', '.join(parts)})"

    def send_email(self, message: EmailMessage) -> None:
        """Send ``message`` over a new connection, then close it.

        Args:
            message: The e-mail, with ``From``, ``To`` and ``Subject`` set. Envelope sender
                and recipients come from its headers (``Bcc`` is removed before sending).

        Raises:
            InvalidType: ``message`` is not an :class:`email.message.Message`.
            smtplib.SMTPNotSupportedError: ``security="starttls"`` and the server does not
                offer STARTTLS (nothing was sent), or ``AUTH`` is not offered.
            smtplib.SMTPAuthenticationError: The server refused the credentials.
            smtplib.SMTPRecipientsRefused: The server refused one or more recipients
                (raised even when others were accepted).
            smtplib.SMTPException: Any other SMTP-level failure.
            ssl.SSLError: TLS failed, for example the certificate did not verify.
            TimeoutError: An operation took longer than ``timeout``. While waiting for an
                SMTP reply smtplib reports this as :class:`smtplib.SMTPServerDisconnected`
                (with the :class:`TimeoutError` as its ``__context__``).
            OSError: The connection failed.
        """
        if not isinstance(message, Message):
            raise InvalidType(
                f"message must be an email.message.EmailMessage, not {type(message).__name__}"
            )
        client: smtplib.SMTP
        if self._security == "ssl":
            client = _ClosingSMTPSSL(
                self._host,
                self._port,
                local_hostname=self._local_hostname,
                timeout=self._timeout,
                context=self._context,
            )
        else:
            client = _ClosingSMTP(
                self._host,
                self._port,
                local_hostname=self._local_hostname,
                timeout=self._timeout,
            )
        # The constructors above have connected and read the 220 greeting (a different code
        # raises SMTPConnectError after closing). From here on the socket is ours to close.
        try:
            self._converse(client, message)
        except BaseException:
            # No QUIT: after a timeout it would just block for another ``timeout``.
            client.close()
            raise
        try:
            client.quit()
        except (smtplib.SMTPException, OSError):
            pass  # the message was accepted; a failed goodbye does not undo that
        finally:
            client.close()

    def _converse(self, client: smtplib.SMTP, message: Message) -> None:
        client.ehlo_or_helo_if_needed()
        if self._security == "starttls":
            if not client.has_extn("starttls"):
                raise smtplib.SMTPNotSupportedError(
                    f"{self._host}:{self._port} does not offer STARTTLS; refusing to send in "
                    "clear text"
                )
            client.starttls(context=self._context)
            code, reply = client.ehlo()
            if not 200 <= code <= 299:
                raise smtplib.SMTPHeloError(code, reply)
        if self._username is not None and self._password is not None:
            client.login(self._username, self._password.reveal())
        refused = client.send_message(message)
        if refused:
            raise smtplib.SMTPRecipientsRefused(refused)
