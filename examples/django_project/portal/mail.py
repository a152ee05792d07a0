"""Send mfakit's e-mails through Django's e-mail backend."""

from __future__ import annotations

from email.message import EmailMessage

from django.core.mail import EmailMultiAlternatives


class DjangoEmailSender:
    """An :class:`mfakit.typing.EmailSender` that hands each message to Django's
    ``EMAIL_BACKEND`` (SMTP in production; in memory in development, listed by the dev
    outbox page).

    mfakit builds the message (``From``, ``To``, ``Subject``, a text part and an HTML
    part); this copies it into an ``EmailMultiAlternatives``. Errors propagate: mfakit
    then withdraws the challenge and raises ``DeliveryError`` (the code never waits for a
    message that never left).
    """

    def send_email(self, message: EmailMessage) -> None:
        text = message.get_body(("plain",))
        html = message.get_body(("html",))
        mail = EmailMultiAlternatives(
            subject=str(message["Subject"]),
            body=text.get_content() if isinstance(text, EmailMessage) else "",
            from_email=str(message["From"]),
            to=[str(message["To"])],
        )
        if isinstance(html, EmailMessage):
            mail.attach_alternative(html.get_content(), "text/html")
        mail.send(fail_silently=False)
