"""An in-memory SMS and e-mail sender that records what mfakit sends, for tests."""

from __future__ import annotations

import re
import threading
from collections import deque
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import getaddresses
from typing import TypeAlias

from mfakit.delivery.console import _plain_text

__all__ = ["Outbox", "SentMessage", "SentSMS"]

_DEFAULT_FAILURE = "simulated delivery failure"


@dataclass(frozen=True)
class SentSMS:
    """One text message the :class:`Outbox` recorded.

    Attributes:
        to: The destination number, as the sender was given it.
        text: The message text, code included.
    """

    to: str
    text: str


#: An entry of :attr:`Outbox.messages`.
SentMessage: TypeAlias = SentSMS | EmailMessage


def _email_recipients(message: EmailMessage) -> set[str]:
    """The case-folded addresses in the ``To``, ``Cc`` and ``Bcc`` headers."""
    values = [str(v) for name in ("To", "Cc", "Bcc") for v in message.get_all(name, [])]
    return {address.casefold() for _, address in getaddresses(values) if address}


def _is_for(entry: SentMessage, to: str | None) -> bool:
    if to is None:
        return True
    if isinstance(entry, SentSMS):
        return entry.to == to
    return to.strip().casefold() in _email_recipients(entry)


def _for_whom(to: str | None) -> str:
    return "" if to is None else f" to {to!r}"


