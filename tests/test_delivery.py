"""Tests for mfakit.delivery (SMTP and console senders) and mfakit.testing.outbox.

The SMTP tests talk to real aiosmtpd servers on 127.0.0.1 (ephemeral ports), with a
self-signed certificate generated here for STARTTLS and implicit TLS. Nothing leaves the
loopback interface.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import email
import email.policy
import io
import ipaddress
import math
import re
import smtplib
import socket
import ssl
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from mfakit.delivery import ConsoleEmailSender, ConsoleSMSSender, SMTPEmailSender
from mfakit.delivery.smtp import Security
from mfakit.exceptions import ConfigurationError, InvalidType
from mfakit.testing.outbox import Outbox, SentSMS
from mfakit.typing import EmailSender, SMSSender

LOOPBACK = "127.0.0.1"
USERNAME = "mfa-mailer"
PASSWORD = "s3cret-Pa55w0rd"
WRONG_PASSWORD = "not-the-Pa55w0rd"

# --------------------------------------------------------------------------------------
# TLS material: one self-signed certificate for localhost / 127.0.0.1 per module
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TLSFiles:
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context

    def client_context(self) -> ssl.SSLContext:
        """A verifying client context that trusts only this certificate."""
        return ssl.create_default_context(cafile=str(self.cert))


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.timezone.utc)
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(LOOPBACK))]
            ),
            critical=False,
        )
        # Self-signed and used as its own trust anchor: mark it a CA so that OpenSSL's
        # strict verification (Python 3.13's default context) accepts it too.
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    directory = tmp_path_factory.mktemp("tls")
    cert_path = directory / "cert.pem"
    key_path = directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return TLSFiles(cert_path, key_path)


# --------------------------------------------------------------------------------------
# A real SMTP server on 127.0.0.1
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    tls: bool
    authenticated: bool


@dataclass
class Recorder:
    """aiosmtpd handler that keeps every message it accepts."""

    received: list[Received] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        assert envelope.mail_from is not None
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        # Implicit TLS and STARTTLS both leave an SSL object on the transport.
        assert server.transport is not None
        tls = server.transport.get_extra_info("ssl_object") is not None
        self.received.append(
            Received(
                mail_from=envelope.mail_from,
                rcpt_tos=list(envelope.rcpt_tos),
                message=message,
                tls=tls,
                authenticated=bool(session.authenticated),
            )
        )
        return "250 2.0.0 Message accepted"


class EphemeralController(Controller):
    """A Controller listening on ``port=0``: learns the port the OS chose before its
    readiness probe connects (the stock probe would connect to port 0)."""

    def _trigger_server(self) -> None:
        assert isinstance(self.server, asyncio.Server)
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()  # type: ignore[no-untyped-call]


@dataclass(frozen=True)
class Server:
    port: int
    recorder: Recorder

    @property
    def received(self) -> list[Received]:
        return self.recorder.received


StartServer = Callable[..., Server]


@pytest.fixture
def start_server() -> Iterator[StartServer]:
    """Start aiosmtpd servers on 127.0.0.1 (keyword arguments go to Controller/SMTP)."""
    controllers: list[Controller] = []

    def start(**kwargs: Any) -> Server:
        recorder = Recorder()
        controller = EphemeralController(
            recorder, hostname=LOOPBACK, port=0, server_hostname="localhost", **kwargs
        )
        controller.start()
        controllers.append(controller)
        return Server(controller.port, recorder)

    yield start
    for controller in controllers:
        controller.stop()


def authenticator(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    accepted = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == USERNAME.encode()
        and auth_data.password == PASSWORD.encode()
    )
    return AuthResult(success=accepted, handled=False)


def sender_for(server: Server, **kwargs: Any) -> SMTPEmailSender:
    kwargs.setdefault("timeout", 5.0)
    return SMTPEmailSender(LOOPBACK, server.port, local_hostname="localhost", **kwargs)


def make_message(
    *,
    subject: str = "Your ACME code",
    from_: str = "ACME <noreply@acme.example>",
    to: str = "alice@example.com",
    text: str = "Your ACME code is 123456\n",
    html: str | None = None,
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = from_
    message["To"] = to
    message["Subject"] = subject
    message.set_content(text)
    if html is not None:
        message.add_alternative(html, subtype="html")
    return message


def unicode_message() -> EmailMessage:
    return make_message(
        subject="Votre code de vérification — ACME 🔐",
        from_="ACME Sécurité <noreply@acme.example>",
        to="Zoë Ünïcødé <zoe@example.com>",
        text="Bonjour Zoë, votre code est 482916.\n",
        html="<p>Bonjour Zoë, votre code est <b>482916</b>.</p>\n",
    )


def assert_round_trip(received: Received, sent: EmailMessage) -> None:
    got = received.message
    assert received.mail_from == "noreply@acme.example"
    assert received.rcpt_tos == ["zoe@example.com"]
    assert str(got["Subject"]) == str(sent["Subject"])
    assert str(got["From"]) == "ACME Sécurité <noreply@acme.example>"
    assert str(got["To"]) == "Zoë Ünïcødé <zoe@example.com>"
    assert got.get_content_type() == "multipart/alternative"
    plain = got.get_body(preferencelist=("plain",))
    html = got.get_body(preferencelist=("html",))
    assert plain is not None
    assert html is not None
    # On the wire lines end in CRLF; the parser keeps them.
    assert plain.get_content().replace("\r\n", "\n") == "Bonjour Zoë, votre code est 482916.\n"
    assert html.get_content().replace("\r\n", "\n") == (
        "<p>Bonjour Zoë, votre code est <b>482916</b>.</p>\n"
    )


# --------------------------------------------------------------------------------------
# SMTPEmailSender against real servers
# --------------------------------------------------------------------------------------


def test_plain_delivery_round_trips_headers_and_both_parts(start_server: StartServer) -> None:
    server = start_server()
    sent = unicode_message()
    sender_for(server, security="none").send_email(sent)

    [received] = server.received
    assert_round_trip(received, sent)
    assert not received.tls


def test_starttls_delivery(start_server: StartServer, tls: TLSFiles) -> None:
    server = start_server(tls_context=tls.server_context(), require_starttls=True)
    sent = unicode_message()
    sender_for(server, ssl_context=tls.client_context()).send_email(sent)

    [received] = server.received
    assert_round_trip(received, sent)
    assert received.tls


def test_starttls_not_offered_refuses_to_send_in_clear(start_server: StartServer) -> None:
    server = start_server()  # no tls_context: the server does not offer STARTTLS
    sender = sender_for(server, security="starttls")

    with pytest.raises(smtplib.SMTPNotSupportedError, match="STARTTLS"):
        sender.send_email(make_message())
    assert server.received == []


def test_starttls_verifies_the_certificate(start_server: StartServer, tls: TLSFiles) -> None:
    # The default context (system CAs) does not trust the self-signed certificate.
    server = start_server(tls_context=tls.server_context(), require_starttls=True)

    with pytest.raises(ssl.SSLCertVerificationError):
        sender_for(server).send_email(make_message())
    assert server.received == []


def test_implicit_tls_delivery(start_server: StartServer, tls: TLSFiles) -> None:
    server = start_server(ssl_context=tls.server_context())
    sent = unicode_message()
    sender_for(server, security="ssl", ssl_context=tls.client_context()).send_email(sent)

    [received] = server.received
    assert_round_trip(received, sent)
    assert received.tls


@pytest.fixture
def auth_server(start_server: StartServer, tls: TLSFiles) -> Server:
    return start_server(
        tls_context=tls.server_context(),
        require_starttls=True,
        auth_required=True,
        auth_require_tls=True,
        authenticator=authenticator,
    )


def test_auth_with_the_right_password(auth_server: Server, tls: TLSFiles) -> None:
    sender = sender_for(
        auth_server, username=USERNAME, password=PASSWORD, ssl_context=tls.client_context()
    )
    sender.send_email(make_message())

    [received] = auth_server.received
    assert received.authenticated
    assert received.tls


def test_auth_with_a_wrong_password_raises_without_leaking_it(
    auth_server: Server, tls: TLSFiles
) -> None:
    sender = sender_for(
        auth_server, username=USERNAME, password=WRONG_PASSWORD, ssl_context=tls.client_context()
    )

    with pytest.raises(smtplib.SMTPAuthenticationError) as caught:
        sender.send_email(make_message())

    assert auth_server.received == []
    error = caught.value
    shown = [
        str(error),
        repr(error),
        "".join(traceback.format_exception(type(error), error, error.__traceback__)),
        repr(sender),
        str(sender),
    ]
    encoded = base64.b64encode(WRONG_PASSWORD.encode()).decode()
    for text in shown:
        assert WRONG_PASSWORD not in text
        assert encoded not in text
    assert "password='***'" in repr(sender)


def test_auth_without_a_server_that_offers_it_fails(start_server: StartServer) -> None:
    # No authenticator: the server never offers AUTH, so credentials cannot be used.
    server = start_server(tls_context=None)
    sender = SMTPEmailSender(
        LOOPBACK,
        server.port,
        security="starttls",
        username=USERNAME,
        password=PASSWORD,
        local_hostname="localhost",
        timeout=5.0,
    )
    with pytest.raises(smtplib.SMTPNotSupportedError):
        sender.send_email(make_message())
    assert server.received == []


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP port on 127.0.0.1 whose listener completes handshakes but never speaks."""
    listener = socket.create_server((LOOPBACK, 0))
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()


