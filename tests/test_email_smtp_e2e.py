"""E-mailed codes end to end: the facade, :class:`SMTPEmailSender`, a real SMTP server.

An aiosmtpd server listens on 127.0.0.1 (an ephemeral port, plain SMTP: the loopback relay
case ``security="none"`` is meant for). The test reads the message back as the server
received it, checks what a person sees (the username in the subject line, the first name in
the greeting) and signs in with the code it carries. A server that is not there gives a
:class:`DeliveryError` and leaves no challenge behind. TLS and authentication of the sender
itself are covered in ``test_delivery.py``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import email.policy
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Final

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from mfakit import (
    MFA,
    ChallengeNotFound,
    DeliveryError,
    EventType,
    InvalidCode,
    Keyring,
    Subject,
    Verification,
)
from mfakit.delivery import SMTPEmailSender
from mfakit.factors import EmailOTP
from mfakit.testing import FakeClock, ListSink, MemoryStore

LOOPBACK: Final = "127.0.0.1"
FROM_ADDRESS: Final = "noreply@acme.example"
CODE_RE: Final = re.compile(r"\b([0-9]{6})\b")


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes


@dataclass
class Recorder:
    """aiosmtpd handler keeping the raw bytes of every message it accepts."""

    received: list[Received] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        assert envelope.mail_from is not None
        self.received.append(
            Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.content)
        )
        return "250 2.0.0 Message accepted"


class EphemeralController(Controller):
    """A Controller on ``port=0`` that learns the chosen port before its readiness probe."""

    def _trigger_server(self) -> None:
        assert isinstance(self.server, asyncio.Server)
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()  # type: ignore[no-untyped-call]


@dataclass(frozen=True)
class Server:
    port: int
    recorder: Recorder


@pytest.fixture
def smtp_server() -> Iterator[Server]:
    recorder = Recorder()
    controller = EphemeralController(
        recorder, hostname=LOOPBACK, port=0, server_hostname="localhost"
    )
    controller.start()
    try:
        yield Server(controller.port, recorder)
    finally:
        controller.stop()


@dataclass(frozen=True)
class Setup:
    mfa: MFA
    store: MemoryStore
    events: ListSink
    clock: FakeClock


def make_mfa(port: int) -> Setup:
    sender = SMTPEmailSender(
        LOOPBACK, port, security="none", timeout=5.0, local_hostname="localhost"
    )
    store, events, clock = MemoryStore(), ListSink(), FakeClock()
    mfa = MFA(
        store=store,
        keyring=Keyring.ephemeral(),
        factors=[EmailOTP(sender=sender, from_address=FROM_ADDRESS, issuer="ACME")],
        clock=clock,
        events=events,
    )
    return Setup(mfa, store, events, clock)


def parse(received: Received) -> EmailMessage:
    message = email.message_from_bytes(received.raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def body(message: EmailMessage, subtype: str) -> str:
    part = message.get_body(preferencelist=(subtype,))
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n")


@pytest.mark.parametrize(
    ("who", "first_name"),
    [
        pytest.param(
            Subject(
                id="u-alice",
                tenant="t1",
                username="asmith",
                email="alice@example.com",
                display_name="Alice Smith",
            ),
            "Alice",
            id="ascii",
        ),
        pytest.param(
            Subject(
                id="u-zoe",
                username="zoë.ünïcødé",
                email="zoe@example.com",
                display_name="Zoë Ünïcødé",
            ),
            "Zoë",
            id="unicode",
        ),
    ],
)
def test_a_code_mailed_through_smtp_signs_in(
    smtp_server: Server, who: Subject, first_name: str
) -> None:
    setup = make_mfa(smtp_server.port)

    challenge = setup.mfa.challenge(who, "email")

    [received] = smtp_server.recorder.received
    assert received.mail_from == FROM_ADDRESS
    assert received.rcpt_tos == [who.email]
    message = parse(received)
    assert who.username is not None
    assert who.username in str(message["Subject"])
    assert str(message["Subject"]) == f"ACME sign-in code for {who.username}"
    assert str(message["From"]) == FROM_ADDRESS
    assert str(message["To"]) == who.email
    text = body(message, "plain")
    assert text.startswith(f"Hello {first_name},\n")
    codes = CODE_RE.findall(text)
    assert len(set(codes)) == 1
    code = codes[0]
    assert code not in str(message["Subject"])
    assert f"<strong>{code}</strong>" in body(message, "html")

    proof = setup.mfa.verify(who, challenge.id, code)

    assert isinstance(proof, Verification)
    assert (proof.subject_id, proof.factor, proof.credential_id) == (who.id, "email", None)
    with pytest.raises(ChallengeNotFound):
        setup.mfa.verify(who, challenge.id, code)


def test_a_resent_code_replaces_the_mailed_one(smtp_server: Server) -> None:
    setup = make_mfa(smtp_server.port)
    alice = Subject(id="u-alice", username="alice", email="alice@example.com")
    challenge = setup.mfa.challenge(alice, "email")
    setup.clock.advance(dt.timedelta(seconds=30))
    setup.mfa.resend(alice, challenge.id)

    first, second = smtp_server.recorder.received
    old_code = CODE_RE.findall(body(parse(first), "plain"))[0]
    new_code = CODE_RE.findall(body(parse(second), "plain"))[0]
    if old_code != new_code:  # one chance in a million that they coincide
        with pytest.raises(InvalidCode):
            setup.mfa.verify(alice, challenge.id, old_code)
    assert isinstance(setup.mfa.verify(alice, challenge.id, new_code), Verification)


def test_an_unreachable_server_is_a_delivery_error_and_leaves_nothing() -> None:
    with socket.create_server((LOOPBACK, 0)) as probe:
        port = probe.getsockname()[1]  # now closed: connections are refused
    setup = make_mfa(port)
    alice = Subject(id="u-alice", username="alice", email="alice@example.com")

    with pytest.raises(DeliveryError) as caught:
        setup.mfa.challenge(alice, "email")

    assert setup.store.dump()["challenges"] == []
    [failed] = setup.events.of_type(EventType.DELIVERY_FAILED)
    assert (failed.factor, failed.reason) == ("email", "ConnectionRefusedError")
    assert setup.events.of_type(EventType.CODE_SENT) == []
    assert "alice@example.com" not in str(caught.value)

    with pytest.raises(DeliveryError):
        setup.mfa.enroll(alice, EmailOTP.setup("alice.private@example.org"))
    dump = setup.store.dump()
    assert dump["credentials"] == []
    assert dump["challenges"] == []