class Outbox:
    """Records SMS and e-mail instead of sending them: both an
    :class:`~mfakit.typing.SMSSender` and an :class:`~mfakit.typing.EmailSender`.

    Messages are kept in memory, in sending order, until :meth:`clear`. All methods are
    thread-safe. :meth:`fail_next` makes the next sends raise, to test how a host handles
    :class:`~mfakit.DeliveryError`.

    Example::

        outbox = Outbox()
        mfa = MFA(..., factors=[SMSOTP(sender=outbox, issuer="ACME")])
        challenge = mfa.challenge(alice, "sms")
        mfa.verify(alice, challenge.id, outbox.last_code("+61412345678"))
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._messages: list[SentMessage] = []
        # One entry per send still to fail; None means "the default RuntimeError".
        self._failures: deque[BaseException | None] = deque()

    def __repr__(self) -> str:
        with self._lock:
            sms = sum(isinstance(m, SentSMS) for m in self._messages)
            emails = len(self._messages) - sms
        return f"Outbox(sms={sms}, emails={emails})"

    def __len__(self) -> int:
        """The number of messages recorded (SMS and e-mail)."""
        with self._lock:
            return len(self._messages)

    # sending -----------------------------------------------------------------------------
    def _record(self, entry: SentMessage) -> None:
        with self._lock:
            if self._failures:
                failure = self._failures.popleft()
            else:
                self._messages.append(entry)
                return
        raise RuntimeError(_DEFAULT_FAILURE) if failure is None else failure

    def send_sms(self, to: str, text: str) -> None:
        """Record a text message (or raise, if :meth:`fail_next` asked for it).

        Args:
            to: The destination number.
            text: The message text.

        Raises:
            TypeError: ``to`` or ``text`` is not a ``str``.
            BaseException: The error given to :meth:`fail_next`; nothing is recorded.
        """
        if not isinstance(to, str) or not isinstance(text, str):
            raise TypeError(
                f"send_sms takes str arguments, not {type(to).__name__} and {type(text).__name__}"
            )
        self._record(SentSMS(to, text))

    def send_email(self, message: EmailMessage) -> None:
        """Record an e-mail (or raise, if :meth:`fail_next` asked for it).

        The message object itself is kept, not a copy.

        Args:
            message: The e-mail.

        Raises:
            TypeError: ``message`` is not an :class:`~email.message.EmailMessage`.
            BaseException: The error given to :meth:`fail_next`; nothing is recorded.
        """
        if not isinstance(message, EmailMessage):
            raise TypeError(f"send_email takes an EmailMessage, not {type(message).__name__}")
        self._record(message)

    def fail_next(self, error: BaseException | None = None, *, times: int = 1) -> None:
        """Make the next ``times`` sends (SMS or e-mail) raise ``error`` and record nothing.

        Calls accumulate: ``fail_next(a); fail_next(b)`` fails the next send with ``a`` and
        the one after with ``b``.

        Args:
            error: The exception instance to raise; default a new
                ``RuntimeError("simulated delivery failure")`` each time.
            times: How many sends fail; at least 1.

        Raises:
            TypeError: ``error`` is not an exception instance or ``times`` is not an int.
            ValueError: ``times`` is less than 1.
        """
        if error is not None and not isinstance(error, BaseException):
            raise TypeError(f"error must be an exception instance, not {type(error).__name__}")
        if isinstance(times, bool) or not isinstance(times, int):
            raise TypeError(f"times must be an int, not {type(times).__name__}")
        if times < 1:
            raise ValueError(f"times must be at least 1, not {times}")
        with self._lock:
            self._failures.extend([error] * times)

    def clear(self) -> None:
        """Forget every recorded message and every pending :meth:`fail_next`."""
        with self._lock:
            self._messages.clear()
            self._failures.clear()

    # reading -----------------------------------------------------------------------------
    @property
    def messages(self) -> list[SentMessage]:
        """Every recorded message (:class:`SentSMS` or ``EmailMessage``), oldest first."""
        with self._lock:
            return list(self._messages)

    @property
    def sms(self) -> list[SentSMS]:
        """The recorded text messages, oldest first."""
        return [m for m in self.messages if isinstance(m, SentSMS)]

    @property
    def emails(self) -> list[EmailMessage]:
        """The recorded e-mails, oldest first."""
        return [m for m in self.messages if isinstance(m, EmailMessage)]

    def last_sms(self, to: str | None = None) -> SentSMS:
        """The latest text message, or the latest one to ``to``.

        Args:
            to: A destination number, compared exactly; ``None`` for any.

        Returns:
            The most recent matching :class:`SentSMS`.

        Raises:
            LookupError: No text message (to ``to``) was recorded.
        """
        for entry in self.sms[::-1]:
            if _is_for(entry, to):
                return entry
        raise LookupError(f"no SMS was sent{_for_whom(to)} ({len(self)} message(s) recorded)")

    def last_email(self, to: str | None = None) -> EmailMessage:
        """The latest e-mail, or the latest one addressed to ``to``.

        Args:
            to: An address (``alice@example.com``), matched case-insensitively against
                the addresses in ``To``, ``Cc`` and ``Bcc``; ``None`` for any.

        Returns:
            The most recent matching message.

        Raises:
            LookupError: No e-mail (to ``to``) was recorded.
        """
        for entry in self.emails[::-1]:
            if _is_for(entry, to):
                return entry
        raise LookupError(f"no e-mail was sent{_for_whom(to)} ({len(self)} message(s) recorded)")

    def last_code(self, to: str | None = None, *, digits: int = 6) -> str:
        """The code in the latest message (SMS or e-mail), or the latest one to ``to``.

        The code is the first standalone run of exactly ``digits`` ASCII digits (``\\b``
        on both sides, so longer numbers and digits glued to letters do not count) in the
        SMS text or the e-mail's ``text/plain`` part. Only the latest matching message is
        searched.

        Args:
            to: A phone number (compared exactly) or an e-mail address (see
                :meth:`last_email`); ``None`` for any destination.
            digits: The code length.

        Returns:
            The code, as a string of ``digits`` ASCII digits.

        Raises:
            LookupError: No message (to ``to``) was recorded, or the latest one holds no
                such code.
            TypeError: ``digits`` is not an int.
            ValueError: ``digits`` is less than 1.
        """
        if isinstance(digits, bool) or not isinstance(digits, int):
            raise TypeError(f"digits must be an int, not {type(digits).__name__}")
        if digits < 1:
            raise ValueError(f"digits must be at least 1, not {digits}")
        entry = next((m for m in self.messages[::-1] if _is_for(m, to)), None)
        if entry is None:
            raise LookupError(f"no message was sent{_for_whom(to)}")
        if isinstance(entry, SentSMS):
            kind, text = "SMS", entry.text
        else:
            kind, text = "e-mail", _plain_text(entry) or ""
        found = re.search(rf"\b[0-9]{{{digits}}}\b", text)
        if found is None:
            raise LookupError(f"the latest {kind}{_for_whom(to)} holds no {digits}-digit code")
        return found.group()