@pytest.mark.parametrize("security", ["none", "starttls", "ssl"])
def test_a_silent_server_times_out(silent_server: int, security: Security) -> None:
    sender = SMTPEmailSender(
        LOOPBACK, silent_server, security=security, timeout=0.5, local_hostname="localhost"
    )
    started = time.monotonic()
    # The TLS handshake times out as TimeoutError; smtplib reports a timed-out reply read
    # as SMTPServerDisconnected raised while handling the TimeoutError.
    with pytest.raises((TimeoutError, smtplib.SMTPServerDisconnected)) as caught:
        sender.send_email(make_message())
    elapsed = time.monotonic() - started
    error = caught.value
    assert isinstance(error, TimeoutError) or isinstance(error.__context__, TimeoutError)
    assert 0.4 <= elapsed < 2.0


def test_a_closed_port_raises_oserror() -> None:
    with socket.create_server((LOOPBACK, 0)) as probe:
        port = probe.getsockname()[1]
    sender = SMTPEmailSender(LOOPBACK, port, security="none", timeout=2.0)
    with pytest.raises(ConnectionRefusedError):
        sender.send_email(make_message())


def test_send_email_rejects_a_non_message() -> None:
    sender = SMTPEmailSender(LOOPBACK, 2525, security="none")
    with pytest.raises(InvalidType):
        sender.send_email("Subject: hi\n\n123456")  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------
