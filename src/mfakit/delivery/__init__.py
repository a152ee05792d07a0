"""Ready-made SMS and e-mail senders.

* :class:`SMTPEmailSender` delivers e-mail through an SMTP server (STARTTLS, implicit TLS,
  or plain SMTP to a relay on loopback), one connection per message;
* :class:`ConsoleSMSSender` and :class:`ConsoleEmailSender` print messages, codes
  included. **Development only.**

For tests, :class:`mfakit.testing.Outbox` records messages in memory instead.

Importing this package stays light: :mod:`smtplib` and :mod:`ssl` load only when
:class:`SMTPEmailSender` is first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mfakit.delivery.console import ConsoleEmailSender, ConsoleSMSSender

if TYPE_CHECKING:
    from mfakit.delivery.smtp import SMTPEmailSender

__all__ = ["ConsoleEmailSender", "ConsoleSMSSender", "SMTPEmailSender"]


def __getattr__(name: str) -> Any:
    # smtplib pulls in ssl and socket machinery; load it only for those who ask.
    if name == "SMTPEmailSender":
        from mfakit.delivery.smtp import SMTPEmailSender

        return SMTPEmailSender
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
