"""Senders that print messages to a stream. **DEVELOPMENT ONLY: they print the codes.**

Use them on a developer's machine to read codes without an SMS provider or a mail server.
Never configure them in production: anyone who can read the process's standard error (or
its log collector) can then sign in as any user.
"""

from __future__ import annotations

import sys
import threading
from email.message import EmailMessage
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from email.message import Message

__all__ = ["ConsoleEmailSender", "ConsoleSMSSender"]

# One lock for every console sender: two senders writing to the same stream (both usually
# sys.stderr) never interleave their blocks.
_WRITE_LOCK = threading.Lock()


def _plain_text(message: Message) -> str | None:
    """The decoded ``text/plain`` body of ``message``, or ``None`` if it has none.

    Uses :meth:`EmailMessage.get_body` (which skips attachments) when available, and the
    first non-attachment ``text/plain`` part otherwise. Undecodable bytes become U+FFFD.
    """
    part: Message | None
    if isinstance(message, EmailMessage):
        part = message.get_body(preferencelist=("plain",))
    else:
        part = next(
            (
                p
                for p in message.walk()
                if p.get_content_type() == "text/plain"
                and p.get_content_disposition() != "attachment"
            ),
            None,
        )
    if part is None:
        return None
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return None
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(charset, errors="replace")
    except LookupError:  # an unknown charset name
        return payload.decode("utf-8", errors="replace")


def _stream_name(stream: TextIO | None) -> str:
    if stream is None:
        return "sys.stderr"
    return type(stream).__name__


def _write(stream: TextIO | None, block: str) -> None:
    target = sys.stderr if stream is None else stream
    with _WRITE_LOCK:
        target.write(block)
        target.flush()


class ConsoleSMSSender:
    """**DEVELOPMENT ONLY — PRINTS THE CODE.** An :class:`~mfakit.typing.SMSSender` that
    writes each text message to a stream instead of sending it.

    Every message (code included) is written in clear text as::

        --- SMS to +61412345678 ---
        Your ACME code is 123456
        ---

    Never use it in production: whoever reads the stream can sign in as any user. Writes
    are serialised by a lock, so concurrent sends never interleave.

    Args:
        stream: Where to write; ``None`` (the default) means :data:`sys.stderr`, looked up
            at each send (so test capture and later redirection work).
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    def __repr__(self) -> str:
        return f"ConsoleSMSSender(stream={_stream_name(self._stream)})"

    def send_sms(self, to: str, text: str) -> None:
        """Write ``text`` for ``to`` to the stream. **Prints the code.**

        Args:
            to: The destination number (E.164), shown in the block's header line.
            text: The message text, code included.

        Raises:
            OSError: The stream could not be written.
        """
        body = text.rstrip("\r\n")
        _write(self._stream, f"--- SMS to {to} ---\n{body}\n---\n")


class ConsoleEmailSender:
    """**DEVELOPMENT ONLY — PRINTS THE CODE.** An :class:`~mfakit.typing.EmailSender` that
    writes each e-mail to a stream instead of sending it.

    The ``From``, ``To`` and ``Subject`` headers and the ``text/plain`` part (code
    included) are written in clear text as::

        --- E-mail ---
        From: ACME <noreply@acme.example>
        To: alice@example.com
        Subject: Your ACME code

        Your ACME code is 123456
        ---

    Other parts (HTML, attachments) are not printed. Never use it in production: whoever
    reads the stream can sign in as any user. Writes are serialised by a lock, so
    concurrent sends never interleave.

    Args:
        stream: Where to write; ``None`` (the default) means :data:`sys.stderr`, looked up
            at each send.
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    def __repr__(self) -> str:
        return f"ConsoleEmailSender(stream={_stream_name(self._stream)})"

    def send_email(self, message: EmailMessage) -> None:
        """Write the headers and the text part of ``message`` to the stream. **Prints the code.**

        Args:
            message: The e-mail to show.

        Raises:
            OSError: The stream could not be written.
        """
        lines = ["--- E-mail ---"]
        for name in ("From", "To", "Subject"):
            value = message.get(name)
            lines.append(f"{name}: {'' if value is None else str(value)}")
        text = _plain_text(message)
        lines.append("")
        lines.append("(no text/plain part)" if text is None else text.rstrip("\r\n"))
        lines.append("---")
        _write(self._stream, "\n".join(lines) + "\n")