# SMTPEmailSender configuration
# --------------------------------------------------------------------------------------


def test_default_ports_and_properties() -> None:
    assert SMTPEmailSender("smtp.example.com").port == 587
    assert SMTPEmailSender("smtp.example.com", security="ssl").port == 465
    assert SMTPEmailSender("localhost", security="none").port == 25
    sender = SMTPEmailSender(
        "smtp.example.com", 2587, username=USERNAME, password=PASSWORD, timeout=3
    )
    assert (sender.host, sender.port, sender.security) == ("smtp.example.com", 2587, "starttls")
    assert sender.username == USERNAME
    assert sender.timeout == 3.0
    assert isinstance(sender, EmailSender)
    assert repr(sender) == (
        "SMTPEmailSender(host='smtp.example.com', port=2587, security='starttls', "
        "username='mfa-mailer', password='***', timeout=3.0)"
    )
    assert PASSWORD not in repr(sender)
    assert PASSWORD not in str(sender)
    assert PASSWORD not in repr(vars(sender))


def unverified_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def no_hostname_check_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    return context


BAD_CONFIGS: list[tuple[str, dict[str, Any]]] = [
    ("security-unknown", {"security": "tls"}),
    ("security-upper", {"security": "STARTTLS"}),
    ("security-none-object", {"security": None}),
    ("port-0", {"port": 0}),
    ("port-70000", {"port": 70000}),
    ("port-negative", {"port": -25}),
    ("port-str", {"port": "587"}),
    ("port-float", {"port": 587.0}),
    ("port-bool", {"port": True}),
    ("host-empty", {"host": ""}),
    ("host-not-str", {"host": b"smtp.example.com"}),
    ("host-space", {"host": "smtp example.com"}),
    ("host-newline", {"host": "smtp.example.com\r\nRCPT TO:<x@y>"}),
    ("username-without-password", {"username": USERNAME}),
    ("password-without-username", {"password": PASSWORD}),
    ("username-empty", {"username": "", "password": PASSWORD}),
    ("password-empty", {"username": USERNAME, "password": ""}),
    ("password-bytes", {"username": USERNAME, "password": PASSWORD.encode()}),
    ("password-non-ascii", {"username": USERNAME, "password": PASSWORD + "é"}),
    ("password-control", {"username": USERNAME, "password": PASSWORD + "\n"}),
    ("credentials-in-clear", {"security": "none", "username": USERNAME, "password": PASSWORD}),
    ("timeout-bool", {"timeout": True}),
    ("timeout-zero", {"timeout": 0}),
    ("timeout-negative", {"timeout": -1.0}),
    ("timeout-nan", {"timeout": math.nan}),
    ("timeout-inf", {"timeout": math.inf}),
    ("timeout-str", {"timeout": "10"}),
    ("ssl-context-wrong-type", {"ssl_context": "default"}),
    ("ssl-context-unverified", {"ssl_context": unverified_context()}),
    ("ssl-context-no-hostname-check", {"ssl_context": no_hostname_check_context()}),
    ("ssl-context-with-none", {"security": "none", "ssl_context": ssl.create_default_context()}),
    ("local-hostname-empty", {"local_hostname": ""}),
    ("local-hostname-space", {"local_hostname": "my host"}),
]


@pytest.mark.parametrize(("case", "kwargs"), BAD_CONFIGS, ids=[case for case, _ in BAD_CONFIGS])
def test_bad_configuration_is_refused(case: str, kwargs: dict[str, Any]) -> None:
    kwargs = {"host": "smtp.example.com", **kwargs}
    with pytest.raises(ConfigurationError) as caught:
        SMTPEmailSender(**kwargs)
    assert PASSWORD not in str(caught.value)
    assert PASSWORD not in repr(caught.value)


# --------------------------------------------------------------------------------------
# Console senders
# --------------------------------------------------------------------------------------


def test_console_sms_sender_writes_a_block() -> None:
    stream = io.StringIO()
    sender = ConsoleSMSSender(stream)
    sender.send_sms("+61412345678", "Your ACME code is 123456\n\n@acme.example #123456")

    assert stream.getvalue() == (
        "--- SMS to +61412345678 ---\nYour ACME code is 123456\n\n@acme.example #123456\n---\n"
    )
    assert isinstance(sender, SMSSender)
    assert repr(sender) == "ConsoleSMSSender(stream=StringIO)"
    assert "123456" not in repr(sender)


def test_console_email_sender_writes_headers_and_the_text_part() -> None:
    stream = io.StringIO()
    sender = ConsoleEmailSender(stream)
    sender.send_email(unicode_message())

    assert stream.getvalue() == (
        "--- E-mail ---\n"
        "From: ACME Sécurité <noreply@acme.example>\n"
        "To: Zoë Ünïcødé <zoe@example.com>\n"
        "Subject: Votre code de vérification — ACME 🔐\n"
        "\n"
        "Bonjour Zoë, votre code est 482916.\n"
        "---\n"
    )
    assert isinstance(sender, EmailSender)
    assert repr(sender) == "ConsoleEmailSender(stream=StringIO)"


def test_console_email_without_a_text_part() -> None:
    stream = io.StringIO()
    message = make_message()
    message.set_content("<p>HTML only</p>", subtype="html")
    ConsoleEmailSender(stream).send_email(message)

    assert "(no text/plain part)" in stream.getvalue()
    assert "HTML only" not in stream.getvalue()


def test_console_senders_default_to_stderr_at_send_time(
    capsys: pytest.CaptureFixture[str],
) -> None:
    sms, mail = ConsoleSMSSender(), ConsoleEmailSender()
    assert repr(sms) == "ConsoleSMSSender(stream=sys.stderr)"
    sms.send_sms("+61412345678", "Code 123456")
    mail.send_email(make_message())

    captured = capsys.readouterr()
    assert captured.out == ""
    assert "--- SMS to +61412345678 ---\nCode 123456\n---\n" in captured.err
    assert "Your ACME code is 123456\n---\n" in captured.err


def test_console_blocks_never_interleave() -> None:
    stream = io.StringIO()
    sms, mail = ConsoleSMSSender(stream), ConsoleEmailSender(stream)
    start = threading.Barrier(20)

    def work(n: int) -> None:
        start.wait()
        for i in range(10):
            sms.send_sms(f"+6141234{n:04d}", f"line one {n}-{i}\nline two {n}-{i}")
            mail.send_email(make_message(text=f"mail {n}-{i}\n"))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    sms_block = r"--- SMS to \+6141234(\d{4}) ---\nline one (\d+-\d+)\nline two \2\n---\n"
    mail_block = (
        r"--- E-mail ---\nFrom: ACME <noreply@acme\.example>\nTo: alice@example\.com\n"
        r"Subject: Your ACME code\n\nmail \d+-\d+\n---\n"
    )
    output = stream.getvalue()
    assert re.fullmatch(f"(?:(?:{sms_block})|(?:{mail_block}))+", output)
    assert output.count("--- SMS to") == 200
    assert output.count("--- E-mail ---") == 200


# --------------------------------------------------------------------------------------
# Outbox
# --------------------------------------------------------------------------------------


def test_outbox_implements_both_protocols_and_records_in_order() -> None:
    outbox = Outbox()
    assert isinstance(outbox, SMSSender)
    assert isinstance(outbox, EmailSender)
    assert len(outbox) == 0

    outbox.send_sms("+61412345678", "first 111111")
    mail = make_message()
    outbox.send_email(mail)
    outbox.send_sms("+61498765432", "third 333333")

    assert len(outbox) == 3
    assert outbox.sms == [
        SentSMS("+61412345678", "first 111111"),
        SentSMS("+61498765432", "third 333333"),
    ]
    assert outbox.emails == [mail]
    assert outbox.messages == [outbox.sms[0], mail, outbox.sms[1]]
    assert repr(outbox) == "Outbox(sms=2, emails=1)"
    # Snapshots: mutating a returned list changes nothing.
    outbox.messages.clear()
    assert len(outbox) == 3


def test_outbox_last_sms_and_last_email() -> None:
    outbox = Outbox()
    outbox.send_sms("+61412345678", "a")
    outbox.send_sms("+61498765432", "b")
    outbox.send_sms("+61412345678", "c")
    first = make_message(to="Zoë <zoe@example.com>")
    second = make_message(to="bob@example.com")
    outbox.send_email(first)
    outbox.send_email(second)

    assert outbox.last_sms() == SentSMS("+61412345678", "c")
    assert outbox.last_sms("+61498765432") == SentSMS("+61498765432", "b")
    assert outbox.last_email() is second
    assert outbox.last_email("ZOE@example.com") is first
    with pytest.raises(LookupError, match=r"no SMS was sent to '\+61400000000'"):
        outbox.last_sms("+61400000000")
    with pytest.raises(LookupError, match=r"no e-mail was sent to 'carol@example\.com'"):
        outbox.last_email("carol@example.com")


def test_outbox_lookup_error_when_empty() -> None:
    outbox = Outbox()
    with pytest.raises(LookupError, match="no SMS was sent"):
        outbox.last_sms()
    with pytest.raises(LookupError, match="no e-mail was sent"):
        outbox.last_email()
    with pytest.raises(LookupError, match="no message was sent"):
        outbox.last_code()


def test_last_code_from_an_sms_with_a_webotp_line() -> None:
    outbox = Outbox()
    outbox.send_sms("+61412345678", "Your ACME code is 123456\n\n@example.com #123456")
    assert outbox.last_code() == "123456"
    assert outbox.last_code("+61412345678") == "123456"


def test_last_code_takes_the_first_standalone_run_of_exactly_n_digits() -> None:
    outbox = Outbox()
    outbox.send_sms("+61412345678", "Ref 12345678 for +61412345678, id A987654: code 246810.")
    assert outbox.last_code() == "246810"
    # Non-ASCII digits and digits glued to letters are not codes.
    outbox.send_sms("+61412345678", "١٢٣٤٥٦ or x135790 or 135790")
    assert outbox.last_code() == "135790"


def test_last_code_with_eight_digits() -> None:
    outbox = Outbox()
    outbox.send_sms("+61412345678", "Code 123456 is old; your code is 87654321")
    assert outbox.last_code(digits=8) == "87654321"
    assert outbox.last_code(digits=6) == "123456"
    outbox.send_sms("+61412345678", "Your code is 123456")
    with pytest.raises(LookupError, match="holds no 8-digit code"):
        outbox.last_code(digits=8)
    with pytest.raises(ValueError, match="at least 1"):
        outbox.last_code(digits=0)
    with pytest.raises(TypeError):
        outbox.last_code(digits=True)


def test_last_code_from_a_multipart_email_reads_the_text_part() -> None:
    outbox = Outbox()
    outbox.send_email(
        make_message(
            to="Zoë <zoe@example.com>",
            text="Votre code : 482916\n",
            html="<p>Order 999999</p><p>Votre code : <b>482916</b></p>",
        )
    )
    assert outbox.last_code() == "482916"
    assert outbox.last_code("zoe@example.com") == "482916"


def test_last_code_picks_the_latest_message_to_the_destination() -> None:
    outbox = Outbox()
    outbox.send_sms("+61412345678", "sms code 111111")
    outbox.send_email(make_message(to="alice@example.com", text="mail code 222222"))
    outbox.send_sms("+61498765432", "other code 333333")

    assert outbox.last_code() == "333333"
    assert outbox.last_code("+61412345678") == "111111"
    assert outbox.last_code("alice@example.com") == "222222"
    with pytest.raises(LookupError, match=r"no message was sent to 'bob@example\.com'"):
        outbox.last_code("bob@example.com")


def test_fail_next_raises_and_records_nothing() -> None:
    outbox = Outbox()
    outbox.fail_next()
    with pytest.raises(RuntimeError, match="simulated delivery failure"):
        outbox.send_sms("+61412345678", "123456")
    assert len(outbox) == 0
    outbox.send_sms("+61412345678", "654321")  # only one send failed
    assert outbox.last_code() == "654321"

    error = ConnectionError("provider down")
    outbox.fail_next(error, times=2)
    for _ in range(2):
        with pytest.raises(ConnectionError) as caught:
            outbox.send_email(make_message())
        assert caught.value is error
    outbox.send_email(make_message())
    assert len(outbox.emails) == 1


def test_fail_next_accumulates_and_clear_forgets() -> None:
    outbox = Outbox()
    outbox.fail_next(ValueError("a"))
    outbox.fail_next(KeyError("b"))
    with pytest.raises(ValueError, match="a"):
        outbox.send_sms("+61412345678", "x")
    with pytest.raises(KeyError):
        outbox.send_sms("+61412345678", "x")

    outbox.send_sms("+61412345678", "x")
    outbox.fail_next(times=5)
    outbox.clear()
    assert len(outbox) == 0
    outbox.send_sms("+61412345678", "y")  # the pending failures were cleared too
    assert outbox.sms == [SentSMS("+61412345678", "y")]


def test_outbox_rejects_bad_arguments() -> None:
    outbox = Outbox()
    with pytest.raises(ValueError, match="at least 1"):
        outbox.fail_next(times=0)
    with pytest.raises(TypeError):
        outbox.fail_next(RuntimeError)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        outbox.send_sms(b"+61412345678", "x")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        outbox.send_email("Subject: x")  # type: ignore[arg-type]
    assert len(outbox) == 0


def test_outbox_is_thread_safe() -> None:
    outbox = Outbox()
    outbox.fail_next(times=10)
    start = threading.Barrier(50)
    failures: list[BaseException] = []
    failures_lock = threading.Lock()

    def work(n: int) -> None:
        start.wait()
        for i in range(20):
            try:
                if i % 2:
                    outbox.send_email(make_message(to=f"u{n}@example.com", text=f"{n}:{i}"))
                else:
                    outbox.send_sms(f"+6141234{n:04d}", f"{n}:{i}")
            except RuntimeError as error:
                with failures_lock:
                    failures.append(error)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(failures) == 10
    assert len(outbox) == 50 * 20 - 10
    assert len(outbox.sms) + len(outbox.emails) == len(outbox)
    # Each thread's messages are recorded in the order it sent them.
    texts = [m.text if isinstance(m, SentSMS) else str(m.get_content()) for m in outbox.messages]
    by_thread: dict[int, list[int]] = {}
    for text in texts:
        n, i = map(int, text.split(":"))
        by_thread.setdefault(n, []).append(i)
    assert set(by_thread) == set(range(50))
    for sent in by_thread.values():
        assert sent == sorted(sent)
